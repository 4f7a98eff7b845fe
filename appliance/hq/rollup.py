"""What a report needs of a camera's windows, summed per UTC quarter-hour (a roll-up).

The subscriber folds each new window into its quarter-hour's roll-up in the transaction
that stores the window, so a repeat (dropped by message id) is never summed twice; a
report reads one roll-up per camera and quarter-hour instead of every window. Quarter-hours
rather than hours: every time zone's offset is a multiple of 15 minutes, so a quarter-hour
lies in one local hour in any zone, Asia/Kolkata (+5:30) and Asia/Kathmandu (+5:45)
included, across DST changes too.

A roll-up is a sum, so windows can be added in any order (a spool resent after an outage
arrives late). What depends on the order is kept with the key that orders it (window start
+ message id): the first window's clock, the first appearance of each line, each zone's
latest kind. Each window start is kept with how many windows had it (`slots`), so a
quarter-hour observed twice (a device's clock set back) shows as such (`repeated`). A
heatmap whose grid changes within a quarter-hour is not summed across grids:
such a quarter-hour is read from its windows in order (see aggregate.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson

from appliance.hq.behaviour import GROUP_SIZES, JOURNEY_COUNTS, add_count, heatmap_cells

QUARTER_MINUTES = 15


def quarter(window_start: str) -> str:
    """The UTC quarter-hour a window start (the schema's text) falls in: YYYY-MM-DDTHH:MM."""
    return f"{window_start[:14]}{int(window_start[14:16]) // 15 * 15:02d}"


def quarter_end(start: str) -> str:
    """A text above every window start in the quarter-hour `start` and below the next
    quarter-hour's ("...T10:60" after "...T10:45": only compared as text)."""
    return f"{start[:14]}{int(start[14:16]) + QUARTER_MINUTES:02d}"


@dataclass
class Rollup:
    """One camera's windows in one UTC quarter-hour (stored as JSON, these field names)."""

    windows: int = 0
    partial: int = 0
    length_ms: int = 0  # the windows' lengths (whole milliseconds: exact sums)
    observed: float = 0.0
    first: list = field(default_factory=list)  # [window start + message id, clock]: earliest
    first_start: str = ""
    last_start: str = ""
    last_end: str = ""
    # line -> [in, out, suppressed in, suppressed out, key of the first window with it]
    lines: dict[str, list] = field(default_factory=dict)
    age_bands: dict[str, list[int]] = field(default_factory=dict)  # band -> [sum, suppressed]
    gender: dict[str, list[int]] = field(default_factory=dict)
    # shopper.counts/2 sections (see behaviour.py for how each is pooled)
    behaviour_windows: int = 0
    zones: dict[str, dict] = field(default_factory=dict)
    journeys: dict[str, int] = field(default_factory=dict)
    journeys_suppressed: int = 0
    without_checkout: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # Share fields
    sizes: dict[str, int] = field(default_factory=dict)
    accompanied: int = 0
    groups_suppressed: int = 0
    accompanied_share: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    # "COLSxROWS" -> {"windows", "sums" (None: blanked in every window), "blanked"}
    heatmaps: dict[str, dict] = field(default_factory=dict)
    heatmap_skipped: int = 0  # malformed grids (the subscriber refuses them)
    # window start in the quarter-hour ("MM:SS.sssZ") -> [windows, whole windows], of the
    # windows that observed anything
    slots: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | bytes) -> Rollup:
        return cls(**orjson.loads(text)) if text else cls()

    def to_json(self) -> str:
        return orjson.dumps(self).decode()

    @property
    def repeated(self) -> int:
        """Windows that observed a time another window of the camera also observed: more
        than one window with frames with the same start, one of them whole. People really passed in
        each (a device's clock set back repeats the hour with new windows), so both are
        summed and the time shown as observed twice. Partial windows alone with one start
        are a restart inside a window (each saw part of it), not a repeat."""
        return sum(n - 1 for n, whole in self.slots.values() if n > 1 and whole)

    def add(self, d: dict) -> None:
        """Adds a stored window document (any order)."""
        key = d["window_start"] + d["message_id"]
        self.windows += 1
        self.partial += bool(d["partial"])
        self.length_ms += round((_time(d["window_end"]) - _time(d["window_start"]))
                                .total_seconds() * 1000)
        self.observed += d["observed_seconds"]
        if not self.first or key < self.first[0]:
            self.first = [key, d["clock"]]
        self.first_start = min(self.first_start or d["window_start"], d["window_start"])
        self.last_start = max(self.last_start, d["window_start"])
        self.last_end = max(self.last_end, d["window_end"])
        if d["observed_seconds"]:  # a window without frames observed nothing
            slot = self.slots.setdefault(d["window_start"][14:], [0, 0])
            slot[0] += 1
            slot[1] += not d["partial"]
        for name, counts in d["lines"].items():
            line = self.lines.get(name)
            if line is None:
                line = self.lines[name] = [0, 0, 0, 0, key]
            line[0], missing_in = add_count(line[0], counts["in"])
            line[1], missing_out = add_count(line[1], counts["out"])
            line[2] += missing_in
            line[3] += missing_out
            line[4] = min(line[4], key)
        for section in ("age_bands", "gender"):
            totals = getattr(self, section)
            for name, n in (d.get(section) or {}).items():
                total = totals.setdefault(name, [0, 0])
                total[0], missing = add_count(total[0], n)
                total[1] += missing
        zones, journeys = d.get("zones") or {}, d.get("journeys") or {}
        groups, heatmap = d.get("groups") or {}, d.get("heatmap") or {}
        if not (zones or journeys or groups or heatmap):
            return
        self.behaviour_windows += 1
        for name, z in zones.items():
            self._add_zone(name, z, d["observed_seconds"], key)
        if journeys:
            for name in JOURNEY_COUNTS:
                self.journeys[name], missing = add_count(self.journeys.get(name, 0), journeys[name])
                self.journeys_suppressed += missing
            _share(self.without_checkout, journeys["interacted_without_checkout"],
                   journeys["interacted"])
        if groups:
            sizes, accompanied = groups["sizes"], groups["accompanied"]
            for size in GROUP_SIZES:
                self.sizes[size], missing = add_count(self.sizes.get(size, 0), sizes[size])
                self.groups_suppressed += missing
            self.accompanied, missing = add_count(self.accompanied, accompanied)
            self.groups_suppressed += missing
            alone = sizes["1"]  # people in groups: those alone and those accompanied
            _share(self.accompanied_share, accompanied,
                   None if alone is None or accompanied is None else alone + accompanied)
        if heatmap:
            self._add_heatmap(heatmap)

    def _add_zone(self, name: str, z: dict, observed: float, key: str) -> None:
        zone = self.zones.get(name)
        if zone is None:
            zone = self.zones[name] = {
                "kind": z["kind"], "key": key, "windows": 0, "visits": 0, "interactions": None,
                "suppressed": {"visits": 0, "interactions": 0, "dwell_bins": 0},
                "histogram": {}, "occupancy_seconds": 0.0, "occupancy_observed": 0.0,
                "occupancy_max": None}
        if key >= zone["key"]:  # the latest window's kind, should the configuration change
            zone["kind"], zone["key"] = z["kind"], key
        zone["windows"] += 1
        zone["visits"], missing = add_count(zone["visits"], z["visits"])
        zone["suppressed"]["visits"] += missing
        if "interactions" in z:
            zone["interactions"], missing = add_count(zone["interactions"] or 0, z["interactions"])
            zone["suppressed"]["interactions"] += missing
        histogram = zone["histogram"]
        for label, n in z["dwell"]["histogram"].items():
            histogram[label], missing = add_count(histogram.get(label, 0), n)
            zone["suppressed"]["dwell_bins"] += missing
        if z["occupancy_mean"] is not None:
            zone["occupancy_seconds"] += z["occupancy_mean"] * observed
            zone["occupancy_observed"] += observed
        if z["occupancy_max"] is not None:
            zone["occupancy_max"] = max(zone["occupancy_max"] or 0, z["occupancy_max"])

    def _add_heatmap(self, heatmap: dict) -> None:
        try:
            cells = heatmap_cells(heatmap)
        except ValueError:
            self.heatmap_skipped += 1
            return
        cols, rows = heatmap["cols"], heatmap["rows"]
        grid = self.heatmaps.get(f"{cols}x{rows}")
        if grid is None:
            grid = self.heatmaps[f"{cols}x{rows}"] = {
                "windows": 0, "sums": [[None] * cols for _ in range(rows)],
                "blanked": [[0] * cols for _ in range(rows)]}
        grid["windows"] += 1
        # the grid checked above: every row of the same length
        grid["sums"] = [[s if v is None else (s or 0) + v for s, v in zip(sums, row, strict=True)]
                        for sums, row in zip(grid["sums"], cells, strict=True)]
        grid["blanked"] = [[b + (v is None) for b, v in zip(blanked, row, strict=True)]
                           for blanked, row in zip(grid["blanked"], cells, strict=True)]


