"""The TFLite back-end on real models and photos: float BlazeFace, full-INT8 YOLOv8n."""

from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest

from appliance.device.detect.detections import nms
from appliance.device.inference.backend import OnnxBackend, build_backend
from appliance.device.inference.models import fetch, load_manifest
from appliance.device.inference.tflite import TfliteBackend, dequantise, quantise
from appliance.errors import ModelError
from tests.conftest import DATA, MIRROR

IMAGES = DATA / "images"
# AGPL-3.0 (Ultralytics): test data for the INT8 path only, never in the manifest or a default.
YOLOV8N_INT8 = MIRROR / "yolov8n_full_integer_quant.tflite"


@pytest.fixture(scope="module")
def blazeface_path(tmp_path_factory):
    """BlazeFace fetched from the mirror and sha256-verified, as on a device."""
    directory = tmp_path_factory.mktemp("tflite_models")
    [path] = fetch(str(MIRROR), directory, [load_manifest()["blazeface"]], log=lambda _m: None)
    return path


@pytest.fixture(scope="module")
def blazeface(blazeface_path):
    return TfliteBackend(blazeface_path, threads=2)


@pytest.fixture(scope="module")
def yolov8n():
    return TfliteBackend(YOLOV8N_INT8, threads=2)


def blazeface_input(bgr: np.ndarray) -> np.ndarray:
    """1x192x192x3 float32 RGB in [-1, 1] (models/manifest.yaml)."""
    rgb = cv2.cvtColor(cv2.resize(bgr, (192, 192), interpolation=cv2.INTER_AREA),
                       cv2.COLOR_BGR2RGB)
    return (rgb.astype(np.float32) / 127.5 - 1)[None]


