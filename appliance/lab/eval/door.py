"""Door counts of recorded clips where a board really runs (`shopper-edge eval door`): at
every phase of every rate a rate cap gives, and at the uneven pace of a starved board.

A live camera's frames fall where they fall: a board capped at 6 fps processes frames 0, 4,
8, ... of one stream and 1, 5, 9, ... of the next, and a board short of CPU takes the
newest frame whenever it is free, one every 0.12-0.3 s, never at a steady pace. So the real
detector runs once on every frame of each clip (motion skip off, so each run gets fresh
detections), and then a fresh tracker and line counter see exactly the frames each run
would process. Only counts come out; no frame outlives its detection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from appliance.device.analytics.lines import LineCounter
from appliance.device.config import Config
from appliance.device.detect.detections import Detections
from appliance.device.pipeline import CameraPipeline
from appliance.device.sources import RateCap, decoding_source
from appliance.device.track.tracker import Tracker

RATES = (25, 12.5, 10, 8, 7.5, 6.25, 6, 5)  # a Pi 5 down to a busy Pi 4
Looks = list[tuple[float, Detections]]  # (timestamp, detections) of every frame
Scale = tuple[float, float]  # the camera's geometry into a clip's pixels


def detect_every_frame(config: Config, detector, clip: Path) -> tuple[Looks, Scale]:
    """The first camera's detection stage (its area, tiles and thresholds) on every frame of
    the clip, and the scale its geometry takes in the clip's pixels (as the pipeline's)."""
    pipeline = CameraPipeline(config, config.cameras[0], detector, "media")
    looks: Looks = []
    scale: Scale = (1.0, 1.0)
    for frame, timestamp in decoding_source(str(clip), None):
        if not looks:
            height, width = frame.shape[:2]
            scale = config.cameras[0].scale(width, height, pipeline.source_size)
        looks.append((timestamp, pipeline.detect(frame, timestamp)))
        del frame
    return looks, scale


def count(config: Config, looks: Iterable[tuple[float, Detections]],
          scale: Scale = (1.0, 1.0)) -> tuple[int, int]:
    """(in, out) of the first camera's first line, a fresh tracker and counter on `looks`."""
    tracker = Tracker(config.tracker)
    counter = LineCounter(config.cameras[0].lines[0], config.counting, scale)
    for timestamp, found in looks:
        counter.update(tracker.update(found, timestamp), timestamp)
    return counter.counts["in"], counter.counts["out"]


def frame_seconds(looks: Looks) -> float:
    """The clip's time between frames (1/25 s when it cannot tell)."""
    return (looks[-1][0] - looks[0][0]) / max(len(looks) - 1, 1) or 0.04


def at_phase(looks: Looks, fps: float, phase: int) -> Looks:
    """The frames a rate cap of `fps` processes when the stream starts at frame `phase`."""
    cap = RateCap(fps)
    return [(t, found) for t, found in looks[phase:] if cap.due(t)]


def at_pace(looks: Looks, pace: int, gaps: tuple[float, float], loops: int = 1,
            stop: float | None = None) -> Looks:
    """The frames a starved board processes: from one of the first eight frames, then after
    each a gap drawn from `gaps` seconds (seeded by `pace`, so each pace is the same run
    every time); the clip played `loops` times in a row, or for `stop` seconds, as an RTSP
    server loops it (media time runs on)."""
    rng = np.random.default_rng(pace)
    step = frame_seconds(looks)
    loop_seconds = len(looks) * step
    end = len(looks) * loops if stop is None else int(stop / step)
    index, chosen = int(rng.integers(8)), []
    while index < end:
        loop, k = divmod(index, len(looks))
        timestamp, found = looks[k]
        chosen.append((timestamp + loop * loop_seconds, found))
        index += max(1, round(rng.uniform(*gaps) / step))
    return chosen


def evaluate_door(config: Config, recordings: dict[str, tuple[Looks, Scale]],
                  truth: dict[str, tuple[int, int]], paces: int,
                  gaps: Sequence[tuple[float, float]]) -> dict:
    """Per clip: the (rate, phase) runs and the paces (per gap range) that miscounted."""
    result = {}
    for name, (looks, scale) in recordings.items():
        expected = truth[name]
        per_second = 1 / frame_seconds(looks)
        phases = [[fps, phase] for fps in RATES for phase in range(round(per_second / fps))]
        wrong_phases = [run for run in phases
                        if count(config, at_phase(looks, *run), scale) != expected]
        by_gaps = {}
        for low, high in gaps:
            wrong = [pace for pace in range(paces)
                     if count(config, at_pace(looks, pace, (low, high)), scale) != expected]
            by_gaps[f"{low}-{high}"] = {"wrong": len(wrong), "paces": wrong}
        result[name] = {"truth": list(expected), "phase_runs": len(phases),
                        "wrong_phases": wrong_phases, "paces": paces, "gaps": by_gaps}
    return result
