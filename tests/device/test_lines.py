"""Line counting logic on hand-made tracks (a unit test of the rule, no model involved)."""

import numpy as np

from appliance.device.analytics.lines import LineCounter
from appliance.device.analytics.lines_config import CountingConfig, LineConfig
from appliance.device.track.tracker import Tracks

# A horizontal door from x 100 to 200 at y 100; the shop ("in") is above it.
DOOR = LineConfig("door", ((100, 100), (200, 100)), in_side_point=(150, 50))
HEIGHT = 50.0


def _tracks(people, ended=()):
    """people: list of (id, foot_x, foot_y, moving)."""
    if not people:
        return Tracks(np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                      np.zeros(0, np.float32), np.zeros(0, bool), tuple(ended))
    ids = np.array([p[0] for p in people])
    xyxy = np.array([[x - 10, y - HEIGHT, x + 10, y] for _, x, y, _ in people], np.float32)
    return Tracks(ids, xyxy, np.ones(len(people), np.float32),
                  np.array([p[3] for p in people]), tuple(ended))


def _walk(counter, track_id, ys, x=150.0, moving=True, t0=0.0, step=0.04):
    crossings = []
    for k, y in enumerate(ys):
        crossings += counter.update(_tracks([(track_id, x, y, moving)]), t0 + k * step)
    return crossings


def _counter():
    return LineCounter(DOOR, CountingConfig(band=0.12, min_band_px=3))


def test_walking_in_and_out_counts_once_each():
    counter = _counter()
    crossings = _walk(counter, 1, np.linspace(130, 70, 40))
    assert [c.direction for c in crossings] == ["in"]
    crossings = _walk(counter, 1, np.linspace(70, 130, 40), t0=2)
    assert [c.direction for c in crossings] == ["out"]
    assert counter.counts == {"in": 1, "out": 1}


def test_feet_hovering_on_the_line_count_once():
    counter = _counter()
    hover = [130, 115, 106] + [100 + 5 * np.sin(k) for k in range(30)] + [90, 80, 70]
    assert [c.direction for c in _walk(counter, 1, hover)] == ["in"]


def test_stepping_over_and_back_is_not_counted():
    counter = _counter()
    assert _walk(counter, 1, [130, 115, 104, 97, 96, 103, 115, 130]) == []
    assert counter.counts == {"in": 0, "out": 0}


def test_crossing_beside_the_door_is_not_counted():
    counter = _counter()
    assert _walk(counter, 1, np.linspace(130, 70, 40), x=260) == []


def test_a_still_object_is_never_counted():
    counter = _counter()
    # Even if its box jitters across the line, a track that never travelled is a fixture.
    assert _walk(counter, 7, [130, 70, 130, 70], moving=False, step=2.0) == []


def test_a_track_that_breaks_on_the_line_is_counted_once():
    counter = _counter()
    crossings = _walk(counter, 1, np.linspace(130, 101, 15))
    crossings += counter.update(_tracks([]), 0.7)  # the person is lost on the line
    crossings += _walk(counter, 2, np.linspace(99, 70, 15), t0=0.8)  # a new id resumes
    assert [c.direction for c in crossings] == ["in"]
    # and if the old id comes back it cannot count the same crossing again
    crossings = _walk(counter, 1, [70, 68], t0=1.5)
    assert crossings == [] and counter.counts == {"in": 1, "out": 0}


def test_a_box_that_jumps_loses_its_side():
    counter = _counter()
    # A fixture's id jumps onto a passer-by walking beneath the door: not an exit.
    _walk(counter, 3, [60, 60, 60], moving=True, step=0.04)
    crossings = counter.update(_tracks([(3, 150, 135, True)]), 0.16)
    assert crossings == []
