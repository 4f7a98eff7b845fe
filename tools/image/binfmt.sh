#!/bin/sh
# Makes sure this host runs arm64 programs through qemu-user (binfmt_misc), as mmdebstrap
# needs for an arm64 root on an x86 host: mounts binfmt_misc and registers qemu-aarch64 from
# Debian's qemu-user-static (/usr/lib/binfmt.d/qemu-aarch64.conf) when missing.
set -eu
[ "$(uname -m)" = aarch64 ] && exit 0
entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
[ -e "$entry" ] && grep -qx enabled "$entry" && exit 0
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
if [ "$(id -u)" -ne 0 ] || [ ! -f "$conf" ]; then
    echo "binfmt.sh: arm64 emulation is not registered: as root run" \
        "apt-get install qemu-user-static && tools/image/binfmt.sh" >&2
    exit 2
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
grep -v '^#' "$conf" > /proc/sys/fs/binfmt_misc/register
echo "binfmt.sh: registered qemu-aarch64 ($conf)"
