"""Quarter-hour roll-ups (rollup.py), kept at ingest: a report read from them equals the
window-by-window fold (the oracle of test_hq_aggregate) over periods that cut quarter-hours
and hours, in half- and quarter-hour time zones and with a heatmap grid that changes inside
a quarter-hour; a repeat, also from a second subscriber at the same time, is summed once;
a database of an older HQ (no roll-ups) is filled once when opened, and read from its
windows when opened read-only. SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import random
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from appliance.hq.aggregate import build_reports
from appliance.hq.chain import chain_report
from appliance.hq.render import as_json, format_text
from appliance.hq.rollup import quarter, quarter_end
from appliance.hq.store import WindowStore
from tests.hq.test_hq_aggregate import documents, fold_windows

RECEIVED = "2027-04-01T00:00:00Z"
# (time zone, store, camera, since, until): each period starts and ends inside a
# quarter-hour that has windows on both sides of the cut
CUT_SELECTIONS = [
    ("Asia/Kathmandu", None, None, "2027-03-27T12:07:30Z", "2027-03-28T09:52:00.500Z"),
    ("Asia/Kolkata", "shop-1", None, "2027-03-27T00:40:00Z", "2027-03-29T10:05"),
    ("Europe/Paris", "shop-1", "floor", "2027-03-28T00:20:00Z", "2027-03-28T02:50:00Z"),
    ("UTC", None, None, "2027-03-28T11:11:11Z", None),
    ("America/St_Johns", "shop-2", None, None, "2027-03-28T06:05:00Z"),
]


def varied() -> list[dict]:
    """The aggregate test's windows, with another heatmap grid in the middle of one
    quarter-hour of the floor camera, in its last grid's run (so that the report's heatmap
    starts after it): that quarter-hour cannot be summed across grids."""
    out = documents()
    by_quarter: dict[str, list[dict]] = {}
    for d in out:
        if d["camera_id"] == "floor" and d["window_start"] >= "2027-03-28T15":
            by_quarter.setdefault(quarter(d["window_start"]), []).append(d)
    first, middle, last = next(q for q in by_quarter.values() if len(q) == 3)
    middle["heatmap"] = {"cols": 4, "rows": 1, "person_seconds": "1,,30,4"}
    assert first["heatmap"]["cols"] == last["heatmap"]["cols"] == 3
    # and the queue zone becomes a checkout in the camera's last window
    floor = [d for d in out if d["camera_id"] == "floor"]
    floor[-1]["zones"]["lane1"]["kind"] = "checkout"
    assert quarter(floor[-2]["window_start"]) == quarter(floor[-1]["window_start"])
    return out


def fill(target: str, docs: list[dict], batch: int = 97) -> None:
    store = WindowStore(target)
    try:
        for i in range(0, len(docs), batch):
            assert all(store.add_batch(docs[i:i + batch], [], RECEIVED))
    finally:
        store.close()


def reports(target: str, selections, read_only: bool = False) -> list[tuple[str, str]]:
    """(JSON, text) of each selection's report, after checking it equals the oracle's."""
    store = WindowStore(target, read_only=read_only)
    out = []
    try:
        for tz, store_id, camera_id, since, until in selections:
            zone = ZoneInfo(tz)
            summed = build_reports(store, zone, store_id, camera_id, since, until)
            folded = fold_windows(store.windows(store_id, camera_id, since, until), zone,
                                  store.statuses())
            assert summed, (tz, since, until)
            out.append((json.dumps(as_json(summed), indent=1), format_text(summed, tz)))
            assert out[-1] == (json.dumps(as_json(folded), indent=1), format_text(folded, tz)), \
                (tz, store_id, camera_id, since, until)
    finally:
        store.close()
    return out


def test_rollups_equal_the_windows_over_periods_that_cut_quarter_hours(target):
    docs = varied()
    fill(target, docs)
    store = WindowStore(target)
    try:
        for _tz, store_id, camera_id, since, until in CUT_SELECTIONS:
            # windows on both sides of each cut, in the same quarter-hour
            for cut in filter(None, (since, until)):
                q = quarter(cut)
                mine = [d["window_start"] for d in docs
                        if store_id in (None, d["store_id"]) and camera_id in (None,
                                                                                d["camera_id"])]
                assert any(q <= start < cut for start in mine), cut
                assert any(cut <= start < quarter_end(q) for start in mine), cut
        # one quarter-hour holds two heatmap grids
        grids = store.query("SELECT COUNT(*) FROM rollups WHERE grids > 1", [])[0][0]
        assert grids == 1
        rollups = store.query("SELECT COUNT(*) FROM rollups", [])[0][0]
        assert 0 < rollups < len(docs) / 3  # summed, not a copy per window
    finally:
        store.close()
    full = [("UTC", None, None, None, None), ("Asia/Kathmandu", None, None, None, None)]
    reports(target, CUT_SELECTIONS + full)


def test_windows_arriving_in_any_order_give_the_same_report(target):
    """A spool resent after an outage arrives late: the roll-ups of shuffled windows equal
    the fold in time order (first clock, the order lines appear in, a zone's latest kind)."""
    docs = varied()
    latest = [d for d in docs if d["camera_id"] == "floor"][-1]  # kind: checkout
    random.Random(19).shuffle(docs)
    docs.sort(key=lambda d: d is not latest)  # first: the zone's older kind arrives later
    fill(target, docs)
    out = reports(target, [("Asia/Kolkata", None, None, None, None), CUT_SELECTIONS[2]])
    floor = next(c for c in json.loads(out[0][0])["cameras"] if c["camera_id"] == "floor")
    assert floor["behaviour"]["zones"]["lane1"]["kind"] == "checkout"


def test_a_repeat_is_summed_once(target):
    docs = varied()
    fill(target, docs)
    selections = CUT_SELECTIONS[:1] + [("Europe/Paris", None, None, None, None)]
    first = reports(target, selections)
    store = WindowStore(target)
    try:
        before = store.query("SELECT store_id, camera_id, quarter, summary FROM rollups "
                             "ORDER BY 1, 2, 3", [])
        # every window again, in batches that mix repeats with a repeat of themselves
        for i in range(0, len(docs), 50):
            chunk = docs[i:i + 50]
            again = chunk + chunk[:5]
            assert store.add_batch(again, [], RECEIVED) == [False] * len(again)
        after = store.query("SELECT store_id, camera_id, quarter, summary FROM rollups "
                            "ORDER BY 1, 2, 3", [])
    finally:
        store.close()
    assert after == before
    assert reports(target, selections) == first


def test_two_subscribers_at_once_sum_each_window_once(target):
    """Two connections store interleaved batches of the same cameras and quarter-hours
    (a shared subscription), each window twice over: the roll-ups equal the oracle."""
    docs = varied()
    WindowStore(target).close()
    halves = [docs[0::2] + docs[1::4], docs[1::2] + docs[0::4]]  # overlapping: repeats
    stored, failures = [], []

    def subscriber(part):
        store = WindowStore(target)
        try:
            for i in range(0, len(part), 40):
                stored.append(sum(store.add_batch(part[i:i + 40], [], RECEIVED)))
        except Exception as error:  # noqa: BLE001 (reported below)
            failures.append(error)
        finally:
            store.close()

    threads = [threading.Thread(target=subscriber, args=(part,)) for part in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures
    assert sum(stored) == len(docs)
    reports(target, [("Asia/Kolkata", None, None, None, None)] + CUT_SELECTIONS[:2])


def test_an_older_database_is_filled_once_and_read_only_read_from_windows(target, capfd):
    docs = varied()
    fill(target, docs)
    selections = [("Asia/Kathmandu", None, None, None, None), CUT_SELECTIONS[0]]
    store = WindowStore(target)
    try:  # as a fill that failed (one transaction) leaves it: no roll-up
        with store._transaction() as cursor:
            cursor.execute("DELETE FROM rollups")
    finally:
        store.close()
    old = reports(target, selections, read_only=True)  # from the windows
    store = WindowStore(target)
    try:  # as an HQ before the roll-ups left it
        with store._transaction() as cursor:
            cursor.execute("DROP TABLE rollups")
            cursor.execute("DROP TABLE cameras")
    finally:
        store.close()
    assert reports(target, selections, read_only=True) == old  # from the windows
    store = WindowStore(target, read_only=True)
    try:
        assert not store.has_rollups
        assert store.cameras() == [("shop-1", "door"), ("shop-1", "floor"),
                                   ("shop-2", "empty"), ("shop-2", "entrance")]
    finally:
        store.close()
    capfd.readouterr()
    assert reports(target, selections) == old  # opened for writing: filled
    err = capfd.readouterr().err
    assert f"summing {len(docs)} stored windows into quarter-hour roll-ups" in err
    assert reports(target, selections) == old  # not filled again
    assert "summing" not in capfd.readouterr().err
    store = WindowStore(target, read_only=True)
    try:
        assert store.has_rollups and len(store.cameras()) == 4
    finally:
        store.close()


def expected_chain(docs: list[dict], store_id, since, until) -> dict:
    """The chain report's figures per store, from the documents themselves (the oracle)."""
    stores: dict[str, dict] = {}
    for d in docs:
        start = d["window_start"]
        if store_id not in (None, d["store_id"]) or since and start < since or \
                until and start >= until:
            continue
        s = stores.setdefault(d["store_id"], {"windows": 0, "partial_windows": 0, "in": 0,
                                              "out": 0, "suppressed_line_counts": 0,
                                              "first_window": start, "last_window": "",
                                              "observed": 0.0, "length": 0.0})
        s["windows"] += 1
        s["partial_windows"] += d["partial"]
        for counts in d["lines"].values():
            s["in"] += counts["in"] or 0
            s["out"] += counts["out"] or 0
            s["suppressed_line_counts"] += (counts["in"] is None) + (counts["out"] is None)
        s["first_window"] = min(s["first_window"], start)
        s["last_window"] = max(s["last_window"], d["window_end"])
        s["observed"] += d["observed_seconds"]
        s["length"] += (datetime.fromisoformat(d["window_end"])
                        - datetime.fromisoformat(start)).total_seconds()
    for s in stores.values():
        s["coverage"] = round(s["observed"] / s.pop("length"), 4)
        s["observed_seconds"] = round(s.pop("observed"), 3)
        s["lower_bound"] = s["suppressed_line_counts"] > 0
    return stores


def check_chain(target: str, docs: list[dict], selections, read_only: bool = False) -> list:
    """Each selection's chain report equals the oracle and the camera reports added up."""
    store = WindowStore(target, read_only=read_only)
    out = []
    try:
        for _tz, store_id, _camera, since, until in selections:
            report = chain_report(store, store_id, since, until)
            expected = expected_chain(docs, store_id, since, until)
            assert expected
            got = {row["store_id"]: {k: v for k, v in row.items()
                                     if k not in ("store_id", "cameras", "observed_hours")}
                   for row in report["stores"]}
            for row in [*got.values(), *expected.values()]:  # summed in another order
                assert type(row["in"]) is int
                row["observed_seconds"] = round(row["observed_seconds"], 1)
            assert got == expected, (store_id, since, until)
            cameras = build_reports(store, ZoneInfo("UTC"), store_id, None, since, until)
            for row in report["stores"]:
                mine = [c for c in cameras if c.store_id == row["store_id"]]
                assert row["cameras"] == len({d["camera_id"] for d in docs
                                              if d["store_id"] == row["store_id"]})
                assert row["windows"] == sum(c.windows for c in mine)
                assert row["in"] == sum(n for c in mine for n, _ in c.lines.values())
                assert row["out"] == sum(n for c in mine for _, n in c.lines.values())
                assert row["observed_hours"] == round(
                    sum(c.observed_seconds for c in mine) / 3600, 3)
            chain = report["chain"]
            assert chain["stores"] == len(expected)
            for key in ("windows", "in", "out", "suppressed_line_counts"):
                assert chain[key] == sum(s[key] for s in expected.values())
            out.append(report)
    finally:
        store.close()
    return out


CHAIN_SELECTIONS = CUT_SELECTIONS + [("UTC", None, None, None, None),
                                     ("UTC", None, None, "2027-03-28T00:00", "2027-03-29"),
                                     ("UTC", None, None, "2027-03-27", "2027-03-29T23:00")]


def test_chain_report_adds_up_the_stores_windows(target, capfd):
    """`report --chain`: per store and for the chain, summed by the database from the store
    quarter-hours (and the windows of the quarter-hours a period cuts), equal to the
    documents' own figures; a repeat adds nothing; an older database is filled once and
    read from its windows when opened read-only."""
    docs = varied()
    # suppressed line counts (null) in some windows: totals become lower bounds
    for d in docs[::7]:
        for counts in list(d["lines"].values())[:1]:
            counts["in"] = None
    fill(target, docs)
    first = check_chain(target, docs, CHAIN_SELECTIONS)
    assert any(s["lower_bound"] for s in first[-2]["stores"])
    assert len(first[-2]["stores"]) == 2
    store = WindowStore(target)
    try:
        rows = store.query("SELECT COUNT(*) FROM store_quarters", [])[0][0]
        assert 0 < rows < len(docs) / 3  # summed per store and quarter-hour
        days = store.query("SELECT COUNT(*) FROM store_days", [])[0][0]
        assert 0 < days < rows / 20  # and per store and day
        for i in range(0, len(docs), 50):  # every window again, repeats within a batch too
            assert not any(store.add_batch(docs[i:i + 50] + docs[i:i + 3], [], RECEIVED))
        with store._transaction() as cursor:  # as the HQ before store quarter-hours left it
            cursor.execute("DROP TABLE store_quarters")
            cursor.execute("DROP TABLE store_days")
    finally:
        store.close()
    assert check_chain(target, docs, CHAIN_SELECTIONS, read_only=True) == first  # windows
    capfd.readouterr()
    store = WindowStore(target)  # opened for writing: filled once, camera roll-ups kept
    try:
        rollups = store.query("SELECT COUNT(*) FROM rollups", [])[0][0]
    finally:
        store.close()
    assert f"summing {len(docs)} stored windows" in capfd.readouterr().err
    assert check_chain(target, docs, CHAIN_SELECTIONS) == first
    assert "summing" not in capfd.readouterr().err
    reports(target, CUT_SELECTIONS[:1])  # the camera roll-ups were not summed twice
    store = WindowStore(target)
    try:
        assert store.query("SELECT COUNT(*) FROM rollups", [])[0][0] == rollups
    finally:
        store.close()
