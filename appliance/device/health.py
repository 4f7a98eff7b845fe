"""Health documents (`shopper.health/1`): how one camera process is doing, for store IT.

Rates (fps, inference ms) are over the interval since the previous document; counters are
since the process started, except `spool_dropped`, which lives in the spool file.
"""

from __future__ import annotations

import time
from pathlib import Path

from appliance import __version__
from appliance.messages import iso

SCHEMA = "shopper.health/1"
THERMAL = Path("/sys/class/thermal")


class HealthMonitor:
    def __init__(self, store_id: str, camera_id: str, pipeline, source_stats,
                 models: dict[str, dict[str, str]]):
        self.store_id = store_id
        self.camera_id = camera_id
        self.pipeline = pipeline  # read only: frames and stage seconds
        self.source_stats = source_stats
        self.models = models
        self.refused = 0  # outgoing messages the guard refused (counted by the outputs)
        self._started = time.monotonic()
        self._last = (self._started, 0, 0.0)

    def count_refused(self) -> None:
        self.refused += 1

    def document(self, mqtt_connects: int, spool_depth: int, spool_dropped: int) -> dict:
        now = time.monotonic()
        frames = self.pipeline.times.frames
        inference = self.pipeline.times.seconds["inference"]
        last_time, last_frames, last_inference = self._last
        self._last = (now, frames, inference)
        new_frames = frames - last_frames
        return {
            "schema": SCHEMA,
            "store_id": self.store_id,
            "camera_id": self.camera_id,
            "time": iso(time.time()),
            "software_version": __version__,
            "uptime_seconds": round(now - self._started, 1),
            "fps": round(new_frames / (now - last_time), 2) if now > last_time else 0.0,
            "inference_ms": round(1000 * (inference - last_inference) / new_frames, 2)
            if new_frames else 0.0,
            "fps_cap": self.pipeline.fps_cap,
            "frames_processed": frames,
            "frames_skipped": self.source_stats.frames_skipped,
            "frames_dropped": self.source_stats.frames_dropped,
            "stream_reconnects": self.source_stats.reconnects,
            "clock_steps": getattr(self.source_stats, "clock_steps", 0),
            "mqtt_connects": mqtt_connects,
            "spool_depth": spool_depth,
            "spool_dropped": spool_dropped,
            "messages_refused": self.refused,
            "cpu_temp_c": cpu_temperature(),
            "models": self.models,
        }


def cpu_temperature(thermal: Path = THERMAL) -> float | None:
    """Degrees Celsius of the CPU's thermal zone (Raspberry Pi, Jetson), or None."""
    zones = sorted(thermal.glob("thermal_zone*"))
    # Prefer a zone named for the CPU (Jetson has several); a Pi has just one.
    zones.sort(key=lambda z: "cpu" not in _read(z / "type").lower())
    for zone in zones:
        raw = _read(zone / "temp")
        if raw.strip().lstrip("-").isdigit():
            return round(int(raw) / 1000, 1)
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
