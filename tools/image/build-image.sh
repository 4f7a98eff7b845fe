#!/bin/sh
# Builds a flashable disk image of a shopper-edge device (run by `make image`, as root):
#   tools/image/build-image.sh BOARD STAGE OUTDIR
# BOARD: generic-amd64 or generic-arm64 (EFI: systemd-boot on the FAT partition) or rpi4
# (Debian's raspi-firmware: the Pi's boot firmware, config.txt and cmdline.txt on the FAT
# partition). STAGE is a `make stage` tree for the board's architecture; its device.yaml
# becomes the template the installer edits on the card (shopper-edge/device.yaml).
# OUTDIR gets shopper-edge-BOARD.img.zst, .img.sha256 (the raw image), .img.zst.sha256, .bmap
# and .manifest (every package and file hash, also inside the image at
# /usr/share/shopper-edge/image-manifest.txt). Same inputs, same manifest: SOURCE_DATE_EPOCH
# (default: the last commit's time) fixes the timestamps, the UUIDs are constants.
set -eu
board=$1
stage=$(realpath "$2")
out=$3
here=$(dirname "$(realpath "$0")")
case $board in
    generic-amd64) arch=amd64; console=ttyS0; efi=BOOTX64.EFI ;;
    generic-arm64) arch=arm64; console=ttyAMA0; efi=BOOTAA64.EFI ;;
    rpi4) arch=arm64 ;;
    *) echo "build-image.sh: BOARD must be generic-amd64, generic-arm64 or rpi4, not $board" >&2
       exit 2 ;;
esac
[ -f "$stage/opt/shopper-edge/install.sh" ] || {
    echo "build-image.sh: $stage is not a make stage tree (no opt/shopper-edge/install.sh)" >&2
    exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "build-image.sh: run as root (mmdebstrap --mode=root)" >&2; exit 2; }
for tool in mmdebstrap mkfs.fat mcopy mke2fs sfdisk bmaptool zstd; do
    command -v "$tool" >/dev/null || {
        echo "build-image.sh: $tool is missing: sudo make image-deps" >&2; exit 2; }
done
started=$(date +%s)
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct)}"
# Constants, so that two builds give the same partition table and filesystems.
disk_id=5e0e0001
root_uuid=5e0e0001-0000-4000-8000-000000000002
fat_id=5E0E0001
boot_mb=256
name=shopper-edge-$board
work=$out.tmp
root=$work/root
# A killed mmdebstrap can leave mounts in its root (/proc, /sys, the host's /dev/shm bound in,
# rpi4's /boot/firmware below): never delete through them.
if [ -d "$work" ] && findmnt -rn -o TARGET | grep -q "^$(realpath "$work")/"; then
    echo "build-image.sh: a killed build left mounts under $work: unmount them first" \
        "(findmnt | grep $work)" >&2
    exit 2
fi
rm -rf "$work"
mkdir -p "$work"

# The appliance on the OS, as one shell step with the root as $1 (an mmdebstrap hook, or run
# on a copy of the arm64 OS below): installed by its own install.sh from the staged wheelhouse
# (the venv is built for the board's architecture; SYSTEMD_OFFLINE: systemctl does not see a
# chroot as one), the first-boot service enabled; it enables the cameras once a config is on
# the card (and starts shopper-edge-config-error.service when that config is invalid).
appliance="set -e
echo shopper-edge > \"\$1/etc/hostname\"
printf '127.0.1.1\tshopper-edge\n' >> \"\$1/etc/hosts\"
printf 'PARTUUID=$disk_id-02 / ext4 defaults,errors=remount-ro 0 1\nPARTUUID=$disk_id-01 /boot/firmware vfat defaults,umask=0077 0 2\n' > \"\$1/etc/fstab\"
tar -C '$stage' -cf - . | tar -C \"\$1\" -xf - --no-same-owner --no-overwrite-dir
chroot \"\$1\" env SYSTEMD_OFFLINE=1 /opt/shopper-edge/install.sh
install -m 0644 '$here/shopper-edge-firstboot.service' '$here/shopper-edge-config-error.service' \"\$1/usr/lib/systemd/system/\"
chroot \"\$1\" systemctl enable shopper-edge-firstboot.service"
os_packages=cloud-guest-utils,dosfstools,e2fsprogs

if [ "$arch" = amd64 ]; then
    "$here/debian-root.sh" amd64 "$root" --include="systemd-boot,$os_packages" \
        --customize-hook="$appliance"
