"""MQTT output: counts windows through the spool, status with a last will, periodic health.

Topics, for prefix P, store S and camera C (docs/mqtt.md):
  P/S/C/counts  one message per window, QoS `qos`, not retained, sent oldest first
  P/S/C/status  retained "online" on every connect; "offline" as the last will and on exit
  P/S/C/health  every `health_seconds` while connected, not retained, not spooled

A window is deleted from the spool only when the broker acknowledges it (PUBACK), so an
outage, a crash or a refusal keeps it; repeats after a crash are possible and receivers
drop them by `message_id`. MQTT 5 is used so that a broker's refusal of a publish (ACL)
comes back as a reason code instead of being silently dropped.

Threads: paho's network loop runs in `_network` (connect, back off, reconnect); `_forward`
alone reads the spool and publishes. paho callbacks only set flags and queue acks.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from appliance.config import MqttConfig
from appliance.errors import ApplianceError
from appliance.outputs import guard
from appliance.outputs.spool import Spool

log = logging.getLogger("shopper_edge.mqtt")

MAX_INFLIGHT = 10  # windows published and not yet acknowledged
BACKOFF = (1.0, 60.0)  # seconds between connection attempts: doubling, capped
REFUSED_RETRY_SECONDS = 30.0  # after the broker refused a window, try it again this late
REPEAT_PROBLEM_SECONDS = 600.0  # an unchanged problem is logged again this often


def topics(prefix: str, store_id: str, camera_id: str) -> dict[str, str]:
    base = f"{prefix}/{store_id}/{camera_id}"
    return {kind: f"{base}/{kind}" for kind in ("counts", "status", "health")}


def read_password(config: MqttConfig) -> str | None:
    if config.password_file is None:
        return None
    try:
        text = config.password_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ApplianceError(f"{config.password_file}: cannot read the MQTT password file: "
                             f"{getattr(error, 'strerror', None) or error}") from None
    password = text.rstrip("\r\n")
    if not password:
        raise ApplianceError(f"{config.password_file}: the MQTT password file is empty")
    return password


class MqttOutput:
    def __init__(self, config: MqttConfig, store_id: str, camera_id: str,
                 health: Callable[[int, int, int], dict] | None = None):
        self.config = config
        self.store_id = store_id
        self.camera_id = camera_id
        self.health = health  # (connects, spool depth, spool dropped) -> health document
        self.topics = topics(config.topic_prefix, store_id, camera_id)
        self.broker = f"{config.host}:{config.port}"
        self.spool = Spool(config.spool_dir / f"{store_id}-{camera_id}.sqlite",
                           config.spool_max_messages)
        self.connects = 0
        self.client = self._client(read_password(config))
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._acks: queue.Queue = queue.Queue()
        self._inflight: dict[int, int] = {}  # paho message id -> spool sequence number
        self._cursor = 0  # highest spool sequence number handed to paho
        self._refused_until = 0.0
        self._connack_problem: str | None = None
        self._problem: tuple[str, float] | None = None  # last logged problem, when
        self._threads = [threading.Thread(target=self._network, name=f"mqtt-{camera_id}",
                                          daemon=True),
                         threading.Thread(target=self._forward, name=f"spool-{camera_id}",
                                          daemon=True)]

    def _client(self, password: str | None) -> mqtt.Client:
        c = self.config
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=c.client_id_for(self.store_id, self.camera_id),
                             protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        if c.username is not None:
            client.username_pw_set(c.username, password)
        if c.tls is not None:
            try:
                client.tls_set(ca_certs=_str(c.tls.ca), certfile=_str(c.tls.cert),
                               keyfile=_str(c.tls.key), cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ssl.SSLError, ValueError) as error:
                files = ", ".join(str(p) for p in (c.tls.ca, c.tls.cert, c.tls.key) if p)
                raise ApplianceError(f"{files}: cannot load the TLS files: "
                                     f"{getattr(error, 'reason', None) or error}") from None
        client.will_set(self.topics["status"], guard.check_status(b"offline"), qos=1,
                        retain=True)
        client.max_inflight_messages_set(MAX_INFLIGHT + 2)  # + status and health
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # -- the pipeline side ------------------------------------------------------------

    def start(self) -> MqttOutput:
        for thread in self._threads:
            thread.start()
        return self

    def send(self, payload: bytes) -> None:
        """Spool one guard-checked counts payload; it leaves when the broker is there."""
        dropped = self.spool.put(self.topics["counts"], payload)
        if dropped:
            log.warning("%s: spool full (%d windows): dropped the %d oldest", self.camera_id,
                        self.spool.max_messages, dropped)
        self._wake.set()

    def close(self, drain_seconds: float = 10.0) -> None:
        """Send what is spooled (up to drain_seconds), say offline, disconnect. What is not
        sent stays in the spool for the next start."""
        deadline = time.monotonic() + drain_seconds
        while self._connected.is_set() and time.monotonic() < deadline and \
                (self.spool.depth() or self._inflight):
            self._wake.set()
            time.sleep(0.05)
        if self._connected.is_set():
            info = self.client.publish(self.topics["status"], guard.check_status(b"offline"),
                                       qos=1, retain=True)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout=2.0)
        self._stopping.set()
        self._wake.set()
        self.client.disconnect()
        for thread in self._threads:
            thread.join(timeout=10)
        left = self.spool.depth()
        if left:
            log.warning("%s: %d windows stay in the spool %s for the next start",
                        self.camera_id, left, self.spool.path)
        self.spool.close()

    # -- the network thread -----------------------------------------------------------

    def _network(self) -> None:
        delay = BACKOFF[0]
        while not self._stopping.is_set():
            self._connack_problem = None
            try:
                self.client.connect(self.config.host, self.config.port, self.config.keepalive,
                                    clean_start=True)
            except (OSError, ValueError) as error:
                problem = describe_connect_error(error)
            else:
                self.client.loop_forever()  # returns when this connection ends
                if self._stopping.is_set():
                    break
                problem = self._connack_problem or "connection lost"
                if self._connack_problem is None:
                    delay = BACKOFF[0]  # it worked for a while: retry soon
            if self._stopping.is_set():
                break
            self._report(problem)
            self._stopping.wait(delay)
            delay = min(delay * 2, BACKOFF[1])

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._connack_problem = f"broker refused the connection: {reason_code}"
            return
        self.connects += 1
        client.publish(self.topics["status"], guard.check_status(b"online"), qos=1,
                       retain=True)
        self._connected.set()
        if self._problem is not None:
            log.info("mqtt %s: connected; %d windows waiting in the spool", self.broker,
                     self.spool.depth())
            self._problem = None
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if reason_code.is_failure and not self._stopping.is_set() and \
                self._connack_problem is None:
            self._connack_problem = f"disconnected by the broker: {reason_code}" \
                if reason_code.value != 128 else None  # 128: the socket closed under us

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.put((mid, reason_code))
        self._wake.set()

    def _report(self, problem: str) -> None:
        """One line per problem, repeated only when it changes or every ten minutes."""
        now = time.monotonic()
        if self._problem and self._problem[0] == problem and \
                now - self._problem[1] < REPEAT_PROBLEM_SECONDS:
            return
        self._problem = (problem, now)
        log.warning("mqtt %s: %s; %d windows kept in the spool", self.broker, problem,
                    self.spool.depth())

    # -- the forwarding thread --------------------------------------------------------

    def _forward(self) -> None:
        next_health = time.monotonic() + self.config.health_seconds
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self._take_acks()
            if not self._connected.is_set():
                continue
            now = time.monotonic()
            if self.health is not None and now >= next_health:
                next_health = now + self.config.health_seconds
                self._publish_health()
            if now >= self._refused_until:
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
                self._report(f"broker refused a window on {self.topics['counts']}: "
                             f"{reason_code}")
                self._refused_until = time.monotonic() + REFUSED_RETRY_SECONDS
                self._cursor = min(self._cursor, seq - 1)
            else:
                self.spool.delete(seq)

    def _publish_health(self) -> None:
        try:
            document = self.health(self.connects, self.spool.depth(), self.spool.dropped())
            body = guard.check("health", document, self.store_id, self.camera_id)
        except guard.GuardRefused as error:
            log.error("%s", error)
            return
        self.client.publish(self.topics["health"], body, qos=self.config.qos, retain=False)


def describe_connect_error(error: BaseException) -> str:
    """One line a store's IT can act on, for each way a connection fails."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate is not trusted ({error.verify_message}); " \
            "check outputs.mqtt.tls.ca"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed ({error.reason or error})"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the broker running on this port?)"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host name ({error.strerror})"
    if isinstance(error, TimeoutError | socket.timeout):
        return "connection timed out"
    if isinstance(error, OSError):
        return f"cannot connect ({error.strerror or error})"
    return f"cannot connect ({error})"


def _str(path) -> str | None:
    return None if path is None else str(path)
