"""A people-free background plate: the per-pixel median of frames sampled over a minute,
leaving out every person box the detector finds (with a margin).

Where people stood in too many samples to leave a reliable median (a queue that never
empties, a mannequin the detector takes for a person) the plate is blanked, never shown.
The plate is checked by the same detector before it is served; it lives only in memory.
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from appliance.device.detect.area import DetectionArea
from appliance.device.detect.detections import Detections
from appliance.device.detect.person import PersonDetector

BLANK = 128  # grey: a blanked spot with nothing shown anywhere near it
MAX_WIDTH = 960  # the plate is at most this wide: a median of 1080p frames costs a Pi dearly
ROWS_PER_BAND = 64  # the median runs on bands of rows, to bound its memory


@dataclass(frozen=True)
class Plate:
    image: np.ndarray  # BGR uint8, possibly smaller than the frame
    frame_size: tuple[int, int]  # (width, height) of the camera's frames
    samples: int
    blanked: float  # share of the plate blanked


def find_people(detector: PersonDetector, image: np.ndarray, tiles: tuple[int, int] = (1, 1),
                tile_score: float = 0.0) -> Detections:
    """Everyone the detector finds on the whole image and, where the camera uses tiles (its
    people are small), those it finds on a tile with at least `tile_score`: both sets."""
    height, width = image.shape[:2]
    found = [detector.detect(image)]
    if tiles != (1, 1):
        area = DetectionArea(None, tiles, width, height, detector.nms_iou)
        tiled = area.merge([(detector.detect(image[y1:y2, x1:x2]), (x1, y1))
                            for x1, y1, x2, y2 in area.windows])
        found.append(tiled[tiled.scores >= tile_score])
    detector.forget()
    return Detections(np.concatenate([d.xyxy for d in found]),
                      np.concatenate([d.scores for d in found]))


def person_mask(detections: Detections, shape: tuple[int, int], scale: float,
                margin: float) -> np.ndarray:
    """True on every box (grown by `margin` of its width and height), at plate scale."""
    mask = np.zeros(shape, bool)
    for x1, y1, x2, y2 in detections.xyxy * scale:
        dx, dy = margin * (x2 - x1), margin * (y2 - y1)
        mask[max(int(y1 - dy), 0):int(np.ceil(y2 + dy)),
             max(int(x1 - dx), 0):int(np.ceil(x2 + dx))] = True
    return mask


class PlateBuilder:
    """Keeps the last `samples` views, each with its people masked out."""

    def __init__(self, detector: PersonDetector, samples: int = 30, margin: float = 0.25,
                 min_visible: float = 0.25, tiles: tuple[int, int] = (1, 1)):
        self.detector = detector
        self.tiles = tiles
        self.samples = samples
        self.margin = margin
        # A pixel needs at least this share of the views free of people to be shown.
        self.min_visible = min_visible
        self._views: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=samples)
        self.frame_size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self._views)

    def add(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        self.frame_size = (width, height)
        detections = find_people(self.detector, frame, self.tiles)
        scale = min(1.0, MAX_WIDTH / width)
        view = frame if scale == 1.0 else cv2.resize(
            frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        self._views.append((view.copy(), person_mask(detections, view.shape[:2], scale,
                                                     self.margin)))

    def build(self) -> Plate:
        views = np.stack([v for v, _ in self._views])
        masks = np.stack([m for _, m in self._views])
        visible = (~masks).sum(0)
        blank = visible < max(3, int(np.ceil(self.min_visible * len(views))))
        plate = np.full(views.shape[1:], BLANK, np.uint8)
        for top in range(0, plate.shape[0], ROWS_PER_BAND):
            rows = slice(top, top + ROWS_PER_BAND)
            band = views[:, rows].astype(np.float32)
            band[masks[:, rows]] = np.nan
            with warnings.catch_warnings():  # all-NaN pixels warn; they are blanked
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(band, axis=0)
            shown = ~blank[rows]
            plate[rows][shown] = np.round(median[shown]).astype(np.uint8)
        if blank.any():
            plate[blank] = _smooth_fill(plate, ~blank)[blank]
        return Plate(plate, self.frame_size, len(views), round(float(blank.mean()), 4))

    def clear(self) -> None:
        self._views.clear()


def _smooth_fill(plate: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """The shown pixels' colours, blurred far (a normalised box filter a quarter of the
    view wide): what fills the blanked spots. A flat grey patch has sharp edges, and a
    patch the size of a person reads as a silhouette to the detector; this has none, and
    it is made of the people-free pixels only."""
    size = max(plate.shape[1] // 4, 3)
    weight = shown.astype(np.float32)
    total = cv2.blur(plate.astype(np.float32) * weight[..., None], (size, size))
    count = cv2.blur(weight, (size, size))[..., None]
    fill = np.where(count > 1e-3, total / np.maximum(count, 1e-3), BLANK)
    return np.clip(np.round(fill), 0, 255).astype(np.uint8)


def people_on(plate: Plate, detector: PersonDetector, tiles: tuple[int, int] = (1, 1),
              tile_score: float = 0.5) -> Detections:
    """Who the detector still finds on the plate: any box at its own score floor on the
    whole view, or a confident one (the tracker's high score) on the camera's tiles. Any of
    them and the plate is not served. (Tiles at the floor fire on shelves full of goods:
    measured on the supermarket clip, 0.10-0.30 on a plate with nobody on it.)"""
    return find_people(detector, plate.image, tiles, tile_score)


def encode_png(plate: Plate) -> bytes:
    """The plate as PNG bytes, in memory only (never written to a file)."""
    ok, data = cv2.imencode(".png", plate.image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()

