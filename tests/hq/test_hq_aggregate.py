"""The report summed by the database (aggregate.py) equals, byte for byte in JSON and text,
the report folded window by window in memory as `shopper-hq report` did before (the
oracle below), on some 2,800 real window documents, in SQLite and PostgreSQL: time
zones with DST and with half-hour offsets, suppressed counts, age bands, behaviour."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest

from appliance.device.analytics.lines import Crossing
from appliance.device.privacy import PrivacyConfig, protect
from appliance.device.window import WindowAggregator
from appliance.hq.aggregate import CameraReport, build_reports
from appliance.hq.render import as_json, format_text
from appliance.hq.store import StoredWindow, WindowStore
from appliance.hq.subscriber import window_problem
from tests.hq.test_hq_behaviour import groups, heatmap, journeys, zone
from tests.postgres import Postgres, postgres_bin

# 2027-03-27T00:00:00Z: the days around Europe's change to summer time (03-28 01:00 UTC)
START = 1_806_105_600.0
DAY = 86400.0
BANDS = ["0-17", "18-34", "35-54", "55+", "unknown"]


def camera_windows(rng: random.Random, store: str, camera: str, lines: list[str],
                   window: float, days: float, extra=None) -> list[dict]:
    """A window document per `window` seconds from the device's own aggregator, with a
    few frames each and random crossings, age bands and gender; `extra(rng, document)`
    adds behaviour sections. Small counts are suppressed as on a device (min_count 3)."""
    aggregator = WindowAggregator(store, camera, lines, window, "wall", age_bands=BANDS,
                                  gender=True)
    documents = []
    t = START + rng.uniform(0, window)
    while t < START + days * DAY:
        if rng.random() < 0.05:  # a camera outage: no frames for a while
            t += rng.uniform(window, 6 * window)
            continue
        active = [name for name in lines if name != "late" or t > START + DAY]
        crossings = [Crossing(rng.choice(active), rng.choice(("in", "in", "out")), t)
                     for _ in range(rng.choice((0, 0, 1, 2, 5)))] if active else []
        documents += aggregator.add(t, crossings)
        t += rng.uniform(1, window / 2)
    documents += aggregator.flush()
    for document in documents:
        document["age_bands"] = {band: rng.choice((0, 1, 4, 9)) for band in BANDS}
        visitors = sum(document["age_bands"].values())  # the same visitors by gender
        female = rng.randint(0, visitors)
        male = rng.randint(0, visitors - female)
        document["gender"] = {"female": female, "male": male,
                              "unknown": visitors - female - male}
        if extra:
            extra(rng, document)
    return [protect(d, PrivacyConfig(min_count=3)) for d in documents]


def behaviour_sections(rng: random.Random, document: dict) -> None:
    """Zones, journeys, groups and a heatmap whose grid changes on the second day."""
    def histogram():
        return tuple(rng.choice((0, 1, 3, 8)) for _ in range(6))

    def shelf_or_queue(kind, **extra):
        bins = histogram()  # one dwell per visit
        return zone(kind, sum(bins), (rng.choice((None, 1.5, 0.25)), rng.randint(0, 9)),
                    bins, **extra)

    document["zones"] = {"fruit": shelf_or_queue("shelf", interactions=rng.randint(0, 30)),
                         "lane1": shelf_or_queue("queue")}
    if rng.random() < 0.5:
        document["zones"]["bread"] = shelf_or_queue("shelf", interactions=rng.randint(0, 12))
    visitors = rng.randint(1, 40)
    entered = rng.randint(1, visitors)
    interacted = rng.randint(1, entered)
    reached = rng.randint(0, entered)
    document["journeys"] = journeys(visitors, rng.randint(0, 3), entered, interacted, reached,
                                    rng.randint(0, interacted))
    sizes = (rng.randint(1, 9), *(rng.randint(0, 4) for _ in range(4)))
    document["groups"] = groups(sizes, 2 * sizes[1] + 3 * sizes[2] + 4 * sizes[3]
                                + 5 * sizes[4])
    cols = 3 if document["window_start"] >= "2027-03-28" else 2
    cells = ";".join(",".join(rng.choice(("", "4", "30", "200")) for _ in range(cols))
                     for _ in range(2))
    document["heatmap"] = dict(heatmap(cells), cols=cols)


def restarted(documents: list[dict]) -> list[dict]:
    """Two more windows at the start of an hour with a new line each, as from a device
    restarted with a changed configuration: one sent first in (start, message_id) order,
    one last, so the lines' order follows the message_id at equal starts."""
    first = next(d for d in documents if d["window_start"].endswith("T10:00:00.000Z"))
    return [dict(first, message_id=uid, partial=True, suppressed=[],
                 lines={line: {"in": 3, "out": 0}})
            for uid, line in (("0" * 32, "entry"), ("f" * 32, "alcove"))]


def documents() -> list[dict]:
    rng = random.Random(14)
    door = camera_windows(rng, "shop-1", "door", ["door", "late"], 120.0, 2)
    return [
        *door, *restarted(door),
        *camera_windows(rng, "shop-1", "floor", ["aisle", "door"], 300.0, 3,
                        behaviour_sections),
        *camera_windows(rng, "shop-2", "entrance", ["main"], 600.0, 3),
        *camera_windows(rng, "shop-2", "empty", [], 900.0, 1),
    ]


