"""Motion-skip settings (apart from the OpenCV code, so the config loads light)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MotionConfig:
    enabled: bool = False
    threshold: float = 0.002  # share of small-image pixels that changed
    pixel_delta: int = 12
    max_skip_seconds: float = 2.0
    # While a tracked person moves faster than this (box heights a second), the detector
    # runs on every frame: a walker far away or walking slowly changes few pixels, and
    # counting and dwell need them seen. Below behaviour.still_speed (0.35), so a slow
    # browser keeps it on; a standing person's filtered speed stays under it.
    walking_speed: float = 0.2
