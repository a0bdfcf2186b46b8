//! Engine benchmark: vectord's native HNSW against hnsw_rs 0.3.4 on TEXMEX
//! fvecs/ivecs files (see docs/benchmarks.md).
//!
//!     cargo run --release -p vectord-bench -- --base B.fvecs --query Q.fvecs \
//!         --gt GT.ivecs --metric cosine|l2 --m 16 --ef-construction 200 \
//!         --threads 2 [--engine vectord|vectord-int8|hnsw_rs|all] [--json OUT]
//!
//! With `--engine all` (the default) the bench re-executes itself once per
//! engine, so each engine's peak RSS is its own process's.

use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use serde_json::{json, Value};

/// Kept equal to EFS in bench/peers_bench.py: bench/report.py interpolates QPS at
/// recall 0.95 between neighbouring points, so the sweep is dense where the
/// usual crossing lies (ef 16..64).
const EFS: [usize; 10] = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256];
const K: usize = 10;
const TARGET_RECALL: f64 = 0.95;
const ENGINES: [&str; 3] = ["vectord", "vectord-int8", "hnsw_rs"];
/// Marks the one line of a child's stdout that carries its results.
const RESULT_TAG: &str = "@@RESULT ";

#[derive(Clone, Debug)]
struct Args {
    base: String,
    query: String,
    gt: String,
    metric: String,
    m: usize,
    ef_construction: usize,
    threads: usize,
    engine: String,
    json: Option<String>,
    /// The core the searches run on (default: the last one allowed).
    pin_core: Option<usize>,
    /// The ef sweep (default EFS); a shorter list is for measuring one
    /// change to the engine quickly, not for the report.
    efs: Vec<usize>,
    /// Timed passes over the queries per ef; the best is kept.
    reps: usize,
}

const USAGE: &str = "usage: vectord-bench --base B.fvecs --query Q.fvecs --gt GT.ivecs \
--metric cosine|l2 [--m 16] [--ef-construction 200] [--threads 2] \
[--engine vectord|vectord-int8|hnsw_rs|all] [--pin-core N] [--json OUT] [--efs 16,32,...] [--reps 3]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        base: String::new(),
        query: String::new(),
        gt: String::new(),
        metric: String::new(),
        m: 16,
        ef_construction: 200,
        threads: 2,
        engine: "all".into(),
        json: None,
        pin_core: None,
        efs: EFS.to_vec(),
        reps: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let val = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{flag}: {v:?} is not a positive integer"))
        };
        match flag.as_str() {
            "--base" => a.base = val,
            "--query" => a.query = val,
            "--gt" => a.gt = val,
            "--metric" => a.metric = val,
            "--m" => a.m = num(&val)?,
            "--ef-construction" => a.ef_construction = num(&val)?,
            "--threads" => a.threads = num(&val)?,
            "--engine" => a.engine = val,
            "--json" => a.json = Some(val),
            "--reps" => a.reps = num(&val)?,
            "--efs" => {
                a.efs = val
                    .split(',')
                    .map(|v| num(v.trim()))
                    .collect::<Result<_, _>>()?
            }
            "--pin-core" => {
                a.pin_core = Some(
                    val.parse()
                        .map_err(|_| format!("--pin-core: {val:?} is not a core number"))?,
                )
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    for (name, v) in [("--base", &a.base), ("--query", &a.query), ("--gt", &a.gt)] {
        if v.is_empty() {
            return Err(format!("{name} is required\n{USAGE}"));
        }
    }
    if a.metric != "cosine" && a.metric != "l2" {
        return Err(format!(
            "--metric must be cosine or l2, got {:?}\n{USAGE}",
            a.metric
        ));
    }
    if a.engine != "all" && !ENGINES.contains(&a.engine.as_str()) {
        return Err(format!(
            "--engine must be vectord, vectord-int8, hnsw_rs or all, got {:?}",
            a.engine
        ));
    }
    Ok(a)
}

/// A TEXMEX file: `rows` rows of `dim` 4-byte values each.
struct Vecs<T> {
    rows: usize,
    dim: usize,
    data: Vec<T>,
}

/// Reads an fvecs/ivecs file, checking that every row has the first row's
/// length and that the size is a whole number of rows.
fn read_vecs<T>(path: &str, conv: fn([u8; 4]) -> T) -> Result<Vecs<T>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() < 4 {
        return Err(format!("{path}: {} bytes, not even one row", bytes.len()));
    }
    let dim = i32::from_le_bytes(bytes[0..4].try_into().unwrap());
    if dim <= 0 || dim > 1 << 20 {
        return Err(format!("{path}: first row has length {dim}"));
    }
    let dim = dim as usize;
    let row = 4 * (dim + 1);
    if bytes.len() % row != 0 {
        return Err(format!(
            "{path}: size {} is not a multiple of the row size {row} (dim {dim})",
            bytes.len()
        ));
    }
    let rows = bytes.len() / row;
    let mut data = Vec::with_capacity(rows * dim);
    for (r, chunk) in bytes.chunks_exact(row).enumerate() {
        let d = i32::from_le_bytes(chunk[0..4].try_into().unwrap());
        if d as usize != dim || d < 0 {
            return Err(format!("{path}: row {r} has length {d}, row 0 has {dim}"));
        }
        data.extend(
            chunk[4..]
                .chunks_exact(4)
                .map(|w| conv(w.try_into().unwrap())),
        );
    }
    Ok(Vecs { rows, dim, data })
}

