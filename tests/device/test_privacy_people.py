"""k counts people, not track ids: the fragments of one person's broken track count once
for the visitors and for a heatmap cell's k."""

from __future__ import annotations

from appliance.device.analytics.behaviour import Behaviour, BehaviourWindow
from appliance.device.analytics.behaviour_config import BehaviourConfig
from appliance.device.analytics.people import LINK_SECONDS
from appliance.device.camera_config import CameraConfig
from appliance.device.privacy import PrivacyConfig, protect
from tests.device.test_behaviour import FPS, ZONES, tracks, walk


def run(segments, min_people: int) -> dict:
    """Each segment: (track id, path of foot points); a gap of `gap` seconds without any
    track between segments, after which the tracker ends the previous id."""
    camera = CameraConfig("c", "x", zones=ZONES)
    config = BehaviourConfig(heatmap=(4, 3))
    behaviour = Behaviour(camera, config, 800, 600)
    window = BehaviourWindow(camera, config, 800, 600)
    t, ended = 0.0, []
    for track_id, path, gap in segments:
        for point in path:
            window.add(behaviour.update(tracks({track_id: point}, ended=ended), t, []))
            ended, t = [], t + 1 / FPS
        t += gap
        ended = [track_id]  # lost for the tracker's lost_seconds, then ended
    window.add(behaviour.update(tracks({}, ended=ended), t, []))
    window.add(behaviour.update(tracks({}), t + LINK_SECONDS + 0.1, []))
    return window.emit(min_people)


# One shopper walks left to right along the bottom of the frame; the track breaks twice
# (hidden 1.5 s behind a pillar, then a 3 s pause the detector missed), each fragment
# passing through the second of the heatmap's four bottom cells (x 200-400).
BROKEN = [(1, walk((50, 560), (250, 560), 2), 1.5),
          (2, walk((305, 560), (380, 560), 2), 3.0),
          (3, walk((380, 560), (750, 560), 3), 0.0)]


def test_one_person_in_three_fragments_is_one_visitor():
    parts = run(BROKEN, min_people=1)
    assert parts["journeys"]["visitors"] == 1


def test_one_person_in_three_fragments_cannot_meet_k_alone():
    """k = 3: three ids used to be three people, so the bottom row's cells and the
    visitor count were published about one person."""
    parts = run(BROKEN, min_people=3)
    document = {"lines": {}, **parts}
    published = protect(document, PrivacyConfig(min_count=3))
    assert published["journeys"]["visitors"] is None
    bottom = published["heatmap"]["person_seconds"].split(";")[2].split(",")
    assert bottom == ["", "", "", ""]  # every cell of the walk blanked: one person


def test_two_people_far_apart_stay_two():
    """Someone leaves at the left edge; a second later someone else appears at the right."""
    parts = run([(1, walk((400, 560), (50, 560), 2), 1.0),
                 (2, walk((750, 560), (600, 560), 2), 0.0)], min_people=1)
    assert parts["journeys"]["visitors"] == 2


def test_a_fragment_after_the_link_window_is_someone_new():
    parts = run([(1, walk((50, 560), (250, 560), 2), LINK_SECONDS + 0.5),
                 (2, walk((260, 560), (450, 560), 2), 0.0)], min_people=1)
    assert parts["journeys"]["visitors"] == 2


def test_a_track_seen_again_after_a_new_one_took_its_person_on_is_two_people():
    """Track 1 is missed for a moment, track 2 starts beside it, then 1 is seen again
    while 2 lives: they were two people, and both count."""
    camera = CameraConfig("c", "x", zones=ZONES)
    config = BehaviourConfig(heatmap=None)
    behaviour = Behaviour(camera, config, 800, 600)
    window = BehaviourWindow(camera, config, 800, 600)
    path = walk((100, 560), (300, 560), 2)
    for k, point in enumerate(path):
        t = k / FPS
        people = {1: point} if k < 10 or k > 13 else {}  # 1 missed for 0.4 s
        if k >= 12:
            people[2] = (point[0] + 20, point[1])  # 2 starts 0.2 box heights away
        window.add(behaviour.update(tracks(people), t, []))
    window.add(behaviour.update(tracks({}, ended=[1, 2]), 3.0, []))
    window.add(behaviour.update(tracks({}), 3.0 + LINK_SECONDS, []))
    assert window.emit(1)["journeys"]["visitors"] == 2
