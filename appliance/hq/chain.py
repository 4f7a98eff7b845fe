"""The chain report (`shopper-hq report --chain`): footfall and coverage per store and for
the whole chain over a period, summed by the database from the per-store quarter-hours
kept at ingest (`store_quarters`, rollup.StoreSums), so a month of 2,000 stores is one
GROUP BY over some six million short rows, streamed, not a fold of 46 million camera
roll-ups in Python (aggregate.py; that would take about an hour of CPU).

The figures are those of the camera reports added up over each store's cameras (so a person
seen by two cameras counts twice: compare shares between stores, not totals): windows,
partial windows, coverage, footfall in and out (Σ over the lines), and the line counts
published as null (then in/out are lower bounds). A quarter-hour the period cuts (since or
until inside it) is summed from its windows, as the camera reports do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from appliance.hq.aggregate import QUARTER_TEXT
from appliance.hq.rollup import STORE_COLUMNS, StoreSums, quarter, quarter_end
from appliance.hq.store import WindowStore, window_filter


@dataclass
class StoreTotals:
    store_id: str
    cameras: int = 0  # cameras that ever sent a window
    figures: StoreSums = field(default_factory=StoreSums)

    def as_dict(self) -> dict:
        f = self.figures
        return {"store_id": self.store_id, "cameras": self.cameras, "windows": f.windows,
                "partial_windows": f.partial, "first_window": f.first_start or None,
                "last_window": f.last_end or None,
                "observed_seconds": round(f.observed, 3),
                "observed_hours": round(f.observed / 3600, 3),
                "coverage": round(f.observed * 1000 / f.length_ms, 4) if f.length_ms else 0.0,
                "in": f.entered, "out": f.exited, "suppressed_line_counts": f.suppressed,
                "lower_bound": f.suppressed > 0}


# The store days inside the period and the whole store quarter-hours of its first and last
# day, summed per store by the database.
SUMS = ", ".join(["MIN(p.first_start)", "MAX(p.last_start)", "MAX(p.last_end)",
                  *(f"SUM(p.{c})" for c in STORE_COLUMNS[3:])])
SUMS_SQL = (f"SELECT p.store_id, {SUMS} FROM (SELECT d.* FROM store_days d WHERE {{days}} "
            "UNION ALL SELECT q.* FROM store_quarters q WHERE {edges} AND {overlap} AND {whole}"
            ") p GROUP BY p.store_id ORDER BY 1")
CUT_SQL = ("SELECT q.quarter, q.store_id FROM store_quarters q WHERE {edges} AND {overlap} "
           "AND NOT ({whole}) ORDER BY 1, 2")
DAY_TEXT = re.compile(r"\d{4}-\d\d-\d\d")
DOCUMENTS_SQL = "SELECT w.store_id, w.document FROM windows w WHERE {where} ORDER BY 1"


def chain_report(store: WindowStore, store_id: str | None = None, since: str | None = None,
                 until: str | None = None) -> dict:
    """{"stores": [per store], "chain": the stores added up} over the windows that start in
    [since, until). Memory: one row per store."""
    totals: dict[str, StoreTotals] = {}
    for s, figures in _store_figures(store, store_id, since, until):
        totals.setdefault(s, StoreTotals(s)).figures.merge(figures)
    for s, n in store.camera_counts().items():
        if s in totals:
            totals[s].cameras = n
    chain = StoreTotals("chain")
    for t in totals.values():
        chain.figures.merge(t.figures)
        chain.cameras += t.cameras
    stores = [totals[s].as_dict() for s in sorted(totals)]
    summary = chain.as_dict()
    del summary["store_id"]
    return {"query": {"store": store_id, "since": since, "until": until},
            "stores": stores, "chain": {"stores": len(stores), **summary}}


def _store_figures(store: WindowStore, store_id: str | None, since: str | None,
                   until: str | None) -> Iterator[tuple[str, StoreSums]]:
    """(store, figures) parts that add up to each store's figures over the period."""
    where, params = window_filter(store_id, None, since, until)
    if not store.has_store_sums:  # an older HQ's database opened read-only: its windows
        yield from _from_windows(store, where or "TRUE", params, None)
        return
    overlap, overlap_params = [], []
    # the quarter-hour index finds the period (see aggregate._rollup_filter)
    lowest = quarter(since) if since and QUARTER_TEXT.fullmatch(since[:16]) else None
    for condition, value in (("q.store_id = ?", store_id), ("q.quarter >= ?", lowest),
                             ("q.quarter < ?", until), ("q.last_start >= ?", since),
                             ("q.first_start < ?", until)):
        if value is not None:
            overlap.append(condition)
            overlap_params.append(value)
    overlap_sql = " AND ".join(overlap) or "TRUE"
    whole = " AND ".join([*(["q.first_start >= ?"] if since else []),
                          *(["q.last_start < ?"] if until else [])]) or "TRUE"
    whole_params = [*([since] if since else []), *([until] if until else [])]
    # A day after since's and before until's holds only windows of the period (their text
    # starts with the day): read whole. The days of since and until: their quarter-hours.
    ends = [bound[:10] for bound in (since, until) if bound]
    if all(DAY_TEXT.fullmatch(day) for day in ends):
        days = " AND ".join(condition for condition, value in (
            ("d.store_id = ?", store_id), ("d.day > ?", since), ("d.day < ?", until))
            if value is not None) or "TRUE"
        days_params = [v for v in (store_id, since and since[:10], until and until[:10]) if v]
        edges = "(" + " OR ".join(["(q.quarter >= ? AND q.quarter < ?)"] * len(ends)) + ")" \
            if ends else "FALSE"
        edges_params = [v for day in ends for v in (day, day + "U")]  # "U": after "T.."
    else:  # not a date: every quarter-hour
        days, days_params, edges, edges_params = "FALSE", [], "TRUE", []
    for row in store.stream(SUMS_SQL.format(days=days, edges=edges, overlap=overlap_sql,
                                            whole=whole),
                            days_params + edges_params + overlap_params + whole_params):
        # SUM of a BIGINT is a NUMERIC (a Decimal) in PostgreSQL
        yield row[0], StoreSums(*row[1:4], *(int(v) for v in row[4:7]), float(row[7]),
                                   *(int(v) for v in row[8:]))
    cut: dict[str, set[str]] = {}
    for start, s in store.query(CUT_SQL.format(edges=edges, overlap=overlap_sql, whole=whole),
                                edges_params + overlap_params + whole_params):
        cut.setdefault(start, set()).add(s)
    for start, stores in cut.items():  # the period's edges: at most two quarter-hours
        yield from _from_windows(store, " AND ".join(
            [*filter(None, [where]), "w.window_start >= ?", "w.window_start < ?"]),
            [*params, start, quarter_end(start)], stores)


