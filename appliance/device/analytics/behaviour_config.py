"""Settings of the shopper-behaviour analytics (zones, shelf reach, journeys, groups,
heatmap). Kept free of numpy so the config loads before any thread starts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BehaviourConfig:
    # Zone border hysteresis: a foot point enters this many box heights inside the polygon
    # and leaves this far outside, and a visit ends only after `exit_seconds` outside, so
    # jitter at the border never makes a visit.
    zone_margin: float = 0.08
    exit_seconds: float = 1.0
    # Dwell histogram bin edges in seconds: 0-10, 10-30, ..., 300+.
    dwell_bins: tuple[int, ...] = (10, 30, 60, 120, 300)
    # Shelf interaction: stopped (foot speed under `still_speed` box heights per second)
    # within `reach` box heights of a shelf polygon for `interaction_seconds`.
    reach: float = 0.5
    still_speed: float = 0.35
    interaction_seconds: float = 2.0
    # With the pose model, a wrist must also enter the shelf polygon; MoveNet runs only on
    # people stopped near a shelf, at most `pose_per_second` people per second.
    pose: bool = False
    pose_per_second: float = 4.0
    # A person who spends more than this share of their time in `staff` zones is staff.
    staff_share: float = 0.5
    groups: bool = True
    # Coarse occupancy grid (columns, rows) over the frame; None turns the heatmap off.
    heatmap: tuple[int, int] | None = (16, 9)

    def bin_names(self) -> list[str]:
        edges = [0, *(int(b) for b in self.dwell_bins)]
        names = [f"{a}-{b}" for a, b in zip(edges, edges[1:], strict=False)]
        return names + [f"{edges[-1]}+"]
