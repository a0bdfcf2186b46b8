#!/usr/bin/env bash
# The engine benchmark in one command, run from anywhere:
#   bench/run.sh [THREADS]
# Builds vectord-bench, generates the synthetic set once (bench/data/, not in
# git), then on both data sets runs the Rust bench (vectord and hnsw_rs, one
# process each) and the hnswlib bench, which prints the vectord/hnswlib ratios.
set -euo pipefail
cd "$(dirname "$0")/.."            # the repository root
THREADS="${1:-2}"
SHARED=../shared/datasets
REAL=$SHARED/wordnet-minilm-30k
SYNTH=bench/data/synth-100k
OUT=bench/data/results
mkdir -p "$OUT"

python3 -c 'import numpy, hnswlib' 2>/dev/null || python3 -m pip install numpy hnswlib

cargo build --release -p vectord-bench
BENCH=target/release/vectord-bench

if [ ! -f "$SYNTH/meta.json" ]; then
    python3 "$SHARED/synth.py" --out "$SYNTH" --n 100000 --dim 128 --nq 1000
fi

run() {  # name dir metric
    local name=$1 dir=$2 metric=$3
    local args=(--base "$dir/base.fvecs" --query "$dir/query.fvecs" --gt "$dir/groundtruth.ivecs"
                --metric "$metric" --m 16 --ef-construction 200 --threads "$THREADS")
    echo "################ $name ($metric) ################"
    "$BENCH" "${args[@]}" --engine all --json "$OUT/$name.json"
    python3 bench/hnswlib_bench.py "${args[@]}" --vectord-json "$OUT/$name.json"
}

run wordnet-minilm-30k "$REAL" cosine
run synth-100k-128 "$SYNTH" l2
