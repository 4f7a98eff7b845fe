"""Cheaper frames: decoding on its own thread, and skipping the detector when nothing moved.
Both must leave the counts as they are; their speed is measured by `make bench`."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest
import yaml

from appliance.device.detect.motion import MotionGate
from appliance.device.detect.motion_config import MotionConfig
from appliance.device.sources.prefetch import Prefetch
from appliance.errors import SourceError
from tests.conftest import CLIPS, DATA, shopper_edge, truth_counts


def test_prefetch_keeps_order_and_holds_at_most_its_depth():
    produced, gate = [], threading.Event()

    def frames():
        for i in range(10):
            produced.append(i)
            yield np.full((2, 2, 3), i, np.uint8), i / 25

    items = iter(Prefetch(frames(), depth=2))
    first = next(items)
    assert first[1] == 0
    gate.wait(0.3)
    assert len(produced) <= 4  # the one handed out, two queued, one waiting to be queued
    rest = [t for _, t in items]
    assert rest == [i / 25 for i in range(1, 10)]


def test_prefetch_passes_the_source_error_and_stops_when_abandoned():
    def broken():
        yield np.zeros((2, 2, 3), np.uint8), 0.0
        raise SourceError("clip.mpg: no decodable video frames")

    with pytest.raises(SourceError, match="no decodable"):
        list(Prefetch(broken()))
    endless_reads = []

    def endless():
        i = 0
        while True:
            endless_reads.append(i)
            yield np.zeros((2, 2, 3), np.uint8), i
            i += 1

    for _frame, t in Prefetch(endless()):
        if t == 3:
            break
    count = len(endless_reads)
    threading.Event().wait(0.5)
    assert len(endless_reads) == count  # the decode thread stopped


def _mall_frame() -> np.ndarray:
    return cv2.imread(str(sorted((DATA / "mall" / "frames").glob("*.jpg"))[0]))


def _walk_in(frame: np.ndarray, x: int, y: int) -> np.ndarray:
    moved = frame.copy()
    moved[y:y + 100, x:x + 60] = 255 - moved[y:y + 100, x:x + 60]
    return moved


def _gate(frame: np.ndarray, **geometry) -> MotionGate:
    height, width = frame.shape[:2]
    return MotionGate(MotionConfig(enabled=True, max_skip_seconds=2.0, walking_speed=0.2),
                      width, height, **geometry)


def test_motion_gate_skips_a_still_scene_and_wakes_on_movement():
    frame = _mall_frame()
    gate = _gate(frame)
    noisy = np.clip(frame.astype(np.int16) + np.random.default_rng(0).integers(
        -3, 4, frame.shape), 0, 255).astype(np.uint8)  # sensor noise is not movement
    assert not gate.still(frame, 0.0)  # nothing to compare with yet
    assert gate.still(noisy, 0.04)
    moved = _walk_in(frame, 300, 200)  # someone walks in
    assert not gate.still(moved, 0.08)
    assert gate.still(moved, 0.12)
    assert not gate.still(moved, 2.5)  # the detector runs at least every 2 s
    assert gate.skipped == 2


def test_motion_in_the_mask_or_outside_the_roi_does_not_wake_the_detector():
    frame = _mall_frame()
    height, width = frame.shape[:2]
    clock = np.array([[0, 0], [width, 0], [width, 110], [0, 110]], np.float32)
    masked = _gate(frame, ignore=[clock])
    roi = np.array([[0, 240], [width, 240], [width, height], [0, height]], np.float32)
    outside_roi = _gate(frame, watch=roi)
    for gate in (masked, outside_roi):
        assert not gate.still(frame, 0.0)
        assert gate.still(_walk_in(frame, 300, 5), 0.04)  # up in the masked band
        assert not gate.still(_walk_in(frame, 300, 300), 0.08)  # in the watched part


def test_the_detector_runs_on_every_frame_while_a_tracked_person_walks():
    frame = _mall_frame()
    gate = _gate(frame)
    assert not gate.still(frame, 0.0)
    assert gate.still(frame, 0.04, fastest=0.1)  # someone tracked, standing: still
    assert not gate.still(frame, 0.08, fastest=1.0)  # walking: the detector runs
    assert gate.still(frame, 0.12, fastest=0.2)


@pytest.mark.parametrize("clip", ["OneLeaveShop1front.mpg", "EnterExitCrossingPaths1front.mpg"])
def test_counts_are_unchanged_with_decode_thread_and_motion_skip(tmp_path, write_config, clip):
    config = write_config(performance={"decode_thread": True,
                                       "motion_skip": {"enabled": True}})
    result = shopper_edge("replay", CLIPS / clip, "--config", config)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["lines"]["shop_door"] == truth_counts(clip)


def test_performance_config_errors_are_one_line(tmp_path, write_config):
    raw = yaml.safe_load(write_config().read_text())
    raw["performance"] = {"motion_skip": {"threshold": 2}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = shopper_edge("check-config", path)
    assert result.returncode == 2
    assert "performance.motion_skip.threshold: must be <= 1" in result.stderr


@pytest.mark.parametrize("mask, message", [
    ([[0, 0], [10, 0], [10, 10]], "cameras[0].motion_mask: expected a list of polygons"),
    ([[[0, 0], [10, 0]]], "cameras[0].motion_mask[0]: expected at least 3 points, got 2"),
])
def test_motion_mask_errors_are_one_line(tmp_path, write_config, mask, message):
    raw = yaml.safe_load(write_config().read_text())
    raw["cameras"][0]["motion_mask"] = mask
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = shopper_edge("check-config", path)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(message) or message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_adaptive_rate_backs_off_and_recovers():
    from types import SimpleNamespace

    from appliance.device.sources import RateCap
    from appliance.device.sources.adaptive import AdaptiveRate

    source = SimpleNamespace(rate=RateCap(25))
    adaptive = AdaptiveRate(source, ceiling=25)
    for k in range(60):
        adaptive.after_run(0.2, k / 4)  # a board whose detector needs 200 ms a run
    assert adaptive.fps_cap == 2.5  # half of the 5 runs a second it can do, a rung
    assert abs(source.rate.interval - 1 / adaptive.fps_cap) < 1e-9
    for k in range(60, 660):
        adaptive.after_run(0.01, k / 4)  # slowly averaged: 2.5 minutes of fast runs
    assert adaptive.fps_cap == 25  # room again: back to the configured rate, not above


def test_adaptive_rate_follows_the_detector_run_not_the_frame_and_stays_on_its_rung():
    """The cap moves with the detector's time per run only, averaged over source time:
    a run every frame (people moving) or every 2 s (a still scene) of the same cost give
    the same cap, and a cost that wavers inside a rung moves nothing."""
    from types import SimpleNamespace

    from appliance.device.capacity import sustainable_fps
    from appliance.device.sources import RateCap
    from appliance.device.sources.adaptive import AdaptiveRate

    assert [sustainable_fps(s) for s in (0.02, 0.03, 0.1, 0.2, 0.5, 5.0)] == \
        [25.0, 15.0, 5.0, 2.5, 1.0, 1.0]
    caps = []
    for every in (0.2, 2.0):  # busy: each 5 fps frame; still: every max_skip_seconds
        adaptive = AdaptiveRate(SimpleNamespace(rate=RateCap(25)), ceiling=25)
        seen = set()
        for k in range(int(120 / every)):
            adaptive.after_run(0.085 if k % 2 else 0.075, k * every)  # 75-85 ms a run
            seen.add(adaptive.fps_cap)
        caps.append(seen)
    assert caps == [{6.0}, {6.0}]  # 0.5 / 0.08 s: 6.25, on the rung of 6, never flapping
