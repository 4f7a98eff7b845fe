"""Where the detector looks: a region of interest and tiles (small people, high cameras)."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import yaml

from appliance.device.config import load_config
from appliance.device.detect.area import DetectionArea
from appliance.device.detect.detections import Detections
from appliance.device.pipeline import load_detector
from tests.conftest import CLIPS, DATA, EXAMPLE, shopper_edge, truth_counts


def test_tiles_cover_the_view_and_overlap():
    area = DetectionArea(None, (2, 2), 640, 480, 0.45)
    assert len(area.windows) == 4 and not area.whole_frame
    (x1, y1, x2, _), (x3, _, x4, _) = area.windows[0], area.windows[1]
    assert (x1, y1) == (0, 0) and x4 == 640 and area.windows[3][3] == 480
    assert x3 < x2  # neighbours overlap, so a person on the seam is whole in one of them
    assert DetectionArea(None, (1, 1), 640, 480, 0.45).whole_frame


def test_merging_drops_duplicates_on_seams_and_people_outside_the_roi():
    roi = np.array([[0, 0], [300, 0], [300, 300], [0, 300]], np.float32)
    area = DetectionArea(roi, (2, 1), 640, 480, 0.45)
    assert area.windows[0][:2] == (0, 0) and max(w[2] for w in area.windows) == 300
    # The same person seen by both tiles (window offsets differ), and one whose feet are
    # outside the polygon.
    left = Detections(np.array([[100, 50, 160, 250]], np.float32), np.array([0.9], np.float32))
    x = area.windows[1][0]
    right = Detections(np.array([[100 - x, 52, 161 - x, 251], [250 - x, 200, 290 - x, 320]],
                                np.float32), np.array([0.8, 0.7], np.float32))
    merged = area.merge([(left, (0, 0)), (right, (x, 0))])
    assert len(merged) == 1 and merged.scores[0] == np.float32(0.9)


def test_tiles_find_the_small_people_of_a_high_camera(models_dir):
    config = load_config(EXAMPLE)
    config = replace(config, models=replace(config.models, dir=models_dir))
    detector = load_detector(config)
    counts = {(1, 1): [], (2, 2): []}
    for path in sorted((DATA / "mall" / "frames").glob("*.jpg"))[:40:8]:
        frame = cv2.imread(str(path))
        height, width = frame.shape[:2]
        for tiles in counts:
            area = DetectionArea(None, tiles, width, height, 0.45)
            found = area.merge([(detector.detect(frame[y1:y2, x1:x2]), (x1, y1))
                                for x1, y1, x2, y2 in area.windows])
            counts[tiles].append(int((found.scores >= 0.3).sum()))
    # Mall frames hold 13-53 people, most small: whole frames miss half of them.
    assert np.mean(counts[(2, 2)]) >= np.mean(counts[(1, 1)]) + 5, counts


def test_a_door_roi_keeps_the_counts(tmp_path, write_config):
    raw = yaml.safe_load(write_config().read_text())
    raw["cameras"][0]["roi"] = [[150, 40], [384, 40], [384, 250], [150, 250]]
    path = tmp_path / "roi.yaml"
    path.write_text(yaml.safe_dump(raw))
    for clip in ("OneLeaveShop1front.mpg", "OneLeaveShopReenter1front.mpg"):
        result = shopper_edge("replay", CLIPS / clip, "--config", path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["lines"]["shop_door"] == truth_counts(clip)


def test_area_config_errors_are_one_line(tmp_path, write_config):
    raw = yaml.safe_load(write_config().read_text())
    for change, message in ((dict(tiles=[5, 1]), "cameras[0].tiles: expected [columns, rows]"),
                            (dict(roi=[[0, 0], [1, 1]]), "cameras[0].roi: expected at least 3")):
        bad = dict(raw, cameras=[dict(raw["cameras"][0], **change)])
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(bad))
        result = shopper_edge("check-config", path)
        assert result.returncode == 2 and message in result.stderr
