"""HQ and `shopper.counts/2`: both schema versions are checked against their own schema
and stored side by side; the report pools the behaviour figures (zones, journeys, groups,
heatmap) over windows, with nulls as unknown. Every expected figure below is worked out by
hand from the documents in `floor_windows` and `back_window`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import uuid

import pytest

from appliance.hq.behaviour import Behaviour, percentile
from appliance.hq.store import StoredWindow, WindowStore
from appliance.hq.subscriber import window_problem
from tests.conftest import HqProcess, wait_for
from tests.postgres import Postgres, postgres_bin

T0 = 1_798_761_600  # 2027-01-01T00:00:00Z
BINS = ("0-10", "10-30", "30-60", "60-120", "120-300", "300+")


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def window(camera: str, minute: int, schema: int = 2, observed: float = 60.0, **sections):
    """A wall-clock window of one minute; `suppressed` lists the nulls of `sections`."""
    start = T0 + 60 * minute
    document = {"schema": f"shopper.counts/{schema}", "message_id": uuid.uuid4().hex,
                "store_id": "shop-1", "camera_id": camera, "clock": "wall",
                "window_start": stamp(start), "window_end": stamp(start + 60),
                "observed_seconds": observed, "partial": observed < 60, "frames": 10 * minute,
                "lines": {"door": {"in": 7, "out": 5}}, "suppressed": [], **sections}
    document["suppressed"] = sorted(_nulls(sections))
    return document


def _nulls(value, path=()):
    """Paths of the null counts (a null share is derived, not listed)."""
    if value is None and not path[-1].endswith("_share"):
        yield ".".join(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nulls(item, (*path, key))


def zone(kind, visits, occupancy, histogram, **extra):
    """A zone; `histogram` gives the first bins' counts, the rest are 0."""
    counts = dict(zip(BINS, histogram + (0,) * (len(BINS) - len(histogram)), strict=True))
    return {"kind": kind, "visits": visits, "occupancy_mean": occupancy[0],
            "occupancy_max": occupancy[1], "dwell": {"histogram": counts, "p50": 1.0,
                                                     "p90": 2.0}, **extra}


def journeys(visitors, staff, entered, interacted, reached, without):
    share = None if without is None or interacted is None else round(without / interacted, 4)
    return {"visitors": visitors, "staff": staff, "entered": entered, "interacted": interacted,
            "reached_checkout": reached, "interacted_without_checkout": without,
            "interacted_without_checkout_share": share}


def groups(sizes, accompanied):
    alone = sizes[0]
    share = None if alone is None or accompanied is None else \
        round(accompanied / (alone + accompanied), 4)
    return {"sizes": dict(zip(("1", "2", "3", "4", "5+"), sizes, strict=True)),
            "accompanied": accompanied, "accompanied_share": share}


def heatmap(cells: str) -> dict:
    return {"cols": 3, "rows": 2, "person_seconds": cells}


def floor_windows() -> list[dict]:
    """Three v2 windows (the third half observed) and one v1 window of camera `floor`."""
    return [
        window("floor", 0,
               zones={"fruit": zone("shelf", 9, (1.0, 3), (3, 6), interactions=8),
                      "bread": zone("shelf", 5, (0.5, 2), (5,), interactions=None),
                      "lane1": zone("queue", 6, (2.0, 4), (0, 0, 2, 4))},
               journeys=journeys(12, 1, 7, 8, 6, 5), groups=groups((6, 3, 0, 0, 0), 6),
               heatmap=heatmap("1,2,;4,5,6")),
        window("floor", 1,
               zones={"fruit": zone("shelf", 7, (2.0, 5), (None, 5), interactions=9),
                      "bread": zone("shelf", 5, (0.5, 1), (5,), interactions=12),
                      "lane1": zone("queue", 10, (3.0, 6), (0, 0, 5, 0, 0, 5))},
               journeys=journeys(10, 0, 6, 6, 5, None), groups=groups((None, 4, 0, 0, 0), 8),
               heatmap=heatmap("10,,;40,50,60")),
        window("floor", 2, observed=30.0,
               zones={"lane1": zone("queue", None, (1.0, 2), (None,))},
               journeys=journeys(9, None, 5, 4, 3, 2), groups=groups((5, 0, 2, 0, 1), 11),
               heatmap=heatmap("100,200,;400,500,600")),
        window("floor", 3, schema=1),
    ]


def back_window() -> dict:
    return window("back", 0, zones={"wine": zone("shelf", 20, (3.0, 6), (20,), interactions=20)},
                  journeys=journeys(10, 0, 10, 10, 0, 10), groups=groups((4, 2, 0, 0, 0), 4))


def store_all(target: str) -> None:
    store = WindowStore(target)
    try:
        # door: a v1 window, and a v2 one from a device with no behaviour configured
        for document in [*floor_windows(), back_window(), window("door", 0, schema=1),
                         window("door", 1)]:
            assert window_problem(document) is None, document
            assert store.add_window(document, "2027-01-01T01:00:00Z")
    finally:
        store.close()


