"""A board without a real-time clock: the twin boots with its clock years in the past (QEMU's
RTC; systemd only raises it to its own build date), the appliance starts and counts, then
time sync (systemd-timesyncd asking an SNTP server on this host) steps the clock forward, and
later it is set back an hour. No flood of empty windows, no window after a step labelled with
the time before it, each step reported once in the journal and counted in health."""

from __future__ import annotations

import subprocess
import time

from tests.conftest import REPO, wait_for
from tests.twin.conftest import (
    CAMERA,
    SYSTEM_PYTHON,
    TIMES,
    WINDOW_SECONDS,
    start_unix,
    wait_active,
)
from tests.twin.test_twin_4_v4l2 import health_messages

STEP = "the system clock stepped by"


def test_clock_years_behind_at_boot_then_synced_forward_and_set_back(deployed, store,
                                                                      camera):
    if camera.process is None or "--once" in camera.process.args:
        camera.start(once=False)
    assert "time-sync.target" in deployed.show("After")
    seen = {w["message_id"] for w in store.windows()}

    def new_starts() -> list[float]:
        return [start_unix(w) for w in store.windows()
                if w["camera_id"] == CAMERA and w["message_id"] not in seen]

    # timesyncd restores the last time it saved (its clock file, touched every minute): a
    # board that never saved one, or was off for years, boots at its RTC's time.
    deployed.run("systemctl stop systemd-timesyncd && rm -f /var/lib/systemd/timesync/clock "
                 "&& sync")
    deployed.stop()
    TIMES["boot with the clock in the past"] = deployed.boot(keep=True, rtc="2021-01-01")
    behind = time.time() - float(deployed.out("date +%s"))
    assert behind > 30 * 86400, f"the twin's clock is only {behind:.0f} s behind"
    wait_active(deployed)
    client, health = health_messages(store, CAMERA)
    ntp = subprocess.Popen([SYSTEM_PYTHON, str(REPO / "tests" / "ntp_server.py")],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert ntp.stdout.readline().strip() == "READY"
        deployed.run("systemctl restart systemd-timesyncd")  # ask now, not at its backoff
        wait_for(lambda: STEP in deployed.journal(), 300,
                 lambda: deployed.out("timedatectl timesync-status; date", check=False), poll=5)
        synced = time.time()
        wait_for(lambda: any(s >= synced for s in new_starts()), 300,
                 "a window after the sync at HQ", poll=5)
        wait_for(lambda: any(h.get("clock_steps") == 1 for h in health), 120,
                 "health reporting the step", poll=3)
        assert deployed.journal().count(STEP) == 1
        windows = new_starts()
        jumped_over = [s for s in windows if synced - behind + 3600 < s < synced - 60]
        assert jumped_over == [], "windows for the time the clock jumped over"
        before = [s for s in windows if s <= synced - behind + 3600]
        assert len(before) <= 3600 / WINDOW_SECONDS, "a flood of windows before the sync"

        # Set back an hour by hand (sync off, or it would step forward again).
        deployed.run("timedatectl set-ntp false && date -s @$(( $(date +%s) - 3600 ))")
        back = time.time()
        wait_for(lambda: deployed.journal().count(STEP) == 2, 120, "the second step", poll=5)
        # Labelled from the step on (not from when it arrives: the emulated appliance takes
        # several seconds a frame, and a window leaves only when it closes).
        wait_for(lambda: any(back - 3600 - 2 * WINDOW_SECONDS <= s < back - 1800
                             for s in new_starts()), 180,
                 lambda: f"a window labelled with the clock set back at {back:.0f}: "
                         f"{new_starts()[-12:]}", poll=5)
        wait_for(lambda: any(h.get("clock_steps") == 2 for h in health), 120,
                 "health reporting the second step", poll=3)
        late = [s for s in new_starts() if s >= back + 2 * WINDOW_SECONDS]
        assert late == [], "a window labelled with the time before the clock was set back"
    finally:
        ntp.kill()
        client.loop_stop()
        client.disconnect()
        deployed.run("timedatectl set-ntp true", check=False)
