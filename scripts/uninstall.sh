#!/bin/sh
# Removes what scripts/install.sh installed, as listed in its manifest
# PREFIX/share/vectord/install-manifest.txt; nothing else is touched.
# Usage: scripts/uninstall.sh [--prefix DIR] [--destdir DIR]   (same values as for install.sh)
set -eu
prefix=/usr/local
destdir=
usage() { echo "usage: scripts/uninstall.sh [--prefix DIR] [--destdir DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --destdir) [ $# -ge 2 ] || usage; destdir=$2; shift 2 ;;
        --destdir=*) destdir=${1#--destdir=}; shift ;;
        -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
        *) usage ;;
    esac
done
dest=$destdir$prefix
manifest=$dest/share/vectord/install-manifest.txt
[ -f "$manifest" ] || { echo "uninstall.sh: no vectord installation in $dest ($manifest is missing)" >&2; exit 1; }
# Only relative paths without ".." can come from install.sh; anything else
# means the manifest is not ours, and nothing is removed.
if grep -Eq '^/|(^|/)\.\.(/|$)' "$manifest"; then
    echo "uninstall.sh: $manifest lists paths outside $dest; not removing anything" >&2
    exit 1
fi
while IFS= read -r rel; do
    [ -n "$rel" ] || continue
    rm -f "$dest/$rel"
done <"$manifest"
rmdir "$dest/share/vectord" 2>/dev/null || true
echo "removed vectord from $dest"
