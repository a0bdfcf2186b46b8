#!/usr/bin/env python3
"""FAISS IndexHNSWFlat with an IDSelectorBitmap on the cases written by
`cargo run --release --example filter_bench` (same filters, allowed rows and
filtered brute-force truth): recall@10 and single-thread QPS per filter over
an efSearch sweep up to the first efSearch that reaches recall 0.95; then,
per filter, QPS at recall 0.95 on both sides (log-linear between the two
sweep points around it; filter_bench writes vectord's sweep), and their
ratio. Where one side is at 0.95 already at its smallest ef, that point's
QPS is used (a lower bound for it).

    pip install faiss-cpu numpy
    python3 bench/faiss_filter.py [DATASET_DIR] [target/filter_bench/cases.json]
"""
import json
import math
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
    at95 = []
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
        sweep = []
        for ef in [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]:
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
            sweep.append({"ef": ef, "recall": recall, "qps": qps})
            print(f"{case['name']:<24} {ef:>8} {recall:>10.4f} {qps:>10.0f} {case['vectord_qps']:>12.0f} {case['vectord_qps'] / qps:>14.2f}")
            if recall >= 0.95:
                break
        else:
            print(f"{case['name']:<24} FAISS does not reach recall 0.95 up to efSearch 1024")
        at95.append((case, qps_at(sweep), qps_at(case.get("vectord_sweep", []))))
    print(f"\nAt recall@10 = 0.95 (vectord at its default ef 64 above; here both swept):")
    print(f"{'filter':<24} {'FAISS QPS@0.95':>15} {'vectord QPS@0.95':>17} {'vectord/faiss':>14}")
    for case, (fq, fhow), (vq, vhow) in at95:
        mark = lambda how: " (>=)" if how == "first" else ""
        if fq is None:
            print(f"{case['name']:<24} {'not reached':>15} {vq or 0:>12.0f}{mark(vhow):>5} {'FAISS < 0.95':>14}")
        else:
            print(f"{case['name']:<24} {fq:>10.0f}{mark(fhow):>5} {vq or 0:>12.0f}{mark(vhow):>5} {(vq or 0) / fq:>14.2f}")


def qps_at(rows, target=0.95):
    """QPS at recall `target`, log-linear between the sweep points around it:
    (qps, "interp"), (qps of the first point, "first") when the first point
    is already there, or (None, "not reached")."""
    for i, r in enumerate(rows):
        if r["recall"] >= target:
            if i == 0:
                return r["qps"], "first"
            lo = rows[i - 1]
            if r["recall"] == lo["recall"]:
                return r["qps"], "interp"
            t = (target - lo["recall"]) / (r["recall"] - lo["recall"])
            return math.exp(math.log(lo["qps"]) + t * (math.log(r["qps"]) - math.log(lo["qps"]))), "interp"
    return None, "not reached"


if __name__ == "__main__":
    main()