def report(db, *extra) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "appliance.hq.cli", "report", "--db", str(db),
                             *map(str, extra)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def check_figures(output: dict) -> None:
    cameras = {r["camera_id"]: r for r in output["cameras"]}
    assert cameras["door"]["windows"] == 2 and cameras["door"]["behaviour"] is None
    floor = cameras["floor"]
    assert floor["windows"] == 4 and floor["lines"] == {"door": {"in": 28, "out": 20}}
    b = floor["behaviour"]
    assert b["windows"] == 3
    fruit, bread, lane = (b["zones"][name] for name in ("fruit", "bread", "lane1"))
    # fruit: 0-10: 3 (and a null), 10-30: 11, so 14 visits known. p50 is visit 7: 4 of
    # the 11 into 10-30, 10 + 20 * 4/11 = 17.27; p90 is visit 12.6: 10 + 20 * 9.6/11 = 27.45.
    assert fruit["dwell"] == {"visits": 14, "p50": 17.3, "p90": 27.5, "at_least": [],
                              "histogram": {"0-10": 3, "10-30": 11, "30-60": 0, "60-120": 0,
                                            "120-300": 0, "300+": 0}}
    assert fruit["visits"] == 16 and fruit["interactions"] == 17
    assert fruit["suppressed"] == {"visits": 0, "interactions": 0, "dwell_bins": 1}
    assert fruit["occupancy_mean"] == 1.5 and fruit["occupancy_max"] == 5
    assert bread["interactions"] == 12 and bread["suppressed"]["interactions"] == 1
    assert bread["dwell"]["p50"] == 5.0  # visit 5 of 10, all in 0-10
    # Shelves by interactions, not by name; the queue is no shelf.
    assert b["top_shelves"] == [{"zone": "fruit", "interactions": 17, "suppressed": 0},
                                {"zone": "bread", "interactions": 12, "suppressed": 1}]
    # lane1 waits: 30-60: 7, 60-120: 4, 300+: 5 (16). p50 = visit 8: 60 + 60 * 1/4 = 75;
    # p90 = visit 14.4, in the open bin: at least 300.
    assert lane["dwell"]["visits"] == 16 and lane["dwell"]["p50"] == 75.0
    assert lane["dwell"]["p90"] == 300 and lane["dwell"]["at_least"] == ["p90"]
    # Queue length weighted by observed seconds: (2 * 60 + 3 * 60 + 1 * 30) / 150 = 2.2.
    assert lane["occupancy_mean"] == 2.2 and lane["occupancy_max"] == 6
    assert lane["visits"] == 16 and lane["suppressed"] == {"visits": 1, "interactions": 0,
                                                           "dwell_bins": 1}
    assert lane["interactions"] is None
    assert b["journeys"] == {"visitors": 31, "staff": 1, "entered": 18, "interacted": 18,
                             "reached_checkout": 14, "interacted_without_checkout": 7,
                             "suppressed": 2}
    # The second window's part is unknown: it is left out, part and whole: 7 / 12.
    assert b["interacted_without_checkout"] == {"share": 0.5833, "part": 7, "whole": 12,
                                                "windows": 3, "left_out_windows": 1}
    assert b["groups"] == {"sizes": {"1": 11, "2": 7, "3": 2, "4": 0, "5+": 1},
                           "accompanied": 25, "suppressed": 1}
    # People in groups = alone + accompanied, where both are known: 17 / (12 + 16).
    assert b["accompanied"] == {"share": 0.6071, "part": 17, "whole": 28, "windows": 3,
                                "left_out_windows": 1}
    h = b["heatmap"]
    assert h["person_seconds"] == [[111, 202, None], [444, 555, 666]]
    assert h["blanked_windows"] == [[0, 1, 3], [0, 0, 0]]
    assert (h["total_person_seconds"], h["blanked_cells"], h["partly_blanked_cells"]) == \
        (1978, 1, 1)
    assert cameras["back"]["behaviour"]["heatmap"] is None

    store, = output["stores"]
    assert store["age"] is None
    s = store["behaviour"]
    assert s["cameras"] == 2 and s["first_window"] == "2027-01-01T00:00:00.000Z"
    assert s["last_window"] == "2027-01-01T00:04:00.000Z"
    assert s["accompanied"] == {"share": 0.5833, "part": 21, "whole": 36, "windows": 4,
                                "left_out_windows": 1}
    assert s["interacted_without_checkout"]["share"] == round(17 / 22, 4)
    assert [(t["camera_id"], t["zone"], t["interactions"]) for t in s["top_shelves"]] == \
        [("back", "wine", 20), ("floor", "fruit", 17), ("floor", "bread", 12)]