def fill(target: str) -> int:
    store = WindowStore(target)
    try:
        stored = documents()
        for i, document in enumerate(stored):
            if i % 10 == 0:  # all would be valid; checking takes a while
                assert window_problem(document) is None, window_problem(document)
            assert store.add_window(document, "2027-04-01T00:00:00Z")
        store.set_status("shop-1", "door", "online", "2027-04-01T00:00:00Z")
        store.set_status("shop-9", "gone", "offline", "2027-04-01T00:00:00Z")
    finally:
        store.close()
    return len(stored)


SELECTIONS = [  # (time zone, store, camera, since, until)
    ("UTC", None, None, None, None),
    ("Europe/Paris", None, None, None, None),  # summer time from 2027-03-28 01:00 UTC
    ("Asia/Kolkata", None, None, None, None),  # UTC+5:30: local hours are not UTC hours
    ("America/St_Johns", "shop-1", None, "2027-03-27T12:00:00Z", "2027-03-29T00:00:00Z"),
    ("Europe/Paris", "shop-1", "floor", "2027-03-28", None),
    ("UTC", "shop-3", None, None, None),  # nothing selected
]


def check_equal_to_oracle(target: str) -> None:
    store = WindowStore(target)
    try:
        for tz, store_id, camera_id, since, until in SELECTIONS:
            zone = ZoneInfo(tz)
            summed = build_reports(store, zone, store_id, camera_id, since, until)
            folded = fold_windows(store.windows(store_id, camera_id, since, until), zone,
                                  store.statuses())
            assert json.dumps(as_json(summed), indent=1) == json.dumps(as_json(folded),
                                                                       indent=1), tz
            assert format_text(summed, tz) == format_text(folded, tz)
    finally:
        store.close()


def test_sqlite_report_equals_the_in_memory_one(tmp_path):
    db = str(tmp_path / "hq.sqlite")
    assert fill(db) > 2500
    check_equal_to_oracle(db)
    # What the oracle compares is not trivial: suppressed counts, DST, behaviour, ages.
    store = WindowStore(db)
    try:
        output = as_json(build_reports(store, ZoneInfo("Europe/Paris")))
    finally:
        store.close()
    door, floor = (next(r for r in output["cameras"] if r["camera_id"] == name)
                   for name in ("door", "floor"))
    assert door["suppressed_counts"] > 0 and door["windows"] > 1400
    assert list(door["lines"]) == ["door", "late", "entry", "alcove"]
    assert list(door["hours"]["2027-03-27 11:00"]) == ["entry", "door", "late", "alcove"]
    assert door["status"] == "online"
    # 48 UTC hours, the hour summer time skips (02:00) left out
    assert "2027-03-28 02:00" not in door["hours"]
    assert len(door["hours"]) == 48 and door["age_bands"]["18-34"] > 0
    assert floor["behaviour"]["heatmap"]["cols"] == 3
    assert floor["behaviour"]["heatmap_skipped_windows"] > 200


def test_postgresql_report_equals_the_in_memory_one():
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: make system-deps")
    server = Postgres().start()
    try:
        fill(server.url)
        check_equal_to_oracle(server.url)
    finally:
        server.remove()


def fold_windows(windows: Iterable[StoredWindow], zone: tzinfo,
                 statuses: dict[tuple[str, str], tuple[str, str]]) -> list[CameraReport]:
    """The oracle: how `shopper-hq report` built its values before, window by window."""
    reports: dict[tuple[str, str], CameraReport] = {}
    slots: dict[tuple[str, str, str], list[int]] = {}  # (store, camera, start) -> [n, whole]
    for w in windows:
        key = (w.store_id, w.camera_id)
        if w.observed_seconds:
            slot = slots.setdefault((*key, w.window_start), [0, 0])
            slot[0] += 1
            slot[1] += not w.partial
        report = reports.get(key)
        if report is None:
            report = reports[key] = CameraReport(w.store_id, w.camera_id, clock=w.clock)
        start, end = _parse(w.window_start), _parse(w.window_end)
        report.windows += 1
        report.partial_windows += w.partial
        report.window_seconds += (end - start).total_seconds()
        report.observed_seconds += w.observed_seconds
        report.first = min(report.first or w.window_start, w.window_start)
        report.last = max(report.last or w.window_end, w.window_end)
        hour = start.astimezone(zone).strftime("%Y-%m-%d %H:00")
        per_line = report.hours.setdefault(hour, {})
        for name, (entered, exited) in w.lines.items():
            report.suppressed += (entered is None) + (exited is None)
            for totals in (report.lines.setdefault(name, [0, 0]),
                           per_line.setdefault(name, [0, 0])):
                totals[0] += entered or 0
                totals[1] += exited or 0
        report.suppressed += report.age.add(w.age_bands, w.gender)
        report.behaviour.add(w)
    for (store_id, camera_id), (status, _at) in statuses.items():
        if (store_id, camera_id) in reports:
            reports[(store_id, camera_id)].status = status
    for (store_id, camera_id, start), (n, whole) in slots.items():
        if n > 1 and whole:  # a time observed twice: summed above, and shown
            report = reports[store_id, camera_id]
            hour = _parse(start).astimezone(zone).strftime("%Y-%m-%d %H:00")
            report.repeated_windows += n - 1
            report.observed_twice[hour] = report.observed_twice.get(hour, 0) + n - 1
    for report in reports.values():
        report.hours = dict(sorted(report.hours.items()))
        report.observed_twice = dict(sorted(report.observed_twice.items()))
    return [reports[key] for key in sorted(reports)]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
