"""Tracker settings (`tracker:`), with the parser; kept free of numpy so the config loads
light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.device.config_reader import ConfigReader


@dataclass(frozen=True)
class TrackerConfig:
    high_score: float = 0.5
    new_track_score: float = 0.6
    match_iou: float = 0.2
    # Seconds a lost track is kept for re-association (media time, so fps independent).
    lost_seconds: float = 2.0
    # A track counts as a visitor only after its foot point moved this many box heights;
    # mannequins and posters never do.
    min_travel: float = 0.5


def parse_tracker(r: ConfigReader, raw: Any, key: str) -> TrackerConfig:
    return r.numbers(TrackerConfig, raw, key)
