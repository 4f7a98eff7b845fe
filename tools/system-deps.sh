#!/usr/bin/env bash
# The Debian packages the tests need (make test calls this first). Installed ones cost one
# dpkg-query; missing ones are installed with apt-get as root, or with sudo when it needs no
# password; otherwise one line names the command to run, and the exit status is 2.
#   tools/system-deps.sh PACKAGE...
set -euo pipefail
missing=()
for package in "$@"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: not a Debian system: install the equivalents of ${missing[*]}" >&2
  exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  run=(sudo)
else
  echo "system-deps: missing Debian packages ${missing[*]}: run 'sudo make system-deps' (or as root: make system-deps)" >&2
  exit 2
fi
echo "system-deps: installing ${missing[*]}" >&2
"${run[@]}" apt-get update -qq
"${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
