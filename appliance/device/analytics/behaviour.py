"""Shopper behaviour for one camera: zones, shelf reach, journeys, groups and heatmap,
folded into per-window aggregates.

`Behaviour.update` takes each frame's tracks (and the door-line crossings) and keeps only
per-person flags (a person: a track, or the fragments of a broken one, people.py);
`BehaviourWindow` holds the window's counters. People are folded into counts when they end,
and every per-person trace is dropped there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from appliance.device.analytics.behaviour_config import BehaviourConfig
from appliance.device.analytics.groups import GroupDetector
from appliance.device.analytics.heatmap import Heatmap
from appliance.device.analytics.interactions import ShelfReach
from appliance.device.analytics.journeys import Journey, Journeys
from appliance.device.analytics.lines import Crossing
from appliance.device.analytics.people import People
from appliance.device.analytics.zones import ZoneMembership
from appliance.device.camera_config import CameraConfig
from appliance.device.privacy import share
from appliance.device.track.tracker import Tracks

PERSON_HEIGHT_M = 1.7  # without a homography, box height gives the scale
MAX_GAP_SECONDS = 1.0  # a longer gap between frames (an outage) adds no dwell or heat


@dataclass(frozen=True)
class BehaviourFrame:
    """What one frame adds to the window."""

    dt: float
    occupancy: dict[str, int]
    journeys: list[Journey]
    group_sizes: list[int]
    feet: np.ndarray | None = None  # (N, 2) foot points of the moving people, for the heatmap
    ids: tuple[int, ...] = ()


class Behaviour:
    def __init__(self, camera: CameraConfig, config: BehaviourConfig, width: int, height: int,
                 source_size: tuple[int, int] | None = None):
        scale = camera.scale(width, height, source_size)
        self.config = config
        self.zones = ZoneMembership(camera.zones, config, scale)
        self.shelves = ShelfReach(camera.zones, config, scale)
        self.journeys = Journeys({z.name: z.kind for z in camera.zones}, config.staff_share)
        self.staff_zones = {z.name for z in camera.zones if z.kind == "staff"}
        self.groups = GroupDetector() if config.groups else None
        # Everything below counts people: a broken track's fragments are one person.
        self.people = People()
        self.homography = None if camera.homography is None else \
            np.array(camera.homography, np.float64)
        if self.homography is not None and camera.coordinates == "pixels":
            # It maps the camera's own pixels: undo the decoder's downscale first.
            self.homography = self.homography @ np.diag([1 / scale[0], 1 / scale[1], 1.0])
        self._last_time: float | None = None

    def update(self, tracks: Tracks, timestamp: float,
               crossings: list[Crossing]) -> BehaviourFrame:
        dt = 0.0 if self._last_time is None else \
            min(max(timestamp - self._last_time, 0.0), MAX_GAP_SECONDS)
        self._last_time = timestamp
        tracks = self.people.update(tracks, timestamp)  # ids are people's from here on
        crossings = [replace(c, track_id=self.people.person(c.track_id)) for c in crossings]
        occupancy, visits = self.zones.update(tracks, timestamp)
        self.journeys.visited(visits)
        for track_id, shelf in self.shelves.update(tracks, timestamp):
            self.journeys.interacted(track_id, shelf)
        for crossing in crossings:
            if crossing.direction == "in":
                self.journeys.crossed_in(crossing.track_id)
                if self.groups is not None:
                    self.groups.crossed(crossing.track_id, crossing.timestamp)
        zones_now = [self.zones.inside(i) for i in tracks.ids.tolist()]  # once per frame
        for k, track_id in enumerate(tracks.ids.tolist()):
            self.journeys.seen(track_id, dt, zones_now[k], tracks.moving[k])
        # People: moving, or standing in a zone where presence counts (see zones.py).
        moving = np.flatnonzero([m or bool(z) for m, z in zip(tracks.moving, zones_now,
                                                              strict=True)]).astype(np.int64)
        ids = tracks.ids[moving].tolist()
        if self.groups is not None:
            # Staff walking past a shopper are not their companions.
            walking = [k for k in moving.tolist()
                       if not self.staff_zones.intersection(zones_now[k])]
            positions, scale = self._ground(tracks, np.array(walking, np.int64))
            self.groups.update(timestamp, tracks.ids[walking], positions, scale)
        return BehaviourFrame(dt, occupancy, *self._end(tracks.ended),
                              feet=tracks.feet[moving].astype(np.float64), ids=tuple(ids))

    def pose_wanted(self) -> list[int]:
        """Track ids (the frame's, not people's) of those a pose is wanted for."""
        return [self.people.track(person) for person in self.shelves.pose_wanted()]

    def add_wrists(self, track_ids: list[int], points: np.ndarray, scores: np.ndarray) -> None:
        self.shelves.add_wrists([self.people.person(t) for t in track_ids], points, scores)

    def finish(self, ended: tuple[int, ...]) -> BehaviourFrame:
        """The source ended: every track (those in `ended` too) and so every person ends."""
        everyone = tuple(set(self.people.flush()) | set(self.journeys.alive()))
        return BehaviourFrame(0.0, {}, *self._end(everyone, flush=True))

    def _end(self, ended, flush: bool = False) -> tuple[list[Journey], list[int]]:
        if not ended:
            return [], []
        self.journeys.visited(self.zones.end(ended))
        self.shelves.end(ended)
        journeys = self.journeys.end(ended)
        sizes: list[int] = []
        if self.groups is not None:
            sizes = self.groups.flush() if flush else self.groups.end(ended)
        return journeys, sizes

    def _ground(self, tracks: Tracks, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Foot points on the ground: metres through the homography, else pixels with a
        per-person scale of 1.7 m per box height."""
        feet = tracks.feet[rows].astype(np.float64).reshape(-1, 2)
        if self.homography is not None:
            points = np.c_[feet, np.ones(len(feet))] @ self.homography.T
            return points[:, :2] / points[:, 2:3], None
        heights = np.maximum(tracks.xyxy[rows, 3] - tracks.xyxy[rows, 1], 1.0)
        return feet, PERSON_HEIGHT_M / heights.astype(np.float64)


