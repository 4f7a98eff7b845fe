"""A flashed box with an invalid config says so on its cameras' status topics
(firstboot --report-config-error), against a real Mosquitto with TLS, passwords and an ACL:
the one line, retained, through the outgoing guard, with no value of the config in it."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from appliance.device.firstboot import report_config_error, status_line
from appliance.device.outputs import guard
from appliance.errors import ConfigError
from appliance.messages import status_problem
from tests.broker import Broker, free_port, write_password
from tests.conftest import wait_for

STORE = "store-0042"
ACL = f"""user dev-front
topic write shopper/{STORE}/front/#
user hq
topic read shopper/#
"""
USERS = {"dev-front": "front-secret", "hq": "hq-secret"}


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path / "broker", users=USERS, acl=ACL, tls=True).start()
    yield broker
    broker.stop()


@pytest.fixture
def card(tmp_path, write_config, broker):
    """A card's config (as first boot leaves an invalid one: still on the card, its
    password already moved to etc) publishing to the test broker as dev-front."""
    boot, etc = tmp_path / "boot", tmp_path / "etc"
    boot.mkdir()
    etc.mkdir()

    def make(cameras=("front",), port=None, **changes):
        raw = yaml.safe_load(write_config().read_text())
        raw["store_id"] = STORE
        raw["cameras"] = [dict(raw["cameras"][0], id=c) for c in cameras]
        raw["outputs"] = {"jsonl": None, "mqtt": {
            "host": "localhost", "port": port or broker.port, "username": "dev-front",
            "password_file": str(write_password(etc, "mqtt", "front-secret")),
            "tls": {"ca": str(broker.ca)}, "spool_dir": str(tmp_path / "spool")}}
        for key, value in changes.items():
            raw["cameras"][0][key] = value
        (boot / "device.yaml").write_text(yaml.safe_dump(raw))
        return boot, etc

    return make


def retained_status(broker: Broker, camera: str) -> bytes | None:
    """What a subscriber arriving now (HQ) gets on the camera's status topic."""
    got: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("hq", USERS["hq"])
    client.tls_set(ca_certs=str(broker.ca))
    client.on_connect = lambda c, *_: c.subscribe(f"shopper/{STORE}/{camera}/status", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda c, u, message: got.append(message.payload)
    client.connect("localhost", broker.port)
    client.loop_start()
    try:
        wait_for(subscribed.is_set, 10, "the subscription")
        time.sleep(1)  # a retained message comes with the subscription, or none does
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0] if got else None


def test_an_invalid_config_goes_to_the_status_topic_retained(broker, card, capsys):
    boot, etc = card(fps=-5)
    assert report_config_error(boot, etc, wait_seconds=10) == 1
    line = b"config-error: device.yaml: cameras[0].fps: must be > 0, got -5"
    assert retained_status(broker, "front") == line
    assert status_problem(line) is None  # HQ stores it as the camera's status
    assert f"firstboot: config error sent on shopper/{STORE}/front/status" in \
        capsys.readouterr().out


def test_each_camera_is_tried_and_a_refused_one_is_one_journal_line(broker, card, capsys):
    boot, etc = card(cameras=("front", "back"), fps=-5)
    assert report_config_error(boot, etc, wait_seconds=0) == 1
    assert retained_status(broker, "front").startswith(b"config-error: ")
    assert retained_status(broker, "back") is None
    out = capsys.readouterr().out
    assert "firstboot: config error not sent for camera back: mqtt localhost:" in out
    assert f"broker refused shopper/{STORE}/back/status: Not authorized" in out


def test_a_valid_config_sends_nothing(broker, card):
    boot, etc = card()
    assert report_config_error(boot, etc, wait_seconds=0) == 0
    assert retained_status(broker, "front") is None


def test_an_unreachable_broker_is_one_journal_line_after_the_wait(card, capsys):
    boot, etc = card(fps=-5, port=free_port())
    assert report_config_error(boot, etc, wait_seconds=0.5, retry_seconds=0.2) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(
        "firstboot: config error not sent for camera front: mqtt localhost:")


def test_an_unreadable_broker_part_stays_in_the_journal(tmp_path, capsys):
    (tmp_path / "device.yaml").write_text("store_id: [unclosed\n")
    assert report_config_error(tmp_path, tmp_path / "etc", wait_seconds=0) == 0
    assert "firstboot: the config error stays in the journal" in capsys.readouterr().out


def test_the_line_carries_no_value_of_the_config(tmp_path):
    path = tmp_path / "boot" / "shopper-edge" / "device.yaml"
    error = ConfigError(f"{path}: cameras[0].source: cannot open "
                        "'rtsp://admin:s3cret@10.0.0.7/live' (tried \"café\"); "
                        "see rtsp://admin:s3cret@10.0.0.7")
    line = status_line(error, path)
    assert line == (b"config-error: device.yaml: cameras[0].source: cannot open '...' "
                    b"(tried '...'); see ...")
    assert guard.check_status(line) == line
    assert len(status_line(ConfigError("x" * 1000), path)) == len("config-error: ") + 300


@pytest.mark.parametrize("payload", [
    b"online; camera at 10.0.0.7", b"config-error: ", b"config-error: two\nlines",
    b"config-error: " + b"x" * 301, b"config-error: see rtsp://10.0.0.7/live",
    b"config-error: user admin@10.0.0.7", "config-error: caf\u00e9".encode()])
def test_the_guard_admits_no_other_status(payload):
    with pytest.raises(guard.GuardRefused, match="refused status message"):
        guard.check_status(payload)
    assert status_problem(payload) is not None  # nor does HQ store it
