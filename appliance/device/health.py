"""Health documents (`shopper.health/2`): how one camera process is doing, for store IT.

Health must not show who is in view at a finer grain than the counts do (one window, at
least k people), nor place the start or stop of the camera inside a window:

- It goes out at wall-clock multiples of whole windows (`outputs.mqtt.health_seconds`
  rounded up to whole windows), and its `time` is that boundary.
- Its figures count from the first such boundary after start (the first boundary gives no
  document), so neither its counters nor `uptime_seconds` tell when inside a window the
  process started; no document is sent on stop, for the same reason about the stop.
- Its load figures do not follow people. `fps` and `frames_received` count the frames the
  camera delivered, processed or left out by the rate cap alike: they follow the camera and
  the cap. The split into frames processed and skipped is not sent (health/1 sent it: on a
  board too slow for its camera with motion skip on, it followed the load of the people in
  view). `inference_ms` is per detector run, not per frame (with motion skip the detector
  runs only while something moves; one run costs the same whoever is in the picture), and
  `capacity_fps`, the rate at which the board could run the detector on every frame, comes
  from it. `fps_cap` comes from the same per-run time (sources/adaptive.py).
- `cpu_temp_c` is rounded to 5 degrees: the load of a person in view moves it by about a
  degree; throttling (80-85 degrees) still shows.

A step of the system clock (time sync on a board without a real-time clock, or set back by
hand) moves the boundaries already passed with it, in whole intervals: rates and uptime go
on measuring elapsed time, and the next boundary of the new time gets its document.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from appliance import __version__
from appliance.device.capacity import sustainable_fps
from appliance.device.clock import WallClock
from appliance.messages import iso

SCHEMA = "shopper.health/2"
THERMAL = Path("/sys/class/thermal")
TEMPERATURE_STEP = 5.0


def health_interval(health_seconds: float, window_seconds: float) -> float:
    """Seconds between health documents: `health_seconds` rounded up to whole windows."""
    return window_seconds * max(1, math.ceil(health_seconds / window_seconds - 1e-9))


class HealthMonitor:
    def __init__(self, store_id: str, camera_id: str, pipeline, source_stats,
                 models: dict[str, dict[str, str]], every: float = 60.0):
        self.store_id = store_id
        self.camera_id = camera_id
        self.pipeline = pipeline  # read only: frames, detector runs and stage seconds
        self.source_stats = source_stats
        self.models = models
        self.every = every  # seconds between documents, whole windows
        self.refused = 0  # outgoing messages the guard refused (counted by the outputs)
        self._base: tuple | None = None  # counters at the first boundary
        self._last: tuple | None = None  # counters at the previous document
        self._offset: float | None = None  # wall clock minus monotonic clock, last seen

    def count_refused(self) -> None:
        self.refused += 1

    def _follow_clock(self, offset: float) -> None:
        if self._offset is not None and self._base is not None and \
                abs(offset - self._offset) > WallClock.STEP_SECONDS:
            step = round((offset - self._offset) / self.every) * self.every
            self._base = (self._base[0] + step, *self._base[1:])
            self._last = (self._last[0] + step, *self._last[1:])
        self._offset = offset

    def _counters(self, boundary: float) -> tuple:
        times, stats = self.pipeline.times, self.source_stats
        return (boundary, stats.frames_read, times.detector_runs, times.seconds["inference"],
                stats.frames_dropped)

    def document(self, mqtt_connects: int, spool_depth: int, spool_dropped: int,
                 now: float | None = None, monotonic: float | None = None) -> dict | None:
        """The document for the boundary just passed; None at the first boundary (figures
        count from there) and when this boundary already had its document."""
        now = time.time() if now is None else now
        self._follow_clock(now - (time.monotonic() if monotonic is None else monotonic))
        boundary = math.floor(now / self.every) * self.every
        counters = self._counters(boundary)
        if self._base is None:
            self._base = self._last = counters
            return None
        if boundary <= self._last[0]:
            return None
        (_, received, runs, inference, dropped), last = counters, self._last
        self._last = counters
        new_runs = runs - last[2]
        run_seconds = (inference - last[3]) / new_runs if new_runs else None
        return {
            "schema": SCHEMA,
            "store_id": self.store_id,
            "camera_id": self.camera_id,
            "time": iso(boundary),
            "software_version": __version__,
            "uptime_seconds": round(boundary - self._base[0], 1),
            "fps": round((received - last[1]) / (boundary - last[0]), 2),
            "frames_received": received - self._base[1],
            "frames_dropped": dropped - self._base[4],
            "inference_ms": round(1000 * run_seconds, 2) if new_runs else 0.0,
            "capacity_fps": sustainable_fps(run_seconds) if new_runs else None,
            "fps_cap": self.pipeline.fps_cap,
            "stream_reconnects": self.source_stats.reconnects,
            "clock_steps": self.source_stats.clock_steps,
            "mqtt_connects": mqtt_connects,
            "spool_depth": spool_depth,
            "spool_dropped": spool_dropped,
            "messages_refused": self.refused,
            "cpu_temp_c": cpu_temperature(),
            "models": self.models,
        }


def cpu_temperature(thermal: Path = THERMAL) -> float | None:
    """Degrees Celsius of the CPU's thermal zone (Raspberry Pi, Jetson) to the nearest 5,
    or None."""
    zones = sorted(thermal.glob("thermal_zone*"))
    # Prefer a zone named for the CPU (Jetson has several); a Pi has just one.
    zones.sort(key=lambda z: "cpu" not in _read(z / "type").lower())
    for zone in zones:
        raw = _read(zone / "temp")
        if raw.strip().lstrip("-").isdigit():
            return TEMPERATURE_STEP * round(int(raw) / 1000 / TEMPERATURE_STEP)
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
