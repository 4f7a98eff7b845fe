"""Outputs: an output that fails holds its windows and sends them in order once it works
again, and never stops the others (the logic; tests/device/test_mqtt.py runs it for real)."""

import json

from appliance.device.outputs import Outputs
from appliance.device.privacy import PrivacyConfig, protect
from appliance.device.window import WindowAggregator

STORE, CAMERA = "store-1", "front"


class Flaky:
    def __init__(self, failures: int):
        self.failures = failures
        self.sent: list[bytes] = []

    def send(self, payload: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        self.sent.append(payload)


def windows(n: int) -> list[dict]:
    aggregator = WindowAggregator(STORE, CAMERA, ["door"], 60, clock="media")
    documents = []
    for k in range(n + 1):  # a frame in each minute: each closes the one before
        documents += aggregator.add(60.0 * k + 1, [])
    return [protect(document, PrivacyConfig()) for document in documents]


def test_a_failing_output_holds_its_windows_and_the_others_get_them_at_once(caplog):
    flaky, steady = Flaky(failures=3), Flaky(failures=0)
    outputs = Outputs(STORE, CAMERA, [flaky, steady])
    documents = windows(5)
    assert len(documents) == 5
    for k, document in enumerate(documents):
        outputs.write(document)
        assert len(steady.sent) == k + 1
    # Three failed sends: the first, second and third windows waited; from the fourth write
    # on it works and sends what it held first, in order.
    assert flaky.sent == steady.sent
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 1  # one line when it starts failing, not one per try
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_held_windows_are_bounded_dropping_the_oldest(monkeypatch):
    monkeypatch.setattr(Outputs, "PENDING_MAX", 2)
    flaky = Flaky(failures=4)
    outputs = Outputs(STORE, CAMERA, [flaky])
    documents = windows(5)
    for document in documents:
        outputs.write(document)
    steady = Flaky(failures=0)
    reference = Outputs(STORE, CAMERA, [steady])
    for document in documents:
        reference.write(document)
    assert flaky.sent == steady.sent[-2:]


def test_windows_the_worker_s_guard_refused_are_counted_in_health():
    """The worker reports each window its own guard refused; the publisher counts them as
    refused messages (health's messages_refused) instead of losing them silently."""
    from types import SimpleNamespace

    from appliance.device.publisher import Worker, WorkerStats

    counted = []
    worker = Worker.__new__(Worker)  # the hand-over logic alone, without a process
    worker.camera, worker.store_id, worker.stats = SimpleNamespace(id=CAMERA), STORE, WorkerStats()
    worker.outputs = Outputs(STORE, CAMERA, [], on_refused=lambda: counted.append(1))
    worker.ready = SimpleNamespace(set=lambda: None)
    worker.heartbeat, worker._windows_refused = 0, 0
    progress = {"schema": "shopper.worker/1", "store_id": STORE, "camera_id": CAMERA,
                "frames": 10, "detector_runs": 10, "windows_refused": 0,
                "inference_seconds": 0.5, "frames_read": 10, "frames_skipped": 0,
                "frames_dropped": 0, "reconnects": 0, "clock_steps": 0, "fps_cap": None}
    worker._handle(json.dumps(progress).encode())
    assert worker.outputs.refused == 0
    worker._handle(json.dumps(dict(progress, windows_refused=2)).encode())
    worker._handle(json.dumps(dict(progress, windows_refused=3)).encode())
    assert worker.outputs.refused == 3 and len(counted) == 3
    worker._handle(json.dumps(dict(progress, windows_refused=3, clock_steps=1)).encode())
    assert worker.stats.source.clock_steps == 1  # health reports the worker's clock steps