def _from_windows(store: WindowStore, where: str, params: list,
                  stores: set[str] | None) -> Iterator[tuple[str, StoreSums]]:
    """The selected windows summed per store (streamed), of `stores` only if given."""
    current, figures = None, None
    for s, text in store.stream(DOCUMENTS_SQL.format(where=where), params):
        if stores is not None and s not in stores:
            continue
        if s != current:
            if figures is not None:
                yield current, figures
            current, figures = s, StoreSums()
        figures.add(json.loads(text))
    if figures is not None:
        yield current, figures


def format_chain(report: dict) -> str:
    """One line per store and the chain's total; `≥`: a total with suppressed counts."""
    if not report["stores"]:
        return "no windows stored in this period"
    out = [f"{'store':<16} {'cameras':>7} {'windows':>9} {'coverage':>8} {'in':>11} "
           f"{'out':>11} {'suppressed':>10}  first .. last window"]
    chain = {"store_id": f"chain ({report['chain']['stores']} stores)", **report["chain"]}
    for row in [*report["stores"], chain]:
        bound = "≥" if row["lower_bound"] else ""
        out.append(f"{row['store_id']:<16} {row['cameras']:>7} {row['windows']:>9} "
                   f"{row['coverage']:>8.1%} {bound + str(row['in']):>11} "
                   f"{bound + str(row['out']):>11} {row['suppressed_line_counts']:>10}  "
                   f"{row['first_window']} .. {row['last_window']}")
    out.append("in/out: footfall summed over each store's cameras and lines (a person seen "
               "by two cameras counts twice); ≥: some counts were suppressed on the device, "
               "so these are lower bounds")
    return "\n".join(out)
