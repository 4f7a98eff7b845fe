"""A camera's settings and geometry (`cameras:` entries) with their parser.

Geometry (line end points, zone polygons, roi, masks) is in pixels of the source frame by
default; with `coordinates: fraction` it is in 0-1 fractions of the frame width and height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.device.analytics.lines_config import LineConfig, parse_lines
from appliance.device.analytics.zones_config import ZoneConfig, parse_zones
from appliance.device.config_reader import ID_PATTERN, ConfigReader, Point, join_key

# How a child process decodes files and network streams (appliance/device/sources/): auto
# takes the board's decoder where there is one (V4L2 memory-to-memory through ffmpeg, a
# Jetson's NVDEC through GStreamer); gstreamer is GStreamer's software decoding.
DECODERS = ("auto", "software", "v4l2m2m", "gstreamer", "nvdec")


@dataclass(frozen=True)
class CameraConfig:
    id: str
    source: str
    # Processing rate cap in frames per second of media time; None processes every frame.
    fps: float | None = None
    coordinates: str = "pixels"  # or "fraction"
    lines: tuple[LineConfig, ...] = ()
    zones: tuple[ZoneConfig, ...] = ()
    # Detect only inside this polygon (the detector sees its bounding box; people whose feet
    # are outside are dropped), and/or in cols x rows overlapping tiles, for small people.
    roi: tuple[Point, ...] | None = None
    tiles: tuple[int, int] = (1, 1)
    # Polygons where motion never wakes the detector (a burned-in clock, a screen, a door
    # glass with traffic behind it); people there are still detected when it runs.
    motion_mask: tuple[tuple[Point, ...], ...] = ()
    # 3x3 matrix from pixels (of this geometry) to metres on the floor, for groups.
    homography: tuple[tuple[float, float, float], ...] | None = None
    decoder: str = "auto"

    def scale(self, width: int, height: int,
              source_size: tuple[int, int] | None = None) -> tuple[float, float]:
        """Factors that turn this camera's geometry into pixels of a width x height frame;
        `source_size` is the camera's own frame size when the decoder scaled it down."""
        if self.coordinates == "fraction":
            return float(width), float(height)
        if source_size is None:
            return 1.0, 1.0
        return width / source_size[0], height / source_size[1]


def parse_camera(r: ConfigReader, raw: Any, key: str) -> CameraConfig:
    c = r.mapping(raw, key, ("id", "source", "fps", "coordinates", "lines", "zones", "roi",
                             "tiles", "homography", "motion_mask", "decoder"))
    for required in ("id", "source"):
        if required not in c:
            raise r.fail(join_key(key, required), "missing")
    coordinates = r.choice(c.get("coordinates", "pixels"), join_key(key, "coordinates"),
                           ("pixels", "fraction"))
    fraction = coordinates == "fraction"
    fps = c.get("fps")
    source = c["source"]
    if isinstance(source, int) and not isinstance(source, bool):
        source = str(source)  # V4L2 device index
    lines = parse_lines(r, c.get("lines"), key, fraction)
    zones = parse_zones(r, c.get("zones"), key, fraction)
    tiles = c.get("tiles", [1, 1])
    if not isinstance(tiles, list) or len(tiles) != 2 or any(
            isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 4 for n in tiles):
        raise r.fail(join_key(key, "tiles"),
                     f"expected [columns, rows] of 1-4 each, got {tiles!r}")
    roi = c.get("roi")
    mask_key = join_key(key, "motion_mask")
    motion_mask = c.get("motion_mask") or []
    if not isinstance(motion_mask, list) or any(
            not isinstance(polygon, list) or not all(isinstance(p, list) for p in polygon)
            for polygon in motion_mask):
        raise r.fail(mask_key, "expected a list of polygons, each a list of [x, y] points "
                     "(one polygon too goes inside a list: [[[x, y], ...]])")
    return CameraConfig(
        homography=_homography(r, c.get("homography"), join_key(key, "homography")),
        roi=None if roi is None else r.points(roi, join_key(key, "roi"), None, fraction),
        motion_mask=tuple(r.points(polygon, f"{mask_key}[{i}]", None, fraction)
                          for i, polygon in enumerate(motion_mask)),
        tiles=(tiles[0], tiles[1]),
        id=r.string(c["id"], join_key(key, "id"), ID_PATTERN),
        source=r.resolve(r.string(source, join_key(key, "source"))),
        fps=None if fps in (None, 0) else r.number(fps, join_key(key, "fps"), 0, 240,
                                                   low_open=True),
        coordinates=coordinates,
        decoder=r.choice(c.get("decoder", "auto"), join_key(key, "decoder"), DECODERS),
        lines=lines,
        zones=zones,
    )


def _homography(r: ConfigReader, raw: Any, key: str) -> tuple[tuple[float, ...], ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != 3 or any(
            not isinstance(row, list) or len(row) != 3 for row in raw):
        raise r.fail(key, "expected a 3x3 matrix (three rows of three numbers)")
    h = tuple(tuple(r.number(v, f"{key}[{i}]") for v in row) for i, row in enumerate(raw))
    det = (h[0][0] * (h[1][1] * h[2][2] - h[1][2] * h[2][1])
           - h[0][1] * (h[1][0] * h[2][2] - h[1][2] * h[2][0])
           + h[0][2] * (h[1][0] * h[2][1] - h[1][1] * h[2][0]))
    if abs(det) < 1e-12:
        raise r.fail(key, "is singular: it cannot map pixels to the floor")
    return h
