"""Plan images: the picture of the store a camera's heatmap is drawn over at HQ (the
camera's people-free plate, exported by the installer's setup page). Only ever a file an
operator gives `shopper-hq plan set`: never from a device, never over MQTT."""

from __future__ import annotations

import re
from pathlib import Path

from appliance.errors import ApplianceError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a store or camera id (schema)
MEDIA_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
MAX_BYTES = 8 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 64, 8192  # pixels


def read_plan(path: Path) -> tuple[str, bytes]:
    """(media type, bytes) of a PNG or JPEG plan; one-line ApplianceError otherwise."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ApplianceError(f"{path}: {size} bytes; a plan image is at most "
                                 f"{MAX_BYTES // (1024 * 1024)} MiB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ApplianceError(f"{path}: no such file") from None
    except OSError as error:
        raise ApplianceError(f"{path}: cannot read: {error.strerror}") from None
    media_type = next((t for magic, t in MEDIA_TYPES.items() if data.startswith(magic)), None)
    if media_type is None:
        raise ApplianceError(f"{path}: not a PNG or JPEG image")
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ApplianceError(f"{path}: cannot decode the {media_type.split('/')[1].upper()} "
                             "image (truncated or corrupt?)")
    height, width = image.shape[:2]
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ApplianceError(f"{path}: {width}x{height} pixels; a plan image's sides are "
                             f"{MIN_SIDE} to {MAX_SIDE} pixels")
    return media_type, data