def test_report_pools_v1_and_v2_windows(tmp_path):
    db = tmp_path / "hq.sqlite"
    store_all(str(db))
    check_figures(json.loads(report(db, "--json").stdout))

    result = report(db, "--camera", "floor", "--plot", tmp_path / "charts")
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    for expected in (
        "fruit shelf 16 17.3 s 27.5 s 1.50 5 17",
        "lane1 queue 16 75.0 s 300+ s 2.20 6 -",
        "top shelves by interactions: fruit 17, bread 12 (1 suppressed)",
        "queue lane1: wait p50 75.0 s, p90 300+ s (16 waits); length mean 2.20, max 6",
        "58.3% (7 of 12 who interacted, 1 of 3 windows left out: suppressed) interacted "
        "without reaching checkout",
        "groups by size: 1: 11, 2: 7, 3: 2, 4: 0, 5+: 1; 60.7% (17 of 28 people in groups, "
        "1 of 3 windows left out: suppressed) accompanied",
        "heatmap 3x2 over 3 windows: 1978 person-seconds; cells blanked in every window 1, "
        "in some 1",
        "suppressed on the device: 4 zone counts, 2 journey counts, 1 group counts: sums "
        "above are lower bounds, percentiles are of the known visits",
        "store shop-1 behaviour (1 camera), 2027-01-01T00:00:00.000Z .. "
        "2027-01-01T00:04:00.000Z",
    ):
        assert expected in lines, expected
    chart = tmp_path / "charts" / "shop-1-floor-heatmap.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
    assert f"wrote {chart}" in result.stderr


def test_percentile_from_histogram():
    assert percentile({"0-10": 0, "10-30": 4}, 0.5) == (20.0, False)
    assert percentile({"300+": 2, "0-10": 2}, 0.9) == (300.0, True)
    assert percentile({"0-10": 0}, 0.5) is None
    assert percentile({"0-10": 1, "5-30": 1}, 0.5) is None  # bins changed: overlap


def test_heatmap_keeps_the_latest_grid():
    def stored(cols, rows, cells):
        return StoredWindow("s", "c", "wall", "t0", "t1", 60.0, False, {},
                            heatmap={"cols": cols, "rows": rows, "person_seconds": cells})

    b = Behaviour()
    for window in (stored(2, 1, "1,2"), stored(2, 1, "3,"), stored(1, 2, "5;"),
                   stored(1, 2, "1,2;3")):  # the last one is malformed
        b.add(window)
    assert b.heatmap.as_dict()["person_seconds"] == [[5], [None]]
    assert b.heatmap_skipped == 3 and b.windows == 4


def test_each_version_is_checked_against_its_own_schema():
    good = floor_windows()[0]
    assert window_problem(good) is None and window_problem(floor_windows()[3]) is None
    unknown_key = copy.deepcopy(good)
    unknown_key["zones"]["fruit"]["faces"] = 1
    wrong_type = copy.deepcopy(good)
    wrong_type["journeys"]["visitors"] = "12"
    bad_kind = copy.deepcopy(good)
    bad_kind["zones"]["fruit"]["kind"] = "fridge"
    short_grid = dict(good, heatmap=heatmap("1,2,3"))
    as_v1 = dict(good, schema="shopper.counts/1")
    for document, problem in (
        (unknown_key, "not a shopper.counts/2 window (zones/fruit breaks additionalProperties)"),
        (wrong_type, "not a shopper.counts/2 window (journeys/visitors breaks type)"),
        (bad_kind, "not a shopper.counts/2 window (zones/fruit/kind breaks enum)"),
        (short_grid, "not a shopper.counts/2 window (heatmap: person_seconds is not 2 rows of "
                     "3 cells)"),
        (as_v1, "not a shopper.counts/1 window ((document) breaks additionalProperties)"),
        (dict(good, schema="shopper.counts/3"), "not a counts window (unknown schema)"),
        ([good], "not a counts window (unknown schema)"),
        (dict(good, schema=["shopper.counts/2"]), "not a counts window (unknown schema)"),
    ):
        assert window_problem(document) == problem


def test_subscriber_stores_both_versions(tmp_path):
    """End to end through Mosquitto and `shopper-hq subscribe`."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.broker import Broker

    broker = Broker(tmp_path / "broker").start()
    try:
        db = tmp_path / "hq.sqlite"
        hq = HqProcess(broker.port, str(db))
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        forged = copy.deepcopy(floor_windows()[0])
        forged["zones"]["fruit"]["faces"] = 1
        for document in [forged, *floor_windows(), back_window()]:
            topic = f"shopper/shop-1/{document['camera_id']}/counts"
            client.publish(topic, json.dumps(document), qos=1).wait_for_publish(5)
        client.loop_stop()
        wait_for(lambda: db.exists() and len(list(_ids(db))) == 5)
        stats, err = hq.stop()
    finally:
        broker.stop()
    assert stats == {"stored": 5, "duplicates": 0, "rejected": 1, "statuses": 0}
    assert "not a shopper.counts/2 window (zones/fruit breaks additionalProperties)" in err
    output = json.loads(report(db, "--json").stdout)
    floor = next(r for r in output["cameras"] if r["camera_id"] == "floor")
    assert floor["behaviour"]["heatmap"]["total_person_seconds"] == 1978


def _ids(db):
    import sqlite3

    with sqlite3.connect(db) as connection:
        yield from (i for (i,) in connection.execute("SELECT message_id FROM windows"))


def test_postgresql_holds_the_same_figures(tmp_path):
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: make system-deps")
    server = Postgres().start()
    try:
        store_all(server.url)
        check_figures(json.loads(report(server.url, "--json").stdout))
    finally:
        server.remove()
