"""Per-window aggregation: events in, one counts document per time window out.

Windows are aligned to multiples of the window length: of wall-clock time for live sources
(a 60 s window runs from hh:mm:00 to hh:mm+1:00 UTC) and of media time for files (0-60 s,
60-120 s, ... of the clip, shown as time since 1970-01-01T00:00:00Z). A live source's frame
times are monotonic; its `wall_clock` turns them into wall-clock time here, and when the
system clock steps (time sync on a board without a real-time clock, or set back by hand) the
open window closes and the next starts on the new time. What leaves here is a plain
JSON-able dict of counts and names (schema `shopper.counts/2`, appliance/schemas/counts-2.json),
so the process that publishes it never needs anything else from this side.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING

from appliance.device.analytics.lines import Crossing
from appliance.messages import iso

if TYPE_CHECKING:
    from appliance.device.analytics.behaviour import BehaviourFrame, BehaviourWindow
    from appliance.device.clock import WallClock

SCHEMA = "shopper.counts/2"


class WindowAggregator:
    def __init__(self, store_id: str, camera_id: str, line_names: list[str],
                 window_seconds: float, clock: str, age_bands: list[str] | None = None,
                 gender: bool = False, behaviour: BehaviourWindow | None = None,
                 min_people: int = 1, wall_clock: WallClock | None = None):
        self.store_id = store_id
        self.camera_id = camera_id
        self.line_names = list(line_names)
        self.window_seconds = window_seconds
        self.clock = clock  # "wall" or "media"
        self.age_bands = age_bands  # band names, with demographics on
        self.gender = gender
        self.behaviour = behaviour  # zones, journeys, groups, heatmap
        self.min_people = min_people  # heatmap cells with fewer people are blanked
        self.wall_clock = wall_clock  # None: timestamps are already the windows' time
        self._start: float | None = None
        self._first: float | None = None
        self._frames = 0
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._lines = {name: {"in": 0, "out": 0} for name in self.line_names}
        self._ages = dict.fromkeys(self.age_bands or (), 0)
        self._genders = {"female": 0, "male": 0, "unknown": 0}

    def add(self, timestamp: float, crossings: list[Crossing],
            visitors: list | None = None, behaviour: BehaviourFrame | None = None) -> list[dict]:
        """Account one processed frame; returns the documents of windows it closed."""
        now, closed = self._window_time(timestamp)
        if self._start is None:
            self._open_at(now)
        closed += self._close_until(now)
        self._frames += 1
        for crossing in crossings:
            self._lines[crossing.line][crossing.direction] += 1
        self._add_visitors(visitors or ())
        if behaviour is not None and self.behaviour is not None:
            self.behaviour.add(behaviour)
        return closed

    def close_due(self, timestamp: float) -> list[dict]:
        """The windows that ended by `timestamp`. A live camera that is down calls it: its
        windows close on time, as windows without frames (observed 0), rather than when the
        stream comes back."""
        now, closed = self._window_time(timestamp)
        return closed + self._close_until(now)

    def _window_time(self, timestamp: float) -> tuple[float, list[dict]]:
        """A frame time as the windows' time, and the window a clock step closed: it ends
        there (partial) and the next starts on the new time, so no window is made for the
        time jumped over and none after the step carries the time before it."""
        if self.wall_clock is None:
            return timestamp, []
        before = timestamp + self.wall_clock.offset
        stepped = self.wall_clock.check()
        now = timestamp + self.wall_clock.offset
        if not stepped or self._start is None:
            return now, []
        closed = self._close_until(before)  # what ended on the old time, then the rest
        closed.append(self._emit(partial=True))
        self._open_at(now)
        return now, closed

    def _open_at(self, now: float) -> None:
        self._start = math.floor(now / self.window_seconds) * self.window_seconds
        self._first = now

    def _close_until(self, now: float) -> list[dict]:
        closed = []
        while self._start is not None and now >= self._start + self.window_seconds:
            closed.append(self._emit())
            self._start += self.window_seconds
            self._first = self._start
        return closed

    def _add_visitors(self, visitors) -> None:
        """Visitors whose track ended (demographics): one count each in its band."""
        for visitor in visitors:
            if self.age_bands is not None:
                self._ages[visitor.band] += 1
            if self.gender and visitor.gender is not None:
                self._genders[visitor.gender] += 1

    def flush(self, visitors: list | None = None,
              behaviour: BehaviourFrame | None = None) -> list[dict]:
        """Close the open window at the end of the source (a partial window), with the
        visitors whose tracks the end of the source ended."""
        if self._start is None:
            return []
        self._add_visitors(visitors or ())
        if behaviour is not None and self.behaviour is not None:
            self.behaviour.add(behaviour)
        return [self._emit(partial=True)]

    def _emit(self, partial: bool = False) -> dict:
        start = self._first if self._first is not None else self._start
        # Nothing finer than the window leaves: how much of a partial window was observed
        # (or how many frames it had) would say when inside it the camera started or
        # stopped, and so narrow down when the people counted in it were there.
        document = {
            "schema": SCHEMA,
            # Random, so it says nothing; fixed once here, so a resent window keeps it.
            "message_id": uuid.uuid4().hex,
            "store_id": self.store_id,
            "camera_id": self.camera_id,
            "clock": self.clock,
            "window_start": iso(self._start),
            "window_end": iso(self._start + self.window_seconds),
            # A window without frames (a stream outage) observed nothing.
            "observed_seconds": float(self.window_seconds) if self._frames else 0.0,
            "partial": partial or start > self._start or not self._frames,
            "lines": {name: dict(counts) for name, counts in self._lines.items()},
        }
        if self.age_bands is not None:
            document["age_bands"] = dict(self._ages)
        if self.gender:
            document["gender"] = dict(self._genders)
        if self.behaviour is not None:
            document.update(self.behaviour.emit(self.min_people))
        self._frames = 0
        self._reset_counts()
        return document
