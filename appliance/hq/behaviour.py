"""Shopper behaviour from `shopper.counts/2` windows, pooled over a camera's windows: zones
(visits, dwell, occupancy, shelf interactions, queue waits), journeys, groups, heatmap.

A null count was suppressed on the device (privacy): it is unknown, not zero. It adds
nothing and is counted in its section's `suppressed`, so sums are lower bounds. A share
pools its part and whole over the windows where both are known, and says how many windows
it left out. Dwell (and, for a queue zone, wait) percentiles come from the histograms summed
over the windows: a visit-weighted mean of the windows' p50 is not the median of the
visits, so the windows' own p50/p90 are not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

from appliance.messages import bin_bounds

JOURNEY_COUNTS = ("visitors", "staff", "entered", "interacted", "reached_checkout",
                  "interacted_without_checkout")
GROUP_SIZES = ("1", "2", "3", "4", "5+")


def heatmap_cells(heatmap: dict) -> list[list[int | None]]:
    """The grid of a document's heatmap, rows top to bottom; None: a blanked cell. Raises
    ValueError when it is not `rows` rows of `cols` cells."""
    grid = [[int(cell) if cell else None for cell in row.split(",")]
            for row in heatmap["person_seconds"].split(";")]
    if len(grid) != heatmap["rows"] or any(len(row) != heatmap["cols"] for row in grid):
        raise ValueError(f"person_seconds is not {heatmap['rows']} rows of "
                         f"{heatmap['cols']} cells")
    return grid


def check_heatmap_shape(heatmap: dict) -> None:
    """Raises ValueError unless person_seconds is `rows` rows of `cols` cells (counted by
    their separators: the subscriber's check, without converting the cells)."""
    rows = heatmap["person_seconds"].split(";")
    if len(rows) != heatmap["rows"] or any(row.count(",") != heatmap["cols"] - 1
                                           for row in rows):
        raise ValueError(f"person_seconds is not {heatmap['rows']} rows of "
                         f"{heatmap['cols']} cells")


def percentile(histogram: dict[str, int], q: float) -> tuple[float, bool] | None:
    """The q-quantile (0 < q < 1) of the visits counted in a histogram, and whether it is
    only a lower bound. Visits are taken as spread evenly over their bin (linear
    interpolation, the usual grouped-data median); in the open last bin ("300+") the
    figure is the bin's lower bound. None with no visits, or when the bins overlap (the
    device's bins changed within the period)."""
    bins = sorted((bin_bounds(label), n) for label, n in histogram.items())
    if any(high <= low for (low, high), _ in bins) or \
            any(b[0][0] < a[0][1] for a, b in pairwise(bins)):
        return None
    total = sum(n for _, n in bins)
    target, seen = q * total, 0
    for (low, high), n in bins:
        if n and seen + n >= target:
            if high == math.inf:
                return low, True
            return low + (high - low) * (target - seen) / n, False
        seen += n
    return None


def add_count(total: int, n: int | None) -> tuple[int, int]:
    """Adds a published count to a total: (new total, 1 when it was suppressed)."""
    return total + (n or 0), int(n is None)


@dataclass
class Share:
    """part / whole, pooled over the windows where both were published."""

    part: int = 0
    whole: int = 0
    windows: int = 0
    left_out: int = 0  # windows where the part or the whole was suppressed

    def add(self, part: int | None, whole: int | None) -> None:
        self.windows += 1
        if part is None or whole is None:
            self.left_out += 1
        else:
            self.part += part
            self.whole += whole

    def merge(self, other: Share) -> None:
        for name in ("part", "whole", "windows", "left_out"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None

    def as_dict(self) -> dict:
        return {"share": None if self.value is None else round(self.value, 4),
                "part": self.part, "whole": self.whole, "windows": self.windows,
                "left_out_windows": self.left_out}


@dataclass
class Zone:
    kind: str
    windows: int = 0
    visits: int = 0
    interactions: int | None = None  # None: the zone never reported interactions
    histogram: dict[str, int] = field(default_factory=dict)
    # suppressed: null visits, interactions, and dwell histogram bins
    suppressed: dict[str, int] = field(
        default_factory=lambda: {"visits": 0, "interactions": 0, "dwell_bins": 0})
    occupancy_seconds: float = 0.0  # occupancy_mean x observed seconds, summed
    occupancy_observed: float = 0.0  # observed seconds of the windows with occupancy_mean
    occupancy_max: int | None = None

    def add(self, zone: dict, observed_seconds: float) -> None:
        self.kind = zone["kind"]  # the latest, should the configuration change
        self.windows += 1
        self.visits, missing = add_count(self.visits, zone["visits"])
        self.suppressed["visits"] += missing
        if "interactions" in zone:
            self.interactions, missing = add_count(self.interactions or 0, zone["interactions"])
            self.suppressed["interactions"] += missing
        for label, n in zone["dwell"]["histogram"].items():
            self.histogram[label], missing = add_count(self.histogram.get(label, 0), n)
            self.suppressed["dwell_bins"] += missing
        if zone["occupancy_mean"] is not None:
            self.occupancy_seconds += zone["occupancy_mean"] * observed_seconds
            self.occupancy_observed += observed_seconds
        if zone["occupancy_max"] is not None:
            self.occupancy_max = max(self.occupancy_max or 0, zone["occupancy_max"])

    @property
    def occupancy_mean(self) -> float | None:
        """Time-weighted over the observed seconds (for a queue: the mean queue length)."""
        return self.occupancy_seconds / self.occupancy_observed \
            if self.occupancy_observed else None

    def dwell(self) -> dict:
        """Pooled dwell (a queue's wait) in seconds; `at_least` names the percentiles that
        fell in the open last bin, given as its lower bound."""
        histogram = dict(sorted(self.histogram.items(), key=lambda item: bin_bounds(item[0])))
        out = {"visits": sum(histogram.values()), "p50": None, "p90": None, "at_least": []}
        for name, q in (("p50", 0.5), ("p90", 0.9)):
            found = percentile(histogram, q)
            if found is not None:
                out[name] = round(found[0], 1)
                if found[1]:
                    out["at_least"].append(name)
        return {**out, "histogram": histogram}

    def as_dict(self) -> dict:
        mean = self.occupancy_mean
        return {"kind": self.kind, "windows": self.windows, "visits": self.visits,
                "interactions": self.interactions, "suppressed": dict(self.suppressed),
                "dwell": self.dwell(),
                "occupancy_mean": None if mean is None else round(mean, 2),
                "occupancy_max": self.occupancy_max}


@dataclass
class Heatmap:
    """person_seconds summed per cell over the windows with this grid. A cell's sum is of
    the windows where it was published (a lower bound where it was blanked in some);
    None where it was blanked in every window."""

    cols: int
    rows: int
    windows: int = 0
    sums: list[list[int | None]] = field(default_factory=list)
    blanked: list[list[int]] = field(default_factory=list)  # windows each cell was blanked in

    def __post_init__(self):
        self.sums = self.sums or [[None] * self.cols for _ in range(self.rows)]
        self.blanked = self.blanked or [[0] * self.cols for _ in range(self.rows)]

    def add(self, grid: list[list[int | None]]) -> None:
        self.windows += 1
        for y, row in enumerate(grid):
            for x, value in enumerate(row):
                if value is None:
                    self.blanked[y][x] += 1
                else:
                    self.sums[y][x] = (self.sums[y][x] or 0) + value

    @property
    def total(self) -> int:
        return sum(value or 0 for row in self.sums for value in row)

    def as_dict(self) -> dict:
        cells = [(self.sums[y][x], self.blanked[y][x])
                 for y in range(self.rows) for x in range(self.cols)]
        return {"cols": self.cols, "rows": self.rows, "windows": self.windows,
                "total_person_seconds": self.total,
                "blanked_cells": sum(s is None for s, _ in cells),
                "partly_blanked_cells": sum(s is not None and b > 0 for s, b in cells),
                "person_seconds": self.sums, "blanked_windows": self.blanked}


@dataclass
class Behaviour:
    """One camera's shopper.counts/2 sections over the selected windows."""

    windows: int = 0  # windows with any of these sections
    zones: dict[str, Zone] = field(default_factory=dict)
    journeys: dict[str, int] = field(default_factory=dict)
    journeys_suppressed: int = 0
    without_checkout: Share = field(default_factory=Share)  # of those who interacted
    sizes: dict[str, int] = field(default_factory=dict)  # groups by size
    accompanied: int = 0
    groups_suppressed: int = 0
    accompanied_share: Share = field(default_factory=Share)  # of the people in groups
    heatmap: Heatmap | None = None
    heatmap_skipped: int = 0  # windows of an older grid size (or a malformed one) left out

    def add(self, window) -> None:
        """Adds a StoredWindow's v2 sections (a v1 window has none, nor has a v2 window
        from a device with no zones, groups or heatmap configured)."""
        if not (window.zones or window.journeys or window.groups or window.heatmap):
            return
        self.windows += 1
        for name, zone in window.zones.items():
            self.zones.setdefault(name, Zone(zone["kind"])).add(zone, window.observed_seconds)
        if window.journeys:
            j = window.journeys
            for name in JOURNEY_COUNTS:
                self.journeys[name], missing = add_count(self.journeys.get(name, 0), j[name])
                self.journeys_suppressed += missing
            self.without_checkout.add(j["interacted_without_checkout"], j["interacted"])
        if window.groups:
            sizes, accompanied = window.groups["sizes"], window.groups["accompanied"]
            for size in GROUP_SIZES:
                self.sizes[size], missing = add_count(self.sizes.get(size, 0), sizes[size])
                self.groups_suppressed += missing
            self.accompanied, missing = add_count(self.accompanied, accompanied)
            self.groups_suppressed += missing
            # People in groups: those alone (groups of 1) and those accompanied.
            alone = sizes["1"]
            self.accompanied_share.add(
                accompanied, None if alone is None or accompanied is None else alone + accompanied)
        if window.heatmap:
            self._add_heatmap(window.heatmap)

    def add_rollup(self, r) -> None:
        """Adds a quarter-hour's Rollup (rollup.py; one heatmap grid at most) after the
        earlier ones: the same as adding its windows one by one in time order."""
        if not r.behaviour_windows:
            return
        self.windows += r.behaviour_windows
        for name, z in r.zones.items():
            zone = self.zones.setdefault(name, Zone(z["kind"]))
            zone.kind = z["kind"]  # the quarter-hour's latest
            zone.windows += z["windows"]
            zone.visits += z["visits"]
            if z["interactions"] is not None:
                zone.interactions = (zone.interactions or 0) + z["interactions"]
            for what, n in z["suppressed"].items():
                zone.suppressed[what] += n
            for label, n in z["histogram"].items():
                zone.histogram[label] = zone.histogram.get(label, 0) + n
            zone.occupancy_seconds += z["occupancy_seconds"]
            zone.occupancy_observed += z["occupancy_observed"]
            if z["occupancy_max"] is not None:
                zone.occupancy_max = max(zone.occupancy_max or 0, z["occupancy_max"])
        for name, n in r.journeys.items():
            self.journeys[name] = self.journeys.get(name, 0) + n
        self.journeys_suppressed += r.journeys_suppressed
        self.without_checkout.merge(Share(*r.without_checkout))
        for size, n in r.sizes.items():
            self.sizes[size] = self.sizes.get(size, 0) + n
        self.accompanied += r.accompanied
        self.groups_suppressed += r.groups_suppressed
        self.accompanied_share.merge(Share(*r.accompanied_share))
        self.heatmap_skipped += r.heatmap_skipped
        for shape, grid in r.heatmaps.items():
            cols, rows = (int(n) for n in shape.split("x"))
            if self.heatmap is None or (self.heatmap.cols, self.heatmap.rows) != (cols, rows):
                self.heatmap_skipped += self.heatmap.windows if self.heatmap else 0
                self.heatmap = Heatmap(cols, rows)
            h = self.heatmap
            h.windows += grid["windows"]
            h.sums = [[s if v is None else (s or 0) + v for s, v in zip(sums, row, strict=True)]
                      for sums, row in zip(h.sums, grid["sums"], strict=True)]
            h.blanked = [[a + b for a, b in zip(blanked, row, strict=True)]
                         for blanked, row in zip(h.blanked, grid["blanked"], strict=True)]

    def _add_heatmap(self, heatmap: dict) -> None:
        try:
            cells = heatmap_cells(heatmap)
        except ValueError:  # the subscriber refuses these; a window stored otherwise
            self.heatmap_skipped += 1
            return
        shape = (heatmap["cols"], heatmap["rows"])
        if self.heatmap is None or (self.heatmap.cols, self.heatmap.rows) != shape:
            # The grid changed: keep the latest one.
            self.heatmap_skipped += self.heatmap.windows if self.heatmap else 0
            self.heatmap = Heatmap(*shape)
        self.heatmap.add(cells)

    def shelves(self) -> list[tuple[str, Zone]]:
        """Shelf zones, most interactions first."""
        return sorted(((name, z) for name, z in self.zones.items() if z.kind == "shelf"),
                      key=lambda item: (-(item[1].interactions or 0), item[0]))

    def as_dict(self) -> dict:
        return {
            "windows": self.windows,
            "zones": {name: zone.as_dict() for name, zone in sorted(self.zones.items())},
            "top_shelves": [{"zone": name, "interactions": z.interactions,
                             "suppressed": z.suppressed["interactions"]}
                            for name, z in self.shelves()],
            "journeys": {**self.journeys, "suppressed": self.journeys_suppressed},
            "interacted_without_checkout": self.without_checkout.as_dict(),
            "groups": {"sizes": self.sizes, "accompanied": self.accompanied,
                       "suppressed": self.groups_suppressed},
            "accompanied": self.accompanied_share.as_dict(),
            "heatmap": self.heatmap.as_dict() if self.heatmap else None,
            "heatmap_skipped_windows": self.heatmap_skipped,
        }


@dataclass
class StoreBehaviour:
    """A store's shares pooled over its cameras, and its shelves ranked across cameras. A
    person seen by two cameras counts in both."""

    store_id: str
    cameras: int = 0
    first: str | None = None
    last: str | None = None
    without_checkout: Share = field(default_factory=Share)
    accompanied: Share = field(default_factory=Share)
    shelves: list[tuple[str, str, Zone]] = field(default_factory=list)  # camera, zone, Zone

    def add(self, camera_id: str, behaviour: Behaviour) -> None:
        self.cameras += 1
        self.without_checkout.merge(behaviour.without_checkout)
        self.accompanied.merge(behaviour.accompanied_share)
        self.shelves += [(camera_id, name, zone) for name, zone in behaviour.shelves()]
        self.shelves.sort(key=lambda s: (-(s[2].interactions or 0), s[0], s[1]))

    def as_dict(self) -> dict:
        return {"store_id": self.store_id, "cameras": self.cameras, "first_window": self.first,
                "last_window": self.last,
                "interacted_without_checkout": self.without_checkout.as_dict(),
                "accompanied": self.accompanied.as_dict(),
                "top_shelves": [{"camera_id": camera, "zone": name,
                                 "interactions": zone.interactions,
                                 "suppressed": zone.suppressed["interactions"]}
                                for camera, name, zone in self.shelves]}
