"""`make stage`: the complete tree of a device, checked file by file.

One model only (yolox_nano) keeps it fast; the wheels come from pip's registry mirror and
cache. The wheelhouse is installed offline into a fresh venv, as install.sh does on a device.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from appliance.device.config import parse_config
from tests.systemd_tools import INSTANCE, SERVICE, SYSTEMD_ANALYZE, TARGET, UNITS, unit_root, verify

REPO = Path(__file__).resolve().parents[2]
OPT = "opt/shopper-edge"
UNIT_DIR = "usr/lib/systemd/system"
MODELS = "var/lib/shopper-edge/models"
AARCH64 = "manylinux2014_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64"
# Staged file -> the repository file it is a copy of.
COPIES = {
    f"{OPT}/install.sh": "tools/install.sh",
    f"{OPT}/uninstall.sh": "tools/uninstall.sh",
    f"{UNIT_DIR}/{SERVICE}": f"systemd/{SERVICE}",
    f"{UNIT_DIR}/{TARGET}": f"systemd/{TARGET}",
    "usr/lib/sysusers.d/shopper-edge.conf": "systemd/shopper-edge.sysusers",
    "usr/lib/tmpfiles.d/shopper-edge.conf": "systemd/shopper-edge.tmpfiles",
    "etc/shopper-edge/device.yaml": "examples/device.yaml",
}


def make_stage(destdir: Path, *variables: str) -> None:
    # With this test run's own venv, taken as installed (-o): make must not reinstall it.
    venv = Path(sys.prefix)
    result = subprocess.run(["make", "-C", str(REPO), "-o", str(venv / "bin/shopper-edge"),
                             f"VENV={venv}", "stage", f"DESTDIR={destdir}",
                             "MODELS=yolox_nano", *variables],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def stage(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stage")
    make_stage(root)
    return root


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def runtime_dependencies() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {canonical(re.match(r"[A-Za-z0-9._-]+", d)[0]) for d in project["dependencies"]}


def wheels(root: Path) -> dict[str, str]:
    """Distribution name -> wheel file name, for every wheel in the wheelhouse."""
    found = {}
    for wheel in (root / OPT / "wheels").glob("*.whl"):
        name = canonical(wheel.name.split("-")[0])
        assert name not in found, f"two wheels of {name}: {found[name]}, {wheel.name}"
        found[name] = wheel.name
    return found


def test_no_gui_opencv_in_this_environment():
    """OpenCV's GUI build shares the cv2 module with the headless one and needs X11: a
    machine without those libraries then fails at `import cv2` (make install keeps it out)."""
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("opencv-python")
    import cv2

    assert re.search(r"GUI:\s*NONE", cv2.getBuildInformation())


def test_tree_is_complete(stage):
    expected = set(COPIES) | {f"{OPT}/MANIFEST.sha256", "etc/shopper-edge/cameras",
                              f"{MODELS}/yolox_nano.onnx"}
    assert expected <= files(stage)
    for staged, source in COPIES.items():
        assert (stage / staged).read_bytes() == (REPO / source).read_bytes(), staged
    for script in ("install.sh", "uninstall.sh"):
        assert os.access(stage / OPT / script, os.X_OK)
    assert not any("secrets" in f for f in files(stage))  # copied by hand, never staged


def test_manifest_lists_every_file_with_its_hash(stage):
    listed = {}
    for line in (stage / OPT / "MANIFEST.sha256").read_text().splitlines():
        digest, path = line.split("  ", 1)
        listed[path] = digest
    assert set(listed) == files(stage) - {f"{OPT}/MANIFEST.sha256"}
    for path, digest in listed.items():
        assert sha256(stage / path) == digest, path


def test_models_are_the_manifest_s(stage):
    manifest = yaml.safe_load((REPO / "models/manifest.yaml").read_text())["models"]
    staged = sorted((stage / MODELS).iterdir())
    assert [p.name for p in staged] == [manifest["yolox_nano"]["file"]]  # MODELS= was obeyed
    assert sha256(staged[0]) == manifest["yolox_nano"]["sha256"]
    assert staged[0].stat().st_size == manifest["yolox_nano"]["size"]


def test_wheelhouse_has_the_app_and_each_runtime_dependency(stage):
    found = wheels(stage)
    assert found["shopper_edge"].startswith("shopper_edge-")
    assert runtime_dependencies() <= set(found)
    # The hq, lab and dev extras stay off the device.
    for extra in ("matplotlib", "psycopg", "pytest", "ruff", "hypothesis", "cryptography",
                  "trackers", "supervision", "onnx", "opencv_python", "selenium"):
        assert extra not in found
    machine = platform.machine()
    for wheel in found.values():
        abi, platforms = wheel[:-4].split("-")[-2:]
        if platforms != "any":
            assert machine in platforms and abi in ("cp311", "abi3"), wheel


def test_app_wheel_holds_this_checkout_s_package(stage):
    """Every module of the device, head office and what they share, and no stale one
    (setuptools would pack leftovers of build/lib); nothing of the lab."""
    (wheel,) = (stage / OPT / "wheels").glob("shopper_edge-*.whl")
    packed = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("appliance/")}
    package = REPO / "appliance"
    assert not {n for n in packed if n.startswith("appliance/lab/")}
    ours = {str(p.relative_to(REPO)) for p in package.rglob("*.py")
            if not p.is_relative_to(package / "lab")} | \
        {str(p.relative_to(REPO)) for p in (package / "schemas").glob("*.json")} | \
        {str(p.relative_to(REPO)) for p in (package / "device/setup/static").glob("*")} | \
        {str(p.relative_to(REPO)) for p in (package / "hq/web").glob("*")} | \
        {"appliance/manifest.yaml"}
    assert packed == ours
    # The model manifest travels in the package (a link to models/manifest.yaml here).
    packed_manifest = zipfile.ZipFile(wheel).read("appliance/manifest.yaml")
    assert packed_manifest == (REPO / "models" / "manifest.yaml").read_bytes()


def test_wheelhouse_installs_offline_and_the_app_runs(stage, tmp_path):
    """install.sh's pip command, in a fresh venv: the wheelhouse alone is enough, and the
    installed app (not this checkout) loads and verifies the staged model."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    wheelhouse = stage / OPT / "wheels"
    result = subprocess.run([venv / "bin/python", "-m", "pip", "install", "--quiet",
                             "--no-index", "--find-links", wheelhouse,
                             *sorted(wheelhouse.glob("*.whl"))],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    check = ("import cv2, numpy, onnxruntime, scipy\n"
             "from appliance.device.inference.models import load_manifest, verified_path\n"
             "import sys\n"
             "print(verified_path(sys.argv[1], load_manifest()['yolox_nano']))\n")
    result = subprocess.run([venv / "bin/python", "-c", check, stage / MODELS], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(stage / MODELS / "yolox_nano.onnx")
    version = subprocess.run([venv / "bin/shopper-edge", "--version"], capture_output=True,
                             text=True, check=True).stdout
    assert version.startswith("shopper-edge ")
    # The installed command lists the device's commands and none of the lab's.
    commands = subprocess.run([venv / "bin/shopper-edge", "--help"], capture_output=True,
                              text=True, check=True).stdout
    listed = set(re.search(r"\{([a-z,-]+)\}", commands)[1].split(","))
    assert listed == {"check-config", "privacy-report", "privacy-notice", "run", "replay",
                      "models", "setup"}


def test_staged_units_verify(stage, tmp_path):
    assert SYSTEMD_ANALYZE is not None, "systemd-analyze is not installed: make system-deps"
    root = unit_root(tmp_path, service=stage / UNIT_DIR / SERVICE,
                     target=stage / UNIT_DIR / TARGET)
    assert verify(root, INSTANCE, TARGET) == (0, [])
    assert (UNITS / SERVICE).read_bytes() == (stage / UNIT_DIR / SERVICE).read_bytes()


def test_scripts_are_posix_sh(stage):
    for script in ("install.sh", "uninstall.sh"):
        path = stage / OPT / script
        lines = path.read_text().splitlines()
        assert lines[0] == "#!/bin/sh" and "set -eu" in lines, script
        subprocess.run(["sh", "-n", path], check=True)


def test_staged_config_is_valid_and_lists_the_cameras(stage, tmp_path):
    config = stage / "etc/shopper-edge/device.yaml"
    raw = yaml.safe_load(config.read_text())
    ids = [camera["id"] for camera in raw["cameras"]]
    assert (stage / "etc/shopper-edge/cameras").read_text().splitlines() == ids
    # The password file and the store CA exist only on the device: stand-ins for them let
    # the app's own parser check everything else.
    stand_ins = []

    def stand_in(value):
        if isinstance(value, dict):
            return {k: stand_in(v) for k, v in value.items()}
        if isinstance(value, list):
            return [stand_in(v) for v in value]
        if isinstance(value, str) and value.startswith("/etc/shopper-edge/"):
            path = tmp_path / value.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("stand-in\n")
            stand_ins.append(value)
            return str(path)
        return value

    parsed = parse_config(stand_in(raw), tmp_path / "device.yaml")
    assert [camera.id for camera in parsed.cameras] == ids
    assert stand_ins  # the config does name device files, or this test checks nothing new


def test_stage_for_aarch64(tmp_path):
    """A Raspberry Pi's wheelhouse, staged on this machine: every binary wheel is aarch64."""
    make_stage(tmp_path, f"PLATFORM={AARCH64}")
    found = wheels(tmp_path)
    assert runtime_dependencies() | {"shopper_edge"} <= set(found)
    binary = [w for w in found.values() if not w.endswith("-any.whl")]
    assert binary and all("aarch64" in w and "x86_64" not in w for w in binary), binary
