"""`shopper-edge eval fragments`: on PETS09-S2L1 (19 people, occlusions by a lamp post and
by each other), linking a broken track's fragments gives fewer ids per true person, and
most links join fragments of one person."""

import json

from tests.conftest import DATA, shopper_edge

PETS = DATA / "mot" / "PETS09-S2L1"


def test_linking_fragments_on_pets():
    result = shopper_edge("eval", "fragments", "--truth", PETS / "gt.xml", "--detections",
                          PETS / "det.txt", "--frame-offset", "1", "--fps", "7")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert r["true_people"] == r["matched_people"] == 19
    assert r["person_ids_per_person"] < r["track_ids_per_person"]
    assert r["true_people"] <= r["moving_people"] < r["moving_track_ids"]
    assert r["links"] > 0 and r["wrong_links"] < r["links"] / 2
