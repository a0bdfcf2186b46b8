//! `vectord`: look into, check and manage the indexes of a store (a
//! directory, `http://` storaged, or any URL the library opens) and plain
//! LHV1 files, without writing a program.
//!
//! Exit codes: 0 ok; 1 an object is damaged, something was not found, or the
//! store failed; 2 the command line is wrong.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use vectord::lhv1::{self, Info};
use vectord::registry::{Options, SaveMode};
use vectord::storeclient::{open_store, Store};
use vectord::{Error, Index, IndexParams, Registry};

#[derive(Parser)]
#[command(
    name = "vectord",
    version,
    about = "Inspect, verify and manage vectord indexes in a store or in LHV1 files",
    after_help = "STORE is a directory, file:///path, or http(s)://host:port[/base] (storaged).\n\
                  Exit codes: 0 ok; 1 damaged object, not found or storage failure; 2 usage error."
)]
struct Cli {
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Registry options JSON (as for vectord_registry_open), e.g. '{"prefix":"_vectors/","timeout_ms":5000}'.
    #[arg(long, global = true, value_name = "JSON")]
    options: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every index in a store: name, items, dim, metric, m, quantization, object size.
    Ls { store: String },
    /// Envelope, parameters, counts, graph section size and checksum status of one object.
    Inspect {
        /// An LHV1 file, or a store (then NAME is required).
        target: String,
        name: Option<String>,
    },
    /// Decode every object; OK or the exact error per object. Exits 1 if any is damaged.
    Verify {
        #[arg(required = true, value_name = "STORE|FILE")]
        targets: Vec<String>,
    },
    /// Write the LHV1 object of index NAME to FILE (checked before it is written).
    Export {
        store: String,
        name: String,
        file: String,
    },
    /// Add the index in an LHV1 FILE to a store (fails if the name is taken).
    Import {
        store: String,
        file: String,
        /// Store it under this name instead of the one in the file.
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete index NAME from a store (also removes an object that fails to load).
    Rm { store: String, name: String },
    /// k nearest neighbours of a vector in index NAME.
    Search {
        store: String,
        name: String,
        /// The query as a JSON array of numbers, e.g. '[0.1, 0.2, 0.3]'.
        #[arg(long, value_name = "JSON")]
        vector: String,
        #[arg(short, default_value_t = 10)]
        k: usize,
        /// Beam width (default: the index's ef_search).
        #[arg(long)]
        ef: Option<u32>,
    },
}

/// A failure: the message (naming the object and the reason) and the exit code.
struct Fail {
    code: u8,
    msg: String,
}

fn fail(code: u8, msg: impl Into<String>) -> Fail {
    Fail {
        code,
        msg: msg.into(),
    }
}

/// Library errors: "not found" and damage are 1, like every runtime failure;
/// a bad argument the user typed (a vector of the wrong length...) is 2.
fn lib_fail(context: &str, e: Error) -> Fail {
    let code = match e {
        Error::InvalidArgument(_) | Error::DimensionMismatch(_) | Error::InvalidVector(_) => 2,
        _ => 1,
    };
    fail(code, format!("{context}: {e}"))
}

type Out = Result<(Value, String, bool), Fail>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let secrets = Arc::new(Secrets::from_args());
    // The library's own warnings (an object that failed to load, ...) name
    // the store too, so they go through the same redaction.
    let for_log = secrets.clone();
    vectord::log::set_log_callback(Some(Box::new(move |level, message| {
        if level <= vectord::log::WARN {
            let tag = if level == vectord::log::ERROR {
                "error"
            } else {
                "warning"
            };
            eprintln!("vectord: {tag}: {}", for_log.redact(message));
        }
    })));
    match run(cli) {
        Ok((doc, text, ok)) => {
            let mut stdout = std::io::stdout().lock();
            let shown = if json {
                serde_json::to_string_pretty(&doc).expect("JSON values serialise") + "\n"
            } else {
                text
            };
            let _ = stdout.write_all(secrets.redact(&shown).as_bytes());
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(f) => {
            let msg = secrets.redact(&f.msg);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"error": msg, "exit_code": f.code}))
                        .expect("JSON values serialise")
                );
            }
            eprintln!("vectord: {msg}");
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Out {
    let opts = Options::from_json(cli.options.as_deref()).map_err(|e| lib_fail("--options", e))?;
    match cli.command {
        Command::Ls { store } => ls(&store, &opts),
        Command::Inspect { target, name } => inspect(&target, name.as_deref(), &opts),
        Command::Verify { targets } => verify(&targets, &opts),
        Command::Export { store, name, file } => export(&store, &name, &file, &opts),
        Command::Import { store, file, name } => import(&store, &file, name.as_deref(), opts),
        Command::Rm { store, name } => rm(&store, &name, opts),
        Command::Search {
            store,
            name,
            vector,
            k,
            ef,
        } => search(&store, &name, &vector, k, ef, opts),
    }
}

