"""Zones, shelf reach, journeys, groups and heatmap on small synthetic track sets: one
rule each (a shopper who touches a shelf and leaves, one who pays, a pair walking
together, a staff member, border jitter), then a window document end to end."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.device.analytics.behaviour import Behaviour, BehaviourWindow
from appliance.device.analytics.behaviour_config import BehaviourConfig
from appliance.device.analytics.heatmap import Heatmap
from appliance.device.analytics.people import LINK_SECONDS
from appliance.device.analytics.zones import Polygon, ZoneMembership
from appliance.device.analytics.zones_config import ZoneConfig
from appliance.device.camera_config import CameraConfig
from appliance.device.privacy import PrivacyConfig, protect
from appliance.device.track.tracker import Tracks
from appliance.device.window import WindowAggregator

FPS = 10
H = 100.0  # box height in pixels

SHELF = ZoneConfig("fruit", "shelf", ((100, 100), (300, 100), (300, 200), (100, 200)))
TILL = ZoneConfig("till", "checkout", ((500, 300), (600, 300), (600, 400), (500, 400)))
QUEUE = ZoneConfig("lane", "queue", ((400, 300), (495, 300), (495, 400), (400, 400)))
BACK = ZoneConfig("behind_till", "staff", ((610, 300), (700, 300), (700, 400), (610, 400)))
ZONES = (SHELF, TILL, QUEUE, BACK)


def tracks(people: dict[int, tuple[float, float]], ended=(), moving=True) -> Tracks:
    """Tracks whose foot points are at the given (x, y), boxes H tall."""
    ids = np.array(list(people), np.int64)
    feet = np.array(list(people.values()), np.float32).reshape(-1, 2)
    xyxy = np.c_[feet[:, 0] - 20, feet[:, 1] - H, feet[:, 0] + 20, feet[:, 1]]
    return Tracks(ids, xyxy.astype(np.float32), np.ones(len(ids), np.float32),
                  np.full(len(ids), moving, bool), tuple(ended))


def walk(a, b, seconds):
    """Foot points from a to b over `seconds`, one per frame."""
    n = max(int(seconds * FPS), 1)
    return [tuple(np.array(a) + (np.array(b) - np.array(a)) * k / n) for k in range(n + 1)]


DEFAULTS = BehaviourConfig()


def run(paths: dict[int, list], config=DEFAULTS, zones=ZONES, moving=True):
    """Feed per-person paths (lists of foot points, None when absent) through Behaviour and
    a window; returns the window's behaviour parts."""
    camera = CameraConfig("c", "x", zones=zones)
    behaviour = Behaviour(camera, config, 800, 600)
    window = BehaviourWindow(camera, config, 800, 600)
    length = max(len(p) for p in paths.values())
    for frame in range(length + 1):
        now = {i: p[frame] for i, p in paths.items() if frame < len(p) and p[frame] is not None}
        ended = [i for i, p in paths.items() if frame == len(p)]
        window.add(behaviour.update(tracks(now, ended, moving), frame / FPS, []))
    window.add(behaviour.finish(()))
    return window.emit(min_people=1)


def test_polygon_signed_distance():
    square = Polygon(np.array([[0, 0], [10, 0], [10, 10], [0, 10]]))
    d = square.distance(np.array([[5, 5], [5, 12], [-3, 5], [10, 5]], np.float64))
    assert d.tolist() == pytest.approx([5, -2, -3, 0])


def test_a_shopper_who_touches_a_shelf_and_leaves_interacts_without_checkout():
    path = walk((50, 400), (200, 230), 3) + [(200, 230)] * 30 + walk((200, 230), (50, 580), 3)
    parts = run({1: path})
    assert parts["zones"]["fruit"]["interactions"] == 1
    assert parts["journeys"]["visitors"] == 1
    assert parts["journeys"]["interacted"] == 1
    assert parts["journeys"]["interacted_without_checkout"] == 1
    assert parts["journeys"]["interacted_without_checkout_share"] == 1.0


def test_walking_past_a_shelf_is_not_an_interaction():
    parts = run({1: walk((50, 240), (400, 240), 4)})  # within reach, never stops
    assert parts["zones"]["fruit"]["interactions"] == 0
    assert parts["journeys"]["interacted"] == 0


