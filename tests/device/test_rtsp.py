"""A live RTSP stream from a real local RTSP server (GStreamer's, Debian packages) fed with
a CAVIAR clip: the appliance counts, survives the server being killed and restarted, and
keeps counting."""

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import CLIPS, NAMESPACES, REPO, wait_for

SYSTEM_PYTHON = "/usr/bin/python3"


def _gst_rtsp_available() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version("
                            "'GstRtspServer', '1.0'); from gi.repository import GstRtspServer"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.fixture(autouse=True)
def _rtsp_server_installed():
    if not _gst_rtsp_available():
        pytest.fail("GStreamer's RTSP server is not installed: make system-deps")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, clip: Path) -> subprocess.Popen:
    server = subprocess.Popen([SYSTEM_PYTHON, str(REPO / "tests" / "rtsp_server.py"),
                               "--port", str(port), "--file", str(clip)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    assert line.strip() == "READY", server.stderr.read()
    return server


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def _config(tmp_path: Path, models_dir: Path, source: str) -> Path:
    raw = yaml.safe_load((REPO / "examples" / "caviar-front.yaml").read_text())
    raw["models"]["dir"] = str(models_dir)
    raw["window_seconds"] = 4
    raw["cameras"][0].update(source=source, fps=10)
    raw["privacy"]["isolate_pixels"] = NAMESPACES  # through the camera relay where possible
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _outs(stdout_path: Path) -> int:
    lines = stdout_path.read_text().splitlines()
    return sum(json.loads(line)["lines"]["shop_door"]["out"] for line in lines if line)


def _run_live(tmp_path: Path, models_dir: Path):
    """An RTSP server looping OneLeaveShop and `shopper-edge run` reading it, its windows
    and its log in files: (port, server, appliance, windows path, log path)."""
    port = _free_port()
    server = _start_server(port, CLIPS / "OneLeaveShop1front.mpg")
    config = _config(tmp_path, models_dir, f"rtsp://127.0.0.1:{port}/cam")
    out_path, err_path = tmp_path / "windows.jsonl", tmp_path / "stderr.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        appliance = subprocess.Popen([sys.executable, "-m", "appliance.device.cli", "run",
                                      "--config", str(config)], stdout=out, stderr=err)
    return port, server, appliance, out_path, err_path


def test_live_stream_reconnects_and_keeps_counting(tmp_path, models_dir):
    # OneLeaveShop: one shopper walks out of the door about 7.6 s into each 11.8 s loop.
    port, server, appliance, out_path, err_path = _run_live(tmp_path, models_dir)
    try:
        wait_for(lambda: _outs(out_path) >= 1, 40, err_path.read_text, poll=0.5)
        before = _outs(out_path)
        _kill(server)
        wait_for(lambda: "stream lost" in err_path.read_text(), 20, err_path.read_text, poll=0.5)
        time.sleep(2)
        server = _start_server(port, CLIPS / "OneLeaveShop1front.mpg")
        wait_for(lambda: "reconnected" in err_path.read_text(), 60, err_path.read_text, poll=0.5)
        # The restarted stream begins the clip again: the shopper leaves once more.
        wait_for(lambda: _outs(out_path) > before, 40, err_path.read_text, poll=0.5)
        assert appliance.poll() is None  # still running
    finally:
        appliance.send_signal(signal.SIGTERM)
        appliance.wait(30)
        _kill(server)
    assert appliance.returncode == 0
    for line in out_path.read_text().splitlines():
        assert json.loads(line)["schema"] == "shopper.counts/2"


def test_a_refused_rtsp_url_is_one_clear_line(tmp_path, models_dir):
    port = _free_port()  # nothing listens there
    config = _config(tmp_path, models_dir, f"rtsp://127.0.0.1:{port}/cam")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "appliance.device.cli", "run", "--config",
                             str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"rtsp://127.0.0.1:{port}/cam" in lines[0]
    assert "cannot open the stream" in lines[0]
    assert time.monotonic() - started < 30


def test_windows_close_on_time_while_the_camera_is_down(tmp_path, models_dir):
    """With the stream gone no frame comes, yet each window still closes when it ends, as a
    window without frames (observed 0), not when the stream comes back."""
    from datetime import datetime

    port, server, appliance, out_path, err_path = _run_live(tmp_path, models_dir)
    arrived: dict[str, float] = {}  # window_end -> when its line appeared here

    def read() -> list[dict]:
        documents = [json.loads(line) for line in out_path.read_text().splitlines() if line]
        for document in documents:
            arrived.setdefault(document["window_end"], time.time())
        return documents

    try:
        wait_for(lambda: read(), 40, err_path.read_text, poll=0.2)
        _kill(server)
        wait_for(lambda: "stream lost" in err_path.read_text(), 20, err_path.read_text, poll=0.5)
        wait_for(lambda: sum(d["observed_seconds"] == 0 for d in read()) >= 3, 30,
                 err_path.read_text, poll=0.2)
    finally:
        appliance.send_signal(signal.SIGTERM)
        appliance.wait(30)
    down = [d for d in read() if d["observed_seconds"] == 0]
    for document in down:
        assert document["partial"] is True and document["lines"]["shop_door"] == \
            {"in": 0, "out": 0}
        end = datetime.fromisoformat(document["window_end"].replace("Z", "+00:00"))
        # Ticks come about once a second; a loaded machine adds a little.
        assert arrived[document["window_end"]] - end.timestamp() < 3.0
