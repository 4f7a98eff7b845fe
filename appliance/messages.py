"""What the device's messages and head office agree on, beside the schemas in schemas/:
the topic prefix's form and the time format of every timestamp."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

TOPIC_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}(/[A-Za-z0-9_-]{1,32}){0,3}$")


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
