"""`make stage ORT_WHEEL=FILE` (a Jetson, issue 17): NVIDIA's onnxruntime-gpu wheel staged in
place of PyPI's onnxruntime, after its tags are checked against DEVICE_PYTHON and PLATFORM.

No Jetson wheel here (NVIDIA's is about 250 MB): the substitution is tested with a copy of
PyPI's real aarch64 CPU wheel under an onnxruntime_gpu name, a test of the staging logic only.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.device.test_stage import (
    AARCH64,
    OPT,
    REPO,
    canonical,
    runtime_dependencies,
    wheels,
)

JETSON = ["DEVICE_PYTHON=3.10", f"PLATFORM={AARCH64}"]


def run_stage(destdir: Path, *variables: str) -> subprocess.CompletedProcess:
    venv = Path(sys.prefix)
    return subprocess.run(["make", "-C", str(REPO), "-o", str(venv / "bin/shopper-edge"),
                           f"VENV={venv}", "stage", f"DESTDIR={destdir}", "MODELS=yolox_nano",
                           *variables], capture_output=True, text=True, timeout=600)


def own_lines(stderr: str) -> list[str]:
    """stderr without make's own closing line ("make: *** [Makefile:N: stage] Error 2", or
    "make[1]: ***" when the tests themselves run under `make test`)."""
    return [line for line in stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]


@pytest.mark.parametrize("name, variables, problem", [
    ("onnxruntime_gpu-1.19.0-cp311-cp311-linux_aarch64.whl", JETSON,
     "built for cp311, not CPython 3.10 (DEVICE_PYTHON=3.10)"),
    ("onnxruntime_gpu-1.19.0-cp310-cp310-linux_x86_64.whl", JETSON,
     f"built for linux_x86_64, not Linux aarch64 (PLATFORM={AARCH64})"),
    ("onnxruntime_gpu-1.19.0-cp310-cp310-linux_aarch64.whl", ["DEVICE_PYTHON=3.10"],
     "built for linux_aarch64, not Linux x86_64 (this machine)"),
    ("numpy-2.0.0-cp310-cp310-linux_aarch64.whl", JETSON,
     "a wheel of numpy, not of onnxruntime (e.g. onnxruntime_gpu)"),
    ("onnxruntime-gpu.whl", JETSON,
     "not a wheel's file name (NAME-VERSION-PYTHON-ABI-PLATFORM.whl)"),
    (None, JETSON, "no such file"),
])
def test_a_wheel_that_does_not_fit_is_one_line_before_anything_is_staged(
        name, variables, problem, tmp_path):
    wheel = tmp_path / (name or "onnxruntime_gpu-1.19.0-cp310-cp310-linux_aarch64.whl")
    if name:
        wheel.write_bytes(b"stand-in")  # only its name is read
    destdir = tmp_path / "stage"
    result = run_stage(destdir, *variables, f"ORT_WHEEL={wheel}")
    assert result.returncode == 2
    assert own_lines(result.stderr) == [f"make stage: ORT_WHEEL={wheel}: {problem}"]
    assert not destdir.exists()


@pytest.fixture(scope="module")
def gpu_named_wheel(tmp_path_factory) -> Path:
    """PyPI's aarch64 CPU wheel of onnxruntime for Python 3.10 (the one `make stage` takes),
    renamed as NVIDIA's Jetson Zoo names theirs."""
    folder = tmp_path_factory.mktemp("ort")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.10",
                    *[f"--platform={p}" for p in AARCH64.split()], "-d", str(folder),
                    "onnxruntime>=1.17"], check=True, timeout=600)
    (cpu,) = folder.glob("onnxruntime-*.whl")
    version = cpu.name.split("-")[1]
    gpu = folder / f"onnxruntime_gpu-{version}-cp310-cp310-linux_aarch64.whl"
    cpu.rename(gpu)
    return gpu


def test_the_jetson_wheel_replaces_pypi_s_onnxruntime(gpu_named_wheel, tmp_path):
    result = run_stage(tmp_path, *JETSON, f"ORT_WHEEL={gpu_named_wheel}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = wheels(tmp_path)
    assert "onnxruntime" not in found  # PyPI's CPU wheel is gone
    staged = tmp_path / OPT / "wheels" / found["onnxruntime_gpu"]
    assert staged.name == gpu_named_wheel.name
    assert staged.read_bytes() == gpu_named_wheel.read_bytes()
    # Everything else the app needs is there, for aarch64 and CPython 3.10.
    assert runtime_dependencies() - {"onnxruntime"} | {"shopper_edge"} <= set(found)
    binary = [w for w in found.values() if not w.endswith("-any.whl")]
    assert all("aarch64" in w and ("cp310" in w or "abi3" in w) for w in binary), binary
    # onnxruntime's own dependencies, which the GPU wheel shares, stay in the wheelhouse.
    with zipfile.ZipFile(staged) as wheel:
        (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [line[len("Requires-Dist: "):] for line in
                    wheel.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist: ")]
    own = {canonical(re.match(r"[A-Za-z0-9._-]+", r)[0]) for r in requires
           if "extra ==" not in r}
    assert own and own <= set(found), own - set(found)
    manifest = (tmp_path / OPT / "MANIFEST.sha256").read_text()
    digest = hashlib.sha256(staged.read_bytes()).hexdigest()
    assert f"{digest}  {OPT}/wheels/{staged.name}" in manifest.splitlines()