def best_face(outputs: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """Best anchor's face probability and its box centre (x, y), normalised 0-1.

    Full-range BlazeFace has one anchor per cell of a 48x48 grid (stride 4 on 192); the
    regressors' first two values are the centre offset in input pixels."""
    regressors, logits = outputs[0][0], outputs[1][0, :, 0]
    best = int(np.argmax(logits))
    row, col = divmod(best, 48)
    centre = (np.array([col, row]) + 0.5) / 48 + regressors[best, :2] / 192
    return float(1 / (1 + np.exp(-logits[best]))), centre


@pytest.mark.parametrize("photo, face_centre", [
    ("skimage_astronaut.png", (0.42, 0.24)),  # Eileen Collins, upper middle
    ("scrfd_selfie.jpg", None),  # a crowd of faces: any of them will do
])
def test_blazeface_finds_a_face(blazeface, photo, face_centre):
    assert blazeface.input_shape == (1, 192, 192, 3)
    assert blazeface.input_dtype == np.float32 and not blazeface.quantized
    outputs = blazeface.run(blazeface_input(cv2.imread(str(IMAGES / photo))))
    assert [o.shape for o in outputs] == [(1, 2304, 16), (1, 2304, 1)]  # regressors, scores
    assert all(o.dtype == np.float32 for o in outputs)
    score, centre = best_face(outputs)
    assert score > 0.5
    if face_centre is not None:
        assert np.abs(centre - face_centre).max() < 0.1, centre


@pytest.mark.parametrize("grey", [0, 128, 255])
def test_blazeface_finds_no_face_in_a_blank_image(blazeface, grey):
    score, _ = best_face(blazeface.run(blazeface_input(np.full((480, 640, 3), grey, np.uint8))))
    assert score < 0.3


def test_quantise_by_hand():
    x = np.array([0.0, 0.5, 0.74, 1.0, -1.0, 1e6, -1e6], np.float32)
    # round(x / 0.5 - 3), clipped to int8: 0.74 / 0.5 = 1.48 rounds to 1
    assert quantise(x, 0.5, -3, np.int8).tolist() == [-3, -2, -2, -1, -5, 127, -128]
    assert quantise(x, 0.5, 10, np.uint8).tolist() == [10, 11, 11, 12, 8, 255, 0]
    assert quantise(x, 0.5, -3, np.int8).dtype == np.int8
    q = np.array([-128, -3, 0, 127], np.int8)
    out = dequantise(q, 0.5, -3)
    assert out.dtype == np.float32 and out.tolist() == [-62.5, 0.0, 1.5, 65.0]


def test_int8_input_is_quantised_as_computed_by_hand(yolov8n):
    assert yolov8n.input_shape == (1, 640, 640, 3)
    assert yolov8n.input_dtype == np.int8 and yolov8n.quantized
    details = yolov8n.interpreter.get_input_details()[0]
    scale, zero_point = details["quantization"]
    x = np.random.default_rng(0).random((1, 640, 640, 3), dtype=np.float32)  # RGB / 255
    by_hand = np.clip(np.round(x / scale + zero_point), -128, 127).astype(np.int8)

    fed = []
    real_set_tensor = yolov8n.interpreter.set_tensor
    yolov8n.interpreter.set_tensor = lambda index, value: (fed.append(value.copy()),
                                                           real_set_tensor(index, value))
    try:
        yolov8n.run(x)
    finally:
        del yolov8n.interpreter.set_tensor  # the class's own method again
    assert len(fed) == 2 and fed[0].dtype == np.int8 and not fed[1].any()  # then blanked
    np.testing.assert_array_equal(fed[0], by_hand)
    # in range, the round trip loses at most half a step
    assert np.abs(dequantise(fed[0], scale, zero_point) - x).max() <= scale / 2 + 1e-6


def test_int8_yolov8n_finds_the_people_on_the_bus(yolov8n):
    bgr = cv2.imread(str(IMAGES / "ultralytics_bus.jpg"))
    height, width = bgr.shape[:2]
    rgb = cv2.cvtColor(cv2.resize(bgr, (640, 640), interpolation=cv2.INTER_AREA),
                       cv2.COLOR_BGR2RGB)
    [output] = yolov8n.run(rgb.astype(np.float32)[None] / 255)  # plain resize, RGB / 255
    assert output.shape == (1, 84, 8400) and output.dtype == np.float32  # dequantised
    raw = output[0]
    assert 0 <= raw.min() and raw.max() <= 1.01  # xywh normalised, class scores
    keep = np.flatnonzero(raw[4] > 0.5)  # class 0: person
    cx, cy, w, h = raw[:4, keep] * np.array([[width], [height], [width], [height]])
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    people = xyxy[nms(xyxy, raw[4, keep], 0.45)]
    assert len(people) >= 3, people
    standing = (people[:, 3] - people[:, 1]) > 1.5 * (people[:, 2] - people[:, 0])
    assert standing.sum() >= 3, people  # people standing, not the bus
    assert people[:, 3].min() > height / 2  # all on the pavement, in the lower half


def test_missing_model_is_a_one_line_model_error(tmp_path):
    path = tmp_path / "absent.tflite"
    with pytest.raises(ModelError, match="absent.tflite") as raised:
        TfliteBackend(path)
    assert "\n" not in str(raised.value)


def test_a_file_that_is_not_a_model_is_a_one_line_model_error(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("not a flatbuffer\n" * 10)
    with pytest.raises(ModelError, match="notes.tflite: TFLite cannot load it") as raised:
        TfliteBackend(path)
    assert "\n" not in str(raised.value)


def test_build_backend_picks_by_suffix(blazeface_path, tmp_path):
    assert isinstance(build_backend(blazeface_path, 1), TfliteBackend)
    assert isinstance(build_backend(MIRROR / "FastestDet.onnx", 1), OnnxBackend)
    with pytest.raises(ModelError, match="absent.tflite"):
        build_backend(tmp_path / "absent.tflite")


def _block_litert(monkeypatch):
    """Make `import ai_edge_litert...` fail, as on a device without it."""
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)


def test_falls_back_to_tflite_runtime(monkeypatch, blazeface, blazeface_path):
    """Without ai_edge_litert, tflite_runtime's Interpreter (same API) is used; here a
    stand-in module holding LiteRT's class, so the fallback is tested wherever this runs."""
    from ai_edge_litert.interpreter import Interpreter

    class StandIn(Interpreter):
        pass

    module = types.ModuleType("tflite_runtime.interpreter")
    module.Interpreter = StandIn
    _block_litert(monkeypatch)
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", module)
    fallback = TfliteBackend(blazeface_path)
    assert type(fallback.interpreter) is StandIn
    x = blazeface_input(cv2.imread(str(IMAGES / "skimage_astronaut.png")))
    for a, b in zip(fallback.run(x), blazeface.run(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_runtime_at_all_is_a_model_error(monkeypatch, blazeface_path):
    _block_litert(monkeypatch)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(ModelError, match="no TFLite runtime is installed; pip install "
                                         "ai-edge-litert") as raised:
        TfliteBackend(blazeface_path)
    assert str(blazeface_path) in str(raised.value)


def test_no_image_stays_in_the_interpreter_after_a_run(blazeface):
    """set_tensor copies the input into the interpreter; run blanks that copy."""
    x = np.random.default_rng(0).uniform(-1, 1, blazeface.input_shape).astype(np.float32)
    blazeface.run(x)
    kept = blazeface.interpreter.get_tensor(blazeface.input_index)
    assert not kept.any()
