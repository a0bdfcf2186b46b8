#!/usr/bin/env python3
"""The peer engines of the engine benchmark (see docs/benchmarks.md): one engine per process.

    python3 bench/peers_bench.py --engine hnswlib|faiss|usearch --base B.fvecs --query Q.fvecs \
        --gt GT.ivecs --metric cosine|l2 --m 16 --ef-construction 200 --threads 2 \
        [--pin-core N] --json OUT.json

Same files, parameters, ef sweep and JSON layout as the Rust bench (bench/src/main.rs), so
bench/report.py can put every engine in one table. The build uses `--threads` threads; then the
process pins itself to one core and every search runs on one thread, all queries, k = 10, best
of 3 per ef.
"""
import argparse
import json
import os
import sys
import time

# Kept equal to EFS in bench/src/main.rs: report.py interpolates QPS at recall 0.95 between
# neighbouring points, so the sweep is dense around the usual crossing (ef 16..64).
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256]
K = 10


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


def pin_core(core):
    """Pins this process (every thread it starts from now on) to one core; returns it."""
    allowed = sorted(os.sched_getaffinity(0))
    if core is None:
        core = allowed[-1]
    if core not in allowed:
        sys.exit(f"error: --pin-core {core}: this process may only use cores {allowed}")
    os.sched_setaffinity(0, {core})
    return core


class Hnswlib:
    def __init__(self, a, n, dim):
        import hnswlib

        self.version = getattr(hnswlib, "__version__", "?")
        self.index = hnswlib.Index(space=a.metric, dim=dim)
        self.index.init_index(max_elements=n, ef_construction=a.ef_construction, M=a.m,
                              random_seed=100)
        self.threads = a.threads

    def note(self):
        return f"hnswlib {self.version} (pip, built from source here), space as --metric"

    def build(self, base):
        import numpy as np

        self.index.set_num_threads(self.threads)
        self.index.add_items(base, np.arange(len(base)), num_threads=self.threads)

    def prepare_search(self):
        self.index.set_num_threads(1)

    def search(self, query, ef):
        self.index.set_ef(ef)
        labels, _ = self.index.knn_query(query, k=K, num_threads=1)
        return labels


class Faiss:
    def __init__(self, a, n, dim):
        import faiss

        self.faiss = faiss
        self.cosine = a.metric == "cosine"
        # Cosine as inner product over normalised vectors: the same ranking, and what FAISS
        # users do (FAISS has no cosine metric).
        metric = faiss.METRIC_INNER_PRODUCT if self.cosine else faiss.METRIC_L2
        self.index = faiss.IndexHNSWFlat(dim, a.m, metric)
        self.index.hnsw.efConstruction = a.ef_construction
        self.threads = a.threads

    def note(self):
        simd = ""
        try:
            simd = ", SIMD " + self.faiss.get_compile_options()
        except Exception:
            pass
        return f"faiss-cpu {self.faiss.__version__} IndexHNSWFlat{simd}"

    def _prep(self, x):
        if self.cosine:
            x = x.copy()
            self.faiss.normalize_L2(x)
        return x

    def build(self, base):
        self.faiss.omp_set_num_threads(self.threads)
        self.index.add(self._prep(base))

    def prepare_search(self):
        self.faiss.omp_set_num_threads(1)

    def search(self, query, ef):
        self.index.hnsw.efSearch = ef
        _, labels = self.index.search(self._prep(query), K)
        return labels


class Usearch:
    def __init__(self, a, n, dim):
        import usearch
        from usearch.index import Index

        self.version = usearch.__version__
        self.index = Index(ndim=dim, metric="cos" if a.metric == "cosine" else "l2sq",
                           dtype="f32", connectivity=a.m, expansion_add=a.ef_construction)
        self.threads = a.threads

    def note(self):
        isa = getattr(self.index, "hardware_acceleration", "?")
        return f"usearch {self.version}, f32, hardware_acceleration {isa}"

    def build(self, base):
        import numpy as np

        self.index.add(np.arange(len(base), dtype=np.uint64), base, threads=self.threads)

    def prepare_search(self):
        pass

    def search(self, query, ef):
        self.index.expansion_search = ef
        m = self.index.search(query, K, threads=1)
        return m.keys


