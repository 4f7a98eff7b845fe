"""One paho-mqtt client kept connected to one broker, for the device and for HQ.

paho's own reconnect loop only logs failures at debug level; this one tells the operator
why in one line (untrusted certificate, wrong password, refused, unreachable), repeats that
line only when the cause changes or every ten minutes, and backs off 1 s doubling to 60 s.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from appliance.errors import ApplianceError

BACKOFF = (1.0, 60.0)
REPEAT_PROBLEM_SECONDS = 600.0


def new_client(client_id: str, username: str | None, password: str | None,
               tls: tuple[Path | None, Path | None, Path | None] | None,
               manual_ack: bool = False) -> mqtt.Client:
    """An MQTT 5 client (so refusals come back as reason codes); tls is (ca, cert, key),
    ca None meaning the system's trusted CAs."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5, reconnect_on_failure=False,
                         manual_ack=manual_ack)
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        if tls[2] is not None:
            check_private(Path(tls[2]), "TLS key")
        ca, cert, key = (None if p is None else str(p) for p in tls)
        try:
            client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED)
        except (OSError, ssl.SSLError, ValueError) as error:
            files = ", ".join(p for p in (ca, cert, key) if p) or "system CAs"
            raise ApplianceError(f"{files}: cannot load the TLS files: "
                                 f"{getattr(error, 'reason', None) or error}") from None
    return client


def check_private(path: Path, what: str) -> None:
    """Refuse a secret that the group or others may read: on a breached device, another
    account must not get the broker credentials."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise ApplianceError(f"{path}: cannot read the {what}: {error.strerror}") from None
    if mode & 0o077:
        raise ApplianceError(f"{path}: the {what} is readable by group or others "
                             f"(mode {mode & 0o777:04o}); chmod 600 it, owned by the service "
                             "user")


def read_password(path: Path | None) -> str | None:
    if path is None:
        return None
    check_private(Path(path), "MQTT password file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ApplianceError(f"{path}: cannot read the MQTT password file: "
                             f"{getattr(error, 'strerror', None) or error}") from None
    password = text.rstrip("\r\n")
    if not password:
        raise ApplianceError(f"{path}: the MQTT password file is empty")
    return password


class MqttLink:
    """Runs `client`'s network loop in a thread, reconnecting until stopped. `on_up` runs
    (in that thread) on every accepted connection, `on_down` when one ends."""

    def __init__(self, client: mqtt.Client, host: str, port: int, keepalive: int,
                 log: logging.Logger, on_up: Callable[[], None],
                 on_down: Callable[[], None] = lambda: None, clean_start: bool = True,
                 properties=None, status: Callable[[], str] = lambda: ""):
        self.client = client
        self.host, self.port, self.keepalive = host, port, keepalive
        self.broker = f"{host}:{port}"
        self.log = log
        self.on_up, self.on_down = on_up, on_down
        self.clean_start = clean_start
        self.properties = properties
        self.status = status  # appended to problem lines, e.g. how much is spooled
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.connects = 0
        self._refusal: str | None = None
        self._problem: tuple[str, float] | None = None
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._thread = threading.Thread(target=self._run, name=f"mqtt {self.broker}",
                                        daemon=True)

    def start(self) -> MqttLink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.client.disconnect()
        self._thread.join(timeout=10)

    def report(self, problem: str) -> None:
        now = time.monotonic()
        if self._problem and self._problem[0] == problem and \
                now - self._problem[1] < REPEAT_PROBLEM_SECONDS:
            return
        self._problem = (problem, now)
        self.log.warning("mqtt %s: %s%s", self.broker, problem, self.status())

    def _run(self) -> None:
        delay = BACKOFF[0]
        while not self.stopping.is_set():
            self._refusal = None
            try:
                self.client.connect(self.host, self.port, self.keepalive,
                                    clean_start=self.clean_start, properties=self.properties)
            except (OSError, ValueError) as error:
                problem = describe_connect_error(error)
            else:
                self.client.loop_forever()  # returns when this connection ends
                if self.stopping.is_set():
                    break
                problem = self._refusal or "connection lost"
                if self._refusal is None:
                    delay = BACKOFF[0]  # it worked for a while: retry soon
            if self.stopping.is_set():
                break
            self.report(problem)
            self.stopping.wait(delay)
            delay = min(delay * 2, BACKOFF[1])

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            hint = "; check the username and password file" \
                if reason_code.value in (134, 135) else ""
            self._refusal = f"broker refused the connection: {reason_code}{hint}"
            return
        self.connects += 1
        self.connected.set()
        if self._problem is not None:
            self.log.info("mqtt %s: connected%s", self.broker, self.status())
            self._problem = None
        self.on_up()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        # 128 "Unspecified error" is paho's name for a connection that simply dropped.
        if reason_code.is_failure and reason_code.value != 128 and self._refusal is None:
            self._refusal = f"disconnected by the broker: {reason_code}"
        if was_connected:
            self.on_down()


def describe_connect_error(error: BaseException) -> str:
    """One line a store's IT can act on, for each way a connection fails."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate is not trusted ({error.verify_message}); " \
            "check the CA file"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed ({error.reason or error})"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the broker running on this port?)"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host name ({error.strerror})"
    if isinstance(error, TimeoutError):
        return "connection timed out"
    if isinstance(error, OSError):
        return f"cannot connect ({error.strerror or error})"
    return f"cannot connect ({error})"
