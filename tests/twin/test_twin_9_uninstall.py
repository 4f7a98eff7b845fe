"""Last on the twin: `make uninstall` removes the software and keeps the data; with PURGE=yes
nothing is left: no unit, user, file or directory (a listing of the filesystem taken before
the install is compared with one taken after the purge)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.twin.conftest import listing, twin_vm


def uninstall(twin, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "uninstall", "HOST=twin",
                           f"SSH=ssh -F {twin.ssh_config}", f"PYTHON={sys.executable}",
                           *extra], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_uninstall_keeps_the_data_and_purge_leaves_nothing_behind(deployed):
    result = uninstall(deployed)
    assert result.returncode == 0, result.stdout + result.stderr
    for listed in ("list-units --all", "list-unit-files"):  # exit 1 when none match
        assert deployed.out(f"systemctl {listed} --no-legend 'shopper-edge*'",
                            check=False).strip() == ""
    assert deployed.run("test -e /opt/shopper-edge", check=False).returncode != 0
    for kept in ("/etc/shopper-edge/device.yaml", "/etc/shopper-edge/secrets/mqtt.password",
                 "/var/lib/shopper-edge/spool"):
        assert deployed.run(f"test -e {kept}", check=False).returncode == 0, kept
    assert deployed.run("getent passwd shopper-edge", check=False).returncode == 0

    result = uninstall(deployed, "PURGE=yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert deployed.run("getent passwd shopper-edge", check=False).returncode != 0
    assert deployed.run("getent group shopper-edge", check=False).returncode != 0
    after = listing(deployed)
    added = sorted(after - deployed.listing_before)
    removed = sorted(deployed.listing_before - after)
    if twin_vm.wheels():  # make twin-ci's image came with the appliance's venv installed:
        # purge rightly takes it too, and nothing else
        removed = [entry for entry in removed if not entry.startswith("/opt/shopper-edge ")
                   and not entry.startswith("/opt/shopper-edge/")]
    assert (added, removed) == ([], [])
