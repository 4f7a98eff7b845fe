"""Model manifest, fetching from a mirror, and sha256 verification at load time.

The manifest (models/manifest.yaml) pins each file's sha256 and size. Weights are copied or
downloaded from a mirror (a local folder or an http(s) URL) into the models directory and
verified; a model whose bytes do not match its pinned hash is refused at start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from appliance.errors import ModelError

# models/manifest.yaml, reached through the package (appliance/manifest.yaml is a link to it
# in the repository and a copy in a wheel), so an installed device finds it too.
MANIFEST_PATH = Path(__file__).parents[2] / "manifest.yaml"
_FIELDS = ("role", "file", "sha256", "size", "licence", "source", "format", "input", "output")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    role: str
    file: str
    sha256: str
    size: int
    licence: str
    source: str
    format: str
    input: str
    output: str = ""


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, ModelSpec]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ModelError(f"{path}: cannot read the model manifest: {error}") from None
    specs = {}
    for name, entry in (raw or {}).get("models", {}).items():
        missing = [f for f in _FIELDS[:-1] if f not in entry]
        if missing:
            raise ModelError(f"{path}: models.{name}: missing {', '.join(missing)}")
        specs[name] = ModelSpec(name=name, **{f: entry[f] for f in _FIELDS if f in entry})
    return specs


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_path(models_dir: Path, spec: ModelSpec) -> Path:
    """The model's path, after checking that its bytes are exactly the pinned ones."""
    path = Path(models_dir) / spec.file
    if not path.is_file():
        raise ModelError(f"{path}: model {spec.name!r} is missing; run "
                         f"`shopper-edge models fetch --from MIRROR --dir {models_dir}`")
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ModelError(f"{path}: sha256 {actual[:16]}... does not match the manifest's "
                         f"{spec.sha256[:16]}... for model {spec.name!r} (tampered or truncated); "
                         "fetch it again")
    return path


def fetch(mirror: str, models_dir: Path, specs: list[ModelSpec],
          log=print) -> list[Path]:
    """Copy or download each model from the mirror, verify it, then move it into place.

    A file is written under a temporary name and renamed only once its hash matches, so an
    interrupted or corrupt download never replaces a good model.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    fetched = []
    for spec in specs:
        target = models_dir / spec.file
        if target.is_file() and target.stat().st_size == spec.size and \
                sha256_of(target) == spec.sha256:
            log(f"{spec.name}: {target} already verified")
            fetched.append(target)
            continue
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.file}.", dir=models_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                _copy_from_mirror(mirror, spec.file, out)
            actual = sha256_of(tmp)
            if actual != spec.sha256:
                raise ModelError(f"{_join(mirror, spec.file)}: sha256 {actual[:16]}... does not "
                                 f"match the manifest's {spec.sha256[:16]}... for {spec.name!r}")
            tmp.chmod(0o644)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        log(f"{spec.name}: {target} ({spec.size} bytes, sha256 verified)")
        fetched.append(target)
    return fetched


def _join(mirror: str, file: str) -> str:
    return f"{mirror.rstrip('/')}/{file}"


def _copy_from_mirror(mirror: str, file: str, out) -> None:
    if mirror.startswith(("http://", "https://")):
        url = _join(mirror, file)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out, 1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise ModelError(f"{url}: download failed: {getattr(error, 'reason', error)}") \
                from None
        return
    source = Path(mirror.removeprefix("file://")) / file
    try:
        with open(source, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
    except OSError as error:
        raise ModelError(f"{source}: cannot copy from the mirror: {error.strerror}") from None
