//! Persistence through the Rust API: save on change, load on open, delete,
//! the three save modes, failures that must not lose anything.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use vectord::registry::{Options, SaveMode};
use vectord::storeclient::{DirStore, Store, StoreError, StoreOptions};
use vectord::{lhv1, Error, IndexParams, Metric, Registry};

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "vectord-persist-{tag}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn survives_reopen_and_delete_removes_the_object() {
    let dir = tempdir("reopen");
    let url = dir.to_str().unwrap();
    let dim = 8;
    let base = clustered(500, dim, 31);
    let all = ids(500, "v");
    {
        let db = Registry::open(Some(url), None).unwrap();
        let idx = db
            .create(IndexParams::new("docs", dim as u32, Metric::L2))
            .unwrap();
        assert!(dir.join("_vectors%2Fdocs.lhv1").exists(), "create saves");
        let md: Vec<Option<&str>> = (0..500)
            .map(|i| {
                if i == 7 {
                    Some("{\"title\":\"seven\"}")
                } else {
                    None
                }
            })
            .collect();
        idx.add(&refs(&all), &base, Some(&md)).unwrap();
        idx.remove(&["v1"]).unwrap();
        // No close: a killed process does not close either.
        std::mem::forget(db);
    }
    let db = Registry::open(Some(url), None).unwrap();
    assert_eq!(db.names(), vec!["docs"]);
    let idx = db.get("docs").unwrap();
    assert_eq!(idx.len(), 499);
    let hits = idx.search(&base[7 * dim..8 * dim], 1, None).unwrap();
    assert_eq!(&*hits[0].id, "v7");
    assert_eq!(hits[0].distance, 0.0);
    assert_eq!(hits[0].metadata.as_deref(), Some("{\"title\":\"seven\"}"));
    assert!(!idx.contains("v1"));
    db.delete("docs").unwrap();
    assert!(!dir.join("_vectors%2Fdocs.lhv1").exists());
    // The handle outlives the delete, and changes to it are not saved.
    idx.add(&["late"], &base[..dim], None).unwrap();
    assert!(!dir.join("_vectors%2Fdocs.lhv1").exists());
    db.close();
    let db = Registry::open(Some(url), None).unwrap();
    assert!(db.names().is_empty());
}

#[test]
fn a_bad_object_is_left_alone_and_blocks_its_name() {
    let dir = tempdir("bad");
    let url = dir.to_str().unwrap();
    {
        let db = Registry::open(Some(url), None).unwrap();
        db.create(IndexParams::new("good", 2, Metric::L2)).unwrap();
    }
    let bad = dir.join("_vectors%2Fbroken.lhv1");
    std::fs::write(&bad, b"LHV1 definitely not a blob").unwrap();
    let logged = Arc::new(Mutex::new(Vec::<String>::new()));
    let l2 = logged.clone();
    vectord::log::set_log_callback(Some(Box::new(move |_lvl, m| {
        l2.lock().unwrap().push(m.to_string())
    })));
    let db = Registry::open(Some(url), None).unwrap();
    vectord::log::set_log_callback(None);
    assert_eq!(db.names(), vec!["good"]);
    assert!(logged.lock().unwrap().iter().any(|m| m.contains("broken")));
    let err = db
        .create(IndexParams::new("broken", 2, Metric::L2))
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)));
    assert!(err.to_string().contains("failed to load"), "{err}");
    assert_eq!(std::fs::read(&bad).unwrap(), b"LHV1 definitely not a blob");
}

/// A store that fails on demand and counts puts.
#[derive(Debug)]
struct Flaky {
    inner: DirStore,
    fail: AtomicBool,
    puts: AtomicUsize,
}

impl Store for Flaky {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Storage("injected failure".into()));
        }
        self.inner.put(key, data)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.inner.get(key)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Storage("injected failure".into()));
        }
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix)
    }
    fn describe(&self) -> String {
        "flaky".into()
    }
}

fn flaky(tag: &str) -> (Arc<Flaky>, std::path::PathBuf) {
    let dir = tempdir(tag);
    let inner = DirStore::open(&dir, &StoreOptions::default()).unwrap();
    (
        Arc::new(Flaky {
            inner,
            fail: AtomicBool::new(false),
            puts: AtomicUsize::new(0),
        }),
        dir,
    )
}

