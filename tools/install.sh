#!/bin/sh
# Installs or upgrades shopper-edge on this device from the tree `make deploy` copied to /.
# Run as root: sudo /opt/shopper-edge/install.sh. Running it again is safe: it converges on
# the copied tree and on the camera ids in /etc/shopper-edge/cameras.
set -eu
umask 022  # the venv must be readable by the service user

PREFIX=/opt/shopper-edge
CONF=/etc/shopper-edge
WANTS=/etc/systemd/system/shopper-edge.target.wants

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root" >&2
    exit 1
fi

# The copied tree is complete and unchanged (the manifest's paths are relative to /). To
# change device.yaml, stage again with it (DEVICE_CONFIG=) and deploy: this check refuses an
# edited copy.
(cd / && sha256sum --check --quiet "$PREFIX/MANIFEST.sha256")

# Cameras' files and streams are decoded by an ffmpeg child process (Debian's ffmpeg;
# Raspberry Pi OS's reaches the Pi's hardware decoders).
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || {
    echo "install.sh: ffmpeg is missing: sudo apt install ffmpeg" >&2
    exit 2
}

# Python environment from the wheelhouse only: the device needs no package index. Every
# wheel is named, so the venv gets exactly these versions (up or down); the app's version
# number does not change with every build, so it is reinstalled each time.
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    # The wheels are for the device's python3 (make stage DEVICE_PYTHON=): Debian 12: 3.11,
    # JetPack 6 (Ubuntu 22.04): 3.10.
    python3 -m venv "$PREFIX/venv"  # Debian: apt install python3-venv
fi
# The app goes in without its dependencies: the wheelhouse was staged from them, and on a
# Jetson its onnxruntime is NVIDIA's onnxruntime-gpu (make stage ORT_WHEEL=), the same module
# under another name, which pip would not take for onnxruntime.
set --
for wheel in "$PREFIX"/wheels/*.whl; do
    case "${wheel##*/}" in shopper_edge-*) ;; *) set -- "$@" "$wheel" ;; esac
done
"$PREFIX/venv/bin/python" -m pip install --quiet --no-index --find-links "$PREFIX/wheels" "$@"
"$PREFIX/venv/bin/python" -m pip install --quiet --no-index --no-deps --force-reinstall \
    "$PREFIX"/wheels/shopper_edge-*.whl

# The service user (in group video), then the directories and the secrets' modes.
systemd-sysusers /usr/lib/sysusers.d/shopper-edge.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/shopper-edge.conf
systemctl daemon-reload

# One instance per camera id (enable = add-wants to shopper-edge.target, from the unit's
# WantedBy=); a camera no longer listed is stopped and disabled.
for link in "$WANTS"/shopper-edge@*.service; do
    [ -L "$link" ] || continue
    unit=${link##*/}
    id=${unit#shopper-edge@}
    id=${id%.service}
    grep -qxF -- "$id" "$CONF/cameras" || systemctl disable --now "$unit"
done
while IFS= read -r id || [ -n "$id" ]; do  # a last line without newline counts too
    [ -n "$id" ] || continue
    systemctl enable "shopper-edge@$id.service"
done < "$CONF/cameras"

# Restart rather than `enable --now`: a running camera must pick up the new code and config.
# Restarting the target restarts every camera (PartOf=) and starts the new ones (Wants=);
# reset-failed first, so that a camera the start limit gave up on is tried again.
systemctl enable shopper-edge.target
systemctl reset-failed 'shopper-edge@*.service'
systemctl restart shopper-edge.target
echo "shopper-edge installed: cameras $(tr '\n' ' ' < "$CONF/cameras")"