/// Passwords and tokens in store URLs (`http://user:secret@host`, `?token=`)
/// never reach the output: every URL given on the command line is shown
/// without its user-info and query.
struct Secrets {
    pairs: Vec<(String, String)>,
}

impl Secrets {
    fn from_args() -> Secrets {
        let pairs = std::env::args()
            .filter(|a| a.contains("://"))
            .filter_map(|a| {
                let r = redact_url(&a);
                (r != a).then_some((a, r))
            })
            .collect();
        Secrets { pairs }
    }

    fn redact(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (secret, shown) in &self.pairs {
            out = out.replace(secret.as_str(), shown);
            // Stores may print the URL without its query or in pieces.
            if let Some((_, rest)) = secret.split_once("://") {
                if let Some((userinfo, _)) = rest.split_once('@') {
                    if !userinfo.is_empty() && !userinfo.contains('/') {
                        out = out.replace(&format!("{userinfo}@"), "***@");
                    }
                }
            }
        }
        out
    }
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth_end, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match auth_end.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => auth_end.to_string(),
    };
    let path = match path.split_once('?') {
        Some((p, _)) => format!("{p}?***"),
        None => path.to_string(),
    };
    format!("{scheme}://{host}{path}")
}

/// The one place the quantization of an index is named.
fn quantization(params: &IndexParams) -> &'static str {
    params.quantization.as_str()
}

fn is_url(s: &str) -> bool {
    s.contains("://")
}

/// Opens a store that must already exist (a missing directory is "not
/// found", not silently created).
fn open_existing(store: &str, opts: &Options) -> Result<Box<dyn Store>, Fail> {
    if !is_url(store) && !Path::new(store).is_dir() {
        return Err(fail(1, format!("store {store:?}: no such directory")));
    }
    open_store(store, &opts.store).map_err(|e| lib_fail(&format!("store {store:?}"), e))
}

fn object_key(opts: &Options, name: &str) -> String {
    format!("{}{name}.lhv1", opts.prefix)
}

/// (index name, key) of every LHV1 object in the store.
fn list_objects(
    store: &dyn Store,
    label: &str,
    opts: &Options,
) -> Result<Vec<(String, String)>, Fail> {
    let keys = store.list(&opts.prefix).map_err(|e| {
        fail(
            1,
            format!("store {label:?}: listing {:?}: {e}", opts.prefix),
        )
    })?;
    let mut objects: Vec<(String, String)> = keys
        .into_iter()
        .filter_map(|k| {
            let name = k
                .strip_prefix(opts.prefix.as_str())?
                .strip_suffix(".lhv1")?;
            Some((name.to_string(), k.clone()))
        })
        .collect();
    // By index name: key order puts "a-b" before "a" (the ".lhv1" suffix).
    objects.sort();
    Ok(objects)
}

fn get_object(store: &dyn Store, label: &str, key: &str) -> Result<Vec<u8>, Fail> {
    store
        .get(key)
        .map_err(|e| fail(1, format!("{label}: object {key}: {e}")))
}

/// Envelope checks plus the index name the object is stored under.
fn inspect_object(blob: &[u8], stored_as: Option<&str>) -> Result<Info, Error> {
    let info = lhv1::inspect(blob)?;
    check_name(&info.params.name, stored_as)?;
    Ok(info)
}

fn check_name(holds: &str, stored_as: Option<&str>) -> Result<(), Error> {
    match stored_as {
        Some(name) if name != holds => Err(Error::Corrupt(format!(
            "the object holds index {holds:?}, not {name:?}"
        ))),
        _ => Ok(()),
    }
}

