#!/bin/sh
# Builds the library in release mode, compiles examples/quickstart.c against
# include/vectord.h and target/release/libvectord.a, and runs it.
set -eu
cd "$(dirname "$0")/.."
# Setup: a C compiler (Debian's gcc) if the machine has none.
if ! command -v "${CC:-cc}" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq gcc >/dev/null
fi
cargo build --release --lib
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
target_dir=${target_dir:-target}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
${CC:-cc} -std=c99 -Wall -Wextra -O2 -Iinclude examples/quickstart.c \
    "$target_dir/release/libvectord.a" -lpthread -ldl -lm -o "$out/quickstart"
"$out/quickstart" "$out/quickstart.lhv1"
