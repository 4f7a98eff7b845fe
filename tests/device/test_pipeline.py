"""The frame loop's stages and their timing: each stage stamps its own STAGES key, so one
can be measured (bench, health, `replay`'s stage_ms) or switched without the others."""

from __future__ import annotations

import threading
import time
from itertools import islice

import pytest

from appliance.device.config import load_config
from appliance.device.pipeline import STAGES, CameraPipeline, StageClock, StageTimes, load_detector
from appliance.device.sources import FileSource
from tests.conftest import CLIPS


def test_stage_clock_adds_each_interval_to_the_stage_marked():
    times = StageTimes()
    clock = StageClock(times)
    clock.start()
    threading.Event().wait(0.05)
    clock.mark("inference")
    clock.mark("tracking")  # right after: next to nothing
    threading.Event().wait(0.02)
    clock.mark("inference")  # a stage marked twice in a frame adds both parts
    assert times.seconds["inference"] >= 0.07
    assert times.seconds["tracking"] < 0.01
    assert all(times.seconds[s] == 0.0 for s in STAGES if s not in ("inference", "tracking"))
    with pytest.raises(KeyError):
        clock.mark("no_such_stage")  # the keys are STAGES, fixed for health and the bench


def _pipeline(write_config, motion: bool) -> tuple[CameraPipeline, list]:
    config = load_config(write_config(performance={"decode_thread": False,
                                                   "motion_skip": {"enabled": motion}}))
    camera = config.cameras[0]
    frames = list(islice(FileSource(str(CLIPS / "OneLeaveShopReenter1front.mpg")), 40))
    return CameraPipeline(config, camera, load_detector(config), "media"), frames


def test_the_stages_account_for_the_whole_frame_and_nothing_else(write_config):
    pipeline, frames = _pipeline(write_config, motion=False)
    pipeline.process(*frames[0])  # the first frame also sets up the geometry, untimed
    before = dict(pipeline.times.seconds)
    wall = 0.0
    for frame, timestamp in frames[1:]:
        started = time.perf_counter()
        pipeline.process(frame, timestamp)
        wall += time.perf_counter() - started
    spent = {s: pipeline.times.seconds[s] - before[s] for s in STAGES}
    assert set(pipeline.times.seconds) == set(STAGES)
    assert spent["decode"] == 0.0  # decode is run_frames' stage, not process's
    # Every detector stage ran on every frame; inference is most of a frame's time.
    assert all(spent[s] > 0 for s in ("preprocess", "inference", "postprocess", "tracking",
                                       "counting", "behaviour"))
    assert spent["inference"] > 0.5 * wall
    # No gap and no double count: the stages add up to the time in process().
    assert 0.95 * wall <= sum(spent.values()) <= wall
    assert pipeline.times.frames == len(frames)


def test_a_frame_the_motion_gate_skips_adds_no_inference_time(write_config):
    pipeline, frames = _pipeline(write_config, motion=True)
    frame, _ = frames[0]
    skipped = 0
    for step in range(30):  # the same real frame again and again: nothing moves
        inference = pipeline.times.seconds["inference"]
        preprocess = pipeline.times.seconds["preprocess"]
        pipeline.process(frame, step / 25)
        if not pipeline._detector_ran:
            skipped += 1
            assert pipeline.times.seconds["inference"] == inference
            assert pipeline.times.seconds["preprocess"] > preprocess  # the gate's own time
    assert skipped >= 20 and pipeline.motion.skipped == skipped
