"""The report as text and as JSON, from the aggregated values of aggregate.py."""

from __future__ import annotations

from appliance.hq.aggregate import AgeProfile, CameraReport, store_behaviours, store_profiles
from appliance.hq.behaviour import Behaviour


def as_json(reports: list[CameraReport]) -> dict:
    """Per camera, and per store: the age profile and the behaviour (null without data)."""
    stores: dict[str, dict] = {}
    for profile in store_profiles(reports):
        stores.setdefault(profile.store_id, {"store_id": profile.store_id})["age"] = {
            "cameras": profile.cameras, "first_window": profile.first,
            "last_window": profile.last, "age_bands": profile.age.bands,
            "age_shares": profile.age.shares(), "gender": profile.age.gender,
            "suppressed_counts": profile.age.suppressed}
    for store in store_behaviours(reports):
        stores.setdefault(store.store_id, {"store_id": store.store_id})["behaviour"] = \
            store.as_dict()
    return {"cameras": [camera_json(r) for r in reports],
            "stores": [{"age": None, "behaviour": None, **stores[key]} for key in sorted(stores)]}


def camera_json(r: CameraReport) -> dict:
    return {
        "store_id": r.store_id, "camera_id": r.camera_id, "clock": r.clock,
        "status": r.status, "windows": r.windows,
        "partial_windows": r.partial_windows, "suppressed_counts": r.suppressed,
        "first_window": r.first,
        "last_window": r.last, "observed_hours": round(r.observed_seconds / 3600, 3),
        "coverage": round(r.coverage, 4),
        "repeated_windows": r.repeated_windows, "observed_twice": r.observed_twice,
        "lines": {name: {"in": c[0], "out": c[1]} for name, c in r.lines.items()},
        "footfall_by_day": r.footfall_by_day(),
        "footfall_by_hour": r.footfall_by_hour(),
        "peak_hour": r.peak_hour()[0] if r.hours else None,
        "hours": {hour: {name: {"in": c[0], "out": c[1]} for name, c in lines.items()}
                  for hour, lines in r.hours.items()},
        "age_bands": dict(r.age.bands), "age_shares": r.age.shares(),
        "gender": dict(r.age.gender),
        "behaviour": r.behaviour.as_dict() if r.behaviour.windows else None,
        "health": {key: r.health.get(key) for key in HEALTH_KEYS} if r.health else None,
    }


# The figures of a camera's last health message the report shows (capacity_fps: null
# from a health/1 device).
HEALTH_KEYS = ("time", "received_at", "fps", "fps_cap", "capacity_fps", "inference_ms",
               "spool_depth", "spool_dropped", "stream_reconnects", "uptime_seconds",
               "software_version")


def format_text(reports: list[CameraReport], zone_name: str) -> str:
    if not reports:
        return "no windows stored yet"
    out = []
    for r in reports:
        out.append(f"store {r.store_id} / camera {r.camera_id}  (status: {r.status or 'unknown'}"
                   f", clock: {r.clock})")
        out.append(f"  windows {r.windows} ({r.partial_windows} partial), "
                   f"{r.first} .. {r.last}, observed {r.observed_seconds / 3600:.2f} h, "
                   f"coverage {r.coverage:.1%}")
        if r.repeated_windows:
            out.append(f"  {r.repeated_windows} windows observed a time another window had "
                       "observed (the device's clock was set back): the hours marked 'twice' "
                       "count the people of both")
        if r.health:
            h = r.health
            out.append(f"  last health {h['time']}: {h['fps']} fps, spool {h['spool_depth']} "
                       f"windows, {h['stream_reconnects']} stream reconnects, up "
                       f"{h['uptime_seconds']} s, version {h['software_version']}")
        totals = ", ".join(f"{name} in {c[0]} out {c[1]}" for name, c in r.lines.items())
        out.append(f"  totals: {totals or 'no lines'}")
        if r.suppressed:
            out.append(f"  {r.suppressed} counts were suppressed on the device (below its "
                       "threshold): totals here are lower bounds")
        days = ", ".join(f"{day} {people}" for day, people in r.footfall_by_day().items())
        peak = r.peak_hour()
        out.append(f"  footfall by day: {days}; peak hour {peak[0]} ({peak[1]} in)")
        names = list(r.lines)
        out.append(f"  {'hour (' + zone_name + ')':<18} {'footfall':>8}  "
                   + "  ".join(f"{name + ' in/out':>16}" for name in names))
        for hour, lines in r.hours.items():
            cells = "  ".join(f"{_pair(lines.get(n, [0, 0])):>16}" for n in names)
            twice = f"  twice ({r.observed_twice[hour]} windows)" \
                if hour in r.observed_twice else ""
            out.append(f"  {hour:<18} {sum(c[0] for c in lines.values()):>8}  {cells}{twice}")
        out += _age_table(r.age)
        out += _behaviour_lines(r.behaviour)
        out.append("")
    for store in store_profiles(reports):
        cameras = f"{store.cameras} camera" + "s" * (store.cameras != 1)
        out.append(f"store {store.store_id} age profile ({cameras}), "
                   f"{store.first} .. {store.last}")
        out += _age_table(store.age)
        out.append("")
    for store in store_behaviours(reports):
        cameras = f"{store.cameras} camera" + "s" * (store.cameras != 1)
        out.append(f"store {store.store_id} behaviour ({cameras}), {store.first} .. {store.last}")
        out.append(f"  {_share(store.accompanied, 'people in groups')} accompanied")
        out.append(f"  {_share(store.without_checkout, 'who interacted')} interacted without "
                   "reaching checkout")
        if store.shelves:
            out.append("  top shelves by interactions: " + ", ".join(
                f"{camera}/{name} {_interactions(zone)}"
                for camera, name, zone in store.shelves[:10]))
        out.append("")
    return "\n".join(out).rstrip()


