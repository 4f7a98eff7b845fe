"""Companion detection: people who arrive and move together (couples, families, friends).

Streaming, so the live appliance and the offline evaluation run the same code. Each frame,
every pair of people present is scored:

- both walking: together when close (``walk_distance``) and their velocities agree
  (``velocity_tolerance``: same heading *and* same pace), and the one behind is not
  trailing in file (``trail_distance`` along the shared heading: a stranger following on
  a pavement keeps pace but not formation);
- both standing: together when close (``still_distance``), but standing time counts
  only ``still_weight`` per second: strangers wait side by side at a tram stop or in a
  queue, so standing proximity is weak evidence that needs a long chat to add up;
- otherwise (one walks, the other stands) they are apart.

A pair is decided when one of them ends: together when its together-time reaches
``min_together`` seconds and is at least ``min_fraction`` of the time both were present
since they first were together (strangers crossing or overtaking are together only
briefly). Groups are connected components of together-pairs; a group is reported once
every member has ended, and then everything about its members is forgotten.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GroupConfig:
    """One general setting, in metres and seconds (defaults used everywhere)."""

    velocity_window: float = 0.8  # s: velocity from displacement over this much history
    history_seconds: float = 2.0  # s: per-track positions kept (bounded memory)
    still_speed: float = 0.4  # m/s: slower than this is standing (a stroll is ~0.8)
    walk_distance: float = 1.5  # m: walking companions stay within arm's reach or so
    trail_distance: float = 1.0  # m: along-heading offset beyond which one trails the other
    velocity_tolerance: float = 0.5  # m/s: |v_a - v_b| of people keeping step
    # Looser formations (families of four, friends abreast across a pavement): farther
    # apart is fine when the formation is held, i.e. the velocities agree closely.
    formation_distance: float = 2.5
    formation_tolerance: float = 0.2
    still_distance: float = 1.2  # m: conversational distance when standing
    still_weight: float = 0.2  # standing together counts this much per second
    min_together: float = 4.0  # s of together-evidence needed
    min_fraction: float = 0.6  # of the time both were present since first together
    # People seen only briefly (crossing the view) can't show min_together; together for
    # short_coverage of the shorter lifetime, and at least min_short seconds, also counts.
    short_coverage: float = 0.75
    min_short: float = 2.0
    max_gap: float = 1.0  # s: a longer gap between updates counts as this much
    crossing_window: float = 3.0  # s: entrance crossings this close count as arriving together
    crossing_bonus: float = 2.0  # s of together-evidence for arriving together


@dataclass
class _Track:
    first: float  # time first seen
    times: deque = field(default_factory=deque)
    points: deque = field(default_factory=deque)  # (x, y) in the caller's units
    scales: deque = field(default_factory=deque)  # metres per unit
    crossed: float | None = None  # entrance crossing time, if any
    partners: set[int] = field(default_factory=set)  # ids with a pair record


@dataclass
class _Pair:
    together: float = 0.0  # s of together-evidence
    present: float = 0.0  # s both were present since the first together frame
    last: float = 0.0  # time of the last shared update


class GroupDetector:
    def __init__(self, config: GroupConfig = GroupConfig()):
        self.config = config
        self._tracks: dict[int, _Track] = {}
        self._pairs: dict[tuple[int, int], _Pair] = {}  # (low id, high id) -> evidence
        # Decided together-links of ended people whose group is still incomplete.
        self._links: dict[int, set[int]] = {}
        self._ended: set[int] = set()
        self._last_time: float | None = None  # previous update, to time a pair's first frame

    def update(self, timestamp: float, ids: np.ndarray, positions: np.ndarray,
               metres_per_unit: np.ndarray | None = None) -> None:
        """Add one frame: ``ids`` (N,), ground-plane ``positions`` (N, 2), and per person
        ``metres_per_unit`` (N,) (None: positions are in metres). Without a homography the
        appliance passes foot points in pixels and 1.7 m / box height per person; a pair's
        distance then uses the mean of the two scales."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        points = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        scales = (np.ones(len(ids)) if metres_per_unit is None
                  else np.asarray(metres_per_unit, dtype=np.float64).reshape(-1))
        frame_step = (0.0 if self._last_time is None
                      else min(max(timestamp - self._last_time, 0.0), self.config.max_gap))
        self._last_time = timestamp
        velocities = np.empty((len(ids), 2))
        for k, track_id in enumerate(ids.tolist()):
            velocities[k] = self._observe(track_id, timestamp, points[k], scales[k])
        if len(ids) < 2:
            return
        cfg = self.config
        offset = points[:, None, :] - points[None, :, :]
        pair_scale = (scales[:, None] + scales[None, :]) / 2
        distance = np.linalg.norm(offset, axis=2) * pair_scale  # metres
        speed = np.linalg.norm(velocities, axis=1)  # NaN (unknown yet) is neither state
        moving = speed >= cfg.still_speed
        still = speed < cfg.still_speed
        # Trailing: offset along the pair's mean heading (zero for standing people).
        heading = np.nan_to_num(velocities[:, None, :] + velocities[None, :, :])
        norm = np.linalg.norm(heading, axis=2, keepdims=True)
        heading = np.divide(heading, norm, out=np.zeros_like(heading), where=norm > 0)
        along = np.abs((offset * heading).sum(axis=2)) * pair_scale
        dv = np.linalg.norm(velocities[:, None] - velocities[None, :], axis=2)
        walking = moving[:, None] & moving[None, :] & (
            ((distance <= cfg.walk_distance) & (along <= cfg.trail_distance)
             & (dv <= cfg.velocity_tolerance))
            | ((distance <= cfg.formation_distance) & (dv <= cfg.formation_tolerance)))
        standing = still[:, None] & still[None, :] & (distance <= cfg.still_distance)
        evidence = np.where(walking, 1.0, np.where(standing, cfg.still_weight, 0.0))
        # Pairs already on record keep accruing presence; new ones start when together.
        rows, cols = np.nonzero(np.triu(evidence > 0, k=1))
        index = {track_id: k for k, track_id in enumerate(ids.tolist())}
        active = {(min(ids[r], ids[c]), max(ids[r], ids[c])) for r, c in zip(rows, cols)}
        for track_id in ids.tolist():
            active.update((min(track_id, p), max(track_id, p))
                          for p in self._tracks[track_id].partners if p in index)
        for key in active:
            a, b = index[key[0]], index[key[1]]
            pair = self._pairs.get(key)
            if pair is None:
                pair = self._pairs[key] = _Pair(last=timestamp - frame_step)
                self._tracks[key[0]].partners.add(key[1])
                self._tracks[key[1]].partners.add(key[0])
            step = min(max(timestamp - pair.last, 0.0), cfg.max_gap)
            pair.last = timestamp
            pair.present += step
            pair.together += step * evidence[a, b]

    def crossed(self, track_id: int, timestamp: float) -> None:
        """Optional cue: this track crossed the entrance line at ``timestamp``. People who
        arrive together cross within a few seconds of each other; this adds supporting
        evidence to their pair, it is never required."""
        track = self._tracks.get(track_id)
        if track is not None and track.crossed is None:
            track.crossed = timestamp

    def end(self, ids) -> list[int]:
        """These tracks ended. Returns the sizes of groups now complete (every member
        ended), a person alone as size 1. Everything about those people is then dropped."""
        return [len(group) for group in self.end_groups(ids)]

    def end_groups(self, ids) -> list[frozenset[int]]:
        """As :meth:`end`, but the groups' track ids (for evaluation against labels)."""
        ended = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)
                 if int(i) in self._tracks]
        for track_id in ended:
            track = self._tracks.pop(track_id)
            for partner in track.partners:
                key = (min(track_id, partner), max(track_id, partner))
                pair = self._pairs.pop(key)
                other = self._tracks[partner]
                other.partners.discard(track_id)
                if self._together(pair, track, other):
                    self._links.setdefault(track_id, set()).add(partner)
                    self._links.setdefault(partner, set()).add(track_id)
            self._ended.add(track_id)
        groups = []
        for track_id in ended:
            if track_id not in self._ended:
                continue  # already reported with its group in this call
            group = self._component(track_id)
            if all(member in self._ended for member in group):
                groups.append(frozenset(group))
                for member in group:
                    self._ended.discard(member)
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
        track.times.append(timestamp)
        track.points.append(point.copy())
        track.scales.append(scale)
        while timestamp - track.times[0] > cfg.history_seconds:
            track.times.popleft()
            track.points.popleft()
            track.scales.popleft()
        # Oldest kept sample at least velocity_window ago, else the oldest there is.
        k = len(track.times) - 1
        while k > 0 and timestamp - track.times[k] < cfg.velocity_window:
            k -= 1
        elapsed = timestamp - track.times[k]
        if elapsed <= 0:
            return np.full(2, np.nan)
        metres = (track.scales[k] + scale) / 2
        return (point - track.points[k]) * metres / elapsed

    def _together(self, pair: _Pair, a: _Track, b: _Track) -> bool:
        cfg = self.config
        together = pair.together
        if (a.crossed is not None and b.crossed is not None
                and abs(a.crossed - b.crossed) <= cfg.crossing_window):
            together += cfg.crossing_bonus
        # The span both were in view (so far): all a brief visit could show.
        lifetime = min(a.times[-1], b.times[-1]) - max(a.first, b.first)
        needed = min(cfg.min_together, max(cfg.min_short, cfg.short_coverage * lifetime))
        return together >= needed and together >= cfg.min_fraction * pair.present

    def _component(self, start: int) -> set[int]:
        group, todo = {start}, [start]
        while todo:
            for other in self._links.get(todo.pop(), ()):
                if other not in group:
                    group.add(other)
                    todo.append(other)
        return group
