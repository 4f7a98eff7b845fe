"""Where the person detector looks: the whole frame, a region of interest, and/or tiles.

A region of interest (`cameras[].roi`) crops the detector's view to the polygon's
bounding box (so far people get more of the model's input) and drops people whose feet are
outside the polygon. Tiles (`cameras[].tiles: [cols, rows]`) split that view into
overlapping parts, each run through the detector at its full input size, for cameras
mounted high where people are small; boxes found twice where tiles overlap are merged, and
so is the part of a person that a tile edge cut off (it lies inside the whole person, found
by the next tile).
"""

from __future__ import annotations

import cv2
import numpy as np

from appliance.device.detect.detections import Detections, box_iou

OVERLAP = 0.2  # of a tile's size, so a person on a seam is whole in one tile
# A box with this share of its area inside a better-scored box is part of that person (a
# tile edge cut it, or the detector saw a torso apart): dropped when tiles are merged.
CONTAINED = 0.7


class DetectionArea:
    def __init__(self, roi: np.ndarray | None, tiles: tuple[int, int], width: int,
                 height: int, nms_iou: float):
        self.roi = roi  # polygon in frame pixels, or None
        self.nms_iou = nms_iou
        if roi is not None:
            x1, y1 = np.floor(roi.min(0)).astype(int)
            x2, y2 = np.ceil(roi.max(0)).astype(int)
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        else:
            x1, y1, x2, y2 = 0, 0, width, height
        cols, rows = tiles
        xs, ys = _spans(x1, x2, cols), _spans(y1, y2, rows)
        self.windows = [(a, b, c, d) for b, d in ys for a, c in xs]

    @property
    def whole_frame(self) -> bool:
        return self.roi is None and len(self.windows) == 1

    def merge(self, parts: list[tuple[Detections, tuple[int, int]]]) -> Detections:
        """Detections of each window (in window pixels) -> one set in frame pixels."""
        boxes = [d.xyxy + np.array([x, y, x, y], np.float32) for d, (x, y) in parts if len(d)]
        if not boxes:
            return Detections.empty()
        xyxy = np.concatenate(boxes)
        scores = np.concatenate([d.scores for d, _ in parts if len(d)])
        if len(parts) > 1:
            keep = merge_boxes(xyxy, scores, self.nms_iou)
            xyxy, scores = xyxy[keep], scores[keep]
        if self.roi is not None:
            contour = self.roi.astype(np.float32).reshape(-1, 1, 2)
            feet = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], 1)
            inside = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0
                               for x, y in feet], bool)
            xyxy, scores = xyxy[inside], scores[inside]
        return Detections(xyxy.astype(np.float32), scores.astype(np.float32))


def merge_boxes(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression that also drops a box lying mostly (CONTAINED) inside
    a better one; returns kept indices, best first."""
    order = np.argsort(-scores)
    areas = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        lt = np.maximum(xyxy[rest, :2], xyxy[best, :2])
        rb = np.minimum(xyxy[rest, 2:], xyxy[best, 2:])
        inside = np.clip(rb - lt, 0, None).prod(1) / np.maximum(areas[rest], 1e-9)
        iou = box_iou(xyxy[best:best + 1], xyxy[rest])[0]
        order = rest[(iou <= iou_threshold) & (inside <= CONTAINED)]
    return np.asarray(keep, dtype=np.int64)


def _spans(start: int, end: int, parts: int) -> list[tuple[int, int]]:
    """`parts` overlapping spans covering start..end, each overlapping the next by OVERLAP."""
    size = (end - start) / (parts - (parts - 1) * OVERLAP)
    step = size * (1 - OVERLAP)
    return [(int(round(start + i * step)), int(round(min(start + i * step + size, end))))
            for i in range(parts)]
