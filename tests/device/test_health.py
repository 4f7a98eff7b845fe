"""Health documents: the figures store IT reads, valid against their schema."""

from __future__ import annotations

import json
from types import SimpleNamespace

from jsonschema import Draft202012Validator

from appliance.device.health import HealthMonitor, cpu_temperature
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
    assert cpu_temperature(tmp_path) == 51.6


def test_rates_are_per_interval_counters_since_start():
    times = StageTimes()
    pipeline = SimpleNamespace(times=times, fps_cap=5.0)
    stats = SourceStats(frames_read=120, frames_skipped=20, frames_dropped=1, reconnects=2)
    monitor = HealthMonitor("shop-1", "door", pipeline, stats,
                            {"yolox_nano": {"file": "yolox_nano.onnx", "sha256": "a" * 64}})
    times.frames, times.seconds["inference"] = 100, 2.0
    first = monitor.document(mqtt_connects=1, spool_depth=3, spool_dropped=0)
    times.frames, times.seconds["inference"] = 150, 2.5
    second = monitor.document(mqtt_connects=2, spool_depth=0, spool_dropped=4)
    for document in (first, second):
        HEALTH.validate(document)
    assert first["inference_ms"] == 20.0 and second["inference_ms"] == 10.0
    assert second["frames_processed"] == 150 and second["frames_skipped"] == 20
    assert second["frames_dropped"] == 1 and second["stream_reconnects"] == 2
    assert (second["mqtt_connects"], second["spool_depth"], second["spool_dropped"]) == (2, 0, 4)
    monitor.count_refused()
    assert monitor.document(2, 0, 4)["messages_refused"] == 1
