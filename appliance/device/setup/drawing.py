"""What the installer draws, in pixels of the camera's frames, and the camera's section of
the device YAML it becomes (in the camera's own `coordinates`).

A drawing is plain JSON from the page:
  {"lines": [{"name", "points": [[x, y], [x, y]], "in_side_point": [x, y]}],
   "zones": [{"name", "kind", "points": [[x, y], ...]}],
   "roi": [[x, y], ...] or null, "motion_mask": [[[x, y], ...], ...],
   "floor": {"points": four [x, y] corners of a floor rectangle, "width_m", "depth_m"} or null}
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from appliance.device.camera_config import CameraConfig

# The camera keys the setup page owns; every other key of the camera is left as it is.
GEOMETRY_KEYS = ("lines", "zones", "roi", "motion_mask", "homography")
EDGE_MARGIN = 0.04  # of the frame: a line end closer than this to the edge is fragile
MIN_DOOR_PX = 24  # a door narrower than this at the detector's input is fragile


class DrawingError(ValueError):
    """The page sent something that is not a drawing (not the installer's mistake)."""


def from_camera(camera: CameraConfig, frame_size: tuple[int, int]) -> dict:
    """The camera's current geometry as a drawing in frame pixels (for the page)."""
    sx, sy = camera.scale(*frame_size)

    def px(points):
        return [[round(x * sx, 1), round(y * sy, 1)] for x, y in points]

    return {
        "lines": [{"name": line.name, "points": px(line.points),
                   "in_side_point": px([line.in_side_point])[0] if line.in_side_point else None}
                  for line in camera.lines],
        "zones": [{"name": z.name, "kind": z.kind, "points": px(z.points)}
                  for z in camera.zones],
        "roi": px(camera.roi) if camera.roi else None,
        "motion_mask": [px(polygon) for polygon in camera.motion_mask],
        "floor": None,
    }


def to_section(drawing: Any, coordinates: str, frame_size: tuple[int, int]) -> dict:
    """The camera keys for a drawing; an empty one is None (the key is removed), and
    `homography` is only there when the floor rectangle was drawn."""
    if not isinstance(drawing, dict):
        raise DrawingError("expected a JSON object")
    width, height = frame_size

    def to_config(points) -> list:
        if not isinstance(points, list):
            raise DrawingError("expected a list of points")
        out = []
        for p in points:
            if not (isinstance(p, list) and len(p) == 2
                    and all(isinstance(v, (int, float)) for v in p)):
                raise DrawingError(f"not an [x, y] point: {p!r}")
            if coordinates == "fraction":
                out.append([round(p[0] / width, 4), round(p[1] / height, 4)])
            else:
                out.append([_number(p[0]), _number(p[1])])
        return out

    lines = {}
    for line in drawing.get("lines") or []:
        entry = {"points": to_config(line.get("points"))}
        if line.get("in_side_point") is not None:
            entry["in_side_point"] = to_config([line["in_side_point"]])[0]
        lines[str(line.get("name"))] = entry
    zones = {str(z.get("name")): {"kind": z.get("kind", "area"),
                                  "points": to_config(z.get("points"))}
             for z in drawing.get("zones") or []}
    section = {
        "lines": lines or None,
        "zones": zones or None,
        "roi": to_config(drawing["roi"]) if drawing.get("roi") else None,
        "motion_mask": [to_config(p) for p in drawing.get("motion_mask") or []] or None,
    }
    floor = drawing.get("floor")
    if floor:
        section["homography"] = floor_homography(floor, coordinates, frame_size)
    return section


def _number(value: float) -> float | int:
    value = round(float(value), 1)
    return int(value) if value.is_integer() else value


def floor_homography(floor: dict, coordinates: str, frame_size: tuple[int, int]) -> list:
    """Pixels (of the camera's geometry) to floor metres, from the four corners of a floor
    rectangle the installer measured: corner 1 is (0, 0), 2 is (width, 0), 3 is
    (width, depth), 4 is (0, depth)."""
    points = floor.get("points")
    try:
        width, depth = float(floor["width_m"]), float(floor["depth_m"])
    except (KeyError, TypeError, ValueError):
        raise DrawingError("floor: width_m and depth_m must be numbers") from None
    if not isinstance(points, list) or len(points) != 4:
        raise DrawingError("floor: expected four corner points")
    pixels = np.array(points, np.float64)
    if coordinates == "fraction":
        pixels /= np.array(frame_size, np.float64)
    metres = np.array([[0, 0], [width, 0], [width, depth], [0, depth]], np.float64)
    matrix = cv2.getPerspectiveTransform(pixels.astype(np.float32), metres.astype(np.float32))
    return [[float(f"{v:.6g}") for v in row] for row in matrix]


def crossing_edges(points) -> tuple[int, int] | None:
    """The first two edges (1-based) of a closed polygon that cross each other, if any."""
    p = [np.array(q, np.float64) for q in points]
    n = len(p)
    edges = [(p[i], p[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a corner
            if _segments_cross(*edges[i], *edges[j]):
                return i + 1, j + 1
    return None


def _segments_cross(a, b, c, d) -> bool:
    def side(p, q, r):
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0


def self_crossing(camera: CameraConfig, key: str) -> str | None:
    """A problem line for the first polygon of the camera that crosses itself."""
    polygons = [(f"{key}.zones.{z.name}.points", z.points) for z in camera.zones]
    if camera.roi:
        polygons.append((f"{key}.roi", camera.roi))
    polygons += [(f"{key}.motion_mask[{i}]", p) for i, p in enumerate(camera.motion_mask)]
    for name, points in polygons:
        edges = crossing_edges(points)
        if edges:
            return (f"{name}: the polygon crosses itself (edges {edges[0]} and {edges[1]}); "
                    "draw its corners in order around it")
    return None


def suggestions(camera: CameraConfig, frame_size: tuple[int, int],
                detector_input: tuple[int, int]) -> list[str]:
    """Plain advice where counting looks fragile, from the geometry alone."""
    width, height = frame_size
    sx, sy = camera.scale(width, height)
    # The detector sees the frame letterboxed into its input: this many input pixels a pixel.
    to_input = min(detector_input[0] / width, detector_input[1] / height)
    tiles = max(camera.tiles)
    advice = []
    for line in camera.lines:
        (ax, ay), (bx, by) = ((x * sx, y * sy) for x, y in line.points)
        edge = min(ax, bx, ay, by, width - ax, width - bx, height - ay, height - by)
        if edge < EDGE_MARGIN * min(width, height):
            advice.append(f"line {line.name}: an end is {edge:.0f} px from the frame edge; "
                          "people who leave the view there are never counted: keep the line "
                          "inside the view, where people are seen on both sides of it")
        door = np.hypot(bx - ax, by - ay) * to_input * tiles
        if door < MIN_DOOR_PX:
            advice.append(f"line {line.name}: the door is {door:.0f} px wide at the detector's "
                          f"input (under {MIN_DOOR_PX}): people there may be too small to "
                          "detect; set an roi around the door or tiles")
    return advice