fn ls(store_url: &str, opts: &Options) -> Out {
    let store = open_existing(store_url, opts)?;
    let mut rows = Vec::new();
    let mut damaged = Vec::new();
    for (name, key) in list_objects(&*store, store_url, opts)? {
        let blob = match store.get(&key) {
            Ok(b) => b,
            Err(e) => {
                damaged.push(json!({"name": name, "key": key, "error": e.to_string()}));
                continue;
            }
        };
        match inspect_object(&blob, Some(&name)) {
            Ok(info) => rows.push(json!({
                "name": name,
                "key": key,
                "items": info.count,
                "dim": info.params.dim,
                "metric": info.params.metric.as_str(),
                "m": info.params.m,
                "quantization": quantization(&info.params),
                "size_bytes": blob.len(),
            })),
            Err(e) => damaged.push(json!({"name": name, "key": key, "error": e.to_string()})),
        }
    }
    let mut table = vec![[
        "NAME",
        "ITEMS",
        "DIM",
        "METRIC",
        "M",
        "QUANTIZATION",
        "SIZE",
    ]
    .map(String::from)
    .to_vec()];
    for r in &rows {
        table.push(vec![
            r["name"].as_str().unwrap_or_default().to_string(),
            r["items"].to_string(),
            r["dim"].to_string(),
            r["metric"].as_str().unwrap_or_default().to_string(),
            r["m"].to_string(),
            r["quantization"].as_str().unwrap_or_default().to_string(),
            human_bytes(r["size_bytes"].as_u64().unwrap_or(0)),
        ]);
    }
    let mut text = format_table(&table);
    for d in &damaged {
        text.push_str(&format!(
            "DAMAGED {}: {}\n",
            d["key"].as_str().unwrap_or_default(),
            d["error"].as_str().unwrap_or_default()
        ));
    }
    let ok = damaged.is_empty();
    Ok((
        json!({"store": store_url, "indexes": rows, "damaged": damaged}),
        text,
        ok,
    ))
}

fn format_table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The object to inspect or verify: a plain LHV1 file, or one index of a store.
fn load_target(
    target: &str,
    name: Option<&str>,
    opts: &Options,
) -> Result<(String, Vec<u8>), Fail> {
    match name {
        None => {
            if !Path::new(target).is_file() {
                return Err(fail(
                    2,
                    format!(
                        "{target:?} is not a file; to inspect an index in a store, give STORE NAME"
                    ),
                ));
            }
            let blob = std::fs::read(target).map_err(|e| fail(1, format!("{target}: {e}")))?;
            Ok((target.to_string(), blob))
        }
        Some(name) => {
            let store = open_existing(target, opts)?;
            let key = object_key(opts, name);
            let blob = get_object(&*store, target, &key)?;
            Ok((format!("{target} {key}"), blob))
        }
    }
}

fn inspect(target: &str, name: Option<&str>, opts: &Options) -> Out {
    let (label, blob) = load_target(target, name, opts)?;
    let info = inspect_object(&blob, name).map_err(|e| lib_fail(&label, e))?;
    let graph_at = lhv1::HEADER_LEN + info.envelope_len;
    let crc = vectord_crc(&blob[graph_at..]);
    let checksum_ok = crc == info.graph_crc32c;
    let decoded = if checksum_ok {
        lhv1::decode(&blob).map(|_| ()).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "graph section CRC32C is {crc:#010x}, the envelope says {:#010x}",
            info.graph_crc32c
        ))
    };
    let p = &info.params;
    let doc = json!({
        "object": label,
        "size_bytes": blob.len(),
        "envelope": {"version": info.version, "bytes": info.envelope_len},
        "params": {
            "name": p.name, "dim": p.dim, "metric": p.metric.as_str(), "m": p.m,
            "ef_construction": p.ef_construction, "ef_search": p.ef_search,
            "quantization": quantization(p),
        },
        "items": info.count,
        "items_with_metadata": info.metadata_count,
        "graph": {
            "offset": graph_at,
            "bytes": info.graph_len,
            "crc32c": format!("{:#010x}", info.graph_crc32c),
            "checksum": if checksum_ok { "ok" } else { "mismatch" },
        },
        "decode": match &decoded { Ok(()) => Value::from("ok"), Err(e) => Value::from(e.as_str()) },
    });
    let text = format!(
        "object          {label}\n\
         size            {} ({} bytes)\n\
         envelope        LHV1 version {}, {} bytes\n\
         index           {} (dim {}, metric {}, m {}, ef_construction {}, ef_search {}, quantization {})\n\
         items           {} ({} with metadata)\n\
         graph section   {} bytes at offset {graph_at}, crc32c {:#010x}: {}\n\
         decode          {}\n",
        human_bytes(blob.len() as u64),
        blob.len(),
        info.version,
        info.envelope_len,
        p.name,
        p.dim,
        p.metric.as_str(),
        p.m,
        p.ef_construction,
        p.ef_search,
        quantization(p),
        info.count,
        info.metadata_count,
        info.graph_len,
        info.graph_crc32c,
        if checksum_ok { "checksum ok" } else { "CHECKSUM MISMATCH" },
        match &decoded {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("DAMAGED: {e}"),
        },
    );
    Ok((doc, text, decoded.is_ok()))
}

