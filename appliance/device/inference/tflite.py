"""TFLite back-end: LiteRT (ai-edge-litert) on the CPU, beside onnxruntime.

Float and full-INT8 models look the same to callers: a float32 input is quantised when the
model wants int8/uint8, and quantised outputs are dequantised, so every output is float32.
Like onnxruntime's, `input_shape` is the model's own layout (NHWC for TFLite models).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from appliance.errors import ModelError

_QUANTISED = (np.int8, np.uint8)


def _interpreter_class():
    """LiteRT's Interpreter, else the older tflite_runtime's (same API), else None."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            return None
    return Interpreter


def quantise(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """Real values to the integers a quantised tensor holds: round(x / scale + zp), clipped."""
    limits = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float32) / np.float32(scale) + np.float32(zero_point))
    return np.clip(q, limits.min, limits.max).astype(dtype)


def dequantise(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integers of a quantised tensor back to real values: (q - zp) * scale, as float32."""
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def _quantisation(details: dict) -> tuple[float, int] | None:
    """(scale, zero point) of a per-tensor quantised int8/uint8 tensor, else None.

    A scale of 0 means "not quantised" (e.g. MoveNet's int32 pixels, passed as they are)."""
    scale, zero_point = details["quantization"]
    if details["dtype"] in _QUANTISED and scale != 0:
        return float(scale), int(zero_point)
    return None


class TfliteBackend:
    """A TFLite interpreter with a fixed thread count; one per process, like OnnxBackend
    (an interpreter must not be shared between threads)."""

    def __init__(self, path: Path, threads: int = 2):
        interpreter_class = _interpreter_class()
        if interpreter_class is None:
            raise ModelError(f"{path}: a TFLite model, but no TFLite runtime is installed; "
                             "pip install ai-edge-litert")
        if not Path(path).is_file():
            raise ModelError(f"{path}: TFLite model file not found")
        try:
            self.interpreter = interpreter_class(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except Exception as error:  # the runtimes raise ValueError/RuntimeError, multi-line
            # tflite_runtime built for numpy 1 under numpy 2 hides the reason in __cause__
            reason = " ".join(str(error.__cause__ or error).split())
            raise ModelError(f"{path}: TFLite cannot load it: {reason}") from None
        model_input = self.interpreter.get_input_details()[0]
        self.input_index = model_input["index"]
        self.input_shape = tuple(int(d) for d in model_input["shape"])
        self.input_dtype = np.dtype(model_input["dtype"])
        self._input_quantisation = _quantisation(model_input)
        self.quantized = self._input_quantisation is not None
        self._blank = np.zeros(self.input_shape, self.input_dtype)
        self._outputs = [(o["index"], _quantisation(o))
                         for o in self.interpreter.get_output_details()]

    def prepare(self, tensor: np.ndarray) -> np.ndarray:
        """The tensor as the model takes it: float input quantised for an INT8 model."""
        if self._input_quantisation is not None and tensor.dtype != self.input_dtype:
            return quantise(tensor, *self._input_quantisation, self.input_dtype)
        return tensor

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        self.interpreter.set_tensor(self.input_index, self.prepare(tensor))
        self.interpreter.invoke()
        outputs = []
        for index, quantisation in self._outputs:
            value = self.interpreter.get_tensor(index)  # a copy, safe after the next invoke
            outputs.append(value if quantisation is None else dequantise(value, *quantisation))
        # set_tensor copied the input into the interpreter: blank that copy, so no image
        # outlives its inference here either.
        self.interpreter.set_tensor(self.input_index, self._blank)
        return outputs
