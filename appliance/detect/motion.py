"""A cheap motion test, to skip the detector when nothing in view moved.

Each frame is shrunk to a small grey image (about 80 px wide, blurred a little against
sensor noise) and compared with the last frame the detector ran on; if fewer than
`threshold` of its pixels changed by more than `pixel_delta` grey levels, the scene is
still and the previous detections stand. The detector still runs at least every
`max_skip_seconds`, so a slowly changing scene is never frozen for long."""

from __future__ import annotations

import cv2
import numpy as np

from appliance.detect.motion_config import MotionConfig


class MotionGate:
    WIDTH = 80

    def __init__(self, config: MotionConfig):
        self.config = config
        self._reference: np.ndarray | None = None  # a tiny grey thumbnail, not a frame
        self._reference_time = -np.inf
        self.skipped = 0

    def still(self, frame: np.ndarray, timestamp: float) -> bool:
        """True when the detector can be skipped for this frame."""
        height, width = frame.shape[:2]
        small = cv2.resize(frame, (self.WIDTH, max(1, round(height * self.WIDTH / width))),
                           interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0)
        if self._reference is not None and self._reference.shape == grey.shape and \
                timestamp - self._reference_time < self.config.max_skip_seconds:
            changed = np.count_nonzero(cv2.absdiff(grey, self._reference) >
                                       self.config.pixel_delta)
            if changed < self.config.threshold * grey.size:
                self.skipped += 1
                return True
        self._reference, self._reference_time = grey, timestamp
        return False
