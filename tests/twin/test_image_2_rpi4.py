"""The Raspberry Pi 4 image (make image BOARD=rpi4), checked by reading it (no Pi here): its
MBR partition table, the Pi's boot firmware, kernel, device tree, config.txt and cmdline.txt
on the FAT partition (Debian's raspi-firmware and linux-image-arm64), the installer's template,
and an appliance venv built for arm64 on the root filesystem."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

BUILT = REPO / "var" / "image" / "rpi4" / "shopper-edge-rpi4.img"
FAT = "@@1M"
ROOT_OFFSET = 257 * 1024 * 1024


@pytest.fixture(scope="module")
def image() -> Path:
    if not BUILT.exists():
        pytest.fail(f"no image: run `make image BOARD=rpi4` first ({BUILT} missing)")
    return BUILT


def fat(image: Path, tool: str, *args: str) -> str:
    return subprocess.run([tool, "-i", f"{image}{FAT}", *args], capture_output=True, text=True,
                          env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"},
                          check=True).stdout


def debugfs(image: Path, request: str) -> str:
    return subprocess.run(["debugfs", "-R", request, f"{image}?offset={ROOT_OFFSET}"],
                          capture_output=True, text=True, timeout=120).stdout


def test_partition_table_is_mbr_with_a_bootable_fat_then_the_root(image):
    table = json.loads(subprocess.run(["sfdisk", "-J", str(image)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]
    assert table["label"] == "dos" and table["id"] == "0x5e0e0001"
    boot, root = table["partitions"]
    assert (boot["start"], boot["size"], boot["type"], boot.get("bootable")) == \
        (2048, 256 * 2048, "c", True)
    assert (root["start"], root["type"]) == (257 * 2048, "83")


def test_fat_has_the_pi4_firmware_kernel_device_tree_and_boot_config(image):
    files = set(fat(image, "mdir", "-/", "-b", "::/").split())
    for name in ("start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb", "config.txt",
                 "cmdline.txt"):
        assert f"::/{name}" in files, name
    config = fat(image, "mtype", "::/config.txt")
    assert "arm_64bit=1" in config
    kernel = next(line.split("=", 1)[1] for line in config.splitlines()
                  if line.startswith("kernel="))
    initrd = next(line.split()[1] for line in config.splitlines()
                  if line.startswith("initramfs "))
    assert f"::/{kernel}" in files and f"::/{initrd}" in files
    cmdline = fat(image, "mtype", "::/cmdline.txt")
    assert "root=PARTUUID=5e0e0001-02" in cmdline
    assert "::/shopper-edge/device.yaml" in files  # the installer's template


def test_root_has_the_appliance_for_arm64_and_mounts_the_fat(image, tmp_path):
    assert "PARTUUID=5e0e0001-01 /boot/firmware vfat" in debugfs(image, "cat /etc/fstab")
    site = "/opt/shopper-edge/venv/lib/python3.11/site-packages/onnxruntime/capi"
    library = next(name for name in debugfs(image, f"ls {site}").split()
                   if name.startswith("onnxruntime_pybind11_state") and name.endswith(".so"))
    dumped = tmp_path / "lib.so"
    debugfs(image, f"dump {site}/{library} {dumped}")
    header = dumped.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 0xB7  # aarch64
    assert "shopper-edge-firstboot.service" in debugfs(
        image, "ls /etc/systemd/system/multi-user.target.wants")
    assert debugfs(image, "cat /etc/machine-id") == ""
    assert "ssh_host_" not in debugfs(image, "ls /etc/ssh")


def test_the_manifest_has_the_pis_boot_packages_only(image):
    """The arm64 boards share one OS root with both boards' boot packages: the Pi's keeps
    raspi-firmware and drops systemd-boot-efi; the initrd was made once, for the kernel."""
    packages = {line.split()[0] for line in
                image.with_suffix(".manifest").read_text().splitlines()
                if len(line.split()) == 3 and "./" not in line}  # name version arch
    assert {"raspi-firmware", "linux-image-arm64", "initramfs-tools"} <= packages
    assert "systemd-boot-efi" not in packages and "systemd-boot" not in packages
    assert "update-initramfs.real" not in debugfs(image, "ls /usr/sbin")  # diversion undone
