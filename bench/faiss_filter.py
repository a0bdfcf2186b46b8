#!/usr/bin/env python3
"""FAISS IndexHNSWFlat with an IDSelectorBitmap on the cases written by
`cargo run --release --example filter_bench` (same filters, allowed rows and
filtered brute-force truth): recall@10 and single-thread QPS per filter at
efSearch 64 and, where 64 falls short of 0.95, the smallest efSearch in a
ladder that reaches it.

    pip install faiss-cpu numpy
    python3 bench/faiss_filter.py [DATASET_DIR] [target/filter_bench/cases.json]
"""
import json
import os
import sys
import time

import faiss
import numpy as np


def read_fvecs(path):
    a = np.fromfile(path, dtype=np.int32)
    d = a[0]
    return a.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "../shared/datasets/wordnet-minilm-30k")
    cases_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "target/filter_bench/cases.json")
    print("CPU:", cpu_model(), "| faiss", faiss.__version__)
    faiss.omp_set_num_threads(1)
    base = read_fvecs(os.path.join(data, "base.fvecs"))
    faiss.normalize_L2(base)
    spec = json.load(open(cases_path))
    nq, k = spec["nq"], spec["k"]
    queries = read_fvecs(os.path.join(data, "query.fvecs"))[:nq].copy()
    faiss.normalize_L2(queries)
    n, d = base.shape
    cache = os.path.join(os.path.dirname(cases_path), "faiss_hnsw.index")
    if os.path.exists(cache):
        index = faiss.read_index(cache)
    else:
        t = time.time()
        index = faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 200
        faiss.omp_set_num_threads(2)
        index.add(base)
        faiss.omp_set_num_threads(1)
        faiss.write_index(index, cache)
        print(f"index built in {time.time() - t:.1f}s")
    print(f"\n{'filter':<24} {'efSearch':>8} {'recall@10':>10} {'QPS':>10} {'vectord QPS':>12} {'vectord/faiss':>14}")
    for case in spec["cases"]:
        allowed = case["allowed"]
        per_query = len(allowed) > 1
        sels = []
        for rows in allowed:
            bits = np.zeros((n + 7) // 8, dtype=np.uint8)
            r = np.asarray(rows, dtype=np.int64)
            if len(r):
                np.bitwise_or.at(bits, r >> 3, (1 << (r & 7)).astype(np.uint8))
            sels.append((faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits)), bits))
        truth = case["truth"]
        unfiltered = case["name"].startswith("unfiltered")
        for ef in [64, 128, 256, 512, 1024]:
            params = []
            for sel, _ in sels:
                p = faiss.SearchParametersHNSW()
                p.efSearch = ef
                if not unfiltered:
                    p.sel = sel
                params.append(p)
            best = float("inf")
            found = None
            for _ in range(3):
                t = time.perf_counter()
                out = []
                for q in range(nq):
                    p = params[q if per_query else 0]
                    _, ids = index.search(queries[q : q + 1], k, params=p)
                    out.append(ids[0])
                best = min(best, time.perf_counter() - t)
                found = out
            hit = tot = 0
            for q in range(nq):
                want = set(truth[q])
                tot += len(want)
                hit += len(want & set(int(i) for i in found[q] if i >= 0))
            recall = hit / tot if tot else 1.0
            qps = nq / best
            print(f"{case['name']:<24} {ef:>8} {recall:>10.4f} {qps:>10.0f} {case['vectord_qps']:>12.0f} {case['vectord_qps'] / qps:>14.2f}")
            if recall >= 0.95 or unfiltered:
                break
        else:
            print(f"{case['name']:<24} FAISS does not reach recall 0.95 up to efSearch 1024")


if __name__ == "__main__":
    main()
