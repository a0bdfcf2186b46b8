//! f32 vs int8 search on wordnet-minilm-30k (cosine): recall@10 against the
//! exact ground truth, single-thread QPS and index memory, both indexes in
//! one process, measured interleaved (the machine is shared and noisy).
//!
//!     cargo run --release --example quant_bench
//!
//! DATASET_DIR (default ../shared/datasets/wordnet-minilm-30k, relative to
//! the repository root) holds base.fvecs, query.fvecs, groundtruth.ivecs.
//! VECTORD_KERNEL=scalar|avx2|avxvnni|avx512 forces the int8 kernel;
//! ROUNDS (default 3) is how often each measurement repeats (best kept).
//! Both indexes are built on one thread each with the same seed, so their
//! graphs are identical and only the search walk differs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use vectord::hnsw::{distance, quant};
use vectord::{Index, IndexParams, Metric, Quantization};

const K: usize = 10;

fn read_vecs(path: &Path) -> (usize, Vec<[u8; 4]>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let dim = i32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let row = 4 + 4 * dim;
    assert_eq!(bytes.len() % row, 0, "{}: bad vecs file", path.display());
    let mut out = Vec::with_capacity(bytes.len() / row * dim);
    for chunk in bytes.chunks_exact(row) {
        out.extend(
            chunk[4..]
                .chunks_exact(4)
                .map(|b| <[u8; 4]>::try_from(b).unwrap()),
        );
    }
    (dim, out)
}

fn fvecs(path: &Path) -> (usize, Vec<f32>) {
    let (d, v) = read_vecs(path);
    (d, v.into_iter().map(f32::from_le_bytes).collect())
}

fn build(q: Quantization, dim: usize, base: &[f32], ids: &[&str]) -> Index {
    let mut p = IndexParams::new("wordnet", dim as u32, Metric::Cosine);
    p.quantization = q;
    let idx = Index::new(p).unwrap();
    idx.set_insert_threads(1);
    idx.add(ids, base, None).unwrap();
    idx
}

fn main() {
    let dir = std::env::var_os("DATASET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/wordnet-minilm-30k")
        });
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let (dim, base) = fvecs(&dir.join("base.fvecs"));
    let (_, queries) = fvecs(&dir.join("query.fvecs"));
    let (gk, gt) = read_vecs(&dir.join("groundtruth.ivecs"));
    let gt: Vec<u32> = gt.into_iter().map(u32::from_le_bytes).collect();
    let n = base.len() / dim;
    let nq = queries.len() / dim;
    let names: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let ids: Vec<&str> = names.iter().map(String::as_str).collect();
    eprintln!(
        "{n} x {dim}, {nq} queries; f32 kernel {}, int8 kernel {}",
        distance::kernel_name(),
        quant::ip_kernel_name()
    );
    let t = Instant::now();
    let (f, q) = vectord::parallel::join(
        || build(Quantization::None, dim, &base, &ids),
        || build(Quantization::Int8, dim, &base, &ids),
    );
    eprintln!("built both in {:.1} s", t.elapsed().as_secs_f64());
    let (mf, mq) = (f.memory_bytes(), q.memory_bytes());
    println!(
        "memory: f32 {:.1} MiB, int8 {:.1} MiB ({:.3}x)",
        mf as f64 / (1 << 20) as f64,
        mq as f64 / (1 << 20) as f64,
        mq as f64 / mf as f64
    );
    let run = |idx: &Index, ef: u32| -> (f64, f64) {
        let t = Instant::now();
        let mut hit = 0;
        for (i, qv) in queries.chunks_exact(dim).enumerate() {
            let hits = idx.search(qv, K, Some(ef)).unwrap();
            let truth = &gt[i * gk..i * gk + K];
            hit += hits
                .iter()
                .filter(|h| truth.contains(&h.id.parse::<u32>().unwrap()))
                .count();
        }
        let secs = t.elapsed().as_secs_f64();
        (hit as f64 / (nq * K) as f64, nq as f64 / secs)
    };
    println!("ef   recall f32  recall int8  QPS f32  QPS int8  speedup");
    for ef in [10u32, 16, 24, 32, 48, 64, 96, 128] {
        let (mut rf, mut rq, mut qf, mut qq) = (0.0, 0.0, 0.0f64, 0.0f64);
        for _ in 0..rounds {
            let a = run(&f, ef);
            let b = run(&q, ef);
            rf = a.0;
            rq = b.0;
            qf = qf.max(a.1);
            qq = qq.max(b.1);
        }
        println!(
            "{ef:<4} {rf:<11.4} {rq:<12.4} {qf:<8.0} {qq:<9.0} {:.2}x",
            qq / qf
        );
    }
}
