#!/bin/sh
# Builds the device twin's disk image from Debian packages only (mmdebstrap, no loop mounts):
#   tools/twin/build-image.sh ARCH OUTDIR [WHEELS]   (ARCH: amd64 or arm64; run as root)
# OUTDIR gets disk.qcow2 (ext4 root, Debian 12), vmlinuz, initrd.img and the ssh key made for
# this image (id_ed25519). The caller (tools/twin/twin.py) keys OUTDIR by a hash of this file
# and of tools/image/debian-root.sh (and of WHEELS).
# WHEELS (the twin's CI job, make twin-ci): a make stage wheelhouse installed at build time,
# natively, into the venv where install.sh puts it, with install.sh's own pip command; a
# later `make deploy` of the same release then finds every dependency installed, instead of
# pip installing them under emulation (most of a first deploy's 15 minutes).
set -eu
arch=$1
out=$2
wheels=${3:-}
work=$out.tmp
rm -rf "$work"
mkdir -p "$work"
ssh-keygen -q -t ed25519 -N '' -C "shopper-edge twin" -f "$work/id_ed25519"
set --
if [ -n "$wheels" ]; then
    set -- --customize-hook="mkdir -p \"\$1/opt/shopper-edge/wheels\" && cp '$(realpath "$wheels")'/*.whl \"\$1/opt/shopper-edge/wheels/\"" \
        --customize-hook='chroot "$1" sh -c "umask 022 && python3 -m venv /opt/shopper-edge/venv && /opt/shopper-edge/venv/bin/python -m pip install --quiet --no-index --find-links /opt/shopper-edge/wheels /opt/shopper-edge/wheels/*.whl"'
fi

# The Debian root shared with the flashable image (tools/image/debian-root.sh), plus what
# deploying over ssh needs (sudo for the deploying user, rsync). The hooks run on the host
# with the new root as $1.
sh "$(dirname "$0")/../image/debian-root.sh" "$arch" "$work/root" --include=sudo,rsync \
    --customize-hook='echo twin > "$1/etc/hostname"; echo "127.0.1.1 twin" >> "$1/etc/hosts"' \
    --customize-hook='echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" > "$1/etc/fstab"' \
    --customize-hook='mkdir -p "$1/etc/systemd/timesyncd.conf.d"; printf "[Time]\nNTP=10.0.2.2\n" > "$1/etc/systemd/timesyncd.conf.d/twin.conf"' \
    --customize-hook='chroot "$1" useradd -m -s /bin/bash -G sudo twin' \
    --customize-hook='echo "twin ALL=(ALL) NOPASSWD: ALL" > "$1/etc/sudoers.d/twin"; chmod 0440 "$1/etc/sudoers.d/twin"' \
    --customize-hook="install -d -m 0700 -o 1000 -g 1000 \"\$1/home/twin/.ssh\" && install -m 0600 -o 1000 -g 1000 $work/id_ed25519.pub \"\$1/home/twin/.ssh/authorized_keys\"" \
    --customize-hook='cp "$1"/boot/vmlinuz-* '"$work"'/vmlinuz; cp "$1"/boot/initrd.img-* '"$work"'/initrd.img' \
    "$@"

# An ext4 image filled from the directory (mke2fs -d), then qcow2 so that each boot can run
# on a throwaway overlay and a power cut leaves the cached image untouched.
mke2fs -q -t ext4 -L twin -d "$work/root" "$work/disk.raw" 4G
qemu-img convert -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
rm -rf "$work/root" "$work/disk.raw"
rm -rf "$out"
mv "$work" "$out"
