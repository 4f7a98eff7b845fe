"""Shelf interactions: a visitor stops within reach of a shelf, and (with the pose model) a
wrist enters the shelf polygon.

Per person and shelf: a stop starts when the foot point is within `reach` box heights of
the shelf polygon and the foot speed (smoothed over about half a second) is under
`still_speed` box heights per second; brief breaks under half a second do not end it. After
`interaction_seconds` the stop is an interaction; with pose on it also needs a wrist inside
the polygon during the stop. Where the pose budget never reached this person during a stop
twice that long, the stop alone decides (a busy scene must not hide interactions). Each
person interacts with a shelf at most once; all of it is forgotten when the track ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from appliance.device.analytics.behaviour_config import BehaviourConfig
from appliance.device.analytics.zones import Polygon
from appliance.device.analytics.zones_config import ZoneConfig
from appliance.device.track.tracker import Tracks

BREAK_SECONDS = 0.5  # a stop survives a break this short (a step, a detector blink)
WRIST_SCORE = 0.25  # MoveNet wrist scores sit near 0.3 even when the point is right


@dataclass
class _Stop:
    started: float
    last_near: float
    pose_checks: int = 0
    wrist_inside: bool = False


@dataclass
class _Motion:
    foot: np.ndarray
    timestamp: float
    speed: float  # box heights per second, smoothed


class ShelfReach:
    def __init__(self, zones: tuple[ZoneConfig, ...], config: BehaviourConfig,
                 scale=(1.0, 1.0)):
        self.shelves = [z for z in zones if z.kind == "shelf"]
        self.polygons = [Polygon(np.array(z.points, np.float64) * np.array(scale))
                         for z in self.shelves]
        self.config = config
        self._motion: dict[int, _Motion] = {}
        self._stops: dict[tuple[int, int], _Stop] = {}  # (track id, shelf index)
        self._done: set[tuple[int, int]] = set()

    def update(self, tracks: Tracks, timestamp: float) -> list[tuple[int, str]]:
        """The (track id, shelf name) interactions decided in this frame."""
        if not self.shelves:
            return []
        feet = tracks.feet.astype(np.float64)
        heights = np.maximum(tracks.xyxy[:, 3] - tracks.xyxy[:, 1], 1.0).astype(np.float64)
        still = [self._still(i, feet[k], heights[k], timestamp)
                 for k, i in enumerate(tracks.ids.tolist())]
        decided = []
        for s, polygon in enumerate(self.polygons):
            near = polygon.distance(feet) >= -self.config.reach * heights
            for k, track_id in enumerate(tracks.ids.tolist()):
                key = (track_id, s)
                if key in self._done or not tracks.moving[k]:
                    continue
                stop = self._stops.get(key)
                if near[k] and still[k]:
                    if stop is None:
                        stop = self._stops[key] = _Stop(timestamp, timestamp)
                    stop.last_near = timestamp
                if stop is not None and self._interacted(stop, timestamp):
                    decided.append((track_id, self.shelves[s].name))
                    self._done.add(key)
                    del self._stops[key]
        for key, stop in list(self._stops.items()):
            if timestamp - stop.last_near > BREAK_SECONDS:
                del self._stops[key]
        return decided

    def _still(self, track_id: int, foot: np.ndarray, height: float, timestamp: float) -> bool:
        last = self._motion.get(track_id)
        if last is None:
            self._motion[track_id] = _Motion(foot, timestamp, math.inf)
            return False
        dt = timestamp - last.timestamp
        if dt > 0:
            speed = float(np.hypot(*(foot - last.foot))) / height / dt
            alpha = 1 - math.exp(-dt / 0.5)
            last.speed = speed if math.isinf(last.speed) else \
                last.speed + alpha * (speed - last.speed)
            last.foot, last.timestamp = foot, timestamp
        return last.speed <= self.config.still_speed

    def _interacted(self, stop: _Stop, timestamp: float) -> bool:
        held = stop.last_near - stop.started
        if held < self.config.interaction_seconds:
            return False
        if not self.config.pose or stop.wrist_inside:
            return True
        return stop.pose_checks == 0 and held >= 2 * self.config.interaction_seconds

    def pose_wanted(self) -> list[int]:
        """People stopped near a shelf whose interaction waits on a wrist, fewest checks
        first."""
        if not self.config.pose:
            return []
        waiting: dict[int, int] = {}
        for (track_id, _), stop in self._stops.items():
            waiting[track_id] = min(waiting.get(track_id, 1 << 30), stop.pose_checks)
        return sorted(waiting, key=lambda i: waiting[i])

    def add_wrists(self, track_ids: list[int], points: np.ndarray, scores: np.ndarray) -> None:
        """Wrist keypoints (N, 2, 2) with scores (N, 2) for people from pose_wanted()."""
        for n, track_id in enumerate(track_ids):
            seen = points[n][scores[n] >= WRIST_SCORE]
            for (stop_id, s), stop in self._stops.items():
                if stop_id != track_id:
                    continue
                stop.pose_checks += 1
                if len(seen) and bool((self.polygons[s].distance(seen) >= 0).any()):
                    stop.wrist_inside = True

    def end(self, track_ids) -> None:
        for track_id in track_ids:
            self._motion.pop(track_id, None)
        ended = set(track_ids)
        for key in [k for k in self._stops if k[0] in ended]:
            del self._stops[key]
        self._done = {k for k in self._done if k[0] not in ended}
