"""models.providers (issue 17): the preferred onnxruntime execution providers, CPU last, with
one line naming what this onnxruntime lacks. This machine has no GPU and the CPU-only
onnxruntime, so the GPU lists here are selection logic only (docs/performance.md)."""

import logging

import pytest
import yaml

from appliance.device.config import load_config
from appliance.device.inference.backend import (
    OnnxBackend,
    build_tensorrt_engine,
    choose_providers,
    tensorrt_engine_missing,
)
from appliance.errors import ConfigError

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_tensorrt_gets_fp16_and_an_engine_cache(tmp_path):
    chosen = choose_providers(("tensorrt", "cuda", "cpu"), ALL, "det.onnx", tmp_path / "c")
    assert chosen == [("TensorrtExecutionProvider", {
        "trt_fp16_enable": True, "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(tmp_path / "c")}),
        "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_the_engine_is_built_only_where_tensorrt_runs_and_none_is_cached(tmp_path):
    cache = tmp_path / "tensorrt-cache"
    assert tensorrt_engine_missing(("tensorrt", "cpu"), ALL, cache)
    assert not tensorrt_engine_missing(("cuda", "cpu"), ALL, cache)
    assert not tensorrt_engine_missing(("tensorrt", "cpu"), ALL[1:], cache)
    cache.mkdir()
    (cache / "yolox_nano_123.engine").write_bytes(b"built")
    assert not tensorrt_engine_missing(("tensorrt", "cpu"), ALL, cache)


def test_no_engine_is_built_on_a_cpu_only_onnxruntime(models_dir, tmp_path, monkeypatch):
    # This machine's onnxruntime has no TensorRT: the publisher builds nothing, writes
    # nothing, and the worker falls back with its one line.
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    build_tensorrt_engine(models_dir / "yolox_nano.onnx", 1, ("tensorrt", "cpu"))
    assert list(tmp_path.iterdir()) == []


def test_missing_gpu_providers_fall_back_to_cpu_in_one_line(tmp_path, caplog):
    caplog.set_level(logging.INFO, "shopper_edge.inference")
    chosen = choose_providers(("tensorrt", "cuda", "cpu"), ["CPUExecutionProvider"],
                              "det.onnx", tmp_path)
    assert chosen == ["CPUExecutionProvider"]
    assert [r.getMessage() for r in caplog.records] == [
        "det.onnx: models.providers tensorrt, cuda not in this onnxruntime (it has: "
        "CPUExecutionProvider); running on cpu"]


def test_cuda_without_tensorrt_runs_on_cuda(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "shopper_edge.inference")
    chosen = choose_providers(("tensorrt", "cuda", "cpu"), ALL[1:], "det.onnx", tmp_path)
    assert chosen == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert "tensorrt not in this onnxruntime" in caplog.records[0].getMessage()
    assert caplog.records[0].getMessage().endswith("running on cuda")


def test_the_real_detector_asked_for_cuda_here_runs_on_the_cpu(models_dir, caplog):
    caplog.set_level(logging.WARNING, "shopper_edge.inference")
    backend = OnnxBackend(models_dir / "yolox_nano.onnx", 1, ("cuda", "cpu"))
    assert backend.provider == "CPUExecutionProvider"
    assert len(caplog.records) == 1 and "cuda not in this onnxruntime" in \
        caplog.records[0].getMessage()


@pytest.mark.parametrize("providers, problem", [
    (["gpu"], "models.providers[0]: expected one of tensorrt, cuda, cpu"),
    ([], "models.providers: expected a list of execution providers"),
    (["cuda", "cuda"], "models.providers: lists a provider twice")])
def test_bad_providers_are_one_config_line(tmp_path, providers, problem):
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"store_id": "s", "models": {"providers": providers},
                                    "cameras": [{"id": "c", "source": "x.mp4"}]}))
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_health_names_the_provider_the_detector_runs_on():
    from appliance.device.inference.backend import provider_in_use

    assert provider_in_use(("cpu",)) == "cpu"
    assert provider_in_use(("tensorrt", "cuda", "cpu")) == "cpu"  # CPU-only onnxruntime here
