#!/bin/sh
# Builds vectord in release mode and installs it like a C library:
#
#   PREFIX/include/vectord.h
#   PREFIX/lib/libvectord.so.MAJOR.MINOR.PATCH   (SONAME libvectord.so.ABI)
#   PREFIX/lib/libvectord.so.ABI -> libvectord.so.MAJOR.MINOR.PATCH
#   PREFIX/lib/libvectord.so     -> libvectord.so.ABI
#   PREFIX/lib/libvectord.a
#   PREFIX/lib/pkgconfig/vectord.pc
#   PREFIX/bin/vectord            (command-line tool)
#   PREFIX/bin/storaged           (reference object server)
#   PREFIX/share/vectord/install-manifest.txt   (what scripts/uninstall.sh removes)
#
# Usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--no-build]
#   --prefix   where the files go and what vectord.pc points at (default /usr/local)
#   --destdir  staging root prepended to every path (for packagers); vectord.pc
#              still says PREFIX
#   --no-build install what the last release build made
set -eu
here=$(pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

prefix=/usr/local
destdir=
build=1
usage() { echo "usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--no-build]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --destdir) [ $# -ge 2 ] || usage; destdir=$2; shift 2 ;;
        --destdir=*) destdir=${1#--destdir=}; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) usage ;;
    esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
case "$destdir" in ''|/*) ;; *) destdir=$here/$destdir ;; esac

# The versions come from where the build takes them: Cargo.toml for the file
# name, VECTORD_ABI_VERSION (src/ffi/mod.rs, also read by build.rs for the
# SONAME) for the ABI.
version=$(sed -n 's/^version = "\([0-9]*\.[0-9]*\.[0-9]*\)"$/\1/p' Cargo.toml | head -1)
abi=$(sed -n 's/^pub const VECTORD_ABI_VERSION: u32 = \([0-9]*\);$/\1/p' src/ffi/mod.rs)
[ -n "$version" ] && [ -n "$abi" ] || { echo "install.sh: cannot read the version or the ABI version" >&2; exit 1; }

if [ "$build" = 1 ]; then
    cargo build --release -p vectord -p vectord-cli -p storaged
fi
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
rel=${target_dir:-target}/release
for f in libvectord.so libvectord.a vectord storaged; do
    [ -f "$rel/$f" ] || { echo "install.sh: $rel/$f is missing (run without --no-build)" >&2; exit 1; }
done

dest=$destdir$prefix
manifest_dir=$dest/share/vectord
mkdir -p "$dest/include" "$dest/lib/pkgconfig" "$dest/bin" "$manifest_dir"
manifest=$(mktemp)
trap 'rm -f "$manifest"' EXIT
put() { # put MODE SRC RELPATH
    install -m "$1" "$2" "$dest/$3"
    echo "$3" >>"$manifest"
}
link() { # link TARGET RELPATH
    ln -sf "$1" "$dest/$2"
    echo "$2" >>"$manifest"
}

put 644 include/vectord.h include/vectord.h
put 755 "$rel/libvectord.so" "lib/libvectord.so.$version"
link "libvectord.so.$version" "lib/libvectord.so.$abi"
link "libvectord.so.$abi" lib/libvectord.so
put 644 "$rel/libvectord.a" lib/libvectord.a
put 755 "$rel/vectord" bin/vectord
put 755 "$rel/storaged" bin/storaged
# The release profile keeps line tables for profiling; installed copies do
# not need them.
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$dest/lib/libvectord.so.$version" "$dest/lib/libvectord.a" \
        "$dest/bin/vectord" "$dest/bin/storaged"
fi

# Libs.private: what the static library needs from the system (Rust's
# standard library: threads, dlsym for weak symbols, math).
cat >"$dest/lib/pkgconfig/vectord.pc" <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: vectord
Description: Named, persistent HNSW vector indexes (C API)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lvectord
Libs.private: -lpthread -ldl -lm
EOF
echo lib/pkgconfig/vectord.pc >>"$manifest"
echo share/vectord/install-manifest.txt >>"$manifest"
install -m 644 "$manifest" "$manifest_dir/install-manifest.txt"

echo "installed vectord $version (ABI $abi) into $dest:"
sed 's/^/  /' "$manifest"
case "$prefix" in
    /usr|/usr/local) ;;
    *) echo "use it with: PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs vectord" ;;
esac
