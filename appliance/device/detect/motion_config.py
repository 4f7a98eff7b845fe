"""Motion-skip settings (`performance.motion_skip:`) and their parser, apart from the OpenCV
code, so the config loads light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.device.config_reader import ConfigReader, join_key


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


def parse_motion_skip(r: ConfigReader, raw: Any, key: str) -> MotionConfig:
    m = r.mapping(raw, key, ("enabled", "threshold", "pixel_delta", "max_skip_seconds",
                             "walking_speed"))
    d = MotionConfig()
    return MotionConfig(
        enabled=r.flag(m.get("enabled", False), join_key(key, "enabled")),
        threshold=r.number(m.get("threshold", d.threshold), join_key(key, "threshold"), 0, 1),
        pixel_delta=int(r.number(m.get("pixel_delta", d.pixel_delta),
                                 join_key(key, "pixel_delta"), 1, 255)),
        max_skip_seconds=r.number(m.get("max_skip_seconds", d.max_skip_seconds),
                                  join_key(key, "max_skip_seconds"), 0, 60),
        walking_speed=r.number(m.get("walking_speed", d.walking_speed),
                               join_key(key, "walking_speed"), 0, 10))
