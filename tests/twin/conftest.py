"""The device twin (tools/twin): a Debian 12 VM under QEMU, with the appliance deployed by
the real installer path (`make deploy`), a real RTSP camera and a real Mosquitto (TLS,
passwords, ACL) with HQ on this host, which the guest reaches as 10.0.2.2.

Run by `make twin-test` only (marker `twin`): one VM for the session, always stopped at
the end, even when a test fails. TWIN_ARCH=arm64 runs them on the arm64 twin.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.broker import Broker, free_port, write_password
from tests.conftest import CLIPS, REPO, HqProcess, wait_for

_spec = importlib.util.spec_from_file_location("twin_vm", REPO / "tools" / "twin" / "twin.py")
twin_vm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(twin_vm)

ARCH = os.environ.get("TWIN_ARCH", "amd64")
# The device's pip platforms where they are not this machine's (Makefile: PLATFORM).
PLATFORM = {"arm64": "manylinux2014_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64"}
HOST = "10.0.2.2"  # this machine, seen from QEMU's user-mode network
STORE, CAMERA = "store-twin", "front"
UNIT = f"shopper-edge@{CAMERA}.service"
USERS = {"dev-front": "front-secret", "hq": "hq-secret"}
ACL = f"""user dev-front
topic write shopper/{STORE}/#
user hq
topic read shopper/#
"""
CLIP = CLIPS / "OneLeaveShopReenter1front.mpg"  # 1 in, 1 out, 15.6 s
WINDOW_SECONDS = 10
# The camera plays the clip SLOW times slower (every frame at 25/SLOW fps). Under QEMU's
# icount (TWIN_ICOUNT) the twin's own clocks run slower than this host's while it computes,
# TWIN_SLOW chosen to match, so that the appliance would see the clip at its own pace (tried:
# they do not keep one pace, docs/twin.md); what the twin does in its own time then takes up
# to SLOW times longer here.
SLOW = int(os.environ.get("TWIN_SLOW", "10"))
GUEST_SLOWER = SLOW if os.environ.get("TWIN_ICOUNT") else 1
SYSTEM_PYTHON = "/usr/bin/python3"
TIMES: dict[str, float] = {}  # step -> seconds, printed at the end of the session


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.twin)


def pytest_terminal_summary(terminalreporter):
    # The test modules import this file as tests.twin.conftest, pytest as conftest.
    TIMES.update(getattr(sys.modules.get("tests.twin.conftest"), "TIMES", {}))
    if TIMES:
        terminalreporter.write_line("twin step times (s): " + json.dumps(
            {k: round(v, 1) for k, v in TIMES.items()}))


class Twin:
    """The running VM: ssh into it, power it off hard, boot it again."""

    def __init__(self, arch: str):
        self.arch = arch
        self.ssh_config = twin_vm.ssh_config(arch)

    def boot(self, keep: bool = False, rtc: str | None = None) -> float:
        return twin_vm.start(self.arch, keep=keep, rtc=rtc)

    def stop(self) -> None:
        twin_vm.stop(self.arch)

    def power_cut(self) -> None:
        assert twin_vm.stop(self.arch, signal.SIGKILL), "the twin was not running"

    def run(self, command: str, timeout: float = 120, check: bool = True,
            sudo: bool = True) -> subprocess.CompletedProcess:
        remote = f"sudo sh -c {shlex.quote(command)}" if sudo else command
        result = twin_vm.ssh(self.arch, remote, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"twin: {command!r} exited {result.returncode}:\n"
                                 f"{result.stdout}{result.stderr}")
        return result

    def out(self, command: str, **kwargs) -> str:
        return self.run(command, **kwargs).stdout

    def journal(self, unit: str = UNIT, since: str | None = None) -> str:
        cursor = f" --after-cursor={shlex.quote(since)}" if since else ""
        return self.out(f"journalctl -q -o cat -u {unit}{cursor}")

    def cursor(self) -> str:
        return self.out("journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p'").strip()

    def time(self) -> float:
        """The twin's wall clock (under icount it falls behind this host's)."""
        return float(self.out("date +%s.%N", sudo=False))

    def show(self, prop: str, unit: str = UNIT) -> str:
        return self.out(f"systemctl show -P {prop} {unit}").strip()

    def pids(self) -> tuple[int, int]:
        """(publisher, pixel worker) of the camera's unit."""
        main = int(self.show("MainPID"))
        children = self.out(f"pgrep -P {main}").split()
        assert len(children) == 1, f"expected one pixel worker under {main}: {children}"
        return main, int(children[0])


@pytest.fixture(scope="session")
def twin():
    vm = Twin(ARCH)
    if os.environ.get("TWIN_REUSE") and twin_vm.qemu_pid(ARCH):  # developing: `make twin` one
        yield vm
        return
    try:
        TIMES["boot"] = vm.boot()
        yield vm
    finally:
        vm.stop()


