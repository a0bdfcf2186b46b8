//! Single-item upsert latency against single fresh inserts (issue 9, point
//! 16): an upsert reuses the old slot, so the lists linking to it must be
//! repaired first; that repair should cost about as much as an insert, not a
//! pass over the whole graph.
//!
//! ```text
//! cargo run --release --example upsert_bench -- [--sizes 10000,100000,1000000] [--dim 32] [--ops 200]
//! ```

use std::time::{Duration, Instant};

use vectord::{Index, IndexParams, Metric};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

struct Gen(u64);

impl Gen {
    fn f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// Rows around 64 centres (embedding-like rather than uniform noise).
fn data(g: &mut Gen, centres: &[f32], n: usize, dim: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = ((g.f32() + 0.5) * 64.0) as usize % 64;
        for j in 0..dim {
            out.push(centres[c * dim + j] + 0.2 * g.f32());
        }
    }
    out
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let sizes: Vec<usize> = arg("--sizes")
        .unwrap_or_else(|| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("a size"))
        .collect();
    let dim: usize = arg("--dim").map_or(32, |s| s.parse().expect("a dim"));
    let ops: usize = arg("--ops").map_or(200, |s| s.parse().expect("an op count"));
    println!(
        "cpu: {} ({} threads available)",
        cpu_model(),
        vectord::parallel::cores()
    );
    println!("dim {dim}, m 16, ef_construction 200, {ops} single-item calls per kind");
    println!(
        "{:>9} {:>9} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "items", "build s", "insert p50", "upsert p50", "upsert p90", "upsert max", "ratio"
    );
    for &n in &sizes {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15 ^ n as u64);
        let centres: Vec<f32> = (0..64 * dim).map(|_| g.f32()).collect();
        let idx = Index::new(IndexParams::new("bench", dim as u32, Metric::L2)).unwrap();
        let ids: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
        let t = Instant::now();
        for chunk in ids.chunks(100_000) {
            let vecs = data(&mut g, &centres, chunk.len(), dim);
            let refs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
            idx.add(&refs, &vecs, None).unwrap();
        }
        let build = t.elapsed();
        idx.set_insert_threads(1);
        let mut inserts = Vec::with_capacity(ops);
        let mut upserts = Vec::with_capacity(ops);
        // Alternate the two kinds so both see the same cache and load.
        for k in 0..ops {
            let v = data(&mut g, &centres, 1, dim);
            let id = format!("new{k}");
            let t = Instant::now();
            idx.add(&[&id], &v, None).unwrap();
            inserts.push(t.elapsed());

            let v = data(&mut g, &centres, 1, dim);
            let target = &ids[((g.f32() + 0.5) * n as f32) as usize % n];
            let t = Instant::now();
            idx.add(&[target], &v, None).unwrap();
            upserts.push(t.elapsed());
        }
        let ins = quantile(&mut inserts, 0.5);
        let up50 = quantile(&mut upserts, 0.5);
        let up90 = quantile(&mut upserts, 0.9);
        let upmax = quantile(&mut upserts, 1.0);
        println!(
            "{:>9} {:>9.1} {:>9.3} ms {:>9.3} ms {:>9.3} ms {:>9.3} ms {:>7.2}x",
            n,
            build.as_secs_f64(),
            ms(ins),
            ms(up50),
            ms(up90),
            ms(upmax),
            up50.as_secs_f64() / ins.as_secs_f64()
        );
        if let Err(e) = idx.check_graph() {
            println!("graph invariant broken after the run: {e}");
        }
    }
}
