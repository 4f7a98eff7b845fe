#!/bin/sh
# Writes a shopper-edge image to a card or disk and checks it (run by `make flash`, as root):
#   tools/image/flash.sh [--force] [--check] IMAGE DEVICE
# IMAGE: shopper-edge-BOARD.img.zst (or .img) with its shopper-edge-BOARD.img.sha256 beside it.
# Refuses a device that is not a whole block device, is mounted (it or a partition), holds
# the running system (/ or swap), or is over 256 GB unless --force. Writes, then reads back
# what it wrote bypassing the page cache (O_DIRECT) and compares with the image's sha256.
# --check: only the refusals, nothing written.
set -eu
force=no
check=no
while [ $# -gt 0 ]; do
    case $1 in
        --force) force=yes; shift ;;
        --check) check=yes; shift ;;
        *) break ;;
    esac
done
fail() { echo "flash: $*" >&2; exit 2; }
[ $# -eq 2 ] || fail "usage: make flash IMAGE=shopper-edge-BOARD.img.zst DEVICE=/dev/sdX [FORCE=yes]"
image=$1
device=$2
limit=$((256 * 1000 * 1000 * 1000))  # bytes: bigger is a hard disk, not a card

[ -f "$image" ] || fail "IMAGE $image: no such file"
sums=${image%.zst}.sha256
[ -f "$sums" ] || fail "IMAGE $image: no $sums beside it (the raw image's sha256)"
[ -b "$device" ] || fail "DEVICE $device: not a block device"
name=$(basename "$(realpath "$device")")
[ -e "/sys/class/block/$name/partition" ] && \
    fail "DEVICE $device: is a partition; give the whole disk"

# The disk under / (through LVM, dm-crypt or md: its slaves), even when / shows no /dev path.
rootdev=$(awk '$5 == "/" {print $3}' /proc/self/mountinfo | tail -1)
system_disks() {  # whole disks under the block device $1 (maj:min)
    node=$(basename "$(readlink -f "/sys/dev/block/$1")")
    [ -n "$node" ] || return 0
    if [ -e "/sys/class/block/$node/partition" ]; then
        node=$(basename "$(dirname "$(readlink -f "/sys/class/block/$node")")")
    fi
    slaves=$(ls "/sys/class/block/$node/slaves" 2>/dev/null || true)
    if [ -n "$slaves" ]; then
        for s in $slaves; do system_disks "$(cat "/sys/class/block/$s/dev")"; done
    else
        echo "$node"
    fi
}
for disk in $(system_disks "$rootdev"); do
    [ "$disk" = "$name" ] && fail "DEVICE $device: holds the running system (/); refusing"
done

# The device or one of its partitions is mounted or a swap (the running system's disk is).
parts="$name $(ls /sys/class/block/"$name" | grep "^$name" || true)"
for part in $parts; do
    dev=/dev/$part
    majmin=$(cat "/sys/class/block/$part/dev")
    if awk -v d="$dev" '$1 == d' /proc/mounts /proc/swaps | grep -q . || \
            awk -v m="$majmin" '$3 == m' /proc/self/mountinfo | grep -q .; then
        fail "DEVICE $device: $dev is mounted or in use as swap; unmount it first"
    fi
done
size=$(blockdev --getsize64 "$device")
if [ "$size" -gt "$limit" ] && [ "$force" != yes ]; then
    fail "DEVICE $device: $((size / 1000000000)) GB is more than a card (256 GB);" \
        "if it really is the card, add FORCE=yes"
fi
expected=$(cut -d' ' -f1 "$sums")
case $image in
    *.zst) bytes=$(zstd -lv "$image" 2>/dev/null | awk '/^Decompressed Size/ {gsub(/[(),]/, ""); print $(NF-1)}') ;;
    *) bytes=$(stat -c %s "$image") ;;
esac
[ -n "$bytes" ] || fail "IMAGE $image: cannot read its size"
[ "$bytes" -le "$size" ] || fail "DEVICE $device: $size bytes, smaller than the image ($bytes)"
if [ "$check" = yes ]; then
    echo "flash: $device can take $image (--check: nothing written)"
    exit 0
fi

echo "flash: writing $image to $device ($bytes bytes)"
case $image in
    *.zst) zstd -dc "$image" ;;
    *) cat "$image" ;;
esac | dd of="$device" bs=4M iflag=fullblock oflag=direct conv=fsync status=none
blockdev --flushbufs "$device"
got=$(dd if="$device" bs=1M count=$(((bytes + 1048575) / 1048576)) iflag=direct status=none \
    | head -c "$bytes" | sha256sum | cut -d' ' -f1)
[ "$got" = "$expected" ] || fail "DEVICE $device: read back $got, the image is $expected: bad card?"
echo "flash: $device written and verified (sha256 $expected)"
