"""Faults on the twin, with HQ on the host: a killed or frozen process restarts, a broker
outage and a power cut lose no spooled window and send none twice, a crash leaves no core.

Every test here starts with the camera looping the clip and the unit active; each checks at
HQ that windows go on arriving, each once (its message id and its start), in order.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import wait_for
from tests.twin.conftest import CAMERA, STORE, TIMES, WINDOW_SECONDS, start_unix, wait_active

SPOOL = f"/var/lib/shopper-edge/spool/{STORE}-{CAMERA}.sqlite"


@pytest.fixture
def running(deployed, camera, store):
    """The unit active with the camera looping, and HQ getting its windows."""
    if camera.process is None or "--once" in camera.process.args:
        camera.start(once=False)  # the appliance reconnects on its own (backoff <= 30 s)
    wait_active(deployed)
    wait_for_new_window(store, 180)
    return deployed


def wait_for_new_window(store, seconds: float, after: float | None = None) -> None:
    after = time.time() if after is None else after
    wait_for(lambda: any(start_unix(w) >= after for w in store.windows()), seconds,
             f"a window starting after {after:.0f} at HQ", poll=3)


def check_hq(store) -> None:
    """Each window once, in order: ids and starts unique and increasing, aligned."""
    windows = [w for w in store.windows() if w["camera_id"] == CAMERA]
    ids = [w["message_id"] for w in windows]
    starts = [start_unix(w) for w in windows]
    assert len(ids) == len(set(ids)), "a window reached HQ twice"
    assert starts == sorted(set(starts)), "windows out of order or twice"
    assert all(round(s) % WINDOW_SECONDS == 0 for s in starts)


def spooled_ids(twin) -> list[str]:
    out = twin.out(f"python3 -c \"import json, sqlite3; db = sqlite3.connect('{SPOOL}'); "
                   f"print(json.dumps([json.loads(p)['message_id'] for (p,) in "
                   f"db.execute('SELECT payload FROM messages ORDER BY seq')]))\"")
    return json.loads(out)


@pytest.mark.parametrize("process", ["worker", "publisher"])
def test_sigkill_restarts_within_seconds(running, store, process):
    restarts = int(running.show("NRestarts"))
    publisher, worker = running.pids()
    killed = time.monotonic()
    running.run(f"kill -KILL {worker if process == 'worker' else publisher}")
    wait_for(lambda: int(running.show("NRestarts")) > restarts, 60, "a restart", poll=1)
    wait_active(running)
    TIMES[f"SIGKILL {process} to active"] = time.monotonic() - killed
    assert running.pids()[0] != publisher
    wait_for_new_window(store, 120)
    check_hq(store)


def test_a_frozen_worker_is_killed_by_the_watchdog_and_restarted(running, store):
    restarts = int(running.show("NRestarts"))
    cursor = running.cursor()
    _, worker = running.pids()
    stopped = time.monotonic()
    running.run(f"kill -STOP {worker}")
    # WatchdogSec=60: the publisher stops pinging once the worker's heartbeat is 30 s old.
    wait_for(lambda: int(running.show("NRestarts")) > restarts, 150, "the watchdog", poll=3)
    TIMES["SIGSTOP worker to restart"] = time.monotonic() - stopped
    # WatchdogSignal=SIGABRT: only the watchdog sends it (stop is SIGTERM, then SIGKILL).
    assert "with signal SIGABRT" in running.out(
        f"journalctl -q -o cat -u shopper-edge@{CAMERA} --after-cursor='{cursor}'")
    wait_active(running)
    wait_for_new_window(store, 120)
    check_hq(store)


def test_broker_down_for_minutes_spools_then_delivers_in_order(running, store):
    store.broker.stop()
    down = time.time()
    wait_for(lambda: len(spooled_ids(running)) >= 3, 240, "windows in the spool", poll=5)
    time.sleep(max(0.0, 120 - (time.time() - down)))  # minutes, not seconds
    spooled = spooled_ids(running)
    store.broker.start()
    up = time.monotonic()
    wait_for(lambda: {w["message_id"] for w in store.windows()} >= set(spooled), 180,
             "every spooled window at HQ", poll=3)
    TIMES["broker back to spool delivered"] = time.monotonic() - up
    wait_for(lambda: not spooled_ids(running), 60, "an empty spool", poll=3)
    check_hq(store)
    starts = sorted(start_unix(w) for w in store.windows() if start_unix(w) >= down)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert set(gaps) == {WINDOW_SECONDS}, f"a window went missing during the outage: {gaps}"


def test_power_cut_while_windows_are_spooled_loses_none(running, store):
    store.broker.stop()
    wait_for(lambda: len(spooled_ids(running)) >= 2, 240, "windows in the spool", poll=5)
    spooled = spooled_ids(running)
    running.power_cut()  # kill -9 qemu: the guest's page cache is gone
    try:
        started = time.monotonic()
        TIMES["power-cut reboot"] = running.boot(keep=True)
        wait_active(running)
        TIMES["power-cut to active"] = time.monotonic() - started
    finally:
        store.broker.start()
    wait_for(lambda: {w["message_id"] for w in store.windows()} >= set(spooled), 240,
             "every window spooled before the power cut at HQ", poll=3)
    check_hq(store)


@pytest.mark.parametrize("signal_name", ["SEGV", "ABRT"])
def test_a_crash_leaves_no_core_dump_and_no_swap(running, signal_name):
    assert running.show("LimitCORE") == "0"
    assert running.show("MemorySwapMax") == "0"
    running.run("touch /run/crash-mark")
    restarts = int(running.show("NRestarts"))
    _, worker = running.pids()
    assert running.out(f"grep -E '^(Uid|CapEff)' /proc/{worker}/status")  # it runs
    running.run(f"kill -{signal_name} {worker}")
    wait_for(lambda: int(running.show("NRestarts")) > restarts, 60, "a restart", poll=1)
    wait_active(running)
    # systemd-coredump is installed and is the kernel's core_pattern: nothing reached it.
    assert "systemd-coredump" in running.out("cat /proc/sys/kernel/core_pattern")
    stored = running.out("find /var/lib/systemd/coredump -type f -newer /run/crash-mark "
                         "2>/dev/null; find / -xdev -name 'core*' -type f -newer "
                         "/run/crash-mark 2>/dev/null", check=False)
    assert stored.strip() == ""
    journal = running.out("journalctl -q -o cat -t systemd-coredump --since -5min",
                          check=False)
    assert "dumped core" not in journal
