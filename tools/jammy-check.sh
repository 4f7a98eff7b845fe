#!/usr/bin/env bash
# JetPack 6's userland minus the GPU (issue 17): an Ubuntu 22.04 (jammy, amd64) root with
# Python 3.10, ffmpeg 4.4 and GStreamer 1.20 (mmdebstrap, cached in var/jammy/root), the
# device's wheelhouse from `make stage DEVICE_PYTHON=3.10` installed as install.sh installs
# it, then `shopper-edge replay` of a CAVIAR clip with the GStreamer child and with the ffmpeg
# child (counts = the clip's truth), and head office's store and report on its windows.
#   tools/jammy-check.sh [CLIP]   (root, mmdebstrap; archive.ubuntu.com reachable)
# Not in `make test` (a few minutes; the root is built once). Prints each step's time.
set -euo pipefail
top=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
cache="$top/var/jammy"
root="$cache/root"
stage="$cache/stage"
clip=${1:-EnterExitCrossingPaths1front.mpg}
shared=$(cd "$top/../shared" && pwd)
venv=${VENV:-$top/.venv}
# Ubuntu's archive key, from Ubuntu's archive (Debian 12 does not package it), pinned here.
keyring_deb=ubuntu-keyring_2021.03.26_all.deb
keyring_sha256=0d0e7ed6b112f5d03eabf3c7eb01ebdacf9c57714b279e90495cfc58c8c4520f
mirror=http://archive.ubuntu.com/ubuntu
# jammy's glibc is 2.35: the wheels' tags a JetPack 6 (aarch64) or this root (x86_64) takes.
platform="manylinux2014_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64"

