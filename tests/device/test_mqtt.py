"""MQTT out and HQ in, end to end, against a real Mosquitto with TLS, passwords and an ACL.

The appliance (`shopper-edge replay`) and HQ (`shopper-hq subscribe`) run as the real
commands in their own processes, so SIGKILL is a real crash.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from jsonschema import Draft202012Validator
from paho.mqtt.enums import CallbackAPIVersion

from tests.broker import Broker, make_ca, write_password
from tests.conftest import CLIPS, REPO, HqProcess, wait_for

SCHEMAS = REPO / "appliance" / "schemas"
COUNTS = Draft202012Validator(json.loads((SCHEMAS / "counts-2.json").read_text()))
HEALTH = Draft202012Validator(json.loads((SCHEMAS / "health-2.json").read_text()))
STORE = "caviar-demo"
ACL = f"""# each device writes only under its own store/camera; HQ only reads
user dev-front
topic write shopper/{STORE}/front/#
user hq
topic read shopper/#
"""
USERS = {"dev-front": "front-secret", "hq": "hq-secret"}
LONG_CLIP = CLIPS / "EnterExitCrossingPaths1front.mpg"  # 19 s
SHORT_CLIP = CLIPS / "OneLeaveShop1front.mpg"  # 12 s


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path / "broker", users=USERS, acl=ACL, tls=True).start()
    yield broker
    broker.stop()


@pytest.fixture
def device(tmp_path, write_config, broker):
    """A device config publishing to the test broker as dev-front, over TLS."""

    def make(camera_id="front", password="front-secret", ca=None, window_seconds=1, **mqtt_):
        settings = {
            "host": "localhost", "port": broker.port, "username": "dev-front",
            "password_file": str(write_password(tmp_path, f"dev-{password}", password)),
            "tls": {"ca": str(ca or broker.ca)}, "spool_dir": str(tmp_path / "spool"),
            "health_seconds": 1, **mqtt_}
        path = write_config(f"device-{camera_id}.yaml", window_seconds=window_seconds,
                            outputs={"jsonl": None, "mqtt": settings})
        raw = _yaml(path)
        raw["cameras"][0]["id"] = camera_id
        raw["cameras"][0]["fps"] = 10  # enough for windows; spares the CPU for the broker
        path.write_text(json.dumps(raw))
        return path

    return make


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def spool_of(tmp_path: Path, camera_id: str = "front") -> Path:
    return tmp_path / "spool" / f"{STORE}-{camera_id}.sqlite"


def spooled_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [json.loads(p)["message_id"] for (p,) in
                db.execute("SELECT payload FROM messages ORDER BY seq")]


def replay(config: Path, clip: Path, *extra, background=False):
    command = [sys.executable, "-m", "appliance.device.cli", "replay", str(clip), "--config",
               str(config), "--no-progress", *map(str, extra)]
    if background:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


class Hq(HqProcess):
    """HQ as the device's broker sees it: TLS, its own password, reading all stores."""

    def __init__(self, broker: Broker, directory: Path):
        password = write_password(directory, "hq", USERS["hq"])
        super().__init__(broker.port, directory / "hq.sqlite", "--tls-ca", str(broker.ca),
                         "--username", "hq", "--password-file", str(password))

    def windows(self) -> list[dict]:
        """Stored windows in arrival order."""
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db) as db:
            return [json.loads(d) for (d,) in
                    db.execute("SELECT document FROM windows ORDER BY rowid")]


