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


def test_first_seen_just_outside_the_band_and_walking_straight_in_counts():
    """Side kept until the track counts as moving: a person first detected 0.3 box heights
    from the line who walks in is counted once, when they have travelled."""
    counter = _counter()
    ys = np.linspace(100 + 0.3 * HEIGHT, 100 - 0.6 * HEIGHT, 12)
    moving = [abs(y - ys[0]) >= 0.5 * HEIGHT for y in ys]
    crossings = []
    for k, (y, m) in enumerate(zip(ys, moving, strict=True)):
        crossings += counter.update(_tracks([(1, 150, y, m)]), k * 0.2)  # 5 fps
    assert [c.direction for c in crossings] == ["in"]


def test_first_seen_on_the_threshold_counts_once_it_walks_away():
    counter = _counter()
    # first seen on the line (a door camera's common case), then walks out; not yet
    # "moving" by the tracker's 0.5 box heights, but two bands away from where it appeared
    crossings = _walk(counter, 1, [100, 102, 106, 110, 115, 120], moving=False, step=0.2)
    assert [c.direction for c in crossings] == ["out"]
    assert _walk(counter, 1, [125, 130, 126], moving=True, t0=1.2, step=0.2) == []


def test_first_seen_on_the_threshold_walking_along_it_is_not_counted():
    """PETS09-S2L1 frames 594-599: someone first seen just inside the band walks along the
    line, a little further from it; they did not come from the other side."""
    counter = _counter()
    crossings = []
    for k, (x, y) in enumerate([(140, 104), (145, 105), (150, 106), (155, 107), (160, 108)]):
        crossings += counter.update(_tracks([(1, x, y, False)]), 0.2 * k)
    assert crossings == []


def test_a_box_flickering_on_the_line_where_it_appeared_is_not_counted():
    counter = _counter()
    assert _walk(counter, 1, [100, 107, 100, 93, 100, 107], moving=False, step=0.2) == []


def test_a_track_reset_by_a_jump_takes_no_side_from_a_vanished_one():
    counter = _counter()
    _walk(counter, 1, np.linspace(130, 101, 15))  # person A reaches the line, is lost
    _walk(counter, 2, [40, 40, 40], t0=0.0)  # B far inside the shop
    counter.update(_tracks([]), 0.62)
    # B's box jumps onto the line where A vanished (a merge), then walks inside:
    # A's crossing must not move to B.
    crossings = _walk(counter, 2, [100, 95, 85, 75, 70], t0=0.7)
    assert crossings == [] and counter.counts == {"in": 0, "out": 0}


def test_a_box_that_halves_in_height_loses_its_side():
    counter = _counter()
    _walk(counter, 4, [125, 120, 115, 110])  # outside, walking up to the door
    # the id moves to a box half its size just inside (a mannequin): not an entry
    small = Tracks(np.array([4]), np.array([[140, 85 - 25, 160, 85]], np.float32),
                   np.ones(1, np.float32), np.array([True]))
    assert counter.update(small, 1.8) == []  # slow enough for a walk, not for a shrink


def test_one_odd_look_does_not_lose_the_side():
    """A partial box for one look (the foot point jumps up, the box halves) and then the
    person is back on their path: still the same person, the crossing counts."""
    counter = _counter()
    crossings = _walk(counter, 5, [130, 125, 120, 115, 110], step=0.1)  # 1 height/s
    odd = Tracks(np.array([5]), np.array([[140, 70 - 25, 160, 70]], np.float32),
                 np.ones(1, np.float32), np.array([True]))
    crossings += counter.update(odd, 0.5)  # on the line's other side, half the height
    crossings += _walk(counter, 5, [93, 88, 84, 80], t0=0.6, step=0.1)  # back, beyond
    assert [c.direction for c in crossings] == ["in"]


def test_a_box_that_strays_onto_a_fixture_for_a_few_looks_keeps_the_side():
    """At 10 fps the leaving shopper's box drifts up onto a mannequin beside the door for two
    looks (each step slower than a jump), then jumps back into the band where the shopper
    was: a return, not someone else; the side holds and the exit counts."""
    counter = _counter()
    crossings = _walk(counter, 6, [70, 75, 80, 85, 90], step=0.1)
    crossings += _walk(counter, 6, [82, 74], t0=0.5, step=0.1)  # onto the mannequin
    crossings += _walk(counter, 6, [96, 102, 108, 114, 120], t0=0.7, step=0.1)  # back, out
    assert [c.direction for c in crossings] == ["out"]