class BehaviourWindow:
    """One window's behaviour counters; `emit` returns the document parts and resets."""

    def __init__(self, camera: CameraConfig, config: BehaviourConfig, width: int, height: int):
        self.zones = camera.zones
        self.config = config
        self.heatmap = Heatmap(*config.heatmap, width, height) if config.heatmap else None
        self._reset()

    def _reset(self) -> None:
        self._occupancy_seconds = dict.fromkeys((z.name for z in self.zones), 0.0)
        self._occupancy_max = dict.fromkeys((z.name for z in self.zones), 0)
        self._seconds = 0.0
        self._dwell: dict[str, list[float]] = {z.name: [] for z in self.zones}
        self._interactions = dict.fromkeys((z.name for z in self.zones if z.kind == "shelf"), 0)
        self._journeys = dict.fromkeys(("visitors", "staff", "entered", "interacted",
                                        "reached_checkout", "interacted_without_checkout"), 0)
        self._sizes = dict.fromkeys(("1", "2", "3", "4", "5+"), 0)
        self._people_in_groups = 0

    def add(self, frame: BehaviourFrame) -> None:
        self._seconds += frame.dt
        for name, people in frame.occupancy.items():
            self._occupancy_seconds[name] += people * frame.dt
            self._occupancy_max[name] = max(self._occupancy_max[name], people)
        for journey in frame.journeys:
            self._add_journey(journey)
        for size in frame.group_sizes:
            self._sizes[str(size) if size < 5 else "5+"] += 1
            self._people_in_groups += size  # the real size: "5+" alone would undercount
        if self.heatmap is not None and frame.feet is not None:
            self.heatmap.add(frame.feet, list(frame.ids), frame.dt)

    def _add_journey(self, journey: Journey) -> None:
        j = self._journeys
        if journey.staff:
            j["staff"] += 1
            return
        j["visitors"] += 1
        j["entered"] += journey.entered
        j["interacted"] += bool(journey.shelves)
        j["reached_checkout"] += journey.reached_checkout
        j["interacted_without_checkout"] += bool(journey.shelves) and \
            not journey.reached_checkout
        for zone, seconds in journey.visits:
            self._dwell[zone].append(seconds)
        for shelf in journey.shelves:
            self._interactions[shelf] += 1

    def emit(self, min_people: int) -> dict:
        parts: dict = {}
        if self.zones:
            parts["zones"] = {z.name: self._zone(z.name, z.kind) for z in self.zones}
        j = dict(self._journeys)
        j["interacted_without_checkout_share"] = share(j["interacted_without_checkout"],
                                                        j["interacted"])
        parts["journeys"] = j
        if self.config.groups:
            people = self._people_in_groups
            accompanied = people - self._sizes["1"]
            parts["groups"] = {"sizes": dict(self._sizes), "accompanied": accompanied,
                               "accompanied_share": share(accompanied, people)}
        if self.heatmap is not None:
            parts["heatmap"], _ = self.heatmap.emit(min_people)
        self._reset()
        return parts

    def _zone(self, name: str, kind: str) -> dict:
        dwell = sorted(self._dwell[name])
        edges = [0, *self.config.dwell_bins, math.inf]
        counts = np.histogram(dwell, bins=edges)[0].tolist() if dwell else [0] * (len(edges) - 1)
        zone = {
            "kind": kind,
            "visits": len(dwell),
            "occupancy_mean": round(self._occupancy_seconds[name] / self._seconds, 2)
            if self._seconds > 0 else 0.0,
            "occupancy_max": self._occupancy_max[name],
            "dwell": {
                "histogram": dict(zip(self.config.bin_names(), counts, strict=True)),
                "p50": _percentile(dwell, 50),
                "p90": _percentile(dwell, 90),
            },
        }
        if kind == "shelf":
            zone["interactions"] = self._interactions[name]
        return zone


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None

