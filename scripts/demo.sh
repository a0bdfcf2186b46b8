#!/bin/sh
# What vectord is for: named indexes that outlive the process.
#   1. a C program (examples/demo.c) opens a registry on a directory, creates
#      an index from a real data set (the shared 30k WordNet sentence
#      embeddings when ../shared is there, else a small generated set), searches
#      it and shows the hits as text, and exits;
#   2. a second process reopens the directory, finds the index loaded from its
#      LHV1 object and answers the same queries: the same hits;
#   3. `vectord ls` shows what is in the directory.
# Usage: scripts/demo.sh [DATA_DIR|generated]   (VECTORD_DEMO_DIR=DIR keeps the store there)
set -eu
cd "$(dirname "$0")/.."
# Setup: a C compiler (Debian's gcc) if the machine has none.
if ! command -v "${CC:-cc}" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq gcc >/dev/null
fi
data=${1:-../shared/datasets/wordnet-minilm-30k}
if [ "$data" != generated ] && [ ! -f "$data/base.fvecs" ]; then
    echo "($data not found: using a small generated set)"
    data=generated
fi
cargo build --release -p vectord -p vectord-cli
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
target_dir=${target_dir:-target}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
store=${VECTORD_DEMO_DIR:-$out/store}
rm -rf "$store"
${CC:-cc} -std=c99 -Wall -Wextra -O2 -Iinclude examples/demo.c \
    "$target_dir/release/libvectord.a" -lpthread -ldl -lm -o "$out/demo"

echo
echo "== 1. build: a new registry in $store"
"$out/demo" build "$store" "$data" | tee "$out/first.txt"
echo
echo "== 2. restart: a second process reopens $store"
"$out/demo" query "$store" "$data" | tee "$out/second.txt"
echo
grep -E '^(query|  [0-9])' "$out/first.txt" >"$out/first.hits"
grep -E '^(query|  [0-9])' "$out/second.txt" >"$out/second.hits"
if [ -s "$out/first.hits" ] && cmp -s "$out/first.hits" "$out/second.hits"; then
    echo "== the reopened index gave the same hits ($(grep -c '^  ' "$out/first.hits") ids, distances and texts)"
else
    echo "demo: the reopened index answered differently" >&2
    diff "$out/first.hits" "$out/second.hits" >&2 || true
    exit 1
fi
echo
echo "== 3. vectord ls $store"
"$target_dir/release/vectord" ls "$store"
