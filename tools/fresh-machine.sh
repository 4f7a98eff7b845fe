#!/usr/bin/env bash
# The README's commands as a new user meets them: a bare Debian 12 root (mmdebstrap with only
# python3, venv, pip, make, git and ca-certificates), this checkout's committed tree and the
# shared mirror inside it, entered with chroot as root. Prints each step's time.
#   tools/fresh-machine.sh [demo|test ...]   (default: demo)   needs root and mmdebstrap
set -euo pipefail
top=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
root="$top/var/fresh/root"
targets=("${@:-demo}")
cleanup() {
  for m in work/shared dev/pts dev proc sys; do umount -l "$root/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
rm -rf "$top/var/fresh"
mkdir -p "$top/var/fresh"
started=$SECONDS
mmdebstrap --variant=apt --mode=root --quiet \
  --include=python3,python3-venv,python3-pip,make,git,ca-certificates bookworm "$root"
echo "fresh-machine: bare root in $((SECONDS - started)) s" >&2
mkdir -p "$root/work/main" "$root/work/shared"
git -C "$top" archive HEAD | tar -x -C "$root/work/main"
mount --bind "$top/../shared" "$root/work/shared" && mount -o remount,bind,ro "$root/work/shared"
mount -t proc proc "$root/proc"; mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"; mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Where this machine reaches the registries through a proxy with its own CA, the bare root
# must trust it too (a site's CA, not a step of the product's).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
for target in "${targets[@]}"; do
  started=$SECONDS
  chroot "$root" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    make -C /work/main "$target"
  echo "fresh-machine: make $target in $((SECONDS - started)) s" >&2
done
