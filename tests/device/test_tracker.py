"""The tracker: unit behaviour on hand-made boxes, and accuracy on public detections."""

import json

import numpy as np
import pytest

from appliance.device.detect.detections import Detections
from appliance.device.track.tracker import Tracker
from appliance.device.track.tracker_config import TrackerConfig
from tests.conftest import DATA, shopper_edge

MOT = DATA / "mot"


def _det(boxes, scores):
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32))


def test_two_walkers_keep_their_ids_and_a_lost_one_ends():
    tracker = Tracker(TrackerConfig(lost_seconds=0.5))
    ids = []
    for k in range(20):
        tracks = tracker.update(_det([[10 + 3 * k, 10, 30 + 3 * k, 60],
                                      [200 - 3 * k, 10, 220 - 3 * k, 60]], [0.9, 0.8]), k * 0.04)
        ids.append(tuple(tracks.ids))
    assert len(set(ids[1:])) == 1 and len(ids[-1]) == 2
    assert tracks.moving.all()  # each walked 57 px with a 50 px box
    ended = []
    for k in range(20, 40):
        ended += tracker.update(_det([], []), k * 0.04).ended
    assert sorted(ended) == sorted(ids[-1])


def test_low_score_detections_keep_an_occluded_track_alive():
    tracker = Tracker()
    for k in range(5):
        tracks = tracker.update(_det([[100 + k, 10, 120 + k, 60]], [0.9]), k * 0.04)
    first = tracks.ids[0]
    tracks = tracker.update(_det([[106, 10, 126, 60]], [0.3]), 0.2)  # occluded: low score
    assert tracks.ids.tolist() == [first]


def test_a_still_fixture_is_tracked_but_never_moving():
    tracker = Tracker()
    for k in range(100):
        jitter = np.sin(k) * 1.5
        tracks = tracker.update(_det([[300 + jitter, 70, 325, 120]], [0.6]), k * 0.04)
    assert len(tracks) == 1 and not tracks.moving[0]


def test_a_one_frame_false_positive_spends_no_id():
    tracker = Tracker()
    tracker.update(_det([[0, 0, 10, 20]], [0.9]), 0.0)
    tracker.update(_det([[500, 500, 520, 560]], [0.9]), 0.04)  # seen once, never again
    tracker.update(_det([[0, 0, 10, 20]], [0.9]), 0.08)
    tracks = tracker.update(_det([[700, 10, 720, 60]], [0.9]), 0.12)
    tracks = tracker.update(_det([[701, 10, 721, 60]], [0.9]), 0.16)
    assert tracks.ids.tolist() == [2]


@pytest.mark.parametrize("fps", [25, 12.5, 5])
def test_speeds_are_per_second_whatever_the_frame_rate(fps):
    """A walker at 1 box height a second reads 1 box height a second at any rate (motion
    skip compares it with `walking_speed`)."""
    tracker = Tracker()
    for k in range(int(3 * fps)):
        t = k / fps
        x = 100 + 50 * t  # 50 px a second, box 50 px tall
        tracker.update(_det([[x, 10, x + 20, 60]], [0.9]), t)
    assert tracker.fastest() == pytest.approx(1.0, rel=0.05)


# IDF1 of the usual open trackers on the same public detections (issue 2): our tracker
# must reach at least the best of them.
@pytest.mark.parametrize("sequence, truth, extra, best_open_idf1", [
    ("TUD-Campus", "gt.txt", [], 0.74),
    ("TUD-Stadtmitte", "gt.txt", [], 0.76),
    ("PETS09-S2L1", "gt.xml", ["--frame-offset", "1", "--fps", "7"], 0.56),
])
def test_idf1_on_public_detections(sequence, truth, extra, best_open_idf1):
    folder = MOT / sequence
    result = shopper_edge("eval", "mot", "--truth", folder / truth,
                          "--detections", folder / "det.txt", *extra)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["idf1"] >= best_open_idf1
    assert {"mota", "idf1", "id_switches"} <= scores.keys()