def test_a_shopper_who_queues_and_pays_reaches_checkout_with_a_wait():
    path = (walk((50, 500), (440, 350), 3) + [(440, 350)] * 80  # 8 s in the queue
            + walk((440, 350), (550, 350), 1) + [(550, 350)] * 40 + walk((550, 350), (550, 590), 2))
    parts = run({1: path})
    assert parts["journeys"]["reached_checkout"] == 1
    lane = parts["zones"]["lane"]
    assert lane["visits"] == 1 and lane["occupancy_max"] == 1
    assert 8 <= lane["dwell"]["p50"] <= 9.5  # the wait
    assert lane["dwell"]["histogram"]["0-10"] == 1
    assert parts["zones"]["till"]["visits"] == 1


def test_a_cashier_is_staff_not_a_visitor_even_standing_still():
    cashier = [(650, 350)] * 200 + walk((650, 350), (650, 590), 1)
    shopper = walk((50, 500), (550, 350), 4) + [(550, 350)] * 30 + walk((550, 350), (50, 590), 4)
    parts = run({1: cashier, 2: shopper})
    assert parts["journeys"]["staff"] == 1
    assert parts["journeys"]["visitors"] == 1
    assert parts["zones"]["behind_till"]["visits"] == 0  # staff visits are not visitor figures


def test_a_mannequin_is_neither_visitor_nor_staff():
    parts = run({1: [(200, 150)] * 100}, moving=False)  # inside the shelf zone, never moves
    assert parts["journeys"]["visitors"] == 0 and parts["journeys"]["staff"] == 0
    assert parts["zones"]["fruit"]["visits"] == 0


def test_feet_jittering_on_a_zone_border_make_one_visit_or_none():
    config = BehaviourConfig()
    camera_zones = (SHELF,)
    membership = ZoneMembership(camera_zones, config)
    rng = np.random.default_rng(1)
    visits = []
    for frame in range(300):  # 30 s on the bottom edge of the shelf zone, +/- 5 px
        y = 200 + rng.uniform(-5, 5)
        _, ended = membership.update(tracks({1: (200, y)}), frame / FPS)
        visits += ended
    visits += membership.end([1])
    assert len(visits) <= 1


def test_a_brief_step_out_does_not_split_a_visit():
    path = walk((50, 150), (200, 150), 1) + [(200, 150)] * 30 + [(200, 230)] * 5 + \
        [(200, 150)] * 30 + walk((200, 150), (50, 580), 3)
    parts = run({1: path})
    assert parts["zones"]["fruit"]["visits"] == 1


def test_a_pair_walking_together_is_a_group_of_two():
    a = walk((50, 500), (750, 500), 10)
    b = walk((50, 540), (750, 540), 10)  # side by side, 40 px apart: 0.7 m at 1.7 m / 100 px
    stranger = walk((750, 250), (50, 250), 10)
    parts = run({1: a, 2: b, 3: stranger})
    assert parts["groups"]["sizes"]["2"] == 1
    assert parts["groups"]["sizes"]["1"] == 1
    assert parts["groups"]["accompanied"] == 2
    assert parts["groups"]["accompanied_share"] == pytest.approx(2 / 3, abs=0.001)


def test_heatmap_blanks_cells_with_too_few_people():
    heatmap = Heatmap(4, 3, 400, 300)
    heatmap.add(np.array([[50.0, 50.0], [350.0, 250.0]]), [1, 2], 2.0)
    heatmap.add(np.array([[60.0, 60.0]]), [3], 1.0)
    part, blanked = heatmap.emit(min_people=2)
    rows = [r.split(",") for r in part["person_seconds"].split(";")]
    assert rows[0][0] == "3"  # two people, 3 person-seconds
    assert rows[2][3] == ""  # one person: blanked
    assert blanked
    part, blanked = heatmap.emit(min_people=2)  # emit resets
    assert set(part["person_seconds"].replace(";", ",").split(",")) == {"0"} and not blanked


def test_per_person_state_is_dropped_when_tracks_end():
    camera = CameraConfig("c", "x", zones=ZONES)
    behaviour = Behaviour(camera, BehaviourConfig(), 800, 600)
    for frame, (x, y) in enumerate(walk((50, 500), (200, 230), 3) + [(200, 230)] * 30):
        behaviour.update(tracks({7: (x, y)}), frame / FPS, [])
    behaviour.update(tracks({}, ended=[7]), 8.0, [])
    # The person waits LINK_SECONDS after the last sighting (6.2 s) for a fragment ...
    assert behaviour.journeys.alive() != []
    behaviour.update(tracks({}), 6.2 + LINK_SECONDS + 0.1, [])
    # ... then everything about them is dropped.
    assert behaviour.journeys.alive() == [] and not behaviour.people._tracks
    assert not behaviour.shelves._stops and not behaviour.shelves._motion
    assert not any(behaviour.zones._inside)


