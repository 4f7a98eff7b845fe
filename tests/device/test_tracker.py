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


def test_two_people_passing_in_one_box_keep_their_ids():
    """At 7 fps two people walk towards each other and the detector makes one box of both
    while they pass. The track matched to the shared box is flagged `merged` and keeps the
    velocity it had (the box's centre hardly moves), the other coasts hidden inside it, so
    when the box splits each finds its own person again."""
    tracker = Tracker()
    ids = {"right": set(), "left": set()}
    flagged = 0
    for k in range(40):
        a, b = 100 + 10 * k, 500 - 10 * k  # walking right, walking left
        together = abs(a - b) < 60
        boxes = [[min(a, b), 100, max(a, b) + 30, 180]] if together else \
            [[a, 100, a + 30, 180], [b, 102, b + 30, 182]]
        tracks = tracker.update(_det(boxes, [0.9] * len(boxes)), k / 7)
        flagged += int(tracks.merged.sum())
        if not together:
            for track_id, box in zip(tracks.ids, tracks.xyxy, strict=True):
                ids["right" if abs(box[0] - a) < 8 else "left"].add(int(track_id))
    assert flagged == 5  # each of the five shared looks
    assert len(ids["right"]) == 1 and len(ids["left"]) == 1
    assert ids["right"] != ids["left"]


def test_a_box_shared_with_a_fixture_is_not_held():
    """A shopper walks in front of a mannequin and the detector makes one box of both: the
    mannequin's track never moved, so nobody is hidden behind the shopper (only a visitor
    can be). The shopper's box is not flagged shared and their track keeps its id."""
    tracker = Tracker()
    fixture = [305, 120, 325, 180]
    ids, flagged = set(), 0
    for k in range(40):
        a = 100 + 10 * k
        together = abs(a - 305) < 40
        boxes = [[min(a, 305), 100, max(a + 30, 325), 180]] if together else \
            [[a, 100, a + 30, 180], fixture]
        tracks = tracker.update(_det(boxes, [0.9] * len(boxes)), k / 7)
        flagged += int(tracks.merged.sum())
        ids.update(int(i) for i, box in zip(tracks.ids, tracks.xyxy, strict=True)
                   if box[3] - box[1] > 70)  # the shopper's box, not the mannequin's
    assert flagged == 0
    assert len(ids) == 1


def test_someone_who_slowed_down_while_hidden_is_found_again():
    """At 7 fps a walker (30 x 80 px, 70 px a second) is hidden for four looks and comes
    back walking at half the speed, 14 px behind the prediction: too far for the IoU gate
    of the predicted box, within its box widened by the filter's position spread, which
    grew while the track was lost. One id throughout."""
    tracker = Tracker()
    x, ids = 100.0, set()
    for k in range(30):
        x += 10 if k < 10 else 5
        boxes = [] if 10 <= k < 14 else [[x, 100, x + 30, 180]]
        ids.update(tracker.update(_det(boxes, [0.9] * len(boxes)), k / 7).ids.tolist())
    assert ids == {1}


def test_a_lost_track_does_not_take_a_followed_persons_box():
    """The widened match comes last: a box that a followed track matches is never offered
    to a lost one close by."""
    tracker = Tracker()
    for k in range(5):  # two people side by side
        tracker.update(_det([[100, 100, 130, 180], [140, 100, 170, 180]], [0.9, 0.9]), k / 7)
    for k in range(5, 8):  # the right one is hidden; the left one stands still
        tracks = tracker.update(_det([[100, 100, 130, 180]], [0.9]), k / 7)
    assert tracks.ids.tolist() == [1]


def test_a_second_box_on_a_tracked_person_starts_no_track():
    """The CAVIAR door's leaving shopper: the detector gives their own box and, beside it, a
    box over them and the mannequin next to them, the bottoms level and more than half of
    the narrow box inside the wide one. That is one person seen twice (two people never
    stand on one spot), so no second track; it had stolen the shopper's walk out (one
    phase at 6 fps, 44 of 300 uneven 8-25 fps paces). Someone beside them (less than half
    inside) or in front of them (standing lower) is someone else, and gets a track."""
    def tracks_after(second):
        tracker = Tracker()
        for k in range(4):
            tracks = tracker.update(_det([[297, 82, 318, 146]] + [second] * (k > 0),
                                         [0.7] + [0.65] * (k > 0)), k * 0.08)
        return len(tracks)

    assert tracks_after([304, 65, 333, 147]) == 1  # the shopper and the mannequin: level
    assert tracks_after([309, 80, 333, 146]) == 2  # beside: 9 of 21 px inside
    assert tracks_after([300, 110, 316, 170]) == 2  # in front: 24 px lower


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
