"""A board without a real-time clock: the system clock steps (years forward at time sync,
or back) under a live camera. Frame times stay monotonic (tracking, rates, timeouts); the
windows carry the new time from the step on, with no flood of empty windows for the time
jumped over; the step is logged once and counted for health."""

from __future__ import annotations

import logging
import types

from appliance.device import sources
from appliance.device.sources import LiveClock, SourceStats
from appliance.device.window import WindowAggregator
from appliance.messages import iso

YEAR = 365 * 86400.0


class FakeClocks:
    def __init__(self, wall: float):
        self.mono, self.wall = 1000.0, wall

    def tick(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

    def module(self):
        return types.SimpleNamespace(time=lambda: self.wall, monotonic=lambda: self.mono)


def test_live_clock_keeps_frame_times_monotonic_and_reports_a_step_once(monkeypatch, caplog):
    clocks = FakeClocks(wall=1.7e9)  # 2023: the clock a board booted with
    monkeypatch.setattr(sources, "time", clocks.module())
    stats = SourceStats()
    clock = LiveClock(stats)
    first = clock.now()
    clocks.tick(1.0)
    assert clock.now() == first + 1.0
    clocks.wall += 3 * YEAR  # time sync steps the clock forward
    clocks.tick(1.0)
    with caplog.at_level(logging.WARNING, logger="shopper_edge.sources"):
        assert clock.now() == first + 2.0  # frame time: elapsed, not jumped
        clocks.tick(1.0)
        assert clock.now() == first + 3.0
    assert clock.offset == 3 * YEAR
    assert stats.clock_steps == 1
    assert len([r for r in caplog.records if "clock stepped by +94608000.0 s" in r.message]) == 1
    clocks.tick(0.3)
    clocks.wall += 0.3  # a slew-sized correction is not a step
    clock.now()
    assert stats.clock_steps == 1


def windows_through_a_step(step: float) -> list[dict]:
    offset = [0.0]
    windows = WindowAggregator("s", "c", ["door"], 10.0, "wall")
    windows.clock_offset = lambda: offset[0]
    out, t = [], 1.7e9
    for second in range(60):
        if second == 25:
            offset[0] = step
        out += windows.add(t + second, [])
    return out


def test_a_forward_step_closes_the_window_and_floods_nothing():
    out = windows_through_a_step(3 * YEAR)
    starts = [w["window_start"] for w in out]
    # 0-10, 10-20 closed on time, 20-25 closed at the step (partial), then windows on the
    # new time (the first from the step on): no window for the three years jumped over.
    assert len(out) == 6
    assert starts[:3] == [iso(1.7e9), iso(1.7e9 + 10), iso(1.7e9 + 20)]
    assert out[2]["partial"] and out[2]["frames"] == 5
    new = 1.7e9 + 3 * YEAR
    assert starts[3:] == [iso(new + 20), iso(new + 30), iso(new + 40)]
    assert out[3]["partial"] and out[3]["frames"] == 5  # observed from the step on
    assert sum(w["frames"] for w in out) == 50  # every frame once; 50-60 s still open


def test_a_backward_step_labels_windows_with_the_new_time():
    out = windows_through_a_step(-3600.0)
    back = 1.7e9 - 3600
    assert [w["window_start"] for w in out[3:]] == [iso(back + 20), iso(back + 30),
                                                     iso(back + 40)]
    assert out[2]["partial"] and out[3]["partial"] and not out[4]["partial"]
