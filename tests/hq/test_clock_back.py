"""A device's clock set back an hour: the windows made after the step carry the start times
of windows already sent, with new message ids. People really passed in both copies of that
hour, so HQ keeps and sums both (nothing dropped) and the report shows the hour as observed
twice (`repeated_windows`, `observed_twice`) instead of silently summing it. A restart
inside a window (two partial windows with one start, each having seen part of it) is not a
repeat. The windows come from the device's own WindowAggregator through a real step of its
WallClock (tests/device/test_clock.py's clocks); SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from appliance.device import clock
from appliance.device.analytics.lines import Crossing
from appliance.device.clock import WallClock
from appliance.device.sources import SourceStats
from appliance.device.window import WindowAggregator
from appliance.hq.aggregate import build_reports
from appliance.hq.render import as_json, format_text
from appliance.hq.store import WindowStore
from tests.device.test_clock import BOOT, Clocks
from tests.hq.test_hq_aggregate import fold_windows

WINDOW = 60.0
RECEIVED = "2027-04-01T00:00:00Z"


@pytest.fixture
def clocks(monkeypatch) -> Clocks:
    """The device's two clocks, the wall clock set by the test (test_clock.py's)."""
    clocks = Clocks(BOOT)
    monkeypatch.setattr(clock, "time", clocks.module())
    return clocks


def device_windows(clocks, seconds: int, set_back_at: int) -> list[dict]:
    """A camera seeing one person come in every 10 s on the monotonic clock; the wall clock
    is set back an hour `set_back_at` seconds in."""
    windows = WindowAggregator("shop", "door", ["door"], WINDOW, "wall",
                               wall_clock=WallClock(SourceStats()))
    out = []
    for second in range(seconds):
        if second == set_back_at:
            clocks.wall -= 3600
        crossings = [Crossing("door", "in", clocks.mono)] if second % 10 == 0 else []
        out += windows.add(clocks.mono, crossings)
        clocks.tick(1.0)
    return out + windows.flush()


def report(target: str, documents: list[dict]) -> dict:
    store = WindowStore(target)
    try:
        assert all(store.add_batch(documents, [], RECEIVED))
        # a resend (the spool after an outage) is still a repeat by message id, not a copy
        assert store.add_batch(documents[:3], [], RECEIVED) == [False] * 3
        reports = build_reports(store, ZoneInfo("UTC"))
        folded = fold_windows(store.windows(), ZoneInfo("UTC"), store.statuses())
        assert as_json(reports) == as_json(folded)  # roll-ups equal the window-by-window fold
        text = format_text(reports, "UTC")
        return as_json(reports)["cameras"][0] | {"text": text}
    finally:
        store.close()


def test_an_hour_counted_twice_is_kept_whole_and_shown_as_observed_twice(clocks, target):
    # From 00:30:00 UTC for 3 h; at 01:30:30 the clock is set back to 00:30:30.
    clocks.wall = BOOT + 1800
    documents = device_windows(clocks, seconds=3 * 3600, set_back_at=3630)
    starts = [d["window_start"] for d in documents]
    assert len(starts) > len(set(starts))  # the device did label windows with used times
    camera = report(target, documents)
    # Every person is counted: one every 10 s for 3 h, whichever label their window has.
    assert camera["lines"]["door"]["in"] == 3 * 360
    # 00:30-01:30 observed before the step and again after it (the step's windows at
    # 01:30, partial before it, and at 00:30, partial after it, included): 61 windows.
    assert camera["repeated_windows"] == 61
    assert camera["observed_twice"] == {"2021-01-01 00:00": 30, "2021-01-01 01:00": 31}
    # 00:30-00:59: 180 + 177 (the second copy from 00:30:30); 02:00-02:29 once.
    assert camera["footfall_by_hour"] == {"2021-01-01 00:00": 357, "2021-01-01 01:00": 543,
                                          "2021-01-01 02:00": 180}
    text = camera["text"]
    assert "61 windows observed a time another window had observed" in text
    rows = {line.split()[1]: line for line in text.splitlines() if " 2021-01-01 " in line}
    assert rows["00:00"].endswith("twice (30 windows)")
    assert rows["01:00"].endswith("twice (31 windows)")
    assert "twice" not in rows["02:00"]


def test_a_restart_inside_a_window_is_not_observed_twice(clocks, target):
    clocks.wall = BOOT
    first = device_windows(clocks, seconds=90, set_back_at=-1)  # stopped 30 s into 00:01
    second = device_windows(clocks, seconds=120, set_back_at=-1)  # started again at once
    assert first[-1]["window_start"] == second[0]["window_start"]
    assert first[-1]["partial"] and second[0]["partial"]
    camera = report(target, first + second)
    assert camera["repeated_windows"] == 0 and camera["observed_twice"] == {}
    assert camera["lines"]["door"]["in"] == 9 + 12
    assert "twice" not in json.dumps(camera["observed_twice"]) + camera["text"]
