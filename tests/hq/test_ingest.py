"""Ingest for a chain: the fast schema check accepts and refuses exactly what jsonschema
does, and a batch is stored in one transaction (all or none, repeats dropped). The
acknowledge-after-commit path against a real broker and a failing PostgreSQL is
tests/hq/test_hq.py::test_postgresql_store_and_database_outage."""

from __future__ import annotations

import copy
import random
import sqlite3

import pytest

from appliance.hq.store import StoreError, WindowStore
from appliance.hq.subscriber import _passes, counts_validator, fast_check, window_problem
from appliance.lab.bench_hq import documents
from tests.hq.test_hq_aggregate import documents as varied_documents


def mutations(document: dict, rng: random.Random) -> list[dict]:
    """Variants of a valid document, most of them invalid: each key removed, a wrong type
    or value put at a random place, an unknown key added."""
    out = []
    paths = list(_paths(document))
    for _ in range(12):
        variant = copy.deepcopy(document)
        path = rng.choice(paths)
        parent = variant
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = rng.choice((-1, "x", None, 1.5, [], {}, "a/b", 10**12, True,
                                       "2027-01-01", {"thumbnail": "aGk="}))
        out.append(variant)
    for key in list(document)[:8]:
        out.append({k: v for k, v in document.items() if k != key})
    out.append(dict(document, thumbnail="aGk="))
    return out


def _paths(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from _paths(item, (*path, key))


def test_fast_schema_check_agrees_with_jsonschema():
    assert fast_check("shopper.counts/2") is not None  # the hq extra is installed
    rng = random.Random(19)
    corpus = documents(40, 20) + rng.sample(varied_documents(), 60)
    valid = invalid = 0
    for document in corpus:
        for candidate in [document, *mutations(document, rng)]:
            schema = candidate.get("schema")
            if schema not in ("shopper.counts/1", "shopper.counts/2"):
                continue
            expected = counts_validator(schema).is_valid(candidate)
            assert _passes(schema, candidate) == expected, candidate
            if not expected:
                assert window_problem(candidate).startswith(f"not a {schema} window (")
            valid += expected
            invalid += not expected
    assert valid >= 100 and invalid >= 1000


def test_a_batch_is_one_transaction(tmp_path):
    db = tmp_path / "hq.sqlite"
    first, second, third = documents(3, 3)
    store = WindowStore(str(db))
    try:
        assert store.add_batch([first, second, first], [("store-0000", "cam-0", "online")],
                               "2027-01-01T00:00:00Z") == [True, True, False]
        broken = dict(third, clock=None)  # NOT NULL: the database refuses it
        with pytest.raises(StoreError):
            store.add_batch([third, broken], [("store-0000", "cam-1", "online")],
                            "2027-01-01T00:00:01Z")
    finally:
        store.close()
    with sqlite3.connect(db) as connection:
        assert sorted(i for (i,) in connection.execute("SELECT message_id FROM windows")) == \
            sorted([first["message_id"], second["message_id"]])
        assert connection.execute("SELECT store_id, camera_id, status FROM camera_status"
                                  ).fetchall() == [("store-0000", "cam-0", "online")]
        lines = connection.execute("SELECT COUNT(*) FROM line_counts").fetchone()[0]
        assert lines == len(first["lines"]) + len(second["lines"])