class Listener:
    """A plain MQTT 5 subscriber (as HQ) recording every message, for schema checks."""

    def __init__(self, broker: Broker, topic="shopper/#"):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("hq", USERS["hq"])
        self.client.tls_set(ca_certs=str(broker.ca))
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.connect("localhost", broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def of(self, kind: str) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return [m for m in self.messages if m[0].endswith("/" + kind)]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def test_replay_windows_arrive_valid_with_status_and_health(broker, device):
    listener = Listener(broker)
    try:
        # At its own pace, so that health (every whole window of wall-clock time) comes.
        result = replay(device(), SHORT_CLIP, "--realtime")
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        wait_for(lambda: len(listener.of("counts")) == summary["windows"], 10, "windows")
        wait_for(lambda: listener.of("status")[-1:] and
                 listener.of("status")[-1][1] == b"offline", 10, "offline")
    finally:
        listener.close()
    counts = listener.of("counts")
    assert summary["windows"] == 12 and summary["unsent"] == 0
    for topic, payload, retained in counts:
        document = json.loads(payload)
        COUNTS.validate(document)
        assert topic == f"shopper/{STORE}/front/counts" and not retained
    documents = [json.loads(p) for _, p, _ in counts]
    assert len({d["message_id"] for d in documents}) == len(documents)
    assert [d["window_start"] for d in documents] == sorted(d["window_start"] for d in documents)
    totals = {"in": sum(d["lines"]["shop_door"]["in"] for d in documents),
              "out": sum(d["lines"]["shop_door"]["out"] for d in documents)}
    assert totals == summary["lines"]["shop_door"]
    assert [p for _, p, _ in listener.of("status")] == [b"online", b"offline"]
    health = [json.loads(p) for _, p, _ in listener.of("health")]
    assert len(health) >= 5, health
    for document in health:
        HEALTH.validate(document)
        # On window boundaries (1 s windows here), counted from the first one after start.
        assert document["time"].endswith(".000Z") and document["uptime_seconds"] % 1 == 0
    assert health[-1]["models"]["yolox_nano"]["sha256"]
    assert any(document["fps"] > 0 for document in health)
    # Frames the camera delivered (25 a second here), processed under the 10 fps cap or not.
    assert summary["frames"] < health[-1]["frames_received"] < round(summary["seconds"] * 25)
    order = [(topic.rsplit("/", 1)[1], payload) for topic, payload, _ in listener.messages]
    assert order.index(("status", b"offline")) > max(
        k for k, (kind, _) in enumerate(order) if kind == "health")


def test_broker_outage_mid_run_loses_nothing(broker, device, tmp_path):
    hq = Hq(broker, tmp_path)
    appliance = replay(device(), LONG_CLIP, "--realtime", background=True)
    wait_for(lambda: len(hq.windows()) >= 2, 30, "the first windows at HQ")
    broker.stop()
    wait_for(lambda: len(spooled_ids(spool_of(tmp_path))) >= 3, 20, "windows to be spooled")
    time.sleep(1)
    broker.start()
    out, err = appliance.communicate(timeout=120)
    assert appliance.returncode == 0, err
    summary = json.loads(out)
    wait_for(lambda: len(hq.windows()) >= summary["windows"], 60, "every window at HQ")
    stats, _ = hq.stop()
    windows = hq.windows()
    assert len(windows) == summary["windows"] == stats["stored"]
    assert len({w["message_id"] for w in windows}) == len(windows)
    starts = [w["window_start"] for w in windows]
    assert starts == sorted(starts), "windows reached HQ out of order"
    assert summary["unsent"] == 0 and spooled_ids(spool_of(tmp_path)) == []
    assert "connection lost" in err or "connection refused" in err


def test_sigkill_while_broker_down_then_restart_delivers_spool_once(broker, device, tmp_path):
    hq = Hq(broker, tmp_path)
    config = device()
    appliance = replay(config, LONG_CLIP, "--realtime", background=True)
    wait_for(lambda: len(hq.windows()) >= 2, 30, "the first windows at HQ")
    broker.stop()
    spool = spool_of(tmp_path)
    wait_for(lambda: len(spooled_ids(spool)) >= 3, 20, "windows to be spooled")
    appliance.send_signal(signal.SIGKILL)
    appliance.communicate(timeout=10)
    kept = spooled_ids(spool)
    assert len(kept) >= 3
    delivered_before = {w["message_id"] for w in hq.windows()}
    assert not delivered_before & set(kept)

    broker.start()
    result = replay(config, SHORT_CLIP)  # the restarted appliance
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    expected = len(delivered_before) + len(kept) + summary["windows"]
    wait_for(lambda: len(hq.windows()) >= expected, 60, "the spooled windows at HQ")
    time.sleep(1)  # room for a repeat to arrive, which must then be dropped
    stats, _ = hq.stop()
    ids = [w["message_id"] for w in hq.windows()]
    assert len(ids) == len(set(ids)) == expected
    assert set(kept) <= set(ids)
    # The spool went first, in its order, before the restarted run's own windows.
    after_restart = [i for i in ids if i not in delivered_before]
    assert after_restart[:len(kept)] == kept
    assert spooled_ids(spool) == []


def test_status_turns_offline_when_the_appliance_dies(broker, device):
    listener = Listener(broker, f"shopper/{STORE}/front/status")
    try:
        appliance = replay(device(), LONG_CLIP, "--realtime", background=True)
        wait_for(lambda: [p for _, p, _ in listener.of("status")] == [b"online"], 30, "online")
        appliance.send_signal(signal.SIGKILL)
        appliance.communicate(timeout=10)
        wait_for(lambda: listener.of("status")[-1][1] == b"offline", 10, "the last will")
    finally:
        listener.close()
    # A new subscriber sees the retained state: offline.
    late = Listener(broker, f"shopper/{STORE}/front/status")
    try:
        wait_for(lambda: late.of("status"), 10, "the retained status")
        assert late.of("status") == [(f"shopper/{STORE}/front/status", b"offline", True)]
    finally:
        late.close()


@pytest.mark.parametrize("case, message", [
    ("wrong CA", "TLS: the broker's certificate is not trusted"),
    ("wrong password", "broker refused the connection: Not authorized"),
    ("another camera's topic", f"broker refused a window on shopper/{STORE}/back/counts: "
                               "Not authorized"),
])
def test_refusals_are_reported_in_one_line_and_the_spool_is_kept(broker, device, tmp_path,
                                                                 case, message):
    if case == "wrong CA":
        config = device(ca=make_ca(tmp_path, "rogue-ca")[2])
    elif case == "wrong password":
        config = device(password="guess")
    else:
        config = device(camera_id="back")  # dev-front may only write under .../front/#
    listener = Listener(broker)
    try:
        result = replay(config, SHORT_CLIP, "--wait-broker", 4)
    finally:
        listener.close()
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    problems = [line for line in result.stderr.splitlines() if message in line]
    assert len(problems) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr and "guess" not in result.stderr
    camera = "back" if case == "another camera's topic" else "front"
    assert summary["unsent"] == summary["windows"] == 12
    assert len(spooled_ids(spool_of(tmp_path, camera))) == 12
    # Only the spool's own files were written, and they hold only schema-valid aggregates.
    spool = spool_of(tmp_path, camera)
    assert {p.name for p in spool.parent.iterdir()} <= {spool.name, spool.name + "-wal",
                                                         spool.name + "-shm"}
    with sqlite3.connect(spool) as db:
        for (payload,) in db.execute("SELECT payload FROM messages"):
            COUNTS.validate(json.loads(payload))
    assert listener.of("counts") == []


def test_spool_bound_drops_the_oldest_and_health_reports_it(broker, device, tmp_path):
    config = device(password="guess", spool_max_messages=10)  # never connects
    result = replay(config, SHORT_CLIP, "--wait-broker", 0)
    assert result.returncode == 0, result.stderr
    spool = spool_of(tmp_path)
    with sqlite3.connect(spool) as db:
        windows = [json.loads(p) for (p,) in db.execute("SELECT payload FROM messages")]
        (dropped,) = db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
    assert len(windows) == 10 and dropped == 2
    assert windows[0]["window_start"] == "1970-01-01T00:00:02.000Z"  # the two oldest went
    assert "spool full" in result.stderr

    # Connected again, the loss (counted in the spool file, across restarts) shows in health.
    listener = Listener(broker)
    try:
        result = replay(device(spool_max_messages=10), SHORT_CLIP, "--realtime")
        assert result.returncode == 0, result.stderr
    finally:
        listener.close()
    health = [json.loads(p) for _, p, _ in listener.of("health")]
    assert health and health[-1]["spool_dropped"] == 2


def test_device_password_never_sits_in_the_config(tmp_path, write_config):
    config = write_config(outputs={"mqtt": {"host": "localhost", "password": "x"}})
    result = subprocess.run([sys.executable, "-m", "appliance.device.cli", "check-config",
                             str(config)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "outputs.mqtt.password: not allowed" in result.stderr
    assert os.linesep not in result.stderr.strip()


@pytest.mark.parametrize("secret", ["password", "key"])
def test_secrets_readable_by_others_are_refused_naming_the_file(tmp_path, write_config,
                                                                 secret):
    password = write_password(tmp_path, "dev", "front-secret")
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN EC PRIVATE KEY-----\n")
    key.chmod(0o600)
    (password if secret == "password" else key).chmod(0o640)
    ca = make_ca(tmp_path, "ca")[2]
    config = write_config(outputs={"jsonl": None, "mqtt": {
        "host": "localhost", "port": 1, "username": "dev-front", "password_file": str(password),
        "tls": {"ca": str(ca), "cert": str(ca), "key": str(key)},
        "spool_dir": str(tmp_path / "spool")}})
    result = replay(config, SHORT_CLIP)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    bad = password if secret == "password" else key
    assert lines[0].startswith(f"shopper-edge: error: {bad}: ") and "mode 0640" in lines[0]


def test_a_failing_output_stops_nothing_and_loses_no_window(broker, device):
    """The JSON-lines file fails on every write (/dev/full: ENOSPC): the publisher's pipe
    keeps draining, every window still reaches the broker, and the failure is one line."""
    config = device()
    raw = _yaml(config)
    raw["outputs"]["jsonl"] = "/dev/full"
    del raw["cameras"][0]["fps"]  # every frame: the clip's truth holds at its own rate
    config.write_text(json.dumps(raw))
    listener = Listener(broker)
    try:
        run = subprocess.run([sys.executable, "-m", "appliance.device.cli", "run", "--config",
                              str(config)], capture_output=True, text=True, timeout=180)
        wait_for(lambda: listener.of("status")[-1:] and
                 listener.of("status")[-1][1] == b"offline", 10, "offline")
    finally:
        listener.close()
    assert run.returncode == 0, run.stderr[-2000:]
    documents = [json.loads(p) for _, p, _ in listener.of("counts")]
    # Windows of 1 s over the whole 12 s clip, none missing, and the clip's one exit.
    starts = [d["window_start"] for d in documents]
    assert len(documents) == 12 and starts == sorted(set(starts))
    assert sum(d["lines"]["shop_door"]["out"] for d in documents) == 1
    assert sum(d["lines"]["shop_door"]["in"] for d in documents) == 0
    failures = [line for line in run.stderr.splitlines() if "JsonLinesOutput failed" in line]
    assert len(failures) == 1 and "No space left on device" in failures[0]
