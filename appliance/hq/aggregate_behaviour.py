"""Each camera's behaviour figures (behaviour.py) summed by the database: zones (visits,
interactions, dwell histogram bins, time-weighted occupancy), journeys, groups and the two
shares, with the nulls counted as suppressed. Only the heatmap is pooled in Python, one
window at a time in time order (its cells are text, and the latest grid wins), so memory
stays one grid per camera.
"""

from __future__ import annotations

import json

from appliance.hq.behaviour import GROUP_SIZES, JOURNEY_COUNTS, Behaviour, Share, Zone
from appliance.hq.sql import JsonSql
from appliance.hq.store import WindowStore

SECTIONS = ("zones", "journeys", "groups", "heatmap")


def _sum(expression: str) -> str:
    return f"SUM({expression})"


def _nulls(expression: str) -> str:
    return f"SUM(CASE WHEN {expression} IS NULL THEN 1 ELSE 0 END)"


def _share(part: str, whole: str) -> str:
    """windows, left out, part, whole: pooled where both were published."""
    both = f"{part} IS NOT NULL AND {whole} IS NOT NULL"
    return (f"COUNT(*), SUM(CASE WHEN {both} THEN 0 ELSE 1 END), "
            f"SUM(CASE WHEN {both} THEN {part} END), SUM(CASE WHEN {both} THEN {whole} END)")


def _int(value) -> int:
    return int(value or 0)


def behaviours(store: WindowStore, where: str, params: list) -> dict[tuple[str, str],
                                                                      Behaviour]:
    """Behaviour per (store, camera) that sent any section, over the windows `where`."""
    j = JsonSql(store.postgres)
    doc = j.document
    observed = "CAST(w.observed_seconds AS double precision)"
    found: dict[tuple[str, str], Behaviour] = {}
    any_section = " OR ".join(j.filled(doc, name) for name in SECTIONS)
    for s, c, n in store.query(f"SELECT w.store_id, w.camera_id, COUNT(*) FROM windows w "
                               f"{where} AND ({any_section}) GROUP BY 1, 2", params):
        found[s, c] = Behaviour(windows=n)

    zone = "z.value"
    visits, interactions = j.number(zone, "visits"), j.number(zone, "interactions")
    mean = j.number(zone, "occupancy_mean", "double precision")
    has_interactions = j.present(zone, "interactions")
    for s, c, name, n, visited, no_visits, reported, interacted, no_interactions, \
            occupied, with_mean, most in store.query(
                f"SELECT w.store_id, w.camera_id, z.key, COUNT(*), {_sum(visits)}, "
                f"{_nulls(visits)}, MAX(CASE WHEN {has_interactions} THEN 1 ELSE 0 END), "
                f"{_sum(interactions)}, "
                f"SUM(CASE WHEN {has_interactions} AND {interactions} IS NULL THEN 1 ELSE 0 "
                f"END), SUM({mean} * {observed}), "
                f"SUM(CASE WHEN {mean} IS NOT NULL THEN {observed} END), "
                f"MAX({j.number(zone, 'occupancy_max')}) "
                f"FROM windows w {j.each(doc, 'zones', 'z')} {where} GROUP BY 1, 2, 3",
                params):
        found[s, c].zones[name] = Zone(
            "", windows=n, visits=_int(visited),
            interactions=_int(interacted) if reported else None,
            suppressed={"visits": no_visits, "interactions": no_interactions,
                        "dwell_bins": 0},
            occupancy_seconds=float(occupied or 0.0), occupancy_observed=float(with_mean or 0),
            occupancy_max=None if most is None else int(most))
    # A zone's kind is the one of its latest window, should the configuration change.
    for s, c, name, kind in store.query(
            f"SELECT store_id, camera_id, zone, kind FROM (SELECT w.store_id, w.camera_id, "
            f"z.key AS zone, {j.text(zone, 'kind')} AS kind, ROW_NUMBER() OVER (PARTITION BY "
            f"w.store_id, w.camera_id, z.key ORDER BY w.window_start DESC, w.message_id DESC) "
            f"AS latest FROM windows w {j.each(doc, 'zones', 'z')} {where}) kinds "
            f"WHERE latest = 1", params):
        found[s, c].zones[name].kind = kind
    bins = j.entry_number("h")
    for s, c, name, label, n, nulls in store.query(
            f"SELECT w.store_id, w.camera_id, z.key, h.key, {_sum(bins)}, {_nulls(bins)} "
            f"FROM windows w {j.each(doc, 'zones', 'z')} "
            f"{j.each(zone, 'dwell.histogram', 'h')} {where} GROUP BY 1, 2, 3, 4", params):
        z = found[s, c].zones[name]
        z.histogram[label] = _int(n)
        z.suppressed["dwell_bins"] += nulls

    counts = [j.number(doc, f"journeys.{name}") for name in JOURNEY_COUNTS]
    for s, c, *row in store.query(
            "SELECT w.store_id, w.camera_id, "
            + ", ".join(f"{_sum(count)}, {_nulls(count)}" for count in counts) + ", "
            + _share(j.number(doc, "journeys.interacted_without_checkout"),
                     j.number(doc, "journeys.interacted"))
            + f" FROM windows w {where} AND {j.filled(doc, 'journeys')} GROUP BY 1, 2", params):
        b = found[s, c]
        b.journeys = {name: _int(row[2 * i]) for i, name in enumerate(JOURNEY_COUNTS)}
        b.journeys_suppressed = sum(row[1:2 * len(counts):2])
        b.without_checkout = _share_of(row[2 * len(counts):])

    sizes = [j.number(doc, f"groups.sizes.{size}") for size in GROUP_SIZES]
    accompanied = j.number(doc, "groups.accompanied")
    for s, c, *row in store.query(
            "SELECT w.store_id, w.camera_id, "
            + ", ".join(f"{_sum(count)}, {_nulls(count)}" for count in (*sizes, accompanied))
            + ", " + _share(accompanied, f"{sizes[0]} + {accompanied}")
            + f" FROM windows w {where} AND {j.filled(doc, 'groups')} GROUP BY 1, 2", params):
        b = found[s, c]
        b.sizes = {size: _int(row[2 * i]) for i, size in enumerate(GROUP_SIZES)}
        b.accompanied = _int(row[2 * len(sizes)])
        b.groups_suppressed = sum(row[1:2 * len(sizes) + 2:2])
        # People in groups: those alone (groups of 1) and those accompanied.
        b.accompanied_share = _share_of(row[2 * len(sizes) + 2:])

    for s, c, heatmap in store.stream(
            f"SELECT w.store_id, w.camera_id, {j.text(doc, 'heatmap')} FROM windows w {where} "
            f"AND {j.filled(doc, 'heatmap')} "
            "ORDER BY w.store_id, w.camera_id, w.window_start, w.message_id", params):
        found[s, c].add_heatmap(json.loads(heatmap))
    return found


def _share_of(row) -> Share:
    windows, left_out, part, whole = row
    return Share(part=_int(part), whole=_int(whole), windows=windows, left_out=left_out)
