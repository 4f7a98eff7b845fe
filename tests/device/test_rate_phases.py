"""Door counts at every phase of every rate a board runs at. A live camera's frames fall
where they fall: a board capped at 6 fps processes frames 0, 4, 8, ... of one stream and
1, 5, 9, ... of the next, so a count that holds at one phase and not another is a coin
toss on the shop floor (this is what made the live starvation test fail one run in four).

The real detector runs once on every frame of each CAVIAR clip (the product's decoder and
detection stage, motion skip off so each rate gets fresh detections); then a fresh tracker
and line counter see exactly the frames that each (rate, first frame) pair would process
through the rate cap, as a live source does; and the looped clip the live starvation test
streams, at the uneven paces of a starved board."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from appliance.device.analytics.lines import LineCounter
from appliance.device.config import load_config
from appliance.device.pipeline import CameraPipeline, load_detector
from appliance.device.sources import RateCap, decoding_source
from appliance.device.track.tracker import Tracker
from tests.conftest import CLIPS, EXAMPLE, truth_counts

RATES = (25, 12.5, 10, 8, 7.5, 6.25, 6, 5)  # a Pi 5 down to a busy Pi 4
CLIP_NAMES = sorted(p.name for p in CLIPS.glob("*.mpg"))
# The one miss left (docs/accuracy.md, "Every phase"): at 6 fps from the first frame the
# mannequin beside the door takes the leaving shopper's track and the rest of the walk is
# too short to count. Named here so that any other miss, or this one fixed, fails the test.
KNOWN_MISSES = {("OneLeaveShop1front.mpg", 6, 0)}


@pytest.fixture(scope="module")
def detections(tmp_path_factory, models_dir):
    """Every frame's detections, per clip: [(timestamp, Detections)]; and the config."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"].update(dir=str(models_dir), threads=1)
    raw["performance"]["motion_skip"]["enabled"] = False
    path = tmp_path_factory.mktemp("phases") / "device.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    detector = load_detector(config)
    result = {}
    for name in CLIP_NAMES:
        pipeline = CameraPipeline(config, config.cameras[0], detector, "media")
        looks = []
        for frame, timestamp in decoding_source(str(CLIPS / name), None):
            if not looks:
                pipeline._setup_geometry(frame.shape[1], frame.shape[0])
            looks.append((timestamp, pipeline._detect(frame, timestamp)))
            del frame
        result[name] = looks
    result["config"] = config
    return result


def _count(config, looks, fps: float, phase: int) -> dict[str, int]:
    """The clips are the camera's own size: its geometry applies unscaled."""
    tracker = Tracker(config.tracker)
    counter = LineCounter(config.cameras[0].lines[0], config.counting)
    cap = RateCap(fps)
    for timestamp, found in looks[phase:]:
        if cap.due(timestamp):
            counter.update(tracker.update(found, timestamp), timestamp)
    return counter.counts


def test_door_counts_hold_at_every_phase_of_every_rate(detections):
    config = detections["config"]
    misses = set()
    for name in CLIP_NAMES:
        truth = truth_counts(name)
        for fps in RATES:
            for phase in range(round(25 / fps)):
                if _count(config, detections[name], fps, phase) != truth:
                    misses.add((name, fps, phase))
    runs = len(CLIP_NAMES) * sum(round(25 / fps) for fps in RATES)
    print(f"{len(misses)} of {runs} (clip, rate, phase) runs miscounted: {sorted(misses)}")
    assert misses == KNOWN_MISSES


# A starved board (tests/device/test_live_rates.py) takes the newest frame whenever it is
# free: one every 0.12-0.3 s, never a steady pace. The RTSP server loops the clip, so the
# shopper who walked back in at its end stands where the next loop starts.
LOOPED = "OneLeaveShopReenter1front.mpg"
PACES = 300
# The one miss left (docs/accuracy.md, "A starved board's pace"): a mannequin's track just
# inside the door follows a box merged with a passer-by outside and so walks out: an extra
# "out". Named here so that any other miss, or this one fixed, fails the test.
KNOWN_PACE_MISSES = {105}


def _count_looped(config, looks, pace: int) -> tuple[int, int]:
    """Two loops of the clip (two exits, two entries), stopped before the third exit, as
    the live test streams it, at pace `pace`'s gaps between processed frames."""
    rng = np.random.default_rng(pace)
    tracker = Tracker(config.tracker)
    counter = LineCounter(config.cameras[0].lines[0], config.counting)
    loop_seconds = len(looks) / 25
    index, end = int(rng.integers(8)), int((2 * loop_seconds + 1 + rng.random() * 6) * 25)
    while index < end:
        loop, k = divmod(index, len(looks))
        timestamp, found = looks[k]
        timestamp += loop * loop_seconds
        counter.update(tracker.update(found, timestamp), timestamp)
        index += max(1, round(rng.uniform(0.12, 0.3) * 25))
    return counter.counts["in"], counter.counts["out"]


def test_a_looped_clip_counts_exactly_at_a_starved_boards_uneven_pace(detections):
    misses = {pace for pace in range(PACES)
              if _count_looped(detections["config"], detections[LOOPED], pace) != (2, 2)}
    print(f"{len(misses)} of {PACES} paces miscounted: {sorted(misses)}")
    assert misses == KNOWN_PACE_MISSES
