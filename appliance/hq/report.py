"""Reports from stored windows: per store and camera, footfall by hour and coverage.

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

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.hq.behaviour import Behaviour, StoreBehaviour
from appliance.hq.store import StoredWindow


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

    def as_dict(self) -> dict:
        return {
            "store_id": self.store_id, "camera_id": self.camera_id, "clock": self.clock,
            "status": self.status, "windows": self.windows,
            "partial_windows": self.partial_windows, "suppressed_counts": self.suppressed,
            "first_window": self.first,
            "last_window": self.last, "observed_hours": round(self.observed_seconds / 3600, 3),
            "coverage": round(self.coverage, 4),
            "lines": {name: {"in": c[0], "out": c[1]} for name, c in self.lines.items()},
            "footfall_by_day": self.footfall_by_day(),
            "footfall_by_hour": self.footfall_by_hour(),
            "peak_hour": self.peak_hour()[0] if self.hours else None,
            "hours": {hour: {name: {"in": c[0], "out": c[1]} for name, c in lines.items()}
                      for hour, lines in self.hours.items()},
            "age_bands": dict(self.age.bands), "age_shares": self.age.shares(),
            "gender": dict(self.age.gender),
            "behaviour": self.behaviour.as_dict() if self.behaviour.windows else None,
        }


def build_reports(windows: Iterable[StoredWindow], zone: tzinfo,
                  statuses: dict[tuple[str, str], tuple[str, str]] | None = None
                  ) -> list[CameraReport]:
    reports: dict[tuple[str, str], CameraReport] = {}
    for w in windows:
        key = (w.store_id, w.camera_id)
        report = reports.get(key)
        if report is None:
            report = reports[key] = CameraReport(w.store_id, w.camera_id, clock=w.clock)
        start, end = _parse(w.window_start), _parse(w.window_end)
        report.windows += 1
        report.partial_windows += w.partial
        report.window_seconds += (end - start).total_seconds()
        report.observed_seconds += w.observed_seconds
        report.first = min(report.first or w.window_start, w.window_start)
        report.last = max(report.last or w.window_end, w.window_end)
        hour = start.astimezone(zone).strftime("%Y-%m-%d %H:00")
        per_line = report.hours.setdefault(hour, {})
        for name, (entered, exited) in w.lines.items():
            # A suppressed count (None) is below the device's threshold: unknown, not 0.
            report.suppressed += (entered is None) + (exited is None)
            for totals in (report.lines.setdefault(name, [0, 0]),
                           per_line.setdefault(name, [0, 0])):
                totals[0] += entered or 0
                totals[1] += exited or 0
        report.suppressed += report.age.add(w.age_bands, w.gender)
        report.behaviour.add(w)
    for (store_id, camera_id), (status, _at) in (statuses or {}).items():
        if (store_id, camera_id) in reports:
            reports[(store_id, camera_id)].status = status
    for report in reports.values():
        report.hours = dict(sorted(report.hours.items()))
    return [reports[key] for key in sorted(reports)]


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
    return {"cameras": [r.as_dict() for r in reports],
            "stores": [{"age": None, "behaviour": None, **stores[key]} for key in sorted(stores)]}


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
            out.append(f"  {hour:<18} {sum(c[0] for c in lines.values()):>8}  {cells}")
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


def plot(reports: list[CameraReport], directory: Path, zone_name: str) -> list[Path]:
    """One PNG per camera: people in and out per hour, and its heatmap when it sent one;
    one per store with age data: the share of each age band."""
    try:
        import matplotlib
    except ImportError:
        raise ApplianceError("--plot needs matplotlib: pip install 'shopper-edge[hq]'") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ApplianceError(f"{directory}: cannot create: {error.strerror}") from None
    written = []
    for r in reports:
        hours = list(r.hours)
        entered = [sum(c[0] for c in r.hours[h].values()) for h in hours]
        exited = [sum(c[1] for c in r.hours[h].values()) for h in hours]
        figure, axes = plt.subplots(figsize=(max(6, 0.5 * len(hours) + 2), 4))
        x = range(len(hours))
        axes.bar([i - 0.2 for i in x], entered, width=0.4, label="in")
        axes.bar([i + 0.2 for i in x], exited, width=0.4, label="out")
        axes.set_xticks(list(x), [h[5:] for h in hours], rotation=45, ha="right")
        axes.set_ylabel("people")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(f"{r.store_id} / {r.camera_id}: people per hour ({zone_name}), "
                       f"coverage {r.coverage:.0%}")
        axes.legend()
        figure.tight_layout()
        written.append(_save(plt, figure, directory / f"{r.store_id}-{r.camera_id}-footfall.png"))
        if r.behaviour.heatmap:
            figure = _heatmap_figure(plt, r)
            written.append(_save(plt, figure,
                                 directory / f"{r.store_id}-{r.camera_id}-heatmap.png"))
    for store in store_profiles(reports):
        if not store.age.bands:
            continue  # gender only: nothing to draw here
        shares = store.age.shares()
        bands = [band for band in store.age.bands if band != "unknown"]
        figure, axes = plt.subplots(figsize=(max(6, 0.6 * len(bands) + 2), 4))
        axes.bar(bands, [100 * shares.get(band, 0.0) for band in bands])
        axes.set_xlabel(f"age band ({store.age.bands.get('unknown', 0)} of unknown age)")
        axes.set_ylabel("% of visitors of known age")
        axes.set_title(f"{store.store_id}: age profile\n{store.first} .. {store.last}")
        figure.tight_layout()
        written.append(_save(plt, figure, directory / f"{store.store_id}-age-profile.png"))
    return written


def _heatmap_figure(plt, r: CameraReport):
    """person-seconds per cell over the period; a cell blanked in every window (never
    published) is hatched grey, not drawn as zero."""
    import numpy as np
    from matplotlib.patches import Rectangle

    h = r.behaviour.heatmap
    cells = np.ma.masked_invalid(np.array(
        [[np.nan if v is None else v for v in row] for row in h.sums], dtype=float))
    figure, axes = plt.subplots(figsize=(8, 8 * h.rows / h.cols + 1))
    colours = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    image = axes.imshow(cells, cmap=colours, vmin=0, interpolation="nearest")
    for y, x in zip(*np.nonzero(cells.mask), strict=True):
        axes.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="//",
                                 edgecolor="grey", linewidth=0))
    axes.set_xticks([])
    axes.set_yticks([])
    figure.colorbar(image, ax=axes, label="person-seconds", shrink=0.8)
    partly = h.as_dict()["partly_blanked_cells"]
    axes.set_title(f"{r.store_id} / {r.camera_id}: where people were, {h.windows} windows\n"
                   f"{r.first} .. {r.last}\nhatched: blanked for privacy in every window"
                   + (f"; {partly} cells blanked in some (lower bounds)" if partly else ""),
                   fontsize=9)
    figure.tight_layout()
    return figure


def _save(plt, figure, path: Path) -> Path:
    try:
        figure.savefig(path, dpi=100)
    except OSError as error:
        raise ApplianceError(f"{path}: cannot write: {error.strerror}") from None
    finally:
        plt.close(figure)
    return path


def _band_order(name: str) -> tuple[bool, int, str]:
    """Sort key: "A-B" and "A+" by A, other names by name, "unknown" last."""
    lower = name.split("-")[0].rstrip("+")
    return name == "unknown", int(lower) if lower.isdigit() else -1, name


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


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
