"""V4L2 for real: the stock kernel's vivid test driver gives /dev/video0; a camera reading it
runs under the unit's DevicePolicy=closed and reports the frames it received and its
detector's time per run on them (health over MQTT). Deployed by `make deploy` with a
config naming only that camera, so the installer also stops and disables the camera no
longer listed."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import wait_for
from tests.twin.conftest import STORE, TIMES, UNIT, USERS, deploy, device_config


def health_messages(store, camera_id: str):
    messages: list[dict] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("hq", USERS["hq"])
    client.tls_set(ca_certs=str(store.broker.ca))
    lock = threading.Lock()

    def on_message(_client, _userdata, message):
        with lock:
            messages.append(json.loads(message.payload))

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(f"shopper/{STORE}/{camera_id}/health", qos=1)
    client.connect("localhost", store.broker.port)
    client.loop_start()
    return client, messages


def test_vivid_v4l2_camera_counts_frames_under_device_policy_closed(deployed, store, camera,
                                                                    tmp_path):
    deployed.run("modprobe vivid")
    wait_for(lambda: deployed.run("test -c /dev/video0", check=False).returncode == 0, 30,
             "/dev/video0", poll=1)
    assert deployed.out("stat -c %G /dev/video0").strip() == "video"
    client, health = health_messages(store, "vivid")
    try:
        result = deploy(deployed, device_config(tmp_path, store, camera, v4l2=True))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        unit = "shopper-edge@vivid.service"
        assert deployed.show("DevicePolicy", unit) == "closed"
        assert "char-video4linux rw" in deployed.out(f"systemctl show -p DeviceAllow {unit}")
        # Health (shopper.health/2) counts the frames the camera delivered, and gives the
        # detector's time per run only for a period in which it ran on them.
        wait_for(lambda: any(h["frames_received"] > 0 and h["inference_ms"] > 0
                             for h in health), 400,
                 lambda: deployed.journal(unit)[-3000:], poll=3)
        TIMES["vivid frames"] = sum(h["frames_received"] for h in health)
        assert deployed.show("ActiveState", unit) == "active"
        # The RTSP camera is no longer in the config: the installer stopped and disabled it.
        assert deployed.show("ActiveState", UNIT) == "inactive"
        assert deployed.show("UnitFileState", UNIT) == "disabled"
    finally:
        client.loop_stop()
        client.disconnect()
