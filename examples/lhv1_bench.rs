//! LHV1 encode/decode throughput.
//!
//! ```text
//! cargo run --release --example lhv1_bench -- [--real PATH] [--synth-n N]
//!     [--synth-dim D] [--efc-real E] [--efc-synth E] [--reps R]
//!     [--no-real] [--no-synth]
//! ```
//!
//! (a) the real 30,000 x 384 cosine index from `--real` (TEXMEX fvecs;
//! default `../shared/datasets/wordnet-minilm-30k/base.fvecs`, relative to
//! the repository root), (b) a synthetic clustered `--synth-n` x
//! `--synth-dim` l2 index (default 1,000,000 x 128). Both are built with
//! m=16; ef_construction defaults to 100 (real) and 40 (synthetic) to keep
//! the build short: the codec's speed depends on the sizes of the arrays,
//! not on the graph's quality. Encode and decode are timed best of `--reps`
//! (default 5); throughput is blob bytes per second (1 MB = 10^6 bytes),
//! shown by wall clock and by the thread's CPU time (on a shared machine the
//! wall clock includes time spent waiting for a core).

use std::time::{Duration, Instant};

use vectord::{lhv1, Index, IndexParams, Metric};

struct Args {
    real: String,
    synth_n: usize,
    synth_dim: usize,
    efc_real: u32,
    efc_synth: u32,
    reps: usize,
    no_real: bool,
    no_synth: bool,
}

fn args() -> Args {
    let mut a = Args {
        real: "../shared/datasets/wordnet-minilm-30k/base.fvecs".into(),
        synth_n: 1_000_000,
        synth_dim: 128,
        efc_real: 100,
        efc_synth: 40,
        reps: 5,
        no_real: false,
        no_synth: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--real" => a.real = val(),
            "--synth-n" => a.synth_n = val().parse().expect("--synth-n"),
            "--synth-dim" => a.synth_dim = val().parse().expect("--synth-dim"),
            "--efc-real" => a.efc_real = val().parse().expect("--efc-real"),
            "--efc-synth" => a.efc_synth = val().parse().expect("--efc-synth"),
            "--reps" => a.reps = val().parse().expect("--reps"),
            "--no-real" => a.no_real = true,
            "--no-synth" => a.no_synth = true,
            "-h" | "--help" => {
                println!("see the header of examples/lhv1_bench.rs");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// TEXMEX fvecs: per row a little-endian i32 dim, then dim f32.
fn read_fvecs(path: &str) -> (Vec<f32>, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let dim = i32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let row = 4 + 4 * dim;
    assert!(
        dim > 0 && bytes.len().is_multiple_of(row),
        "{path}: not fvecs"
    );
    let mut out = Vec::with_capacity(bytes.len() / row * dim);
    for r in bytes.chunks_exact(row) {
        assert_eq!(i32::from_le_bytes(r[..4].try_into().unwrap()) as usize, dim);
        out.extend(
            r[4..]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap())),
        );
    }
    (out, dim)
}

/// splitmix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// `n` points around 256 random centres.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng(seed);
    let k = 256;
    let centres: Vec<f32> = (0..k * dim).map(|_| r.f32()).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = (r.next() % k as u64) as usize;
        out.extend((0..dim).map(|j| centres[c * dim + j] + 0.3 * r.f32()));
    }
    out
}

fn build(name: &str, data: &[f32], dim: usize, metric: Metric, efc: u32) -> Index {
    let n = data.len() / dim;
    let mut p = IndexParams::new(name, dim as u32, metric);
    p.ef_construction = efc;
    let idx = Index::new(p).unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("{name}-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
    let t = Instant::now();
    // Batches, so progress shows on a slow machine.
    let batch = 100_000;
    for (i, (ids, rows)) in refs.chunks(batch).zip(data.chunks(batch * dim)).enumerate() {
        idx.add(ids, rows, None).unwrap();
        if n > batch {
            eprintln!(
                "  {name}: {} / {n} inserted ({:.0} s)",
                ((i + 1) * batch).min(n),
                t.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "{name}: built {n} x {dim} {} (m=16, ef_construction={efc}) in {:.1} s",
        metric.as_str(),
        t.elapsed().as_secs_f64()
    );
    idx
}

/// CPU time of the calling thread (user + system). On a shared machine the
/// wall clock also counts time spent waiting for a core; this does not.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Best wall time and best thread-CPU time over `reps` runs.
fn best<T>(reps: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut wall = Duration::MAX;
    let mut cpu = Duration::MAX;
    let mut last = None;
    for _ in 0..reps {
        drop(last.take());
        let (t, c) = (Instant::now(), thread_cpu());
        let out = f();
        cpu = cpu.min(thread_cpu().saturating_sub(c));
        wall = wall.min(t.elapsed());
        last = Some(out);
    }
    (wall, cpu, last.unwrap())
}

fn run(name: &str, idx: &Index, reps: usize) {
    let n = idx.len();
    let dim = idx.dim() as usize;
    let (enc, enc_cpu, blob) = best(reps, || lhv1::encode(idx).unwrap());
    let (dec, dec_cpu, back) = best(reps, || lhv1::decode(&blob).unwrap());
    assert_eq!(back.len(), n);
    assert_eq!(lhv1::encode(&back).unwrap(), blob, "round trip is exact");
    let raw = n * dim * 4;
    let mb = blob.len() as f64 / 1e6;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {name} | {n} x {dim} | {:.1} MB | {:.3} | {:.1} ms / {:.1} ms | {:.0} / {:.0} MB/s | {:.1} ms / {:.1} ms | {:.0} / {:.0} MB/s |",
        mb,
        blob.len() as f64 / raw as f64,
        ms(enc),
        ms(enc_cpu),
        mb / enc.as_secs_f64(),
        mb / enc_cpu.as_secs_f64(),
        ms(dec),
        ms(dec_cpu),
        mb / dec.as_secs_f64(),
        mb / dec_cpu.as_secs_f64(),
    );
}

fn main() {
    let a = args();
    let mut rows: Vec<(String, Index)> = Vec::new();
    if !a.no_real {
        let (data, dim) = read_fvecs(&a.real);
        rows.push((
            "wordnet-minilm-30k".into(),
            build("real", &data, dim, Metric::Cosine, a.efc_real),
        ));
    }
    if !a.no_synth {
        let data = clustered(a.synth_n, a.synth_dim, 42);
        rows.push((
            format!("synthetic-l2-{}", a.synth_n),
            build("synth", &data, a.synth_dim, Metric::L2, a.efc_synth),
        ));
    }
    println!("| index | n x dim | blob | blob / raw vectors | encode wall / cpu | encode MB/s wall / cpu | decode wall / cpu | decode MB/s wall / cpu |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, idx) in &rows {
        run(name, idx, a.reps);
    }
}
