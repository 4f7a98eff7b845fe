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


def test_a_batch_is_one_transaction(target):
    first, second, third = documents(3, 3)
    store = WindowStore(target)
    try:
        assert store.add_batch([first, second, first], [("store-0000", "cam-0", "online")],
                               "2027-01-01T00:00:00Z") == [True, True, False]
        assert store.add_batch([second, third, third], [], "2027-01-01T00:00:00Z") == \
            [False, True, False]
        broken = dict(documents(4, 4)[3], clock=None)  # NOT NULL: the database refuses it
        fourth = documents(5, 5)[4]
        with pytest.raises(StoreError):
            store.add_batch([fourth, broken], [("store-0000", "cam-1", "online")],
                            "2027-01-01T00:00:01Z")
        ids = sorted(i for (i,) in store.query("SELECT message_id FROM windows", []))
        assert ids == sorted(d["message_id"] for d in (first, second, third))
        assert store.query("SELECT store_id, camera_id, status FROM camera_status", []) == \
            [("store-0000", "cam-0", "online")]
        lines, = store.query("SELECT COUNT(*) FROM line_counts", [])[0]
        assert lines == sum(len(d["lines"]) for d in (first, second, third))
    finally:
        store.close()


HEALTH = {"schema": "shopper.health/2", "store_id": "shop-1", "camera_id": "door",
          "time": "2027-01-01T00:42:00.312Z", "software_version": "0.1.0",
          "uptime_seconds": 86400.2, "fps": 24.9, "inference_ms": 18.7, "capacity_fps": 30,
          "fps_cap": 25, "frames_received": 2151360, "frames_dropped": 0,
          "stream_reconnects": 1, "mqtt_connects": 2, "spool_depth": 7, "spool_dropped": 0,
          "messages_refused": 0, "cpu_temp_c": 51.6,
          "models": {"yolox_nano": {"file": "yolox_nano.onnx", "sha256": "0" * 64}}}
# The same camera's document before its device was updated (health/1: processed/skipped).
HEALTH_1 = {**{k: v for k, v in HEALTH.items() if k not in ("capacity_fps", "frames_received")},
            "schema": "shopper.health/1", "time": "2027-01-01T00:41:00.000Z",
            "spool_depth": 30, "frames_processed": 2150000, "frames_skipped": 0}


def test_last_health_is_kept_and_reported(tmp_path):
    """Health messages through a real broker: the latest per camera is kept (a bad one is
    refused) and `report` shows it with the camera."""
    import json
    import time

    from tests.broker import Broker
    from tests.conftest import HqProcess, wait_for
    from tests.hq.test_hq import publish, publisher, report, windows

    broker = Broker(tmp_path / "broker").start()
    db = tmp_path / "hq.sqlite"
    try:
        hq = HqProcess(broker.port, db)
        client = publisher(broker)
        publish(client, "shopper/shop-1/door/counts", json.dumps(windows(hours=1)[0]).encode())
        for document in (HEALTH_1, HEALTH, dict(HEALTH, fps="fast"),
                         dict(HEALTH, camera_id="back"), dict(HEALTH_1, frames_received=1)):
            publish(client, "shopper/shop-1/door/health", json.dumps(document).encode())

        def kept():
            if not db.exists():
                return None
            with sqlite3.connect(db) as connection:
                return connection.execute("SELECT document FROM camera_health").fetchall()

        wait_for(lambda: kept() == [(json.dumps(HEALTH, separators=(",", ":")),)])
        time.sleep(0.5)
        client.loop_stop()
        stats, err = hq.stop()
    finally:
        broker.stop()
    # health/1 from a device not yet updated is kept (then replaced by the newer /2);
    # each version is checked against its own schema.
    assert stats["rejected"] == 3 and stats["stored"] == 1
    assert "not a shopper.health/2 message (fps breaks type)" in err
    assert "not a shopper.health/1 message ((document) breaks additionalProperties)" in err
    camera, = json.loads(report(db, "--json").stdout)["cameras"]
    assert {k: camera["health"][k] for k in ("time", "fps", "capacity_fps", "spool_depth")} == \
        {"time": HEALTH["time"], "fps": 24.9, "capacity_fps": 30, "spool_depth": 7}
    assert "last health 2027-01-01T00:42:00.312Z: 24.9 fps, spool 7 windows" in \
        report(db).stdout


def test_the_report_shows_health_of_either_version():
    """A camera whose last health is still /1 (a device not yet updated) is reported as
    one that sends /2, with capacity_fps null."""
    from appliance.hq.aggregate import CameraReport
    from appliance.hq.render import camera_json

    for document, capacity in ((HEALTH, 30), (HEALTH_1, None)):
        report = CameraReport("shop-1", "door", windows=1, first=HEALTH["time"],
                              last=HEALTH["time"],
                              health={**document, "received_at": HEALTH["time"]})
        health = camera_json(report)["health"]
        assert health["capacity_fps"] == capacity and health["fps"] == 24.9
