"""Report values per store and camera, summed by the database: footfall by hour and
coverage, age profile; behaviour pooled from streamed sections (rendering: render.py,
charts: charts.py).

A suppressed count (null: below the device's small-count threshold) adds nothing and is
counted in `suppressed_counts`, so totals are then lower bounds.
A window counts in the hour its start falls in (windows are aligned to multiples of their
length, so with a length that divides an hour none straddles two). Footfall is the sum of
`in` over a camera's lines; a camera whose lines are all doors gives visitors. Coverage is
the share of the stored windows' time that frames were processed for: a camera that was
down shows low coverage rather than a quiet shop.
Age bands and gender (optional in a document) are visitors whose track ended in the
window; a store's age profile sums its cameras over the windows selected (--since/--until).
Shopper behaviour (zones, journeys, groups, heatmap: `shopper.counts/2` windows) is pooled
per camera and, for shares and shelves, per store over the same windows; see behaviour.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from appliance.hq.behaviour import Behaviour, StoreBehaviour
from appliance.hq.store import StoredWindow, WindowStore, window_filter


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
    health: dict | None = None  # the latest shopper.health/1 document (+ received_at)
    lines: dict[str, list[int]] = field(default_factory=dict)  # line -> [in, out]
    suppressed: int = 0  # counts published as null (small-count protection)
    # hour -> line -> [in, out]
    hours: dict[str, dict[str, list[int]]] = field(default_factory=dict)
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


# A window counts in the hour its start falls in, in the report's time zone. The database
# groups by UTC quarter-hour: every time zone's offset is a multiple of 15 minutes today,
# so a quarter-hour lies in one local hour, also across a DST change (a UTC hour does not
# where the offset has a half hour, e.g. Asia/Kolkata). Times are the schema's
# "YYYY-MM-DDTHH:MM:SS[.ffffff]Z", so the bucket is read off the text.
BUCKET = "substr(w.window_start, 1, 13), CAST(substr(w.window_start, 15, 2) AS INTEGER) / 15"

# Each window's length in whole milliseconds (exact sums: the lengths are whole ms).
LENGTH_MS = {
    False: "CAST(ROUND((julianday(w.window_end) - julianday(w.window_start)) * 86400000) "
           "AS INTEGER)",
    True: "ROUND(EXTRACT(EPOCH FROM (CAST(w.window_end AS timestamptz) - "
          "CAST(w.window_start AS timestamptz))) * 1000)",
}

WINDOWS_SQL = """SELECT w.store_id, w.camera_id, {bucket}, COUNT(*),
    SUM(CASE WHEN w.partial THEN 1 ELSE 0 END), SUM({length}),
    SUM(CAST(w.observed_seconds AS double precision)),
    MIN(w.window_start), MAX(w.window_end)
    FROM windows w {where} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""

# Ordered so that lines come in the order they first appear (in a camera, in an hour), as
# when windows were read in (window_start, message_id) order.
LINES_SQL = """SELECT w.store_id, w.camera_id, {bucket}, l.line, SUM(l.entered), SUM(l.exited),
    SUM(CASE WHEN l.entered IS NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN l.exited IS NULL THEN 1 ELSE 0 END), MIN(w.window_start || w.message_id)
    FROM windows w JOIN line_counts l ON l.message_id = w.message_id {where}
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 10, 5"""

# Counts of a JSON object in the document ({name: count or null}), summed per camera: the
# entries (key, count, whether null) of `age_bands` or `gender`.
SECTION_SQL = {
    False: """SELECT w.store_id, w.camera_id, e.key, SUM(e.value),
        SUM(CASE WHEN e.type = 'null' THEN 1 ELSE 0 END)
        FROM windows w, json_each(w.document, '$.{section}') e {where}
        GROUP BY 1, 2, 3""",
    True: """SELECT w.store_id, w.camera_id, e.key, SUM(CAST(e.value #>> '{{}}' AS bigint)),
        SUM(CASE WHEN e.value = 'null'::jsonb THEN 1 ELSE 0 END)
        FROM windows w CROSS JOIN LATERAL jsonb_each(CAST(w.document AS jsonb) -> '{section}') e
        {where} GROUP BY 1, 2, 3""",
}

FIRST_CLOCK_SQL = """SELECT w.clock FROM windows w {where} AND w.store_id = ? AND w.camera_id = ?
    ORDER BY w.window_start, w.message_id LIMIT 1"""

