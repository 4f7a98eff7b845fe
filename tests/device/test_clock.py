"""A board without a real-time clock: the system clock steps (years forward at time sync, or
back an hour by hand) under a live camera. Frame times are monotonic (tracking, rates,
lost-track timeouts); windows are aligned to and labelled with the wall clock: a step closes
the open window and the next starts on the new time, with no window for the time jumped over
and none after the step labelled with the time before it; the step is logged once and
counted for health."""

from __future__ import annotations

import logging
import types

import pytest

from appliance.device.analytics.lines import Crossing
from appliance.device.sources import SourceStats, clock
from appliance.device.sources.clock import WallClock
from appliance.device.window import WindowAggregator
from appliance.messages import iso

YEAR = 365 * 86400.0
BOOT = 1_609_459_200.0  # 2021-01-01: the time a board without an RTC may boot with


class Clocks:
    """The system's two clocks: monotonic never steps; wall (CLOCK_REALTIME) can."""

    def __init__(self, wall: float):
        self.mono, self.wall = 50.0, wall

    def tick(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

    def module(self):
        return types.SimpleNamespace(time=lambda: self.wall, monotonic=lambda: self.mono)


@pytest.fixture
def clocks(monkeypatch) -> Clocks:
    clocks = Clocks(BOOT)
    monkeypatch.setattr(clock, "time", clocks.module())
    return clocks


def test_a_step_is_reported_once_and_a_slew_is_followed_silently(clocks, caplog):
    stats = SourceStats()
    wall = WallClock(stats)
    assert wall.offset == BOOT - 50.0
    clocks.tick(1.0)
    assert wall.check() is False
    clocks.wall += 3 * YEAR  # time sync steps the clock forward
    with caplog.at_level(logging.WARNING, logger="shopper_edge.sources"):
        assert wall.check() is True
        clocks.tick(1.0)
        assert wall.check() is False  # the new offset holds: reported once
    assert wall.offset == BOOT + 3 * YEAR - 50.0
    assert stats.clock_steps == 1
    steps = [r.message for r in caplog.records if "clock stepped by" in r.message]
    assert len(steps) == 1 and "+94608000.0 s" in steps[0]
    for _ in range(20):  # slewing: small corrections add up without ever being a step
        clocks.wall += 0.3
        assert wall.check() is False
    assert stats.clock_steps == 1 and wall.offset == pytest.approx(BOOT + 3 * YEAR + 6 - 50)
    clocks.wall -= 3600  # set back an hour
    assert wall.check() is True and stats.clock_steps == 2


def run_through_a_step(clocks: Clocks, step: float, frames_from: int = 0,
                       frames_until: int = 60) -> list[dict]:
    """One frame a second on the monotonic clock for 60 s, a door crossing each second; the
    wall clock steps by `step` at second 25. Only seconds in [frames_from, frames_until) have
    a frame; the others are a camera down (close_due, as the source's idle ticks)."""
    windows = WindowAggregator("s", "c", ["door"], 10.0, "wall", wall_clock=WallClock(
        SourceStats()))
    out = []
    for second in range(60):
        if second == 25:
            clocks.wall += step
        if frames_from <= second < frames_until:
            out += windows.add(clocks.mono, [Crossing("door", "in", clocks.mono)])
        else:
            out += windows.close_due(clocks.mono)
        clocks.tick(1.0)
    return out + windows.flush()


def test_a_forward_step_closes_the_window_and_the_next_carries_the_new_time(clocks):
    out = run_through_a_step(clocks, 3 * YEAR)
    starts = [w["window_start"] for w in out]
    # 0-10, 10-20 close on time; 20-30 closes at the step, after 5 of its seconds; the
    # windows then carry the synced time, from the step on: none for the years jumped over.
    new = BOOT + 3 * YEAR
    assert starts == [iso(BOOT), iso(BOOT + 10), iso(BOOT + 20),
                      iso(new + 20), iso(new + 30), iso(new + 40), iso(new + 50)]
    assert [w["partial"] for w in out] == [False, False, True, True, False, False, True]
    assert [w["lines"]["door"]["in"] for w in out] == [10, 10, 5, 5, 10, 10, 10]


def test_a_backward_step_labels_the_windows_after_it_with_the_time_set(clocks):
    out = run_through_a_step(clocks, -3600.0)
    back = BOOT - 3600
    assert [w["window_start"] for w in out] == [
        iso(BOOT), iso(BOOT + 10), iso(BOOT + 20),
        iso(back + 20), iso(back + 30), iso(back + 40), iso(back + 50)]
    assert sum(w["lines"]["door"]["in"] for w in out) == 60  # every crossing once


def test_a_step_while_the_camera_is_down_keeps_windows_closing_on_time(clocks):
    """Frames only in the first 15 s: the idle ticks close the windows on time on both
    sides of the step, frameless (observed 0), and none for the jump."""
    out = run_through_a_step(clocks, 3 * YEAR, frames_until=15)
    new = BOOT + 3 * YEAR
    assert [w["window_start"] for w in out] == [
        iso(BOOT), iso(BOOT + 10), iso(BOOT + 20),
        iso(new + 20), iso(new + 30), iso(new + 40), iso(new + 50)]
    assert [w["observed_seconds"] for w in out[2:]] == [0.0] * 5
    assert [w["lines"]["door"]["in"] for w in out[:2]] == [10, 5]


def test_windows_without_a_wall_clock_keep_the_frame_times():
    """Files (media time) and callers that give wall times themselves: unchanged."""
    windows = WindowAggregator("s", "c", ["door"], 10.0, "media")
    windows.add(3.0, [])
    [closed] = windows.add(12.0, [])
    assert closed["window_start"] == iso(0.0) and closed["partial"]
