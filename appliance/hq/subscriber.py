"""HQ subscriber: counts windows and camera status from the broker into the store.

It subscribes to `{prefix}/+/+/counts` and `{prefix}/+/+/status` (as `$share/GROUP/...`
when given a group, so several instances split the load), checks every window against the
schema of its version (`shopper.counts/1` or `/2`) and its topic, stores it, and only then
acknowledges it (manual ack): with a persistent session the broker redelivers whatever was
not stored, and the store drops repeats by message id. A database failure stops the
subscriber (exit status 3) rather than acknowledging what it could not keep; its service
manager restarts it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from jsonschema import Draft202012Validator
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.hq.behaviour import heatmap_cells
from appliance.hq.store import StoreError, WindowStore
from appliance.messages import iso
from appliance.mqtt_link import MqttLink, new_client, read_password

log = logging.getLogger("shopper_hq")
COUNTS_SCHEMAS = {"shopper.counts/1": "counts-1.json", "shopper.counts/2": "counts-2.json"}


@cache
def counts_validator(schema: str) -> Draft202012Validator:
    text = (resources.files("appliance") / "schemas" / COUNTS_SCHEMAS[schema]).read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def window_problem(document: object) -> str | None:
    """Why a document is not a counts window HQ stores (None when it is one): it must pass
    the JSON Schema of the version it names, and a heatmap must fill its grid."""
    schema = document.get("schema") if isinstance(document, dict) else None
    if not isinstance(schema, str) or schema not in COUNTS_SCHEMAS:
        return "not a counts window (unknown schema)"  # the value itself is not logged
    error = next(iter(counts_validator(schema).iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        return f"not a {schema} window ({where} breaks {error.validator})"
    if "heatmap" in document:
        try:
            heatmap_cells(document["heatmap"])
        except ValueError as error:
            return f"not a {schema} window (heatmap: {error})"
    return None


@dataclass(frozen=True)
class SubscriberConfig:
    host: str
    port: int
    topic_prefix: str = "shopper"
    client_id: str = "shopper-hq"
    username: str | None = None
    password_file: Path | None = None
    tls: tuple[Path | None, Path | None, Path | None] | None = None  # ca, cert, key
    share_group: str | None = None
    session_expiry: int = 7 * 86400  # the broker keeps our queue this long while we are away
    keepalive: int = 60


@dataclass
class SubscriberStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    statuses: int = 0


class HqSubscriber:
    def __init__(self, config: SubscriberConfig, store: WindowStore):
        self.config = config
        self.store = store
        self.stats = SubscriberStats()
        self.failed: StoreError | None = None
        self.done = threading.Event()
        self.client = new_client(config.client_id, config.username,
                                 read_password(config.password_file), config.tls,
                                 manual_ack=True)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = config.session_expiry
        self.link = MqttLink(self.client, config.host, config.port, config.keepalive, log,
                             on_up=self._subscribe, clean_start=False, properties=properties)

    def topics(self) -> list[str]:
        share = f"$share/{self.config.share_group}/" if self.config.share_group else ""
        return [f"{share}{self.config.topic_prefix}/+/+/{kind}" for kind in ("counts", "status")]

    def start(self) -> HqSubscriber:
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()

    def _subscribe(self) -> None:
        self.client.subscribe([(topic, 1) for topic in self.topics()])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self.link.report(f"subscription refused: {', '.join(refused)}")
        else:
            log.info("subscribed to %s", ", ".join(self.topics()))

    def _on_message(self, client, userdata, message) -> None:
        try:
            self._handle(message.topic, message.payload)
        except StoreError as error:
            # Not acknowledged: the broker keeps it for the next session.
            self.failed = error
            self.done.set()
            client.disconnect()
            return
        client.ack(message.mid, message.qos)

    def _handle(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        prefix_levels = self.config.topic_prefix.count("/") + 1
        if len(parts) != prefix_levels + 3:
            self._reject(topic, "unexpected topic")
            return
        store_id, camera_id, kind = parts[-3:]
        if kind == "status":
            if payload not in (b"online", b"offline"):
                self._reject(topic, "status is neither online nor offline")
                return
            self.store.set_status(store_id, camera_id, payload.decode(), iso(time.time()))
            self.stats.statuses += 1
            return
        try:
            document = json.loads(payload)
        except (UnicodeDecodeError, ValueError):
            self._reject(topic, "not JSON")
            return
        problem = window_problem(document)
        if problem is not None:
            self._reject(topic, problem)
            return
        if (document["store_id"], document["camera_id"]) != (store_id, camera_id):
            self._reject(topic, "store or camera differs from the topic")
            return
        if self.store.add_window(document, iso(time.time())):
            self.stats.stored += 1
        else:
            self.stats.duplicates += 1

    def _reject(self, topic: str, why: str) -> None:
        self.stats.rejected += 1
        log.warning("rejected a message on %s: %s", topic, why)