# Behaviour sections are pooled in Python (histograms with overlapping bins, the latest
# heatmap grid...): streamed in time order, one window at a time.
BEHAVIOUR_SECTIONS = ("zones", "journeys", "groups", "heatmap")
SECTION_TEXT = {False: "json_extract(w.document, '$.{0}')",
                True: "j.doc ->> '{0}'"}
# PostgreSQL parses each document into jsonb once (OFFSET 0 keeps the planner from
# substituting the cast into each of the eight uses: a store's day took 4.3 s, 2.6 of them
# waiting on the database).
DOCUMENT_JSON = {False: "", True: "CROSS JOIN LATERAL (SELECT CAST(w.document AS jsonb) AS doc "
                 "OFFSET 0) j"}
BEHAVIOUR_SQL = """SELECT w.store_id, w.camera_id, w.observed_seconds, {sections}
    FROM windows w {document} {where} {has_sections}
    ORDER BY w.store_id, w.camera_id, w.window_start, w.message_id"""


def build_reports(store: WindowStore, zone: tzinfo, store_id: str | None = None,
                  camera_id: str | None = None, since: str | None = None,
                  until: str | None = None) -> list[CameraReport]:
    """Per camera, the windows that start in [since, until): summed by the database, so
    memory grows with cameras x hours, not with windows."""
    pg = store.postgres
    condition, params = window_filter(store_id, camera_id, since, until)
    where = "WHERE " + (condition or "TRUE")
    reports: dict[tuple[str, str], CameraReport] = {}
    hours = {}  # (UTC hour, quarter) -> local hour
    for s, c, hour, quarter, n, partial, length_ms, observed, first, last in store.query(
            WINDOWS_SQL.format(bucket=BUCKET, length=LENGTH_MS[pg], where=where), params):
        report = reports.get((s, c))
        if report is None:
            report = reports[s, c] = CameraReport(s, c)
        report.windows += n
        report.partial_windows += partial
        report.window_seconds += int(length_ms) / 1000
        report.observed_seconds += observed
        report.first = min(report.first or first, first)
        report.last = max(report.last or last, last)
        if (hour, quarter) not in hours:
            hours[hour, quarter] = _local_hour(hour, quarter, zone)
        report.hours.setdefault(hours[hour, quarter], {})
    for s, c, hour, quarter, line, entered, exited, no_in, no_out, _first in store.query(
            LINES_SQL.format(bucket=BUCKET, where=where), params):
        report = reports[s, c]
        # A suppressed count (None) is below the device's threshold: unknown, not 0.
        report.suppressed += no_in + no_out
        for totals in (report.lines.setdefault(line, [0, 0]),
                       report.hours[hours[hour, quarter]].setdefault(line, [0, 0])):
            totals[0] += int(entered or 0)
            totals[1] += int(exited or 0)
    for section in ("age_bands", "gender"):
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for s, c, name, total, nulls in store.query(
                SECTION_SQL[pg].format(section=section, where=where), params):
            counts.setdefault((s, c), {})[name] = int(total or 0)
            reports[s, c].age.suppressed += nulls
            reports[s, c].suppressed += nulls
        for key, named in counts.items():
            reports[key].age.add(*((named, {}) if section == "age_bands" else ({}, named)))
    for (s, c), report in reports.items():
        report.clock, = store.query(FIRST_CLOCK_SQL.format(where=where), [*params, s, c])[0]
        report.hours = dict(sorted(report.hours.items()))
    for (s, c), (status, _at) in store.statuses().items():
        if (s, c) in reports:
            reports[s, c].status = status
    for key, health in store.health().items():
        if key in reports:
            reports[key].health = health
    has_sections = " AND (" + " OR ".join(
        f"{SECTION_TEXT[pg].format(name)} IS NOT NULL" for name in BEHAVIOUR_SECTIONS) + ")"
    for s, c, observed, *sections in store.stream(BEHAVIOUR_SQL.format(
            sections=", ".join(SECTION_TEXT[pg].format(name) for name in BEHAVIOUR_SECTIONS),
            document=DOCUMENT_JSON[pg], where=where, has_sections=has_sections), params):
        zones, journeys, groups, heatmap = (json.loads(text) if text else {}
                                            for text in sections)
        reports[s, c].behaviour.add(StoredWindow(
            s, c, "", "", "", float(observed), False, {}, zones=zones, journeys=journeys,
            groups=groups, heatmap=heatmap))
    return [reports[key] for key in sorted(reports)]


def _local_hour(utc_hour: str, quarter: int, zone: tzinfo) -> str:
    start = datetime.fromisoformat(utc_hour + ":00+00:00") + timedelta(minutes=15 * quarter)
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

