"""The cheaper-frames switches (`performance:`), with the parser; each is measured side by
side by `make bench` (docs/performance.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appliance.device.config_reader import ConfigReader, join_key
from appliance.device.detect.motion_config import MotionConfig, parse_motion_skip


@dataclass(frozen=True)
class PerformanceConfig:
    # Decode the next frame on its own thread while this one is analysed.
    decode_thread: bool = False
    motion_skip: MotionConfig = field(default_factory=MotionConfig)
    # Live sources: lower the processing rate when the board cannot keep up.
    adaptive_rate: bool = False


def parse_performance(r: ConfigReader, raw: Any, key: str) -> PerformanceConfig:
    p = r.mapping(raw, key, ("decode_thread", "motion_skip", "adaptive_rate"))
    flags = {name: r.flag(p.get(name, False), join_key(key, name))
             for name in ("decode_thread", "adaptive_rate")}
    return PerformanceConfig(**flags, motion_skip=parse_motion_skip(
        r, p.get("motion_skip", {}), join_key(key, "motion_skip")))