else
    # Both arm64 boards start from one OS root, the slow part (every maintainer script and
    # mkinitramfs run through qemu-user), built once and kept in $os (its inputs' hash in
    # $os.key), with both boards' boot packages: Debian's raspi-firmware (non-free-firmware
    # component) and systemd-boot-efi (the EFI binaries only); each board's copy purges the
    # other's and gets the appliance.
    # update-initramfs is a no-op while the packages install (the kernel's hook and
    # initramfs-tools' trigger would each run mkinitramfs, over 20 minutes apiece here) and
    # runs once at the end. raspi-firmware copies the firmware, kernel, initrd and device trees
    # to /boot/firmware and writes config.txt and cmdline.txt (root from
    # /etc/default/raspi-firmware's ROOTPART) whenever an initrd is made, and refuses when
    # /boot/firmware is not a mount point: a bind mount of the folder onto itself meanwhile.
    divert='chroot "$1" dpkg-divert --quiet --local --rename --divert /usr/sbin/update-initramfs.real --add /usr/sbin/update-initramfs && printf "#!/bin/sh\nexit 0\n" > "$1/usr/sbin/update-initramfs" && chmod 0755 "$1/usr/sbin/update-initramfs"'
    undivert='rm "$1/usr/sbin/update-initramfs" && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs'
    set -- --components=main,non-free-firmware \
        --include="raspi-firmware,systemd-boot-efi,$os_packages" \
        --essential-hook="$divert" \
        --essential-hook='mkdir -p "$1/boot/firmware" && mount --bind "$1/boot/firmware" "$1/boot/firmware"' \
        --customize-hook="sed -i 's|^#\\?ROOTPART=.*|ROOTPART=PARTUUID=$disk_id-02|' \"\$1/etc/default/raspi-firmware\"" \
        --customize-hook="$undivert" \
        --customize-hook='for k in "$1"/boot/vmlinuz-*; do chroot "$1" update-initramfs -c -k "${k#*/boot/vmlinuz-}"; done' \
        --customize-hook='umount "$1/boot/firmware"'
    os=$(dirname "$out")/os-arm64
    key=$( { cat "$here/debian-root.sh"; printf '%s\n' "$@" "$SOURCE_DATE_EPOCH" "${DEBIAN_MIRROR:-}"
           } | sha256sum | cut -d' ' -f1)
    if [ ! -d "$os" ] || [ "$(cat "$os.key" 2>/dev/null)" != "$key" ]; then
        if [ -d "$os.tmp" ] && findmnt -rn -o TARGET | grep -q "^$(realpath "$os.tmp")/"; then
            echo "build-image.sh: a killed build left mounts under $os.tmp: unmount them first" >&2
            exit 2
        fi
        rm -rf "$os.key" "$os.tmp" "$os"
        "$here/debian-root.sh" arm64 "$os.tmp" "$@"
        mv "$os.tmp" "$os"
        echo "$key" > "$os.key"
    fi
    cp -a "$os" "$root"
    # Purging runs initramfs-tools' trigger: diverted again, so the initrd stays as made.
    if [ "$board" = rpi4 ]; then
        drop='chroot "$1" dpkg --purge systemd-boot-efi'
    else
        drop='chroot "$1" dpkg --purge raspi-firmware && find "$1/boot/firmware" -mindepth 1 -delete && sed -i "s/ non-free-firmware//" "$1/etc/apt/sources.list"'
    fi
    # The host's /dev and a /proc for the packages' scripts and pip, as mmdebstrap gives them.
    mount --bind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    status=0
    sh -c "$divert && $drop && $undivert" sh "$root" && sh -c "$appliance" sh "$root" || status=$?
    umount "$root/proc" "$root/dev"
    [ "$status" -eq 0 ] || exit "$status"
fi

# No camera until the installer's config arrives: the staged config is the card's template.
mkdir -p "$root/boot/firmware/shopper-edge/secrets"
mv "$root/etc/shopper-edge/device.yaml" "$root/boot/firmware/shopper-edge/device.yaml"
rm -f "$root/etc/shopper-edge/cameras" "$root"/etc/systemd/system/shopper-edge.target.wants/shopper-edge@*.service
# Nothing of this build or this machine: every box makes its own host keys and machine id.
rm -f "$root"/etc/ssh/ssh_host_* "$root/var/lib/dbus/machine-id" "$root/var/cache/ldconfig/aux-cache"
: > "$root/etc/machine-id"
find "$root/var/log" "$root/var/cache/apt" "$root/var/lib/apt/lists" -type f -delete
rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root/root/.bash_history"

