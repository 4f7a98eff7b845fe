"""systemd integration of `shopper-edge run`: READY once the worker runs, WATCHDOG pings
only while the frame loop turns, so a stalled camera loop gets restarted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import yaml

from tests.conftest import CLIPS, EXAMPLE, NAMESPACES


def test_ready_then_watchdog_pings_stop_when_the_frame_loop_stalls(tmp_path, models_dir):
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["models"]["dir"] = str(models_dir)
    raw["cameras"][0]["source"] = str(CLIPS / "EnterExitCrossingPaths1front.mpg")
    raw["cameras"][0]["fps"] = 5
    raw["privacy"]["isolate_pixels"] = NAMESPACES
    config = tmp_path / "device.yaml"
    config.write_text(yaml.safe_dump(raw))
    path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(path)
    notify.settimeout(0.5)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=str(4_000_000))  # 4 s
    run = subprocess.Popen([sys.executable, "-m", "appliance.device.cli", "run", "--realtime",
                            "--config", str(config)], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)

    def messages(seconds: float) -> list[str]:
        got, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                got.append(notify.recv(256).decode())
            except TimeoutError:
                pass
        return got

    try:
        first = messages(8)
        assert "READY=1" in first
        assert first.index("READY=1") < first.index("WATCHDOG=1")
        worker = int(open(f"/proc/{run.pid}/task/{run.pid}/children").read().split()[0])
        os.kill(worker, signal.SIGSTOP)  # the frame loop stalls
        messages(2.5)  # pings already due may still arrive
        assert "WATCHDOG=1" not in messages(4), "pinged while the frame loop was stopped"
        os.kill(worker, signal.SIGCONT)
        assert "WATCHDOG=1" in messages(6), "no ping after the loop resumed"
    finally:
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=60)
        notify.close()
