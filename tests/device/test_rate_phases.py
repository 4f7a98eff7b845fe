"""Door counts at every phase of every rate a board runs at. A live camera's frames fall
where they fall: a board capped at 6 fps processes frames 0, 4, 8, ... of one stream and
1, 5, 9, ... of the next, so a count that holds at one phase and not another is a coin
toss on the shop floor (this is what made the live starvation test fail one run in four).

The real detector runs once on every frame of each CAVIAR clip (the product's decoder and
detection stage, motion skip off so each rate gets fresh detections); then a fresh tracker
and line counter see exactly the frames that each (rate, first frame) pair would process
through the rate cap, as a live source does; and the looped clip the live starvation test
streams, at the uneven paces of a starved board. The replays are `shopper-edge eval door`'s
(appliance/lab/eval/door.py), which reports the same for any clips."""

from __future__ import annotations

import pytest
import yaml

from appliance.device.config import load_config
from appliance.device.pipeline import load_detector
from appliance.lab.eval.door import RATES, at_pace, at_phase, count, detect_every_frame
from tests.conftest import CLIPS, EXAMPLE, truth_counts

CLIP_NAMES = sorted(p.name for p in CLIPS.glob("*.mpg"))
# None left. The last one (6 fps from the first frame: the mannequin beside the door took
# the leaving shopper's track) went when a box level with a tracked one and more than half
# inside it (or it inside) stopped starting a second track (docs/accuracy.md, "Every
# phase"). Named here so that any miss fails the test.
KNOWN_MISSES: set[tuple[str, float, int]] = set()


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
    # the clips are the camera's own size: its geometry applies unscaled
    result = {name: detect_every_frame(config, detector, CLIPS / name)[0]
              for name in CLIP_NAMES}
    result["config"] = config
    return result


def test_door_counts_hold_at_every_phase_of_every_rate(detections):
    config = detections["config"]
    misses = set()
    for name in CLIP_NAMES:
        truth = tuple(truth_counts(name).values())
        for fps in RATES:
            for phase in range(round(25 / fps)):
                if count(config, at_phase(detections[name], fps, phase)) != truth:
                    misses.add((name, fps, phase))
    runs = len(CLIP_NAMES) * sum(round(25 / fps) for fps in RATES)
    print(f"{len(misses)} of {runs} (clip, rate, phase) runs miscounted: {sorted(misses)}")
    assert misses == KNOWN_MISSES


# A starved board (tests/device/test_live_rates.py) takes the newest frame whenever it is
# free: one every 0.12-0.3 s, never a steady pace. The RTSP server loops the clip, so the
# shopper who walked back in at its end stands where the next loop starts.
LOOPED = "OneLeaveShopReenter1front.mpg"
PACES = 300
# None left (22 of 300 before a crosser found again was no longer taken for a companion;
# docs/accuracy.md, "A starved board's pace").
KNOWN_PACE_MISSES: set[int] = set()


def test_a_looped_clip_counts_exactly_at_a_starved_boards_uneven_pace(detections):
    """Two loops of the clip (two exits, two entries), stopped 4 s into the third, before
    its exit, as the live test streams it."""
    looks = detections[LOOPED]
    stop = 2 * len(looks) / 25 + 4
    misses = {pace for pace in range(PACES)
              if count(detections["config"], at_pace(looks, pace, (0.12, 0.3), stop=stop))
              != (2, 2)}
    print(f"{len(misses)} of {PACES} paces miscounted: {sorted(misses)}")
    assert misses == KNOWN_PACE_MISSES


# Each clip once at a board's uneven pace, the first 50 of `eval door`'s seeded paces per
# range: gaps of 0.08-0.2 s (a Pi 4, 5-12 fps) and 0.04-0.12 s (a Pi 5, 8-25 fps). All
# exact since the duplicate-box and growth rules (before: 10 of these 300 wrong; of 300 a
# range, 4 are still wrong: docs/accuracy.md, "Uneven paces now").
UNEVEN = {(0.08, 0.2): "5-12 fps", (0.04, 0.12): "8-25 fps"}
UNEVEN_PACES = 50


def test_door_counts_hold_at_a_boards_uneven_pace(detections):
    config = detections["config"]
    misses = {}
    for name in CLIP_NAMES:
        truth = tuple(truth_counts(name).values())
        for gaps, rates in UNEVEN.items():
            wrong = {pace for pace in range(UNEVEN_PACES)
                     if count(config, at_pace(detections[name], pace, gaps)) != truth}
            if wrong:
                misses[(name, rates)] = wrong
    print(f"paces miscounted: {misses}")
    assert not misses
