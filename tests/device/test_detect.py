"""The real detectors on real frames."""

import cv2
import numpy as np
import pytest

from appliance.device.detect.detections import box_iou, nms
from appliance.device.detect.person import build_detector
from appliance.device.inference.backend import OnnxBackend
from tests.conftest import CLIPS, DATA


def _frame(clip: str, index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(CLIPS / clip))
    for _ in range(index + 1):
        ok, frame = capture.read()
        assert ok
    return frame


@pytest.fixture(scope="module")
def detectors(models_dir):
    return {
        "yolox_nano": build_detector("yolox_nano", OnnxBackend(models_dir / "yolox_nano.onnx"),
                                     0.1, 0.45),
        "fastestdet": build_detector("fastestdet", OnnxBackend(models_dir / "FastestDet.onnx"),
                                     0.1, 0.45),
    }


@pytest.mark.parametrize("name", ["yolox_nano", "fastestdet"])
def test_finds_the_shopper_in_a_caviar_frame(detectors, name):
    # Frame 200 of OneLeaveShopReenter: one shopper walking out of the door, about
    # x 223-244, y 99-163 (checked by eye), plus mannequins in the window.
    detections = detectors[name].detect(_frame("OneLeaveShopReenter1front.mpg", 200))
    person = np.array([[223, 99, 244, 163]], np.float32)
    confident = detections[detections.scores >= 0.4]
    assert box_iou(person, confident.xyxy).max() > 0.5
    assert detections.xyxy.dtype == np.float32
    assert (detections.xyxy[:, 2] <= 384).all() and (detections.xyxy[:, 3] <= 288).all()


def test_yolox_recall_on_mot17_frames(detectors):
    """Most ground-truth pedestrians of real 1080p MOT17 frames are found."""
    root = next((DATA / "mot" / "MOT17-mini" / "train").iterdir())
    gt = np.loadtxt(root / "gt" / "gt.txt", delimiter=",")
    images = sorted((root / "img1").glob("*.jpg"))
    found = total = 0
    for index, image in enumerate(images, start=1):
        rows = gt[(gt[:, 0] == index) & (gt[:, 6] == 1) & (gt[:, 7] == 1) & (gt[:, 8] > 0.5)]
        boxes = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], 1)
        boxes = boxes[boxes[:, 3] - boxes[:, 1] > 120]  # people a 416 px input can resolve
        detections = detectors["yolox_nano"].detect(cv2.imread(str(image)))
        if len(boxes):
            best = box_iou(boxes.astype(np.float32), detections.xyxy).max(axis=1)
            found += int((best >= 0.5).sum())
            total += len(boxes)
    assert total > 0
    assert found / total >= 0.9, (found, total)


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.5, 0.9, 0.7], np.float32)
    assert nms(boxes, scores, 0.45).tolist() == [1, 2]


def test_inputs_are_the_models_own_preprocessing(detectors):
    """The planar copy gives exactly each model's documented input, and forget() blanks
    every buffer that held the frame."""
    frame = _frame("OneLeaveShopReenter1front.mpg", 200)
    yolox = detectors["yolox_nano"]
    tensor, box = yolox.preprocess(frame)
    width, height = round(384 * box.scale_x), round(288 * box.scale_y)
    canvas = np.full((*yolox.input_size[::-1], 3), 114, np.uint8)  # BGR 0-255, padding 114
    canvas[:height, :width] = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(tensor[0], canvas.transpose(2, 0, 1).astype(np.float32))

    fastest = detectors["fastestdet"]
    tensor, _ = fastest.preprocess(frame)
    resized = cv2.resize(frame, fastest.input_size, interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(tensor[0], resized.transpose(2, 0, 1) / np.float32(255),
                               rtol=1e-6)
    for detector in (yolox, fastest):
        detector.forget()
        for name in ("_canvas", "_resized", "_planes", "_tensor"):
            buffer = getattr(detector, name, None)
            assert buffer is None or not buffer.any(), name
