"""HQ subscriber: counts windows and camera status from the broker into the store.

It subscribes to `{prefix}/+/+/counts` and `{prefix}/+/+/status` (as `$share/GROUP/...`
when given a group, so several instances split the load), checks every window against the
schema of its version (`shopper.counts/1` or `/2`) and its topic, stores it, and only then
acknowledges it (manual ack): with a persistent session the broker redelivers whatever was
not stored, and the store drops repeats by message id. Messages are stored in batches (up
to `batch_size`, or what arrived within `batch_seconds`), each in one transaction, and
acknowledged in arrival order after its commit: one commit per batch instead of one per
window is what lets one subscriber keep up with a chain (`make bench-hq`). A database
failure stops the subscriber (exit status 3) rather than acknowledging what it could not
keep; its service manager restarts it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import orjson
from jsonschema import Draft202012Validator
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.hq.behaviour import check_heatmap_shape
from appliance.hq.store import StoreError, WindowStore
from appliance.messages import iso, status_problem
from appliance.mqtt_link import MqttLink, new_client, read_password

log = logging.getLogger("shopper_hq")
COUNTS_SCHEMAS = {"shopper.counts/1": "counts-1.json", "shopper.counts/2": "counts-2.json"}
# health/1 from devices not yet updated; /2 no longer splits frames processed and skipped.
HEALTH_SCHEMAS = {"shopper.health/1": "health-1.json", "shopper.health/2": "health-2.json"}
SCHEMA_FILES = {**COUNTS_SCHEMAS, **HEALTH_SCHEMAS}


@cache
def counts_validator(schema: str) -> Draft202012Validator:
    text = (resources.files("appliance") / "schemas" / SCHEMA_FILES[schema]).read_text("utf-8")
    return Draft202012Validator(json.loads(text))


@cache
def fast_check(schema: str):
    """The schema compiled to Python by fastjsonschema (the hq extra), some ten times
    faster than jsonschema's validator (5.5 ms a counts/2 window here: the ingest's
    bottleneck); None without it. jsonschema still words every refusal."""
    try:
        import fastjsonschema
    except ImportError:
        return None
    return fastjsonschema.compile(inline_refs(counts_validator(schema).schema))


def inline_refs(node, defs: dict | None = None):
    """The schema with each `{"$ref": "#/$defs/NAME"}` replaced by that definition (the
    same constraints): fastjsonschema makes a `$ref` a function call that formats its error
    path on every call, which was three quarters of a counts/2 check (220 -> 59 µs here).
    A `$ref` may only have a description beside it (true of these schemas)."""
    defs = node.get("$defs", {}) if defs is None else defs
    if isinstance(node, list):
        return [inline_refs(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        if not node["$ref"].startswith("#/$defs/") or set(node) - {"$ref", "description"}:
            raise ValueError(f"cannot inline {node}")
        return inline_refs(defs[node["$ref"].removeprefix("#/$defs/")], defs)
    return {key: inline_refs(value, defs) for key, value in node.items() if key != "$defs"}


def _passes(schema: str, document: dict) -> bool:
    check = fast_check(schema)
    if check is None:
        return counts_validator(schema).is_valid(document)
    try:
        check(document)
        return True
    except __import__("fastjsonschema").JsonSchemaException:
        return False


def window_problem(document: object) -> str | None:
    """Why a document is not a counts window HQ stores (None when it is one): it must pass
    the JSON Schema of the version it names, and a heatmap must fill its grid."""
    schema = document.get("schema") if isinstance(document, dict) else None
    if not isinstance(schema, str) or schema not in COUNTS_SCHEMAS:
        return "not a counts window (unknown schema)"  # the value itself is not logged
    if not _passes(schema, document):
        error = next(iter(counts_validator(schema).iter_errors(document)), None)
        where = "/".join(str(p) for p in error.absolute_path) or "(document)" \
            if error else "(document)"
        return f"not a {schema} window ({where} breaks {error.validator if error else 'schema'})"
    if "heatmap" in document:
        try:
            check_heatmap_shape(document["heatmap"])
        except ValueError as error:
            return f"not a {schema} window (heatmap: {error})"
    return None


def health_problem(document: object) -> str | None:
    """Why a document is not a health message HQ keeps (None when it is one)."""
    schema = document.get("schema") if isinstance(document, dict) else None
    if not isinstance(schema, str) or schema not in HEALTH_SCHEMAS:
        return "not a health message (unknown schema)"
    if not _passes(schema, document):
        error = next(iter(counts_validator(schema).iter_errors(document)), None)
        where = "/".join(str(p) for p in error.absolute_path) or "(document)" \
            if error else "(document)"
        return f"not a {schema} message ({where} breaks " \
            f"{error.validator if error else 'schema'})"
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
    batch_size: int = 500  # messages stored in one transaction at most
    batch_seconds: float = 0.05  # how long a batch waits for more messages


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
        # Unacknowledged messages the broker may send us: enough for two batches in flight
        # (a batch is acknowledged only after its commit).
        properties.ReceiveMaximum = min(65535, 2 * config.batch_size)
        self._incoming: queue.Queue = queue.Queue()  # (topic, payload, mid, qos); None: stop
        self._writer = threading.Thread(target=self._write_batches, name="hq store",
                                         daemon=True)
        self.link = MqttLink(self.client, config.host, config.port, config.keepalive, log,
                             on_up=self._subscribe, clean_start=False, properties=properties)

    def topics(self) -> list[str]:
        share = f"$share/{self.config.share_group}/" if self.config.share_group else ""
        return [f"{share}{self.config.topic_prefix}/+/+/{kind}"
                for kind in ("counts", "status", "health")]

    def start(self) -> HqSubscriber:
        self._writer.start()
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()
        self._incoming.put(None)  # what is still queued is not acknowledged: redelivered
        self._writer.join(timeout=30)

    def _subscribe(self) -> None:
        self.client.subscribe([(topic, 1) for topic in self.topics()])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self.link.report(f"subscription refused: {', '.join(refused)}")
        else:
            log.info("subscribed to %s", ", ".join(self.topics()))

    def _on_message(self, client, userdata, message) -> None:
        self._incoming.put((message.topic, message.payload, message.mid, message.qos))

    def _write_batches(self) -> None:
        """The writer thread: a batch per transaction, acknowledged after its commit."""
        while True:
            batch = [self._incoming.get()]
            deadline = time.monotonic() + self.config.batch_seconds
            while batch[-1] is not None and len(batch) < self.config.batch_size:
                try:
                    batch.append(self._incoming.get(
                        timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            stopping = batch[-1] is None
            batch = [item for item in batch if item is not None]
            if batch:
                try:
                    self._store(batch)
                except StoreError as error:
                    # Not acknowledged: the broker keeps them for the next session.
                    self.failed = error
                    self.done.set()
                    self.client.disconnect()
                    return
                for _topic, _payload, mid, qos in batch:
                    self.client.ack(mid, qos)
            if stopping:
                return

    def _store(self, batch: list[tuple]) -> None:
        found = {"counts": [], "status": [], "health": []}
        for topic, payload, _mid, _qos in batch:
            kind, value = self._check(topic, payload) or (None, None)
            if kind is not None:
                found[kind].append(value)
        stored = self.store.add_batch(found["counts"], found["status"], iso(time.time()),
                                      found["health"])
        self.stats.stored += sum(stored)
        self.stats.duplicates += len(stored) - sum(stored)
        self.stats.statuses += len(found["status"])

    def _check(self, topic: str, payload: bytes) -> tuple[str, object] | None:
        """("counts", document), ("status", (store, camera, status)) or ("health",
        document) of a message; None: rejected."""
        parts = topic.split("/")
        prefix_levels = self.config.topic_prefix.count("/") + 1
        if len(parts) != prefix_levels + 3:
            return self._reject(topic, "unexpected topic")
        store_id, camera_id, kind = parts[-3:]
        if kind == "status":
            problem = status_problem(payload)
            if problem is not None:
                return self._reject(topic, f"status: {problem}")
            return kind, (store_id, camera_id, payload.decode())
        try:
            document = orjson.loads(payload)  # UTF-8 only, as the devices send
        except orjson.JSONDecodeError:
            return self._reject(topic, "not JSON")
        problem = window_problem(document) if kind == "counts" else health_problem(document)
        if problem is not None:
            return self._reject(topic, problem)
        if (document["store_id"], document["camera_id"]) != (store_id, camera_id):
            return self._reject(topic, "store or camera differs from the topic")
        return kind, document

    def _reject(self, topic: str, why: str) -> None:
        self.stats.rejected += 1
        log.warning("rejected a message on %s: %s", topic, why)
        return None

