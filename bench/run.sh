#!/usr/bin/env bash
# The engine benchmark in one command, run from anywhere:
#   bench/run.sh [--threads N] [--no-hnsw-rs] [--scale]
# Builds vectord-bench, generates the synthetic sets once (bench/data/, not in
# git), then on each data set runs every engine in its own process (vectord and
# hnsw_rs from the Rust bench; hnswlib, FAISS IndexHNSWFlat and USearch from
# peers_bench.py): build on N threads, searches on one pinned core. Prints the
# machine (CPU model, kernel, vectord's SIMD kernel) and, per data set, a
# markdown table with QPS at recall@10 = 0.95 and vectord's ratios
# (bench/report.py). --scale runs only 1,000,000 x 128 synthetic l2, with
# vectord, hnswlib and FAISS.
set -euo pipefail
cd "$(dirname "$0")/.."            # the repository root
THREADS=2
HNSW_RS=1
SCALE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) THREADS="$2"; shift 2 ;;
        --no-hnsw-rs) HNSW_RS=0; shift ;;
        --scale) SCALE=1; shift ;;
        *) echo "usage: bench/run.sh [--threads N] [--no-hnsw-rs] [--scale]" >&2; exit 2 ;;
    esac
done
# The shared data sets sit beside the repository (../shared) or, from a
# worktree under wt/, one level further up; VECTORD_DATASETS overrides both.
SHARED="${VECTORD_DATASETS:-}"
for d in ../shared/datasets ../../shared/datasets; do
    [ -z "$SHARED" ] && [ -d "$d" ] && SHARED=$d
done
[ -n "$SHARED" ] || { echo "no shared datasets (set VECTORD_DATASETS)" >&2; exit 1; }
OUT=bench/data/results
mkdir -p "$OUT"

python3 -c 'import numpy, hnswlib, faiss, usearch' 2>/dev/null ||
    python3 -m pip install numpy hnswlib faiss-cpu usearch

cargo build --release -p vectord-bench
BENCH=target/release/vectord-bench

echo "################ machine ################"
grep -m1 'model name' /proc/cpuinfo || true
echo "kernel: $(uname -srm); cores allowed: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "SIMD: $(grep -m1 -o -w -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "vectord kernel: $("$BENCH" --print-kernel)"
python3 -c 'import hnswlib, faiss, usearch, numpy; print("hnswlib", hnswlib.__version__ if hasattr(hnswlib, "__version__") else "?", "| faiss", faiss.__version__, "| usearch", usearch.__version__, "| numpy", numpy.__version__)'

synth() {  # dir n
    if [ ! -f "$1/meta.json" ]; then
        python3 "$SHARED/synth.py" --out "$1" --n "$2" --dim 128 --nq 1000
    fi
}

run() {  # name dir metric engines...
    local name=$1 dir=$2 metric=$3
    shift 3
    local args=(--base "$dir/base.fvecs" --query "$dir/query.fvecs" --gt "$dir/groundtruth.ivecs"
                --metric "$metric" --m 16 --ef-construction 200 --threads "$THREADS")
    local results=()
    echo "################ $name ($metric) ################"
    for e in "$@"; do
        case "$e" in
            vectord|vectord-int8|hnsw_rs) "$BENCH" "${args[@]}" --engine "$e" --json "$OUT/$name.$e.json" ;;
            *) python3 bench/peers_bench.py --engine "$e" "${args[@]}" --json "$OUT/$name.$e.json" ;;
        esac
        results+=("$OUT/$name.$e.json")
    done
    python3 bench/report.py "$name" "${results[@]}" | tee "$OUT/$name.md"
}

if [ "$SCALE" = 1 ]; then
    synth bench/data/synth-1m 1000000
    run synth-1m-128 bench/data/synth-1m l2 vectord vectord-int8 hnswlib faiss
    exit 0
fi
synth bench/data/synth-100k 100000
ENGINES=(vectord vectord-int8 hnswlib faiss usearch)
[ "$HNSW_RS" = 1 ] && ENGINES+=(hnsw_rs)
run wordnet-minilm-30k "$SHARED/wordnet-minilm-30k" cosine "${ENGINES[@]}"
run synth-100k-128 bench/data/synth-100k l2 "${ENGINES[@]}"
