"""Which models run and where their files are (`models:`), with the parser."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.device.config_reader import ConfigReader, join_key

DETECTOR_NAMES = ("yolox_nano", "fastestdet")
# onnxruntime execution providers for the detector, in order of preference; cpu is always
# the last resort (tensorrt and cuda come with onnxruntime-gpu, e.g. on a Jetson).
PROVIDERS = ("tensorrt", "cuda", "cpu")
# The manifest's model names (models/manifest.yaml), for models.variants.
MODEL_NAMES = ("yolox_nano", "fastestdet", "yunet", "rfb320", "age_gender", "movenet",
               "blazeface")


@dataclass(frozen=True)
class ModelVariant:
    """Another file of a manifest model's network (e.g. INT8 from appliance/lab/quantize.py), in the
    models directory, pinned by its own sha256; its format picks the back-end."""

    name: str
    file: str
    sha256: str


@dataclass(frozen=True)
class ModelsConfig:
    dir: Path
    detector: str = "yolox_nano"
    threads: int = 2
    variants: tuple[ModelVariant, ...] = ()
    providers: tuple[str, ...] = ("cpu",)

    def variant(self, name: str) -> ModelVariant | None:
        return next((v for v in self.variants if v.name == name), None)


def parse_models(r: ConfigReader, raw: Any, key: str) -> ModelsConfig:
    m = r.mapping(raw, key, ("dir", "detector", "threads", "variants", "providers"))
    directory = m.get("dir", "/var/lib/shopper-edge/models")
    raw_variants = m.get("variants") or {}
    vkey = join_key(key, "variants")
    r.mapping(raw_variants, vkey, tuple(raw_variants) if isinstance(raw_variants, dict) else ())
    variants = []
    for name, variant in raw_variants.items():
        nkey = f"{vkey}.{name}"
        if name not in MODEL_NAMES:
            raise r.fail(nkey, f"not a model of the manifest ({', '.join(MODEL_NAMES)})")
        variant = r.mapping(variant, nkey, ("file", "sha256"))
        for required in ("file", "sha256"):
            if required not in variant:
                raise r.fail(f"{nkey}.{required}", "missing")
        file = r.string(variant["file"], f"{nkey}.file")
        if "/" in file or not re.fullmatch(r"[^/]+\.(onnx|tflite)", file):
            raise r.fail(f"{nkey}.file", f"{file!r}: expected a .onnx or .tflite file name in "
                         "the models directory")
        sha = r.string(variant["sha256"], f"{nkey}.sha256")
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise r.fail(f"{nkey}.sha256", "expected 64 lowercase hex digits "
                         "(sha256sum of the file)")
        variants.append(ModelVariant(name, file, sha))
    return ModelsConfig(
        dir=Path(r.resolve(r.string(directory, join_key(key, "dir")))),
        detector=r.choice(m.get("detector", "yolox_nano"), join_key(key, "detector"),
                          DETECTOR_NAMES),
        threads=int(r.number(m.get("threads", 2), join_key(key, "threads"), 1, 64)),
        variants=tuple(variants),
        providers=_providers(r, m.get("providers", ["cpu"]), join_key(key, "providers")),
    )


def _providers(r: ConfigReader, raw: Any, key: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise r.fail(key, f"expected a list of execution providers ({', '.join(PROVIDERS)})")
    names = tuple(r.choice(name, f"{key}[{i}]", PROVIDERS) for i, name in enumerate(raw))
    if len(set(names)) != len(names):
        raise r.fail(key, "lists a provider twice")
    return names
