"""A board without a real-time clock: the system clock steps (years forward at time sync, or
back an hour by hand) under a live camera. Frame times are monotonic (tracking, rates,
lost-track timeouts); windows are aligned to and labelled with the wall clock: a step closes
the open window and the next starts on the new time, with no window for the time jumped over
and none after the step labelled with the time before it; the step is logged once and
counted for health."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import types
from datetime import datetime
from pathlib import Path

import pytest

from appliance.device import clock
from appliance.device.analytics.lines import Crossing
from appliance.device.clock import WallClock
from appliance.device.sources import SourceStats
from appliance.device.window import WindowAggregator
from appliance.messages import iso
from tests.conftest import CLIPS, wait_for
from tests.device.test_rtsp import _config, _free_port, _kill, _start_server

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


# The real thing: `shopper-edge run` on a real RTSP stream with its system clock stepped.
# tests/fakeclock/sitecustomize.py shifts the wall clock of the appliance's processes by what
# a file says, read again each second; CLOCK_MONOTONIC stays real, as the kernel keeps it
# through a step.
FAKECLOCK = Path(__file__).resolve().parent.parent / "fakeclock"


def start_unix(window: dict) -> float:
    return datetime.fromisoformat(window["window_start"].replace("Z", "+00:00")).timestamp()


def _windows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_the_appliance_through_time_sync_years_forward_then_set_back_an_hour(tmp_path,
                                                                             models_dir):
    port = _free_port()
    server = _start_server(port, CLIPS / "OneLeaveShop1front.mpg")
    config = _config(tmp_path, models_dir, f"rtsp://127.0.0.1:{port}/cam")
    window = 4  # _config's window_seconds
    offset_file = tmp_path / "clock-offset"
    offset_file.write_text(f"-{3 * YEAR:.0f}\n")  # booted without an RTC: years behind
    env = dict(os.environ, SHOPPER_FAKE_CLOCK_FILE=str(offset_file),
               PYTHONPATH=os.pathsep.join(filter(None, [str(FAKECLOCK),
                                                        os.environ.get("PYTHONPATH")])))
    out_path, err_path = tmp_path / "windows.jsonl", tmp_path / "stderr.txt"
    started = time.time()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        appliance = subprocess.Popen([sys.executable, "-m", "appliance.device.cli", "run",
                                      "--config", str(config)], stdout=out, stderr=err, env=env)
    log = err_path.read_text

    def set_back(w: dict) -> bool:  # labelled with the clock set back an hour
        return abs(start_unix(w) - (back - 3600)) < 1800
    try:
        wait_for(lambda: len(_windows(out_path)) >= 2, 60, log, poll=0.5)
        synced = time.time()
        offset_file.write_text("+0\n")  # time sync: the clock steps forward three years
        wait_for(lambda: any(start_unix(w) >= synced - window for w in _windows(out_path)),
                 30, log, poll=0.5)
        wait_for(lambda: len([w for w in _windows(out_path)
                              if start_unix(w) >= synced - window]) >= 3, 30, log, poll=0.5)
        back = time.time()
        offset_file.write_text("-3600\n")  # set back an hour by hand
        wait_for(lambda: log().count("clock stepped by") == 2, 30, log, poll=0.5)
        # The shopper leaves the shop in every 11.8 s loop: counted after both steps too.
        wait_for(lambda: sum(w["lines"]["shop_door"]["out"] for w in _windows(out_path)
                             if set_back(w)) >= 1, 60, log, poll=0.5)
        assert appliance.poll() is None
    finally:
        appliance.send_signal(signal.SIGTERM)
        appliance.wait(30)
        _kill(server)
    ended = time.time()
    windows = _windows(out_path)
    starts = [start_unix(w) for w in windows]
    # In the order they left: the windows of the clock years behind, then of the synced
    # clock, then of the clock an hour back; none for the time jumped over, no stale label.
    phases = [(started - 3 * YEAR - window, synced - 3 * YEAR + 2),
              (synced - window, back + 2), (back - 3600 - window, ended - 3600)]
    phase_of = [next((i for i, (low, high) in enumerate(phases) if low <= s <= high), -1)
                for s in starts]
    assert phase_of == sorted(phase_of) and set(phase_of) == {0, 1, 2}, \
        [w["window_start"] for w in windows]
    # No flood: about one window per window length of the run, plus the two a step closes.
    assert len(windows) <= (ended - started) / window + 4, len(windows)
    assert log().count("clock stepped by") == 2, log()[-3000:]
    assert sum(w["lines"]["shop_door"]["in"] for w in windows) == 0
    assert sum(w["lines"]["shop_door"]["out"] for w in windows if set_back(w)) >= 1


def test_health_keeps_its_pace_and_figures_through_clock_steps():
    """Health at each boundary of the time the clock shows, before and after it steps: no
    hour without health after the clock is set back, and after the jump forward neither an
    uptime of years nor a rate averaged over them."""
    from types import SimpleNamespace

    from appliance.device.health import HealthMonitor
    from appliance.device.pipeline import StageTimes

    times, stats = StageTimes(), SourceStats()
    health = HealthMonitor("s", "c", SimpleNamespace(times=times, fps_cap=5.0), stats, {}, 60)
    sent, wall, mono = [], BOOT, 0.0
    for minute in range(1, 7):
        if minute == 3:
            wall += 3 * YEAR
        if minute == 5:
            wall -= 3600
        stats.frames_read += 300  # the camera delivers 5 frames a second
        wall, mono = wall + 60, mono + 60
        sent.append(health.document(0, 0, 0, now=wall + 0.3, monotonic=mono))
    assert sent[0] is None  # the first boundary: figures count from there
    assert [d["time"] for d in sent[1:]] == [
        iso(BOOT + 120), iso(BOOT + 3 * YEAR + 180), iso(BOOT + 3 * YEAR + 240),
        iso(BOOT + 3 * YEAR - 3600 + 300), iso(BOOT + 3 * YEAR - 3600 + 360)]
    assert [d["fps"] for d in sent[1:]] == [5.0] * 5
    assert [d["uptime_seconds"] for d in sent[1:]] == [60.0, 120.0, 180.0, 240.0, 300.0]
