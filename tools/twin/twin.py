"""The device twin: a Debian 12 VM built from Debian packages only, booted with QEMU.

    python3 tools/twin/twin.py start [--arch amd64|arm64] [--keep] [--rtc ISO]
    python3 tools/twin/twin.py stop|kill [--arch ...]
    python3 tools/twin/twin.py ssh [--arch ...] -- COMMAND...
    python3 tools/twin/twin.py binfmt --arch arm64   (root: let this kernel run aarch64 binaries)

The image is cached under var/twin/<arch>-<recipe hash>/ (rebuilt only when
tools/twin/build-image.sh or tools/image/debian-root.sh changes); each start boots a fresh
copy-on-write overlay of it in var/twin/<arch>/ unless --keep (boot the overlay as the last
run left it: a power cut's disk). `kill` is a power cut (SIGKILL to qemu); `stop` lets
qemu close its disk.
Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "tools" / "twin" / "build-image.sh"
DEBIAN_ROOT = REPO / "tools" / "image" / "debian-root.sh"  # the recipe's shared part
TWIN = REPO / "var" / "twin"
BOOT_TIMEOUT = {"amd64": 300, "arm64": 900}  # seconds to ssh under emulation on a busy host
BINFMT = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")  # from qemu-user-static


def wheels() -> Path | None:
    """TWIN_WHEELS (make twin-ci): a make stage wheelhouse the image installs at build time."""
    folder = os.environ.get("TWIN_WHEELS")
    return Path(folder).resolve() if folder else None


def image_dir(arch: str) -> Path:
    recipe = RECIPE.read_bytes() + DEBIAN_ROOT.read_bytes() + arch.encode()
    installed = wheels()
    if installed:  # by name (versions): deploy reinstalls the app's own wheel anyway
        recipe += " ".join(sorted(w.name for w in installed.glob("*.whl")
                                  if not w.name.startswith("shopper_edge-"))).encode()
    digest = hashlib.sha256(recipe).hexdigest()[:12]
    return TWIN / f"{arch}-{'installed-' if installed else ''}{digest}"


def run_dir(arch: str) -> Path:
    return TWIN / arch


def register_binfmt(arch: str) -> None:
    """mmdebstrap runs a foreign root's maintainer scripts through qemu-user, so the kernel
    must hand aarch64 binaries to it: binfmt_misc mounted and qemu-aarch64 registered (with
    qemu-user-static's F flag, so it works inside the chroot). Done here when root."""
    if arch != "arm64" or os.uname().machine == "aarch64" or (BINFMT / "qemu-aarch64").exists():
        return
    if os.geteuid() != 0 or not BINFMT_CONF.exists():
        raise SystemExit("twin: an arm64 image needs qemu-aarch64 registered in binfmt_misc: "
                         "run sudo make twin-deps ARCH=arm64")
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=True)
    if not (BINFMT / "qemu-aarch64").exists():
        rule = next(line for line in BINFMT_CONF.read_text().splitlines()
                    if line.startswith(":"))
        (BINFMT / "register").write_text(rule)
    print("twin: registered qemu-aarch64 in binfmt_misc", flush=True)


def build(arch: str) -> Path:
    image = image_dir(arch)
    if (image / "disk.qcow2").exists():
        return image
    register_binfmt(arch)
    TWIN.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"twin: building the {arch} image in {image} (mmdebstrap)", flush=True)
    installed = wheels()
    if installed and not any(installed.glob("shopper_edge-*.whl")):
        raise SystemExit(f"twin: TWIN_WHEELS={installed}: no make stage wheelhouse there")
    command = ["sh", str(RECIPE), arch, str(image)] + ([str(installed)] if installed else [])
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"twin: building the {arch} image failed (its output is above)")
    print(f"twin: image built in {time.monotonic() - started:.0f} s", flush=True)
    for old in TWIN.glob(f"{arch}-*"):  # images of older recipes (or wheelhouses)
        if old != image and ("installed-" in old.name) == bool(installed) and \
                (old / "disk.qcow2").exists():
            shutil.rmtree(old)
    return image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_command(arch: str, image: Path, run: Path, port: int, rtc: str | None) -> list[str]:
    # Plain emulation (TCG): KVM guests hang on this host (nested virtualisation).
    # TWIN_ACCEL=kvm where a KVM guest really runs.
    accel = os.environ.get("TWIN_ACCEL", "tcg")
    if arch == "amd64":
        command = ["qemu-system-x86_64", "-M", "q35", "-cpu", "max" if accel == "tcg" else "host"]
        console = "ttyS0"
    else:
        # A Raspberry Pi 4's cores.
        command = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72"]
        console = "ttyAMA0"
    append = f"root=/dev/vda rw console={console} net.ifnames=0 systemd.show_status=false"
    command += [
        "-accel", accel, "-smp", os.environ.get("TWIN_CPUS", "2"),
        "-m", os.environ.get("TWIN_MEMORY", "2048"),
        "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
        "-append", append,
        # cache=writeback: the guest's flushes reach the host file (what a power cut keeps).
        "-drive", f"file={run / 'disk.qcow2'},if=virtio,format=qcow2,cache=writeback",
        "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",
        "-display", "none", "-serial", f"file:{run / 'console.log'}",
        "-monitor", "none", "-pidfile", str(run / "qemu.pid"), "-daemonize",
    ]
    if rtc:  # a board without a real-time clock: it boots with its clock wrong
        command += ["-rtc", f"base={rtc},clock=host"]
    if os.environ.get("TWIN_ICOUNT"):  # e.g. shift=0,sleep=on: the guest's clocks count
        command += ["-icount", os.environ["TWIN_ICOUNT"]]  # instructions (docs/twin.md)
    return command


