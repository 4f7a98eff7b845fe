"""Settings of the shopper-behaviour analytics (zones, shelf reach, journeys, groups,
heatmap), with the parser. Kept free of numpy so the config loads before any thread
starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.device.config_reader import ConfigReader, join_key


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


def parse_behaviour(r: ConfigReader, raw: Any, key: str) -> BehaviourConfig:
    d = BehaviourConfig()
    b = r.mapping(raw, key, tuple(d.__dataclass_fields__))
    numbers = {name: r.number(b.get(name, getattr(d, name)), join_key(key, name), low, high)
               for name, low, high in (("zone_margin", 0, 2), ("exit_seconds", 0, 600),
                                       ("reach", 0, 5), ("still_speed", 0, 10),
                                       ("interaction_seconds", 0, 600),
                                       ("pose_per_second", 0.1, 100), ("staff_share", 0, 1))}
    flags = {name: r.flag(b.get(name, getattr(d, name)), join_key(key, name))
             for name in ("pose", "groups")}
    bins = b.get("dwell_bins", list(d.dwell_bins))
    if not isinstance(bins, list) or not 1 <= len(bins) <= 10 or any(
            isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 86400
            for v in bins) or sorted(set(bins)) != bins:
        raise r.fail(join_key(key, "dwell_bins"), "expected 1-10 ascending whole seconds "
                     "(upper bin edges), e.g. [10, 30, 60, 120, 300]")
    heatmap = b.get("heatmap", list(d.heatmap))
    if heatmap is not None and (not isinstance(heatmap, list) or len(heatmap) != 2 or any(
            isinstance(n, bool) or not isinstance(n, int) for n in heatmap)
            or not 1 <= heatmap[0] <= 32 or not 1 <= heatmap[1] <= 18):
        raise r.fail(join_key(key, "heatmap"), f"expected [columns, rows] with 1-32 columns "
                     f"and 1-18 rows, or null to turn it off, got {heatmap!r}")
    return BehaviourConfig(**numbers, **flags, dwell_bins=tuple(bins),
                           heatmap=None if heatmap is None else (heatmap[0], heatmap[1]))
