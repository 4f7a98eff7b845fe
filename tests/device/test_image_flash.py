"""`make flash` (tools/image/flash.sh) on loop devices: it writes and verifies a small image,
and refuses a mounted device, the running system's disk, a partition and a device over
256 GB unless forced. Needs root and loop devices (losetup)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

FLASH = REPO / "tools" / "image" / "flash.sh"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("losetup") is None or not Path("/dev/loop-control").exists(),
    reason="flash tests need root and loop devices")


@pytest.fixture
def image(tmp_path) -> Path:
    """A small partitioned image, compressed as make image ships it, with its sha256."""
    raw = tmp_path / "shopper-edge-test.img"
    raw.write_bytes(os.urandom(3 * 1024 * 1024))
    subprocess.run(["sfdisk", "-q", str(raw)], input="label: dos\nstart=2048, type=c\n",
                   text=True, check=True)
    (tmp_path / "shopper-edge-test.img.sha256").write_text(
        f"{hashlib.sha256(raw.read_bytes()).hexdigest()}  {raw.name}\n")
    subprocess.run(["zstd", "-q", str(raw), "-o", f"{raw}.zst"], check=True)
    return Path(f"{raw}.zst")


@pytest.fixture
def loop(tmp_path):
    """A loop device over a sparse file of the given size; detached afterwards."""
    devices = []

    def attach(size: int) -> str:
        backing = tmp_path / f"card{len(devices)}.raw"
        with open(backing, "wb") as f:
            f.truncate(size)
        device = subprocess.run(["losetup", "-f", "--show", "-P", str(backing)],
                                capture_output=True, text=True, check=True).stdout.strip()
        devices.append(device)
        return device

    yield attach
    for device in devices:
        subprocess.run(["losetup", "-d", device], check=False)


def flash(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(FLASH), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def content(device: str, size: int) -> bytes:
    with open(device, "rb") as f:
        return f.read(size)


def test_writes_the_image_and_verifies_it_by_reading_back(image, loop):
    device = loop(64 * 1024 * 1024)
    result = flash(image, device)
    assert result.returncode == 0, result.stderr
    raw = image.with_suffix("").read_bytes()
    assert content(device, len(raw)) == raw
    assert "verified" in result.stdout


def test_make_flash_runs_it(image, loop):
    device = loop(16 * 1024 * 1024)
    result = subprocess.run(["make", "--no-print-directory", "flash", f"IMAGE={image}",
                             f"DEVICE={device}"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    raw = image.with_suffix("").read_bytes()
    assert content(device, len(raw)) == raw


def test_a_corrupt_image_fails_the_read_back(image, loop, tmp_path):
    sums = image.with_suffix(".sha256")
    sums.write_text("0" * 64 + "  shopper-edge-test.img\n")
    result = flash(image, loop(16 * 1024 * 1024))
    assert result.returncode == 2
    assert "read back" in result.stderr


def test_refuses_a_mounted_device_and_writes_nothing(image, loop, tmp_path):
    device = loop(16 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", device], check=True)
    before = content(device, 4 * 1024 * 1024)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    subprocess.run(["mount", device, str(mountpoint)], check=True)
    try:
        result = flash(image, device)
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)
    assert result.returncode == 2
    assert result.stderr.strip() == \
        f"flash: DEVICE {device}: {device} is mounted or in use as swap; unmount it first"
    # Mounting changes the ext4 superblock (at 1024); the image would overwrite the start.
    assert content(device, 1024) == before[:1024]
    assert before[:1024] != image.with_suffix("").read_bytes()[:1024]


def test_refuses_the_running_systems_disk(image):
    root = os.stat("/").st_dev
    disk = Path(f"/sys/dev/block/{os.major(root)}:{os.minor(root)}")
    if not disk.exists():
        pytest.skip("/ is not on a block device here")
    node = disk.resolve()
    if (node / "partition").exists():
        node = node.parent
    # --check: even if the refusal were broken, nothing is written.
    result = flash("--check", image, f"/dev/{node.name}")
    assert result.returncode == 2
    assert "holds the running system" in result.stderr or "is mounted" in result.stderr


def test_refuses_a_partition(image, loop):
    device = loop(16 * 1024 * 1024)
    subprocess.run(["sfdisk", "-q", device], input="label: dos\nstart=2048, type=83\n",
                   text=True, check=True)
    subprocess.run(["partx", "-u", device], check=False)
    if not Path(f"{device}p1").exists():
        pytest.skip("no partition nodes for loop devices here")
    result = flash(image, f"{device}p1")
    assert result.returncode == 2
    assert "is a partition" in result.stderr


def test_refuses_a_device_over_256_gb_unless_forced(image, loop):
    device = loop(300 * 1000 ** 3)  # sparse
    result = flash(image, device)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("more than a card (256 GB); "
                                          "if it really is the card, add FORCE=yes")
    assert content(device, 4096) == bytes(4096)
    forced = flash("--force", image, device)
    assert forced.returncode == 0, forced.stderr
    raw = image.with_suffix("").read_bytes()
    assert content(device, len(raw)) == raw


def test_bad_arguments_are_one_line_and_status_2(image, tmp_path):
    for args, message in (
            ((tmp_path / "none.img.zst", "/dev/null"), "no such file"),
            ((image, tmp_path), "not a block device"),
            ((image,), "usage")):
        result = flash(*args)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert message in result.stderr
