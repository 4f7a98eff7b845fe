"""The pixel worker: one camera's frames in, window documents out, with no network.

`shopper-edge run` (the publisher) starts one per camera as
`python -m appliance.device.worker --config F --camera C [--isolate] [--control-fd N]`.
It isolates itself first (appliance/device/isolation.py: before any import that starts
threads): no network, then no file it may create or write and no core dump. Then it runs
source -> detect -> track -> count -> window -> privacy, and writes JSON lines to the
hand-over pipe (its standard output when it started): each closed window
(`shopper.counts/2`, guard-checked) and its progress (`shopper.worker/1`) at least every
2 s while the frame loop or the reconnect loop turns: the publisher's watchdog heartbeat.
Errors are one line on standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

PROGRESS_SECONDS = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shopper-edge worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--camera", required=True)
    parser.add_argument("--isolate", action="store_true")
    parser.add_argument("--control-fd", type=int)
    parser.add_argument("--realtime", action="store_true", help="pace a file source")
    args = parser.parse_args(argv)
    # The hand-over keeps the pipe; anything a library prints goes to the log instead.
    handoff = os.fdopen(os.dup(1), "w", buffering=1, encoding="ascii")
    os.dup2(2, 1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"shopper-edge: {args.camera}: %(message)s")

    from appliance.errors import ApplianceError

    try:
        from appliance.device import isolation

        if args.isolate:
            isolation.enter_empty_network_namespace()
        from appliance.device.config import load_config  # starts no thread

        config = load_config(args.config)
        camera = config.camera(args.camera)
        # From here on this process can neither write a file nor dump its memory.
        isolation.confine_pixel_worker(isolation.camera_devices(camera.source,
                                                                camera.decoder))
        return run(args, handoff, config, camera)
    except ApplianceError as error:
        print(f"shopper-edge: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run(args, handoff, config, camera) -> int:
    import signal
    import socket
    import threading

    from appliance.device.isolation import CameraRelay, camera_address, via_loopback
    from appliance.device.pipeline import (
        CameraPipeline,
        load_demographics,
        load_detector,
        load_pose,
        run_frames,
    )
    from appliance.device.sources import open_source

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    source_url = camera.source
    if camera_address(camera.source) and args.control_fd is not None:
        relay = CameraRelay(socket.socket(fileno=args.control_fd))
        source_url = via_loopback(camera.source, relay.port)
    detector = load_detector(config)
    source = open_source(source_url, camera.fps, stop, label=camera.source,
                         decoder=camera.decoder,
                         realtime=args.realtime)
    pipeline = CameraPipeline(config, camera, detector, source.clock,
                              load_demographics(config), load_pose(config),
                              wall_clock=source.wall_clock)
    out = Handoff(handoff, config.store_id, camera.id, pipeline, source.stats)
    out.progress(force=True)  # ready: the publisher tells systemd
    run_frames(pipeline, source, out.window, on_frame=lambda _t: out.progress())
    out.progress(force=True)
    return 0


class Handoff:
    """Writes guard-checked lines to the publisher."""

    def __init__(self, stream, store_id: str, camera_id: str, pipeline, source_stats):
        self.stream = stream
        self.store_id, self.camera_id = store_id, camera_id
        self.pipeline = pipeline
        self.source_stats = source_stats
        self._last = 0.0
        self.windows_refused = 0  # told to the publisher, which counts them in health

    def window(self, document: dict) -> None:
        from appliance.device.outputs import guard

        try:
            self._write(guard.check("counts", document, self.store_id, self.camera_id))
        except guard.GuardRefused as error:
            self.windows_refused += 1
            print(f"shopper-edge: {self.camera_id}: {error}", file=sys.stderr)
            self.progress(force=True)  # counted in health at once

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_SECONDS:
            return
        self._last = now
        from appliance.device.outputs import guard

        stats, times = self.source_stats, self.pipeline.times
        self._write(guard.check("worker", {
            "schema": "shopper.worker/1", "store_id": self.store_id,
            "camera_id": self.camera_id, "frames": times.frames,
            "detector_runs": times.detector_runs, "windows_refused": self.windows_refused,
            "inference_seconds": round(times.seconds["inference"], 6),
            "frames_read": stats.frames_read, "frames_skipped": stats.frames_skipped,
            "frames_dropped": stats.frames_dropped, "reconnects": stats.reconnects,
            "clock_steps": stats.clock_steps,
            "fps_cap": self.pipeline.fps_cap,
        }, self.store_id, self.camera_id))

    def _write(self, payload: bytes) -> None:
        try:
            self.stream.write(payload.decode("ascii") + "\n")
        except BrokenPipeError:
            raise SystemExit(1) from None  # the publisher is gone: nothing to report to


if __name__ == "__main__":
    sys.exit(main())
