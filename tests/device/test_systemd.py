"""The systemd units: hardened (exposure <= 2.0), valid for systemd 252, and what the app
needs (notify + watchdog, user and network namespaces for the pixel worker)."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from tests.systemd_tools import (
    EXEC_START,
    INSTANCE,
    SERVICE,
    SYSTEMD_ANALYZE,
    TARGET,
    UNITS,
    exposure,
    parse_unit,
    unit_root,
    verify,
)


@pytest.fixture(autouse=True)
def _systemd_analyze_installed():
    if SYSTEMD_ANALYZE is None:
        pytest.fail("systemd-analyze is not installed: make system-deps")


def test_instance_exposure_is_at_most_2(tmp_path):
    score, rating = exposure(unit_root(tmp_path))
    assert score <= 2.0, f"exposure {score} {rating}"
    assert rating == "OK"


def test_units_verify_without_warnings(tmp_path):
    status, about_us = verify(unit_root(tmp_path), INSTANCE, TARGET)
    assert status == 0
    assert about_us == []


def test_verify_reports_a_mistake_in_our_unit(tmp_path):
    """The check above can fail: verify exits 0 on an unknown key, but says so."""
    broken = tmp_path / SERVICE
    broken.write_text((UNITS / SERVICE).read_text().replace("WatchdogSec=", "WatchdogSecs="))
    status, about_us = verify(unit_root(tmp_path, service=broken), INSTANCE)
    assert status == 0
    assert any("Unknown key" in line and "WatchdogSecs" in line for line in about_us)


def test_verify_needs_the_executable(tmp_path):
    root = unit_root(tmp_path)
    (root / EXEC_START.lstrip("/")).unlink()
    status, about_us = verify(root, INSTANCE)
    assert status != 0
    assert any("not executable" in line for line in about_us)


def test_service_essentials():
    unit = parse_unit(UNITS / SERVICE)
    service, install = unit["Service"], unit["Install"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]  # the publisher, not the pixel worker
    assert service["WatchdogSec"] == ["60"]
    assert service["Restart"] == ["on-failure"]
    assert service["ExecStart"] == [
        f"{EXEC_START} run --config /etc/shopper-edge/device.yaml --camera %i"]
    assert service["User"] == service["Group"] == ["shopper-edge"]
    assert "DynamicUser" not in service
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["CapabilityBoundingSet"] == service["AmbientCapabilities"] == [""]
    assert service["ProtectSystem"] == ["strict"]
    assert service["MemoryDenyWriteExecute"] == ["yes"]
    # The pixel worker's memory (frames) never goes to a core file or to swap.
    assert service["LimitCORE"] == service["MemorySwapMax"] == ["0"]
    assert "PrivateDevices" not in service  # it would hide /dev/video*
    assert service["DeviceAllow"] == ["char-video4linux rw"]
    assert service["StateDirectory"] == ["shopper-edge"]
    assert unit["Unit"]["PartOf"] == ["shopper-edge.target"]
    assert install["WantedBy"] == ["shopper-edge.target"]
    assert parse_unit(UNITS / TARGET)["Install"]["WantedBy"] == ["multi-user.target"]


def test_pixel_worker_may_create_user_and_network_namespaces():
    """The worker unshares CLONE_NEWUSER | CLONE_NEWNET (appliance/device/isolation.py): the
    namespace filter allows both, and unshare is allowed by the system call filter."""
    service = parse_unit(UNITS / SERVICE)["Service"]
    (denied,) = service["RestrictNamespaces"]
    assert denied.startswith("~")
    assert not {"user", "net"} & set(denied[1:].split())
    allowed, refused, landlock = service["SystemCallFilter"]
    assert allowed == "@system-service" and refused.startswith("~")
    assert "unshare" in _syscalls(allowed)
    # ... and Landlock, with which it gives up writing files (not in any group in 252).
    assert set(landlock.split()) == {"landlock_create_ruleset", "landlock_add_rule",
                                     "landlock_restrict_self"}
    for group in refused[1:].split():
        assert "unshare" not in _syscalls(group), group
    assert "AF_INET" in service["RestrictAddressFamilies"][0].split()  # loopback ioctl


def _syscalls(group: str) -> set[str]:
    """Every system call in a group, nested groups expanded."""
    out = subprocess.run([SYSTEMD_ANALYZE, "syscall-filter", group], capture_output=True,
                         text=True, check=True).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        names |= _syscalls(name) if name.startswith("@") else {name}
    return names


def _entries(path) -> dict[str, list[str]]:
    """/etc/passwd or /etc/group lines by name, split into fields."""
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines()}


@pytest.mark.skipif(os.geteuid() != 0, reason="tmpfiles must chown: needs root")
def test_sysusers_and_tmpfiles(tmp_path):
    """Run both for real on a throwaway root: the user, its video membership, and the modes
    that keep secrets readable by the service only."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nvideo:x:44:\n")
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", UNITS / "shopper-edge.sysusers"],
                   check=True, capture_output=True)
    users, groups = (_entries(etc / name) for name in ("passwd", "group"))
    user = users["shopper-edge"]
    assert user[6] == "/usr/sbin/nologin" and int(user[2]) < 1000
    assert groups["video"][3].split(",") == ["shopper-edge"]
    uid, gid = int(user[2]), int(groups["shopper-edge"][2])

    secrets = etc / "shopper-edge/secrets"
    secrets.mkdir(parents=True)
    (secrets / "mqtt.password").write_text("hunter2\n")
    (etc / "shopper-edge/device.yaml").write_text("store_id: x\n")
    subprocess.run(["systemd-tmpfiles", f"--root={tmp_path}", "--create",
                    UNITS / "shopper-edge.tmpfiles"], check=True, capture_output=True)

    def mode_owner(path):
        s = (tmp_path / path).stat()
        return stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid

    assert mode_owner("etc/shopper-edge") == (0o750, 0, gid)
    assert mode_owner("etc/shopper-edge/device.yaml") == (0o640, 0, gid)
    assert mode_owner("etc/shopper-edge/secrets") == (0o750, 0, gid)
    assert mode_owner("etc/shopper-edge/secrets/mqtt.password") == (0o600, uid, gid)
    for path in ("var/lib/shopper-edge", "var/lib/shopper-edge/spool",
                 "var/lib/shopper-edge/models"):
        assert mode_owner(path) == (0o750, uid, gid), path
