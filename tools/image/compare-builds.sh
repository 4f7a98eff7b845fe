#!/bin/sh
# Reproducibility check: builds BOARD again from the same staged tree and compares its
# manifest (every package, file hash and symlink) with a previous build's (as root):
#   tools/image/compare-builds.sh BOARD STAGE PREVIOUS_OUTDIR
# Exit status 0 and "same contents" when equal; otherwise the diff and status 1.
set -eu
board=$1
stage=$2
previous=$3
again=$previous.again
"$(dirname "$0")/build-image.sh" "$board" "$stage" "$again"
if diff "$previous/shopper-edge-$board.manifest" "$again/shopper-edge-$board.manifest"; then
    echo "compare-builds.sh: $board: same contents ($(grep -c . "$again/shopper-edge-$board.manifest") manifest lines)"
else
    exit 1
fi