def ssh_config(arch: str) -> Path:
    return run_dir(arch) / "ssh_config"


def write_ssh_config(arch: str, image: Path, port: int) -> Path:
    key = run_dir(arch) / "id_ed25519"
    shutil.copy(image / "id_ed25519", key)
    key.chmod(0o600)
    path = ssh_config(arch)
    path.write_text(
        "Host twin\n"
        "  HostName 127.0.0.1\n"
        f"  Port {port}\n"
        "  User twin\n"
        f"  IdentityFile {key}\n"
        "  IdentitiesOnly yes\n"
        # A fresh VM per run, on a loopback port: nothing to remember or verify.
        "  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n"
        "  LogLevel ERROR\n"
        "  ConnectTimeout 10\n"
        "  ServerAliveInterval 5\n"
        "  ServerAliveCountMax 6\n")
    return path


def qemu_pid(arch: str) -> int | None:
    pid_file = run_dir(arch) / "qemu.pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def ssh(arch: str, *command: str, timeout: float = 60, check: bool = False):
    return subprocess.run(["ssh", "-F", str(ssh_config(arch)), "twin", *command],
                          capture_output=True, text=True, timeout=timeout, check=check)


def start(arch: str, keep: bool = False, rtc: str | None = None) -> float:
    """Boots the twin and waits until ssh answers; returns the seconds the boot took."""
    if qemu_pid(arch):
        raise SystemExit(f"twin: the {arch} twin already runs (make twin-stop first)")
    image = build(arch)
    run = run_dir(arch)
    run.mkdir(parents=True, exist_ok=True)
    disk = run / "disk.qcow2"
    if not keep or not disk.exists():
        disk.unlink(missing_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                        "-b", str(image / "disk.qcow2"), str(disk)], check=True)
    port = free_port()
    write_ssh_config(arch, image, port)
    (run / "console.log").unlink(missing_ok=True)
    started = time.monotonic()
    subprocess.run(qemu_command(arch, image, run, port, rtc), check=True)
    timeout = float(os.environ.get("TWIN_BOOT_TIMEOUT", BOOT_TIMEOUT[arch]))
    deadline = started + timeout
    while time.monotonic() < deadline:
        if qemu_pid(arch) is None:
            raise SystemExit(f"twin: qemu exited; see {run / 'console.log'}")
        try:
            if ssh(arch, "true", timeout=30).returncode == 0:
                return time.monotonic() - started
        except subprocess.TimeoutExpired:
            pass
        time.sleep(2)
    stop(arch, signal.SIGKILL)
    raise SystemExit(f"twin: no ssh after {timeout:.0f} s; see {run / 'console.log'}")


def stop(arch: str, sig: int = signal.SIGTERM) -> bool:
    """Stops qemu (SIGKILL: a power cut). Returns whether one ran."""
    pid = qemu_pid(arch)
    if pid is None:
        return False
    os.kill(pid, sig)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    (run_dir(arch) / "qemu.pid").unlink(missing_ok=True)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(prog="twin.py", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "start", "stop", "kill", "ssh", "binfmt"])
    parser.add_argument("--arch", default="amd64", choices=["amd64", "arm64"])
    parser.add_argument("--keep", action="store_true", help="boot the last run's disk")
    parser.add_argument("--rtc", help="the guest's clock at boot, e.g. 2021-01-01T00:00:00")
    parser.add_argument("command", nargs="*")
    args = parser.parse_args()
    if args.action == "build":
        print(build(args.arch))
    elif args.action == "binfmt":
        register_binfmt(args.arch)
    elif args.action == "start":
        seconds = start(args.arch, args.keep, args.rtc)
        # Absolute: deploy runs ssh from inside its staging directory.
        config = ssh_config(args.arch)
        print(f"twin: {args.arch} twin up in {seconds:.0f} s; reach it with:\n"
              f"  ssh -F {config} twin\n"
              f"  make deploy HOST=twin SSH='ssh -F {config}' DEVICE_CONFIG=...\n"
              f"stop it with: make twin-stop")
    elif args.action in ("stop", "kill"):
        ran = stop(args.arch, signal.SIGTERM if args.action == "stop" else signal.SIGKILL)
        print(f"twin: {args.arch} twin {'stopped' if ran else 'was not running'}")
    else:
        return subprocess.run(["ssh", "-F", str(ssh_config(args.arch)), "twin",
                               *args.command]).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
