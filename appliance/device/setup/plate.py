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

from appliance.device.detect.detections import Detections
from appliance.device.detect.person import PersonDetector

BLANK = 128  # grey: what a spot people never left looks like on the plate
MAX_WIDTH = 960  # the plate is at most this wide: a median of 1080p frames costs a Pi dearly
ROWS_PER_BAND = 64  # the median runs on bands of rows, to bound its memory


@dataclass(frozen=True)
class Plate:
    image: np.ndarray  # BGR uint8, possibly smaller than the frame
    frame_size: tuple[int, int]  # (width, height) of the camera's frames
    samples: int
    blanked: float  # share of the plate blanked


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
                 min_visible: float = 0.25):
        self.detector = detector
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
        detections = self.detector.detect(frame)
        self.detector.forget()
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
        return Plate(plate, self.frame_size, len(views), round(float(blank.mean()), 4))

    def clear(self) -> None:
        self._views.clear()


def people_on(plate: Plate, detector: PersonDetector) -> Detections:
    """What the detector still finds on the plate, at its own score floor: any of it and
    the plate is not served."""
    detections = detector.detect(plate.image)
    detector.forget()
    return detections


def encode_png(plate: Plate) -> bytes:
    """The plate as PNG bytes, in memory only (never written to a file)."""
    ok, data = cv2.imencode(".png", plate.image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()

