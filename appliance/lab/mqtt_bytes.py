"""Bytes on the wire per hour for one camera at the default settings, next to video.

Runs the real pipeline on a shared clip for a real window document and health document,
then sends them through the real MQTT output (TLS 1.2, QoS 1) to a local Mosquitto, one at
a time as they leave a device (a window every 60 s is alone on the wire), and reads the
kernel's TCP counters (TCP_INFO) on the device's socket. Wire bytes = TCP payload both ways
(TLS records around MQTT packets, PUBACKs) + 52 bytes of IPv4/TCP headers per segment,
including pure ACKs.

    .venv/bin/python -m appliance.lab.mqtt_bytes [--json bench-results/mqtt-bytes.json]
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from appliance.device.config import load_config
from appliance.device.health import HealthMonitor
from appliance.device.inference.models import load_manifest
from appliance.device.outputs import guard
from appliance.device.outputs.mqtt import MqttOutput
from appliance.device.outputs_config import MqttConfig, TlsConfig
from appliance.device.pipeline import CameraPipeline, load_detector, run_frames
from appliance.device.sources import FileSource
from tests.broker import Broker  # the lab runs in the source tree, beside the tests

REPO = Path(__file__).resolve().parents[2]

HEADERS = 52  # IPv4 20 + TCP 20 + timestamps option 12
VIDEO_BITS_PER_SECOND = 2_000_000  # a typical 1080p H.264 CCTV stream
SAMPLES = 30


def tcp_counters(sock) -> tuple[int, int, int, int]:
    """(bytes sent, bytes received, segments out, segments in) of a TCP socket (Linux)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    bytes_acked, bytes_received = struct.unpack_from("QQ", info, 120)
    segs_out, segs_in = struct.unpack_from("II", info, 136)
    return bytes_acked, bytes_received, segs_out, segs_in


def real_documents(config_path: Path, clip: Path) -> tuple[dict, dict]:
    config = load_config(config_path)
    camera = config.cameras[0]
    source = FileSource(str(clip), camera.fps)
    pipeline = CameraPipeline(config, camera, load_detector(config), "wall")
    windows: list[dict] = []
    spec = load_manifest()[config.models.detector]
    health = HealthMonitor(config.store_id, camera.id, pipeline, source.stats,
                           {spec.name: {"file": spec.file, "sha256": spec.sha256}})
    # the first boundary sets the baseline; both looks give the monotonic time that goes
    # with `now`, or the run's length between them reads as a wall-clock step
    health.document(0, 0, 0, now=0.0, monotonic=0.0)
    run_frames(pipeline, ((f, 1_800_000_000.0 + t) for f, t in source), windows.append)
    return windows[0], health.document(mqtt_connects=1, spool_depth=0, spool_dropped=0,
                                       now=health.every, monotonic=health.every)


def wire_cost(output: MqttOutput, send, count: int) -> dict:
    """Mean wire bytes per message over `count` messages sent one at a time."""
    sock = output.client.socket()
    before = tcp_counters(sock)
    for _ in range(count):
        send()
        deadline = time.monotonic() + 5
        while (output.spool.depth() or output._inflight) and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.25)  # past the delayed-ACK timer, so ACKs are counted like in the field
    after = tcp_counters(sock)
    sent, received, segs_out, segs_in = (b - a for a, b in zip(before, after, strict=True))
    wire = sent + received + HEADERS * (segs_out + segs_in)
    return {"tcp_payload_bytes": round((sent + received) / count, 1),
            "segments": round((segs_out + segs_in) / count, 2),
            "wire_bytes": round(wire / count, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "examples" / "caviar-front.yaml"))
    parser.add_argument("--clip", default=str(REPO.parent / "shared" / "data" / "caviar_front"
                                              / "clips" / "OneLeaveShopReenter1front.mpg"))
    parser.add_argument("--json", default="bench-results/mqtt-bytes.json")
    args = parser.parse_args()
    window, health = real_documents(Path(args.config), Path(args.clip))
    store_id, camera_id = window["store_id"], window["camera_id"]
    with tempfile.TemporaryDirectory() as directory:
        broker = Broker(Path(directory) / "broker", tls=True).start()
        try:
            defaults = MqttConfig(host="localhost", port=broker.port)
            config = replace(defaults, tls=TlsConfig(ca=broker.ca),
                             spool_dir=Path(directory) / "spool", health_seconds=86400)
            output = MqttOutput(config, store_id, camera_id, health=None).start()
            deadline = time.monotonic() + 10
            while not output.link.connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)

            def send_window():
                output.send(guard.check("counts", dict(window, message_id=uuid.uuid4().hex),
                                        store_id, camera_id))

            health_body = guard.check("health", health, store_id, camera_id)

            def send_health():
                output.client.publish(output.topics["health"], health_body, qos=1)

            per_window = wire_cost(output, send_window, SAMPLES)
            per_health = wire_cost(output, send_health, SAMPLES)
            output.close()
        finally:
            broker.stop()
    per_hour = {
        "windows": 3600 / defaults_window_seconds(args.config),
        "health": 3600 / MqttConfig(host="", port=0).health_seconds,
    }
    bytes_per_hour = per_hour["windows"] * per_window["wire_bytes"] + \
        per_hour["health"] * per_health["wire_bytes"]
    video_per_hour = VIDEO_BITS_PER_SECOND / 8 * 3600
    result = {
        "window_payload_bytes": len(json.dumps(window, separators=(",", ":"))),
        "health_payload_bytes": len(health_body),
        "per_window": per_window, "per_health": per_health, "messages_per_hour": per_hour,
        "bytes_per_hour": round(bytes_per_hour), "video_2mbps_bytes_per_hour": video_per_hour,
        "ratio_video_to_mqtt": round(video_per_hour / bytes_per_hour),
    }
    print(f"{'':24}{'payload B':>10}{'wire B/msg':>12}{'per hour':>10}")
    print(f"{'counts window (60 s)':24}{result['window_payload_bytes']:>10}"
          f"{per_window['wire_bytes']:>12}{per_hour['windows']:>10.0f}")
    print(f"{'health (60 s)':24}{result['health_payload_bytes']:>10}"
          f"{per_health['wire_bytes']:>12}{per_hour['health']:>10.0f}")
    print(f"one camera: {bytes_per_hour / 1000:.1f} kB/hour over MQTT+TLS; "
          f"2 Mbit/s video: {video_per_hour / 1e6:.0f} MB/hour "
          f"({result['ratio_video_to_mqtt']}x more)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def defaults_window_seconds(config_path: str) -> float:
    return load_config(config_path).window_seconds


if __name__ == "__main__":
    sys.exit(main())
