//! Ingest benchmark for persistence: N synthetic vectors added in batches,
//! with save=sync, save=async and no store, into a directory store and into
//! the reference storaged over loopback.
//!
//! ```text
//! cargo run --release --example ingest_bench -- [--n 100000] [--dim 128] [--batch 1000]
//! ```

use std::time::Instant;

use storaged::{spawn_for_tests, ServerOptions};
use vectord::{IndexParams, Metric, Registry};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn data(n: usize, dim: usize) -> Vec<f32> {
    let mut s = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let centres: Vec<f32> = (0..64 * dim).map(|_| next()).collect();
    let mut out = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = (i * 7919) % 64;
        for j in 0..dim {
            out.push(centres[c * dim + j] + 0.2 * next());
        }
    }
    out
}

fn run(
    label: &str,
    url: Option<&str>,
    options: Option<&str>,
    vectors: &[f32],
    dim: usize,
    batch: usize,
) -> f64 {
    let db = Registry::open(url, options).expect("open");
    let idx = db
        .create(IndexParams::new("ingest", dim as u32, Metric::L2))
        .expect("create");
    let n = vectors.len() / dim;
    let ids: Vec<String> = (0..n).map(|i| format!("item-{i}")).collect();
    let start = Instant::now();
    for lo in (0..n).step_by(batch) {
        let hi = (lo + batch).min(n);
        let refs: Vec<&str> = ids[lo..hi].iter().map(|s| s.as_str()).collect();
        idx.add(&refs, &vectors[lo * dim..hi * dim], None)
            .expect("add");
    }
    let added = start.elapsed().as_secs_f64();
    db.close(); // async: waits for the last upload
    let total = start.elapsed().as_secs_f64();
    println!(
        "{label:<28} {:>9.2} s  (adds {:>7.2} s, close/flush {:>5.2} s)  {:>8.0} vectors/s",
        total,
        added,
        total - added,
        n as f64 / total
    );
    total
}

fn main() {
    let n = arg("--n", 100_000);
    let dim = arg("--dim", 128);
    let batch = arg("--batch", 1000);
    let vectors = data(n, dim);
    println!("ingest {n} x {dim} in batches of {batch} (l2, m=16, ef_construction=200)");
    let base = std::env::temp_dir().join(format!("vectord-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mem = run("no store", None, None, &vectors, dim, batch);
    let d1 = base.join("async");
    let a = run(
        "dir store, save=async",
        d1.to_str(),
        Some(r#"{"save":"async","save_interval_ms":1000}"#),
        &vectors,
        dim,
        batch,
    );
    let d2 = base.join("sync");
    let s = run(
        "dir store, save=sync",
        d2.to_str(),
        None,
        &vectors,
        dim,
        batch,
    );
    let sdir = base.join("storaged");
    std::fs::create_dir_all(&sdir).unwrap();
    let server = spawn_for_tests(&sdir, ServerOptions::default()).expect("storaged");
    let url = server.url();
    let ha = run(
        "storaged, save=async",
        Some(&url),
        Some(r#"{"save":"async","save_interval_ms":1000}"#),
        &vectors,
        dim,
        batch,
    );
    let hs = run(
        "storaged, save=sync",
        Some(&url),
        Some(r#"{"prefix":"sync/"}"#),
        &vectors,
        dim,
        batch,
    );
    // In memory again, last: the first run pays the machine's warm-up, so
    // the faster of the two is the fair baseline.
    let mem = mem.min(run("no store (again)", None, None, &vectors, dim, batch));
    println!();
    println!(
        "async/in-memory: dir {:.2}x, storaged {:.2}x (target <= 1.3x)",
        a / mem,
        ha / mem
    );
    println!(
        "sync/in-memory:  dir {:.2}x, storaged {:.2}x",
        s / mem,
        hs / mem
    );
    let _ = std::fs::remove_dir_all(&base);
}
