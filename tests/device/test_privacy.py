"""Small-count suppression, complementary suppression and discrete Laplace noise."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from appliance.device.analytics.demographics_config import DemographicsConfig
from appliance.device.privacy import Group, PrivacyConfig, discrete_laplace, protect, suppress
from appliance.device.window import WindowAggregator
from tests.conftest import REPO

COUNTS = Draft202012Validator(json.loads((REPO / "appliance" / "schemas" /
                                          "counts-2.json").read_text()))


def window(counts: dict[str, tuple[int, int]]) -> dict:
    aggregator = WindowAggregator("shop-1", "door", list(counts), 60, "wall")
    aggregator.add(1_800_000_000.0, [])
    document = aggregator.flush()[0]
    document["lines"] = {name: {"in": i, "out": o} for name, (i, o) in counts.items()}
    return document


line_counts = st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                              st.tuples(st.integers(0, 60), st.integers(0, 60)),
                              min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(line_counts, st.integers(1, 20))
def test_published_counts_are_exact_and_at_least_k_the_rest_null_and_named(counts, k):
    document = protect(window(counts), PrivacyConfig(min_count=k))
    COUNTS.validate(document)
    named = set(document["suppressed"])
    for name, (entered, exited) in counts.items():
        for direction, value in (("in", entered), ("out", exited)):
            published = document["lines"][name][direction]
            if 0 < value < k:
                assert published is None and f"lines.{name}.{direction}" in named
            else:
                assert published == value and f"lines.{name}.{direction}" not in named


def test_k_of_one_changes_nothing():
    document = window({"door": (0, 3)})
    assert protect(document, PrivacyConfig(min_count=1))["lines"] == document["lines"]


tables = st.lists(st.integers(0, 30), min_size=2, max_size=8).flatmap(
    lambda members: st.tuples(st.just(members), st.lists(
        st.lists(st.integers(0, len(members) - 1), min_size=2, max_size=len(members),
                 unique=True), min_size=1, max_size=4)))


@settings(max_examples=500, deadline=None)
@given(tables, st.integers(2, 10))
def test_no_hidden_cell_can_be_recovered_from_a_published_total(table, k):
    """Each group publishes a total (the sum of its members). Whatever the groups, no group
    whose total is published has exactly one hidden member, and that member is never
    paired with a hidden zero only; every small cell is hidden; nothing else is hidden
    unless a group needs it."""
    members, groups = table
    values = {(f"c{i}",): v for i, v in enumerate(members)}
    declared = []
    for g, indices in enumerate(groups):
        total = (f"total{g}",)
        values[total] = sum(members[i] for i in indices)
        declared.append(Group((total,), tuple((f"c{i}",) for i in indices)))
    hidden = suppress(values, declared, k)
    primary = {p for p, v in values.items() if 0 < v < k}
    assert primary <= hidden
    for group in declared:
        if not set(group.total) & hidden:
            members_hidden = [m for m in group.members if m in hidden]
            assert len(members_hidden) != 1
            # The derived sum (total minus published) never belongs to one person's cell.
            assert len(members_hidden) == 0 or sum(values[m] > 0 for m in members_hidden) >= 2
    for path in hidden - primary:  # complementary: only ever to protect a group
        assert any(path in g.members or path in g.total for g in declared)
        assert values[path] > 0


def test_complementary_suppression_hides_the_smallest_other_cell():
    values = {("a",): 2, ("b",): 9, ("c",): 7, ("total",): 18}
    hidden = suppress(values, [Group((("total",),), (("a",), ("b",), ("c",)))], 5)
    assert hidden == {("a",), ("c",)}  # a, and c: the smallest of the others


def test_discrete_laplace_has_the_right_spread():
    rng = np.random.default_rng(7)
    scale = 2 / 0.5  # sensitivity 2, epsilon 0.5
    draws = np.array([discrete_laplace(rng, scale) for _ in range(20_000)])
    assert abs(draws.mean()) < 0.2
    # Two-sided geometric with p = 1 - exp(-1/b): variance 2 e^(-1/b) / (1 - e^(-1/b))^2.
    q = math.exp(-1 / scale)
    assert abs(draws.var() / (2 * q / (1 - q) ** 2) - 1) < 0.05
    assert draws.dtype.kind == "i"


@settings(max_examples=200, deadline=None)
@given(line_counts, st.floats(0.05, 5.0), st.integers(1, 10))
def test_noisy_counts_are_whole_non_negative_and_still_suppressed(counts, epsilon, k):
    document = protect(window(counts), PrivacyConfig(min_count=k, epsilon=epsilon),
                       rng=np.random.default_rng(0))
    COUNTS.validate(document)
    for name in counts:
        for direction in ("in", "out"):
            value = document["lines"][name][direction]
            assert value is None or (isinstance(value, int) and (value == 0 or value >= k))


def test_noise_makes_neighbouring_windows_hard_to_tell_apart():
    """epsilon-DP in practice: the output distributions for a window with and without one
    more person differ by at most e^epsilon in probability, for every output value."""
    epsilon, sensitivity, n = 1.0, 1, 40_000
    rng = np.random.default_rng(1)
    config = PrivacyConfig(min_count=1, epsilon=epsilon, sensitivity=sensitivity)
    with_one = [protect(window({"door": (10, 0)}), config, rng)["lines"]["door"]["in"]
                for _ in range(n)]
    without = [protect(window({"door": (11, 0)}), config, rng)["lines"]["door"]["in"]
               for _ in range(n)]
    a, b = np.bincount(with_one, minlength=40)[:40], np.bincount(without, minlength=40)[:40]
    common = (a > 500) & (b > 500)  # values seen often enough to estimate
    ratios = a[common] / b[common]
    assert common.sum() > 5
    assert np.all(ratios < math.exp(epsilon) * 1.15) and np.all(ratios > math.exp(-epsilon) / 1.15)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=9, max_size=9), st.integers(0, 12))
def test_age_bands_cannot_be_recovered_from_the_gender_counts(bands, extra):
    """Age bands and gender count the same visitors: whatever hides in one family must not
    be the other family's sum minus the rest."""
    config = DemographicsConfig(enabled=True, gender=True)
    document = window({"door": (0, 0)})
    document["age_bands"] = dict(zip(config.band_names(), bands, strict=True))
    total = sum(bands)
    female = min(extra, total)
    document["gender"] = {"female": female, "male": total - female, "unknown": 0}
    published = protect(document, PrivacyConfig(min_count=5))
    COUNTS.validate(published)
    for family, other in (("age_bands", "gender"), ("gender", "age_bands")):
        hidden = [v for v in published[family].values() if v is None]
        if not any(v is None for v in published[other].values()):
            assert len(hidden) != 1, published


