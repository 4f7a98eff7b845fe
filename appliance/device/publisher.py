"""The publisher: the half of `shopper-edge run` that talks to the network and never sees a
pixel. It starts one pixel worker per camera (appliance/device/worker.py), reads their hand-over
pipes line by line, admits only guard-checked documents (windows go on to the outputs,
progress lines feed health and the systemd watchdog), dials the camera for a worker's
relay, and tells systemd READY once every worker runs and WATCHDOG while they all turn.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.device import sd_notify
from appliance.device.camera_config import CameraConfig
from appliance.device.config import Config
from appliance.device.isolation import CameraDialer, camera_address
from appliance.device.outputs import guard

log = logging.getLogger("shopper_edge.publisher")

MAX_LINE = 16384  # a window is about 2 kB; anything longer is not a document of ours
# Under the unit's TimeoutStopSec=30: a worker that ignores SIGTERM is killed by us, and the
# spool still closes cleanly, before systemd kills everything (seen on the twin).
STOP_SECONDS = 20.0


@dataclass
class _Times:
    frames: int = 0
    detector_runs: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"inference": 0.0})


@dataclass
class _SourceCounters:
    frames_read: int = 0
    frames_skipped: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    clock_steps: int = 0


@dataclass
class WorkerStats:
    """The worker's last progress, shaped as health reads a pipeline and a source (kept
    here rather than imported, so this process never loads the video and model stack)."""

    times: _Times = field(default_factory=_Times)
    source: _SourceCounters = field(default_factory=_SourceCounters)
    fps_cap: float | None = None


class Worker:
    def __init__(self, config: Config, camera: CameraConfig, open_outputs: Callable,
                 realtime: bool = False):
        self.camera = camera
        self.store_id = config.store_id
        self.stats = WorkerStats()
        self.outputs, self.mqtt = open_outputs(camera, self.stats)
        self.ready = threading.Event()
        self.heartbeat = time.monotonic()
        self._windows_refused = 0
        command = [sys.executable, "-m", "appliance.device.worker", "--config", str(config.path),
                   "--camera", camera.id]
        if config.privacy.isolate_pixels:
            command.append("--isolate")
        if realtime:
            command.append("--realtime")
        pass_fds: tuple[int, ...] = ()
        dialer_end = None
        # An isolated worker reaches its network camera only through this relay; one that is
        # not isolated opens the camera itself (no listening socket on the host).
        if config.privacy.isolate_pixels and camera_address(camera.source):
            dialer_end, worker_end = socket.socketpair()
            command += ["--control-fd", str(worker_end.fileno())]
            pass_fds = (worker_end.fileno(),)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, pass_fds=pass_fds)
        if dialer_end is not None:
            worker_end.close()
            CameraDialer(dialer_end, camera.source).start()
        self._reader = threading.Thread(target=self._read, name=f"handoff-{camera.id}",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.process.stdout
        while line := stream.readline(MAX_LINE):
            if not line.endswith(b"\n"):
                self._refuse("a line longer than any document")
                while (rest := stream.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                    pass
                continue
            try:
                self._handle(line)
            except Exception as error:  # the pipe must keep draining, whatever failed
                log.error("%s: handling a line from the pixel worker failed: %s: %s",
                          self.camera.id, type(error).__name__, error)

    def _handle(self, line: bytes) -> None:
        try:
            document = json.loads(line)
        except ValueError:
            self._refuse("not JSON")
            return
        kind = document.get("schema") if isinstance(document, dict) else None
        if kind == "shopper.counts/2":
            self.outputs.write(document)  # the guard checks it again, on this side
        elif kind == "shopper.worker/1":
            try:
                guard.check("worker", document, self.store_id, self.camera.id)
            except guard.GuardRefused as error:
                self._refuse(str(error))
                return
            times, source = self.stats.times, self.stats.source
            times.frames, times.detector_runs = document["frames"], document["detector_runs"]
            times.seconds["inference"] = document["inference_seconds"]
            for name in ("frames_read", "frames_skipped", "frames_dropped", "reconnects",
                         "clock_steps"):
                setattr(source, name, document[name])
            self.stats.fps_cap = document["fps_cap"]
            for _ in range(document["windows_refused"] - self._windows_refused):
                self._count_refused()  # the worker's guard refused a window: never silent
            self._windows_refused = document["windows_refused"]
            self.heartbeat = time.monotonic()
            self.ready.set()
        else:
            self._refuse("unknown document")

    def _count_refused(self) -> None:
        self.outputs.refused += 1
        if self.outputs.on_refused:
            self.outputs.on_refused()

    def _refuse(self, why: str) -> None:
        self._count_refused()
        log.error("%s: refused a line from the pixel worker: %s", self.camera.id, why)

    def finish(self) -> None:
        self._reader.join(timeout=10)


class Publisher:
    def __init__(self, config: Config, cameras: list[CameraConfig], open_outputs: Callable,
                 realtime: bool = False):
        self.config = config
        self.realtime = realtime
        self.cameras = cameras
        self.open_outputs = open_outputs
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> int:
        workers = [Worker(self.config, camera, self.open_outputs, self.realtime)
                   for camera in self.cameras]
        watchdog = sd_notify.watchdog_seconds()
        told_ready, last_ping = False, 0.0
        failed: int | None = None
        while not self._stopping.is_set():
            codes = [w.process.poll() for w in workers]
            bad = [(w, c) for w, c in zip(workers, codes, strict=True) if c not in (None, 0)]
            if bad:
                failed = self._report_exit(*bad[0])
                break
            if all(c is not None for c in codes):
                break  # every source ended (files)
            if not told_ready and all(w.ready.is_set() for w in workers):
                sd_notify.notify("READY=1")
                told_ready = True
            now = time.monotonic()
            if watchdog and told_ready and now - last_ping >= watchdog / 4 and \
                    all(now - w.heartbeat < watchdog / 2 for w in workers
                        if w.process.poll() is None):
                sd_notify.notify("WATCHDOG=1")  # every frame loop turned recently
                last_ping = now
            self._stopping.wait(0.5)
        sd_notify.notify("STOPPING=1")
        for w in workers:
            if w.process.poll() is None:
                w.process.send_signal(signal.SIGTERM)  # it closes its open window first
        for w in workers:
            try:
                w.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait()
            w.finish()
            if w.mqtt is not None:
                w.mqtt.close()
        if failed is None:
            bad = [(w, w.process.returncode) for w in workers
                   if w.process.returncode not in (0, -signal.SIGTERM)]
            if bad and not self._stopping.is_set():
                failed = self._report_exit(*bad[0])
        return failed or 0

    @staticmethod
    def _report_exit(worker: Worker, code: int) -> int:
        if code < 0:
            log.error("%s: the pixel worker died (signal %d)", worker.camera.id, -code)
            return 1
        return code  # it printed its own one-line error