ENGINES = {"hnswlib": Hnswlib, "faiss": Faiss, "usearch": Usearch}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", required=True, choices=sorted(ENGINES))
    ap.add_argument("--base", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--metric", required=True, choices=["cosine", "l2"])
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pin-core", type=int, help="core for the searches (default: the last allowed)")
    ap.add_argument("--json", required=True, help="where to write the results")
    a = ap.parse_args()

    import numpy as np

    base = read_vecs(a.base, "<f4")
    query = read_vecs(a.query, "<f4")
    gt = read_vecs(a.gt, "<i4")
    n, dim = base.shape
    if query.shape[1] != dim:
        sys.exit(f"error: {a.query}: dim {query.shape[1]} but {a.base} has dim {dim}")
    if gt.shape[0] != query.shape[0] or gt.shape[1] < K:
        sys.exit(f"error: {a.gt}: shape {gt.shape}, need {query.shape[0]} rows of >= {K} ids")
    gt = gt[:, :K]
    if gt.min() < 0 or gt.max() >= n:
        sys.exit(f"error: {a.gt}: ids outside 0..{n - 1}")

    engine = ENGINES[a.engine](a, n, dim)
    print(f"== {a.engine}: {engine.note()}")
    print(f"   data: {n} x {dim} base, {len(query)} queries, metric {a.metric}, "
          f"m {a.m}, ef_construction {a.ef_construction}, threads {a.threads}")
    rss0 = proc_status_bytes("VmRSS")
    t = time.perf_counter()
    cpu0 = time.process_time()
    engine.build(base)
    build_s = time.perf_counter() - t
    build_cpu_s = time.process_time() - cpu0
    growth = max(0, proc_status_bytes("VmRSS") - rss0)
    print(f"   build: {build_s:.2f} s with {a.threads} threads ({build_cpu_s:.2f} s CPU)")
    print(f"   memory: RSS growth over the build {growth / 2**20:.1f} MB = {growth / n:.0f} B/vector")

    core = pin_core(a.pin_core)
    engine.prepare_search()
    print(f"   search: one thread pinned to core {core}")
    print(f"   {'ef':>5} {'QPS(1t)':>10} {'recall@10':>10} {'QPS(cpu)':>10}")
    gt_sets = [set(r) for r in gt.tolist()]
    rows = []
    for ef in EFS:
        best = best_cpu = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            c = time.thread_time()  # every engine searches in this thread here
            labels = engine.search(query, ef)
            best_cpu = min(best_cpu, time.thread_time() - c)
            best = min(best, time.perf_counter() - t)
        hits = sum(len(g.intersection(f)) for f, g in zip(np.asarray(labels).tolist(), gt_sets))
        recall = hits / (K * len(query))
        qps, qps_cpu = len(query) / best, len(query) / max(best_cpu, 1e-9)
        print(f"   {ef:>5} {qps:>10.0f} {recall:>10.4f} {qps_cpu:>10.0f}")
        rows.append({"ef": ef, "qps": qps, "recall": recall, "qps_cpu": qps_cpu})
    peak = proc_status_bytes("VmHWM")
    print(f"   peak RSS (VmHWM): {peak / 2**20:.1f} MB")
    doc = {
        "engine": a.engine, "note": engine.note(), "n": n, "dim": dim, "nq": len(query),
        "threads": a.threads, "pin_core": core, "build_s": build_s, "build_cpu_s": build_cpu_s,
        "peak_rss_bytes": peak, "rss_growth_bytes": growth, "bytes_per_vector_rss": growth / n,
        "rows": rows,
    }
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
