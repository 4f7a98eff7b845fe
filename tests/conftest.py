"""Shared fixtures: the shared data and model mirror, verified models, test configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
MIRROR = SHARED / "models"
CLIPS = DATA / "caviar_front" / "clips"
EXAMPLE = REPO / "examples" / "caviar-front.yaml"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """The person detectors, fetched from the mirror and verified like on a device."""
    from appliance.inference.models import fetch, load_manifest

    directory = tmp_path_factory.mktemp("models")
    manifest = load_manifest()
    fetch(str(MIRROR), directory, [manifest["yolox_nano"], manifest["fastestdet"]],
          log=lambda _msg: None)
    return directory


@pytest.fixture
def write_config(tmp_path, models_dir):
    """Write a variant of the example config (models from the test mirror) and return it."""

    def write(name: str = "device.yaml", **changes) -> Path:
        raw = yaml.safe_load(EXAMPLE.read_text())
        raw["models"]["dir"] = str(models_dir)
        raw["cameras"][0]["source"] = str(CLIPS / "OneLeaveShop1front.mpg")
        for key, value in changes.items():
            raw[key] = value
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


def shopper_edge(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the real command line, as a user would."""
    return subprocess.run([sys.executable, "-m", "appliance.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


def truth_counts(clip: str) -> dict:
    entered, left = json.loads((DATA / "caviar_front" / "truth.json").read_text())[clip][:2]
    return {"in": entered, "out": left}
