"""The installer's path on a real OS: `make deploy` into the twin, the unit under systemd as
PID 1 (READY, watchdog, its sandbox), and a real RTSP clip counted exactly at HQ over TLS."""

from __future__ import annotations

import time

from tests.conftest import truth_counts, wait_for
from tests.systemd_tools import EXPOSURE
from tests.twin.conftest import (
    CLIP,
    GUEST_SLOWER,
    SLOW,
    TIMES,
    UNIT,
    WINDOW_SECONDS,
    start_unix,
    totals,
    wait_active,
)


def test_unit_reaches_active_through_ready_and_keeps_pinging_the_watchdog(deployed):
    started = time.monotonic()
    wait_active(deployed)
    TIMES["deploy to active"] = time.monotonic() - started
    assert deployed.out("ps -o comm= -p 1").strip() == "systemd"
    assert deployed.show("Type") == "notify"
    assert deployed.show("WatchdogUSec") == "1min"
    # Type=notify: active only after the publisher's READY=1 (it says so once its worker runs).
    first = int(deployed.show("WatchdogTimestampMonotonic"))
    assert first > 0
    wait_for(lambda: int(deployed.show("WatchdogTimestampMonotonic")) > first, 60,
             "a second watchdog ping", poll=3)
    assert deployed.show("NRestarts") == "0"


def test_security_exposure_on_the_twin_is_at_most_2(deployed):
    out = deployed.out(f"systemd-analyze security {UNIT} 2>&1")
    match = EXPOSURE.search(out)
    assert match, out[-2000:]
    TIMES["security exposure"] = float(match.group(2))
    assert float(match.group(2)) <= 2.0, out


def test_pixel_worker_has_its_own_user_and_network_namespace_under_the_unit(deployed):
    wait_active(deployed)
    publisher, worker = deployed.pids()
    for kind in ("net", "user"):
        ns = deployed.out(f"readlink /proc/{publisher}/ns/{kind} /proc/{worker}/ns/{kind}")
        mine, its = ns.split()
        assert mine != its, f"the worker shares the publisher's {kind} namespace"
    # Only loopback inside the worker's network namespace: it reaches its camera by the relay.
    interfaces = [line.split(":")[0].strip() for line in
                  deployed.out(f"cat /proc/{worker}/net/dev").splitlines()[2:]]
    assert interfaces == ["lo"]
    # ... and it runs onnxruntime there, under the unit's own restrictions.
    for prop, value in (("MemoryDenyWriteExecute", "yes"), ("ProcSubset", "pid"),
                        ("ProtectProc", "invisible"), ("NoNewPrivileges", "yes")):
        assert deployed.show(prop) == value, prop
    assert "onnxruntime" in deployed.out(f"grep -l onnxruntime /proc/{worker}/maps "
                                         f"&& grep -o 'onnxruntime[^/]*\\.so' "
                                         f"/proc/{worker}/maps | head -1")


def test_a_real_rtsp_clip_is_counted_exactly_at_hq_over_tls(deployed, store):
    truth = truth_counts(CLIP.name)
    started = time.monotonic()
    # The camera plays the clip once and then refuses: every count HQ gets is this clip's.
    wait_for(lambda: "stream lost" in deployed.journal(), 600 + 2 * 15.6 * SLOW,
             lambda: deployed.journal()[-3000:], poll=5)
    ended = deployed.time()  # windows carry the twin's clock
    wait_for(lambda: any(start_unix(w) > ended for w in store.windows()),
             120 + 3 * WINDOW_SECONDS * GUEST_SLOWER, "a window after the clip", poll=3)
    TIMES["clip counted"] = time.monotonic() - started
    windows = store.windows()
    assert totals(windows) == truth, (totals(windows), truth, deployed.journal()[-3000:])
    starts = [w["window_start"] for w in windows]
    assert len(starts) == len(set(starts))
