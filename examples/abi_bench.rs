//! Search through the C ABI versus the Rust API, single thread, k=10.
//!
//!     cargo run --release --example abi_bench [-- DATASET_DIR]
//!
//! DATASET_DIR (default ../shared/datasets/wordnet-minilm-30k, relative to
//! the repository root) holds base.fvecs and query.fvecs (fvecs: per vector
//! a little-endian i32 dimension, then that many f32). One index is built
//! with the Rust API; the C side gets a handle to the very same index
//! (`vectord::ffi::index_handle`), so both search one graph in the same
//! memory. Each run searches every query once through both sides,
//! interleaved in chunks of 20 queries so load changes on a shared machine
//! hit both alike; the best of 5 runs counts.

use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use vectord::ffi::*;
use vectord::{Index, IndexParams, Metric};

const K: usize = 10;
const RUNS: usize = 5;
const CHUNK: usize = 20;

fn read_fvecs(path: &PathBuf) -> (usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let dim = i32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let row = 4 + 4 * dim;
    assert_eq!(
        bytes.len() % row,
        0,
        "{}: not fvecs of dim {dim}",
        path.display()
    );
    let mut out = Vec::with_capacity(bytes.len() / row * dim);
    for chunk in bytes.chunks_exact(row) {
        assert_eq!(
            i32::from_le_bytes(chunk[0..4].try_into().unwrap()) as usize,
            dim
        );
        out.extend(
            chunk[4..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap())),
        );
    }
    (dim, out)
}

fn check(st: vectord_status, err: *mut vectord_error, what: &str) {
    if st != vectord_status::Ok {
        let msg = unsafe { std::ffi::CStr::from_ptr(vectord_error_message(err)) };
        panic!("{what}: {st:?}: {}", msg.to_string_lossy());
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/wordnet-minilm-30k")
        });
    let (dim, base) = read_fvecs(&dir.join("base.fvecs"));
    let (qdim, queries) = read_fvecs(&dir.join("query.fvecs"));
    assert_eq!(dim, qdim);
    let n = base.len() / dim;
    let nq = queries.len() / dim;
    println!(
        "dataset {}: {n} base, {nq} queries, dim {dim}",
        dir.display()
    );

    let t = Instant::now();
    let rust = Arc::new(Index::new(IndexParams::new("bench", dim as u32, Metric::Cosine)).unwrap());
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    for (c, rows) in id_refs.chunks(5000).zip(base.chunks(5000 * dim)) {
        rust.add(c, rows, None).unwrap();
    }
    println!("built in {:.1}s", t.elapsed().as_secs_f64());
    let handle = index_handle(rust.clone());
    let mut err: *mut vectord_error = std::ptr::null_mut();

    // Warm up both, and check they agree bit for bit.
    for q in queries.chunks_exact(dim).take(50) {
        let r = rust.search(q, K, None).unwrap();
        let mut hits: *mut vectord_hits = std::ptr::null_mut();
        check(
            unsafe { vectord_index_search(handle, q.as_ptr(), K, &mut hits, &mut err) },
            err,
            "search",
        );
        unsafe {
            assert_eq!(vectord_hits_len(hits), r.len());
            for (i, h) in r.iter().enumerate() {
                let c = &*vectord_hits_get(hits, i);
                assert_eq!(c.distance.to_bits(), h.distance.to_bits());
                let id = std::ffi::CStr::from_ptr(c.id as *const c_char);
                assert_eq!(id.to_str().unwrap(), &*h.id);
            }
            vectord_hits_free(hits);
        }
    }

    // The machine is shared, so load drifts during a run: the two sides are
    // interleaved in chunks of CHUNK queries (alternating which goes first)
    // and each side's time is summed over the run.
    let mut sink = 0usize;
    let mut rust_chunk = |qs: &[f32]| {
        let t = Instant::now();
        for q in qs.chunks_exact(dim) {
            let hits = rust.search(q, K, None).unwrap();
            sink += hits.len();
        }
        t.elapsed().as_secs_f64()
    };
    let mut abi_sink = 0usize;
    let mut abi_chunk = |qs: &[f32]| {
        let t = Instant::now();
        for q in qs.chunks_exact(dim) {
            let mut hits: *mut vectord_hits = std::ptr::null_mut();
            let st = unsafe { vectord_index_search(handle, q.as_ptr(), K, &mut hits, &mut err) };
            if st != vectord_status::Ok {
                check(st, err, "search");
            }
            unsafe {
                abi_sink += vectord_hits_len(hits);
                vectord_hits_free(hits);
            }
        }
        t.elapsed().as_secs_f64()
    };
    let mut best_rust = f64::INFINITY;
    let mut best_abi = f64::INFINITY;
    for run in 0..RUNS {
        let (mut t_rust, mut t_abi) = (0.0, 0.0);
        for (c, qs) in queries.chunks(CHUNK * dim).enumerate() {
            if (run + c) % 2 == 0 {
                t_rust += rust_chunk(qs);
                t_abi += abi_chunk(qs);
            } else {
                t_abi += abi_chunk(qs);
                t_rust += rust_chunk(qs);
            }
        }
        best_rust = best_rust.min(t_rust);
        best_abi = best_abi.min(t_abi);
    }
    let sink = sink + abi_sink;
    assert_eq!(sink, 2 * RUNS * nq * K);
    unsafe { vectord_index_free(handle) };

    let qps_rust = nq as f64 / best_rust;
    let qps_abi = nq as f64 / best_abi;
    let overhead = (best_abi / best_rust - 1.0) * 100.0;
    println!("k={K}, single thread, best of {RUNS} runs over {nq} queries");
    println!("rust API: {qps_rust:>10.0} QPS");
    println!("C ABI:    {qps_abi:>10.0} QPS");
    println!("ABI overhead: {overhead:+.2}%");
}
