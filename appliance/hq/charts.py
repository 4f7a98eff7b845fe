"""PNG charts of the report (matplotlib, imported only for --plot)."""

from __future__ import annotations

from pathlib import Path

from appliance.errors import ApplianceError
from appliance.hq.aggregate import CameraReport, store_profiles


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