class Camera:
    """tests/rtsp_server.py on this host at a fixed port, so the deployed config stays
    valid: `once` plays the clip one time (counts equal its truth), else it loops. In slow
    motion (SLOW times, every frame at 25/SLOW fps): an emulated CPU on a shared host
    processes about a frame a second, as a loaded board might."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://{HOST}:{self.port}/cam"

    def start(self, clip: Path = CLIP, once: bool = False) -> None:
        self.stop()
        command = [SYSTEM_PYTHON, str(REPO / "tests" / "rtsp_server.py"), "--port",
                   str(self.port), "--file", str(clip), "--slow", str(SLOW)] + \
            (["--once"] if once else [])
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout.readline().strip() == "READY"

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="session")
def camera():
    cam = Camera()
    yield cam
    cam.stop()


class Store:
    """The store's broker (TLS, passwords, ACL) and HQ storing every window in SQLite."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.broker = Broker(directory / "broker", users=USERS, acl=ACL, tls=True,
                             tls_ips=(HOST,)).start()
        self.hq: HqProcess | None = None
        self.start_hq()

    def start_hq(self) -> None:
        password = write_password(self.directory, "hq", USERS["hq"])
        self.hq = HqProcess(self.broker.port, self.directory / "hq.sqlite", "--tls-ca",
                            str(self.broker.ca), "--username", "hq", "--password-file",
                            str(password), client_id="hq-twin")

    def windows(self) -> list[dict]:
        db = self.directory / "hq.sqlite"
        if not db.exists():
            return []
        with sqlite3.connect(db) as connection:
            return [json.loads(d) for (d,) in
                    connection.execute("SELECT document FROM windows ORDER BY rowid")]

    def statuses(self) -> dict[tuple[str, str], str]:
        """Each camera's status as HQ stored it."""
        db = self.directory / "hq.sqlite"
        if not db.exists():
            return {}
        with sqlite3.connect(db) as connection:
            return {(s, c): status for s, c, status in connection.execute(
                "SELECT store_id, camera_id, status FROM camera_status")}

    def close(self) -> None:
        if self.hq is not None:
            self.hq.stop()
        self.broker.stop()


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("store"))
    yield s
    s.close()


def device_config(directory: Path, store: Store, camera: Camera, v4l2: bool = False,
                  clip: str | None = None) -> Path:
    """The twin's device.yaml: the example's CAVIAR geometry, the host's camera and broker;
    with v4l2, one camera reading /dev/video0 instead; with clip, one camera `clip` reading
    that file on the twin."""
    example = yaml.safe_load((REPO / "examples" / "caviar-front.yaml").read_text())
    device = yaml.safe_load((REPO / "examples" / "device.yaml").read_text())
    device["store_id"] = STORE
    device["window_seconds"] = WINDOW_SECONDS
    device["privacy"]["min_count"] = 1  # compared with the clip's truth: no suppression
    device["performance"] = example["performance"]
    mqtt = device["outputs"]["mqtt"]
    mqtt.update(host=HOST, port=store.broker.port, username="dev-front", health_seconds=10)
    cam = example["cameras"][0]
    cam.update(id=CAMERA, source=camera.url, fps=5)
    if v4l2:
        cam.update(id="vivid", source="/dev/video0", fps=2)
    if clip:
        cam.update(id="clip", source=clip)
    device["cameras"] = [cam]
    path = directory / "twin-device.yaml"
    path.write_text(yaml.safe_dump(device, sort_keys=False))
    return path


# What a listing of the twin's filesystem leaves out: what the OS itself changes meanwhile
# (its daily timers too: dpkg-db-backup writes /var/backups, apt-daily /var/lib/apt).
VOLATILE = ("/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/log", "/var/cache",
            "/var/lib/systemd", "/var/lib/private", "/var/backups", "/var/lib/apt",
            "/home/twin", "/root")


def listing(vm: Twin) -> set[str]:
    prune = " -o ".join(f"-path {p}" for p in VOLATILE)
    out = vm.out(f"find / -xdev \\( {prune} \\) -prune -o -printf '%p %u %g %m\\n'",
                 timeout=300)
    return set(out.splitlines())


def deploy(vm: Twin, config: Path) -> subprocess.CompletedProcess:
    """The installer's path: make deploy HOST=twin SSH='ssh -F ...' (stage, copy, install)."""
    return subprocess.run(
        ["make", "--no-print-directory", "deploy", "HOST=twin",
         f"SSH=ssh -F {vm.ssh_config}", f"DESTDIR=var/twin/stage-{vm.arch}",
         f"DEVICE_CONFIG={config}", "MODELS=yolox_nano", f"PYTHON={sys.executable}",
         f"PLATFORM={PLATFORM.get(vm.arch, '')}"],
        cwd=REPO, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="session")
def deployed(twin, store, camera, tmp_path_factory, request):
    """The appliance installed on the twin by `make deploy`, counting the clip once."""
    directory = tmp_path_factory.mktemp("deploy")
    config = device_config(directory, store, camera)
    # What uninstall --purge must leave (minutes of `find` under emulation: only for it).
    if any("test_twin_9_uninstall" in item.nodeid for item in request.session.items):
        twin.listing_before = listing(twin)
    # Secrets by hand, as the README tells installers (deploy never copies them).
    twin.run("install -d -m 0750 /etc/shopper-edge/secrets")
    twin.run(f"printf '%s\\n' {USERS['dev-front']} > /etc/shopper-edge/secrets/mqtt.password"
             " && chmod 0600 /etc/shopper-edge/secrets/mqtt.password")
    twin.run(f"printf '%s' {shlex.quote(store.broker.ca.read_text())} "
             "> /etc/shopper-edge/store-ca.crt")
    camera.start(once=True)
    started = time.monotonic()
    result = deploy(twin, config)
    TIMES["deploy"] = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    twin.deployed_at = time.time()
    return twin


def wait_active(vm: Twin, seconds: float = 300 * min(GUEST_SLOWER, 4)) -> None:
    wait_for(lambda: vm.show("ActiveState") == "active", seconds,
             lambda: vm.show("ActiveState") + "\n" + vm.journal()[-2000:], poll=2)


def totals(windows: list[dict]) -> dict[str, int]:
    result = {"in": 0, "out": 0}
    for window in windows:
        for counts in window["lines"].values():
            for way in result:
                result[way] += counts[way] or 0
    return result


def start_unix(window: dict) -> float:
    return datetime.datetime.fromisoformat(window["window_start"]).timestamp()
