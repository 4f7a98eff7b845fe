"""Inference back-ends: one small interface, so TFLite can plug in beside onnxruntime.

A back-end takes one preprocessed input tensor and returns the raw output tensors; model
specific pre- and post-processing live with the model (detect/), not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.errors import ModelError


class Backend(Protocol):
    input_shape: tuple[int, ...]

    def run(self, tensor: np.ndarray) -> list[np.ndarray]: ...


class OnnxBackend:
    """onnxruntime on the CPU with a fixed thread count (one camera process per core pair)."""

    def __init__(self, path: Path, threads: int = 2):
        import onnxruntime as ort

        ort.disable_telemetry_events()  # and ORT_DISABLE_TELEMETRY, set in appliance/__init__
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # initialiser-as-input warnings flood stderr otherwise
        # By default the pool's threads spin for some 47 ms after every run, a whole core
        # busy waiting while this process decodes, tracks and counts (and while the other
        # cameras on the board want it). Spinning inside a run stays: it is what makes the
        # hand-offs between the graph's parallel sections fast.
        options.add_session_config_entry("session.force_spinning_stop", "1")
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{path}: onnxruntime cannot load it: {error}") from None
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_shape = tuple(model_input.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: tensor})


def build_backend(path: Path, threads: int = 2) -> Backend:
    """The back-end for a model file: LiteRT for .tflite, onnxruntime for anything else."""
    if Path(path).suffix == ".tflite":
        from appliance.device.inference.tflite import TfliteBackend  # LiteRT only loads when used

        return TfliteBackend(path, threads)
    return OnnxBackend(path, threads)
