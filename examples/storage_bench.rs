//! Storage benchmark: save and load throughput of one large index (about
//! 50 MB as LHV1) to a directory, the reference storaged over loopback and
//! S3 (moto over loopback, when installed: see docs/storage.md), and the
//! cost of a refresh over 100 unchanged indexes.
//!
//! ```text
//! cargo run --release --example storage_bench -- [--n 45000] [--dim 256]
//! ```

#[path = "../tests/common/moto.rs"]
mod moto;

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
    (0..n * dim).map(|_| next()).collect()
}

/// Saves the blob as an index through a registry, loads it in a fresh one,
/// then times a refresh over 100 small unchanged indexes.
fn bench(label: &str, url: &str, options: &str, blob: &[u8]) {
    let mb = blob.len() as f64 / 1e6;
    let w = Registry::open(Some(url), Some(options)).unwrap();
    let t = Instant::now();
    w.import(blob).unwrap();
    w.flush().unwrap();
    let save = t.elapsed().as_secs_f64();
    drop(w);
    let t = Instant::now();
    let r = Registry::open(Some(url), Some(options)).unwrap();
    let load = t.elapsed().as_secs_f64();
    assert_eq!(r.names().len(), 1);
    drop(r);
    let w = Registry::open(Some(url), Some(options)).unwrap();
    w.delete("big").unwrap();
    for i in 0..100 {
        let ix = w
            .create(IndexParams::new(format!("small-{i:03}"), 8, Metric::L2))
            .unwrap();
        ix.add(&["a", "b"], &[0.5; 16], None).unwrap();
    }
    w.flush().unwrap();
    let r = Registry::open(Some(url), Some(options)).unwrap();
    let rounds = 5;
    let t = Instant::now();
    for _ in 0..rounds {
        r.refresh().unwrap();
    }
    let refresh = t.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "| {label:<9} | {mb:>6.1} | {:>8.1} | {:>8.1} | {:>10.1} |",
        mb / save,
        mb / load,
        refresh * 1000.0
    );
}

fn main() {
    let n = arg("--n", 45_000);
    let dim = arg("--dim", 256);
    let src = Registry::open(None, None).unwrap();
    let mut p = IndexParams::new("big", dim as u32, Metric::L2);
    p.m = 8;
    p.ef_construction = 40;
    let ix = src.create(p).unwrap();
    let v = data(n, dim);
    let ids: Vec<String> = (0..n).map(|i| format!("item-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let t = Instant::now();
    for (c, chunk) in refs.chunks(5000).enumerate() {
        ix.add(
            chunk,
            &v[c * 5000 * dim..(c * 5000 + chunk.len()) * dim],
            None,
        )
        .unwrap();
    }
    eprintln!("built {n} x {dim} in {:.1} s", t.elapsed().as_secs_f64());
    let blob = vectord::lhv1::encode(&ix).expect("encode");
    println!("| store     |     MB | save MB/s | load MB/s | refresh ms (100 unchanged) |");
    println!("|-----------|-------:|---------:|---------:|-----------:|");

    let dir = std::env::temp_dir().join(format!("vectord-sbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    bench(
        "directory",
        dir.join("d").to_str().unwrap(),
        "{\"save\": \"manual\"}",
        &blob,
    );

    let server = spawn_for_tests(&dir.join("h"), ServerOptions::default()).unwrap();
    bench("storaged", &server.url(), "{\"save\": \"manual\"}", &blob);
    drop(server);

    match moto::start() {
        Some(m) => {
            let url = m.url(&m.bucket(), "bench");
            let opts = moto::Moto::options(", \"save\": \"manual\"");
            bench("S3 (moto)", &url, &opts, &blob);
        }
        None => println!("| S3 (moto) | skipped: moto not installed |"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