def test_a_still_track_that_jumps_into_the_band_is_no_return():
    """A mannequin's track jumps onto a passer-by in the band: nowhere it was a moment ago,
    so it loses the mannequin's side and the passer-by walking off is no exit."""
    counter = _counter()
    crossings = _walk(counter, 7, [70] * 10, step=0.1)
    crossings += _walk(counter, 7, [98, 104, 110, 116], t0=1.0, step=0.1)
    assert crossings == []


def test_a_jump_back_across_the_line_is_never_a_return():
    """A box of two people drops the foot point beyond the line: even near where the track
    was a moment ago, a jump that lands beyond the band on the other side counts nothing."""
    counter = _counter()
    crossings = _walk(counter, 8, [70, 75, 80, 85, 90, 86], step=0.1)
    crossings += _walk(counter, 8, [112, 118, 124], t0=0.6, step=0.1)
    assert crossings == []


def test_someone_hidden_while_crossing_and_found_beyond_counts_once():
    """Lost a box height before the door (behind someone standing in it), found as a new
    track 0.8 box heights past it 2 s later (0.9 box heights a second, a walk): one entry,
    and the old id, if it comes back, cannot count it again."""
    counter = _counter()
    crossings = _walk(counter, 1, np.linspace(200, 150, 26), step=0.04)  # 1 height/s
    for k in range(1, 40):  # 1.6 s of nobody on the door: the person is hidden
        crossings += counter.update(_tracks([]), 1.0 + 0.04 * k)
    crossings += _walk(counter, 2, np.linspace(60, 30, 10), t0=3.0)
    assert [c.direction for c in crossings] == ["in"] and crossings[0].track_id == 2
    assert _walk(counter, 1, [50, 45], t0=3.6) == [] and counter.counts == {"in": 1, "out": 0}


def test_someone_found_beyond_the_line_faster_than_a_walk_is_not_a_crossing():
    counter = _counter()
    crossings = _walk(counter, 1, np.linspace(200, 150, 26), step=0.04)
    crossings += counter.update(_tracks([]), 1.04)
    # 1 s later, 1.6 box heights away on the other side: someone else (or a run)
    crossings += _walk(counter, 2, np.linspace(70, 40, 10), t0=2.0)
    # and a new track beyond the line beside the door, where the path misses the segment
    crossings += _walk(counter, 3, np.linspace(130, 160, 10), x=150, t0=3.0)
    crossings += counter.update(_tracks([]), 3.5)
    crossings += _walk(counter, 4, np.linspace(90, 60, 10), x=300, t0=4.5)
    assert crossings == [] and counter.counts == {"in": 0, "out": 0}


def test_a_fixture_that_vanishes_hands_no_crossing_to_a_new_track():
    counter = _counter()
    _walk(counter, 7, [150, 150, 151], moving=False, step=0.5)
    counter.update(_tracks([]), 2.0)
    assert _walk(counter, 8, np.linspace(60, 40, 5), t0=3.0) == []


def test_a_box_of_another_size_takes_no_side_from_a_track_that_vanished_there():
    """PETS09-S2L1 frames 345-361 (3.5 fps): person 14's track vanishes on the line inside a
    merged box and person 9, much smaller (farther from the camera), is found there as a new
    track; person 9 must not inherit person 14's side."""
    counter = _counter()
    _walk(counter, 1, np.linspace(60, 95, 10), step=0.1)  # inside, walking to the door
    counter.update(_tracks([]), 1.0)  # vanishes on the line
    crossings = []
    for k, y in enumerate([101, 95, 88, 80, 72]):  # twice as tall, walking in
        big = Tracks(np.array([2]), np.array([[140, y - 100, 160, y]], np.float32),
                     np.ones(1, np.float32), np.array([False]))
        crossings += counter.update(big, 1.2 + 0.2 * k)
    assert [c.direction for c in crossings] == ["in"]



