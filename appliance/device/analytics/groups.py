"""Companion detection: people who arrive and move together (couples, families, friends).

Streaming, so the live appliance and the offline evaluation run the same code. Every frame,
each pair of people present is judged from positions and velocities (velocity over the
last ``velocity_window`` seconds, which smooths out stride and detector jitter):

- both walking: *together* when they keep formation, i.e. the one beside the other within
  ``side_distance`` across the shared heading and within ``trail_distance`` along it (a
  stranger following at a few metres keeps pace but not formation), and their velocities
  agree within ``velocity_tolerance`` (same heading and pace);
- both standing: *together* when within ``still_distance``; but standing carries little
  evidence (``still_weight`` per second), because strangers wait side by side at a tram
  stop or in a queue: a standing pair needs a long chat to add up;
- otherwise (one walks, one stands, or too far) they are apart that frame.

A pair is decided once one of them ends. It is together when its evidence reaches
``min_together`` seconds, it was together for at least ``min_fraction`` of the time both
were present since they first were together (strangers crossing or passing are together
only briefly), and its formation did not drift: the offset between the two, fitted over
the walking-together frames, changes slower than ``max_drift`` (someone overtaking on a
pavement stays close and heads the same way for seconds, but slides past at a steady
0.3 m/s). Groups are connected components of together-pairs, so a family of five walking
two abreast is linked through neighbours. Chaining stays in check because a link needs
close formation for seconds: a passer-by rarely bridges two groups, and a long-lived track
(staff walking a customer to a shelf) fails the fraction test with everyone it met briefly.

A group is reported once every member has ended, and then everything about its members is
forgotten; memory is per-track history of ``history_seconds`` plus one small record per
pair of people present at the same time who were ever together.

The defaults sit in the middle of a plateau measured on ETH (eth, hotel) and UCY (zara01)
with ``appliance/lab/eval/groups.py``; see ``tests/lab/test_eval_groups.py``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GroupConfig:
    """One general setting, in metres and seconds (the defaults are used everywhere)."""

    velocity_window: float = 1.2  # s: velocity from displacement over this much history
    history_seconds: float = 2.0  # s: per-track positions kept (bounded memory)
    still_speed: float = 0.4  # m/s: slower is standing (a stroll is 0.8+)
    side_distance: float = 1.1  # m across the heading: side by side, personal distance
    trail_distance: float = 1.2  # m along the heading: a step behind, not following
    velocity_tolerance: float = 0.5  # m/s: |v_a - v_b| of people keeping step
    still_distance: float = 1.2  # m: conversational distance when standing
    still_weight: float = 0.05  # evidence per standing second: ~60 s of chat is enough
    min_together: float = 3.0  # s of evidence needed
    min_fraction: float = 0.35  # of the time both were present since first together
    max_drift: float = 0.25  # m/s: formation drift of an overtaking stranger is more
    max_gap: float = 1.0  # s: a longer gap between updates counts as this much
    crossing_window: float = 3.0  # s: entrance crossings this close = arriving together
    crossing_bonus: float = 2.0  # s of evidence for arriving together


DEFAULT_CONFIG = GroupConfig()  # frozen, so one shared default is safe


@dataclass
class _Track:
    first: float  # time first seen
    # (time, (x, y) in the caller's units, metres per unit), history_seconds long; maxlen
    # also bounds it should timestamps stall.
    history: deque = field(default_factory=lambda: deque(maxlen=256))
    crossed: float | None = None  # entrance crossing time, if any
    partners: set[int] = field(default_factory=set)  # ids with a pair record


@dataclass
class _Pair:
    start: float  # first together time; the fit below uses times relative to it
    last: float  # time of the last shared update
    present: float = 0.0  # s both were present since start
    together: float = 0.0  # s together, walking or standing
    evidence: float = 0.0  # s together, standing weighted down
    # Least-squares sums of the offset (a - b, metres) against time, walking frames only.
    n: int = 0
    st: float = 0.0
    stt: float = 0.0
    so: np.ndarray = field(default_factory=lambda: np.zeros(2))
    sto: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def drift(self) -> float:
        """Speed (m/s) at which the formation changes; 0 while there is too little to fit."""
        spread = self.stt - self.st * self.st / self.n if self.n >= 3 else 0.0
        if spread <= 1e-9:
            return 0.0
        return float(np.hypot(*((self.sto - self.st * self.so / self.n) / spread)))


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
        if len(ids_list) < 2:
            return

        offset = (points[:, None, :] - points[None, :, :]) \
            * ((scales[:, None] + scales[None, :]) / 2)[..., None]  # metres, a - b
        distance = np.linalg.norm(offset, axis=2)
        speed = np.linalg.norm(velocities, axis=1)  # NaN (too young to tell) is neither
        moving, still = speed >= cfg.still_speed, speed < cfg.still_speed
        heading = velocities[:, None, :] + velocities[None, :, :]
        norm = np.linalg.norm(heading, axis=2, keepdims=True)
        heading = np.divide(heading, norm, out=np.zeros_like(heading), where=norm > 0)
        along = np.abs((offset * heading).sum(axis=2))
        side = np.sqrt(np.maximum(distance**2 - along**2, 0.0))
        agree = np.linalg.norm(velocities[:, None] - velocities[None, :], axis=2) \
            <= cfg.velocity_tolerance
        walking = (moving[:, None] & moving[None, :] & agree
                   & (side <= cfg.side_distance) & (along <= cfg.trail_distance))
        standing = still[:, None] & still[None, :] & (distance <= cfg.still_distance)

        # Pairs on record keep accruing presence; a new record starts when together.
        index = {track_id: k for k, track_id in enumerate(ids_list)}
        rows, cols = np.nonzero(np.triu(walking | standing, k=1))
        active = {(min(ids_list[r], ids_list[c]), max(ids_list[r], ids_list[c]))
                  for r, c in zip(rows.tolist(), cols.tolist(), strict=True)}
        for track_id in ids_list:
            active.update((min(track_id, p), max(track_id, p))
                          for p in self._tracks[track_id].partners if p in index)
        for key in active:
            a, b = index[key[0]], index[key[1]]
            pair = self._pairs.get(key)
            if pair is None:
                pair = self._pairs[key] = _Pair(start=timestamp, last=timestamp - frame_step)
                self._tracks[key[0]].partners.add(key[1])
                self._tracks[key[1]].partners.add(key[0])
            step = min(max(timestamp - pair.last, 0.0), cfg.max_gap)
            pair.last = timestamp
            pair.present += step
            if walking[a, b]:
                pair.together += step
                pair.evidence += step
                t = timestamp - pair.start
                pair.n += 1
                pair.st += t
                pair.stt += t * t
                pair.so += offset[a, b]
                pair.sto += t * offset[a, b]
            elif standing[a, b]:
                pair.together += step
                pair.evidence += step * cfg.still_weight

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
            track = self._tracks[track_id] = _Track(first=timestamp)
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
        evidence = pair.evidence
        if (a.crossed is not None and b.crossed is not None
                and abs(a.crossed - b.crossed) <= cfg.crossing_window):
            evidence += cfg.crossing_bonus
        return (evidence >= cfg.min_together
                and pair.together >= cfg.min_fraction * pair.present
                and pair.drift() <= cfg.max_drift)

    def _component(self, start: int) -> set[int]:
        group, todo = {start}, [start]
        while todo:
            for other in self._links.get(todo.pop(), ()):
                if other not in group:
                    group.add(other)
                    todo.append(other)
        return group
