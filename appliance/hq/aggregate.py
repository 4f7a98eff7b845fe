"""Report values per store and camera, folded from the quarter-hour roll-ups kept at ingest
(rollup.py): footfall by hour and coverage, age profile, behaviour (rendering: render.py,
charts: charts.py).

A suppressed count (null: below the device's small-count threshold) adds nothing and is
counted in `suppressed_counts`, so totals are then lower bounds.
A window counts in the hour its start falls in (windows are aligned to multiples of their
length, so with a length that divides an hour none straddles two). Footfall is the sum of
`in` over a camera's lines; a camera whose lines are all doors gives visitors. Coverage is
the share of the stored windows' time that frames were processed for: a camera that was
down shows low coverage rather than a quiet shop. A time observed twice (a device's clock
set back an hour repeats that hour with new windows: `repeated_windows`, per hour in
`observed_twice`) is summed, for people really passed in both, and shown as such.
Age bands and gender (optional in a document) are visitors whose track ended in the
window; a store's age profile sums its cameras over the windows selected (--since/--until).
Shopper behaviour (zones, journeys, groups, heatmap: `shopper.counts/2` windows) is pooled
per camera and, for shares and shelves, per store over the same windows; see behaviour.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from appliance.hq.behaviour import Behaviour, StoreBehaviour
from appliance.hq.rollup import Rollup, quarter, quarter_end
from appliance.hq.store import WindowStore, window_filter


@dataclass
class AgeProfile:
    """Visitors by estimated age band, in age order with "unknown" last, and by gender
    where the device estimates it."""

    bands: dict[str, int] = field(default_factory=dict)
    gender: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0

    def add(self, bands: dict[str, int | None], gender: dict[str, int | None]) -> int:
        """Adds counts in; returns how many were suppressed (None adds nothing, like lines)."""
        suppressed = sum(n is None for n in (*bands.values(), *gender.values()))
        for totals, counts in ((self.bands, bands), (self.gender, gender)):
            for name, n in counts.items():
                totals[name] = totals.get(name, 0) + (n or 0)
        # Band names are configurable on the device, so order by the band's lower age.
        self.bands = dict(sorted(self.bands.items(), key=lambda item: _band_order(item[0])))
        self.gender = dict(sorted(self.gender.items(), key=lambda item: _band_order(item[0])))
        self.suppressed += suppressed
        return suppressed

    def shares(self) -> dict[str, float]:
        """Each band's share of the visitors of known age ({} when none is known)."""
        known = {band: n for band, n in self.bands.items() if band != "unknown"}
        total = sum(known.values())
        return {band: round(n / total, 4) for band, n in known.items()} if total else {}


@dataclass
class StoreProfile:
    """A store's age profile across its cameras. A visitor seen by two cameras counts
    twice, so compare shares rather than totals between stores."""

    store_id: str
    cameras: int = 0
    first: str | None = None
    last: str | None = None
    age: AgeProfile = field(default_factory=AgeProfile)


@dataclass
class CameraReport:
    store_id: str
    camera_id: str
    clock: str = "wall"
    windows: int = 0
    partial_windows: int = 0
    window_seconds: float = 0.0
    observed_seconds: float = 0.0
    first: str | None = None
    last: str | None = None
    status: str | None = None
    health: dict | None = None  # the latest shopper.health/2 or /1 document (+ received_at)
    lines: dict[str, list[int]] = field(default_factory=dict)  # line -> [in, out]
    suppressed: int = 0  # counts published as null (small-count protection)
    # hour -> line -> [in, out]
    hours: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    repeated_windows: int = 0  # windows whose time another window also observed
    observed_twice: dict[str, int] = field(default_factory=dict)  # hour -> repeated windows
    age: AgeProfile = field(default_factory=AgeProfile)
    behaviour: Behaviour = field(default_factory=Behaviour)

    @property
    def coverage(self) -> float:
        return self.observed_seconds / self.window_seconds if self.window_seconds else 0.0

    def footfall_by_hour(self) -> dict[str, int]:
        return {hour: sum(c[0] for c in lines.values()) for hour, lines in self.hours.items()}

    def footfall_by_day(self) -> dict[str, int]:
        days: dict[str, int] = {}
        for hour, people in self.footfall_by_hour().items():
            days[hour[:10]] = days.get(hour[:10], 0) + people
        return days

    def peak_hour(self) -> tuple[str, int] | None:
        hours = self.footfall_by_hour()
        return max(hours.items(), key=lambda item: item[1]) if hours else None


# A window counts in the hour its start falls in, in the report's time zone. The roll-ups
# are per UTC quarter-hour: every time zone's offset is a multiple of 15 minutes today, so a
# quarter-hour lies in one local hour, also across a DST change (a UTC hour does not where
# the offset has a half hour, e.g. Asia/Kolkata).