def test_window_document_passes_the_schema_and_privacy(tmp_path):
    from appliance.device.outputs import guard

    camera = CameraConfig("c", "x", zones=ZONES)
    config = BehaviourConfig()
    behaviour = Behaviour(camera, config, 800, 600)
    windows = WindowAggregator("s", "c", [], 60, "media",
                               behaviour=BehaviourWindow(camera, config, 800, 600),
                               min_people=5)
    path = walk((50, 400), (200, 230), 3) + [(200, 230)] * 30 + walk((200, 230), (50, 580), 3)
    documents = []
    for frame, point in enumerate(path):
        t = frame / FPS
        documents += windows.add(t, [], None, behaviour.update(tracks({1: point}), t, []))
    documents += windows.flush(None, behaviour.finish((1,)))
    [document] = documents
    protected = protect(document, PrivacyConfig(min_count=5))
    guard.check("counts", protected, "s", "c")
    assert protected["journeys"]["visitors"] is None  # one person: suppressed
    assert protected["zones"]["fruit"]["dwell"]["p50"] is None
    assert "journeys.visitors" in protected["suppressed"]
    assert "heatmap.cells" in protected["suppressed"]
    noisy = protect(document, PrivacyConfig(min_count=1, epsilon=1.0))
    assert "heatmap" not in noisy and noisy["zones"]["fruit"]["occupancy_mean"] is None
    guard.check("counts", noisy, "s", "c")


def _stop_at_shelf_with_wrists(wrist_xy, checks_per_second=5):
    """A shopper stops below the shelf for 4 s; pose answers with the given wrist point."""
    config = BehaviourConfig(pose=True)
    camera = CameraConfig("c", "x", zones=ZONES)
    behaviour = Behaviour(camera, config, 800, 600)
    window = BehaviourWindow(camera, config, 800, 600)
    path = walk((50, 400), (200, 230), 3) + [(200, 230)] * 40 + walk((200, 230), (50, 580), 3)
    for frame, point in enumerate(path):
        window.add(behaviour.update(tracks({1: point}), frame / FPS, []))
        wanted = behaviour.pose_wanted()
        if wanted and frame % (FPS // checks_per_second) == 0:
            points = np.array([[wrist_xy, wrist_xy]], np.float32)
            behaviour.add_wrists(wanted, points, np.full((1, 2), 0.5, np.float32))
    window.add(behaviour.update(tracks({}, ended=[1]), len(path) / FPS, []))
    window.add(behaviour.update(tracks({}), len(path) / FPS + LINK_SECONDS, []))  # no fragment
    return window.emit(min_people=1)


def test_with_pose_a_wrist_in_the_shelf_makes_the_interaction():
    assert _stop_at_shelf_with_wrists((200, 150))["zones"]["fruit"]["interactions"] == 1


def test_with_pose_standing_by_a_shelf_without_reaching_in_is_no_interaction():
    assert _stop_at_shelf_with_wrists((200, 260))["zones"]["fruit"]["interactions"] == 0


def test_pose_budget_grants_at_most_per_second():
    from appliance.device.pipeline import PoseBudget

    budget = PoseBudget(4)
    granted = sum(budget.take(3, t / 10) for t in range(100))  # 10 s at 10 fps, 3 wanted
    assert 40 <= granted <= 44


def test_a_long_running_camera_keeps_no_whole_run_totals(models_dir):
    """Only `replay` keeps whole-run figures: in a camera process they would grow forever."""
    from appliance.device.config import Config
    from appliance.device.inference.models_config import ModelsConfig
    from appliance.device.pipeline import CameraPipeline, load_detector

    config = Config(path=None, store_id="s", cameras=(CameraConfig("c", "x", zones=ZONES),),
                    models=ModelsConfig(dir=models_dir))
    frame = np.zeros((120, 160, 3), np.uint8)
    camera = CameraPipeline(config, config.cameras[0], load_detector(config), "wall")
    camera.process(frame, 0.0)
    assert camera.behaviour_totals is None and camera.behaviour_summary() == {}
    replay = CameraPipeline(config, config.cameras[0], load_detector(config), "media",
                            keep_totals=True)
    replay.process(frame, 0.0)
    assert set(replay.behaviour_summary()) == {"zones", "journeys", "groups", "heatmap"}