def _behaviour_lines(b: Behaviour) -> list[str]:
    """A camera's shopper.counts/2 behaviour figures; nothing without any."""
    if not b.windows:
        return []
    out = [f"  behaviour from {b.windows} windows; dwell and wait percentiles are of the "
           "histograms summed over them"]
    if b.zones:
        out.append(f"  {'zone':<16} {'kind':<9} {'visits':>6} {'dwell p50':>10} {'p90':>9} "
                   f"{'occ. mean':>9} {'max':>4} {'interactions':>12}")
    for name, zone in sorted(b.zones.items()):
        dwell, mean = zone.dwell(), zone.occupancy_mean
        out.append(f"  {name:<16} {zone.kind:<9} {zone.visits:>6} "
                   f"{_seconds(dwell, 'p50'):>10} {_seconds(dwell, 'p90'):>9} "
                   f"{'-' if mean is None else f'{mean:.2f}':>9} "
                   f"{_or_dash(zone.occupancy_max):>4} {_or_dash(zone.interactions):>12}")
    if b.shelves():
        out.append("  top shelves by interactions: " + ", ".join(
            f"{name} {_interactions(zone)}" for name, zone in b.shelves()[:10]))
    for name, zone in sorted(b.zones.items()):
        if zone.kind == "queue":
            dwell, mean = zone.dwell(), zone.occupancy_mean
            out.append(f"  queue {name}: wait p50 {_seconds(dwell, 'p50')}, p90 "
                       f"{_seconds(dwell, 'p90')} ({dwell['visits']} waits); length mean "
                       f"{'-' if mean is None else f'{mean:.2f}'}, max "
                       f"{_or_dash(zone.occupancy_max)}")
    if b.journeys:
        out.append("  journeys: " + ", ".join(f"{name.replace('_', ' ')} {n}"
                                              for name, n in b.journeys.items()))
        out.append(f"  {_share(b.without_checkout, 'who interacted')} interacted without "
                   "reaching checkout")
    if b.sizes:
        out.append("  groups by size: " + ", ".join(f"{size}: {n}" for size, n in b.sizes.items())
                   + f"; {_share(b.accompanied_share, 'people in groups')} accompanied")
    if b.heatmap:
        h = b.heatmap.as_dict()
        out.append(f"  heatmap {h['cols']}x{h['rows']} over {h['windows']} windows: "
                   f"{h['total_person_seconds']} person-seconds; cells blanked in every window "
                   f"{h['blanked_cells']}, in some {h['partly_blanked_cells']}"
                   + (f"; {b.heatmap_skipped} windows of an older grid left out"
                      if b.heatmap_skipped else ""))
    suppressed = {"zone": sum(sum(z.suppressed.values()) for z in b.zones.values()),
                  "journey": b.journeys_suppressed, "group": b.groups_suppressed}
    if any(suppressed.values()):
        out.append("  suppressed on the device: " + ", ".join(
            f"{n} {name} counts" for name, n in suppressed.items() if n)
            + ": sums above are lower bounds, percentiles are of the known visits")
    return out


def _age_table(age: AgeProfile) -> list[str]:
    """Visitors and share of the known per age band; nothing when there is no age data."""
    out = []
    if age.bands:
        shares = age.shares()
        out.append(f"  {'age band':<10} {'visitors':>8} {'share':>7}")
        out += [f"  {band:<10} {n:>8} {_percent(shares.get(band)):>7}"
                for band, n in age.bands.items()]
    if age.gender:
        out.append("  gender: " + ", ".join(f"{name} {n}" for name, n in age.gender.items()))
    return out


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def _share(share, whole: str) -> str:
    """"50.0% (6 of 12 people in groups[, 1 of 3 windows left out: suppressed])"."""
    left_out = f", {share.left_out} of {share.windows} windows left out: suppressed" \
        if share.left_out else ""
    return f"{_percent(share.value)} ({share.part} of {share.whole} {whole}{left_out})"


def _seconds(dwell: dict, name: str) -> str:
    """"12.5 s"; "300+ s" in the open last bin; "-" when unknown."""
    value = dwell[name]
    if value is None:
        return "-"
    return f"{value:g}+ s" if name in dwell["at_least"] else f"{value:.1f} s"


def _interactions(zone) -> str:
    n = zone.suppressed["interactions"]
    return f"{zone.interactions or 0}" + (f" ({n} suppressed)" if n else "")


def _or_dash(value) -> str:
    return "-" if value is None else str(value)


def _pair(counts: list[int]) -> str:
    return f"{counts[0]}/{counts[1]}"

