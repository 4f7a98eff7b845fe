"""Tests for appliance.lab.eval.mot against py-motmetrics reference values and small hand cases."""

import json
from pathlib import Path

import numpy as np
import pytest

from appliance.lab.eval.mot import evaluate, read_cvml_xml, read_mot_txt, read_truth
from tests.conftest import shopper_edge

MOT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mot"


def _seq(frames):
    """Build a sequence from ``{frame: [(id, (x, y, w, h)), ...]}``."""
    out = {}
    for f, objs in frames.items():
        ids = np.array([o[0] for o in objs], np.int64)
        boxes = np.array([o[1] for o in objs], float).reshape(-1, 4)
        out[f] = (ids, boxes, np.ones(len(objs)))
    return out


# Values from py-motmetrics' own test suite (test_metrics.py::test_motchallenge_files).
@pytest.mark.parametrize(
    "seq, mota, idf1",
    [("TUD-Campus", 0.526462, 0.557659), ("TUD-Stadtmitte", 0.564014, 0.644619)],
)
def test_reference_values(seq, mota, idf1):
    truth = read_truth(MOT_DATA / seq / "gt.txt")
    hyp = read_mot_txt(MOT_DATA / seq / "test.txt")
    res = evaluate(truth, hyp)
    assert res["mota"] == mota
    assert res["idf1"] == idf1


def test_tud_campus_full_summary():
    res = evaluate(read_truth(MOT_DATA / "TUD-Campus" / "gt.txt"),
                   read_mot_txt(MOT_DATA / "TUD-Campus" / "test.txt"))
    assert res["motp"] == 0.277201
    assert res["idp"] == 0.72973
    assert res["idr"] == 0.451253
    assert res["precision"] == 0.941441
    assert res["recall"] == 0.582173
    assert (res["false_positives"], res["misses"], res["id_switches"]) == (13, 150, 7)
    assert res["fragmentations"] == 7
    assert (res["mostly_tracked"], res["partially_tracked"], res["mostly_lost"]) == (1, 6, 1)
    assert res["num_truth_ids"] == 8
    assert res["num_truth"] == 359


A = (0, 0, 10, 10)
B = (100, 0, 10, 10)


def test_hand_made_switch_fragment_and_idf1():
    truth = _seq({f: [(1, A), (2, B)] for f in (1, 2, 3, 4)})
    hyp = _seq({
        1: [(10, A), (20, B)],
        2: [(11, A), (20, B)],  # object 1 taken over by hypothesis 11: one switch
        3: [(11, A)],  # object 2 missed: later re-acquired -> one fragmentation
        4: [(11, A), (20, B), (30, (200, 200, 10, 10)), (31, (300, 300, 10, 10))],
    })
    res = evaluate(truth, hyp)
    assert res["id_switches"] == 1
    assert res["fragmentations"] == 1
    assert (res["misses"], res["false_positives"], res["matches"]) == (1, 2, 7)
    assert res["mota"] == 0.5  # 1 - (1 miss + 1 switch + 2 fp) / 8
    # Best id mapping: 1->11 (3 frames), 2->20 (3 frames): IDTP = 6 of 8 truth, 9 hyps.
    assert res["idf1"] == round(12 / 17, 6)
    assert res["idp"] == round(6 / 9, 6)
    assert res["idr"] == 0.75
    assert (res["mostly_tracked"], res["partially_tracked"], res["mostly_lost"]) == (1, 1, 0)
    assert res["num_frames"] == 4


def test_previous_match_is_kept_over_a_better_newcomer():
    truth = _seq({1: [(1, A)], 2: [(1, A)]})
    # In frame 2 hypothesis 11 fits better, but 10 still overlaps >= 0.5: no switch.
    hyp = _seq({1: [(10, A)], 2: [(10, (1, 0, 10, 10)), (11, A)]})
    res = evaluate(truth, hyp)
    assert res["id_switches"] == 0
    assert res["false_positives"] == 1
    assert res["motp"] == round((1 - 90 / 110) / 2, 6)


def test_iou_threshold_is_inclusive_and_hypothesis_only_frames_count():
    truth = _seq({1: [(1, A)]})
    hyp = _seq({1: [(10, (0, 0, 10, 5))], 2: [(10, A)]})  # IoU exactly 0.5 in frame 1
    res = evaluate(truth, hyp)
    assert res["matches"] == 1
    assert res["false_positives"] == 1
    assert res["num_frames"] == 2
    assert res["mota"] == 0.0


def test_read_mot_txt_truth_filters_and_whitespace(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text(
        "1,1,10,20,30,40,1,1,1.0\n"
        "1,2,10,20,30,40,0,1,1.0\n"  # "consider" flag 0: ignored
        "2,3,10,20,30,40,1,7,0.5\n"  # MOT17 class 7 (static person): not a pedestrian
        "2,1,11,21,30,40,1,1,0.9\n"
    )
    seq = read_mot_txt(gt, is_truth=True)
    assert sorted(seq) == [1, 2]
    assert seq[1][0].tolist() == [1]
    assert seq[2][0].tolist() == [1]
    np.testing.assert_allclose(seq[2][1], [[11, 21, 30, 40]])
    assert len(read_mot_txt(gt)[1][0]) == 2  # not truth: nothing filtered

    ws = tmp_path / "res.txt"
    ws.write_text("3 5 1.5 2.5 3 4 0.75\n\n3 6 0 0 1 1 0.5\n")
    seq = read_mot_txt(ws)
    assert seq[3][0].tolist() == [5, 6]
    np.testing.assert_allclose(seq[3][2], [0.75, 0.5])


def test_read_det_txt_has_no_ids():
    det = read_mot_txt(MOT_DATA / "PETS09-S2L1" / "det.txt")
    ids, boxes, scores = det[1]
    assert (ids == -1).all()
    assert boxes.shape == (len(ids), 4)
    assert scores.max() <= 1.0


def test_read_cvml_xml_pets09():
    path = MOT_DATA / "PETS09-S2L1" / "gt.xml"
    seq = read_cvml_xml(path)
    assert len(seq) == 795
    assert min(seq) == 0 and max(seq) == 794
    ids, boxes, _ = seq[0]
    assert ids.tolist() == [9, 15, 19]
    # Centre (514.7109, 195.2731), size 31.03 x 75.17 -> top-left corner.
    np.testing.assert_allclose(boxes[0], [514.7109 - 15.515, 195.2731 - 37.585, 31.03, 75.17])

    shifted = read_truth(path, frame_offset=1)
    assert min(shifted) == 1 and max(shifted) == 795
    np.testing.assert_array_equal(shifted[1][1], boxes)


def test_pets09_self_evaluation_is_perfect():
    gt = read_truth(MOT_DATA / "PETS09-S2L1" / "gt.xml", frame_offset=1)
    res = evaluate(gt, gt)
    assert res["mota"] == 1.0 and res["idf1"] == 1.0 and res["motp"] == 0.0
    assert res["num_frames"] == 795
    assert res["id_switches"] == 0 and res["false_positives"] == 0 and res["misses"] == 0


def test_cli_scores_an_existing_output_with_the_published_values():
    folder = MOT_DATA / "TUD-Campus"
    result = shopper_edge("eval", "mot", "--truth", folder / "gt.txt",
                          "--tracks", folder / "test.txt")
    scores = json.loads(result.stdout)
    assert scores["mota"] == pytest.approx(0.526462, abs=1e-6)
    assert scores["idf1"] == pytest.approx(0.557659, abs=1e-6)
