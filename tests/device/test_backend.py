"""Both back-ends hand the CPU back when a run returns."""

from __future__ import annotations

import time

import numpy as np
import pytest

from appliance.device.inference.backend import build_backend
from tests.conftest import MIRROR


def _idle_cpu_ms(backend, pause: float = 0.1) -> float:
    """Process CPU milliseconds spent during a pause right after a run."""
    tensor = np.zeros(backend.input_shape, np.float32)
    backend.run(tensor)
    started = time.process_time()
    time.sleep(pause)
    return (time.process_time() - started) * 1000


@pytest.mark.parametrize("model", ["yolox_nano.onnx", "FastestDet.onnx"])
def test_threads_stop_spinning_when_a_run_returns(models_dir, model):
    """onnxruntime's default keeps the pool busy-waiting for some 47 ms after every run:
    a whole core gone while the appliance tracks and counts, or another camera waits. The
    back-end must hand the CPU back as soon as the run returns."""
    backend = build_backend(models_dir / model, threads=2)
    backend.run(np.zeros(backend.input_shape, np.float32))  # first-run allocations
    spent = min(_idle_cpu_ms(backend) for _ in range(3))
    assert spent < 10, f"{spent:.1f} ms of CPU in a 100 ms pause after a run"


def test_tflite_threads_rest_between_runs():
    """The same for LiteRT's XNNPACK pool, which needs no setting for it (0.1 ms of CPU in
    a 5, 50 or 500 ms pause after a run, measured here)."""
    backend = build_backend(MIRROR / "yolov8n_full_integer_quant.tflite", threads=2)
    backend.run(np.zeros(backend.input_shape, np.float32))
    spent = min(_idle_cpu_ms(backend) for _ in range(3))
    assert spent < 10, f"{spent:.1f} ms of CPU in a 100 ms pause after a run"
