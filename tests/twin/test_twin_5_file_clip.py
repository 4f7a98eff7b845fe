"""The clip counted exactly under systemd on the twin, end to end to HQ over TLS, with the
camera a file on the twin: the unit, the sandboxed pixel worker, the real detector, tracker
and line counter, the publisher, Mosquitto with TLS and passwords, HQ's store.

Why a file: the RTSP camera test (test_twin_1_install) needs the twin to process a few
frames a second of a live stream, and under plain emulation here it processes 0.1-0.2
(docs/twin.md: KVM on this host is PVM, which runs only guest kernels built for it, so
TCG it is). A file source is read at the pace the worker can go, every frame up to the
camera's fps cap in the clip's own time, so its counts do not depend on the CPU's speed.
Deployed by `make deploy` with a config naming only this camera (as the V4L2 test does)."""

from __future__ import annotations

import subprocess
import time

from tests.conftest import truth_counts, wait_for
from tests.twin.conftest import CLIP, TIMES, deploy, device_config, totals

CLIP_DIR = "/srv/shopper-edge-clips"
ON_TWIN = f"{CLIP_DIR}/{CLIP.name}"
UNIT = "shopper-edge@clip.service"
CLIP_SECONDS = 15.6


def observed(windows: list[dict]) -> float:
    return sum(w["observed_seconds"] for w in windows)


def test_a_file_clip_is_counted_exactly_at_hq_over_tls_under_systemd(deployed, store, camera,
                                                                    tmp_path):
    # Removed again at the end: the uninstall test compares the whole filesystem.
    deployed.run(f"install -d -m 0755 {CLIP_DIR}")
    try:
        _count_the_clip(deployed, store, camera, tmp_path)
    finally:
        deployed.run(f"rm -rf {CLIP_DIR}", check=False)


def _count_the_clip(deployed, store, camera, tmp_path):
    with open(CLIP, "rb") as clip:
        copied = subprocess.run(["ssh", "-F", str(deployed.ssh_config), "twin",
                                 f"sudo tee {ON_TWIN} >/dev/null"],
                                stdin=clip, capture_output=True, timeout=120)
    assert copied.returncode == 0, copied.stderr
    deployed.run(f"chmod 0644 {ON_TWIN}")
    truth = truth_counts(CLIP.name)
    started = time.monotonic()
    result = deploy(deployed, device_config(tmp_path, store, camera, clip=ON_TWIN))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    def clip_windows():
        return [w for w in store.windows() if w["camera_id"] == "clip"]

    # The worker reads the file to its end and the unit ends cleanly (Restart=on-failure:
    # a clip played once is counted once); the publisher sends the last, partial window.
    wait_for(lambda: deployed.show("ActiveState", UNIT) in ("inactive", "failed"), 1800,
             lambda: deployed.journal(UNIT)[-3000:], poll=10)
    assert deployed.show("Result", UNIT) == "success", deployed.journal(UNIT)[-3000:]
    # Every second of the clip reaches HQ, the last (partial) window too: nothing dropped.
    wait_for(lambda: observed(clip_windows()) >= CLIP_SECONDS - 1, 120,
             lambda: f"{clip_windows()}", poll=3)
    TIMES["file clip counted"] = time.monotonic() - started
    windows = clip_windows()
    assert totals(windows) == truth, (totals(windows), truth, deployed.journal(UNIT)[-3000:])
    starts = [w["window_start"] for w in windows]
    assert len(starts) == len(set(starts)), starts
