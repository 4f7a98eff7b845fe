"""Tests for appliance.device.analytics.groups: small synthetic scenes with a known answer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from appliance.device.analytics.groups import GroupConfig, GroupDetector

FPS = 5.0  # not the 2.5 fps of the datasets: timing must come from timestamps


Path = Callable[[float], tuple[float, float]]


def run(paths: dict[int, Path], seconds: float, scale: dict[int, float] | None = None,
        crossings: dict[int, float] | None = None) -> tuple[GroupDetector, list[int]]:
    """Feed ``paths`` (id -> t -> (x, y)) for ``seconds``, then flush; return the sizes.

    ``crossings``: id -> time the person crossed the entrance line."""
    detector = GroupDetector()
    for t in np.arange(0.0, seconds, 1 / FPS):
        ids = np.array(list(paths))
        positions = np.array([paths[i](t) for i in ids])
        per_unit = None if scale is None else np.array([scale[i] for i in ids])
        detector.update(1000.0 + t, ids, positions, per_unit)
        for i, when in (crossings or {}).items():
            detector.crossed(i, 1000.0 + when)
    return detector, sorted(detector.flush())


def walker(x0: float, y0: float, vx: float, vy: float = 0.0, sway: float = 0.0):
    """Straight walk with a little lateral sway (people don't move on rails)."""
    return lambda t: (x0 + vx * t, y0 + vy * t + sway * np.sin(2.1 * t))


def test_pair_walking_side_by_side_is_a_group():
    _, sizes = run({1: walker(0, 0, 1.3, sway=0.05), 2: walker(0, 0.7, 1.3, sway=-0.05)}, 15)
    assert sizes == [2]


def test_strangers_crossing_paths_stay_single():
    # One walks east, the other north; they pass within a metre at t = 5 s.
    _, sizes = run({1: walker(-6.5, 0, 1.3), 2: walker(0, -6.5, 0, 1.3)}, 12)
    assert sizes == [1, 1]


def test_following_at_five_metres_is_not_a_group():
    _, sizes = run({1: walker(5, 0, 1.3), 2: walker(0, 0, 1.3)}, 20)
    assert sizes == [1, 1]


def test_overtaking_stranger_is_not_a_group():
    # Close, same heading, for about six seconds; but slides past at 0.4 m/s.
    _, sizes = run({1: walker(0, 0, 1.2), 2: walker(-3, 0.8, 1.6)}, 15)
    assert sizes == [1, 1]


def test_standing_side_by_side_is_no_evidence():
    # Strangers wait side by side at a tram stop or in a queue: standing never links a pair.
    rng = np.random.default_rng(1)
    jitter = {i: rng.normal(0, 0.03, (1000, 2)) for i in (1, 2)}
    paths = {1: lambda t: (2.0, 3.0) + jitter[1][int(t * FPS)],
             2: lambda t: (2.8, 3.1) + jitter[2][int(t * FPS)]}
    assert run(paths, 90)[1] == [1, 1]


def test_pair_that_walks_together_then_stops_is_a_group():
    # Walk side by side for 6 s, then stand at a shelf for a minute.
    paths = {1: lambda t: (1.3 * min(t, 6.0), 0.0), 2: lambda t: (1.3 * min(t, 6.0), 0.7)}
    assert run(paths, 66)[1] == [2]


def test_close_but_converging_and_diverging_is_not_a_group():
    # Same pace, nearly the same heading, within 1.4 m for 9 s, but the one drifts across
    # the other's path at 0.3 m/s all the time both are in view: strangers in a flow.
    assert run({1: walker(0, -3.0, 1.3, 0.3), 2: walker(0, 0, 1.3)}, 20)[1] == [1, 1]
    # The same pair, drifting a fifth as fast, stays in formation: companions.
    assert run({1: walker(0, -0.6, 1.3, 0.06), 2: walker(0, 0, 1.3)}, 20)[1] == [2]


def test_three_abreast_is_one_group():
    # The outer two are 1.4 m apart: linked through the one in the middle.
    paths = {i: walker(0, 0.7 * i, 1.2) for i in range(3)}
    assert run(paths, 12)[1] == [3]


def test_pixels_with_per_person_scale():
    # Foot points in pixels, 100 px per metre: the same pair as in metres.
    paths = {1: lambda t: (130 * t, 0.0), 2: lambda t: (130 * t, 70.0)}
    assert run(paths, 12, scale={1: 0.01, 2: 0.01})[1] == [2]
    # Same pixels, but the scale says they are 7 m apart.
    assert run(paths, 12, scale={1: 0.1, 2: 0.1})[1] == [1, 1]


def test_entrance_crossing_is_supporting_evidence():
    # Together for a couple of seconds, then one veers off: not enough on its own ...
    paths = {1: walker(0, 0, 1.3), 2: lambda t: (1.3 * t, 0.7 + max(0.0, t - 2.6))}
    assert run(paths, 3.4)[1] == [1, 1]
    # ... but they came in through the door within a second of each other.
    assert run(paths, 3.4, crossings={1: 0.0, 2: 0.8})[1] == [2]
    assert run(paths, 3.4, crossings={1: 0.0, 2: 6.0})[1] == [1, 1]


def test_group_reported_only_when_every_member_ended():
    detector = GroupDetector()
    for t in np.arange(0.0, 10.0, 1 / FPS):
        detector.update(t, np.array([7, 8, 9]),
                        np.array([[1.3 * t, 0.0], [1.3 * t, 0.7], [0.0, 1.3 * t + 20]]))
    assert detector.end([7]) == []  # 8 is still in view
    assert detector.end([9]) == [1]
    assert detector.end([8]) == [2]
    assert detector.end([8]) == []  # reported once


def test_state_dropped_after_end_and_flush():
    detector, sizes = run({1: walker(0, 0, 1.3), 2: walker(0, 0.7, 1.3),
                           3: walker(10, 5, 0, -1.0)}, 30)
    assert sizes == [1, 2]
    assert not detector._tracks and not detector._pairs
    assert not detector._links and not detector._ended


def test_memory_stays_bounded():
    config = GroupConfig()
    detector = GroupDetector(config)
    for t in np.arange(0.0, 30.0, 1 / 30):  # half a minute at 30 fps
        detector.update(t, np.array([1, 2]), np.array([[1.3 * t, 0.0], [1.3 * t, 0.7]]))
    track = detector._tracks[1]
    assert len(track.history) <= config.history_seconds * 30 + 1
    assert len(detector._pairs) == 1
    assert detector.end([1, 2]) == [2]