struct Data {
    base: Vecs<f32>,
    query: Vecs<f32>,
    /// The first K ground-truth ids of each query.
    gt: Vec<Vec<u32>>,
}

fn load(a: &Args) -> Result<Data, String> {
    let base = read_vecs(&a.base, f32::from_le_bytes)?;
    let query = read_vecs(&a.query, f32::from_le_bytes)?;
    let gt = read_vecs(&a.gt, i32::from_le_bytes)?;
    if query.dim != base.dim {
        return Err(format!(
            "{}: dim {} but {} has dim {}",
            a.query, query.dim, a.base, base.dim
        ));
    }
    if gt.rows != query.rows {
        return Err(format!(
            "{}: {} rows but {} has {} queries",
            a.gt, gt.rows, a.query, query.rows
        ));
    }
    if gt.dim < K {
        return Err(format!(
            "{}: {} ids per query, recall@{K} needs at least {K}",
            a.gt, gt.dim
        ));
    }
    if let Some(i) = base.data.iter().position(|x| !x.is_finite()) {
        return Err(format!("{}: component {i} is {}", a.base, base.data[i]));
    }
    let mut ids = Vec::with_capacity(gt.rows);
    for (q, row) in gt.data.chunks_exact(gt.dim).enumerate() {
        let mut r = Vec::with_capacity(K);
        for &id in &row[..K] {
            if id < 0 || id as usize >= base.rows {
                return Err(format!(
                    "{}: query {q} names id {id}, the base has {} rows",
                    a.gt, base.rows
                ));
            }
            r.push(id as u32);
        }
        ids.push(r);
    }
    Ok(Data {
        base,
        query,
        gt: ids,
    })
}

/// A `/proc/self/status` field in bytes (VmRSS, VmHWM), 0 if unavailable.
fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time of this thread or process, in seconds. Under a shared, loaded
/// machine this is steadier than wall time: it leaves out the time the
/// process waited for a core.
fn cpu_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// What an engine has to offer the measurement loop.
trait Engine {
    /// Inserts all base vectors with `threads` threads.
    fn build(&mut self, base: &Vecs<f32>, threads: usize);
    /// The ids of the k nearest to `q`, one thread.
    fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<u32>;
    /// The engine's own idea of its size, if it has one.
    fn memory_bytes(&self) -> Option<usize> {
        None
    }
    fn note(&self) -> String;
}

struct Vectord {
    index: vectord::index::Index,
    /// Slot id strings, kept so the build is not charged for formatting.
    names: Vec<String>,
}

impl Engine for Vectord {
    fn build(&mut self, base: &Vecs<f32>, threads: usize) {
        self.index.set_insert_threads(threads);
        let ids: Vec<&str> = self.names.iter().map(|s| s.as_str()).collect();
        self.index
            .add(&ids, &base.data, None)
            .expect("vectord add failed");
    }

    fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<u32> {
        self.index
            .search(q, k, Some(ef as u32))
            .expect("vectord search failed")
            .iter()
            .map(|h| h.id.parse::<u32>().expect("numeric id"))
            .collect()
    }

    fn memory_bytes(&self) -> Option<usize> {
        Some(self.index.memory_bytes())
    }

    fn note(&self) -> String {
        match self.index.params().quantization {
            vectord::Quantization::Int8 => format!(
                "vectord native HNSW, int8 walk + f32 re-rank (int8 kernel {}, f32 kernel {})",
                vectord::hnsw::quant::ip_kernel_name(),
                vectord::hnsw::distance::kernel_name()
            ),
            _ => format!(
                "vectord native HNSW (SIMD kernel {})",
                vectord::hnsw::distance::kernel_name()
            ),
        }
    }
}

enum HnswRs {
    Cosine(hnsw_rs::hnsw::Hnsw<'static, f32, hnsw_rs::prelude::DistCosine>),
    L2(hnsw_rs::hnsw::Hnsw<'static, f32, hnsw_rs::prelude::DistL2>),
}

impl Engine for HnswRs {
    fn build(&mut self, base: &Vecs<f32>, _threads: usize) {
        // parallel_insert_slice runs on rayon's global pool, whose size
        // RAYON_NUM_THREADS fixed before the first use (see run_engine).
        let items: Vec<(&[f32], usize)> = base.data.chunks_exact(base.dim).zip(0..).collect();
        match self {
            HnswRs::Cosine(h) => h.parallel_insert_slice(&items),
            HnswRs::L2(h) => h.parallel_insert_slice(&items),
        }
    }

    fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<u32> {
        let found = match self {
            HnswRs::Cosine(h) => h.search(q, k, ef),
            HnswRs::L2(h) => h.search(q, k, ef),
        };
        found.iter().map(|n| n.d_id as u32).collect()
    }

    fn note(&self) -> String {
        let dist = match self {
            HnswRs::Cosine(_) => "DistCosine",
            HnswRs::L2(_) => "DistL2",
        };
        format!(
            "hnsw_rs 0.3.4, {dist}, features simdeez_f (anndists AVX2 kernels; \
             DistCosine has no SIMD path), rayon threads {}",
            std::env::var("RAYON_NUM_THREADS").unwrap_or_default()
        )
    }
}

/// Pins the calling thread to one core (`want`, or the last core it may use)
/// and returns that core.
fn pin_core(want: Option<usize>) -> Result<usize, String> {
    // SAFETY: cpu_set_t is plain data; the libc calls get valid pointers to
    // one set of the size they are told.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut set) != 0 {
            return Err(format!(
                "sched_getaffinity: {}",
                std::io::Error::last_os_error()
            ));
        }
        let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        let core = match want {
            Some(c) if allowed.contains(&c) => c,
            Some(c) => return Err(format!("--pin-core {c}: allowed cores are {allowed:?}")),
            None => *allowed.last().ok_or("no core allowed")?,
        };
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, size, &set) != 0 {
            return Err(format!(
                "sched_setaffinity: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(core)
    }
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Builds one engine and measures it; prints its table and returns its results.
fn run_engine(a: &Args, name: &str) -> Result<Value, String> {
    if name == "hnsw_rs" {
        // Fairness: rayon's global pool must have --threads workers. Set
        // before anything touches rayon (this process is single-threaded).
        std::env::set_var("RAYON_NUM_THREADS", a.threads.to_string());
    }
    let data = load(a)?;
    let (n, dim) = (data.base.rows, data.base.dim);
    let mut engine: Box<dyn Engine> = match name {
        "vectord" | "vectord-int8" => {
            let metric = if a.metric == "cosine" {
                vectord::hnsw::Metric::Cosine
            } else {
                vectord::hnsw::Metric::L2
            };
            let mut p = vectord::index::IndexParams::new("bench", dim as u32, metric);
            p.m = a.m as u32;
            p.ef_construction = a.ef_construction as u32;
            if name == "vectord-int8" {
                p.quantization = vectord::Quantization::Int8;
            }
            Box::new(Vectord {
                index: vectord::index::Index::new(p).map_err(|e| e.to_string())?,
                names: (0..n).map(|i| i.to_string()).collect(),
            })
        }
        "hnsw_rs" => {
            let (m, efc) = (a.m, a.ef_construction);
            Box::new(if a.metric == "cosine" {
                HnswRs::Cosine(hnsw_rs::hnsw::Hnsw::new(
                    m,
                    n,
                    16,
                    efc,
                    hnsw_rs::prelude::DistCosine {},
                ))
            } else {
                HnswRs::L2(hnsw_rs::hnsw::Hnsw::new(
                    m,
                    n,
                    16,
                    efc,
                    hnsw_rs::prelude::DistL2 {},
                ))
            })
        }
        _ => unreachable!(),
    };
    println!("== {name}: {}", engine.note());
    println!(
        "   data: {n} x {dim} base, {} queries, metric {}, m {}, ef_construction {}, threads {}",
        data.query.rows, a.metric, a.m, a.ef_construction, a.threads
    );
    let rss0 = proc_status_bytes("VmRSS");
    let t = Instant::now();
    let cpu0 = cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID);
    engine.build(&data.base, a.threads);
    let build_s = t.elapsed().as_secs_f64();
    let build_cpu_s = cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    let rss1 = proc_status_bytes("VmRSS");
    let growth = rss1.saturating_sub(rss0);
    let own = engine.memory_bytes();
    println!(
        "   build: {build_s:.2} s with {} threads ({build_cpu_s:.2} s CPU)",
        a.threads
    );
    println!(
        "   memory: RSS growth over the load {:.1} MB = {:.0} B/vector{}",
        mb(growth),
        growth as f64 / n as f64,
        match own {
            Some(b) => format!(
                "; memory_bytes() {:.1} MB = {:.0} B/vector",
                mb(b as u64),
                b as f64 / n as f64
            ),
            None => String::new(),
        }
    );

    // After the build (which uses --threads cores): the searches run on this
    // thread only, so pinning it pins them.
    let core = pin_core(a.pin_core)?;
    println!("   search: one thread pinned to core {core}");
    println!(
        "   {:>5} {:>10} {:>10} {:>10}",
        "ef", "QPS(1t)", "recall@10", "QPS(cpu)"
    );
    let queries: Vec<&[f32]> = data.query.data.chunks_exact(dim).collect();
    let mut rows = Vec::new();
    for &ef in &a.efs {
        let mut best = f64::INFINITY;
        let mut best_cpu = f64::INFINITY;
        let mut found = Vec::new();
        for _ in 0..a.reps {
            let t = Instant::now();
            let c = cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID);
            found = queries.iter().map(|q| engine.search(q, K, ef)).collect();
            best_cpu = best_cpu.min(cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID) - c);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let qps = queries.len() as f64 / best;
        let qps_cpu = queries.len() as f64 / best_cpu;
        let hits: usize = found
            .iter()
            .zip(&data.gt)
            .map(|(f, g)| f.iter().filter(|id| g.contains(id)).count())
            .sum();
        let recall = hits as f64 / (K * queries.len()) as f64;
        println!("   {ef:>5} {qps:>10.0} {recall:>10.4} {qps_cpu:>10.0}");
        rows.push(json!({"ef": ef, "qps": qps, "recall": recall, "qps_cpu": qps_cpu}));
    }
    let peak = proc_status_bytes("VmHWM");
    println!("   peak RSS (VmHWM): {:.1} MB", mb(peak));
    Ok(json!({
        "engine": name,
        "note": engine.note(),
        "n": n,
        "dim": dim,
        "nq": queries.len(),
        "threads": a.threads,
        "pin_core": core,
        "build_s": build_s,
        "build_cpu_s": build_cpu_s,
        "peak_rss_bytes": peak,
        "rss_growth_bytes": growth,
        "bytes_per_vector_rss": growth as f64 / n as f64,
        "memory_bytes": own,
        "bytes_per_vector_own": own.map(|b| b as f64 / n as f64),
        "rows": rows,
    }))
}

/// The first row reaching the target recall, if any.
fn first_at_target(r: &Value) -> Option<&Value> {
    r["rows"]
        .as_array()?
        .iter()
        .find(|row| row["recall"].as_f64().unwrap_or(0.0) >= TARGET_RECALL)
}

fn summary_line(r: &Value) -> String {
    let name = r["engine"].as_str().unwrap_or("?");
    match first_at_target(r) {
        Some(row) => format!(
            "{name:>8}: first ef with recall@10 >= {TARGET_RECALL}: {} (recall {:.4}, {:.0} QPS); \
             build {:.2} s, peak RSS {:.1} MB",
            row["ef"],
            row["recall"].as_f64().unwrap_or(0.0),
            row["qps"].as_f64().unwrap_or(0.0),
            r["build_s"].as_f64().unwrap_or(0.0),
            mb(r["peak_rss_bytes"].as_u64().unwrap_or(0)),
        ),
        None => format!(
            "{name:>8}: recall@10 >= {TARGET_RECALL} not reached up to ef {}",
            EFS[EFS.len() - 1]
        ),
    }
}

/// Runs one engine in a child process of this executable and collects its
/// result line.
fn run_child(a: &Args, name: &str) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "--base",
        &a.base,
        "--query",
        &a.query,
        "--gt",
        &a.gt,
        "--metric",
        &a.metric,
        "--m",
        &a.m.to_string(),
        "--ef-construction",
        &a.ef_construction.to_string(),
        "--threads",
        &a.threads.to_string(),
        "--engine",
        name,
        "--reps",
        &a.reps.to_string(),
        "--efs",
        &a.efs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(","),
    ])
    .args(
        a.pin_core
            .map(|c| ["--pin-core".to_string(), c.to_string()])
            .into_iter()
            .flatten(),
    )
    .env("VECTORD_BENCH_CHILD", "1")
    .env("RAYON_NUM_THREADS", a.threads.to_string())
    .stdout(Stdio::piped());
    let out = cmd
        .output()
        .map_err(|e| format!("running the {name} child: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut result = None;
    let mut stdout = std::io::stdout().lock();
    for line in text.lines() {
        match line.strip_prefix(RESULT_TAG) {
            Some(j) => result = serde_json::from_str::<Value>(j).ok(),
            None => {
                let _ = writeln!(stdout, "{line}");
            }
        }
    }
    if !out.status.success() {
        return Err(format!("the {name} child failed ({})", out.status));
    }
    result.ok_or_else(|| format!("the {name} child printed no result"))
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--print-kernel") {
        println!("{}", vectord::hnsw::distance::kernel_name());
        return ExitCode::SUCCESS;
    }
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let child = std::env::var_os("VECTORD_BENCH_CHILD").is_some();
    if child && a.engine != "all" {
        return match run_engine(&a, &a.engine) {
            Ok(r) => {
                println!("{RESULT_TAG}{r}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Validate the files once up front so a bad path fails fast and clearly.
    match load(&a) {
        Ok(d) => println!(
            "vectord-bench: {} ({} x {}), {} queries, gt {}; vectord SIMD kernel: {}",
            a.base,
            d.base.rows,
            d.base.dim,
            d.query.rows,
            a.gt,
            vectord::hnsw::distance::kernel_name()
        ),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let names: Vec<&str> = if a.engine == "all" {
        ENGINES.to_vec()
    } else {
        vec![a.engine.as_str()]
    };
    let mut results = Vec::new();
    for name in names {
        match run_child(&a, name) {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("== summary ({})", a.base);
    for r in &results {
        println!("{}", summary_line(r));
    }
    if let Some(path) = &a.json {
        let doc = json!({
            "base": a.base,
            "query": a.query,
            "gt": a.gt,
            "metric": a.metric,
            "m": a.m,
            "ef_construction": a.ef_construction,
            "threads": a.threads,
            "kernel": vectord::hnsw::distance::kernel_name(),
            "engines": results,
        });
        if let Err(e) = std::fs::write(path, format!("{doc:#}\n")) {
            eprintln!("error: {path}: {e}");
            return ExitCode::FAILURE;
        }
        println!("wrote {path}");
    }
    ExitCode::SUCCESS
}
