//! The `vectord` tool run as a subprocess on a directory store holding good
//! indexes and one damaged object.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use vectord::storeclient::{DirStore, StoreOptions};
use vectord::{IndexParams, Metric, Quantization, Registry};

fn vectord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vectord"))
        .args(args)
        .output()
        .expect("run vectord")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A store with `fruit` (4 items, dim 3, cosine), `points` (50 items, dim 8,
/// l2) and `bad`, whose graph section has one byte flipped after saving.
fn store(name: &str) -> PathBuf {
    let dir = fresh_dir(name);
    let url = dir.to_str().unwrap();
    let db = Registry::open(Some(url), None).unwrap();
    let fruit = db
        .create(IndexParams::new("fruit", 3, Metric::Cosine))
        .unwrap();
    fruit
        .add(
            &["apple", "banana", "cherry", "kiwi"],
            &[0.9, 0.1, 0.0, 0.1, 0.9, 0.1, 0.8, 0.0, 0.3, 0.2, 0.7, 0.6],
            Some(&[Some(r#"{"color":"red"}"#), None, None, None]),
        )
        .unwrap();
    // An int8 index, so the tools show a quantization other than none.
    let mut pp = IndexParams::new("points", 8, Metric::L2);
    pp.quantization = Quantization::Int8;
    let points = db.create(pp).unwrap();
    let ids: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let vecs: Vec<f32> = (0..50 * 8)
        .map(|i| ((i * 37) % 101) as f32 / 101.0)
        .collect();
    points.add(&ids, &vecs, None).unwrap();
    let bad = db.create(IndexParams::new("bad", 8, Metric::L2)).unwrap();
    bad.add(&ids, &vecs, None).unwrap();
    db.flush().unwrap();
    db.close();
    drop(db);
    let path = object_path(&dir, "bad");
    let mut blob = std::fs::read(&path).unwrap();
    let last = blob.len() - 3;
    blob[last] ^= 0x40;
    std::fs::write(&path, blob).unwrap();
    dir
}

fn object_path(dir: &Path, name: &str) -> PathBuf {
    DirStore::open(dir, &StoreOptions::default())
        .unwrap()
        .path_for(&format!("_vectors/{name}.lhv1"))
        .unwrap()
}

#[test]
fn verify_finds_the_damaged_object_among_good_ones() {
    let dir = store("verify");
    let d = dir.to_str().unwrap();
    let o = vectord(&["verify", d]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("OK       ") && out.contains("_vectors/fruit.lhv1"),
        "{out}"
    );
    assert!(
        out.contains("_vectors/points.lhv1 (index points, 50 items)"),
        "{out}"
    );
    let bad_line = out.lines().find(|l| l.contains("bad.lhv1")).unwrap();
    assert!(
        bad_line.starts_with("DAMAGED") && bad_line.contains("CRC32C"),
        "{bad_line}"
    );
    assert!(out.contains("3 checked, 2 ok, 1 damaged"), "{out}");
    // No progress bar when stderr is not a terminal.
    assert_eq!(stderr(&o), "");

    let j = json(&vectord(&["verify", "--json", d]));
    assert_eq!(j["damaged"], 1);
    assert_eq!(j["checked"], 3);
    let bad = j["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"].as_str().unwrap().contains("bad"))
        .unwrap();
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"].as_str().unwrap().starts_with("corrupt:"),
        "{bad}"
    );

    // Files work too, and a damaged file is found among good ones.
    let good_file = dir.join("fruit.lhv1");
    std::fs::copy(object_path(&dir, "fruit"), &good_file).unwrap();
    let o = vectord(&["verify", good_file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let bad_file = dir.join("bad.lhv1");
    std::fs::copy(object_path(&dir, "bad"), &bad_file).unwrap();
    let o = vectord(&[
        "verify",
        good_file.to_str().unwrap(),
        bad_file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));

    // Removing the damaged object (which the registry could not load) leaves a clean store.
    let o = vectord(&["rm", d, "bad"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = vectord(&["verify", d]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("2 checked, 2 ok, 0 damaged"));
}

#[test]
fn ls_lists_every_index() {
    let dir = store("ls");
    let d = dir.to_str().unwrap();
    let o = vectord(&["ls", d]);
    // The bad object's envelope is intact, so only decoding (verify) finds
    // the damage; ls reads envelopes and lists it.
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "NAME",
            "ITEMS",
            "DIM",
            "METRIC",
            "M",
            "QUANTIZATION",
            "SIZE"
        ]
    );
    // Sorted by name: bad, fruit, points.
    let fruit: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        fruit[..6],
        ["fruit", "4", "3", "cosine", "16", "none"],
        "{out}"
    );
    let points: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        points[..6],
        ["points", "50", "8", "l2", "16", "int8"],
        "{out}"
    );
    assert!(lines[1].starts_with("bad "), "{out}");
    assert_eq!(lines.len(), 4, "{out}");

    // A damaged envelope is reported by name and reason.
    let path = object_path(&dir, "points");
    let mut blob = std::fs::read(&path).unwrap();
    blob[0] = b'X';
    std::fs::write(&path, blob).unwrap();
    let o = vectord(&["ls", "--json", d]);
    assert_eq!(o.status.code(), Some(1));
    let j = json(&o);
    let names: Vec<&str> = j["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bad", "fruit"]);
    assert_eq!(j["indexes"][1]["items"], 4);
    assert_eq!(j["indexes"][1]["quantization"], "none");
    assert_eq!(
        j["indexes"][1]["size_bytes"].as_u64().unwrap(),
        std::fs::metadata(object_path(&dir, "fruit")).unwrap().len()
    );
    assert_eq!(j["damaged"][0]["name"], "points");
    assert!(j["damaged"][0]["error"].as_str().unwrap().contains("magic"));
}

#[test]
fn inspect_reports_params_counts_and_checksum() {
    let dir = store("inspect");
    let d = dir.to_str().unwrap();
    let o = vectord(&["inspect", "--json", d, "fruit"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["params"]["name"], "fruit");
    assert_eq!(j["params"]["dim"], 3);
    assert_eq!(j["params"]["metric"], "cosine");
    assert_eq!(j["params"]["ef_construction"], 200);
    assert_eq!(j["items"], 4);
    assert_eq!(j["items_with_metadata"], 1);
    assert_eq!(j["envelope"]["version"], 1);
    assert_eq!(j["graph"]["checksum"], "ok");
    assert_eq!(j["decode"], "ok");
    let size = j["size_bytes"].as_u64().unwrap();
    let parts =
        8 + j["envelope"]["bytes"].as_u64().unwrap() + j["graph"]["bytes"].as_u64().unwrap();
    assert_eq!(size, parts);

    let o = vectord(&["inspect", "--json", d, "points"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["params"]["quantization"], "int8");
    assert_eq!(j["envelope"]["version"], 2);
    let o = vectord(&["inspect", d, "points"]);
    assert!(stdout(&o).contains("quantization int8)"), "{}", stdout(&o));

    let bad = object_path(&dir, "bad");
    let o = vectord(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("CHECKSUM MISMATCH"), "{out}");
    assert!(out.contains("items           50"), "{out}");

    let o = vectord(&["inspect", d, "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("_vectors/nope.lhv1"), "{}", stderr(&o));
}

#[test]
fn export_import_search_and_rm() {
    let dir = store("roundtrip");
    let d = dir.to_str().unwrap();
    let file = dir.join("export.lhv1");
    let f = file.to_str().unwrap();
    let o = vectord(&["export", d, "points", f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(object_path(&dir, "points")).unwrap()
    );
    // A damaged index is not exported.
    let o = vectord(&["export", d, "bad", dir.join("bad-out").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("_vectors/bad.lhv1") && stderr(&o).contains("CRC32C"));
    assert!(!dir.join("bad-out").exists());

    // Importing under the same name fails; under a new name it works.
    let o = vectord(&["import", d, f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let o = vectord(&["import", d, f, "--name", "copy"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let q = "[0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.4, 0.8]";
    let a = json(&vectord(&[
        "search", "--json", d, "points", "--vector", q, "-k", "5",
    ]));
    let b = json(&vectord(&[
        "search", "--json", d, "copy", "--vector", q, "-k", "5", "--ef", "100",
    ]));
    assert_eq!(a["hits"].as_array().unwrap().len(), 5);
    assert_eq!(a["hits"], b["hits"]);
    let o = vectord(&["search", d, "fruit", "--vector", "[1, 0, 0.1]", "-k", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let first: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(first[..3], ["1.", "apple", "distance"], "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains(r#"{"color":"red"}"#), "{out}");

    // Wrong dimension is a usage error; an unknown index is "not found".
    let o = vectord(&["search", d, "fruit", "--vector", "[1, 0]"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = vectord(&["search", d, "nope", "--vector", "[1, 0, 0]"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope"));

    let o = vectord(&["rm", d, "copy"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!object_path(&dir, "copy").exists());
    let o = vectord(&["rm", d, "copy"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2_and_secrets_are_not_printed() {
    assert_eq!(vectord(&[]).status.code(), Some(2));
    assert_eq!(vectord(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(vectord(&["search", "x", "y"]).status.code(), Some(2));
    let o = vectord(&["ls", "/nonexistent/vectord-store"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!Path::new("/nonexistent/vectord-store").exists());

    // Port 1 on loopback refuses at once.
    let url = "http://admin:hunter2@127.0.0.1:1/base";
    for json_flag in [false, true] {
        let mut args = vec!["ls", url, "--options", r#"{"retries":0,"timeout_ms":2000}"#];
        if json_flag {
            args.push("--json");
        }
        let o = vectord(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let all = stdout(&o) + &stderr(&o);
        assert!(all.contains("127.0.0.1:1"), "{all}");
        assert!(!all.contains("hunter2"), "{all}");
    }
    // A URL the library rejects is a usage error, still without the secret.
    let o = vectord(&["ls", "http://admin:hunter2@127.0.0.1:1/?token=s3cr3t"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("hunter2") && !stderr(&o).contains("s3cr3t"));
}

#[test]
fn http_store_and_library_warnings_without_secrets() {
    let dir = store("http");
    let server = storaged::spawn_for_tests(&dir, storaged::ServerOptions::default()).unwrap();
    let url = server.url().replacen("http://", "http://admin:hunter2@", 1);
    let o = vectord(&["ls", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["bad", "fruit", "points"]);
    let o = vectord(&["verify", &url]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("3 checked, 2 ok, 1 damaged"),
        "{}",
        stdout(&o)
    );
    // Opening the registry logs the damaged object with the store's URL.
    let o = vectord(&["search", &url, "fruit", "--vector", "[1, 0, 0]", "-k", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("bad") && err.contains("CRC32C"), "{err}");
    assert!(err.contains("http://***@127.0.0.1:"), "{err}");
    let all = stdout(&o) + &err;
    assert!(!all.contains("hunter2"), "{all}");
}
