"""A cheap motion test, to skip the detector when nothing in view moved.

Each frame is shrunk to a small grey image (about 80 px wide, blurred a little against
sensor noise) and compared with the one the detector last ran on; if fewer than `threshold`
of the watched pixels changed by more than `pixel_delta` grey levels, the scene is still and
the previous detections stand. The detector still runs at least every `max_skip_seconds`,
so a slowly changing scene is never frozen for long, and on every frame while a tracked
person walks (faster than `walking_speed`), however few pixels they change.

Only the watched area counts: motion inside the camera's `motion_mask` polygons (a
burned-in clock, a screen) or outside its `roi` (where nobody is detected anyway) is
ignored."""

from __future__ import annotations

import cv2
import numpy as np

from appliance.device.detect.motion_config import MotionConfig

Polygon = np.ndarray  # (N, 2) float32, pixels of the source frame


class MotionGate:
    WIDTH = 80

    def __init__(self, config: MotionConfig, width: int, height: int,
                 ignore: list[Polygon] = (), watch: Polygon | None = None):
        self.config = config
        self._size = (self.WIDTH, max(1, round(height * self.WIDTH / width)))
        self._scale = self.WIDTH / width
        self.watched = self._watched(ignore, watch)
        self._minimum = config.threshold * max(1, int(self.watched.sum()))
        self._reference: np.ndarray | None = None  # a tiny grey thumbnail, not a frame
        self._reference_time = -np.inf
        self.skipped = 0

    def _watched(self, ignore: list[Polygon], watch: Polygon | None) -> np.ndarray:
        width, height = self._size
        mask = np.zeros((height, width), np.uint8)
        if watch is None:
            mask[:] = 1
        else:
            cv2.fillPoly(mask, [np.round(watch * self._scale).astype(np.int32)], 1)
        for polygon in ignore:
            cv2.fillPoly(mask, [np.round(polygon * self._scale).astype(np.int32)], 0)
        return mask.astype(bool)

    def _thumbnail(self, frame: np.ndarray) -> np.ndarray:
        # A linear resize to twice the size, then an exact 2x area average: the same
        # smoothing as one area resize at a quarter of its cost on an odd scale factor.
        # A linear resize only reads the 2x2 pixels around each sample, so a frame more than
        # 4x the thumbnail is first box-averaged by a whole factor (OpenCV's fast path):
        # without it a 4K frame's thumbnail sampled 1 pixel in 24, and a small person
        # walking out of the door changed too few of them to wake the detector.
        width, height = self._size
        factor = frame.shape[1] // (4 * width)
        if factor > 1:
            frame = cv2.resize(frame, (frame.shape[1] // factor, frame.shape[0] // factor),
                               interpolation=cv2.INTER_AREA)
        double = cv2.resize(frame, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
        grey = cv2.resize(cv2.cvtColor(double, cv2.COLOR_BGR2GRAY), self._size,
                          interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(grey, (3, 3), 0)

    def still(self, frame: np.ndarray, timestamp: float, fastest: float = 0.0) -> bool:
        """True when the detector can be skipped for this frame; `fastest` is the speed of
        the fastest tracked person (box heights a second)."""
        grey = self._thumbnail(frame)
        if self._reference is not None and fastest <= self.config.walking_speed and \
                timestamp - self._reference_time < self.config.max_skip_seconds:
            changed = (cv2.absdiff(grey, self._reference) > self.config.pixel_delta) & \
                self.watched
            if np.count_nonzero(changed) < self._minimum:
                self.skipped += 1
                return True
        self._reference, self._reference_time = grey, timestamp
        return False