def test_a_merged_box_decides_no_side():
    """A box that also holds another person (the tracker's `merged`) has one foot point,
    maybe the other person's: it decides no side, as inside the band. Person 1 waits below
    the door while a box shared with someone walking in carries its foot point over the
    line; person 1 is not counted. The same looks unflagged count an "in" and an "out"."""
    ys = [130, 120, 106, 92, 80, 84, 118, 120]
    shared = [False, False, True, True, True, True, False, False]

    def crossings(flags):
        counter = _counter()
        out = []
        for k, (y, merged) in enumerate(zip(ys, flags, strict=True)):
            tracks = _tracks([(1, 150, y, True)])
            out += counter.update(Tracks(tracks.ids, tracks.xyxy, tracks.scores,
                                         tracks.moving, merged=np.array([merged])), 0.2 * k)
        return [c.direction for c in out]

    assert crossings(shared) == []
    assert crossings([False] * len(ys)) == ["in", "out"]


def _look(counter, people, t):
    """people: list of (id, foot_x, foot_y, height, shared): moving tracks, shared boxes
    flagged as the tracker's `merged`."""
    xyxy = np.array([[x - 10, y - h, x + 10, y] for _, x, y, h, _ in people], np.float32)
    tracks = Tracks(np.array([p[0] for p in people]), xyxy, np.ones(len(people), np.float32),
                    np.ones(len(people), bool), merged=np.array([p[4] for p in people]))
    return [c.direction for c in counter.update(tracks, t)]


def test_a_shared_box_twice_as_tall_is_not_a_jump():
    """Walking in, person 1's box merges with someone behind them (twice the height) for two
    looks, then is their own again beyond the line: the shared box is not their size, but
    it is not evidence that the id moved to someone else either, so the crossing counts.
    Judged as their own looks, the height change would have cost the side."""
    def walk(shared):
        counter = _counter()
        looks = [(130, 50, False), (122, 50, False), (115, 110, shared), (108, 110, shared),
                 (80, 50, False), (74, 50, False)]
        return sum((_look(counter, [(1, 150, y, h, s)], 0.2 * k)
                    for k, (y, h, s) in enumerate(looks)), [])

    assert walk(shared=True) == ["in"]
    assert walk(shared=False) == []


def test_a_track_that_vanished_in_a_shared_box_hands_no_crossing_on():
    """Track 1 walks towards the door from below and vanishes while its box holds another
    person too; a new track is found beyond the door, where track 1's person could have
    walked. Who walked on may be the other person, so nothing is counted; had track 1
    vanished in its own box, the new track would count the crossing."""
    def vanish(shared):
        counter = _counter()
        out = []
        for k, (y, s) in enumerate([(150, False), (140, False), (130, shared), (125, shared)]):
            out += _look(counter, [(1, 150, y, 50, s)], 0.2 * k)
        out += _look(counter, [], 0.8)
        out += _look(counter, [(2, 150, 90, 50, False)], 1.4)
        return out

    assert vanish(shared=True) == []
    assert vanish(shared=False) == ["in"]


def _in_then(counter, later):
    """Track 1 walks in (one "in" at y 100), then walks on to y 40 by 1.0 s; `later`:
    [(time, people)] looks after that, people as in `_look`."""
    out = []
    for k, y in enumerate(np.linspace(130, 40, 11)):
        out += _look(counter, [(1, 150, y, 50, False)], 0.1 * k)
    for t, people in later:
        out += _look(counter, people, t)
    return out


def test_a_companion_coming_out_of_the_crossers_box_counts_the_crossing_late():
    """Two people walk in as one box; 0.2 s after the last look, a second track appears in
    that box beside track 1, which walks on: the companion, counted late."""
    counter = _counter()
    assert _in_then(counter, [(1.2, [(1, 150, 35, 50, False), (2, 155, 38, 45, False)]),
                              (1.4, [(1, 150, 30, 50, False), (2, 158, 37, 45, False)])]) \
        == ["in", "in"]


def test_a_companion_left_behind_when_the_crosser_leaves_the_view_counts():
    """The crosser walks out of view; 0.4 s later a new track stands in its last box, far
    from anywhere it could have walked since (here a smaller person, farther from the
    camera, whose foot point is high in the box): a companion, counted late."""
    counter = _counter()
    assert _in_then(counter, [(1.4, []), (1.6, []), (1.8, [(2, 152, 12, 25, False)])]) \
        == ["in", "in"]


