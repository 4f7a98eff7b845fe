"""Directional line counting: one count per real crossing of a door line.

Rule (decided and documented): a person's side of the line is decided only while their
foot point (bottom centre of the box) is outside a band of +/- `band` box heights around
the line. A crossing counts when a moving track's decided side changes and the path between
the two decided positions passes through the line segment (not its extension). So:
- feet hovering or a box flickering on the line change nothing (they stay in the band);
- a person who steps into the band and back is not counted;
- a track keeps the side it was first seen on until it counts as moving, so someone first
  detected just outside the band who walks straight through is counted once they have
  travelled (not lost because the side moved on while they were still "not moving");
- a track first seen inside the band (a door camera often first sees people on the
  threshold) counts when it leaves the band on one side, moving or two bands further from
  the line than where it appeared (not along it): it came from the other side;
- a track that breaks near the line hands its side to a new track first seen close by
  within `handover_seconds`, of a height one person can have in both (the same person
  re-found), so the crossing is counted once;
  only a track's first sighting can take a side over, never a track reset by a jump, and
  never one first seen beyond the band on the other side (the vanished one would have had
  to walk back across the line: that is the next rule's case, with its tests);
- a person hidden while crossing (behind someone standing in the doorway) is often found
  again only on the far side, as a new track: a new track first seen where a moving track
  that vanished on the other side within `handover_seconds` could have walked since (at
  `walk_speed`), the way there passing through the segment, counts that crossing; the
  vanished track loses its side, so the crossing counts once;
- people who cross together (side by side, or one hidden behind the other) often make one
  box, so one track, while they cross: a new track that appears inside the box of a track
  that crossed within `split_seconds`, on the side it crossed to, is the companion coming
  out from behind and counts the same crossing late (as commercial counters do); each
  crossing lends itself to one such split; but while the crosser is out of view, a new
  track where it could have walked since is the crosser re-found, not a companion; nor is
  a new track of the size of someone lost a moment ago on that side, where they could have
  walked since (hidden while the crosser passed in front of them);
- a box the tracker flags as holding another person too (`merged`) is not this person's
  own look: it decides no side (as inside the band), is no evidence of a jump, and is not
  where they were last seen; a track that vanished in such a box hands no side on (who
  walked on may be the other person);
- tracks that never moved (mannequins, posters) are never counted;
- a foot point that jumps faster than a person walks (a box merging with a mannequin, an
  identity switch between two people), or a box that grows by `max_growth` over the
  tallest it was in the last `size_seconds` (one cut short by someone passing in front
  grows back), loses its side, so it cannot count a crossing that belongs to someone
  else's past; if the next look is back on the path from before the jump, it was one odd
  box (a partial detection) and the side comes back; a jump back to where the track was
  within `excursion_seconds`, landing on its side of the line or in
  the band, is its box returning from a few looks on a mannequin beside the door (low
  rates): the side stays.
Everything is in box heights and seconds of media time, so the rule holds at any
processing rate (25 down to 5 frames a second, tests/device/test_replay.py).
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
    side: int  # +1 in side, -1 out side; 0: first seen inside the band, side still open
    foot: np.ndarray  # foot point where the side was last decided (or first seen)
    band: float = 0.0  # side 0: the band's half-width when first seen, pixels


@dataclass
class _Lend:
    """A crossing that a companion hidden in the same box may still claim."""

    side: int
    box: np.ndarray  # the crosser's box when it was last seen
    timestamp: float  # of the crossing
    seen: float  # when the crosser was last seen


@dataclass
class _Orphan:
    side: _Side
    foot: np.ndarray
    height: float
    timestamp: float


class LineCounter:
    handover_seconds = 2.0
    max_speed = 2.0  # box heights per second, faster than anyone walks
    walk_speed = 1.0  # box heights per second: a brisk walk (1.7 m a second)
    max_growth = 1.5  # box height ratio between two looks at the same person
    split_seconds = 3.0
    excursion_seconds = 0.5  # a box that strays onto a fixture for a few looks at any rate
    size_seconds = 1.0  # about how long someone walking past in front takes to pass

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
        # each track's own looks (foot point, box height, time) of the last
        # `excursion_seconds`, the latest always kept: where it was last seen is [-1]
        self._looks: dict[int, list[tuple[np.ndarray, float, float]]] = {}
        self._missing: dict[int, _Orphan] = {}  # vanished near the line, by old id
        self._lends: dict[int, _Lend] = {}  # recent crossings, by crosser id
        # side and last look before a jump, kept for one more look
        self._glitches: dict[int, tuple[_Side, tuple]] = {}
        self._moved: set[int] = set()  # track ids seen moving (visitors, not fixtures)
        self._sharing: set[int] = set()  # track ids whose latest box held another person too
        self.counts = {"in": 0, "out": 0}

    def update(self, tracks: Tracks, timestamp: float) -> list[Crossing]:
        crossings = []
        present = set(tracks.ids.tolist())
        if len(tracks):
            feet = tracks.feet.astype(np.float64)
            heights = (tracks.xyxy[:, 3] - tracks.xyxy[:, 1]).astype(np.float64)
            distance = (feet - self.a) @ self.normal
            bands = np.maximum(self.counting.band * heights, self.counting.min_band_px)
            merged = tracks.merged if tracks.merged is not None else np.zeros(len(tracks), bool)
            for k, track_id in enumerate(tracks.ids.tolist()):
                inside_band = abs(distance[k]) <= bands[k]
                # a box of two people has one foot point, maybe the other person's: it
                # decides no side, as inside the band
                undecided = inside_band or merged[k]
                looks = self._looks.get(track_id)
                last = looks[-1] if looks else None
                if track_id in self._lends:
                    self._lends[track_id].box = tracks.xyxy[k].astype(np.float64)
                    self._lends[track_id].seen = timestamp
                if last is None:  # first sighting
                    side = 0 if undecided else (1 if distance[k] > 0 else -1)
                    self._first_seen(track_id, feet[k], heights[k], side, inside_band)
                    if side:
                        if self._split_from(track_id, feet[k], heights[k], side, present,
                                            timestamp) or \
                                self._refound_across(feet[k], heights[k], side, timestamp):
                            crossings.append(self._count(side, timestamp, track_id))
                            self._sides[track_id] = _Side(side, feet[k])
                elif merged[k]:
                    pass  # not this person's own box: no evidence of a jump either
                elif track_id in self._glitches and \
                        not self._jumped(self._glitches[track_id][1], feet[k], heights[k],
                                         timestamp):
                    # back where it was before one odd look (a partial box): same person
                    self._sides[track_id] = self._glitches.pop(track_id)[0]
                elif self._jumped(last, feet[k], heights[k], timestamp,
                                  self._tallest(track_id, timestamp)) and \
                        not self._came_back(track_id, feet[k], heights[k], timestamp,
                                            distance[k], bands[k]):
                    side = self._sides.pop(track_id, None)
                    if side is not None and track_id not in self._glitches:
                        self._glitches[track_id] = (side, last)
                    else:
                        self._glitches.pop(track_id, None)
                else:
                    self._glitches.pop(track_id, None)
                if last is None or not merged[k]:  # where this person was last seen alone
                    looks = self._looks.setdefault(track_id, [])
                    looks.append((feet[k], heights[k], timestamp))
                    while timestamp - looks[0][2] > self.size_seconds:
                        looks.pop(0)
                (self._sharing.add if merged[k] else self._sharing.discard)(track_id)
                if tracks.moving[k]:
                    self._moved.add(track_id)
                self._missing.pop(track_id, None)
                if undecided:
                    continue
                side = 1 if distance[k] > 0 else -1
                previous = self._sides.get(track_id)
                if previous is None or previous.side == side:
                    self._sides[track_id] = _Side(side, feet[k])
                    continue
                if not (tracks.moving[k] or self._left_threshold(previous, feet[k])):
                    continue  # keep the earlier side until the track has travelled
                self._sides[track_id] = _Side(side, feet[k])
                if self._through_segment(previous, feet[k]):
                    crossings.append(self._count(side, timestamp, track_id))
                    self._lends[track_id] = _Lend(side, tracks.xyxy[k].astype(np.float64),
                                                  timestamp, timestamp)
        self._note_missing(present, timestamp)
        for track_id in [i for i, lend in self._lends.items()
                         if timestamp - lend.timestamp > self.split_seconds]:
            del self._lends[track_id]
        for track_id in tracks.ended:
            self._glitches.pop(track_id, None)
            self._sides.pop(track_id, None)
            self._looks.pop(track_id, None)
            self._missing.pop(track_id, None)
            self._moved.discard(track_id)
            self._sharing.discard(track_id)
        return crossings

    def _came_back(self, track_id: int, foot: np.ndarray, height: float, timestamp: float,
                   distance: float, band: float) -> bool:
        """Is this jump a return to where the track was a moment ago, not across the line?
        At low rates a box can stray for a few looks onto a mannequin beside the door and
        then come back to the person: the jump is on the way back, and the person's side
        still holds. It is a return when the foot point lands on the side the track holds
        or in the band (never beyond the band on the other side: that would count a
        crossing at once), nearer an earlier look of the last `excursion_seconds` than the
        last look, and reachable from that look at `max_speed`."""
        held = self._sides.get(track_id)
        if held is None or held.side * distance < -band:
            return False
        *earlier_looks, (last_foot, _, _) = self._looks[track_id]
        for earlier_foot, earlier_height, earlier_time in earlier_looks:
            if timestamp - earlier_time > self.excursion_seconds:
                continue  # kept while its boxes were shared: too long ago to return to
            nearer = np.hypot(*(foot - earlier_foot)) < np.hypot(*(foot - last_foot))
            if nearer and not self._jumped((earlier_foot, earlier_height, earlier_time),
                                           foot, height, timestamp):
                return True
        return False

    def _count(self, side: int, timestamp: float, track_id: int) -> Crossing:
        direction = "in" if side > 0 else "out"
        self.counts[direction] += 1
        return Crossing(self.name, direction, timestamp, track_id)

    def _split_from(self, track_id: int, foot: np.ndarray, height: float, side: int,
                    present: set[int], timestamp: float) -> bool:
        """Does this new track's foot point stand in the box of a recent crosser, on the
        side it crossed to? Then that crossing is lent to the new track, once. Unless the
        crosser is out of view and the new track is where it could have walked since: then
        it is the crosser re-found (turning back after a moment unseen), and takes the
        crosser's lend over instead."""
        for crosser, lend in self._lends.items():
            x1, y1, x2, y2 = lend.box
            if lend.side != side or not (x1 <= foot[0] <= x2 and
                                         y1 <= foot[1] <= y2 + 0.1 * (y2 - y1)):
                continue
            if self._refound_beside(crosser, foot, height, side, timestamp):
                return False  # someone else who was already there: the lend stays open
            del self._lends[crosser]
            if crosser not in present and self._walked_to(lend, foot, height, timestamp):
                self._lends[track_id] = lend  # the crosser found again: missing no more
                self._missing.pop(crosser, None)
                self._sides.pop(crosser, None)
                return False
            return True
        return False

    def _refound_beside(self, crosser: int, foot: np.ndarray, height: float, side: int,
                        timestamp: float) -> bool:
        """Is this new track someone who was already on the crossing's side, lost a moment
        ago (hidden as the crosser walked past in front of them) and found again where they
        could have walked since? Then they are no companion coming out of the box."""
        return any(old_id != crosser and orphan.side.side == side and
                   self._could_have_walked(old_id, orphan, foot, height, timestamp)
                   for old_id, orphan in self._missing.items())

    def _could_have_walked(self, old_id: int, orphan: _Orphan, foot: np.ndarray,
                           height: float, timestamp: float) -> bool:
        """Could the person of a vanished track be this one: of a size one person can have
        in both, and here within a walk (at `walk_speed`) of where it was last seen?"""
        seconds = timestamp - self._looks[old_id][-1][2]  # since it was last seen
        reach = _reach(self.walk_speed, min(height, orphan.height), seconds)
        return float(np.hypot(*(orphan.foot - foot))) <= reach and \
            self._same_size(height, orphan.height)

    def _walked_to(self, lend: _Lend, foot: np.ndarray, height: float,
                   timestamp: float) -> bool:
        """Could the crosser, last seen in `lend.box`, have walked here since? Its size is
        no test: a box found again after a moment unseen is often partial (1.6 times
        smaller in a looped CAVIAR clip at 5 fps)."""
        x1, y1, x2, y2 = lend.box
        size = min(height, y2 - y1)
        reach = _reach(self.walk_speed, size, timestamp - lend.seen)
        return float(np.hypot(foot[0] - (x1 + x2) / 2, foot[1] - y2)) <= reach

    def _first_seen(self, track_id: int, foot: np.ndarray, height: float, side: int,
                    inside_band: bool) -> None:
        """A new track near the line: the same person re-found (take over the side of a
        track that vanished close by), or someone first seen on the threshold (side open)."""
        if not self._near_line(foot, height):
            return
        orphan = self._adopt(foot, height, side)
        if orphan is not None:
            self._sides[track_id] = orphan
        elif inside_band:
            band = max(self.counting.band * height, self.counting.min_band_px)
            self._sides[track_id] = _Side(0, foot, band)

    def _note_missing(self, present: set[int], timestamp: float) -> None:
        """Remember tracks that vanished: a new id may be the same person."""
        for track_id, side in self._sides.items():
            if track_id in present or track_id in self._missing or side.side == 0:
                continue
            if track_id in self._sharing:
                continue  # vanished inside a shared box: who walked on may be the other one
            foot, height, _ = self._looks[track_id][-1]
            self._missing[track_id] = _Orphan(side, foot, height, timestamp)
        for track_id in [i for i, o in self._missing.items()
                         if timestamp - o.timestamp > self.handover_seconds]:
            del self._missing[track_id]

    def _adopt(self, foot: np.ndarray, height: float, side: int) -> _Side | None:
        """The side of the nearest track that vanished near the line within a box height
        of this new one, and of a height one person can have in both (someone else's box
        does not take their side), unless this one is first seen on the other side (`side`,
        0 in the band). The vanished track loses its side, so if it comes back
        it cannot count the same crossing again."""
        best_id, best_distance = None, None
        for old_id, orphan in self._missing.items():
            distance = float(np.hypot(*(orphan.foot - foot)))
            if self._near_line(orphan.foot, orphan.height) and \
                    orphan.side.side != -side and \
                    distance <= max(height, orphan.height) and \
                    self._same_size(height, orphan.height) and \
                    (best_distance is None or distance < best_distance):
                best_id, best_distance = old_id, distance
        if best_id is None:
            return None
        orphan = self._missing.pop(best_id)
        self._sides.pop(best_id, None)
        return orphan.side

    def _refound_across(self, foot: np.ndarray, height: float, side: int,
                        timestamp: float) -> bool:
        """Is this new track someone re-found on the far side of the line after being hidden
        while crossing (behind a person standing in the doorway)? It is when a track that
        vanished on the other side within `handover_seconds` could have walked here since
        and its way here passes through the segment; that track loses its side, so the
        crossing counts once."""
        best_id, best_distance = None, None
        for old_id, orphan in self._missing.items():
            distance = float(np.hypot(*(orphan.foot - foot)))
            if old_id in self._moved and orphan.side.side == -side and \
                    self._could_have_walked(old_id, orphan, foot, height, timestamp) and \
                    self._through_segment(_Side(orphan.side.side, orphan.foot), foot) and \
                    (best_distance is None or distance < best_distance):
                best_id, best_distance = old_id, distance
        if best_id is None:
            return False
        del self._missing[best_id]
        self._sides.pop(best_id, None)
        return True

    def _same_size(self, height: float, other: float) -> bool:
        """Could both boxes be the same person (no one grows by `max_growth` between looks)?"""
        return max(height, other) <= self.max_growth * min(height, other)

    def _near_line(self, foot: np.ndarray, height: float) -> bool:
        """Within two bands of the line."""
        band = max(self.counting.band * height, self.counting.min_band_px)
        return abs(float((foot - self.a) @ self.normal)) <= 2 * band

    def _left_threshold(self, previous: _Side, foot: np.ndarray) -> bool:
        """First seen on the threshold and since walked two bands away from the line: a
        person walking through, not a box flickering on the line nor someone walking along
        it (the walkway beyond a door can be too shallow for the tracker's `min_travel`)."""
        return previous.side == 0 and \
            abs(float((foot - previous.foot) @ self.normal)) >= 2 * previous.band

    def _tallest(self, track_id: int, timestamp: float) -> float:
        """The tallest of the track's own boxes of the last `size_seconds`: its size before
        someone passing in front cut its box short."""
        looks = self._looks[track_id]
        return max((height for _, height, seen in looks
                    if timestamp - seen <= self.size_seconds), default=looks[-1][1])

    def _jumped(self, last, foot: np.ndarray, height: float, timestamp: float,
                tallest: float = 0.0) -> bool:
        """Did the foot point move faster than anyone walks? Then the box merged with
        another (a mannequin, a passer-by) or the identity switched, and the side this
        track had is no longer evidence of where this person came from. Growth is judged
        against `tallest` too: a box cut short by someone passing in front grows back."""
        last_foot, last_height, last_time = last
        seconds = max(timestamp - last_time, 0.04)
        size = min(height, last_height)
        if height > self.max_growth * max(last_height, tallest) or \
                last_height > self.max_growth * height:
            return True  # no one doubles in size between looks: another box took the id
        return float(np.hypot(*(foot - last_foot))) > _reach(self.max_speed, size, seconds)

    def _through_segment(self, previous: _Side, q: np.ndarray) -> bool:
        """Does the path from the earlier position to q cross the line between its end
        points (a little slack)? From inside the band: was it first seen over the segment?"""
        p = previous.foot
        dp = float((p - self.a) @ self.normal)
        dq = float((q - self.a) @ self.normal)
        point = p if previous.side == 0 else p + (q - p) * (dp / (dp - dq))
        along = float((point - self.a) @ (self.b - self.a)) / self.length**2
        slack = 0.05
        return -slack <= along <= 1 + slack


def _reach(speed: float, size: float, seconds: float) -> float:
    """Pixels someone `size` pixels tall covers in `seconds` at `speed` box heights a
    second, plus a tenth of a box height for the detector's jitter."""
    return speed * size * seconds + 0.1 * size
