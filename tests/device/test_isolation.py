"""Pixels never reach the network: the pixel worker of `shopper-edge run` lives in an empty
network namespace and reaches only its camera, through the publisher's relay; after a run
with the broker down, nothing an attacker could read holds an image or a person."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from tests.broker import Broker, free_port
from tests.conftest import CLIPS, EXAMPLE, NAMESPACES, REPO, needs_namespaces, wait_for

SYSTEM_PYTHON = "/usr/bin/python3"  # GStreamer's Python bindings are Debian's
FRAME_BYTES = 384 * 288 * 3  # one CAVIAR frame, raw


def rtsp_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen([SYSTEM_PYTHON, str(REPO / "tests" / "rtsp_server.py"), "--port",
                               str(port), "--file", str(CLIPS / "OneLeaveShop1front.mpg")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "READY", server.stderr.read()
    return server


def device_config(tmp_path: Path, models_dir: Path, source: str, broker_port: int,
                  **privacy) -> Path:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"]["dir"] = str(models_dir)
    raw["window_seconds"] = 2
    raw["privacy"] = {"min_count": 1, "isolate_pixels": NAMESPACES, **privacy}
    raw["cameras"][0].update(source=source, fps=10)
    raw["outputs"] = {"jsonl": None, "mqtt": {
        "host": "127.0.0.1", "port": broker_port, "spool_dir": str(tmp_path / "state" / "spool"),
        "health_seconds": 1}}
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def worker_of(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def connect_from(pid: int | None, port: int) -> subprocess.CompletedProcess:
    """Try a TCP connection to 127.0.0.1:port from inside pid's network namespace."""
    probe = ("import socket,sys\n"
             f"socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
             "print('connected')")
    enter = []
    if pid is not None:
        enter = ["nsenter", "-t", str(pid), "-n"]
        if os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"):
            enter += ["-U", "--preserve-credentials"]
    return subprocess.run([*enter, sys.executable, "-c", probe], capture_output=True,
                          text=True, timeout=20)


def listening_sockets(pid: int) -> set[int]:
    """Inodes of the TCP sockets this process holds that listen in its network namespace."""
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(int(target[8:-1]))
    listening = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                listening.add(int(fields[9]))
    return held & listening


