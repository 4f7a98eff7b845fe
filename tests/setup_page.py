"""`shopper-edge setup` as a real process, and an HTTP client that holds its session
cookie, for the setup page's tests."""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from tests.conftest import CLIPS, EXAMPLE, NAMESPACES, REPO, wait_for


def setup_config(directory: Path, models_dir: Path, source: str | None = None,
                 geometry: bool = True) -> Path:
    """The example config (comments kept: it is copied as text) with the test's models,
    source and, unless `geometry`, no lines or zones: what an installer starts from."""
    text = EXAMPLE.read_text()
    text = text.replace("dir: ../var/models", f"dir: {models_dir}")
    clip = "caviar_front/clips/OneLeaveShopReenter1front.mpg"
    text = text.replace(f"source: ../../shared/data/{clip}",
                        f"source: {source or CLIPS / 'OneLeaveShopReenter1front.mpg'}")
    # The camera is read in an empty network namespace where this machine allows one.
    text = text.replace("privacy:\n", f"privacy:\n  isolate_pixels: {str(NAMESPACES).lower()}\n")
    if not geometry:
        head, _lines = text.split("    lines:\n", 1)
        text = head
    path = directory / "device.yaml"
    path.write_text(text)
    assert yaml.safe_load(text)["cameras"][0]["source"] == str(source or CLIPS /
                                                               "OneLeaveShopReenter1front.mpg")
    return path


class SetupProcess:
    def __init__(self, config: Path, *extra: str, camera: str = "front", cwd: Path | None = None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "appliance.device.cli", "setup", "--config", str(config),
             "--camera", camera, "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd or REPO)
        first = self.process.stdout.readline()
        if "token=" not in first:
            self.process.wait(30)
            raise AssertionError(f"setup did not start: {first}{self.process.stderr.read()}")
        self.url = first.split(": ", 1)[1].strip()
        self.base = self.url.split("/?", 1)[0]
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.client = Client(self.base)

    def _read(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line.rstrip("\n"))

    def open_session(self) -> None:
        status, _ = self.client.get(self.url)
        assert status == 200, status

    def state(self) -> dict:
        return json.loads(self.client.get("/api/state")[1])

    def wait_plate(self, seconds: float = 120) -> dict:
        wait_for(lambda: self.state()["plate"]["state"] in ("ready", "error"), seconds,
                 lambda: f"the plate: {self.state()['plate']} {self.stderr}")
        return self.state()

    def pixel_processes(self) -> list[int]:
        """Process ids of the setup's pixel processes (children reading the camera)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(30)


class Client:
    """Like a browser: keeps the cookie, follows the token's redirect."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, path: str, body=None, headers=None) -> tuple[int, bytes]:
        url = path if path.startswith("http") else self.base + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get(self, path: str, headers=None) -> tuple[int, bytes]:
        return self.request(path, headers=headers)

    def post(self, path: str, body) -> tuple[int, dict]:
        status, data = self.request(path, body)
        return status, json.loads(data)
