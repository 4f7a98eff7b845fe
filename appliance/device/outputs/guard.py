"""The outgoing guard: the last check before anything is published or spooled.

Every message must be one of the known kinds and pass that kind's JSON Schema, whose
objects admit no unknown keys, whose strings are short patterns and which have no arrays.
So binary data, images, crops, boxes, embeddings or track ids cannot get out even if a bug
upstream put them in a document. Refusals are raised with the place and the rule broken,
never the offending value (which could be the very data being kept in).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from jsonschema import Draft202012Validator

from appliance.errors import ApplianceError
from appliance.messages import status_problem

KINDS = {"counts": "counts-2.json", "health": "health-2.json", "worker": "worker-1.json"}
# A window with 32 lines is about 2 kB; with 32 zones and a 32x18 heatmap about 12 kB.
MAX_PAYLOAD_BYTES = 16384


class GuardRefused(ApplianceError):
    """An outgoing message that is not a valid aggregate of its kind."""


@cache
def validator(kind: str) -> Draft202012Validator:
    text = (resources.files("appliance") / "schemas" / KINDS[kind]).read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def check(kind: str, document: object, store_id: str, camera_id: str) -> bytes:
    """The document as the JSON bytes to send, if it is a valid `kind` message of this
    store and camera; raises GuardRefused otherwise."""
    if kind not in KINDS:
        raise GuardRefused(f"refused a message of unknown kind {kind!r}")
    if not isinstance(document, dict):
        raise GuardRefused(f"refused {kind} message: not a JSON object "
                           f"({type(document).__name__})")
    error = next(iter(validator(kind).iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        rule = f"{error.validator}={_short(error.validator_value)}"
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {})
            unexpected = [_short(str(k)[:32]) for k in error.instance if k not in known]
            rule += f" (unexpected: {', '.join(unexpected[:5])})"
        raise GuardRefused(f"refused {kind} message: {where} breaks {rule}")
    if document["store_id"] != store_id or document["camera_id"] != camera_id:
        raise GuardRefused(f"refused {kind} message: it is for {document['store_id']}/"
                           f"{document['camera_id']}, this output is {store_id}/{camera_id}")
    payload = json.dumps(document, separators=(",", ":"), ensure_ascii=True,
                         allow_nan=False).encode("ascii")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise GuardRefused(f"refused {kind} message: {len(payload)} bytes, the limit is "
                           f"{MAX_PAYLOAD_BYTES}")
    return payload


def check_payload(kind: str, payload: bytes | str, store_id: str, camera_id: str) -> bytes:
    """Check bytes already serialised (read back from the spool) the same way."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise GuardRefused(f"refused {kind} message: {len(payload)} bytes, the limit is "
                           f"{MAX_PAYLOAD_BYTES}")
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise GuardRefused(f"refused {kind} message: not JSON text") from None
    return check(kind, document, store_id, camera_id)


def check_status(payload: bytes) -> bytes:
    """`online`, `offline` or a config error's line (appliance/messages.py)."""
    problem = status_problem(payload)
    if problem is not None:
        raise GuardRefused(f"refused status message: {problem}")
    return payload


def _short(value: object) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) \
        else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."
