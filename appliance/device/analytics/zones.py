"""Zone membership by foot point, with hysteresis in space and time.

A person is in a zone by their foot point (bottom centre of the box). They enter once the
foot point is `zone_margin` box heights inside the polygon and leave once it is that far
outside for `exit_seconds`: a foot point jittering on the border changes nothing, and a
brief occlusion does not split a visit. Dwell is the time from entering to the last moment
inside. In `shelf`, `area` and `entrance` zones a visit counts only once the person has
moved (a mannequin in a shop window never does; a shopper who stood still before walking
off counts from when they stood there); in `queue`, `checkout` and `staff` zones standing
still is what people do (a shopper paying, a cashier at the till) and fixtures are not put
there, so presence alone counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.device.analytics.behaviour_config import BehaviourConfig
from appliance.device.analytics.zones_config import ZoneConfig
from appliance.device.track.tracker import Tracks

PRESENCE_KINDS = ("queue", "checkout", "staff")


class Polygon:
    """A closed polygon in pixels, with a vectorised signed distance (positive inside)."""

    def __init__(self, points: np.ndarray):
        self.points = np.asarray(points, np.float64)
        self.starts = self.points
        self.ends = np.roll(self.points, -1, axis=0)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """(N,) bool: even-odd rule, for (N, 2) points."""
        x, y = xy[:, 0:1], xy[:, 1:2]
        x1, y1 = self.starts[:, 0], self.starts[:, 1]
        x2, y2 = self.ends[:, 0], self.ends[:, 1]
        straddles = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        return (straddles & (x < x_at)).sum(axis=1) % 2 == 1

    def distance(self, xy: np.ndarray) -> np.ndarray:
        """(N,) distance to the border: positive inside, negative outside."""
        if len(xy) == 0:
            return np.zeros(0)
        edge = self.ends - self.starts  # (E, 2)
        rel = xy[:, None, :] - self.starts[None]  # (N, E, 2)
        t = np.clip((rel * edge).sum(-1) / np.maximum((edge**2).sum(-1), 1e-12), 0, 1)
        nearest = np.linalg.norm(rel - t[..., None] * edge, axis=-1).min(axis=1)
        return np.where(self.contains(xy), nearest, -nearest)


@dataclass(frozen=True)
class Visit:
    """One person's completed visit of one zone (lives only until folded into counts)."""

    track_id: int
    zone: str
    seconds: float


@dataclass
class _Inside:
    entered: float
    last_inside: float
    confirmed: bool  # a person (moved, or in a presence zone), not a fixture


class ZoneMembership:
    def __init__(self, zones: tuple[ZoneConfig, ...], config: BehaviourConfig,
                 scale=(1.0, 1.0)):
        self.zones = zones
        self.config = config
        self.polygons = [Polygon(np.array(z.points, np.float64) * np.array(scale))
                         for z in zones]
        self._inside: list[dict[int, _Inside]] = [{} for _ in zones]
        self.occupancy: dict[str, int] = {}  # the last frame's, for the setup's walk test

    def update(self, tracks: Tracks, timestamp: float) -> tuple[dict[str, int], list[Visit]]:
        """Occupancy per zone for this frame, and the visits that ended."""
        ended: list[Visit] = []
        occupancy = {}
        present = set(tracks.ids.tolist())
        feet = tracks.feet.astype(np.float64)
        margin = self.config.zone_margin * (tracks.xyxy[:, 3] - tracks.xyxy[:, 1])
        for zone, polygon, inside in zip(self.zones, self.polygons, self._inside,
                                         strict=True):
            distance = polygon.distance(feet)
            presence = zone.kind in PRESENCE_KINDS
            for k, track_id in enumerate(tracks.ids.tolist()):
                state = inside.get(track_id)
                if state is None and distance[k] >= margin[k]:
                    inside[track_id] = _Inside(timestamp, timestamp, presence)
                elif state is not None and distance[k] > -margin[k]:
                    state.last_inside = timestamp
                if state is not None and tracks.moving[k]:
                    state.confirmed = True
            for track_id, state in list(inside.items()):
                # Outside (or lost from view) long enough: the visit is over.
                if timestamp - state.last_inside >= self.config.exit_seconds:
                    if state.confirmed:
                        ended.append(Visit(track_id, zone.name,
                                           state.last_inside - state.entered))
                    del inside[track_id]
            occupancy[zone.name] = sum(1 for i, state in inside.items()
                                       if i in present and state.confirmed)
        self.occupancy = occupancy
        return occupancy, ended

    def inside(self, track_id: int) -> list[str]:
        """The zones this person is in now."""
        return [z.name for z, inside in zip(self.zones, self._inside, strict=True)
                if track_id in inside and inside[track_id].confirmed]

    def end(self, track_ids) -> list[Visit]:
        """These tracks ended: their open visits end at the last moment inside."""
        visits = []
        for zone, inside in zip(self.zones, self._inside, strict=True):
            for track_id in track_ids:
                state = inside.pop(track_id, None)
                if state is not None and state.confirmed:
                    visits.append(Visit(track_id, zone.name, state.last_inside - state.entered))
        return visits
