"""Companion detection: people who walk together (couples, families, friends).

Streaming, so the live appliance and the offline evaluation run the same code. Every frame,
each pair of people who are both walking (velocity over the last ``velocity_window``
seconds at least ``still_speed``) adds to one small record: the seconds they were within
``distance`` of each other, and least-squares sums of their offset (a - b) against time.

A pair is decided once one of them ends. It is together when

- they walked within ``distance`` for at least ``min_together`` seconds, and
- their formation held over *all* the time both walked in view: the offset between them,
  fitted against time, changes slower than ``max_drift``.

Companions keep their spacing and heading; strangers who converge, walk close for a while
and diverge (passing, overtaking, a dense crowd's flow) show it in the offset over the whole
time, even when they look alike over the close part. Standing side by side is no evidence
(strangers wait together at a tram stop or in a queue): only walking frames count. Groups
are connected components of together-pairs, so a family of five walking two abreast is
linked through neighbours.

The values: ``distance`` is the plain rule's 1.4 m (fitting it too overfits); ``min_together``
and ``max_drift`` are the ones leave-one-sequence-out picks on ETH (eth, hotel) and UCY
(zara01), fitted on all three: ``python -m appliance.lab.eval.groups_loso`` (docs/accuracy.md,
tests/lab/test_eval_groups_loso.py).

A group is reported once every member has ended, and then everything about its members is
forgotten; memory is per-track history of ``history_seconds`` plus one small record per
pair of people who walked in view at the same time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GroupConfig:
    """One general setting, in metres and seconds (the defaults are used everywhere)."""

    velocity_window: float = 1.2  # s: velocity from displacement over this much history
    history_seconds: float = 2.0  # s: per-track positions kept (bounded memory)
    still_speed: float = 0.4  # m/s: slower is standing (a stroll is 0.8+)
    distance: float = 1.4  # m: close enough to be walking together (the plain rule's)
    min_together: float = 3.0  # s walking within `distance` (leave-one-sequence-out)
    max_drift: float = 0.25  # m/s: formation drift over the shared walk (leave-one-out)
    max_gap: float = 1.0  # s: a longer gap between updates counts as this much
    crossing_window: float = 3.0  # s: entrance crossings this close = arriving together
    crossing_bonus: float = 2.0  # s of evidence for arriving together


DEFAULT_CONFIG = GroupConfig()  # frozen, so one shared default is safe


@dataclass
class _Track:
    # (time, (x, y) in the caller's units, metres per unit), history_seconds long; maxlen
    # also bounds it should timestamps stall.
    history: deque = field(default_factory=lambda: deque(maxlen=256))
    crossed: float | None = None  # entrance crossing time, if any
    partners: set[int] = field(default_factory=set)  # ids with a pair record


@dataclass
class _Pair:
    """Both walking: seconds close, and least-squares sums of the offset (a - b, metres)
    against time (relative to ``start``, for precision)."""

    start: float  # first frame both walked
    last: float  # time of the last frame both walked
    close: float = 0.0  # s within `distance`
    n: int = 0
    st: float = 0.0
    stt: float = 0.0
    sx: float = 0.0
    sy: float = 0.0
    stx: float = 0.0
    sty: float = 0.0

    def drift(self) -> float:
        """Speed (m/s) at which the offset changed over the shared walk; infinite while
        there is too little to fit."""
        spread = self.stt - self.st * self.st / self.n if self.n >= 3 else 0.0
        if spread <= 1e-9:
            return math.inf
        return math.hypot(self.stx - self.st * self.sx / self.n,
                          self.sty - self.st * self.sy / self.n) / spread


class GroupDetector:
    def __init__(self, config: GroupConfig = DEFAULT_CONFIG):
        self.config = config
        self._tracks: dict[int, _Track] = {}
        self._pairs: dict[tuple[int, int], _Pair] = {}  # (low id, high id) -> evidence
        # Decided together-links of ended people whose group is not complete yet.
        self._links: dict[int, set[int]] = {}
        self._ended: set[int] = set()
        self._last_time: float | None = None  # previous update, to time a pair's first frame

    def update(self, timestamp: float, ids: np.ndarray, positions: np.ndarray,
               metres_per_unit: np.ndarray | None = None) -> None:
        """Add one frame: ``ids`` (N,), ground-plane ``positions`` (N, 2), and per person
        ``metres_per_unit`` (N,) (None: positions are in metres). Without a homography the
        appliance passes foot points in pixels and 1.7 m / box height per person; a pair's
        distance then uses the mean of the two scales."""
        cfg = self.config
        ids_list = [int(i) for i in np.asarray(ids).reshape(-1)]
        points = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        scales = (np.ones(len(ids_list)) if metres_per_unit is None
                  else np.asarray(metres_per_unit, dtype=np.float64).reshape(-1))
        frame_step = (0.0 if self._last_time is None
                      else min(max(timestamp - self._last_time, 0.0), cfg.max_gap))
        self._last_time = timestamp
        velocities = np.array([self._observe(i, timestamp, points[k], scales[k])
                               for k, i in enumerate(ids_list)]).reshape(-1, 2)
        # NaN (too young to tell) is not walking.
        walking = np.flatnonzero(np.linalg.norm(velocities, axis=1) >= cfg.still_speed)
        if len(walking) < 2:
            return
        walkers = [ids_list[k] for k in walking.tolist()]
        where, scale = points[walking], scales[walking]
        offset = (where[:, None, :] - where[None, :, :]) \
            * ((scale[:, None] + scale[None, :]) / 2)[..., None]  # metres, a - b
        close = (np.linalg.norm(offset, axis=2) <= cfg.distance).tolist()
        offset_x, offset_y = offset[..., 0].tolist(), offset[..., 1].tolist()
        for a in range(len(walkers)):
            for b in range(a + 1, len(walkers)):
                if walkers[a] > walkers[b]:  # the record's offset is low id - high id
                    key, dx, dy = (walkers[b], walkers[a]), offset_x[b][a], offset_y[b][a]
                else:
                    key, dx, dy = (walkers[a], walkers[b]), offset_x[a][b], offset_y[a][b]
                pair = self._pairs.get(key)
                if pair is None:
                    pair = self._pairs[key] = _Pair(start=timestamp,
                                                    last=timestamp - frame_step)
                    self._tracks[key[0]].partners.add(key[1])
                    self._tracks[key[1]].partners.add(key[0])
                if close[a][b]:
                    pair.close += min(max(timestamp - pair.last, 0.0), cfg.max_gap)
                pair.last = timestamp
                t = timestamp - pair.start
                pair.n += 1
                pair.st += t
                pair.stt += t * t
                pair.sx += dx
                pair.sy += dy
                pair.stx += t * dx
                pair.sty += t * dy

    def crossed(self, track_id: int, timestamp: float) -> None:
        """Optional cue: this track crossed the entrance line at ``timestamp``. People who
        arrive together cross within a few seconds of each other; this adds supporting
        evidence to their pair, it is never required."""
        track = self._tracks.get(int(track_id))
        if track is not None and track.crossed is None:
            track.crossed = timestamp

    def end(self, ids) -> list[int]:
        """These tracks ended. Returns the sizes of groups now complete (every member
        ended), a person alone as size 1. Everything about those people is then dropped."""
        return [len(group) for group in self.end_groups(ids)]

    def end_groups(self, ids) -> list[frozenset[int]]:
        """As :meth:`end`, but the groups' track ids (for evaluation against labels)."""
        ended = [i for i in dict.fromkeys(int(i) for i in np.asarray(ids).reshape(-1))
                 if i in self._tracks]
        for track_id in ended:
            track = self._tracks.pop(track_id)
            for partner in track.partners:
                other = self._tracks[partner]
                other.partners.discard(track_id)
                pair = self._pairs.pop((min(track_id, partner), max(track_id, partner)))
                if self._together(pair, track, other):
                    self._links.setdefault(track_id, set()).add(partner)
                    self._links.setdefault(partner, set()).add(track_id)
            self._ended.add(track_id)
        groups = []
        for track_id in ended:
            if track_id not in self._ended:
                continue  # already reported with its group in this call
            group = self._component(track_id)
            if group <= self._ended:  # complete: nobody in it is still in view
                groups.append(frozenset(group))
                self._ended -= group
                for member in group:
                    self._links.pop(member, None)
        return groups

    def flush(self) -> list[int]:
        """End everyone still present (end of a recording, shutdown)."""
        return self.end(list(self._tracks))

    def flush_groups(self) -> list[frozenset[int]]:
        """As :meth:`flush`, but the groups' track ids."""
        return self.end_groups(list(self._tracks))

    # -- internals ---------------------------------------------------------------------

    def _observe(self, track_id: int, timestamp: float, point: np.ndarray,
                 scale: float) -> np.ndarray:
        """Record a position; return the velocity (m/s) over the last ``velocity_window``,
        NaN while the track is too young to tell."""
        cfg = self.config
        track = self._tracks.get(track_id)
        if track is None:
            track = self._tracks[track_id] = _Track()
        history = track.history
        history.append((timestamp, point.copy(), scale))
        while timestamp - history[0][0] > cfg.history_seconds:
            history.popleft()
        # The newest sample at least velocity_window old, else the oldest kept.
        k = len(history) - 1
        while k > 0 and timestamp - history[k][0] < cfg.velocity_window:
            k -= 1
        then, before, before_scale = history[k]
        elapsed = timestamp - then
        if elapsed < cfg.velocity_window / 2:
            return np.full(2, np.nan)
        return (point - before) * ((before_scale + scale) / 2) / elapsed

    def _together(self, pair: _Pair, a: _Track, b: _Track) -> bool:
        cfg = self.config
        evidence = pair.close
        if (a.crossed is not None and b.crossed is not None
                and abs(a.crossed - b.crossed) <= cfg.crossing_window):
            evidence += cfg.crossing_bonus
        return evidence >= cfg.min_together and pair.drift() <= cfg.max_drift

    def _component(self, start: int) -> set[int]:
        group, todo = {start}, [start]
        while todo:
            for other in self._links.get(todo.pop(), ()):
                if other not in group:
                    group.add(other)
                    todo.append(other)
        return group