#[derive(Debug)]
struct Shared(Arc<Flaky>);
impl Store for Shared {
    fn put(&self, k: &str, d: &[u8]) -> Result<(), StoreError> {
        self.0.put(k, d)
    }
    fn get(&self, k: &str) -> Result<Vec<u8>, StoreError> {
        self.0.get(k)
    }
    fn delete(&self, k: &str) -> Result<(), StoreError> {
        self.0.delete(k)
    }
    fn list(&self, p: &str) -> Result<Vec<String>, StoreError> {
        self.0.list(p)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

#[test]
fn a_failed_save_keeps_the_change_and_flush_reports_it() {
    let (store, _dir) = flaky("fail");
    let db = Registry::with_store(Box::new(Shared(store.clone())), Options::default()).unwrap();
    let idx = db.create(IndexParams::new("x", 2, Metric::L2)).unwrap();
    store.fail.store(true, Ordering::SeqCst);
    idx.add(&["a"], &[1.0, 2.0], None).unwrap();
    assert_eq!(idx.len(), 1, "the mutation stands");
    assert!(matches!(db.flush(), Err(Error::Storage(_))));
    assert!(matches!(db.save(&idx), Err(Error::Storage(_))));
    // Deleting while the store fails keeps the index (and says why).
    assert!(matches!(db.delete("x"), Err(Error::Storage(_))));
    assert_eq!(db.names(), vec!["x"]);
    store.fail.store(false, Ordering::SeqCst);
    db.flush().unwrap();
    let blob = store.get("_vectors/x.lhv1").unwrap();
    assert_eq!(lhv1::decode(&blob).unwrap().len(), 1);
    // Nothing changed since: flush does not upload again.
    let puts = store.puts.load(Ordering::SeqCst);
    db.flush().unwrap();
    assert_eq!(store.puts.load(Ordering::SeqCst), puts);
}

#[test]
fn async_mode_coalesces_and_close_waits() {
    let (store, _dir) = flaky("async");
    let opts = Options {
        save: SaveMode::Async,
        save_interval_ms: 300,
        ..Options::default()
    };
    let db = Registry::with_store(Box::new(Shared(store.clone())), opts).unwrap();
    let idx = db.create(IndexParams::new("a", 2, Metric::L2)).unwrap();
    for i in 0..50 {
        idx.add(&[format!("i{i}").as_str()], &[i as f32, 1.0], None)
            .unwrap();
    }
    db.close();
    let puts = store.puts.load(Ordering::SeqCst);
    assert!(puts <= 3, "{puts} uploads for 51 changes");
    let blob = store.get("_vectors/a.lhv1").unwrap();
    assert_eq!(
        lhv1::decode(&blob).unwrap().len(),
        50,
        "close saved the last state"
    );
}

#[test]
fn manual_mode_saves_only_when_asked() {
    let (store, _dir) = flaky("manual");
    let opts = Options {
        save: SaveMode::Manual,
        ..Options::default()
    };
    let db = Registry::with_store(Box::new(Shared(store.clone())), opts).unwrap();
    let idx = db.create(IndexParams::new("m", 2, Metric::L2)).unwrap();
    idx.add(&["a"], &[1.0, 2.0], None).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(store.puts.load(Ordering::SeqCst), 0);
    db.save(&idx).unwrap();
    assert_eq!(store.puts.load(Ordering::SeqCst), 1);
}

#[test]
fn options_are_checked() {
    for bad in [
        "{\"prefx\":\"a/\"}",
        "{\"save\":\"sometimes\"}",
        "not json",
        "{\"timeout_ms\":0}",
        "{\"save_interval_ms\":86400001}",
        "{\"timeout_ms\":18446744073709551615}",
        "{\"retries\":-1}",
    ] {
        assert!(
            matches!(
                Options::from_json(Some(bad)),
                Err(Error::InvalidArgument(_))
            ),
            "{bad}"
        );
    }
    let o =
        Options::from_json(Some("{\"prefix\":\"p/\",\"save\":\"async\",\"retries\":1}")).unwrap();
    assert_eq!(o.prefix, "p/");
    assert_eq!(o.save, SaveMode::Async);
    assert!(matches!(
        Registry::open(None, Some("{\"nope\":1}")),
        Err(Error::InvalidArgument(_))
    ));
    let mem = Registry::open(Some(""), None).unwrap();
    let idx = mem.create(IndexParams::new("z", 2, Metric::L2)).unwrap();
    assert!(matches!(mem.save(&idx), Err(Error::InvalidArgument(_))));
    mem.flush().unwrap();
}

#[test]
fn names_that_look_like_paths_stay_inside_the_directory() {
    let dir = tempdir("paths");
    let url = format!("file://{}", dir.to_str().unwrap());
    let names = ["../../etc/x", "a b", "ünï/cödé", "100%"];
    {
        let db = Registry::open(Some(&url), None).unwrap();
        for n in names {
            db.create(IndexParams::new(n, 2, Metric::L2))
                .unwrap()
                .add(&["p"], &[1.0, 1.0], None)
                .unwrap();
        }
    }
    for e in std::fs::read_dir(&dir).unwrap() {
        assert!(e.unwrap().path().is_file());
    }
    let db = Registry::open(Some(&url), None).unwrap();
    let mut want: Vec<&str> = names.to_vec();
    want.sort();
    assert_eq!(db.names(), want);
}

#[test]
fn list_failure_fails_open() {
    let err = Registry::open(
        Some("http://127.0.0.1:9"),
        Some("{\"retries\":0,\"timeout_ms\":500}"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
}
