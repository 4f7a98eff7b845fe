"""Health documents: the figures store IT reads, valid against their schema, and none that
follows who is in view."""

from __future__ import annotations

import json
import time
from itertools import repeat
from types import SimpleNamespace

from jsonschema import Draft202012Validator

from appliance.device.config import load_config
from appliance.device.health import HealthMonitor, cpu_temperature, health_interval
from appliance.device.pipeline import CameraPipeline, StageTimes, load_detector, run_frames
from appliance.device.sources import FileSource, RateCap, SourceStats
from tests.conftest import CLIPS, REPO

HEALTH = Draft202012Validator(json.loads((REPO / "appliance" / "schemas" /
                                          "health-2.json").read_text()))


def thermal_zone(root, index, kind, millidegrees):
    zone = root / f"thermal_zone{index}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(kind + "\n")
    (zone / "temp").write_text(f"{millidegrees}\n")


def test_cpu_temperature_prefers_the_cpu_zone_and_is_none_without_one(tmp_path):
    assert cpu_temperature(tmp_path / "none") is None
    thermal_zone(tmp_path, 0, "gpu-thermal", 40500)  # a Jetson has several zones
    thermal_zone(tmp_path, 1, "cpu-thermal", 51634)
    assert cpu_temperature(tmp_path) == 50.0  # to 5 degrees: a person's load moves it ~1


MODELS = {"yolox_nano": {"file": "yolox_nano.onnx", "sha256": "a" * 64}}
T0 = 1_800_000_000.0  # a multiple of 60 s


def monitor(every=60.0):
    times = StageTimes()
    stats = SourceStats(frames_read=120, frames_skipped=20, frames_dropped=1, reconnects=2)
    pipeline = SimpleNamespace(times=times, fps_cap=5.0)
    return HealthMonitor("shop-1", "door", pipeline, stats, MODELS, every), times, stats


def test_rates_are_per_interval_counters_from_the_first_boundary():
    health, times, stats = monitor()
    times.detector_runs, times.seconds["inference"] = 100, 2.0
    # Started 17.3 s into a window: the first boundary only sets the baseline.
    assert health.document(1, 3, 0, now=T0 + 0.4, monotonic=0.4) is None
    times.detector_runs, times.seconds["inference"] = 250, 5.0
    stats.frames_read, stats.frames_dropped, stats.clock_steps = 420, 1, 1
    first = health.document(1, 3, 0, now=T0 + 60.7, monotonic=60.7)
    times.detector_runs, times.seconds["inference"] = 300, 5.5
    stats.frames_read = 720
    second = health.document(2, 0, 4, now=T0 + 120.2, monotonic=120.2)
    for document in (first, second):
        HEALTH.validate(document)
    assert first["time"] == "2027-01-15T08:01:00.000Z" and first["uptime_seconds"] == 60.0
    # Frames the camera delivered a second, processed or left out by the cap alike.
    assert first["fps"] == 5.0 and second["fps"] == 5.0
    assert first["inference_ms"] == 20.0 and second["inference_ms"] == 10.0
    # Half the time for the detector on every frame: 25 and 50 frames a second, both rungs
    # of the ladder.
    assert first["capacity_fps"] == 25.0 and second["capacity_fps"] == 50.0
    # Counted from the first boundary, so they do not tell when the process started.
    assert second["frames_received"] == 600 and second["frames_dropped"] == 0
    assert "frames_processed" not in second and "frames_skipped" not in second
    assert second["stream_reconnects"] == 2
    assert second["clock_steps"] == 1  # the system clock stepped once since the start
    assert (second["mqtt_connects"], second["spool_depth"], second["spool_dropped"]) == (2, 0, 4)
    # that boundary had its document
    assert health.document(2, 0, 4, now=T0 + 121, monotonic=121) is None
    health.count_refused()
    third = health.document(2, 0, 4, now=T0 + 180, monotonic=180)
    assert third["messages_refused"] == 1
    HEALTH.validate(third)
    assert third["inference_ms"] == 0.0 and third["capacity_fps"] is None  # no run


