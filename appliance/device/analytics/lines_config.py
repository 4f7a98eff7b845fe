"""Counting lines of a camera and the counting rule's settings (`counting:`), with their
parsers; kept free of numpy so the config loads light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.device.config_reader import ID_PATTERN, ConfigReader, Point, join_key


@dataclass(frozen=True)
class LineConfig:
    name: str
    points: tuple[Point, Point]
    # Any point on the side a person is on after "entering"; defaults to the left of a->b.
    in_side_point: Point | None = None


@dataclass(frozen=True)
class CountingConfig:
    # Half-width of the band around a line, in box heights of the person crossing it. A side
    # is decided only outside the band, so feet hovering on the line never count twice.
    band: float = 0.12
    min_band_px: float = 3.0


def parse_lines(r: ConfigReader, raw: Any, camera_key: str,
                fraction: bool) -> tuple[LineConfig, ...]:
    """A camera's `lines:` mapping of name -> {points, in_side_point}."""
    lines = []
    raw_lines = raw or {}
    r.mapping(raw_lines, join_key(camera_key, "lines"),
              tuple(raw_lines) if isinstance(raw_lines, dict) else ())
    for name, line in raw_lines.items():
        lkey = f"{camera_key}.lines.{name}"
        r.string(name, lkey, ID_PATTERN)
        line = r.mapping(line, lkey, ("points", "in_side_point"))
        if "points" not in line:
            raise r.fail(f"{lkey}.points", "missing")
        a, b = r.points(line["points"], f"{lkey}.points", 2, fraction)
        if a == b:
            raise r.fail(f"{lkey}.points", "the two points are the same")
        inside = line.get("in_side_point")
        inside = r.point(inside, f"{lkey}.in_side_point", fraction) if inside is not None else None
        if inside is not None and _cross(a, b, inside) == 0:
            raise r.fail(f"{lkey}.in_side_point", "lies on the line; it must be on one side")
        lines.append(LineConfig(name=name, points=(a, b), in_side_point=inside))
    return tuple(lines)


def parse_counting(r: ConfigReader, raw: Any, key: str) -> CountingConfig:
    return r.numbers(CountingConfig, raw, key)


def _cross(a: Point, b: Point, p: Point) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
