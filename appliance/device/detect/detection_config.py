"""Person detector thresholds (`detection:`), with the parser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.device.config_reader import ConfigReader, join_key


@dataclass(frozen=True)
class DetectionConfig:
    # Boxes below this score are dropped before tracking; ByteTrack uses the 0.1-0.5 band.
    min_score: float = 0.1
    nms_iou: float = 0.45


def parse_detection(r: ConfigReader, raw: Any, key: str) -> DetectionConfig:
    d = r.mapping(raw, key, ("min_score", "nms_iou"))
    return DetectionConfig(
        min_score=r.number(d.get("min_score", 0.1), join_key(key, "min_score"), 0.01, 1),
        nms_iou=r.number(d.get("nms_iou", 0.45), join_key(key, "nms_iou"), 0.05, 1),
    )
