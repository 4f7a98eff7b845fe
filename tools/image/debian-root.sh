#!/bin/sh
# The one Debian 12 (bookworm) root recipe of both the device twin (tools/twin/build-image.sh)
# and the flashable image (tools/image/build-image.sh), from Debian packages only:
#   tools/image/debian-root.sh ARCH ROOT [mmdebstrap option...]
# ARCH is amd64 or arm64 (arm64 on an x86 host needs qemu-user-static and binfmt_misc, see
# tools/image/binfmt.sh). The caller adds its own packages (--include=) and hooks; the hooks
# run on the host with the new root as $1. Run as root.
set -eu
arch=$1
root=$2
shift 2
case $arch in
    amd64) kernel=linux-image-amd64 ;;
    arm64) kernel=linux-image-arm64 ;;
    *) echo "debian-root.sh: ARCH must be amd64 or arm64, not $arch" >&2; exit 2 ;;
esac
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What a Debian 12 / Raspberry Pi OS 12 camera box has, and what the installer needs on it
# (python3-venv for install.sh's venv, ffmpeg: it decodes the cameras' files and streams);
# systemd-networkd with DHCP on every wired interface.
packages=systemd,systemd-sysv,systemd-timesyncd,systemd-coredump,udev,dbus,kmod,$kernel
packages=$packages,initramfs-tools,openssh-server,python3.11,python3-venv
packages=$packages,iproute2,procps,less,ffmpeg

exec mmdebstrap --variant=apt --mode=root --architectures="$arch" --include="$packages" \
    --customize-hook='printf "[Match]\nName=e*\n[Network]\nDHCP=yes\n" > "$1/etc/systemd/network/20-wired.network"' \
    --customize-hook='chroot "$1" systemctl enable systemd-networkd systemd-timesyncd ssh' \
    "$@" bookworm "$root" "$mirror"