BINS = (10, 30, 60, 120, 300)
EDGES = (0, *BINS, math.inf)


def zone_window(dwells: list[float]) -> dict:
    """A window whose one zone's visits ended with these dwell times (one person each)."""
    from appliance.device.analytics.behaviour import BehaviourFrame, BehaviourWindow
    from appliance.device.analytics.behaviour_config import BehaviourConfig
    from appliance.device.analytics.journeys import Journey
    from appliance.device.analytics.zones_config import ZoneConfig
    from appliance.device.camera_config import CameraConfig

    zone = ZoneConfig("lane", "queue", ((0, 0), (10, 0), (10, 10), (0, 10)))
    camera = CameraConfig("door", "x", zones=(zone,))
    config = BehaviourConfig(dwell_bins=BINS, groups=False, heatmap=None)
    behaviour = BehaviourWindow(camera, config, 100, 100)
    behaviour.add(BehaviourFrame(1.0, {"lane": 0}, [
        Journey(False, False, (("lane", seconds),), (), False, seconds) for seconds in dwells],
        []))
    document = window({"door": (0, 0)})
    document.update(behaviour.emit(1))
    return document


def same_bin(seconds: float, fraction: float) -> float:
    """Another dwell time in the bin of `seconds` (the open last bin: up to an hour more)."""
    index = next(i for i in range(len(BINS) + 1) if seconds < EDGES[i + 1])
    low, high = EDGES[index], min(EDGES[index + 1], EDGES[index] + 3600)
    return low + (high - low) * fraction


dwell_lists = st.lists(st.floats(0, 900, allow_nan=False), min_size=0, max_size=40)


@settings(max_examples=300, deadline=None)
@given(dwell_lists, st.integers(0, 39), st.floats(0, 0.999), st.integers(1, 10))
def test_dwell_percentiles_never_single_out_one_visit(dwells, who, fraction, k):
    """Move any one person's dwell (a queue wait) anywhere within its bin: what is
    published does not change. So p50/p90 tell nothing that the published histogram does
    not (with exactly k visits, p50 used to be one person's time to 0.1 s)."""
    config = PrivacyConfig(min_count=k)
    published = protect(zone_window(dwells), config)
    COUNTS.validate(published)
    dwell = published["zones"]["lane"]["dwell"]
    if dwells:
        moved = list(dwells)
        moved[who % len(dwells)] = same_bin(moved[who % len(dwells)], fraction)
        assert protect(zone_window(moved), config)["zones"]["lane"]["dwell"] == dwell
    if dwell["p50"] is not None:  # published: every bin and the visits are published too
        assert None not in dwell["histogram"].values()
        assert published["zones"]["lane"]["visits"] >= k
        assert dwell["p50"] <= (dwell["p90"] if dwell["p90"] is not None else math.inf)


def test_dwell_percentiles_are_read_off_the_published_bins():
    published = protect(zone_window([12.0] * 3 + [40.0] * 2 + [500.0]), PrivacyConfig(1))
    # 6 visits: p50 is the 3rd, the last of three spread over 10-30 -> 30.0; p90 (5.4th)
    # lies in 300+, where only a lower bound is known -> null.
    assert published["zones"]["lane"]["dwell"]["p50"] == 30.0
    assert published["zones"]["lane"]["dwell"]["p90"] is None
    hidden = protect(zone_window([12.0] * 5 + [40.0]), PrivacyConfig(min_count=5))
    assert hidden["zones"]["lane"]["dwell"]["histogram"]["30-60"] is None
    assert hidden["zones"]["lane"]["dwell"]["p50"] is None
