"""Zones of a camera (shelves, checkouts, queues, ...) with their parser; kept free of numpy
so the config loads light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.device.config_reader import ID_PATTERN, ConfigReader, Point, join_key

ZONE_KINDS = ("shelf", "checkout", "queue", "staff", "entrance", "area")


@dataclass(frozen=True)
class ZoneConfig:
    name: str
    kind: str
    points: tuple[Point, ...]


def parse_zones(r: ConfigReader, raw: Any, camera_key: str,
                fraction: bool) -> tuple[ZoneConfig, ...]:
    """A camera's `zones:` mapping of name -> {kind, points}, or name -> polygon."""
    zones = []
    raw_zones = raw or {}
    r.mapping(raw_zones, join_key(camera_key, "zones"),
              tuple(raw_zones) if isinstance(raw_zones, dict) else ())
    for name, zone in raw_zones.items():
        zkey = f"{camera_key}.zones.{name}"
        r.string(name, zkey, ID_PATTERN)
        if isinstance(zone, list):  # shorthand: just the polygon, kind "area"
            zone = {"points": zone}
        zone = r.mapping(zone, zkey, ("kind", "points"))
        if "points" not in zone:
            raise r.fail(f"{zkey}.points", "missing")
        zones.append(ZoneConfig(
            name=name,
            kind=r.choice(zone.get("kind", "area"), f"{zkey}.kind", ZONE_KINDS),
            points=r.points(zone["points"], f"{zkey}.points", None, fraction),
        ))
    return tuple(zones)
