"""Inference back-ends: one small interface, so TFLite can plug in beside onnxruntime.

A back-end takes one preprocessed input tensor and returns the raw output tensors; model
specific pre- and post-processing live with the model (detect/), not here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.errors import ModelError

log = logging.getLogger("shopper_edge.inference")
ORT_PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
                 "cpu": "CPUExecutionProvider"}


def engine_cache_dir(models_dir: Path) -> Path:
    """Where TensorRT keeps the engines it builds: the service's state directory (systemd's
    STATE_DIRECTORY, /var/lib/shopper-edge), else beside the models directory."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state or models_dir.parent) / "tensorrt-cache"


def provider_in_use(wanted: tuple[str, ...]) -> str:
    """The first configured provider this onnxruntime has (what the detector runs on), for
    health; onnxruntime is imported only when a GPU provider is configured."""
    if wanted == ("cpu",):
        return "cpu"
    import onnxruntime as ort

    available = ort.get_available_providers()
    return next(name for name in (*wanted, "cpu") if ORT_PROVIDERS[name] in available)


def choose_providers(wanted: tuple[str, ...], available: list[str], label: str,
                     cache: Path) -> list:
    """onnxruntime's provider list for the configured preference: the ones this
    onnxruntime has, CPU always last; one line names what was missing. TensorRT runs FP16
    with its engines cached in `cache` (tensorrt_engine_missing: who builds them)."""
    missing = [name for name in wanted if ORT_PROVIDERS[name] not in available]
    usable = [name for name in wanted if name not in missing and name != "cpu"]
    if missing:
        log.warning("%s: models.providers %s not in this onnxruntime (it has: %s); running "
                    "on %s", label, ", ".join(missing), ", ".join(available),
                    usable[0] if usable else "cpu")
    providers: list = []
    for name in usable:
        if name == "tensorrt":
            providers.append((ORT_PROVIDERS[name], {
                "trt_fp16_enable": True, "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache)}))
        else:
            providers.append(ORT_PROVIDERS[name])
    return [*providers, "CPUExecutionProvider"]


def tensorrt_engine_missing(wanted: tuple[str, ...], available: list[str], cache: Path) -> bool:
    """TensorRT will run and has no engine cached yet."""
    return "tensorrt" in wanted and ORT_PROVIDERS["tensorrt"] in available and \
        not any(cache.glob("*.engine"))


def build_tensorrt_engine(path: Path, threads: int, wanted: tuple[str, ...]) -> None:
    """Build and cache the TensorRT engine before any pixel worker starts: a worker may
    write no file (isolation.confine_pixel_worker), so it only reads the cache. Minutes,
    once; the log says so."""
    if "tensorrt" not in wanted or Path(path).suffix == ".tflite":
        return
    import onnxruntime as ort

    cache = engine_cache_dir(Path(path).parent)
    if not tensorrt_engine_missing(wanted, ort.get_available_providers(), cache):
        return
    cache.mkdir(parents=True, exist_ok=True)
    log.info("%s: building the TensorRT FP16 engine into %s (minutes, on the first start "
             "only)", path, cache)
    backend = OnnxBackend(path, threads, wanted)  # a static-shape session builds it here
    backend.run(np.zeros([d if isinstance(d, int) else 1 for d in backend.input_shape],
                         np.float32))


class Backend(Protocol):
    input_shape: tuple[int, ...]

    def run(self, tensor: np.ndarray) -> list[np.ndarray]: ...


class OnnxBackend:
    """onnxruntime on the CPU with a fixed thread count (one camera process per core pair)."""

    def __init__(self, path: Path, threads: int = 2, providers: tuple[str, ...] = ("cpu",)):
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
            self.session = ort.InferenceSession(str(path), options, providers=choose_providers(
                providers, ort.get_available_providers(), str(path),
                engine_cache_dir(Path(path).parent)))
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{path}: onnxruntime cannot load it: {error}") from None
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_shape = tuple(model_input.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]
        # The provider that runs the graph (the first one the session kept), for health.
        self.provider = self.session.get_providers()[0]

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: tensor})


def build_backend(path: Path, threads: int = 2,
                  providers: tuple[str, ...] = ("cpu",)) -> Backend:
    """The back-end for a model file: LiteRT for .tflite, onnxruntime for anything else."""
    if Path(path).suffix == ".tflite":
        from appliance.device.inference.tflite import TfliteBackend  # LiteRT only loads when used

        return TfliteBackend(path, threads)
    return OnnxBackend(path, threads, providers)