def _share(share: list[int], part: int | None, whole: int | None) -> None:
    share[2] += 1
    if part is None or whole is None:
        share[3] += 1
    else:
        share[0] += part
        share[1] += whole


def _time(text: str) -> datetime:
    # Python 3.10's fromisoformat takes no "Z" (the device's wheel runs on 3.10: JetPack 6).
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# The columns of `store_quarters` and `store_days` after (store_id, quarter/day), in order.
STORE_COLUMNS = ("first_start", "last_start", "last_end", "windows", "partial", "length_ms",
                 "observed", "entered", "exited", "suppressed")


@dataclass
class StoreSums:
    """A store's windows (all its cameras) in a UTC quarter-hour or day (tables
    `store_quarters`, `store_days`), or over a period (the chain report, chain.py), as plain
    numbers the database sums: footfall and coverage only, so a chain's month is 60,000
    short rows, not 46 million JSON roll-ups. The same figures as a camera report's, added
    up over the store's cameras."""

    first_start: str = ""
    last_start: str = ""
    last_end: str = ""
    windows: int = 0
    partial: int = 0
    length_ms: int = 0
    observed: float = 0.0
    entered: int = 0  # Σ in over the lines (footfall); a null adds nothing
    exited: int = 0
    suppressed: int = 0  # line counts published as null: entered/exited are lower bounds

    def add(self, d: dict) -> None:
        self.first_start = min(self.first_start or d["window_start"], d["window_start"])
        self.last_start = max(self.last_start, d["window_start"])
        self.last_end = max(self.last_end, d["window_end"])
        self.windows += 1
        self.partial += bool(d["partial"])
        self.length_ms += round((_time(d["window_end"]) - _time(d["window_start"]))
                                .total_seconds() * 1000)
        self.observed += d["observed_seconds"]
        for counts in d["lines"].values():
            self.entered += counts["in"] or 0
            self.exited += counts["out"] or 0
            self.suppressed += (counts["in"] is None) + (counts["out"] is None)

    def merge(self, other: StoreSums) -> None:
        """Adds another part's sums (a quarter-hour to its day, a store to the chain)."""
        self.first_start = min(self.first_start or other.first_start, other.first_start)
        self.last_start = max(self.last_start, other.last_start)
        self.last_end = max(self.last_end, other.last_end)
        for name in STORE_COLUMNS[3:]:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def row(self) -> tuple:
        return tuple(getattr(self, name) for name in STORE_COLUMNS)
