#!/bin/sh
# Installs vectord into temporary prefixes (never /usr/local) and uses it the
# way a program outside this repository would:
#   - the installed files, symlinks, SONAME, exported symbols and vectord.pc;
#   - the header's version macros against the library's runtime answers;
#   - examples/quickstart.c copied outside the checkout, built with
#     `cc app.c $(pkg-config --cflags --libs vectord)` (shared, run with
#     PREFIX/lib on the loader path) and with `pkg-config --static` (static);
#   - the installed vectord and storaged binaries;
#   - examples/go copied outside the checkout, built against the installed
#     library with only PKG_CONFIG_PATH set (build tag vectord_pkgconfig, no
#     module downloads), when go is installed;
#   - --destdir staging, and scripts/uninstall.sh removing every file.
# Reuses the release build (cargo build --release, as scripts/test.sh does first).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$PATH:/usr/lib/go/bin:/usr/local/go/bin"
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install-test: FAIL: $*" >&2; exit 1; }

version=$(sed -n 's/^version = "\([0-9]*\.[0-9]*\.[0-9]*\)"$/\1/p' Cargo.toml | head -1)
abi=$(sed -n 's/^pub const VECTORD_ABI_VERSION: u32 = \([0-9]*\);$/\1/p' src/ffi/mod.rs)

echo "== install into $tmp/prefix"
prefix=$tmp/prefix
./scripts/install.sh --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install.sh"; }
for f in include/vectord.h lib/libvectord.so.$version lib/libvectord.a lib/pkgconfig/vectord.pc \
    bin/vectord bin/storaged share/vectord/install-manifest.txt; do
    [ -f "$prefix/$f" ] || fail "$f not installed"
done
[ "$(readlink "$prefix/lib/libvectord.so.$abi")" = "libvectord.so.$version" ] || fail "libvectord.so.$abi link"
[ "$(readlink "$prefix/lib/libvectord.so")" = "libvectord.so.$abi" ] || fail "libvectord.so link"
readelf -d "$prefix/lib/libvectord.so.$version" | grep -q "(SONAME).*\[libvectord.so.$abi\]" ||
    fail "SONAME is not libvectord.so.$abi"
foreign=$(nm -D --defined-only "$prefix/lib/libvectord.so.$version" | awk '{print $3}' | grep -v '^vectord_' || true)
[ -z "$foreign" ] || fail "the installed library exports more than the C API: $foreign"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion vectord)" = "$version" ] || fail "pkg-config --modversion"
echo "pkg-config --cflags --libs vectord: $(pkg-config --cflags --libs vectord)"
echo "pkg-config --static --libs vectord: $(pkg-config --static --libs vectord)"

echo "== C outside the repository: version macros vs. the library"
app=$tmp/c-app
mkdir -p "$app"
cat >"$app/version.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <vectord.h>
int main(void) {
    char parts[64];
    snprintf(parts, sizeof parts, "%d.%d.%d", VECTORD_VERSION_MAJOR, VECTORD_VERSION_MINOR,
             VECTORD_VERSION_PATCH);
    if (strcmp(VECTORD_VERSION_STRING, vectord_version()) != 0 || strcmp(parts, vectord_version()) != 0) {
        fprintf(stderr, "header says %s (%s), library says %s\n", VECTORD_VERSION_STRING, parts,
                vectord_version());
        return 1;
    }
    if (VECTORD_ABI_VERSION != vectord_abi_version()) {
        fprintf(stderr, "header ABI %d, library ABI %u\n", VECTORD_ABI_VERSION, vectord_abi_version());
        return 1;
    }
    printf("%s %d\n", VECTORD_VERSION_STRING, VECTORD_ABI_VERSION);
    return 0;
}
EOF
(cd "$app" && $CC -std=c99 -Wall -Werror version.c $(pkg-config --cflags --libs vectord) -o version)
[ "$(LD_LIBRARY_PATH="$prefix/lib" "$app/version")" = "$version $abi" ] || fail "version macros"

echo "== C outside the repository: quickstart, shared"
cp examples/quickstart.c "$app/app.c"
(cd "$app" && $CC -std=c99 -Wall -Werror app.c $(pkg-config --cflags --libs vectord) -o app-shared)
readelf -d "$app/app-shared" | grep -q "NEEDED.*\[libvectord.so.$abi\]" || fail "app-shared does not need libvectord.so.$abi"
mkdir "$app/shared" "$app/static"
(cd "$app/shared" && LD_LIBRARY_PATH="$prefix/lib" ../app-shared quickstart.lhv1) >"$app/shared.out" || fail "app-shared failed"
grep -q "1. apple" "$app/shared.out" || fail "app-shared output: $(cat "$app/shared.out")"