if [ "$board" != rpi4 ]; then  # EFI: systemd-boot loads the kernel from the FAT partition
    efidir=$root/boot/firmware/EFI/BOOT
    mkdir -p "$efidir" "$root/boot/firmware/loader/entries"
    cp "$root"/usr/lib/systemd/boot/efi/systemd-boot*.efi "$efidir/$efi"
    cp "$root"/boot/vmlinuz-* "$root/boot/firmware/vmlinuz"
    cp "$root"/boot/initrd.img-* "$root/boot/firmware/initrd.img"
    printf 'default shopper-edge.conf\ntimeout 0\n' > "$root/boot/firmware/loader/loader.conf"
    printf 'title shopper-edge\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=PARTUUID=%s-02 rootwait rw console=tty1 console=%s\n' \
        "$disk_id" "$console" > "$root/boot/firmware/loader/entries/shopper-edge.conf"
fi

# The manifest: every package, then every file's hash (the FAT partition's under
# boot/firmware), then every symlink; timestamps clamped to SOURCE_DATE_EPOCH.
manifest=$root/usr/share/shopper-edge/image-manifest.txt
mkdir -p "${manifest%/*}"
{
    echo "# shopper-edge image $board, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
    dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package} ${Version} ${Architecture}\n'
    (cd "$root" && find . -type f ! -path ./usr/share/shopper-edge/image-manifest.txt -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum)
    (cd "$root" && find . -type l -printf '%p -> %l\n' | LC_ALL=C sort)
} > "$work/$name.manifest"
cp "$work/$name.manifest" "$manifest"
find "$root" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0 touch -h -d "@$SOURCE_DATE_EPOCH"

# The FAT partition (filled with mtools) and the ext4 root (mke2fs -d): no loop device, no
# mount. The root gets 30% and 512 MiB spare; the first boot grows it to the card.
mv "$root/boot/firmware" "$work/fat"
mkdir -m 0755 "$root/boot/firmware"
touch -d "@$SOURCE_DATE_EPOCH" "$root/boot/firmware" "$root/boot"
mkfs.fat -F 32 -n BOOT -i "$fat_id" --invariant -C "$work/fat.img" $((boot_mb * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$work/fat.img" "$work"/fat/* ::/
root_mb=$(( $(du -sm "$root" | cut -f1) * 13 / 10 + 512 ))
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mke2fs -q -t ext4 -L root -U "$root_uuid" \
    -E "hash_seed=$root_uuid,root_owner=0:0" -d "$root" "$work/root.img" "${root_mb}M"
img=$work/$name.img
truncate -s $(( (1 + boot_mb + root_mb) * 1024 * 1024 )) "$img"
# MBR (a Pi's firmware reads only MBR): 1 the FAT (EFI system partition type on the EFI boards),
# 2 the root; PARTUUIDs are the disk id and the number.
fat_type=ef
[ "$board" = rpi4 ] && fat_type=c
printf 'label: dos\nlabel-id: 0x%s\nunit: sectors\n\nstart=2048, size=%s, type=%s, bootable\nstart=%s, type=83\n' \
    "$disk_id" $((boot_mb * 2048)) "$fat_type" $(((1 + boot_mb) * 2048)) | sfdisk -q "$img"
dd if="$work/fat.img" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$img" bs=1M seek=$((1 + boot_mb)) conv=notrunc,sparse status=none
rm -rf "$root" "$work/fat" "$work/fat.img" "$work/root.img"

# For distribution: compressed, with the raw image's sha256 and a block map (bmaptool copy
# writes and checks only the used blocks; tools/image/flash.sh checks the sha256).
(cd "$work" && sha256sum "$name.img" > "$name.img.sha256")
bmaptool -q create -o "$work/$name.bmap" "$img"
zstd -q -T0 -10 -f "$img" -o "$img.zst"
(cd "$work" && sha256sum "$name.img.zst" > "$name.img.zst.sha256")
rm -rf "$out"
mv "$work" "$out"
seconds=$(( $(date +%s) - started ))
echo "build-image.sh: $out/$name.img.zst: $(du -m "$out/$name.img.zst" | cut -f1) MiB" \
    "($(( $(stat -c %s "$out/$name.img") / 1048576 )) MiB raw, root ${root_mb} MiB)," \
    "built in $seconds s" | tee "$out/build.txt"
