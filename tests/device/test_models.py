import shutil

import pytest

from appliance.device.inference.models import fetch, load_manifest, sha256_of, verified_path
from appliance.errors import ModelError
from tests.conftest import CLIPS, MIRROR, shopper_edge


def test_manifest_pins_every_model_in_the_mirror():
    for spec in load_manifest().values():
        mirrored = MIRROR / spec.file
        assert mirrored.stat().st_size == spec.size, spec.name
        assert sha256_of(mirrored) == spec.sha256, spec.name
        assert spec.licence and spec.source and spec.input
        assert "AGPL" not in spec.licence


def test_fetch_copies_and_verifies(tmp_path):
    spec = load_manifest()["fastestdet"]
    fetch(str(MIRROR), tmp_path, [spec], log=lambda _m: None)
    assert verified_path(tmp_path, spec) == tmp_path / spec.file
    assert [p.name for p in tmp_path.iterdir()] == [spec.file]  # no temporary left


def test_fetch_refuses_a_corrupt_mirror_and_keeps_nothing(tmp_path):
    spec = load_manifest()["fastestdet"]
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = (MIRROR / spec.file).read_bytes()
    (mirror / spec.file).write_bytes(data[: len(data) // 2])  # a truncated download
    target = tmp_path / "models"
    with pytest.raises(ModelError, match="does not match"):
        fetch(str(mirror), target, [spec], log=lambda _m: None)
    assert list(target.iterdir()) == []


def test_fetch_from_a_missing_mirror_or_url(tmp_path):
    spec = load_manifest()["fastestdet"]
    with pytest.raises(ModelError, match="cannot copy from the mirror"):
        fetch(str(tmp_path / "nowhere"), tmp_path / "m", [spec], log=lambda _m: None)
    with pytest.raises(ModelError, match="download failed"):
        fetch("http://127.0.0.1:9/models", tmp_path / "m", [spec], log=lambda _m: None)


def test_a_tampered_model_is_refused_at_start(tmp_path, write_config, models_dir):
    tampered = tmp_path / "tampered"
    shutil.copytree(models_dir, tampered)
    model = tampered / "yolox_nano.onnx"
    model.chmod(0o644)
    with open(model, "r+b") as f:  # flip one byte in the middle of the weights
        f.seek(100_000)
        byte = f.read(1)
        f.seek(100_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    config = write_config(models={"dir": str(tampered), "detector": "yolox_nano"})
    result = shopper_edge("replay", CLIPS / "OneLeaveShop1front.mpg", "--config", config)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sha256" in lines[0] and "yolox_nano.onnx" in lines[0]
    assert result.stdout == ""


def test_models_fetch_command(tmp_path):
    result = shopper_edge("models", "fetch", "--from", MIRROR, "--dir", tmp_path, "fastestdet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "FastestDet.onnx").is_file()
    result = shopper_edge("models", "fetch", "--from", MIRROR, "--dir", tmp_path, "nosuch")
    assert result.returncode == 2 and "unknown model" in result.stderr


def test_config_model_names_are_the_manifests():
    from appliance.device.inference.models_config import MODEL_NAMES

    assert set(MODEL_NAMES) == set(load_manifest())


def _variant_config(tmp_path, file, sha):
    from appliance.device.config import load_config

    path = tmp_path / "variant.yaml"
    path.write_text(f"""
store_id: s
models:
  dir: {tmp_path}
  variants:
    yolox_nano: {{file: {file}, sha256: "{sha}"}}
cameras: [{{id: c, source: x.mp4}}]
""")
    return load_config(path)


def test_a_model_variant_loads_from_its_own_pinned_file(tmp_path):
    """models.variants: another file of the same network (here a copy under a new name, as
    appliance/lab/quantize.py writes one) is verified by its own hash and picks its back-end."""
    from appliance.device.pipeline import load_detector

    shutil.copy(MIRROR / "yolox_nano.onnx", tmp_path / "yolox_nano.int8.onnx")
    sha = sha256_of(tmp_path / "yolox_nano.int8.onnx")
    detector = load_detector(_variant_config(tmp_path, "yolox_nano.int8.onnx", sha))
    assert detector.input_size == (416, 416)
    with pytest.raises(ModelError, match="does not match"):
        load_detector(_variant_config(tmp_path, "yolox_nano.int8.onnx", "0" * 64))
    # A .tflite file goes to LiteRT; one with another input layout is refused in one line.
    shutil.copy(MIRROR / "blazeface_full_range_sparse.tflite", tmp_path / "other.tflite")
    other = _variant_config(tmp_path, "other.tflite", sha256_of(tmp_path / "other.tflite"))
    with pytest.raises(ModelError, match="layout"):
        load_detector(other)


@pytest.mark.parametrize("variants, problem", [
    ("{nope: {file: a.onnx, sha256: x}}", "not a model of the manifest"),
    ("{yolox_nano: {file: ../a.onnx, sha256: x}}", "file name in the models directory"),
    ("{yolox_nano: {file: a.onnx, sha256: ABC}}", "64 lowercase hex"),
    ("{yolox_nano: {file: a.onnx}}", "sha256: missing"),
])
def test_bad_model_variants_are_one_line_errors(tmp_path, variants, problem):
    from appliance.device.config import load_config
    from appliance.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(f"store_id: s\nmodels: {{variants: {variants}}}\n"
                    "cameras: [{id: c, source: x.mp4}]\n")
    with pytest.raises(ConfigError, match=problem) as error:
        load_config(path)
    assert "\n" not in str(error.value) and "bad.yaml: models.variants." in str(error.value)
