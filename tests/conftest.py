"""Shared fixtures: the shared data and model mirror, verified models, test configs."""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
import time
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
    from appliance.device.inference.models import fetch, load_manifest

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
    return subprocess.run([sys.executable, "-m", "appliance.device.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _namespaces_available() -> bool:
    """Whether this machine lets a process take an empty network namespace (the pixel
    worker's isolation); some container sandboxes forbid unshare."""
    probe = "from appliance.device.isolation import enter_empty_network_namespace as e; e()"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True,
                          cwd=REPO).returncode == 0


def requires(available: bool, missing: str):
    """For a test that needs something of the machine: without it the test fails naming the
    fix. Never a skip, which would hide a missing install step."""

    def mark(test):
        if available:
            return test

        @functools.wraps(test)
        def fail(*args, **kwargs):
            pytest.fail(missing)

        return fail

    return mark


NAMESPACES = _namespaces_available()
needs_namespaces = requires(NAMESPACES, "this machine forbids network namespaces (unshare), "
                            "which the pixel worker's isolation needs")


def wait_for(condition, seconds: float = 20, what="the condition", poll=0.1) -> bool:
    """Poll until condition() is true; fail the test naming `what` (a string, or a function
    giving one, such as a log's text) after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    raise AssertionError(f"timed out after {seconds} s waiting for "
                         f"{what() if callable(what) else what}")


def truth_counts(clip: str) -> dict:
    entered, left = json.loads((DATA / "caviar_front" / "truth.json").read_text())[clip][:2]
    return {"in": entered, "out": left}


class HqProcess:
    """`shopper-hq subscribe` as a real process; starts once it has subscribed."""

    def __init__(self, port: int, db, *extra: str, client_id: str = "hq-test"):
        import threading

        self.db = db
        self.process = subprocess.Popen(
            [sys.executable, "-m", "appliance.hq.cli", "subscribe", "--host", "localhost",
             "--port", str(port), "--db", str(db), "--client-id", client_id, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._subscribed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._subscribed.wait(30):
            self.process.kill()
            raise AssertionError("HQ did not subscribe: " + "\n".join(self.lines))

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("shopper-hq: subscribed to"):
                self._subscribed.set()

    def wait(self, seconds: float) -> int:
        code = self.process.wait(seconds)
        time.sleep(0.2)  # let the reader take the last lines
        return code

    def stop(self) -> tuple[dict, str]:
        """SIGTERM; returns its final statistics and everything it logged."""
        self.process.send_signal(signal.SIGTERM)
        self.wait(20)
        stats = [line for line in self.lines if line.startswith("{")]
        return (json.loads(stats[-1]) if stats else {}), "\n".join(self.lines)
