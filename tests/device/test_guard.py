"""The outgoing guard: only schema-valid aggregates of this store and camera get out."""

from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest

from appliance.device.outputs import Outputs, guard
from appliance.device.privacy import PrivacyConfig, protect
from appliance.device.window import WindowAggregator

STORE, CAMERA = "shop-1", "door"


def window() -> dict:
    aggregator = WindowAggregator(STORE, CAMERA, ["door"], 60, "wall")
    aggregator.add(1_800_000_000.0, [])
    return protect(aggregator.flush()[0], PrivacyConfig())


def test_a_window_from_the_aggregator_passes_and_comes_back_as_compact_json():
    document = window()
    payload = guard.check("counts", document, STORE, CAMERA)
    assert json.loads(payload) == document
    assert b" " not in payload


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.mark.parametrize("change, where", [
    (lambda d: d.update(frame=PNG), "(document) breaks additionalProperties"),
    (lambda d: d.update(crop=np.zeros((4, 4, 3), np.uint8)), "breaks additionalProperties"),
    (lambda d: d["lines"].update(door={"in": 1, "out": 0, "track_ids": [1, 2]}),
     "lines/door breaks additionalProperties"),
    (lambda d: d["lines"].update(door={"in": PNG, "out": 0}), "lines/door/in breaks type"),
    (lambda d: d["lines"].update(door={"in": [255] * 1000, "out": 0}), "lines/door/in breaks"),
    (lambda d: d.update(camera_id="x" * 5000), "camera_id breaks pattern"),
    (lambda d: d.update(store_id=PNG.decode("latin-1")), "store_id breaks"),
    (lambda d: d.update(message_id="not-hex"), "message_id breaks pattern"),
    (lambda d: d.pop("window_end"), "(document) breaks required"),
    (lambda d: d["lines"].update(door={"in": -1, "out": 0}), "lines/door/in breaks minimum"),
    (lambda d: d["lines"].update(door={"in": float("nan"), "out": 0}), "lines/door/in breaks"),
    (lambda d: d.update(schema="shopper.counts/99"), "schema breaks const"),
])
def test_anything_but_an_aggregate_is_refused_without_echoing_it(change, where):
    document = window()
    change(document)
    with pytest.raises(guard.GuardRefused) as refused:
        guard.check("counts", document, STORE, CAMERA)
    message = str(refused.value)
    assert where in message
    assert len(message) < 300 and "PNG" not in message and "xxxxxxxx" not in message


def test_a_window_of_another_camera_or_an_unknown_kind_is_refused():
    with pytest.raises(guard.GuardRefused, match="for shop-1/door, this output is shop-1/back"):
        guard.check("counts", window(), STORE, "back")
    with pytest.raises(guard.GuardRefused, match="unknown kind 'frames'"):
        guard.check("frames", window(), STORE, CAMERA)
    with pytest.raises(guard.GuardRefused, match="not a JSON object"):
        guard.check("counts", [window()], STORE, CAMERA)


def test_spooled_payloads_are_checked_again_when_read_back():
    payload = guard.check("counts", window(), STORE, CAMERA)
    assert guard.check_payload("counts", payload.decode(), STORE, CAMERA) == payload
    tampered = json.loads(payload)
    tampered["image"] = "aGVsbG8="
    with pytest.raises(guard.GuardRefused):
        guard.check_payload("counts", json.dumps(tampered), STORE, CAMERA)
    with pytest.raises(guard.GuardRefused, match="not JSON"):
        guard.check_payload("counts", PNG, STORE, CAMERA)
    with pytest.raises(guard.GuardRefused, match="bytes, the limit is"):
        guard.check_payload("counts", b"{" + b" " * (guard.MAX_PAYLOAD_BYTES + 1) + b"}",
                            STORE, CAMERA)


def test_status_admits_only_online_offline_and_a_config_error_line():
    assert guard.check_status(b"online") == b"online"
    line = b"config-error: device.yaml: cameras[0].fps: must be > 0, got -5"
    assert guard.check_status(line) == line  # more in test_firstboot_status.py
    with pytest.raises(guard.GuardRefused):
        guard.check_status(b"online; camera at 10.0.0.7")


class Collect:
    def __init__(self):
        self.payloads = []

    def send(self, payload: bytes):
        self.payloads.append(payload)


def test_outputs_send_only_what_the_guard_passed_and_count_refusals(caplog):
    collect = Collect()
    refused = []
    outputs = Outputs(STORE, CAMERA, [collect], on_refused=lambda: refused.append(1))
    good = window()
    bad = copy.deepcopy(good)
    bad["faces"] = [[0.1, 0.2, 0.3]]
    with caplog.at_level(logging.ERROR):
        outputs.write(bad)
        outputs.write(good)
    assert collect.payloads == [guard.check("counts", good, STORE, CAMERA)]
    assert outputs.refused == 1 and refused == [1]
    assert "refused counts message" in caplog.text and "0.1" not in caplog.text