echo "== C outside the repository: quickstart, static"
# glibc warns that getaddrinfo in a static program needs glibc's shared NSS
# modules at run time; that is expected (storaged URLs are resolved by it).
(cd "$app" && $CC -std=c99 -static app.c $(pkg-config --static --cflags --libs vectord) -o app-static 2>"$app/static.log") ||
    { cat "$app/static.log"; fail "static link"; }
if readelf -d "$app/app-static" 2>/dev/null | grep -q NEEDED; then fail "app-static is not static"; fi
(cd "$app/static" && ../app-static quickstart.lhv1) >"$app/static.out" || fail "app-static failed"
cmp -s "$app/shared.out" "$app/static.out" || fail "static and shared runs differ"

echo "== installed tools"
"$prefix/bin/vectord" --version | grep -q "$version" || fail "vectord --version"
"$prefix/bin/vectord" verify "$app/shared/quickstart.lhv1" >"$app/verify.out" || fail "vectord verify: $(cat "$app/verify.out")"
# The installed server and tool together: import the quickstart's index into
# a storaged store over HTTP and list it.
mkdir "$tmp/objects"
"$prefix/bin/storaged" --dir "$tmp/objects" --listen 127.0.0.1:0 >"$tmp/storaged.out" 2>&1 &
storaged_pid=$!
trap 'kill "$storaged_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
addr=
for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$tmp/storaged.out")
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || fail "storaged did not start: $(cat "$tmp/storaged.out")"
"$prefix/bin/vectord" import "http://$addr" "$app/shared/quickstart.lhv1" --name fruit-copy >/dev/null ||
    fail "vectord import into storaged"
"$prefix/bin/vectord" ls "http://$addr" >"$tmp/ls.out" || fail "vectord ls: $(cat "$tmp/ls.out")"
grep -q '^fruit-copy  *4  *3  *cosine' "$tmp/ls.out" || fail "vectord ls output: $(cat "$tmp/ls.out")"
kill "$storaged_pid"
wait "$storaged_pid" 2>/dev/null || true

if command -v go >/dev/null 2>&1; then
    echo "== Go outside the repository (tag vectord_pkgconfig, $(go version | awk '{print $3}'))"
    gosrc=$tmp/go
    mkdir -p "$gosrc"
    cp -r bindings/go "$gosrc/vectord"
    cp -r examples/go "$gosrc/app"
    # The module stays a local copy: no proxy, no download.
    sed -i 's|^replace vectord.local/vectord => .*|replace vectord.local/vectord => ../vectord|' "$gosrc/app/go.mod"
    grep -q '=> ../vectord$' "$gosrc/app/go.mod" || fail "examples/go/go.mod has no replace line"
    (cd "$gosrc/app" &&
        env -u CGO_CFLAGS -u CGO_LDFLAGS CGO_ENABLED=1 GOFLAGS=-mod=mod GOPROXY=off GOWORK=off \
            go build -tags vectord_pkgconfig -o "$gosrc/quickstart" .) || fail "go build outside the repository"
    dir=$(cd "$gosrc/app" && GOFLAGS=-mod=mod GOPROXY=off GOWORK=off go list -m -f '{{.Dir}}' vectord.local/vectord)
    [ "$dir" = "$gosrc/vectord" ] || fail "the Go package came from $dir, not the copy"
    LD_LIBRARY_PATH="$prefix/lib" "$gosrc/quickstart" >"$gosrc/out" || { cat "$gosrc/out"; fail "Go program failed"; }
    LD_LIBRARY_PATH="$prefix/lib" ldd "$gosrc/quickstart" | grep -q "$prefix/lib/libvectord.so.$abi" || fail "Go program did not load the installed library"
else
    echo "== Go outside the repository: skipped (go is not installed)"
fi

echo "== --destdir staging and uninstall"
stage=$tmp/stage
./scripts/install.sh --no-build --destdir "$stage" --prefix /opt/vectord >/dev/null
grep -q '^prefix=/opt/vectord$' "$stage/opt/vectord/lib/pkgconfig/vectord.pc" || fail "staged vectord.pc prefix"
[ -f "$stage/opt/vectord/lib/libvectord.a" ] || fail "staged library"
./scripts/uninstall.sh --destdir "$stage" --prefix /opt/vectord >/dev/null
left=$(find "$stage" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"
./scripts/uninstall.sh --prefix "$prefix" >/dev/null
left=$(find "$prefix" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"

echo "install-test: all passed"
