"""The documented Mosquitto setup works as documented: docs/mosquitto/store-broker.conf and
its ACL run in a real Mosquitto (only paths, ports and secrets swapped for test ones), a
device publishes to it, and its bridge carries the windows over TLS to an HQ broker using
docs/mosquitto/hq-broker.acl, where `shopper-hq subscribe` stores them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.broker import MOSQUITTO_PASSWD, Broker, write_password
from tests.conftest import CLIPS, REPO, HqProcess, shopper_edge, wait_for

DOCS = REPO / "docs" / "mosquitto"
STORE = "store-0001"


@pytest.fixture
def brokers(tmp_path):
    hq = Broker(tmp_path / "hq", users={"bridge-store-0001": "bridge-pw", "hq": "hq-pw"},
                acl=(DOCS / "hq-broker.acl").read_text(), tls=True).start()
    store = Broker(tmp_path / "store", tls=True)  # for its port and certificates
    passwd = store.directory / "shopper.passwd"
    passwd.write_text("")
    for user, password in (("dev-store-0001-front", "front-pw"), ("hq", "hq-pw")):
        subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), user, password], check=True)
    text = (DOCS / "store-broker.conf").read_text()
    for documented, test in {
        "/var/lib/mosquitto/": f"{store.directory}/",
        "/etc/mosquitto/shopper.passwd": str(passwd),
        "/etc/mosquitto/shopper.acl": str(DOCS / "store-broker.acl"),
        "/etc/mosquitto/certs/store-ca.crt": str(store.ca),
        "/etc/mosquitto/certs/store-broker.crt": str(store.directory / "server.crt"),
        "/etc/mosquitto/certs/store-broker.key": str(store.directory / "server.key"),
        "/etc/mosquitto/certs/hq-ca.crt": str(hq.ca),
        "listener 8883": f"listener {store.port} 127.0.0.1",
        # Not "localhost": where /etc/hosts also maps it to ::1 (a bare Debian root), the
        # bridge tries only that address and the test broker listens on 127.0.0.1.
        "hq.example.com:8883": f"127.0.0.1:{hq.port}",
        "remote_password CHANGE-ME": "remote_password bridge-pw",
        "log_dest syslog": f"log_dest file {store.log}",
    }.items():
        assert documented in text, documented
        text = text.replace(documented, test)
    if os.geteuid() == 0:
        text += "user root\n"
    store.config.write_text(text)
    store.start()
    yield store, hq
    store.stop()
    hq.stop()


def publish_as(broker: Broker, user: str, password: str, topic: str):
    """The broker's answer (PUBACK reason code) to one QoS 1 publish."""
    answers = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.tls_set(ca_certs=str(broker.ca))
    client.on_publish = lambda c, u, mid, reason_code, p: answers.append(reason_code)
    client.connect("localhost", broker.port)
    client.loop_start()
    client.publish(topic, b"online", qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    return str(answers[0])


def test_device_to_store_broker_to_bridge_to_hq(brokers, tmp_path, write_config):
    store, hq = brokers
    subscriber = HqProcess(hq.port, tmp_path / "hq.sqlite", "--tls-ca", str(hq.ca),
                           "--username", "hq", "--password-file",
                           str(write_password(tmp_path, "hq", "hq-pw")))
    config = write_config(store_id=STORE, window_seconds=2, outputs={"jsonl": None, "mqtt": {
        "host": "localhost", "port": store.port, "username": "dev-store-0001-front",
        "password_file": str(write_password(tmp_path, "front", "front-pw")),
        "tls": {"ca": str(store.ca)}, "spool_dir": str(tmp_path / "spool")}})
    result = shopper_edge("replay", CLIPS / "OneLeaveShop1front.mpg", "--config", config)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["unsent"] == 0

    def stored():
        if not (tmp_path / "hq.sqlite").exists():
            return 0
        with sqlite3.connect(tmp_path / "hq.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM windows").fetchone()[0]

    wait_for(lambda: stored() >= summary["windows"], 30, "the windows at HQ")
    stats, _ = subscriber.stop()
    assert stored() == summary["windows"] == 6 and stats["stored"] == 6

    # The ACLs as documented: readers cannot write, a store's bridge only its own store.
    assert publish_as(store, "hq", "hq-pw", f"shopper/{STORE}/front/status") == "Not authorized"
    assert publish_as(store, "dev-store-0001-front", "front-pw",
                      f"shopper/{STORE}/back/status") == "Not authorized"
    assert publish_as(hq, "bridge-store-0001", "bridge-pw",
                      "shopper/store-0002/front/status") == "Not authorized"
    assert publish_as(hq, "bridge-store-0001", "bridge-pw",
                      f"shopper/{STORE}/front/status") == "Success"