fn vectord_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// A progress line on stderr, shown only on a terminal and only once the
/// work has run long enough to be worth watching.
struct Progress {
    enabled: bool,
    start: Instant,
    /// When the line was last drawn, from `start`.
    drawn: Duration,
    shown: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            start: Instant::now(),
            drawn: Duration::ZERO,
            shown: false,
        }
    }

    fn update(&mut self, done: usize, total: usize, bytes: u64) {
        let now = self.start.elapsed();
        // Redrawn at most ten times a second, and the last object always.
        if !self.enabled
            || now < Duration::from_millis(500)
            || (done < total && now < self.drawn + Duration::from_millis(100))
        {
            return;
        }
        self.drawn = now;
        const WIDTH: usize = 30;
        let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
        eprint!(
            "\r[{}{}] {done}/{total} objects, {}   ",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            human_bytes(bytes)
        );
        self.shown = true;
    }

    fn finish(&mut self) {
        if self.shown {
            eprint!("\r{}\r", " ".repeat(70));
            self.shown = false;
        }
    }
}

fn verify(targets: &[String], opts: &Options) -> Out {
    enum Source {
        File(String),
        /// (store, label, index name, key)
        Object(usize, String, String, String),
    }
    let mut stores: Vec<Box<dyn Store>> = Vec::new();
    let mut work = Vec::new();
    let mut results = Vec::new();
    let mut damaged = 0usize;
    for t in targets {
        if !is_url(t) && Path::new(t).is_file() {
            work.push(Source::File(t.clone()));
            continue;
        }
        let listed =
            open_existing(t, opts).and_then(|s| list_objects(&*s, t, opts).map(|objs| (s, objs)));
        match listed {
            Ok((s, objs)) => {
                stores.push(s);
                for (name, key) in objs {
                    let label = format!("{t} {key}");
                    work.push(Source::Object(stores.len() - 1, label, name, key));
                }
            }
            Err(f) => {
                damaged += 1;
                results.push(json!({"object": t, "ok": false, "error": f.msg}));
            }
        }
    }
    let mut progress = Progress::new();
    let mut bytes = 0u64;
    let total = work.len();
    for (i, w) in work.iter().enumerate() {
        let (label, outcome) = match w {
            Source::File(path) => (
                path.clone(),
                std::fs::read(path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        bytes += b.len() as u64;
                        lhv1::decode(&b).map_err(|e| e.to_string())
                    }),
            ),
            Source::Object(s, label, name, key) => (
                label.clone(),
                stores[*s]
                    .get(key)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        bytes += b.len() as u64;
                        lhv1::decode(&b).map_err(|e| e.to_string())
                    })
                    .and_then(|idx| {
                        check_name(idx.name(), Some(name)).map_err(|e| e.to_string())?;
                        Ok(idx)
                    }),
            ),
        };
        match outcome {
            Ok(idx) => results.push(json!({
                "object": label, "ok": true, "index": idx.name(), "items": idx.len(),
            })),
            Err(e) => {
                damaged += 1;
                results.push(json!({"object": label, "ok": false, "error": e}));
            }
        }
        progress.update(i + 1, total, bytes);
    }
    progress.finish();
    let mut text = String::new();
    for r in &results {
        let object = r["object"].as_str().unwrap_or_default();
        if r["ok"] == true {
            text.push_str(&format!(
                "OK       {object} (index {}, {} items)\n",
                r["index"].as_str().unwrap_or_default(),
                r["items"]
            ));
        } else {
            text.push_str(&format!(
                "DAMAGED  {object}: {}\n",
                r["error"].as_str().unwrap_or_default()
            ));
        }
    }
    text.push_str(&format!(
        "{} checked, {} ok, {damaged} damaged\n",
        results.len(),
        results.len() - damaged
    ));
    Ok((
        json!({"objects": results, "checked": results.len(), "damaged": damaged}),
        text,
        damaged == 0,
    ))
}

fn export(store_url: &str, name: &str, file: &str, opts: &Options) -> Out {
    let store = open_existing(store_url, opts)?;
    let key = object_key(opts, name);
    let blob = get_object(&*store, store_url, &key)?;
    let label = format!("{store_url} {key}");
    let index = lhv1::decode(&blob).map_err(|e| lib_fail(&label, e))?;
    check_name(index.name(), Some(name)).map_err(|e| lib_fail(&label, e))?;
    // Written beside the target and renamed, so FILE is never half written.
    let tmp = format!("{file}.tmp.{}", std::process::id());
    let written = std::fs::write(&tmp, &blob).and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(1, format!("writing {file}: {e}")));
    }
    Ok((
        json!({"index": name, "file": file, "items": index.len(), "size_bytes": blob.len()}),
        format!(
            "exported index {name} ({} items, {}) to {file}\n",
            index.len(),
            human_bytes(blob.len() as u64)
        ),
        true,
    ))
}

