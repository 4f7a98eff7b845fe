"""Small-count protection of a window before it leaves the device.

1. Optional differential privacy: each count gets discrete Laplace noise (the two-sided
   geometric mechanism, the exact integer form of Laplace noise, immune to the
   floating-point attacks on continuous Laplace) of scale `sensitivity / epsilon`, then is
   clamped at zero. One person changes a window's counts by at most `sensitivity` in total
   (crossing a door in and back out is 2), so each window is epsilon-differentially private
   for every person; a person seen in n windows is protected at n * epsilon.
2. Small-count suppression: every count from 1 to k-1 (`min_count` k) is published as null
   and named in `suppressed`; a zero describes nobody and is published. Complementary
   suppression: where a published total is the sum of some cells, no such group may have
   exactly one hidden cell, or it would be the total minus the others. The smallest other
   non-zero cell is hidden too (a hidden zero would leave the sum to the one small cell);
   with no such cell the total is hidden instead. Repeated until no group has exactly one.

k = 1 turns suppression off (tests, evaluation). The default is k = 5.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.messages import bin_bounds

if TYPE_CHECKING:
    import numpy as np

Path = tuple[str, ...]  # where a count sits in the document, e.g. ("lines", "door", "in")


@dataclass(frozen=True)
class PrivacyConfig:
    min_count: int = 5
    epsilon: float | None = None  # None: no noise
    sensitivity: int = 2
    # Run the pixel worker in an empty network namespace (see appliance/device/isolation.py).
    isolate_pixels: bool = True
    # Who shoppers may ask about the counting (the shop-door notice), e.g. "dpo@shop.example".
    contact: str | None = None


@dataclass(frozen=True)
class Group:
    """Cells whose sum is published: as one total cell, or as the sum of other cells
    (`total` holds one or several paths)."""

    total: tuple[Path, ...]
    members: tuple[Path, ...]


def count_cells(document: dict) -> tuple[list[Path], list[Group]]:
    """The integer counts of a window document that protection applies to, and the sums
    among them. Lines publish no totals, so they form no groups (yet); a zone's dwell
    histogram sums to its visits."""
    cells = [("lines", name, direction) for name, counts in document["lines"].items()
             for direction in ("in", "out")]
    behaviour, behaviour_groups = _behaviour_cells(document)
    families = {key: [(key, name) for name in document.get(key, {})]
                for key in ("age_bands", "gender")}
    groups = []
    if families["age_bands"] and families["gender"]:
        # Both count the same visitors: each family's sum is the other's total.
        groups = [Group(tuple(families["gender"]), tuple(families["age_bands"])),
                  Group(tuple(families["age_bands"]), tuple(families["gender"]))]
    return (cells + families["age_bands"] + families["gender"] + behaviour,
            groups + behaviour_groups)


def _behaviour_cells(document: dict) -> tuple[list[Path], list[Group]]:
    cells: list[Path] = []
    groups = []
    for name, zone in document.get("zones", {}).items():
        visits = ("zones", name, "visits")
        bins = tuple(("zones", name, "dwell", "histogram", b) for b in zone["dwell"]["histogram"])
        cells += [visits, *bins] + ([("zones", name, "interactions")]
                                    if "interactions" in zone else [])
        groups.append(Group((visits,), bins))
    cells += [("journeys", key) for key, value in document.get("journeys", {}).items()
              if not key.endswith("_share")]
    if "groups" in document:
        cells += [("groups", "sizes", size) for size in document["groups"]["sizes"]]
        cells.append(("groups", "accompanied"))
    return cells, groups


def _derived(result: dict, hidden: set[Path], config: PrivacyConfig) -> None:
    """Figures computed from counts follow them: dwell percentiles come from the published
    histogram (null when any of its bins or the visits is hidden, or with noise), occupancy
    goes null below k (or with noise), and shares are recomputed from what is published.
    With noise the heatmap (seconds, not counts) is left out."""
    noisy = config.epsilon is not None
    for zone in result.get("zones", {}).values():
        dwell = zone["dwell"]
        # Percentiles of the visits' exact dwell times would give one person's time away
        # (with k visits, p50 is one of them to 0.1 s): they are read off the published
        # histogram instead, so they say nothing that the published bins do not.
        known = not noisy and zone["visits"] is not None and \
            None not in dwell["histogram"].values()
        dwell["p50"] = histogram_percentile(dwell["histogram"], 0.5) if known else None
        dwell["p90"] = histogram_percentile(dwell["histogram"], 0.9) if known else None
        if noisy or 0 < (zone["occupancy_max"] or 0) < config.min_count:
            zone["occupancy_mean"] = zone["occupancy_max"] = None
    journeys = result.get("journeys")
    if journeys is not None:
        journeys["interacted_without_checkout_share"] = share(
            journeys["interacted_without_checkout"], journeys["interacted"])
    groups = result.get("groups")
    if groups is not None:
        alone, accompanied = groups["sizes"]["1"], groups["accompanied"]
        people = None if None in (alone, accompanied) else alone + accompanied
        groups["accompanied_share"] = share(accompanied, people)
    if noisy:
        result.pop("heatmap", None)


def histogram_percentile(histogram: dict[str, int], q: float) -> float | None:
    """The q-quantile (0 < q < 1) of the visits in a dwell histogram ("0-10", ..., "300+"),
    visits taken as spread evenly over their bin (as HQ pools them), to 0.1 s; None with
    no visits or when it falls in the open last bin (only a lower bound is known there)."""
    bins = sorted((bin_bounds(label), n) for label, n in histogram.items())
    target, seen = q * sum(n for _, n in bins), 0
    for (low, high), n in bins:
        if n and seen + n >= target:
            return None if high == math.inf else round(low + (high - low) * (target - seen) / n, 1)
        seen += n
    return None


def share(part: int | None, whole: int | None) -> float | None:
    """part / whole to 3 decimals; None when either is unknown or the whole is zero."""
    if part is None or not whole:
        return None
    return round(min(part / whole, 1.0), 3)


def protect(document: dict, config: PrivacyConfig,
            rng: np.random.Generator | None = None) -> dict:
    """A copy of the window document with noise added and small counts suppressed."""
    cells, groups = count_cells(document)
    values = {path: _get(document, path) for path in cells}
    if config.epsilon is not None:
        if rng is None:
            import numpy as np  # here, so that the config loads without starting threads

            rng = np.random.default_rng()  # seeded from the OS
        scale = config.sensitivity / config.epsilon
        values = {path: max(0, v + discrete_laplace(rng, scale)) for path, v in values.items()}
    hidden = suppress(values, groups, config.min_count)
    sizes = [("groups", "sizes", n) for n in ("2", "3", "4", "5+")]
    if any(path in hidden for path in sizes) and ("groups", "accompanied") in values:
        # accompanied = 2 x sizes.2 + 3 x sizes.3 + ...: it would give a hidden size away.
        hidden.add(("groups", "accompanied"))
    result = _copy(document)
    for path, value in values.items():
        _set(result, path, None if path in hidden else int(value))
    result["suppressed"] = [".".join(path) for path in cells if path in hidden]
    _derived(result, hidden, config)
    heat = result.get("heatmap", {}).get("person_seconds", "")
    if re.search(r"(^|[,;])([,;]|$)", heat):  # an empty cell: blanked for too few people
        result["suppressed"].append("heatmap.cells")
    return result


def suppress(values: dict[Path, int], groups: Iterable[Group], min_count: int) -> set[Path]:
    """Primary suppression (0 < value < min_count) plus complementary suppression."""
    hidden = {path for path, value in values.items() if 0 < value < min_count}
    groups = list(groups)
    changed = True
    while changed:
        changed = False
        for group in groups:
            if any(t in hidden for t in group.total):
                continue  # no published total to subtract from
            members_hidden = [m for m in group.members if m in hidden]
            if len(members_hidden) != 1:
                continue
            candidates = [m for m in group.members if m not in hidden and values[m] > 0] or \
                [t for t in group.total if values[t] > 0]  # else hide (part of) the total
            # The smallest cell costs the least information.
            hidden.add(min(candidates, key=lambda m: (values[m], m)))
            changed = True
    return hidden


def discrete_laplace(rng: np.random.Generator, scale: float) -> int:
    """One draw of two-sided geometric noise with P(k) proportional to exp(-|k| / scale)."""
    p = 1.0 - math.exp(-1.0 / scale)
    # The difference of two geometric variables (failures before success) is two-sided
    # geometric with the same parameter.
    return int(rng.geometric(p) - rng.geometric(p))


def _get(document: dict, path: Path):
    node = document
    for key in path:
        node = node[key]
    return node


def _set(document: dict, path: Path, value) -> None:
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