step() { echo "jammy-check: $1 in $((SECONDS - started)) s" >&2; started=$SECONDS; }
cleanup() {
  for m in work/shared proc; do umount -l "$root/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
started=$SECONDS

if [ ! -e "$root/.complete" ]; then
  rm -rf "$root" "$cache/keyring"
  mkdir -p "$cache/keyring"
  [ -e "$cache/$keyring_deb" ] || curl -sSf -o "$cache/$keyring_deb" "$mirror/pool/main/u/ubuntu-keyring/$keyring_deb"
  echo "$keyring_sha256  $cache/$keyring_deb" | sha256sum --check --quiet
  dpkg-deb -x "$cache/$keyring_deb" "$cache/keyring"
  mmdebstrap --variant=apt --mode=root --quiet --architectures=amd64 \
    --keyring="$cache/keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg" \
    --include=python3.10,python3.10-venv,ffmpeg,gstreamer1.0-tools,gstreamer1.0-plugins-base,gstreamer1.0-plugins-good,gstreamer1.0-plugins-bad,gstreamer1.0-libav \
    jammy "$root" "deb $mirror jammy main universe" "deb $mirror jammy-updates main universe" \
    "deb $mirror jammy-security main universe"
  touch "$root/.complete"
  step "Ubuntu 22.04 root (mmdebstrap)"
fi
in_root() { chroot "$root" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
echo "jammy-check: $(in_root python3 --version), $(in_root ffmpeg -version | head -1 | cut -d' ' -f1-3), $(in_root gst-launch-1.0 --version | sed -n 2p)" >&2

# The device's tree for Python 3.10 (this machine's venv builds it), and head office's
# extras for the same Python, as wheels: nothing inside the root reaches a package index.
make -s -C "$top" -o "$venv/bin/shopper-edge" VENV="$venv" stage DESTDIR="$stage" \
  DEVICE_PYTHON=3.10 PLATFORM="$platform" MODELS=yolox_nano >/dev/null
"$venv/bin/pip" download --quiet --only-binary=:all: --implementation cp --python-version 3.10 \
  $(printf -- '--platform %s ' $platform) -d "$cache/hq-wheels" \
  "$(ls "$stage"/opt/shopper-edge/wheels/shopper_edge-*.whl)[hq]" \
  2> >(grep -v "is ignored: it is neither a file" >&2)  # a site pip.conf's find-links
step "make stage DEVICE_PYTHON=3.10"

rm -rf "$root/opt/shopper-edge" "$root/var/lib/shopper-edge" "$root/work"
cp -a "$stage/opt/shopper-edge" "$root/opt/shopper-edge"
mkdir -p "$root/var/lib/shopper-edge" "$root/work/shared" "$root/work/check"
cp -a "$stage/var/lib/shopper-edge/models" "$root/var/lib/shopper-edge/models"
cp -a "$cache/hq-wheels" "$root/work/hq-wheels"
# install.sh's two pip commands (the rest of it is systemd's, which a chroot does not run).
in_root sh -euc 'python3 -m venv /opt/shopper-edge/venv
  /opt/shopper-edge/venv/bin/python -m pip install --quiet --no-index \
    --find-links /opt/shopper-edge/wheels /opt/shopper-edge/wheels/*.whl
  /opt/shopper-edge/venv/bin/python -m pip install --quiet --no-index --no-deps \
    --force-reinstall /opt/shopper-edge/wheels/shopper_edge-*.whl'
step "wheelhouse installed with Python 3.10"

mount --bind "$shared" "$root/work/shared" && mount -o remount,bind,ro "$root/work/shared"
mount -t proc proc "$root/proc"
truth=$(in_root python3 -c 'import json, sys
t = json.load(open("/work/shared/data/caviar_front/truth.json"))[sys.argv[1]]
print(json.dumps({"in": t[0], "out": t[1]}))' "$clip")
failed=0
for decoder in gstreamer software; do
  sed -e "s#^  dir: .*#  dir: /var/lib/shopper-edge/models#" \
      -e "s#^\(    fps: .*\)#\1\n    decoder: $decoder#" \
      "$top/examples/caviar-front.yaml" > "$root/work/check/$decoder.yaml"
  in_root /opt/shopper-edge/venv/bin/shopper-edge replay "/work/shared/data/caviar_front/clips/$clip" \
    --config "/work/check/$decoder.yaml" --windows "/work/check/$decoder.jsonl" \
    > "$cache/replay-$decoder.json"
  cp "$cache/replay-$decoder.json" "$root/work/check/replay-$decoder.json"
  counts=$(in_root python3 -c 'import json, sys
print(json.dumps(json.load(open(sys.argv[1]))["lines"]["shop_door"]))' \
    "/work/check/replay-$decoder.json")
  fps=$(in_root python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["fps"])' \
    "/work/check/replay-$decoder.json")
  if [ "$counts" = "$truth" ]; then verdict=OK; else verdict="WRONG (truth $truth)"; failed=1; fi
  step "replay $clip, decoder $decoder: $counts $verdict, $fps fps"
done

# Head office on the same Python: its extras, the replay's windows stored, the report.
in_root sh -euc '/opt/shopper-edge/venv/bin/python -m pip install --quiet --no-index \
    --find-links /work/hq-wheels "$(ls /opt/shopper-edge/wheels/shopper_edge-*.whl)[hq]"
  rm -f /work/check/hq.db
  /opt/shopper-edge/venv/bin/python -c "import json, sys
from appliance.hq.store import WindowStore
store = WindowStore(sys.argv[1])
for line in open(sys.argv[2]):
    store.add_window(json.loads(line), \"2026-01-01T00:00:00Z\")
store.close()" /work/check/hq.db /work/check/gstreamer.jsonl
  /opt/shopper-edge/venv/bin/shopper-hq report --db /work/check/hq.db --json' \
  > "$cache/hq-report.json"
hq=$(in_root python3 -c 'import json, sys
camera = json.load(open(sys.argv[1]))["cameras"][0]
print(json.dumps(camera["lines"]))' /dev/stdin < "$cache/hq-report.json" 2>&1 || true)
step "shopper-hq store + report on Python 3.10: $hq"
exit $failed
