"""Wrists from MoveNet Lightning, one person box at a time, to tell whether a shopper reaches
into a shelf. The result is numbers (wrist pixels and scores); the crop exists only inside the
call, in reused buffers that are blanked before it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from appliance.device.inference.backend import Backend

POSE_INPUT = 192  # MoveNet Lightning: 1x192x192x3 int32 RGB 0-255
WRISTS = (9, 10)  # COCO keypoint order: left wrist, right wrist (the person's own left/right)


@dataclass(frozen=True)
class Wrists:
    points: np.ndarray  # (N, 2, 2) float32 (x, y) frame pixels of the (left, right) wrist
    scores: np.ndarray  # (N, 2) float32 MoveNet keypoint scores, 0-1

    @classmethod
    def empty(cls) -> Wrists:
        return cls(np.zeros((0, 2, 2), np.float32), np.zeros((0, 2), np.float32))


class PoseModel:
    """MoveNet Lightning on a square crop around each person box.

    The crop is a square of `expand` times the box's longer side, centred on the box, so an
    arm raised above the head or stretched sideways stays inside; parts outside the frame are
    black (MoveNet expects a square, undistorted person).
    """

    expand = 1.25

    def __init__(self, backend: Backend):
        self.backend = backend
        self._canvas = np.zeros((POSE_INPUT, POSE_INPUT, 3), np.uint8)  # BGR crop, resized
        self._tensor = np.zeros((1, POSE_INPUT, POSE_INPUT, 3), np.int32)

    def wrists(self, frame: np.ndarray, boxes: np.ndarray) -> Wrists:
        """frame BGR uint8 HxWx3; boxes (N, 4) xyxy person boxes in frame pixels."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return Wrists.empty()
        points = np.zeros((len(boxes), 2, 2), np.float32)
        scores = np.zeros((len(boxes), 2), np.float32)
        try:
            for i, box in enumerate(boxes):
                left, top, side = self._crop(frame, box)
                keypoints = self.backend.run(self._tensor)[0].reshape(17, 3)[list(WRISTS)]
                points[i, :, 0] = left + keypoints[:, 1] * side  # MoveNet gives (y, x, score)
                points[i, :, 1] = top + keypoints[:, 0] * side
                scores[i] = keypoints[:, 2]
        finally:
            self.forget()
        return Wrists(points, scores)

    def forget(self) -> None:
        """Blank the reused input buffers: no copy of a frame outlives its inference."""
        self._canvas.fill(0)
        self._tensor.fill(0)

    def _crop(self, frame: np.ndarray, box: np.ndarray) -> tuple[float, float, float]:
        """Fill the input tensor with the square around `box`; return its left, top, side."""
        x1, y1, x2, y2 = (float(v) for v in box)
        side = max(x2 - x1, y2 - y1, 1.0) * self.expand
        left, top = (x1 + x2 - side) / 2, (y1 + y2 - side) / 2
        height, width = frame.shape[:2]
        # Only the part inside the frame is resized, straight into its place on the canvas;
        # the rest stays black. No full-size crop is ever made.
        fx1, fy1 = max(int(np.floor(left)), 0), max(int(np.floor(top)), 0)
        fx2 = min(int(np.ceil(left + side)), width)
        fy2 = min(int(np.ceil(top + side)), height)
        scale = POSE_INPUT / side
        # Clamped: flooring the frame edge can put it a fraction of a pixel before the square.
        cx1, cy1, cx2, cy2 = (min(max(int(round(v * scale)), 0), POSE_INPUT) for v in
                              (fx1 - left, fy1 - top, fx2 - left, fy2 - top))
        self._canvas.fill(0)
        if fx2 > fx1 and fy2 > fy1 and cx2 > cx1 and cy2 > cy1:
            cv2.resize(frame[fy1:fy2, fx1:fx2], (cx2 - cx1, cy2 - cy1),
                       dst=self._canvas[cy1:cy2, cx1:cx2], interpolation=cv2.INTER_AREA)
        np.copyto(self._tensor[0], self._canvas[..., ::-1])  # BGR to RGB, uint8 to int32
        return left, top, side
