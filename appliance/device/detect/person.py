"""Person detectors (YOLOX-nano, FastestDet; YOLOv8 for the bench only): numpy pre- and
post-processing around a back-end.

Each detector splits its work into `preprocess`, back-end `run` and `postprocess` so the
benchmark can time the stages; `detect` chains them. Only COCO class 0 (person) is decoded,
and only for anchors above the score floor, which keeps decoding cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from appliance.device.detect.detections import Detections, nms
from appliance.device.inference.backend import Backend


@dataclass(frozen=True)
class Letterbox:
    """How a frame was mapped into the model input, to map boxes back."""

    scale_x: float
    scale_y: float
    width: int
    height: int


class PersonDetector:
    input_size: tuple[int, int]  # (width, height) of the model input

    def __init__(self, backend: Backend, min_score: float = 0.1, nms_iou: float = 0.45):
        self.backend = backend
        self.min_score = min_score
        self.nms_iou = nms_iou

    def detect(self, frame: np.ndarray) -> Detections:
        tensor, box = self.preprocess(frame)
        return self.postprocess(self.backend.run(tensor), box)

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        raise NotImplementedError

    def postprocess(self, outputs: list[np.ndarray], box: Letterbox) -> Detections:
        raise NotImplementedError

    def forget(self) -> None:
        """Blank the reused input buffers: no copy of a frame outlives its inference."""
        for name in ("_canvas", "_resized", "_planes", "_tensor"):
            buffer = getattr(self, name, None)
            if buffer is not None:
                buffer.fill(0)
        self._canvas_for = None  # the letterbox padding is drawn again next time

    def _finish(self, xyxy: np.ndarray, scores: np.ndarray, box: Letterbox) -> Detections:
        xyxy[:, 0::2] = np.clip(xyxy[:, 0::2] / box.scale_x, 0, box.width)
        xyxy[:, 1::2] = np.clip(xyxy[:, 1::2] / box.scale_y, 0, box.height)
        sane = (xyxy[:, 2] - xyxy[:, 0] >= 2) & (xyxy[:, 3] - xyxy[:, 1] >= 2)
        xyxy, scores = xyxy[sane], scores[sane]
        keep = nms(xyxy, scores, self.nms_iou)
        return Detections(xyxy[keep].astype(np.float32), scores[keep].astype(np.float32))


def _planar(image: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """HWC to CHW through OpenCV's split into reused planes: about 3x faster than numpy's
    strided transpose copy, which was a third of the preprocessing."""
    cv2.split(image, list(planes))
    return planes


class YoloxDetector(PersonDetector):
    """YOLOX-nano: BGR 0-255, letterboxed into the top-left corner, padding 114."""

    def __init__(self, backend: Backend, **kwargs):
        super().__init__(backend, **kwargs)
        height, width = backend.input_shape[2], backend.input_shape[3]
        self.input_size = (width, height)
        self._canvas = np.full((height, width, 3), 114, np.uint8)
        self._planes = np.empty((3, height, width), np.uint8)
        self._tensor = np.empty((1, 3, height, width), np.float32)
        self._canvas_for: tuple[int, int] | None = None
        grids, strides = [], []
        for stride in (8, 16, 32):
            gy, gx = np.mgrid[0:height // stride, 0:width // stride]
            grids.append(np.stack([gx.ravel(), gy.ravel()], 1))
            strides.append(np.full(gx.size, stride))
        self._grid = np.concatenate(grids).astype(np.float32)
        self._stride = np.concatenate(strides).astype(np.float32)[:, None]

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        height, width = frame.shape[:2]
        scale = min(self.input_size[0] / width, self.input_size[1] / height)
        new_w, new_h = int(round(width * scale)), int(round(height * scale))
        if self._canvas_for != (new_w, new_h):  # padding only needs resetting on a size change
            self._canvas[:] = 114
            self._canvas_for = (new_w, new_h)
        cv2.resize(frame, (new_w, new_h), dst=self._canvas[:new_h, :new_w],
                   interpolation=cv2.INTER_LINEAR)
        self._tensor[0] = _planar(self._canvas, self._planes)
        return self._tensor, Letterbox(scale, scale, width, height)

    def postprocess(self, outputs: list[np.ndarray], box: Letterbox) -> Detections:
        raw = outputs[0][0]
        scores = raw[:, 4] * raw[:, 5]  # objectness x person class probability
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return Detections.empty()
        stride = self._stride[keep]
        centre = (raw[keep, :2] + self._grid[keep]) * stride
        half = np.exp(raw[keep, 2:4]) * stride / 2
        xyxy = np.concatenate([centre - half, centre + half], 1)
        return self._finish(xyxy, scores[keep], box)


class FastestDetDetector(PersonDetector):
    """FastestDet: BGR / 255, plain resize; one 22x22 grid of cells."""

    def __init__(self, backend: Backend, **kwargs):
        super().__init__(backend, **kwargs)
        height, width = backend.input_shape[2], backend.input_shape[3]
        self.input_size = (width, height)
        self._resized = np.empty((height, width, 3), np.uint8)
        self._planes = np.empty((3, height, width), np.uint8)
        self._tensor = np.empty((1, 3, height, width), np.float32)

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        height, width = frame.shape[:2]
        cv2.resize(frame, self.input_size, dst=self._resized, interpolation=cv2.INTER_LINEAR)
        np.multiply(_planar(self._resized, self._planes), np.float32(1 / 255),
                    out=self._tensor[0])
        in_w, in_h = self.input_size
        return self._tensor, Letterbox(in_w / width, in_h / height, width, height)

    def postprocess(self, outputs: list[np.ndarray], box: Letterbox) -> Detections:
        raw = outputs[0][0]  # (85, rows, cols)
        rows, cols = raw.shape[1:]
        obj = raw[0].ravel()
        person = raw[5].ravel()
        scores = np.power(obj, 0.6) * np.power(np.clip(person, 0, None), 0.4)
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return Detections.empty()
        cell_y, cell_x = np.divmod(keep, cols)
        reg = raw[1:5].reshape(4, -1)[:, keep]
        cx = (cell_x + np.tanh(reg[0])) / cols
        cy = (cell_y + np.tanh(reg[1])) / rows
        w = 1 / (1 + np.exp(-reg[2]))
        h = 1 / (1 + np.exp(-reg[3]))
        in_w, in_h = self.input_size
        xyxy = np.stack([(cx - w / 2) * in_w, (cy - h / 2) * in_h,
                         (cx + w / 2) * in_w, (cy + h / 2) * in_h], 1)
        return self._finish(xyxy, scores[keep], box)


class Yolov8Detector(PersonDetector):
    """YOLOv8 as Ultralytics exports it to TFLite (e.g. full INT8): NHWC RGB / 255,
    letterboxed into the top-left corner with padding 114; output 1x84xN: cx, cy, w, h
    normalised to the input, then 80 class scores. Bench only (the weights are AGPL), so it
    is not in DETECTORS."""

    def __init__(self, backend: Backend, **kwargs):
        super().__init__(backend, **kwargs)
        height, width = backend.input_shape[1], backend.input_shape[2]
        self.input_size = (width, height)
        self._canvas = np.full((height, width, 3), 114, np.uint8)
        self._tensor = np.empty((1, height, width, 3), np.float32)
        self._canvas_for: tuple[int, int] | None = None

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        height, width = frame.shape[:2]
        scale = min(self.input_size[0] / width, self.input_size[1] / height)
        new_w, new_h = int(round(width * scale)), int(round(height * scale))
        if self._canvas_for != (new_w, new_h):
            self._canvas[:] = 114
            self._canvas_for = (new_w, new_h)
        cv2.resize(frame, (new_w, new_h), dst=self._canvas[:new_h, :new_w],
                   interpolation=cv2.INTER_LINEAR)
        np.multiply(self._canvas[..., ::-1], np.float32(1 / 255), out=self._tensor[0])
        return self._tensor, Letterbox(scale, scale, width, height)

    def postprocess(self, outputs: list[np.ndarray], box: Letterbox) -> Detections:
        raw = outputs[0][0]  # (84, N)
        keep = np.flatnonzero(raw[4] >= self.min_score)
        if keep.size == 0:
            return Detections.empty()
        in_w, in_h = self.input_size
        cx, cy = raw[0, keep] * in_w, raw[1, keep] * in_h
        half_w, half_h = raw[2, keep] * in_w / 2, raw[3, keep] * in_h / 2
        xyxy = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 1)
        return self._finish(xyxy, raw[4, keep], box)


DETECTORS = {"yolox_nano": YoloxDetector, "fastestdet": FastestDetDetector}


def build_detector(name: str, backend: Backend, min_score: float, nms_iou: float) -> PersonDetector:
    return DETECTORS[name](backend, min_score=min_score, nms_iou=nms_iou)
