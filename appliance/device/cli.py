"""The `shopper-edge` command: run, replay, check-config, setup, privacy reports, models.

Every user error (bad file, bad config, bad model, unreachable camera) is printed as one
line `shopper-edge: error: ...` with exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import signal
import sys
import time
from pathlib import Path

from appliance import __version__
from appliance.commands import Parser, describe, run_command


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), argv)


def _add_lab_commands(sub) -> None:
    """`eval` and `bench` are lab tooling: there in a development install, absent from the
    device wheel (which does not carry appliance.lab), so a device lists neither."""
    if importlib.util.find_spec("appliance.lab") is not None:
        from appliance.lab.cli import add_commands

        add_commands(sub)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="shopper-edge", description=describe(__doc__))
    parser.add_argument("--version", action="version", version=f"shopper-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-config", help="validate a device config without running")
    p.add_argument("file")
    p.add_argument("--offline", action="store_true",
                   help="on a workstation: every rule, but not the device's own files "
                   "(absolute paths: secrets, certificates, the models directory)")
    p.add_argument("--board", choices=("pi4", "pi5", "jetson", "other"),
                   help="judge each camera's stream against this board's decoders "
                   "(default: this machine's)")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("privacy-report",
                       help="what this config sends, stores and infers (from the schemas)")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_privacy_report)

    p = sub.add_parser("privacy-notice",
                       help="a plain-language notice for the shop door (from the config)")
    p.add_argument("--config", required=True)
    p.add_argument("--lang", default="en", help="language (en)")
    p.add_argument("--format", choices=("markdown", "html"), default="markdown",
                   help="markdown (default) or a printable HTML page")
    p.set_defaults(func=cmd_privacy_notice)

    p = sub.add_parser("run", help="run the device's cameras until stopped")
    p.add_argument("--config", required=True)
    p.add_argument("--camera", help="run only this camera id (one process per camera)")
    p.add_argument("--realtime", action="store_true",
                   help="play file sources at their own speed, like live cameras")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("replay", help="process a recorded clip as fast as possible")
    p.add_argument("video")
    p.add_argument("--config", required=True)
    p.add_argument("--camera", help="camera id whose geometry applies (default: the first)")
    p.add_argument("--windows", metavar="FILE",
                   help="also write the window documents as JSON lines to FILE")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--realtime", action="store_true",
                   help="pace the clip at its own speed, like a live camera")
    p.add_argument("--wait-broker", type=float, default=30.0, metavar="SECONDS",
                   help="with outputs.mqtt: at the end, wait this long for the broker to take "
                        "the spooled windows (default 30); what is left stays spooled")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("setup", help="the installer's setup page for one camera: draw lines "
                       "and zones on a people-free view, save, walk test")
    p.add_argument("--config", required=True)
    p.add_argument("--camera", required=True)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: reach it with ssh -L)")
    p.add_argument("--port", type=int, default=8090, help="default 8090; 0: any free port")
    p.add_argument("--idle-minutes", type=float, default=15,
                   help="stop after this long without a request (default 15)")
    p.add_argument("--plate-seconds", type=float, default=60,
                   help="sample the people-free view over this long (default 60)")
    p.add_argument("--report-dir", default=".",
                   help="where the walk test's JSON report goes (default: here)")
    p.add_argument("--realtime", action="store_true",
                   help="walk test on a file source: play it at its own pace")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("models", help="list, fetch and verify model files")
    msub = p.add_subparsers(dest="models_command", required=True)
    m = msub.add_parser("fetch", help="copy or download models from a mirror and verify them")
    m.add_argument("--from", dest="mirror", required=True, help="mirror folder or http(s) URL")
    m.add_argument("--dir", default="var/models", help="models directory (default var/models)")
    m.add_argument("names", nargs="*", help="models to fetch (default: all in the manifest)")
    m.set_defaults(func=cmd_models_fetch)
    m = msub.add_parser("verify", help="check every model file in a directory")
    m.add_argument("--dir", default="var/models")
    m.set_defaults(func=cmd_models_verify)
    m = msub.add_parser("list", help="print the manifest")
    m.set_defaults(func=cmd_models_list)

    _add_lab_commands(sub)
    return parser


def cmd_check_config(args) -> int:
    from appliance.device.config import load_config
    from appliance.device.limits import check_limits

    config = load_config(args.file, device_files=not args.offline)
    check_limits(config)
    if args.offline:
        checked_models = "models not checked (--offline)"
    else:
        checked_models = f"models verified in {_verify_models(config)}"
    cameras = ", ".join(f"{c.id} ({len(c.lines)} lines, {len(c.zones)} zones)"
                        for c in config.cameras)
    print(f"{args.file}: OK: store {config.store_id}, cameras: {cameras}; {checked_models}")
    if config.unchecked:
        print(f"{args.file}: not checked here (files of the device): "
              f"{'; '.join(config.unchecked)}")
    for line in _stream_warnings(config, args.board, args.offline):
        print(f"{args.file}: warning: {line}")
    return 0


def _stream_warnings(config, board: str | None, offline: bool) -> list[str]:
    """Each camera stream that costs the board more to decode than it should (ffprobe);
    --offline probes files only (the cameras are on the store's network)."""
    from appliance.device.decode_budget import stream_warning, this_board
    from appliance.device.sources.ffprobe import probe
    from appliance.errors import SourceError

    board = board or this_board()
    warnings = []
    for i, camera in enumerate(config.cameras):
        if camera.source.isdigit() or camera.source.startswith(("/dev/video", "picamera")) \
                or (offline and "://" in camera.source):
            continue
        try:
            stream = probe(camera.source, camera.source)
        except SourceError as error:
            warnings.append(f"cameras[{i}] ({camera.id}): not probed: {error}")
            continue
        line = stream_warning(board, stream["codec"], stream["width"], stream["height"])
        if line:
            warnings.append(f"cameras[{i}] ({camera.id}): {line}")
    return warnings


def _verify_models(config) -> Path:
    """Every model this config loads is in its models directory with its sha256, as the
    camera's start will check: a missing or wrong file fails here, not at run."""
    from appliance.device.pipeline import model_path

    names = [config.models.detector]
    if config.demographics.enabled:
        names += [config.demographics.face_detector, "age_gender"]
    if config.behaviour.pose:
        names.append("movenet")
    for name in names:
        model_path(config, name)
    return config.models.dir


def cmd_privacy_report(args) -> int:
    from appliance.device.config import load_config
    from appliance.device.privacy_report import report

    print(report(load_config(args.config)), end="")
    return 0


def cmd_setup(args) -> int:
    import os

    from appliance.device.setup.config_file import DeviceYaml
    from appliance.device.setup.server import LOCAL_NAMES, SetupSession
    from appliance.errors import ApplianceError

    if args.host not in LOCAL_NAMES and os.environ.get("INVOCATION_ID"):
        raise ApplianceError(f"--host {args.host}: the setup page listens only on this "
                             "machine when started by systemd")
    device = DeviceYaml(args.config, args.camera)
    _build_tensorrt_engine(device.config)  # its pixel process may write no file, as a worker
    try:
        session = SetupSession(device, host=args.host, port=args.port,
                               idle_seconds=args.idle_minutes * 60,
                               plate_seconds=args.plate_seconds,
                               report_dir=Path(args.report_dir),
                               realtime_check=args.realtime)
    except OSError as error:
        raise ApplianceError(f"{args.host}:{args.port}: cannot listen: {error.strerror}") \
            from None
    host, port = session.httpd.server_address[:2]
    print(f"setup page for camera {device.camera.id}: {session.url}", flush=True)
    if session.local_only:
        shown = f"[{host}]" if ":" in host else host
        print(f"from your laptop: ssh -L {port}:{shown}:{port} <device>, then open that URL",
              flush=True)
    session.serve()
    return 0


def cmd_privacy_notice(args) -> int:
    from appliance.device.config import load_config
    from appliance.device.privacy_notice import render

    print(render(load_config(args.config), args.lang, args.format), end="")
    return 0


def _open_outputs(config, camera, pipeline, source_stats, shared: list):
    """The camera's guarded outputs: the shared JSON lines output, and MQTT when configured
    (its own connection, spool and last will per camera). Returns (outputs, mqtt or None).
    `pipeline` and `source_stats` are read for health only."""
    from appliance.device.health import HealthMonitor, health_interval
    from appliance.device.inference.backend import provider_in_use
    from appliance.device.inference.models import load_manifest
    from appliance.device.outputs import Outputs

    spec = load_manifest()[config.models.detector]
    mqtt_config = config.outputs.mqtt
    every = health_interval(mqtt_config.health_seconds, config.window_seconds) \
        if mqtt_config is not None else config.window_seconds
    monitor = HealthMonitor(config.store_id, camera.id, pipeline, source_stats,
                            {spec.name: {"file": spec.file, "sha256": spec.sha256,
                                         "provider": provider_in_use(config.models.providers)}},
                            every)
    outputs = list(shared)
    mqtt = None
    if mqtt_config is not None:
        from appliance.device.outputs.mqtt import MqttOutput

        mqtt = MqttOutput(mqtt_config, config.store_id, camera.id,
                          health=monitor.document, health_every=every).start()
        outputs.append(mqtt)
    return Outputs(config.store_id, camera.id, outputs, on_refused=monitor.count_refused), mqtt


def _jsonl(target: str | None):
    from appliance.device.outputs.jsonl import JsonLinesOutput

    return [JsonLinesOutput(target)] if target else []


def cmd_run(args) -> int:
    """The publisher: starts one pixel worker per camera and alone talks to the network."""
    from appliance.device.config import load_config
    from appliance.device.inference.models import load_manifest, verified_path
    from appliance.device.limits import check_limits
    from appliance.device.publisher import Publisher

    _log_to_stderr()
    config = load_config(args.config)
    check_limits(config)  # a config whose windows the guard would refuse never starts
    cameras = [config.camera(args.camera)] if args.camera else list(config.cameras)
    verified_path(config.models.dir, load_manifest()[config.models.detector])  # fail early
    _build_tensorrt_engine(config)
    shared = _jsonl(config.outputs.jsonl)
    publisher = Publisher(config, cameras, lambda camera, stats: _open_outputs(
        config, camera, stats, stats.source, shared), realtime=args.realtime)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: publisher.stop())
    try:
        return publisher.run()
    finally:
        for output in shared:
            output.close()


