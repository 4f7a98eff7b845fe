"""systemd-analyze on our unit files, offline, without touching the host.

`systemd-analyze verify` checks that ExecStart= is executable and loads every unit ours
depend on, so it runs against a throwaway root (`--root`): a copy of the host's own unit
directory (sysinit.target, network-online.target, ...), our units, and an executable stub at
ExecStart's path. systemd 252's verify does not look up User=, so the root needs no passwd.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "systemd"
SERVICE, TARGET = "shopper-edge@.service", "shopper-edge.target"
INSTANCE = "shopper-edge@front.service"
EXEC_START = "/opt/shopper-edge/venv/bin/shopper-edge"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
HOST_UNIT_DIRS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+(?:\.\d+)?) (\w+)")


def unit_root(tmp: Path, service: Path = UNITS / SERVICE, target: Path = UNITS / TARGET) -> Path:
    """A root for `--root=` holding the host's units, ours and a stub ExecStart."""
    root = tmp / "root"
    system = root / "usr/lib/systemd/system"
    host = next(d for d in HOST_UNIT_DIRS if d.is_dir())
    shutil.copytree(host, system, symlinks=True)  # masked units stay links to /dev/null
    shutil.copy(service, system / SERVICE)
    shutil.copy(target, system / TARGET)
    stub = root / EXEC_START.lstrip("/")
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    return root


def verify(root: Path, *units: str) -> tuple[int, list[str]]:
    """Exit status of `systemd-analyze verify`, and every line it printed about our units."""
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", "--generators=no", f"--root={root}", *units],
        capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    return result.returncode, [line for line in lines if "shopper-edge" in line]


def exposure(root: Path, unit: str = INSTANCE) -> tuple[float, str]:
    """Overall exposure level and its rating ("OK", ...) from `systemd-analyze security`."""
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", f"--root={root}", "--no-pager", unit],
        capture_output=True, text=True, timeout=60)
    match = EXPOSURE.search(result.stdout)
    assert match and match[1] == unit, result.stdout + result.stderr
    return float(match[2]), match[3]


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file, each key with all its values in order (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"{path}: continuation lines are not parsed: {raw}"
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path}: not a key=value line: {raw}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections
