"""Boots a flashed image file under QEMU as a board boots its card: EFI firmware (OVMF/AAVMF,
Debian's ovmf and qemu-efi-aarch64) reading the image's own boot partition, no kernel given.

    python3 tools/image/boot.py IMAGE [--arch amd64|arm64] [--run DIR] [--pi]

The image file itself is the card: the boot changes it. --pi: a Raspberry Pi image, whose
firmware QEMU cannot run: its own kernel and initrd (named in its config.txt) are read from its
FAT partition and booted directly on the `virt` machine with its own cmdline.txt, the serial
console on ttyAMA0; the root, its fstab and everything after are the card's.
Serial console to RUN/console.log; user-mode network (the guest reaches
this host as 10.0.2.2). `poweroff` presses the power button (ACPI) and waits for the guest to
shut down. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

FIRMWARE = {
    "amd64": ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    "arm64": ("/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd"),
}


class Board:
    """One QEMU process booting `image`; its files (EFI variables, monitor, console) in `run`."""

    def __init__(self, image: Path, run: Path, arch: str = "amd64", pi: bool = False):
        self.image, self.run, self.arch, self.pi = image, run, arch, pi
        self.console = run / "console.log"
        self.monitor = run / "monitor.sock"
        self.process: subprocess.Popen | None = None

    def pi_kernel(self) -> list[str]:
        """-kernel/-initrd/-append from the Pi image's FAT partition (config.txt, cmdline.txt)."""
        env = {"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}

        def fat(*args: str) -> str:
            return subprocess.run(["mtype", "-i", f"{self.image}@@1M", *args], check=True,
                                  capture_output=True, text=True, env=env).stdout
        config = fat("::/config.txt").splitlines()
        kernel = next(line.split("=", 1)[1] for line in config if line.startswith("kernel="))
        initrd = next(line.split()[1] for line in config if line.startswith("initramfs "))
        for name in (kernel, initrd):
            subprocess.run(["mcopy", "-o", "-i", f"{self.image}@@1M", f"::/{name}",
                            str(self.run / name)], check=True, env=env)
        cmdline = [w for w in fat("::/cmdline.txt").split() if not w.startswith("console=")]
        return ["-kernel", str(self.run / kernel), "-initrd", str(self.run / initrd),
                "-append", " ".join(cmdline + ["console=ttyAMA0"])]

    def command(self) -> list[str]:
        if self.pi:
            boot = self.pi_kernel()
        else:
            boot = self.efi()
        # Plain emulation (TCG): no KVM guest runs on this host (docs/twin.md).
        accel = os.environ.get("TWIN_ACCEL", "tcg")
        if self.arch == "amd64":
            cpu = "max" if accel == "tcg" else "host"
            machine = ["qemu-system-x86_64", "-M", "q35", "-cpu", cpu]
        else:
            machine = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72"]
        return machine + [
            "-accel", accel, "-smp", os.environ.get("TWIN_CPUS", "2"),
            "-m", os.environ.get("TWIN_MEMORY", "2048"),
            *boot,
            "-drive", f"file={self.image},if=virtio,format=raw,cache=writeback",
            "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-rng-pci",
            "-display", "none", "-serial", f"file:{self.console}",
            "-monitor", f"unix:{self.monitor},server,nowait",
        ]

    def efi(self) -> list[str]:
        code, variables = FIRMWARE[self.arch]
        own_variables = self.run / "efivars.fd"
        if not own_variables.exists():  # the board's NVRAM: kept across its boots
            shutil.copy(variables, own_variables)
        return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
                "-drive", f"if=pflash,format=raw,unit=1,file={own_variables}"]

    def start(self) -> Board:
        self.run.mkdir(parents=True, exist_ok=True)
        self.console.unlink(missing_ok=True)
        self.monitor.unlink(missing_ok=True)
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def log(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def wait_log(self, text: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(2)
        return False

    def poweroff(self, seconds: float = 300) -> bool:
        """The power button (ACPI): True when the guest shut down by itself in time."""
        if self.process is None or self.process.poll() is not None:
            return True
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.monitor))
            s.sendall(b"system_powerdown\n")
            time.sleep(1)
        try:
            self.process.wait(seconds)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(prog="boot.py", description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--arch", default="amd64", choices=sorted(FIRMWARE))
    parser.add_argument("--run", type=Path, default=Path("var/image/boot"))
    parser.add_argument("--pi", action="store_true", help="a Raspberry Pi image (arm64)")
    args = parser.parse_args()
    board = Board(args.image, args.run, "arm64" if args.pi else args.arch, args.pi).start()
    print(f"boot.py: booting {args.image}; console in {board.console}; Ctrl-C powers off",
          flush=True)
    try:
        board.process.wait()
    except KeyboardInterrupt:
        board.poweroff()
    return 0


if __name__ == "__main__":
    sys.exit(main())
