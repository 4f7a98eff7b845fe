"""Where windows go (`outputs:`): JSON lines and MQTT (broker, TLS, spool), with the
parsers. Here rather than in outputs/, whose package loads the guard and jsonschema: the
pixel worker loads the config and needs neither (about 7 MB and 0.1 s per worker)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.device.config_reader import ConfigReader, join_key
from appliance.messages import TOPIC_PREFIX_PATTERN

# MQTT client ids: letters, digits, '-', '_' and the {store} and {camera} placeholders.
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_{}-]{1,128}$")


@dataclass(frozen=True)
class TlsConfig:
    ca: Path | None = None  # None: the system's trusted CAs
    cert: Path | None = None  # client certificate and key, when the broker wants one
    key: Path | None = None


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    topic_prefix: str = "shopper"
    # "{store}" and "{camera}" are filled in: every camera has its own session and will.
    client_id: str = "shopper-edge-{store}-{camera}"
    username: str | None = None
    password_file: Path | None = None  # the password never sits in the YAML
    tls: TlsConfig | None = None  # None: plain TCP
    qos: int = 1
    keepalive: int = 60
    health_seconds: float = 60.0
    # Windows wait here while the broker is unreachable; one SQLite file per camera.
    spool_dir: Path = Path("/var/lib/shopper-edge/spool")
    spool_max_messages: int = 100_000  # about 69 days of 60 s windows, about 40 MB

    def client_id_for(self, store_id: str, camera_id: str) -> str:
        return self.client_id.format(store=store_id, camera=camera_id)


@dataclass(frozen=True)
class OutputsConfig:
    # "-" is standard output; a path appends JSON lines to that file.
    jsonl: str | None = "-"
    mqtt: MqttConfig | None = None


def parse_outputs(r: ConfigReader, raw: Any, key: str, cameras: int) -> OutputsConfig:
    """`cameras`: how many the config has (each needs its own MQTT client id)."""
    o = r.mapping(raw, key, ("jsonl", "mqtt"))
    jsonl = o.get("jsonl", "-")
    if jsonl is not None and jsonl != "-":
        jsonl = r.resolve(r.string(jsonl, join_key(key, "jsonl")))
    mqtt = o.get("mqtt")
    return OutputsConfig(jsonl=jsonl, mqtt=None if mqtt is None
                         else _mqtt(r, mqtt, join_key(key, "mqtt"), cameras))


def _mqtt(r: ConfigReader, raw: Any, key: str, cameras: int) -> MqttConfig:
    defaults = MqttConfig(host="", port=0)
    m = r.mapping(raw, key, ("host", "port", "topic_prefix", "client_id", "username",
                             "password", "password_file", "tls", "qos", "keepalive",
                             "health_seconds", "spool_dir", "spool_max_messages"))
    if "password" in m:
        raise r.fail(join_key(key, "password"), "not allowed: put the password in a file "
                     "readable only by the service and give its path as password_file")
    if "host" not in m:
        raise r.fail(join_key(key, "host"), "missing")
    tls = _tls(r, m.get("tls"), join_key(key, "tls"))
    client_id = r.string(m.get("client_id", defaults.client_id), join_key(key, "client_id"))
    if not CLIENT_ID_PATTERN.match(client_id):
        raise r.fail(join_key(key, "client_id"), "use 1-128 letters, digits, '-', '_' and the "
                     "placeholders {store} and {camera}")
    try:
        client_id.format(store="s", camera="c")
    except (KeyError, IndexError, ValueError):
        raise r.fail(join_key(key, "client_id"), "only {store} and {camera} may be filled in") \
            from None
    if cameras > 1 and "{camera}" not in client_id:
        raise r.fail(join_key(key, "client_id"), "must contain {camera} when the config has "
                     "several cameras (each camera holds its own MQTT session)")
    prefix = r.string(m.get("topic_prefix", defaults.topic_prefix),
                      join_key(key, "topic_prefix"))
    if not TOPIC_PREFIX_PATTERN.match(prefix):
        raise r.fail(join_key(key, "topic_prefix"), f"{prefix!r} must be 1-4 topic levels of "
                     "letters, digits, '-' or '_' (no wildcards, no leading '$' or '/')")
    username = m.get("username")
    password_file = m.get("password_file")
    if password_file is not None:
        password_file = r.existing_file(password_file, join_key(key, "password_file"))
        if username is None:
            raise r.fail(join_key(key, "username"),
                         "missing (a password_file needs a username)")
    return MqttConfig(
        host=r.string(m["host"], join_key(key, "host")),
        port=int(r.number(m.get("port", 8883 if tls else 1883), join_key(key, "port"),
                          1, 65535)),
        topic_prefix=prefix,
        client_id=client_id,
        username=None if username is None else r.string(username, join_key(key, "username")),
        password_file=password_file,
        tls=tls,
        qos=int(r.choice(m.get("qos", 1), join_key(key, "qos"), (0, 1, 2))),
        keepalive=int(r.number(m.get("keepalive", 60), join_key(key, "keepalive"), 5, 3600)),
        health_seconds=r.number(m.get("health_seconds", 60), join_key(key, "health_seconds"),
                                1, 86400),
        spool_dir=Path(r.resolve(r.string(m.get("spool_dir", str(defaults.spool_dir)),
                                          join_key(key, "spool_dir")))),
        spool_max_messages=int(r.number(m.get("spool_max_messages", 100_000),
                                        join_key(key, "spool_max_messages"), 10, 10_000_000)),
    )


def _tls(r: ConfigReader, raw: Any, key: str) -> TlsConfig | None:
    """`tls: true` trusts the system CAs; a mapping with `ca` turns TLS on unless
    `enabled: false`; absent or `false` is plain TCP."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return TlsConfig()
    t = r.mapping(raw, key, ("enabled", "ca", "cert", "key"))
    if not r.flag(t.get("enabled", True), join_key(key, "enabled")):
        return None
    files = {name: r.existing_file(t[name], join_key(key, name)) if name in t else None
             for name in ("ca", "cert", "key")}
    if (files["cert"] is None) != (files["key"] is None):
        raise r.fail(join_key(key, "cert" if files["cert"] is None else "key"),
                     "missing (a client certificate needs both cert and key)")
    return TlsConfig(**files)
