#!/usr/bin/env bash
# JetPack 6's userland minus the GPU (issue 17): an Ubuntu 22.04 (jammy, amd64) root with
# Python 3.10, ffmpeg 4.4 and GStreamer 1.20 (mmdebstrap, cached in var/jammy/root), the
# device's wheelhouse from `make stage DEVICE_PYTHON=3.10` installed as install.sh installs
# it, then `shopper-edge replay` of a CAVIAR clip and `shopper-edge run` on a live RTSP
# stream of it, each with the GStreamer child and with the ffmpeg child (counts = the clip's
# truth), and head office's store and report on the windows.
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
server=
app=
cleanup() {
  for pid in $app $server; do kill "$pid" 2>/dev/null || true; done
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
  DEVICE_PYTHON=3.10 PLATFORM="$platform" MODELS=yolox_nano >/dev/null \
  2> >(grep -v "is ignored: it is neither a file" >&2)
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
# install.sh's pip commands (the rest of it is systemd's, which a chroot does not run).
in_root sh -euc 'python3 -m venv /opt/shopper-edge/venv
  /opt/shopper-edge/venv/bin/python -m pip install --quiet --no-index \
    --find-links /opt/shopper-edge/wheels $(ls /opt/shopper-edge/wheels/*.whl | grep -v /shopper_edge-)
  /opt/shopper-edge/venv/bin/python -m pip install --quiet --no-index --no-deps \
    --force-reinstall /opt/shopper-edge/wheels/shopper_edge-*.whl'
step "wheelhouse installed with Python 3.10"

mount --bind "$shared" "$root/work/shared" && mount -o remount,bind,ro "$root/work/shared"
mount -t proc proc "$root/proc"
cp "$top/examples/caviar-front.yaml" "$root/work/check/example.yaml"
py=/opt/shopper-edge/venv/bin/python
# config NAME SOURCE DECODER: the example with this source and decoder, the staged models.
config() {
  in_root $py -c 'import sys, yaml
raw = yaml.safe_load(open("/work/check/example.yaml"))
raw["models"]["dir"] = "/var/lib/shopper-edge/models"
raw["window_seconds"] = 4
raw["cameras"][0].update(source=sys.argv[2], decoder=sys.argv[3])
yaml.safe_dump(raw, open(f"/work/check/{sys.argv[1]}.yaml", "w"))' "$@"
}
# door WINDOWS.jsonl: the door's counts summed over a run's windows
door() {
  in_root $py -c 'import json, sys
docs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(json.dumps({k: sum(d["lines"]["shop_door"][k] or 0 for d in docs) for k in ("in", "out")}))' "$1"
}
truth=$(in_root python3 -c 'import json, sys
t = json.load(open("/work/shared/data/caviar_front/truth.json"))[sys.argv[1]]
print(json.dumps({"in": t[0], "out": t[1]}))' "$clip")
failed=0
verdict() {
  if [ "$1" = "$truth" ]; then echo "$1 OK"; else echo "$1 WRONG (truth $truth)"; failed=1; fi
}

for decoder in gstreamer software; do
  config "file-$decoder" "/work/shared/data/caviar_front/clips/$clip" "$decoder"
  in_root /opt/shopper-edge/venv/bin/shopper-edge replay "/work/shared/data/caviar_front/clips/$clip" \
    --config "/work/check/file-$decoder.yaml" --windows "/work/check/file-$decoder.jsonl" \
    > "$root/work/check/replay-$decoder.json"
  fps=$(in_root $py -c 'import json, sys; print(json.load(open(sys.argv[1]))["fps"])' \
    "/work/check/replay-$decoder.json")
  step "replay $clip, decoder $decoder: $(verdict "$(door "/work/check/file-$decoder.jsonl")"), $fps fps"
done

# A live RTSP stream: this machine's GStreamer RTSP server (tests/rtsp_server.py) on the
# loopback the root shares plays the clip, once per client and in real time, and
# `shopper-edge run` (pixel worker, camera relay) counts it until the stream ends.
ffmpeg -v error -nostdin -y -i "$shared/data/caviar_front/clips/$clip" -c:v libx264 \
  -preset ultrafast -an "$cache/live.mp4"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/bin/python3 "$top/tests/rtsp_server.py" --port "$port" --file "$cache/live.mp4" \
  > "$cache/rtsp.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q READY "$cache/rtsp.log" && break; sleep 0.1; done
step "RTSP server on port $port"
for decoder in gstreamer software; do
  config "live-$decoder" "rtsp://127.0.0.1:$port/cam" "$decoder"
  # exec: $! is the appliance's own pid (chroot and env exec it), which SIGTERM stops.
  (exec chroot "$root" env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    /opt/shopper-edge/venv/bin/shopper-edge run --config "/work/check/live-$decoder.yaml" \
    > "$root/work/check/live-$decoder.jsonl" 2> "$cache/live-$decoder.log") &
  app=$!
  for _ in $(seq 600); do grep -q "stream lost" "$cache/live-$decoder.log" && break; sleep 0.2; done
  kill -TERM "$app"; wait "$app" || echo "jammy-check: run ended with status $?" >&2
  app=
  step "run rtsp://..., decoder $decoder: $(verdict "$(door "/work/check/live-$decoder.jsonl")")"
done
kill "$server"; wait "$server" 2>/dev/null || true
server=

# Head office on the same Python: its extras, the replay's windows stored, the report.
in_root sh -euc '/opt/shopper-edge/venv/bin/python -m pip install --quiet --no-index \
    --find-links /work/hq-wheels "$(ls /opt/shopper-edge/wheels/shopper_edge-*.whl)[hq]"
  rm -f /work/check/hq.db
  /opt/shopper-edge/venv/bin/python -c "import json, sys
from appliance.hq.store import WindowStore
store = WindowStore(sys.argv[1])
for line in open(sys.argv[2]):
    store.add_window(json.loads(line), \"2026-01-01T00:00:00Z\")
store.close()" /work/check/hq.db /work/check/file-gstreamer.jsonl
  /opt/shopper-edge/venv/bin/shopper-hq report --db /work/check/hq.db --json' \
  > "$root/work/check/hq-report.json"
hq=$(in_root $py -c 'import json, sys
print(json.dumps(json.load(open(sys.argv[1]))["cameras"][0]["lines"]["shop_door"]))' \
  /work/check/hq-report.json)
step "shopper-hq store + report on Python 3.10: door $(verdict "$hq")"
exit $failed
