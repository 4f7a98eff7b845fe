"""The setup page's logic, without a server: the plate's median and blanking (a stand-in
detector that reports where the synthetic people are), drawings to config sections and
back, the floor homography, self-crossing polygons, and the YAML round trip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from appliance.device.analytics.lines_config import LineConfig
from appliance.device.camera_config import CameraConfig
from appliance.device.detect.detections import Detections
from appliance.device.setup import drawing as draw
from appliance.device.setup.config_file import DeviceYaml
from appliance.device.setup.plate import PlateBuilder
from tests.setup_page import setup_config


class BoxesDetector:
    """Reports the boxes the test says are people in the next frame."""

    input_size = (416, 416)

    def __init__(self):
        self.boxes: list[list[float]] = []

    def detect(self, _frame) -> Detections:
        xyxy = np.array(self.boxes, np.float32).reshape(-1, 4)
        return Detections(xyxy, np.full(len(xyxy), 0.9, np.float32))

    def forget(self) -> None:
        pass


def test_plate_leaves_people_out_and_blanks_where_they_never_left():
    rng = np.random.default_rng(1)
    background = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    detector = BoxesDetector()
    builder = PlateBuilder(detector, samples=12, margin=0.25)
    for i in range(12):
        frame = background.copy()
        x = 10 * i
        frame[40:100, x:x + 20] = 255  # a walker, somewhere else each time
        frame[10:50, 120:140] = 0  # a mannequin: always there, always detected
        frame[60:80, 130:150] = 7  # a fixture the detector does not take for a person
        detector.boxes = [[x, 40, x + 20, 100], [120, 10, 140, 50]]
        builder.add(frame)
    plate = builder.build()
    assert plate.frame_size == (160, 120) and plate.samples == 12
    image = plate.image
    # The mannequin's box (with its margin) is filled smoothly from the shown pixels around
    # it (nothing of the mannequin, no silhouette edges); the walker left no trace.
    spot = image[10:50, 120:140].astype(float)
    assert spot.std() < 12 and abs(spot.mean() - background.mean()) < 15
    assert (image[60:80, 130:150] == 7).all()
    shown = np.ones(image.shape[:2], bool)
    shown[0:60, 115:145] = False  # mannequin and margin
    shown[60:80, 130:150] = False
    assert (image[shown] == background[shown]).all()
    assert 0.05 < plate.blanked < 0.12


def test_plate_of_a_wide_camera_is_at_most_960_wide():
    detector = BoxesDetector()
    builder = PlateBuilder(detector, samples=3)
    for _ in range(3):
        builder.add(np.full((1080, 1920, 3), 90, np.uint8))
    plate = builder.build()
    assert plate.image.shape == (540, 960, 3) and plate.frame_size == (1920, 1080)


def test_fraction_coordinates_go_to_fractions_and_back():
    drawing = {"lines": [{"name": "door", "points": [[96, 144], [288, 144]],
                          "in_side_point": [192, 72]}],
               "zones": [{"name": "q", "kind": "queue",
                          "points": [[0, 0], [192, 0], [192, 144]]}],
               "roi": None, "motion_mask": [], "floor": None}
    section = draw.to_section(drawing, "fraction", (384, 288))
    assert section["lines"] == {"door": {"points": [[0.25, 0.5], [0.75, 0.5]],
                                         "in_side_point": [0.5, 0.25]}}
    assert section["zones"]["q"]["points"] == [[0, 0], [0.5, 0], [0.5, 0.5]]
    assert section["roi"] is None and section["motion_mask"] is None
    assert "homography" not in section  # no floor drawn: the key is left as it is
    line = LineConfig("door", ((0.25, 0.5), (0.75, 0.5)), (0.5, 0.25))
    camera = CameraConfig(id="c", source="x", coordinates="fraction", lines=(line,))
    back = draw.from_camera(camera, (384, 288))
    assert back["lines"] == drawing["lines"]


def test_floor_homography_maps_the_corners_to_metres():
    floor = {"points": [[100, 200], [300, 200], [330, 260], [70, 260]],
             "width_m": 4.0, "depth_m": 2.5}
    h = np.array(draw.floor_homography(floor, "pixels", (384, 288)))
    metres = cv2.perspectiveTransform(np.array([floor["points"]], float), h)[0]
    assert np.allclose(metres, [[0, 0], [4, 0], [4, 2.5], [0, 2.5]], atol=1e-3)
    with pytest.raises(draw.DrawingError):
        draw.floor_homography({"points": floor["points"][:3], "width_m": 1, "depth_m": 1},
                              "pixels", (384, 288))


def test_crossing_edges():
    assert draw.crossing_edges([[0, 0], [10, 0], [10, 10], [0, 10]]) is None
    assert draw.crossing_edges([[0, 0], [10, 10], [10, 0], [0, 10]]) == (1, 3)
    assert draw.crossing_edges([[0, 0], [10, 0], [5, 5], [10, 10], [0, 10]]) is None  # concave


def test_saving_an_edited_line_keeps_its_comments_and_the_rest_of_the_file(tmp_path,
                                                                          models_dir):
    config = setup_config(tmp_path, models_dir)
    before = config.read_text()
    device = DeviceYaml(config, "front")
    section = {"lines": {"shop_door": {"points": [[200, 150], [330, 150]],
                                       "in_side_point": [260, 100]},
                         "side": {"points": [[10, 200], [60, 200]]}},
               "zones": {"walkway": {"kind": "queue",
                                     "points": [[40, 147], [384, 147], [384, 178], [40, 178]]}},
               "roi": None, "motion_mask": [[[0, 0], [384, 0], [384, 12], [0, 12]]]}
    device.save(section)
    after = config.read_text()
    assert "      shop_door:              # the shop's threshold, between the left pillar " \
        "and the sign\n        points: [[200, 150], [330, 150]]\n        in_side_point: " \
        "[260, 100]   # inside the shop: crossing towards it counts \"in\"\n      side:\n" \
        "        points: [[10, 200], [60, 200]]\n    zones:\n      walkway:\n" \
        "        kind: queue\n" in after
    assert "shop_floor" not in after
    # Everything above the camera's lines is as it was, byte for byte.
    head = before.split("    lines:\n")[0]
    assert after.startswith(head)
    assert [line.name for line in device.camera.lines] == ["shop_door", "side"]


def test_recheck_catches_a_person_the_masking_missed(models_dir, tmp_path):
    """If the boxes left out missed someone (here: a stand-in that reports nobody), the real
    detector still finds them on the plate, and the plate is not served."""
    from appliance.device.config import load_config
    from appliance.device.pipeline import load_detector
    from appliance.device.setup.plate import people_on
    from appliance.device.sources import FileSource
    from tests.conftest import CLIPS

    config = load_config(setup_config(tmp_path, models_dir))
    detector = load_detector(config)
    builder = PlateBuilder(BoxesDetector(), samples=10)
    for i, (frame, _t) in enumerate(FileSource(str(CLIPS / "OneLeaveShop1front.mpg"))):
        if i % 25 == 0 and len(builder) < 10:
            builder.add(frame)
    assert len(people_on(builder.build(), detector)) > 0  # the mannequins, unmasked



def test_a_drawing_check_config_would_refuse_is_not_saved(tmp_path, models_dir):
    """The page says "check-config: OK" after a save, so a save must prove what check-config
    proves of the rules: 33 lines pass the parser, but every window would break the message
    schema (32 lines at most), and check-config refuses the file. Nothing is written."""
    from appliance.errors import ConfigError

    config = setup_config(tmp_path, models_dir)
    before = config.read_text()
    device = DeviceYaml(config, "front")
    lines = {f"door{i}": {"points": [[10, 20 + i], [100, 20 + i]]} for i in range(33)}
    with pytest.raises(ConfigError, match="camera front: its windows would break the "
                       "message schema .*maxProperties=32"):
        device.save({"lines": lines})
    assert config.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["device.yaml"]
    del lines["door32"]
    device.save({"lines": lines})  # 32 are fine
    assert len(device.camera.lines) == 32
