#!/usr/bin/env python3
"""Puts the engines of one benchmark data set side by side (see docs/benchmarks.md).

    python3 bench/report.py NAME RESULT.json [RESULT.json ...]

Each file is either the Rust bench's --json (an "engines" list) or one peers_bench.py result.
Prints a markdown table per data set: build time, memory, QPS at recall@10 = 0.95 interpolated
from the ef sweep, and vectord's ratios to the best of hnswlib and FAISS (the issue's targets).
"""
import json
import math
import sys

TARGET = 0.95
PEERS = ("hnswlib", "faiss")  # the targets are set against the best of these


def qps_at(rows, key="qps"):
    """QPS at recall TARGET: log-linear between the two sweep points around it.

    Returns (qps, how) with how "interp", "first" (already >= TARGET at the smallest ef: that
    point's QPS, a lower bound) or (None, "not reached")."""
    rows = sorted(rows, key=lambda r: r["ef"])
    for i, r in enumerate(rows):
        if r["recall"] >= TARGET:
            if i == 0:
                return r[key], "first"
            lo = rows[i - 1]
            if r["recall"] == lo["recall"]:
                return r[key], "interp"
            t = (TARGET - lo["recall"]) / (r["recall"] - lo["recall"])
            return math.exp(math.log(lo[key]) + t * (math.log(r[key]) - math.log(lo[key]))), "interp"
    return None, "not reached"


def load(paths):
    engines = []
    for p in paths:
        with open(p) as f:
            doc = json.load(f)
        engines.extend(doc["engines"] if "engines" in doc else [doc])
    return engines


def fmt(x, spec):
    return "–" if x is None else format(x, spec)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    name, engines = sys.argv[1], load(sys.argv[2:])
    e0 = engines[0]
    print(f"\n### {name}: {e0['n']} x {e0['dim']}, {e0['nq']} queries, threads {e0['threads']}\n")
    print("| engine | build s (CPU s) | peak RSS MB | B/vector (RSS growth) "
          "| QPS@0.95 wall | QPS@0.95 thread-CPU | ef sweep: ef QPS/recall |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for e in engines:
        q, how = qps_at(e["rows"])
        qc, _ = qps_at(e["rows"], "qps_cpu")
        summary[e["engine"]] = (e, q, qc)
        mark = " (≥, at the smallest ef)" if how == "first" else ""
        sweep = " ".join(f"{r['ef']}:{r['qps']:.0f}/{r['recall']:.3f}" for r in e["rows"])
        print(f"| {e['engine']} | {e['build_s']:.1f} ({e.get('build_cpu_s', 0):.1f}) "
              f"| {e['peak_rss_bytes'] / 2**20:.0f} | {e['bytes_per_vector_rss']:.0f} "
              f"| {fmt(q, '.0f')}{mark} | {fmt(qc, '.0f')} | {sweep} |")
    if "vectord" not in summary:
        return
    v, vq, vqc = summary["vectord"]
    print()
    for peer in [p for p in summary if p not in ("vectord", "vectord-int8")]:
        e, q, qc = summary[peer]
        parts = [f"build {v['build_s'] / e['build_s']:.2f}x "
                 f"(CPU {v['build_cpu_s'] / max(e['build_cpu_s'], 1e-9):.2f}x)"]
        if e["bytes_per_vector_rss"] > 0:
            parts.append(f"memory {v['bytes_per_vector_rss'] / e['bytes_per_vector_rss']:.2f}x")
        if vq and q:
            parts.append(f"QPS@0.95 {vq / q:.2f}x (thread-CPU {vqc / qc:.2f}x)")
        print(f"- vectord / {peer}: " + ", ".join(parts))
    best = [summary[p] for p in PEERS if p in summary and summary[p][1]]
    if best and vq:
        bq = max(b[1] for b in best)
        bqc = max(b[2] for b in best)
        bb = min(b[0]["build_s"] for b in best)
        print(f"- **vectord / best of {', '.join(p for p in PEERS if p in summary)}**: "
              f"QPS@0.95 {vq / bq:.2f}x wall, {vqc / bqc:.2f}x thread-CPU (target >= 1.10); "
              f"build {v['build_s'] / bb:.2f}x (target <= 1.00)")
    if "vectord-int8" in summary and best:
        i8, iq, iqc = summary["vectord-int8"]
        bq = max(b[1] for b in best)
        bqc = max(b[2] for b in best)
        ratio = f"{iq / bq:.2f}x wall, {iqc / bqc:.2f}x thread-CPU" if iq else "0.95 not reached"
        print(f"- **vectord int8 / best f32 peer**: QPS@0.95 {ratio} (target >= 1.5, floor 1.2); "
              f"memory {i8['bytes_per_vector_rss'] / v['bytes_per_vector_rss']:.2f}x vectord f32 "
              f"(target <= 1.3); recall at each ef minus f32's: "
              + " ".join(f"{a['ef']}:{a['recall'] - b['recall']:+.4f}"
                         for a, b in zip(i8["rows"], v["rows"]) if a["ef"] == b["ef"]))
    if "hnswlib" in summary and summary["hnswlib"][0]["bytes_per_vector_rss"] > 0:
        h = summary["hnswlib"][0]
        print(f"- memory vs hnswlib: {v['bytes_per_vector_rss'] / h['bytes_per_vector_rss']:.2f}x "
              f"B/vector of RSS growth (target <= 1.05); vectord memory_bytes() "
              f"{fmt(v.get('bytes_per_vector_own'), '.0f')} B/vector")


if __name__ == "__main__":
    main()
