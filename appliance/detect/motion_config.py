"""Motion-skip settings (apart from the OpenCV code, so the config loads light)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MotionConfig:
    enabled: bool = False
    threshold: float = 0.002  # share of small-image pixels that changed
    pixel_delta: int = 12
    max_skip_seconds: float = 2.0