def test_health_says_nothing_about_who_is_in_view():
    """Two cameras at 25 fps under a 5 fps cap; in front of one somebody walks about, so
    motion skip lets its detector run on every processed frame, while the other's scene
    is empty and the detector runs every 2 s. They started at different moments inside the
    first window. Health must read the same for both."""
    documents = []
    for busy, started in ((True, 3.0), (False, 41.0)):
        health, times, stats = monitor()
        sent = []
        for step in range(int(started * 25), 200 * 25):
            now = T0 + step / 25
            if step % 1500 == 0:  # a window boundary: health goes out
                sent.append(health.document(1, 0, 0, now=now, monotonic=now - T0))
            stats.frames_read += 1
            if step % 5:
                stats.frames_skipped += 1
                continue
            times.frames += 1
            if busy or times.frames % 10 == 0:
                times.detector_runs += 1
                times.seconds["inference"] += 0.030  # one run of the network: 30 ms
        documents.append(sent)
    busy, quiet = documents
    assert busy[0] is None and len(busy) == 3 and busy[1]["inference_ms"] == 30.0
    assert busy[1]["fps"] == 25.0 and busy[1]["capacity_fps"] == 15.0  # 16.7: rung 15
    assert busy == quiet  # fps, inference_ms, frames, time, uptime: all the same


class LiveClip:
    """A live camera made of real frames, 25 a second of source time, with the live
    sources' rate cap (every frame read, those not due left out), so that the adaptive rate
    can lower it. Health is asked for at each window boundary of source time, as the
    publisher asks at each boundary of wall-clock time."""

    live = True

    def __init__(self, frames):
        self.frames = frames
        self.rate = RateCap(25)
        self.stats = SourceStats()
        self.health: HealthMonitor | None = None
        self.sent: list[dict | None] = []

    def __iter__(self):
        for index, frame in enumerate(self.frames):
            timestamp = index / 25
            if index % 50 == 0:  # 2 s windows
                self.sent.append(self.health.document(1, 0, 0, now=T0 + timestamp,
                                                      monotonic=timestamp))
            self.stats.frames_read += 1
            if not self.rate.due(timestamp):
                self.stats.frames_skipped += 1
                continue
            yield frame, timestamp


SLOW_RUN = 0.5  # seconds added to each detector run: a board some 20 times too slow


def test_a_board_that_cannot_keep_up_gives_the_same_health_busy_or_empty(
        write_config, monkeypatch):
    """The real pipeline on a real clip, with motion skip and the adaptive rate on, on a
    board far too slow for its 25 fps camera (each detector run takes half a second more):
    a shopper walking through the scene, or the same scene empty and still. Load
    figures in health must not tell them apart. Before, the cap followed each frame's whole
    time (the still scene's frames cost a thumbnail, so its cap went back up to 25 while
    the busy one's stayed low), and `fps` counted the frames processed."""
    monkeypatch.setattr("appliance.device.health.cpu_temperature", lambda: None)
    config = load_config(write_config(window_seconds=2, performance={
        "decode_thread": False, "adaptive_rate": True, "motion_skip": {"enabled": True}}))
    clip = str(CLIPS / "OneLeaveShop1front.mpg")
    # Its frame 50: nobody in view (no detection above the tracker's high score).
    empty = next(frame for index, (frame, _) in enumerate(FileSource(clip)) if index == 50)
    scenes = {"busy": (frame for frame, _ in FileSource(clip)), "still": repeat(empty, 295)}
    health_by_scene, runs = {}, {}
    for scene, frames in scenes.items():
        detector = load_detector(config)
        run = detector.backend.run

        def slow_run(tensor, run=run):
            outputs = run(tensor)
            time.sleep(SLOW_RUN)
            return outputs

        detector.backend.run = slow_run
        pipeline = CameraPipeline(config, config.cameras[0], detector, "wall")
        source = LiveClip(frames)
        source.health = HealthMonitor("shop-1", "front", pipeline, source.stats, MODELS, 2.0)
        run_frames(pipeline, source, lambda _document: None)
        health_by_scene[scene] = [d for d in source.sent if d is not None]
        runs[scene] = pipeline.times.detector_runs
    busy, still = health_by_scene["busy"], health_by_scene["still"]
    assert len(busy) == 5 and runs["busy"] > 1.5 * runs["still"]  # the busy one ran more
    for document in busy + still:
        HEALTH.validate(document)
        assert SLOW_RUN * 1000 < document["inference_ms"] < SLOW_RUN * 1000 + 150
        assert document["fps"] == 25.0 and document["fps_cap"] == 1.0
        assert document["capacity_fps"] == 1.0  # the board cannot keep up with 25 fps
    # Every figure the same, but inference_ms: a measured time (its noise is not people).
    assert [dict(d, inference_ms=None) for d in busy] == \
        [dict(d, inference_ms=None) for d in still]


def test_health_goes_out_in_whole_windows():
    assert health_interval(1, 60) == 60 and health_interval(60, 60) == 60
    assert health_interval(90, 60) == 120 and health_interval(1, 2) == 2
