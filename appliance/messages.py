"""What the device's messages and head office agree on, beside the schemas in schemas/:
the topic prefix's form, the status topic's payloads and the time format of every
timestamp."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

TOPIC_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}(/[A-Za-z0-9_-]{1,32}){0,3}$")

# The status topic: `online`, `offline`, or `config-error: ` and the one line of a config
# error (a box whose config is invalid counts nothing and says why). The line is printable
# ASCII, at most 300 characters, with no '@' and no '://' (no URL or user@host, where a
# password could ride along); the device sends values of the config as `'...'`.
CONFIG_ERROR = "config-error: "
_CONFIG_ERROR_LINE = re.compile(rb"config-error: [ -~]{1,300}")


def status_problem(payload: bytes) -> str | None:
    """Why a status payload is not one the device may send; None when it is."""
    if payload in (b"online", b"offline"):
        return None
    if not _CONFIG_ERROR_LINE.fullmatch(payload):
        return ("only 'online', 'offline' or 'config-error: ' and one line of at most 300 "
                "printable ASCII characters")
    if b"@" in payload or b"://" in payload:
        return "a config error line carries no URL or address ('@', '://')"
    return None


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def bin_bounds(label: str) -> tuple[float, float]:
    """Seconds a dwell or wait histogram bin covers: "10-30" is [10, 30), "300+" is
    [300, inf)."""
    if label.endswith("+"):
        return float(label[:-1]), math.inf
    low, high = label.split("-")
    return float(low), float(high)
