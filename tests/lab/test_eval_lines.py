"""`shopper-edge eval lines`: line counts from public detections through the appliance's
tracker and counter, against ground-truth foot points crossing the same segment."""

import json

import numpy as np
import pytest

from appliance.device.analytics.lines_config import LineConfig
from appliance.device.track.tracker_config import TrackerConfig
from appliance.lab.eval.lines import default_in_side, truth_crossings, unpaired
from tests.conftest import DATA, shopper_edge

MOT = DATA / "mot"
PETS = ["--truth", MOT / "PETS09-S2L1" / "gt.xml", "--frame-offset", "1",
        "--detections", MOT / "PETS09-S2L1" / "det.txt", "--fps", "7"]


def _eval(*args):
    result = shopper_edge("eval", "lines", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _tud(sequence):
    return ["--truth", MOT / sequence / "gt.txt", "--detections", MOT / sequence / "det.txt"]


# A vertical line through the middle of the frame, across the main walking direction.
@pytest.mark.parametrize("args, every, most_errors", [
    (_tud("TUD-Stadtmitte") + ["--line", "320,0,320,480"], 1, 0),
    (_tud("TUD-Stadtmitte") + ["--line", "320,0,320,480"], 5, 0),  # 5 fps
    (_tud("TUD-Campus") + ["--line", "320,0,320,480"], 5, 0),
    (_tud("TUD-Campus") + ["--line", "320,0,320,480"], 1, 0),
    # PETS09-S2L1: many people walk in pairs, one often hidden behind the other
    (PETS + ["--line", "384,0,384,576"], 1, 0),
    (PETS + ["--line", "384,0,384,576"], 2, 3),  # 3.5 fps
    # people walking along the line, one first seen on it (frames 594-599)
    (PETS + ["--line", "0,288,768,288"], 1, 1),
    (PETS + ["--line", "0,288,768,288"], 2, 1),
])
def test_line_counts_on_public_detections(args, every, most_errors):
    result = _eval(*args, "--every", every)
    truth = result["truth_in"] + result["truth_out"]
    assert truth >= 2
    assert result["abs_error"] == abs(result["in"] - result["truth_in"]) + \
        abs(result["out"] - result["truth_out"])
    assert result["abs_error"] <= most_errors, result
    # every count and true crossing is paired or left over: the totals' gap is what is left
    assert result["in"] + result["out"] - truth == result["extra"] - result["missed"]
    assert result["missed"] + result["extra"] >= result["abs_error"]
    assert 0 < result["idf1"] <= 1


@pytest.mark.parametrize("sequence", ["TUD-Campus", "TUD-Stadtmitte"])
def test_tud_counts_exactly_at_every_rate_of_the_door_sweep(sequence):
    """The door's rates (25 down to 5 fps), each frame taken as the appliance's rate cap
    takes it: every count pairs with a true crossing. Before the counter learnt that
    someone already beyond the line, found again in a crosser's box, is no companion,
    TUD-Stadtmitte at 8 fps counted an "in" nobody made."""
    from appliance.lab.eval.lines import evaluate_line
    from appliance.lab.eval.mot import load_sequence

    truth = load_sequence(MOT / sequence / "gt.txt", truth=True)
    detections = load_sequence(MOT / sequence / "det.txt")
    config = TrackerConfig(high_score=0.8, new_track_score=0.9)
    wrong = {}
    for cap in (25, 12.5, 10, 8, 6.25, 5):
        result = evaluate_line(truth, detections, [(320, 0), (320, 480)], cap=cap,
                               tracker_config=config)
        if result["missed"] or result["extra"]:
            wrong[cap] = result
    assert not wrong


def test_a_rate_cap_takes_the_frames_a_capped_board_takes():
    """5 fps from a 7 fps sequence: gaps of one and two frames, at most five frames a second
    (the cap never lets a frame through early, so a little under); a cap that divides the
    rate is `--every` (the same frames, the same figures)."""
    from appliance.lab.eval.lines import processed_frames

    frames = processed_frames(1, 70, 7.0, cap=5)  # ten seconds
    assert 45 <= len(frames) <= 50 and set(np.diff(frames)) == {1, 2}
    assert processed_frames(1, 70, 25.0, cap=5) == processed_frames(1, 70, 25.0, every=5)
    args = [*_tud("TUD-Campus"), "--line", "320,0,320,480"]
    assert _eval(*args, "--cap", 5) == _eval(*args, "--every", 5)


def test_eval_mot_at_a_lower_rate_scores_the_frames_it_tracked():
    lines = _eval(*_tud("TUD-Campus"), "--line", "320,0,320,480", "--every", 5)
    result = shopper_edge("eval", "mot", *_tud("TUD-Campus"), "--every", 5)
    assert result.returncode == 0, result.stderr
    mot = json.loads(result.stdout)
    full = json.loads(shopper_edge("eval", "mot", *_tud("TUD-Campus")).stdout)
    assert mot["idf1"] == lines["idf1"] and mot["idf1"] != full["idf1"]
    assert mot["num_frames"] == pytest.approx(full["num_frames"] / 5, abs=1)


@pytest.mark.parametrize("first, last", [(515, 560), (330, 380)])
def test_a_pair_in_one_box_counts_twice_on_pets(first, last):
    """PETS09-S2L1, real public detections: two people cross x = 384 in one box (frames
    529-537 side by side; 340-368 one behind the other) and the box splits after the
    line. Both count (truth: 2 out; 2 in)."""
    from appliance.lab.eval.lines import evaluate_line
    from appliance.lab.eval.mot import load_sequence

    def clip(sequence):
        return {f: v for f, v in sequence.items() if first <= f <= last}

    truth = clip(load_sequence(MOT / "PETS09-S2L1" / "gt.xml", truth=True, frame_offset=1))
    detections = clip(load_sequence(MOT / "PETS09-S2L1" / "det.txt"))
    result = evaluate_line(truth, detections, [(384, 0), (384, 576)], fps=7,
                           tracker_config=TrackerConfig(high_score=0.8, new_track_score=0.9))
    assert result["abs_error"] == 0 and result["truth_in"] + result["truth_out"] >= 2, result


def test_two_people_crossing_each_other_in_one_box_count_on_pets():
    """PETS09-S2L1 frames 660-740, real public detections at 7 fps: persons 2 and 3 cross
    x = 384 in opposite directions one behind the other; the detector makes one box of
    both (frames 703-706) and then misses person 2 for eight frames. The track matched to
    the shared box keeps its velocity and the other coasts hidden in it, so each finds its
    own person again beyond the line: both crossings count (truth: 2 in, 2 out)."""
    from appliance.lab.eval.lines import evaluate_line
    from appliance.lab.eval.mot import load_sequence

    def clip(sequence):
        return {f: v for f, v in sequence.items() if 660 <= f <= 740}

    truth = clip(load_sequence(MOT / "PETS09-S2L1" / "gt.xml", truth=True, frame_offset=1))
    detections = clip(load_sequence(MOT / "PETS09-S2L1" / "det.txt"))
    result = evaluate_line(truth, detections, [(384, 0), (384, 576)], fps=7,
                           tracker_config=TrackerConfig(high_score=0.8, new_track_score=0.9))
    assert (result["truth_in"], result["truth_out"]) == (2, 2), result
    assert result["abs_error"] == 0 and result["missed"] + result["extra"] == 0, result


def test_someone_hidden_behind_a_standing_person_counts_on_pets():
    """PETS09-S2L1 frames 1-110, real public detections at 7 fps: person 19 walks behind
    person 9, who stands on x = 384, is hidden from frame 51 to 62 while crossing out and
    comes back in at frame 103. The track found again on the far side counts the way out
    (truth: 2 in, 1 out)."""
    from appliance.lab.eval.lines import evaluate_line
    from appliance.lab.eval.mot import load_sequence

    def clip(sequence):
        return {f: v for f, v in sequence.items() if f <= 110}

    truth = clip(load_sequence(MOT / "PETS09-S2L1" / "gt.xml", truth=True, frame_offset=1))
    detections = clip(load_sequence(MOT / "PETS09-S2L1" / "det.txt"))
    result = evaluate_line(truth, detections, [(384, 0), (384, 576)], fps=7,
                           tracker_config=TrackerConfig(high_score=0.8, new_track_score=0.9))
    assert (result["truth_in"], result["truth_out"]) == (2, 1), result
    assert result["abs_error"] == 0, result


def test_errors_that_cancel_in_the_totals_are_counted_per_crossing():
    """A missed "in" at 10 s and someone else's "in" 20 s later: the totals agree, but one
    crossing was missed and one counted that nobody made. A count 2 s late (a companion
    coming out of a shared box) is the same crossing; "in" never pairs with "out"."""
    truth = [(10.0, "in"), (50.0, "in"), (70.0, "out")]
    assert unpaired(truth, [(30.0, "in"), (52.0, "in"), (70.0, "out")], 3.0) == (1, 1)
    assert unpaired(truth, [(10.5, "in"), (52.0, "in"), (70.0, "in")], 3.0) == (1, 1)
    assert unpaired(truth, [(12.0, "in"), (50.0, "in"), (73.0, "out")], 3.0) == (0, 0)
    # each count pairs once: two counts of one crossing are one extra
    assert unpaired([(10.0, "in")], [(10.0, "in"), (11.0, "in")], 3.0) == (0, 1)
    # as many pairs as can be made, not the nearest first (which would leave two over)
    assert unpaired([(0.0, "in"), (3.0, "in")], [(2.9, "in"), (5.9, "in")], 3.0) == (0, 0)


def test_truth_counts_foot_points_crossing_the_segment_only():
    line = LineConfig("l", ((100, 0), (100, 100)), default_in_side(((100, 0), (100, 100))))
    boxes = {f: (np.array([1, 2]), np.array([[80 + 10 * f, 50, 10, 40],      # foot y 90
                                             [80 + 10 * f, 150, 10, 40]]),  # below the end
                 np.ones(2)) for f in range(5)}
    # down the screen, the left is +x: walking right is "in"
    assert truth_crossings(boxes, line) == {"in": 1, "out": 0}


def test_truth_counts_a_foot_point_on_the_frame_edge_where_the_line_ends():
    """PETS09-S2L1 person 4 crosses x = 384 at frame 616 with the box cut at the bottom edge
    of the 576-high frame; CVML centre and size put the foot at y = 576.2, not past the end
    of a line drawn to that edge."""
    line = LineConfig("l", ((384, 0), (384, 576)), default_in_side(((384, 0), (384, 576))))
    boxes = {f: (np.array([4, 5]), np.array([[340 + 10 * f, 576.2 - 150, 50, 150],  # at the edge
                                             [340 + 10 * f, 580 - 150, 50, 150]]),  # 4 px past
                 np.ones(2)) for f in range(5)}
    assert truth_crossings(boxes, line) == {"in": 1, "out": 0}  # walking right: in


@pytest.mark.parametrize("args, message", [
    (["--line", "1,2,3"], "--line 1,2,3: expected 4 numbers separated by commas"),
    (["--line", "5,5,5,5"], "--line 5,5,5,5: the two end points are the same"),
    (["--line", "0,0,9,9", "--in-side", "x,1"], "--in-side x,1: expected 2 numbers"),
    (["--line", "0,0,9,9", "--every", "0"], "--every 0: expected a whole number of at least 1"),
    (["--line", "0,0,9,9", "--cap", "0"], "--cap 0: expected frames a second above 0"),
])
def test_bad_arguments_are_one_line(args, message):
    result = shopper_edge("eval", "lines", *_tud("TUD-Campus"), *args)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("shopper-edge: error: ")
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_missing_truth_file_is_one_line(tmp_path):
    result = shopper_edge("eval", "lines", "--truth", tmp_path / "gt.txt", "--detections",
                          MOT / "TUD-Campus" / "det.txt", "--line", "0,0,9,9")
    assert result.returncode == 2 and "gt.txt: no such file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