/// Opens the registry with saving left to the caller, so a failed save is
/// an error here rather than a log line.
fn open_db(store: &str, mut opts: Options) -> Result<Arc<Registry>, Fail> {
    opts.save = SaveMode::Manual;
    let s = open_store(store, &opts.store).map_err(|e| lib_fail(&format!("store {store:?}"), e))?;
    Registry::with_store(s, opts).map_err(|e| lib_fail(&format!("store {store:?}"), e))
}

fn import(store: &str, file: &str, rename: Option<&str>, opts: Options) -> Out {
    let blob = std::fs::read(file).map_err(|e| fail(1, format!("{file}: {e}")))?;
    let blob = match rename {
        None => blob,
        Some(new) => {
            let index = lhv1::decode(&blob).map_err(|e| lib_fail(file, e))?;
            let mut snap = lhv1::snapshot(&index).map_err(|e| lib_fail(file, e))?;
            snap.params.name = new.to_string();
            snap.params.validate().map_err(|e| lib_fail("--name", e))?;
            lhv1::encode_owned(snap).map_err(|e| lib_fail(file, e))?
        }
    };
    let db = open_db(store, opts)?;
    let index = db.import(&blob).map_err(|e| lib_fail(file, e))?;
    let saved = db.save(&index);
    let name = index.name().to_string();
    if let Err(e) = saved {
        // Not left half-imported: the registry forgets it again.
        let _ = db.delete(&name);
        db.close();
        return Err(lib_fail(&format!("saving index {name:?} to {store}"), e));
    }
    db.close();
    Ok((
        json!({"index": name, "items": index.len(), "store": store}),
        format!(
            "imported index {name} ({} items) from {file}\n",
            index.len()
        ),
        true,
    ))
}

fn rm(store: &str, name: &str, opts: Options) -> Out {
    if !is_url(store) && !Path::new(store).is_dir() {
        return Err(fail(1, format!("store {store:?}: no such directory")));
    }
    let key = object_key(&opts, name);
    let db = open_db(store, opts.clone())?;
    let removed = match db.delete(name) {
        Ok(()) => Ok(()),
        // An object that failed to load is not in the registry; removing it
        // is exactly what the operator needs to reuse the name.
        Err(Error::NotFound(_)) => {
            let s = open_store(store, &opts.store).map_err(|e| lib_fail(store, e))?;
            match s.get(&key) {
                Ok(_) => s
                    .delete(&key)
                    .map_err(|e| fail(1, format!("{store}: removing {key}: {e}"))),
                Err(_) => Err(fail(1, format!("{store}: no index {name:?}"))),
            }
        }
        Err(e) => Err(lib_fail(&format!("{store}: removing index {name:?}"), e)),
    };
    db.close();
    removed?;
    Ok((
        json!({"removed": name, "store": store}),
        format!("removed index {name}\n"),
        true,
    ))
}

fn search(store: &str, name: &str, vector: &str, k: usize, ef: Option<u32>, opts: Options) -> Out {
    let query: Vec<f32> = serde_json::from_str(vector)
        .map_err(|e| fail(2, format!("--vector must be a JSON array of numbers: {e}")))?;
    if !is_url(store) && !Path::new(store).is_dir() {
        return Err(fail(1, format!("store {store:?}: no such directory")));
    }
    let db = open_db(store, opts)?;
    let index: Arc<Index> = db.get(name).map_err(|e| lib_fail(store, e))?;
    let hits = index
        .search(&query, k, ef)
        .map_err(|e| lib_fail(&format!("searching index {name:?}"), e))?;
    db.close();
    let mut text = String::new();
    let mut rows = Vec::new();
    let width = hits.iter().map(|h| h.id.chars().count()).max().unwrap_or(0);
    for (i, h) in hits.iter().enumerate() {
        let metadata: Value = h
            .metadata
            .as_deref()
            .map(|m| serde_json::from_str(m).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        text.push_str(&format!(
            "{:>3}. {:<width$}  distance {:.6}{}\n",
            i + 1,
            h.id,
            h.distance,
            h.metadata
                .as_deref()
                .map(|m| format!("  {m}"))
                .unwrap_or_default()
        ));
        rows.push(json!({"id": &*h.id, "distance": h.distance, "metadata": metadata}));
    }
    Ok((json!({"index": name, "k": k, "hits": rows}), text, true))
}