def test_the_crosser_found_again_where_it_vanished_is_no_companion():
    """The crosser is unseen for a second and found again as a new track beside where it
    vanished (a looped CAVIAR clip at 5 fps: the shopper turning back outside the door): the
    same person, not a companion coming out of its box, so no second count; and it keeps
    the crossing's lend, so a companion coming out of its box still counts."""
    counter = _counter()
    later = [(t, []) for t in (1.2, 1.4, 1.6, 1.8)] + [(2.0, [(2, 147, 43, 30, False)])]
    assert _in_then(counter, later) == ["in"]
    assert _look(counter, [(2, 147, 42, 50, False), (3, 152, 40, 45, False)], 2.2) == ["in"]


def test_looks_from_before_a_shared_box_are_too_old_to_return_to():
    """First seen on the threshold, its box grows (own looks), then is shared for two seconds,
    then is its own again far inside and much smaller: a jump from its last own look, so
    no crossing. A look from before the shared boxes, 2.2 s old, is no place it could have
    come back to within `excursion_seconds` (a door duplicate at uneven 8-25 fps paces
    counted an "in" that way when the shared box shrank onto a mannequin)."""
    counter = _counter()
    out = []
    for k, (y, h) in enumerate([(100, 40), (101, 40), (102, 58)]):
        out += _look(counter, [(1, 150, y, h, False)], 0.1 * k)
    for k in range(10):
        out += _look(counter, [(1, 150, 104 + k, 70, True)], 0.3 + 0.2 * k)
    for k in range(3):
        out += _look(counter, [(1, 150, 60 - k, 36, False)], 2.4 + 0.1 * k)
    assert out == []


def test_someone_already_beyond_the_line_found_again_in_the_crossers_box_is_no_companion():
    """Person 5 stands inside the door; the crosser walks in past in front of them, hiding
    them, and they are found again as a new track in the crosser's box, where they were
    (TUD-Stadtmitte at 8 fps, a person on the far side of the line the whole time): no
    companion, so no second count. Had nobody been there before, the new track would be a
    companion coming out of the box."""
    def crossings(someone_there):
        counter = _counter()
        out = []
        for k, y in enumerate(np.linspace(130, 40, 11)):
            people = [(1, 150, y, 50, False)]
            if someone_there and k < 9:
                people.append((5, 156, 26, 48, False))
            out += _look(counter, people, 0.1 * k)
        out += _look(counter, [(1, 150, 30, 50, False)], 1.1)
        return out + _look(counter, [(1, 150, 25, 50, False), (2, 155, 25, 46, False)], 1.2)

    assert crossings(someone_there=True) == ["in"]
    assert crossings(someone_there=False) == ["in", "in"]


def test_a_new_track_first_seen_across_the_line_takes_no_side_from_one_that_vanished():
    """Track 4 walks in and vanishes just past the line; a moment later someone of its size
    is first seen just short of the line, beyond the band on the other side, and walks in
    (TUD-Campus at 9 fps: the person behind, found as a new track). They are not track 4
    re-found, which would have had to walk back across the line: their crossing counts."""
    counter = _counter()
    out = _walk(counter, 4, np.linspace(130, 92, 10), step=0.1)
    out += counter.update(_tracks([]), 1.0)
    out += _walk(counter, 7, np.linspace(108, 60, 8), t0=1.1, step=0.1)
    assert [c.direction for c in out] == ["in", "in"]


def test_a_box_cut_short_by_someone_passing_in_front_grows_back_keeping_its_side():
    """Two people cross paths in the doorway (CAVIAR EnterExitCrossingPaths1front at 3-8
    fps): the one walking out is cut to 2/3 of their height for two looks while the other
    passes in front, then is whole again past the line. Growing back to the size they had
    a second ago is no jump, so the exit counts; growing half as tall again as anything they
    were in the last second still is."""
    def walk_out(last_height):
        counter = _counter()
        looks = [(70, 60), (80, 60), (88, 40), (94, 40), (112, last_height)]
        return sum((_look(counter, [(1, 150, y, h, False)], 0.25 * k)
                    for k, (y, h) in enumerate(looks)), [])

    assert walk_out(64) == ["out"]
    assert walk_out(95) == []
