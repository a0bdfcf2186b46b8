#!/usr/bin/env python3
"""hnswlib side of the engine benchmark (see docs/benchmarks.md).

Same files, parameters and table as the Rust bench (bench/src/main.rs):

    python3 bench/hnswlib_bench.py --base B.fvecs --query Q.fvecs --gt GT.ivecs \
        --metric cosine|l2 --m 16 --ef-construction 200 --threads 2 \
        [--vectord-json OUT.json]

Build uses `threads` threads; every search uses one thread (num_threads=1), all
queries, k=10, best of 3. With --vectord-json (written by the Rust bench's
--json) it also prints the ratios vectord / hnswlib.
"""
import argparse
import json
import os
import subprocess
import sys
import time

EFS = [16, 32, 64, 128, 256]
K = 10
TARGET = 0.95


def ensure_packages():
    try:
        import numpy  # noqa: F401
        import hnswlib  # noqa: F401
    except ImportError:
        print("installing numpy and hnswlib with pip", flush=True)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "numpy", "hnswlib"])


def proc_status_bytes(field):
    """A /proc/self/status field (VmRSS, VmHWM) in bytes; 0 if unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def read_vecs(path, dtype):
    """A TEXMEX fvecs (dtype <f4) or ivecs (dtype <i4) file as an (n, d) array."""
    import numpy as np

    try:
        raw = np.fromfile(path, dtype="<i4")
    except OSError as e:
        sys.exit(f"error: {path}: {e}")
    if raw.size == 0:
        sys.exit(f"error: {path}: empty file")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) != 0:
        sys.exit(f"error: {path}: size {raw.size * 4} bytes is not a whole number of rows of dim {d}")
    raw = raw.reshape(-1, d + 1)
    bad = np.nonzero(raw[:, 0] != d)[0]
    if bad.size:
        sys.exit(f"error: {path}: row {bad[0]} has length {raw[bad[0], 0]}, row 0 has {d}")
    return np.ascontiguousarray(raw[:, 1:]).view(dtype)


def mb(b):
    return b / (1024 * 1024)


def first_at_target(rows):
    return next((r for r in rows if r["recall"] >= TARGET), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--metric", required=True, choices=["cosine", "l2"])
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vectord-json", help="the Rust bench's --json output, for ratios")
    a = ap.parse_args()

    ensure_packages()
    import numpy as np
    import hnswlib

    base = read_vecs(a.base, "<f4")
    query = read_vecs(a.query, "<f4")
    gt = read_vecs(a.gt, "<i4")
    n, dim = base.shape
    if query.shape[1] != dim:
        sys.exit(f"error: {a.query}: dim {query.shape[1]} but {a.base} has dim {dim}")
    if gt.shape[0] != query.shape[0]:
        sys.exit(f"error: {a.gt}: {gt.shape[0]} rows but {a.query} has {query.shape[0]} queries")
    if gt.shape[1] < K:
        sys.exit(f"error: {a.gt}: {gt.shape[1]} ids per query, recall@{K} needs {K}")
    gt = gt[:, :K]
    if gt.min() < 0 or gt.max() >= n:
        sys.exit(f"error: {a.gt}: ids outside 0..{n - 1}")

    print(f"== hnswlib {getattr(hnswlib, '__version__', '')}: space {a.metric}, numpy {np.__version__}")
    print(f"   data: {n} x {dim} base, {len(query)} queries, metric {a.metric}, "
          f"m {a.m}, ef_construction {a.ef_construction}, threads {a.threads}")
    rss0 = proc_status_bytes("VmRSS")
    t = time.perf_counter()
    cpu0 = time.process_time()
    index = hnswlib.Index(space=a.metric, dim=dim)
    index.init_index(max_elements=n, ef_construction=a.ef_construction, M=a.m, random_seed=100)
    index.set_num_threads(a.threads)
    index.add_items(base, np.arange(n), num_threads=a.threads)
    build_s = time.perf_counter() - t
    build_cpu_s = time.process_time() - cpu0
    growth = max(0, proc_status_bytes("VmRSS") - rss0)
    print(f"   build: {build_s:.2f} s with {a.threads} threads ({build_cpu_s:.2f} s CPU)")
    print(f"   memory: RSS growth over the load {mb(growth):.1f} MB = {growth / n:.0f} B/vector")

    index.set_num_threads(1)
    print(f"   {'ef':>5} {'QPS(1t)':>10} {'recall@10':>10} {'QPS(cpu)':>10}")
    gt_sets = [set(r) for r in gt.tolist()]
    rows = []
    for ef in EFS:
        index.set_ef(ef)
        best = best_cpu = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            c = time.thread_time()  # num_threads=1 searches in this thread
            labels, _ = index.knn_query(query, k=K, num_threads=1)
            best_cpu = min(best_cpu, time.thread_time() - c)
            best = min(best, time.perf_counter() - t)
        qps = len(query) / best
        qps_cpu = len(query) / best_cpu
        hits = sum(len(g.intersection(f)) for f, g in zip(labels.tolist(), gt_sets))
        recall = hits / (K * len(query))
        print(f"   {ef:>5} {qps:>10.0f} {recall:>10.4f} {qps_cpu:>10.0f}")
        rows.append({"ef": ef, "qps": qps, "recall": recall, "qps_cpu": qps_cpu})
    peak = proc_status_bytes("VmHWM")
    print(f"   peak RSS (VmHWM): {mb(peak):.1f} MB")
    first = first_at_target(rows)
    if first:
        print(f" hnswlib: first ef with recall@10 >= {TARGET}: {first['ef']} "
              f"(recall {first['recall']:.4f}, {first['qps']:.0f} QPS); "
              f"build {build_s:.2f} s, peak RSS {mb(peak):.1f} MB")
    else:
        print(f" hnswlib: recall@10 >= {TARGET} not reached up to ef {EFS[-1]}")

    if not a.vectord_json:
        return
    with open(a.vectord_json) as f:
        doc = json.load(f)
    v = next((e for e in doc["engines"] if e["engine"] == "vectord"), None)
    if v is None:
        sys.exit(f"error: {a.vectord_json} has no vectord results")
    vfirst = first_at_target(v["rows"])
    print(f"== ratios vectord / hnswlib ({a.base})")
    print(f"   build time {v['build_s']:.2f} / {build_s:.2f} s = {v['build_s'] / build_s:.2f}x "
          f"(target <= 1.10)")
    print(f"   peak RSS   {mb(v['peak_rss_bytes']):.1f} / {mb(peak):.1f} MB = "
          f"{v['peak_rss_bytes'] / peak:.2f}x (target <= 1.20)")
    if growth:
        print(f"   RSS growth {v['bytes_per_vector_rss']:.0f} / {growth / n:.0f} B/vector = "
              f"{v['bytes_per_vector_rss'] * n / growth:.2f}x")
    if "build_cpu_s" in v:
        print(f"   build CPU  {v['build_cpu_s']:.2f} / {build_cpu_s:.2f} s = "
              f"{v['build_cpu_s'] / build_cpu_s:.2f}x (CPU time, steadier on a loaded machine)")
    if vfirst and first:
        if "qps_cpu" in vfirst:
            print(f"   QPS(cpu) at the first ef reaching recall {TARGET}: "
                  f"{vfirst['qps_cpu']:.0f} / {first['qps_cpu']:.0f} = "
                  f"{vfirst['qps_cpu'] / first['qps_cpu']:.2f}x")
        print(f"   QPS at the first ef reaching recall {TARGET}: vectord ef {vfirst['ef']} "
              f"{vfirst['qps']:.0f} (recall {vfirst['recall']:.4f}) / hnswlib ef {first['ef']} "
              f"{first['qps']:.0f} (recall {first['recall']:.4f}) = "
              f"{vfirst['qps'] / first['qps']:.2f}x (target >= 1.0, aim 1.2)")
        for vr, hr in zip(v["rows"], rows):
            print(f"   ef {vr['ef']:>3}: QPS {vr['qps'] / hr['qps']:.2f}x, "
                  f"recall {vr['recall']:.4f} vs {hr['recall']:.4f}")
    else:
        print(f"   recall {TARGET} not reached by "
              f"{'vectord' if not vfirst else 'hnswlib'}")


if __name__ == "__main__":
    main()
