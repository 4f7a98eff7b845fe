#!/bin/sh
# Removes shopper-edge from this device: sudo /opt/shopper-edge/uninstall.sh [--purge]
# Keeps the config and secrets (/etc/shopper-edge) and the spool and models
# (/var/lib/shopper-edge) unless --purge is given. Running it again is safe.
set -eu

case "${1-}" in
    "") purge=no ;;
    --purge) purge=yes ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
    echo "uninstall.sh: run as root" >&2
    exit 1
fi

UNITS=/usr/lib/systemd/system
WANTS=/etc/systemd/system/shopper-edge.target.wants

# Every enabled camera, then anything still running (an instance started by hand).
for link in "$WANTS"/shopper-edge@*.service; do
    [ -L "$link" ] || continue
    systemctl disable --now "${link##*/}"
done
if [ -f "$UNITS/shopper-edge.target" ]; then
    systemctl disable --now shopper-edge.target
fi
systemctl stop 'shopper-edge@*.service'

rm -f "$UNITS/shopper-edge@.service" "$UNITS/shopper-edge.target" \
    /usr/lib/sysusers.d/shopper-edge.conf /usr/lib/tmpfiles.d/shopper-edge.conf
rmdir "$WANTS" 2>/dev/null || true
systemctl daemon-reload
systemctl reset-failed 'shopper-edge@*.service' shopper-edge.target 2>/dev/null || true
# This script lives there; sh has it open already, so removing it is fine.
rm -rf /opt/shopper-edge

if [ "$purge" = yes ]; then
    rm -rf /etc/shopper-edge /var/lib/shopper-edge
    # Nothing it owned is left, so its user and group go too (userdel removes the group).
    if getent passwd shopper-edge >/dev/null; then userdel shopper-edge; fi
    if getent group shopper-edge >/dev/null; then groupdel shopper-edge; fi
    echo "shopper-edge removed, with its config, secrets, spool, models and user"
else
    echo "shopper-edge removed; kept /etc/shopper-edge, /var/lib/shopper-edge and its user"
fi
# Without --purge the user shopper-edge stays: it still owns the kept spool, models and
# secrets, and a uid reused by another account would come to own them.