@needs_namespaces
def test_pixel_worker_cannot_reach_the_broker_but_windows_still_arrive(tmp_path, models_dir):
    broker = Broker(tmp_path / "broker").start()
    camera_port = free_port()
    camera = rtsp_server(camera_port)
    config = device_config(tmp_path, models_dir, f"rtsp://127.0.0.1:{camera_port}/cam",
                           broker.port)
    run = subprocess.Popen([sys.executable, "-m", "appliance.device.cli", "run", "--config",
                            str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        messages = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.on_connect = lambda c, *_: c.subscribe("shopper/#", qos=1)
        client.on_message = lambda c, u, m: messages.append(m.topic)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        wait_for(lambda: any(t.endswith("/counts") for t in messages), 60,
                 lambda: "a window through the publisher")
        worker = worker_of(run.pid)
        assert os.readlink(f"/proc/{worker}/ns/net") != os.readlink(f"/proc/{run.pid}/ns/net")
        # The publisher's namespace reaches the broker and the camera ...
        assert connect_from(run.pid, broker.port).stdout.strip() == "connected"
        # ... the pixel worker's reaches neither, though it keeps reading the camera.
        for port in (broker.port, camera_port):
            probe = connect_from(worker, port)
            assert probe.returncode != 0 and "connected" not in probe.stdout
            assert "Connection refused" in probe.stderr or "unreachable" in probe.stderr
        # And neither process listens on any port of the device's network.
        assert listening_sockets(run.pid) == set()
        count = sum(t.endswith("/counts") for t in messages)
        wait_for(lambda: sum(t.endswith("/counts") for t in messages) > count, 30,
                 "more windows")
        client.loop_stop()
    finally:
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
        camera.kill()
        broker.stop()
    assert run.returncode == 0, err


def test_without_isolation_the_worker_shares_the_network(tmp_path, models_dir):
    """The control: with privacy.isolate_pixels false the worker is in our namespace."""
    config = device_config(tmp_path, models_dir, str(CLIPS / "OneLeaveShop1front.mpg"),
                           free_port(), isolate_pixels=False)
    run = subprocess.Popen([sys.executable, "-m", "appliance.device.cli", "run", "--realtime",
                            "--config", str(config)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        wait_for(lambda: Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().strip(),
                 20, "the worker")
        worker = worker_of(run.pid)
        assert os.readlink(f"/proc/{worker}/ns/net") == os.readlink(f"/proc/{run.pid}/ns/net")
    finally:
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=60)


IMAGE_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF8": "GIF",
                    b"RIFF": "WebP/AVI", b"\x00\x00\x00\x0cjP": "JPEG 2000", b"P6\n": "PPM"}
PER_PERSON = re.compile(rb"\b(tracks?|track_ids?|bbox(es)?|box(es)?|xyxy|embeddings?|faces?|"
                        rb"crops?|person_ids?|keypoints?)\b|\"id\"", re.IGNORECASE)
TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:(\d{2})(\.\d+)?Z")


# Code that runs inside the pixel worker once it is under way, as a compromised decoder's
# would: Python runs sitecustomize at start, and the hook fires when the worker imports its
# video stack (after it confined itself). It tries to create a file in each directory the
# service may write, and says what happened on standard error. WRITE_PROBE_MAIN names
# another pixel process to probe (the setup page's).
WRITE_PROBE = """
import os, sys

def probe(event, args):
    main = sys.modules.get("__main__")
    wanted = os.environ.get("WRITE_PROBE_MAIN", "appliance.device.worker")
    if event != "import" or args[0] != "appliance.device.pipeline" or \\
            getattr(getattr(main, "__spec__", None), "name", "") != wanted:
        return
    import ctypes, resource
    dumpable = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    print(f"probe: dumpable {dumpable} core {resource.getrlimit(resource.RLIMIT_CORE)}",
          file=sys.stderr)
    for directory in os.environ["WRITE_PROBE_DIRS"].split(":"):
        try:
            with open(os.path.join(directory, "stolen.raw"), "wb") as f:
                f.write(b"pixels")
            print(f"probe: {directory}: written", file=sys.stderr)
        except OSError as error:
            print(f"probe: {directory}: refused: {error.strerror}", file=sys.stderr)

sys.addaudithook(probe)
"""


def landlock_abi() -> int:
    from appliance.device.isolation import landlock_abi

    return landlock_abi()


def test_after_a_breach_nothing_holds_an_image_or_a_person(tmp_path, models_dir):
    """Replay and a live RTSP run publishing to a broker that is down, so the spool fills;
    code inside the pixel worker tries to write a file; then read every file the process
    could have written (state dir, tmp, working directory) and its log, as an attacker who
    took the device would."""
    state, tmp, cwd = tmp_path / "state", tmp_path / "tmp", tmp_path / "cwd"
    for directory in (state, tmp, cwd):
        directory.mkdir()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(WRITE_PROBE)
    (state / "spool").mkdir()
    # Without Landlock in the kernel the worker says so in the journal, and can write.
    probed = (state / "spool", state, tmp, cwd) if landlock_abi() else ()
    env = dict(os.environ, TMPDIR=str(tmp), HOME=str(cwd),
               PYTHONPATH=os.pathsep.join([str(hooks), str(REPO)]),
               WRITE_PROBE_DIRS=":".join(map(str, probed)))
    down = free_port()  # nothing listens: the broker is down
    log = b""
    config = device_config(tmp_path, models_dir, str(CLIPS / "EnterExitCrossingPaths1front.mpg"),
                           down)
    replay = subprocess.run([sys.executable, "-m", "appliance.device.cli", "replay",
                             str(CLIPS / "EnterExitCrossingPaths1front.mpg"), "--config",
                             str(config), "--wait-broker", "0", "--no-progress"],
                            capture_output=True, cwd=cwd, env=env, timeout=300)
    assert replay.returncode == 0, replay.stderr
    log += replay.stdout + replay.stderr
    camera_port = free_port()
    camera = rtsp_server(camera_port)
    config = device_config(tmp_path, models_dir, f"rtsp://127.0.0.1:{camera_port}/cam", down)
    run = subprocess.Popen([sys.executable, "-m", "appliance.device.cli", "run", "--config",
                            str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           cwd=cwd, env=env)
    spool = state / "spool" / "caviar-demo-front.sqlite"
    try:
        wait_for(lambda: spool.exists() and _rows(spool) >= 14, 90, "the spool to fill")
    finally:
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
        camera.kill()
    log += out + err
    (tmp_path / "run.log").write_bytes(log)
    # The worker could not write anywhere, and holds nothing a core dump could take.
    assert b"probe: dumpable 0 core (0, 0)" in err, err[-2000:]
    assert probed or b"Landlock is not available" in err
    for directory in probed:
        line = f"probe: {directory}: refused: Permission denied".encode()
        assert line in err, err[-2000:]
        assert not (directory / "stolen.raw").exists()

    files = [p for root in (state, tmp, cwd) for p in root.rglob("*") if p.is_file()]
    files.append(tmp_path / "run.log")
    assert {p.name for p in files} <= {spool.name, spool.name + "-wal", spool.name + "-shm",
                                       "run.log"}
    for path in files:
        data = path.read_bytes()
        assert len(data) < FRAME_BYTES, f"{path} is as large as a frame"
        for signature, kind in IMAGE_SIGNATURES.items():
            assert signature not in data, f"{kind} data in {path}"
        assert not PER_PERSON.search(data), f"per-person data in {path}"
        for match in TIMESTAMP.finditer(data):
            seconds, fraction = int(match.group(1)), match.group(2)
            # Only window bounds (2 s windows): no time finer than a window.
            assert seconds % 2 == 0 and not (fraction or b"").strip(b".0"), \
                f"timestamp {match.group(0)!r} in {path}"
    with closing(sqlite3.connect(spool)) as db:
        payloads = [json.loads(p) for (p,) in db.execute("SELECT payload FROM messages")]
        columns = [row[1] for row in db.execute("PRAGMA table_info(messages)")]
    assert columns == ["seq", "topic", "payload"]
    assert len(payloads) >= 14
    base = {"schema", "message_id", "store_id", "camera_id", "clock", "window_start",
            "window_end", "observed_seconds", "partial", "lines", "suppressed"}
    behaviour = {"zones", "journeys", "groups", "heatmap"}
    assert all(base | {"journeys"} <= set(p) <= base | behaviour for p in payloads)


def _rows(path: Path) -> int:
    """Closed at once: a connection left to the garbage collector (it sits in a reference
    cycle) may close later, as the last one, and delete the -wal file mid-scan."""
    try:
        with closing(sqlite3.connect(path)) as db:
            return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    except sqlite3.Error:
        return 0

