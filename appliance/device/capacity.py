"""How many frames a second the board can run the person detector on, from the time of one
run: the adaptive rate's cap (sources/adaptive.py) and health's `capacity_fps`. One run of
the network costs the same whoever is in view, so neither follows people
(docs/privacy.md, Health). Kept apart from sources/ so that the publisher, which reports
health, never loads the video stack."""

from __future__ import annotations

import bisect

DETECTOR_SHARE = 0.5  # of the time, for the detector on every frame; the rest: decoding (a
# software decoder shares the CPU), the other stages and their people. At 0.7 a starved
# board fell behind and missed an exit in 2 of 7 runs of tests/device/test_live_rates.py.
# The rates a cap may take: a cost that moves a little moves no rate (and tells nothing).
LADDER = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0,
          40.0, 50.0, 60.0, 100.0)


def sustainable_fps(run_seconds: float) -> float:
    """The highest rung of frames a second at which one detector run per frame takes at
    most DETECTOR_SHARE of the time (the lowest rung, 1, at least)."""
    # Rounded, so that a sum of runs' times that misses a rung by a float's last bit is on it.
    rate = round(DETECTOR_SHARE / max(run_seconds, 1e-6), 6)
    return LADDER[max(bisect.bisect_right(LADDER, rate) - 1, 0)]