# The quarter-hours of the selection that cannot be read from their roll-up: the period
# starts or ends inside them, or their heatmap grid changed (summed in window order).
CUT_SQL = """SELECT r.quarter, r.store_id, r.camera_id FROM rollups r
    WHERE {overlap} AND NOT ({whole} AND r.grids <= 1) ORDER BY 1, 2, 3"""
ROLLUPS_SQL = """SELECT r.store_id, r.camera_id, r.quarter, r.summary FROM rollups r
    WHERE {overlap} ORDER BY 1, 2, 3"""
QUARTER_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
WINDOWS_SQL = """SELECT w.store_id, w.camera_id, w.document FROM windows w WHERE {where}
    ORDER BY w.store_id, w.camera_id, w.window_start, w.message_id"""


def build_reports(store: WindowStore, zone: tzinfo, store_id: str | None = None,
                  camera_id: str | None = None, since: str | None = None,
                  until: str | None = None) -> list[CameraReport]:
    """Per camera, the windows that start in [since, until): folded from the quarter-hour
    roll-ups (and the windows of the quarter-hours the period cuts), in time order, so
    memory grows with cameras x hours, not with windows."""
    reports: dict[tuple[str, str], CameraReport] = {}
    ages: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    hours: dict[str, str] = {}  # UTC quarter-hour -> local hour
    for s, c, start, rollup in quarters(store, store_id, camera_id, since, until):
        report = reports.get((s, c))
        if report is None:
            report = reports[s, c] = CameraReport(s, c, clock=rollup.first[1])
            ages[s, c] = {"age_bands": {}, "gender": {}}
        if start not in hours:
            hours[start] = _local_hour(start, zone)
        _fold(report, ages[s, c], rollup, hours[start])
    for key, report in reports.items():
        report.hours = dict(sorted(report.hours.items()))  # a DST change repeats an hour
        report.observed_twice = dict(sorted(report.observed_twice.items()))
        for section, named in ages[key].items():
            if named:
                report.age.add(*((named, {}) if section == "age_bands" else ({}, named)))
    for (s, c), (status, _at) in store.statuses(store_id).items():
        if (s, c) in reports:
            reports[s, c].status = status
    for key, health in store.health(store_id).items():
        if key in reports:
            reports[key].health = health
    return [reports[key] for key in sorted(reports)]


def quarters(store: WindowStore, store_id: str | None, camera_id: str | None,
             since: str | None, until: str | None) -> Iterator[tuple[str, str, str, Rollup]]:
    """(store, camera, UTC quarter-hour, Rollup) of the selected windows, in time order per
    camera: a quarter-hour's stored roll-up where all its windows are selected, else its
    selected windows summed here (in window order, a new Rollup where the heatmap grid
    changes). A database of an older HQ opened read-only has no roll-ups: all from windows."""
    where, params = window_filter(store_id, camera_id, since, until)
    if not store.has_rollups:
        yield from _from_windows(store.stream(WINDOWS_SQL.format(where=where or "TRUE"),
                                              params))
        return
    overlap, overlap_params = _rollup_filter(store_id, camera_id, since, until)
    whole = " AND ".join([*(["r.first_start >= ?"] if since else []),
                          *(["r.last_start < ?"] if until else [])]) or "TRUE"
    whole_params = [*([since] if since else []), *([until] if until else [])]
    cut: dict[str, set[tuple[str, str]]] = {}
    for start, s, c in store.query(CUT_SQL.format(overlap=overlap, whole=whole),
                                   overlap_params + whole_params):
        cut.setdefault(start, set()).add((s, c))
    # A few quarter-hours per camera (the period's edges): their windows fit in memory.
    from_windows: dict[tuple[str, str], list[tuple[str, str, str, Rollup]]] = {}
    for start, cameras in cut.items():
        rows = store.query(WINDOWS_SQL.format(
            where=" AND ".join([*filter(None, [where]), "w.window_start >= ?",
                                "w.window_start < ?"])),
            [*params, start, quarter_end(start)])
        for q in _from_windows(rows):
            if q[:2] in cameras:
                from_windows.setdefault(q[:2], []).append(q)
    for parts in from_windows.values():
        parts.sort(key=lambda q: q[2])  # stable: a quarter's Rollups keep their order
    camera = None
    for s, c, start, summary in store.stream(ROLLUPS_SQL.format(overlap=overlap),
                                             overlap_params):
        if (s, c) != camera:  # the database's order of names may not be Python's
            yield from from_windows.pop(camera, [])
            camera = (s, c)
        waiting = from_windows.get(camera, [])
        while waiting and waiting[0][2] < start:
            yield waiting.pop(0)
        if start not in cut or camera not in cut[start]:
            yield s, c, start, Rollup.from_json(summary)
    yield from from_windows.pop(camera, [])
    for parts in from_windows.values():  # cameras with no quarter-hour read whole
        yield from parts


