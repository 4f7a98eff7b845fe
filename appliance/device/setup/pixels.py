"""The setup's pixel process: reads the camera for the setup page, under the same rules as
the pixel worker (appliance/device/worker.py): with `privacy.isolate_pixels` it moves into an
empty network namespace first and reaches a network camera only through the relay; then it
confines itself (no file it may create or write, no core dump: isolation.confine_pixel_worker).

  python -m appliance.device.setup.pixels --config F --camera C --task plate|check
         [--isolate] [--control-fd N] [--plate-seconds S] [--samples N] [--realtime]

It writes JSON lines to its standard output, read by the setup server:
- task `plate`: {"frame": {"size": [w, h], "detector_input": [w, h], "decode_warning": ...}}
  (check-config's warning when the stream is more than the board decodes, or null), then
  {"status": ...} while it samples, and {"plate": base64 PNG, ...} once a plate passed the
  detector's check: the one image that ever leaves it, and only then.
- task `check` (the walk test; the drawing comes as JSON on standard input): {"check": ...}
  with counts, occupancy and frame rate, at most every 0.3 s and at the end. Its windows are
  dropped: nothing is published.
A problem is {"error": "one line"} and exit status 2.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time

REBUILD_EVERY = 5  # live camera, plate refused: rebuild after this many new views
CHECK_EVERY = 0.3  # seconds between walk-test updates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shopper-edge setup pixels")
    parser.add_argument("--config", required=True)
    parser.add_argument("--camera", required=True)
    parser.add_argument("--task", choices=("plate", "check"), required=True)
    parser.add_argument("--isolate", action="store_true")
    parser.add_argument("--control-fd", type=int)
    parser.add_argument("--plate-seconds", type=float, default=60)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--realtime", action="store_true")
    args = parser.parse_args(argv)
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="ascii")
    os.dup2(2, 1)  # what a library prints goes to the terminal, not into the hand-over

    def send(**message) -> None:
        out.write(json.dumps(message) + "\n")

    from appliance.errors import ApplianceError

    try:
        from appliance.device import isolation

        if args.isolate:
            isolation.enter_empty_network_namespace()  # before anything starts a thread
        from appliance.device.config import load_config  # starts no thread

        camera = load_config(args.config).camera(args.camera)
        # It holds frames, as the pixel worker does: from here on it can neither create or
        # write a file nor dump its memory (setup runs as root, which the unit never is).
        isolation.confine_pixel_worker(isolation.camera_devices(camera.source, camera.decoder))
        drawing = json.loads(sys.stdin.read() or "null") if args.task == "check" else None
        return (plate if args.task == "plate" else check)(args, send, drawing)
    except ApplianceError as error:
        send(error=str(error))
        return 2
    except (KeyboardInterrupt, BrokenPipeError):
        return 130


def _source(args, camera, max_fps, stop):
    import signal
    import socket

    from appliance.device.isolation import CameraRelay, camera_address, via_loopback
    from appliance.device.sources import open_source

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    url = camera.source
    if camera_address(camera.source) and args.control_fd is not None:
        relay = CameraRelay(socket.socket(fileno=args.control_fd))
        url = via_loopback(camera.source, relay.port)
    return open_source(url, max_fps, stop, label=camera.source, decoder=camera.decoder,
                       realtime=args.realtime and args.task == "check", full_size=True)


def _decode_warning(source) -> str | None:
    """check-config's warning when the stream is more than this board decodes in hardware
    (decode_budget.py); V4L2 and the Pi camera have no codec to judge."""
    from appliance.device.decode_budget import stream_warning, this_board

    if not hasattr(source, "codec"):
        return None
    return stream_warning(this_board(), source.codec, *source.source_size)


def plate(args, send, _drawing) -> int:
    import threading

    from appliance.device.config import load_config
    from appliance.device.pipeline import load_detector
    from appliance.device.setup.plate import PlateBuilder, encode_png, people_on
    from appliance.errors import redact_url

    config = load_config(args.config)
    camera = config.camera(args.camera)
    detector = load_detector(config)
    stop = threading.Event()
    source = _source(args, camera, None, stop)
    duration = getattr(source, "duration", None)
    span = args.plate_seconds if source.live or not duration else \
        min(args.plate_seconds, duration)
    source.cap_fps = args.samples / span  # only the sampled frames are decoded
    builder = PlateBuilder(detector, args.samples, tiles=camera.tiles)

    def status(state: str, message: str) -> None:
        send(status={"state": state, "message": message, "samples": len(builder),
                     "needed": args.samples})

    def attempt() -> bool:
        made = builder.build()
        found = people_on(made, detector, camera.tiles, config.tracker.high_score)
        if len(found):
            status("waiting", f"a person is still visible ({len(found)} found on the view): "
                   "waiting for them to move on")
            return False
        builder.clear()  # the views die here; only the plate leaves, to the installer
        send(plate=base64.b64encode(encode_png(made)).decode("ascii"), samples=made.samples,
             blanked=made.blanked)
        return True

    added = 0
    for frame, _timestamp in source:
        if frame is None:  # the camera is down for now
            continue
        builder.add(frame)
        del frame
        added += 1
        if added == 1:
            send(frame={"size": builder.frame_size, "detector_input": detector.input_size,
                        "decode_warning": _decode_warning(source)})
        status("collecting", "collecting views of the scene")
        if len(builder) == args.samples and \
                (added == args.samples or added % REBUILD_EVERY == 0) and attempt():
            return 0
    if stop.is_set():
        return 0
    if len(builder) < 3:
        send(error=f"{redact_url(camera.source)}: too few frames for a view of the scene "
                   f"({len(builder)})")
        return 2
    if not attempt():
        send(error="a person is in the same place in every view of this clip: no "
                   "people-free view can be made")
        return 2
    return 0


def check(args, send, request) -> int:
    import threading
    from dataclasses import replace
    from pathlib import Path

    from appliance.device.pipeline import CameraPipeline, load_detector, run_frames
    from appliance.device.setup.config_file import DeviceYaml
    from appliance.device.setup.walk import FirstSeenOnLine

    # The drawing was validated by the server; the same parser builds it again here.
    config = DeviceYaml(Path(args.config), args.camera).validate(request["section"])
    camera = config.camera(args.camera)
    config = replace(config, performance=replace(config.performance, adaptive_rate=False))
    stop = threading.Event()
    source = _source(args, camera, camera.fps, stop)
    pipeline = CameraPipeline(config, camera, load_detector(config), source.clock,
                              wall_clock=source.wall_clock)
    watch = pipeline.tracker = FirstSeenOnLine(pipeline.tracker, camera, config.counting,
                                               tuple(request["frame_size"]))
    started = time.monotonic()
    zones_max = {z.name: 0 for z in camera.zones}
    last = 0.0

    def report(_timestamp: float = 0.0, force: bool = False) -> None:
        nonlocal last
        zones = pipeline.behaviour.zones.occupancy if pipeline.behaviour else {}
        for name, now in zones.items():
            zones_max[name] = max(zones_max[name], now)
        if not force and time.monotonic() - last < CHECK_EVERY:
            return
        last = time.monotonic()
        elapsed = max(last - started, 1e-6)
        send(check={"frames": pipeline.times.frames, "seconds": round(elapsed, 1),
                    "fps": round(pipeline.times.frames / elapsed, 1),
                    "lines": pipeline.totals(),
                    "zones": {n: {"now": zones.get(n, 0), "max": m}
                              for n, m in zones_max.items()},
                    "advice": watch.advice()})

    report(force=True)
    run_frames(pipeline, source, lambda _document: None, report)
    report(force=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
