"""Time on a live camera: frames on the monotonic clock, windows on the wall clock.

A board without a real-time clock boots with its clock wrong (years behind) until time sync
steps it forward; an administrator may also set it back. Tracking, rates and lost-track
timeouts measure elapsed time, so a live source stamps its frames on the monotonic clock,
which never steps (`StreamClock` maps the stream's own timestamps onto it). Windows are
aligned to and labelled with wall-clock time: `WallClock` gives the wall clock's offset from
the monotonic one and notices when it steps, which the windows turn into one closed window
and the next on the new time (window.py), never one window per window length jumped over.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("shopper_edge.sources")


class WallClock:
    """`offset`: wall-clock time minus monotonic time. `check()` measures it again; a change
    of more than STEP_SECONDS is a step, logged once and counted in `stats.clock_steps`."""

    # timesyncd slews differences under 0.4 s and steps larger ones; NTP keeps both clocks
    # at the same rate, so between steps the offset moves by microseconds.
    STEP_SECONDS = 2.0

    def __init__(self, stats):
        self.stats = stats
        self.offset = self._measure()

    @staticmethod
    def _measure() -> float:
        return time.time() - time.monotonic()

    def check(self) -> bool:
        """True when the wall clock stepped since the last check."""
        offset = self._measure()
        stepped = abs(offset - self.offset) > self.STEP_SECONDS
        if stepped:
            self.stats.clock_steps += 1
            log.warning("the system clock stepped by %+.1f s (time sync, or set by hand): the "
                        "open window closes and the next carries the new time; tracking keeps "
                        "the monotonic clock", offset - self.offset)
        self.offset = offset
        return stepped
