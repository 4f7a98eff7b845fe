"""Directional line counting: one count per real crossing of a door line.

Rule (decided and documented): a person's side of the line is decided only while their
foot point (bottom centre of the box) is outside a band of +/- `band` box heights around
the line. A crossing counts when the decided side changes and the path between
the two decided positions passes through the line segment (not its extension). So:
- feet hovering or a box flickering on the line change nothing (they stay in the band);
- a person who steps into the band and back is not counted;
- a track that breaks and resumes under a new id starts with no side, so it cannot count a
  crossing it did not see; a track that breaks inside the band hands its side on to a new
  track that appears close by within `handover_seconds`, so the crossing is counted once;
- tracks that never moved (mannequins, posters) are never counted;
- a foot point that jumps faster than a person walks (a box merging with a mannequin, an
  identity switch between two people) loses its side, so it cannot count a crossing that
  belongs to someone else's past.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.device.analytics.lines_config import CountingConfig, LineConfig
from appliance.device.track.tracker import Tracks


@dataclass(frozen=True)
class Crossing:
    line: str
    direction: str  # "in" or "out"
    timestamp: float
    track_id: int = -1  # for the crosser's journey flags only; never leaves the process


@dataclass
class _Side:
    side: int  # +1 in side, -1 out side
    foot: np.ndarray  # foot point where the side was last decided


@dataclass
class _Orphan:
    side: _Side
    foot: np.ndarray
    height: float
    timestamp: float


class LineCounter:
    handover_seconds = 2.0
    max_speed = 2.0  # box heights per second: a brisk walk is about one

    def __init__(self, line: LineConfig, counting: CountingConfig, scale=(1.0, 1.0)):
        self.name = line.name
        sx, sy = scale
        self.a = np.array([line.points[0][0] * sx, line.points[0][1] * sy])
        self.b = np.array([line.points[1][0] * sx, line.points[1][1] * sy])
        direction = self.b - self.a
        self.length = float(np.hypot(*direction))
        self.normal = np.array([-direction[1], direction[0]]) / self.length
        if line.in_side_point is not None:
            inside = np.array([line.in_side_point[0] * sx, line.in_side_point[1] * sy])
            if float((inside - self.a) @ self.normal) < 0:
                self.normal = -self.normal
        self.counting = counting
        self._sides: dict[int, _Side] = {}
        # last foot point, box height and time seen, per track id
        self._last: dict[int, tuple[np.ndarray, float, float]] = {}
        self._missing: dict[int, _Orphan] = {}  # vanished near the line, by old id
        self.counts = {"in": 0, "out": 0}

    def update(self, tracks: Tracks, timestamp: float) -> list[Crossing]:
        crossings = []
        present = set(tracks.ids.tolist())
        if len(tracks):
            feet = tracks.feet.astype(np.float64)
            heights = (tracks.xyxy[:, 3] - tracks.xyxy[:, 1]).astype(np.float64)
            distance = (feet - self.a) @ self.normal
            bands = np.maximum(self.counting.band * heights, self.counting.min_band_px)
            for k, track_id in enumerate(tracks.ids.tolist()):
                last = self._last.get(track_id)
                if last is not None and self._jumped(last, feet[k], heights[k], timestamp):
                    self._sides.pop(track_id, None)
                self._last[track_id] = (feet[k], heights[k], timestamp)
                self._missing.pop(track_id, None)
                previous = self._sides.get(track_id)
                if previous is None:
                    previous = self._adopt(track_id, feet[k], heights[k], timestamp)
                if abs(distance[k]) <= bands[k]:
                    continue  # undecided inside the band
                side = 1 if distance[k] > 0 else -1
                if previous is not None and previous.side != side and not tracks.moving[k]:
                    # Not proven to move yet (a mannequin never is): the crossing waits, it
                    # is not lost. A person first seen just before the door, whose travel
                    # reaches min_travel a frame after the line, still counts (at 4K the
                    # exit of EnterExitCrossingPaths1front was missed for one frame).
                    continue
                self._sides[track_id] = _Side(side, feet[k])
                if previous is None or previous.side == side:
                    continue
                if self._through_segment(previous.foot, feet[k]):
                    direction = "in" if side > 0 else "out"
                    self.counts[direction] += 1
                    crossings.append(Crossing(self.name, direction, timestamp, track_id))
        self._note_missing(present, timestamp)
        for track_id in tracks.ended:
            self._sides.pop(track_id, None)
            self._last.pop(track_id, None)
            self._missing.pop(track_id, None)
        return crossings

    def _note_missing(self, present: set[int], timestamp: float) -> None:
        """Remember tracks that vanished near the line: a new id may be the same person."""
        for track_id, side in self._sides.items():
            if track_id in present or track_id in self._missing:
                continue
            foot, height, _ = self._last[track_id]
            band = max(self.counting.band * height, self.counting.min_band_px)
            if abs(float((foot - self.a) @ self.normal)) <= 2 * band:
                self._missing[track_id] = _Orphan(side, foot, height, timestamp)
        for track_id in [i for i, o in self._missing.items()
                         if timestamp - o.timestamp > self.handover_seconds]:
            del self._missing[track_id]

    def _adopt(self, track_id: int, foot: np.ndarray, height: float,
               timestamp: float) -> _Side | None:
        """A new track close to where another vanished near the line takes over its side.

        The vanished track loses its side, so if it comes back it cannot count the same
        crossing again.
        """
        best_id, best = None, None
        for old_id, orphan in self._missing.items():
            reach = max(height, orphan.height)
            if np.hypot(*(orphan.foot - foot)) <= reach and \
                    (best is None or orphan.timestamp > best.timestamp):
                best_id, best = old_id, orphan
        if best is None:
            return None
        del self._missing[best_id]
        self._sides.pop(best_id, None)
        self._sides[track_id] = best.side
        return best.side

    def _jumped(self, last, foot: np.ndarray, height: float, timestamp: float) -> bool:
        """Did the foot point move faster than anyone walks? Then the box merged with
        another (a mannequin, a passer-by) or the identity switched, and the side this
        track had is no longer evidence of where this person came from."""
        last_foot, last_height, last_time = last
        seconds = max(timestamp - last_time, 0.04)
        size = min(height, last_height)
        return float(np.hypot(*(foot - last_foot))) > self.max_speed * size * seconds + 0.1 * size

    def _through_segment(self, p: np.ndarray, q: np.ndarray) -> bool:
        """Does the path p -> q cross the line between its end points (a little slack)?"""
        dp = float((p - self.a) @ self.normal)
        dq = float((q - self.a) @ self.normal)
        if dp == dq:
            return False
        point = p + (q - p) * (dp / (dp - dq))
        along = float((point - self.a) @ (self.b - self.a)) / self.length**2
        slack = 0.05
        return -slack <= along <= 1 + slack
