"""MQTT output: counts windows through the spool, status with a last will, periodic health.

Topics, for prefix P, store S and camera C (docs/mqtt.md):
  P/S/C/counts  one message per window, QoS `qos`, not retained, sent oldest first
  P/S/C/status  retained "online" on every connect; "offline" as the last will and on exit
  P/S/C/health  at wall-clock multiples of `health_every` (health_seconds rounded up to
                whole windows, appliance/device/health.py) while connected; not retained,
                not spooled; none on stop (it would say when, inside a window, it stopped)

A window is deleted from the spool only when the broker acknowledges it (PUBACK), so an
outage, a crash or a refusal keeps it; repeats after a crash are possible and receivers
drop them by `message_id`. MQTT 5 is used so that a broker's refusal of a publish (ACL)
comes back as a reason code instead of being silently dropped.

Threads: paho's network loop runs in an MqttLink (connect, back off, reconnect);
`_forward` alone reads the spool and publishes. paho callbacks only set flags, queue acks.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from appliance.device.outputs import guard
from appliance.device.outputs.spool import Spool
from appliance.device.outputs_config import MqttConfig
from appliance.mqtt_link import MqttLink, new_client, read_password

log = logging.getLogger("shopper_edge.mqtt")

MAX_INFLIGHT = 10  # windows published and not yet acknowledged
REFUSED_RETRY_SECONDS = 30.0  # after the broker refused a window, try it again this late


def topics(prefix: str, store_id: str, camera_id: str) -> dict[str, str]:
    base = f"{prefix}/{store_id}/{camera_id}"
    return {kind: f"{base}/{kind}" for kind in ("counts", "status", "health")}


class MqttOutput:
    def __init__(self, config: MqttConfig, store_id: str, camera_id: str,
                 health: Callable[[int, int, int], dict | None] | None = None,
                 health_every: float | None = None):
        self.config = config
        self.store_id = store_id
        self.camera_id = camera_id
        self.health = health  # (connects, spool depth, spool dropped) -> health document
        self.health_every = health_every or config.health_seconds
        self.topics = topics(config.topic_prefix, store_id, camera_id)
        self.broker = f"{config.host}:{config.port}"
        self.spool = Spool(config.spool_dir / f"{store_id}-{camera_id}.sqlite",
                           config.spool_max_messages)
        tls = None if config.tls is None else (config.tls.ca, config.tls.cert, config.tls.key)
        self.client = new_client(config.client_id_for(store_id, camera_id), config.username,
                                 read_password(config.password_file), tls)
        self.client.will_set(self.topics["status"], guard.check_status(b"offline"), qos=1,
                             retain=True)
        self.client.max_inflight_messages_set(MAX_INFLIGHT + 2)  # + status and health
        self.client.on_publish = self._on_publish
        self.link = MqttLink(self.client, config.host, config.port, config.keepalive, log,
                             on_up=self._on_up, status=self._spool_status)
        self._wake = threading.Event()
        self._health_lock = threading.Lock()  # one health document at a time
        self._acks: queue.Queue = queue.Queue()
        self._inflight: dict[int, int] = {}  # paho message id -> spool sequence number
        self._cursor = 0  # highest spool sequence number handed to paho
        self._refused_until = 0.0
        self.unsent = 0  # windows left in the spool at close
        self._forwarder = threading.Thread(target=self._forward, name=f"spool-{camera_id}",
                                           daemon=True)

    # -- the pipeline side ------------------------------------------------------------

    def start(self) -> MqttOutput:
        self._forwarder.start()
        self.link.start()
        return self

    def send(self, payload: bytes) -> None:
        """Spool one guard-checked counts payload; it leaves when the broker is there."""
        dropped = self.spool.put(self.topics["counts"], payload)
        if dropped:
            log.warning("%s: spool full (%d windows): dropped the %d oldest", self.camera_id,
                        self.spool.max_messages, dropped)
        self._wake.set()

    def close(self, drain_seconds: float = 10.0, wait_for_broker: bool = False) -> None:
        """Send what is spooled, for up to drain_seconds (waiting for the broker to come
        back too when wait_for_broker), say offline, disconnect. What is not sent stays in
        the spool for the next start."""
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline and (self.spool.depth() or self._inflight):
            connected = self.link.connected.is_set()
            if not (connected or wait_for_broker) or \
                    (connected and time.monotonic() < self._refused_until):
                break
            self._wake.set()
            time.sleep(0.05)
        with self._health_lock:
            self.health = None  # no health after offline: one being sent is queued before it
        if self.link.connected.is_set():
            info = self.client.publish(self.topics["status"], guard.check_status(b"offline"),
                                       qos=1, retain=True)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout=2.0)
        self.link.stop()
        self._wake.set()
        self._forwarder.join(timeout=10)
        left = self.unsent = self.spool.depth()
        if left:
            log.warning("%s: %d windows stay in the spool %s for the next start",
                        self.camera_id, left, self.spool.path)
        self.spool.close()

    # -- paho callbacks (network thread) ----------------------------------------------

    def _on_up(self) -> None:
        self.client.publish(self.topics["status"], guard.check_status(b"online"), qos=1,
                            retain=True)
        self._wake.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.put((mid, reason_code))
        self._wake.set()

    def _spool_status(self) -> str:
        return f"; windows in the spool: {self.spool.depth()}"

    # -- the forwarding thread --------------------------------------------------------

    def _forward(self) -> None:
        every = self.health_every
        next_health = _next_boundary(every)
        while not self.link.stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self._take_acks()
            if not self.link.connected.is_set():
                continue
            if self.health is not None and time.monotonic() >= next_health:
                next_health = _next_boundary(every)
                self._publish_health()
            if time.monotonic() >= self._refused_until:
                self._publish_spooled()

    def _publish_spooled(self) -> None:
        room = MAX_INFLIGHT - len(self._inflight)
        if room <= 0:
            return
        for seq, topic, payload in self.spool.after(self._cursor, room):
            try:
                body = guard.check_payload("counts", payload, self.store_id, self.camera_id)
            except guard.GuardRefused as error:
                # Only a damaged or tampered spool file gets here: never send it.
                log.error("%s: %s; deleted from the spool", self.spool.path, error)
                self.spool.delete(seq)
                continue
            info = self.client.publish(topic, body, qos=self.config.qos, retain=False)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("mqtt %s: publish failed: %s", self.broker, mqtt.error_string(info.rc))
                return
            # NO_CONN: paho keeps it and sends it on reconnect, in order.
            self._inflight[info.mid] = seq
            self._cursor = seq

    def _take_acks(self) -> None:
        while True:
            try:
                mid, reason_code = self._acks.get_nowait()
            except queue.Empty:
                return
            seq = self._inflight.pop(mid, None)
            if seq is None:
                continue  # status or health
            if reason_code.is_failure:
                # Kept in the spool and tried again later, in order, from this one.
                self.link.report(f"broker refused a window on {self.topics['counts']}: "
                                 f"{reason_code}")
                self._refused_until = time.monotonic() + REFUSED_RETRY_SECONDS
                self._cursor = min(self._cursor, seq - 1)
            else:
                self.spool.delete(seq)

    def _publish_health(self) -> None:
        with self._health_lock:  # a health document measures since the previous one
            if self.health is None:
                return  # closing: offline is (being) said
            try:
                document = self.health(self.link.connects, self.spool.depth(),
                                       self.spool.dropped())
                if document is None:
                    return  # the first boundary: figures count from here
                body = guard.check("health", document, self.store_id, self.camera_id)
            except guard.GuardRefused as error:
                log.error("%s", error)
                return
            self.client.publish(self.topics["health"], body, qos=self.config.qos, retain=False)


def _next_boundary(every: float) -> float:
    """When the next wall-clock multiple of `every` comes, on the monotonic clock: a step of
    the system clock (time sync, or set back an hour) never holds health back."""
    return time.monotonic() + every - time.time() % every