def _build_tensorrt_engine(config) -> None:
    if "tensorrt" not in config.models.providers:
        return
    from appliance.device.inference.backend import build_tensorrt_engine
    from appliance.device.pipeline import model_path

    build_tensorrt_engine(model_path(config, config.models.detector), config.models.threads,
                          config.models.providers)


def cmd_replay(args) -> int:
    from appliance.device.config import load_config
    from appliance.device.pipeline import (
        CameraPipeline,
        load_demographics,
        load_detector,
        load_pose,
        run_frames,
    )
    from appliance.device.sources import decoding_source

    _log_to_stderr()
    config = load_config(args.config)
    camera = config.camera(args.camera)
    source = decoding_source(args.video, camera.fps, realtime=args.realtime,
                             decoder=camera.decoder)
    _build_tensorrt_engine(config)
    detector = load_detector(config)
    pipeline = CameraPipeline(config, camera, detector, "media", load_demographics(config),
                              load_pose(config), keep_totals=True)
    shared = _jsonl(args.windows)
    outputs, mqtt = _open_outputs(config, camera, pipeline, source.stats, shared)
    windows = []

    def emit(document):
        windows.append(document)
        outputs.write(document)

    progress = _Progress(source) if sys.stderr.isatty() and not args.no_progress else None
    started = time.perf_counter()
    try:
        run_frames(pipeline, source, emit, progress.update if progress else None)
    finally:
        elapsed = time.perf_counter() - started
        if progress:
            progress.close()
        if mqtt is not None:
            mqtt.close(drain_seconds=args.wait_broker, wait_for_broker=True)
        for output in shared:
            output.close()
    frames = pipeline.times.frames
    summary = {
        "camera_id": camera.id,
        "frames": frames,
        "seconds": round(source.stats.frames_read / source.fps, 3),
        "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
        "windows": len(windows),
        **({"unsent": mqtt.unsent} if mqtt is not None else {}),
        "lines": pipeline.totals(),
        **({"age_bands": pipeline.age_totals,
            "face_inferences": pipeline.demographics.face_inferences}
           if pipeline.demographics else {}),
        **pipeline.behaviour_summary(),
        "stage_ms": pipeline.times.ms_per_frame(),
    }
    print(json.dumps(summary))
    return 0


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="shopper-edge: %(message)s",
                        stream=sys.stderr)


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, source):
        self.total_seconds = source.duration
        self._last = 0.0

    def update(self, timestamp: float) -> None:
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        if self.total_seconds:
            share = min(timestamp / self.total_seconds, 1.0)
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r[{bar:<30}] {share:5.1%} {timestamp:7.1f}s")
        else:
            sys.stderr.write(f"\r{timestamp:7.1f}s")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def cmd_models_fetch(args) -> int:
    from appliance.device.inference.models import fetch, load_manifest
    from appliance.errors import ModelError

    manifest = load_manifest()
    names = args.names or list(manifest)
    unknown = [n for n in names if n not in manifest]
    if unknown:
        raise ModelError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(manifest)}")
    fetch(args.mirror, Path(args.dir), [manifest[n] for n in names])
    return 0


def cmd_models_verify(args) -> int:
    from appliance.device.inference.models import load_manifest, verified_path

    for spec in load_manifest().values():
        print(f"{spec.name}: {verified_path(Path(args.dir), spec)} OK")
    return 0


def cmd_models_list(args) -> int:
    from appliance.device.inference.models import load_manifest

    for spec in load_manifest().values():
        print(f"{spec.name:12} {spec.role:16} {spec.file:36} {spec.licence:12} {spec.sha256[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
