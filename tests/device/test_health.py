"""Health documents: the figures store IT reads, valid against their schema."""

from __future__ import annotations

import json
from types import SimpleNamespace

from jsonschema import Draft202012Validator

from appliance.device.health import HealthMonitor, cpu_temperature, health_interval
from appliance.device.pipeline import StageTimes
from appliance.device.sources import SourceStats
from tests.conftest import REPO

HEALTH = Draft202012Validator(json.loads((REPO / "appliance" / "schemas" /
                                          "health-1.json").read_text()))


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
    times.frames, times.detector_runs, times.seconds["inference"] = 100, 100, 2.0
    # Started 17.3 s into a window: the first boundary only sets the baseline.
    assert health.document(1, 3, 0, now=T0 + 0.4, monotonic=0.4) is None
    times.frames, times.detector_runs, times.seconds["inference"] = 400, 250, 5.0
    stats.frames_skipped, stats.frames_dropped, stats.clock_steps = 50, 1, 1
    first = health.document(1, 3, 0, now=T0 + 60.7, monotonic=60.7)
    times.frames, times.detector_runs, times.seconds["inference"] = 700, 300, 5.5
    second = health.document(2, 0, 4, now=T0 + 120.2, monotonic=120.2)
    for document in (first, second):
        HEALTH.validate(document)
    assert first["time"] == "2027-01-15T08:01:00.000Z" and first["uptime_seconds"] == 60.0
    assert first["fps"] == 5.0 and second["fps"] == 5.0
    assert first["inference_ms"] == 20.0 and second["inference_ms"] == 10.0
    # Counted from the first boundary, so they do not tell when the process started.
    assert second["frames_processed"] == 600 and second["frames_skipped"] == 30
    assert second["frames_dropped"] == 0 and second["stream_reconnects"] == 2
    assert second["clock_steps"] == 1  # the system clock stepped once since the start
    assert (second["mqtt_connects"], second["spool_depth"], second["spool_dropped"]) == (2, 0, 4)
    # that boundary had its document
    assert health.document(2, 0, 4, now=T0 + 121, monotonic=121) is None
    health.count_refused()
    assert health.document(2, 0, 4, now=T0 + 180, monotonic=180)["messages_refused"] == 1


def test_health_says_nothing_about_who_is_in_view():
    """Two cameras run at the same 5 fps; in front of one somebody walks about, so motion
    skip lets its detector run on every frame, while the other's scene is empty and the
    detector runs every 2 s. They started at different moments inside the first window.
    Health must read the same for both."""
    documents = []
    for busy, started in ((True, 3.0), (False, 41.0)):
        health, times, stats = monitor()
        sent = []
        for step in range(int(started * 5), 200 * 5):
            now = T0 + step / 5
            if step % 300 == 0:  # a window boundary: health goes out
                sent.append(health.document(1, 0, 0, now=now, monotonic=now - T0))
            times.frames += 1
            if busy or times.frames % 10 == 0:
                times.detector_runs += 1
                times.seconds["inference"] += 0.030  # one run of the network: 30 ms
        documents.append(sent)
    busy, quiet = documents
    assert busy[0] is None and len(busy) == 3 and busy[1]["inference_ms"] == 30.0
    assert busy == quiet  # fps, inference_ms, frames, time, uptime: all the same


def test_health_goes_out_in_whole_windows():
    assert health_interval(1, 60) == 60 and health_interval(60, 60) == 60
    assert health_interval(90, 60) == 120 and health_interval(1, 2) == 2