def _rollup_filter(store_id: str | None, camera_id: str | None, since: str | None,
                   until: str | None) -> tuple[str, list]:
    """SQL condition on the roll-ups `r` with any window in the selection. The bounds on
    `quarter` say nothing more, but let the database find the period by its index: a window
    starting at or after `since` is in a quarter-hour at or after since's."""
    where, params = [], []
    lowest = quarter(since) if since and QUARTER_TEXT.fullmatch(since[:16]) else None
    for condition, value in (("r.store_id = ?", store_id), ("r.camera_id = ?", camera_id),
                             ("r.quarter >= ?", lowest), ("r.quarter < ?", until),
                             ("r.last_start >= ?", since), ("r.first_start < ?", until)):
        if value is not None:
            where.append(condition)
            params.append(value)
    return " AND ".join(where) or "TRUE", params


def _from_windows(rows) -> Iterator[tuple[str, str, str, Rollup]]:
    """Rollups of (store, camera, document) rows in window order, one per quarter-hour and
    heatmap grid run."""
    current, rollup = None, None
    for s, c, text in rows:
        document = json.loads(text)
        heatmap = document.get("heatmap")
        grid = f"{heatmap['cols']}x{heatmap['rows']}" if heatmap else None
        key = (s, c, quarter(document["window_start"]))
        if key != current or grid and rollup.heatmaps and grid not in rollup.heatmaps:
            if rollup is not None:
                yield (*current, rollup)
            current, rollup = key, Rollup()
        rollup.add(document)
    if rollup is not None:
        yield (*current, rollup)


def _fold(report: CameraReport, ages: dict[str, dict[str, int]], r: Rollup,
          hour: str) -> None:
    """Adds a quarter-hour (or part of one) to a camera's report, in time order."""
    report.windows += r.windows
    report.partial_windows += r.partial
    report.window_seconds += r.length_ms / 1000
    report.observed_seconds += r.observed
    report.first = min(report.first or r.first_start, r.first_start)
    report.last = max(report.last or r.last_end, r.last_end)
    per_line = report.hours.setdefault(hour, {})
    if r.repeated:
        report.repeated_windows += r.repeated
        report.observed_twice[hour] = report.observed_twice.get(hour, 0) + r.repeated
    # Lines in the order they first appear, as when windows were read in time order.
    for name, (entered, exited, no_in, no_out, _key) in sorted(
            r.lines.items(), key=lambda item: (item[1][4], item[0])):
        report.suppressed += no_in + no_out
        for totals in (report.lines.setdefault(name, [0, 0]), per_line.setdefault(name, [0, 0])):
            totals[0] += entered
            totals[1] += exited
    for section in ("age_bands", "gender"):
        for name, (total, nulls) in getattr(r, section).items():
            ages[section][name] = ages[section].get(name, 0) + total
            report.age.suppressed += nulls
            report.suppressed += nulls
    report.behaviour.add_rollup(r)


def _local_hour(utc_quarter: str, zone: tzinfo) -> str:
    start = datetime.fromisoformat(utc_quarter + ":00+00:00")
    return start.astimezone(zone).strftime("%Y-%m-%d %H:00")


def store_profiles(reports: list[CameraReport]) -> list[StoreProfile]:
    """Age profile per store, for the stores whose cameras sent any age data."""
    stores: dict[str, StoreProfile] = {}
    for r in reports:
        if not r.age.bands and not r.age.gender:
            continue
        store = stores.setdefault(r.store_id, StoreProfile(r.store_id))
        store.cameras += 1
        store.first = min(store.first or r.first, r.first)
        store.last = max(store.last or r.last, r.last)
        store.age.add(r.age.bands, r.age.gender)
        store.age.suppressed += r.age.suppressed
    return [stores[key] for key in sorted(stores)]


def store_behaviours(reports: list[CameraReport]) -> list[StoreBehaviour]:
    """Behaviour per store, for the stores whose cameras sent any behaviour figures."""
    stores: dict[str, StoreBehaviour] = {}
    for r in reports:
        if r.behaviour.windows:
            store = stores.setdefault(r.store_id, StoreBehaviour(r.store_id))
            store.first = min(store.first or r.first, r.first)
            store.last = max(store.last or r.last, r.last)
            store.add(r.camera_id, r.behaviour)
    return [stores[key] for key in sorted(stores)]


def _band_order(name: str) -> tuple[bool, int, str]:
    """Sort key: "A-B" and "A+" by A, other names by name, "unknown" last."""
    lower = name.split("-")[0].rstrip("+")
    return name == "unknown", int(lower) if lower.isdigit() else -1, name

