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

// ---------------------------------------------------------------- issue 9 hardening

/// A directory store whose deletes take a little longer to return, which
/// widens the window between a delete's store call and its registry update.
#[derive(Debug)]
struct SlowDelete(DirStore);
impl Store for SlowDelete {
    fn put(&self, k: &str, d: &[u8]) -> Result<(), StoreError> {
        self.0.put(k, d)
    }
    fn get(&self, k: &str) -> Result<Vec<u8>, StoreError> {
        self.0.get(k)
    }
    fn delete(&self, k: &str) -> Result<(), StoreError> {
        let r = self.0.delete(k);
        std::thread::sleep(Duration::from_micros(300));
        r
    }
    fn list(&self, p: &str) -> Result<Vec<String>, StoreError> {
        self.0.list(p)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// Two deletes of one name race a create of it; afterwards the registry has
/// the index exactly when the store has its object, and a reopen agrees.
fn race_rounds(reg: &Registry, has_object: &dyn Fn() -> bool, rounds: usize) {
    let mut orphans = 0;
    let mut lost = 0;
    for _ in 0..rounds {
        if reg.get("x").is_err() {
            reg.create(IndexParams::new("x", 2, Metric::L2)).unwrap();
        }
        vectord::parallel::parallel_map(3, 3, |i| {
            if i < 2 {
                let _ = reg.delete("x");
            } else {
                let _ = reg.create(IndexParams::new("x", 2, Metric::L2));
            }
        });
        match (reg.get("x").is_ok(), has_object()) {
            (false, true) => orphans += 1,
            (true, false) => lost += 1,
            _ => {}
        }
    }
    assert_eq!((orphans, lost), (0, 0), "after {rounds} rounds");
}

#[test]
fn racing_delete_and_create_leave_no_orphan_dir_store() {
    let dir = tempdir("race");
    let store = SlowDelete(DirStore::open(&dir, &StoreOptions::default()).unwrap());
    let reg = Registry::with_store(Box::new(store), Options::default()).unwrap();
    let obj = dir.join("_vectors%2Fx.lhv1");
    race_rounds(&reg, &|| obj.exists(), 700);
    let present = reg.get("x").is_ok();
    drop(reg);
    let reg = Registry::open(Some(dir.to_str().unwrap()), None).unwrap();
    assert_eq!(reg.get("x").is_ok(), present);
}

#[test]
fn racing_delete_and_create_leave_no_orphan_storaged() {
    let dir = tempdir("race-http");
    let server = storaged::spawn_for_tests(
        &dir,
        storaged::ServerOptions {
            delete_reply_delay_ms: 1,
            ..storaged::ServerOptions::default()
        },
    )
    .unwrap();
    let reg = Registry::open(Some(&server.url()), None).unwrap();
    let obj = dir.join("_vectors%2Fx.lhv1");
    race_rounds(&reg, &|| obj.exists(), 400);
}

#[test]
fn names_the_store_cannot_hold_are_refused_at_create() {
    let dir = tempdir("long");
    let url = dir.to_str().unwrap();
    let reg = Registry::open(Some(url), None).unwrap();
    // "_vectors%2F" + name + ".lhv1" must fit in 255 bytes.
    let fits = "a".repeat(255 - 11 - 5);
    let too_long = "a".repeat(255 - 11 - 5 + 1);
    let wide = "é".repeat(81); // 162 bytes, 486 encoded
    for bad in [&too_long, &wide] {
        let err = reg
            .create(IndexParams::new(bad, 2, Metric::L2))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        assert!(err.to_string().contains("cannot be saved"), "{err}");
        let blob =
            lhv1::encode(&vectord::Index::new(IndexParams::new(bad, 2, Metric::L2)).unwrap())
                .unwrap();
        assert!(matches!(reg.import(&blob), Err(Error::InvalidArgument(_))));
    }
    reg.create(IndexParams::new(&fits, 2, Metric::L2))
        .unwrap()
        .add(&["p"], &[1.0, 1.0], None)
        .unwrap();
    drop(reg);
    let reg = Registry::open(Some(url), None).unwrap();
    assert_eq!(reg.names(), vec![fits]);
    // An in-memory registry has no store to fit.
    let mem = Registry::open(None, None).unwrap();
    mem.create(IndexParams::new(&wide, 2, Metric::L2)).unwrap();
}

#[test]
fn async_saver_retries_a_failed_save_without_a_new_change() {
    let (store, _dir) = flaky("retry");
    let opts = Options {
        save: SaveMode::Async,
        save_interval_ms: 20,
        ..Options::default()
    };
    let reg = Registry::with_store(Box::new(Shared(store.clone())), opts).unwrap();
    store.fail.store(true, Ordering::SeqCst);
    let idx = reg.create(IndexParams::new("r", 2, Metric::L2)).unwrap();
    idx.add(&["a"], &[1.0, 2.0], None).unwrap();
    std::thread::sleep(Duration::from_millis(1200)); // the outage
    let err = reg.flush().unwrap_err();
    assert!(err.to_string().contains("\"r\""), "flush names it: {err}");
    store.fail.store(false, Ordering::SeqCst);
    let t = std::time::Instant::now();
    let saved = loop {
        if let Ok(b) = store.get("_vectors/r.lhv1") {
            if lhv1::decode(&b).unwrap().len() == 1 {
                break true;
            }
        }
        if t.elapsed() > Duration::from_secs(3) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(saved, "still unsaved 3 s after the store came back");
    reg.flush().unwrap();
}

#[test]
fn set_ef_search_is_saved() {
    let (store, dir) = flaky("ef");
    let reg = Registry::with_store(Box::new(Shared(store.clone())), Options::default()).unwrap();
    let idx = reg.create(IndexParams::new("e", 2, Metric::L2)).unwrap();
    let puts = store.puts.load(Ordering::SeqCst);
    idx.set_ef_search(321).unwrap();
    assert_eq!(
        store.puts.load(Ordering::SeqCst),
        puts + 1,
        "sync mode saves it"
    );
    reg.close();
    let reg = Registry::open(Some(dir.to_str().unwrap()), None).unwrap();
    assert_eq!(reg.get("e").unwrap().ef_search(), 321);
}

/// Counts PUTs in flight per key.
#[derive(Debug, Default)]
struct Overlap {
    inner: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}
impl Store for Overlap {
    fn put(&self, k: &str, d: &[u8]) -> Result<(), StoreError> {
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2));
        self.inner.lock().unwrap().insert(k.into(), d.to_vec());
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
    fn get(&self, k: &str) -> Result<Vec<u8>, StoreError> {
        self.inner
            .lock()
            .unwrap()
            .get(k)
            .cloned()
            .ok_or_else(|| StoreError::KeyNotFound(k.into()))
    }
    fn delete(&self, k: &str) -> Result<(), StoreError> {
        self.inner.lock().unwrap().remove(k);
        Ok(())
    }
    fn list(&self, _p: &str) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    fn describe(&self) -> String {
        "overlap".into()
    }
}

#[derive(Debug)]
struct SharedOverlap(Arc<Overlap>);
impl Store for SharedOverlap {
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
fn saves_of_one_index_never_overlap() {
    let store = Arc::new(Overlap::default());
    let reg =
        Registry::with_store(Box::new(SharedOverlap(store.clone())), Options::default()).unwrap();
    let idx = reg.create(IndexParams::new("o", 2, Metric::L2)).unwrap();
    vectord::parallel::parallel_for(
        120,
        6,
        || (),
        |_, i| match i % 3 {
            0 => idx
                .add(&[format!("i{i}").as_str()], &[i as f32, 1.0], None)
                .unwrap(),
            1 => {
                let _ = reg.flush();
            }
            _ => {
                let _ = reg.save(&idx);
            }
        },
    );
    assert_eq!(store.max_in_flight.load(Ordering::SeqCst), 1);
    let blob = store.get("_vectors/o.lhv1").unwrap();
    assert_eq!(
        lhv1::decode(&blob).unwrap().len(),
        40,
        "the newest state is saved last"
    );
}

/// A store whose get fails (or finds nothing) for one key.
#[derive(Debug)]
struct GetFails {
    inner: DirStore,
    key: String,
    not_found: bool,
    extra_listed: Option<String>,
}
impl Store for GetFails {
    fn put(&self, k: &str, d: &[u8]) -> Result<(), StoreError> {
        self.inner.put(k, d)
    }
    fn get(&self, k: &str) -> Result<Vec<u8>, StoreError> {
        if k == self.key {
            return Err(if self.not_found {
                StoreError::KeyNotFound(k.into())
            } else {
                StoreError::Storage("timed out (injected)".into())
            });
        }
        self.inner.get(k)
    }
    fn delete(&self, k: &str) -> Result<(), StoreError> {
        self.inner.delete(k)
    }
    fn list(&self, p: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = self.inner.list(p)?;
        keys.extend(self.extra_listed.clone());
        keys.sort();
        Ok(keys)
    }
    fn describe(&self) -> String {
        "get-fails".into()
    }
}

#[test]
fn a_storage_error_while_loading_fails_open() {
    let dir = tempdir("loadfail");
    {
        let reg = Registry::open(Some(dir.to_str().unwrap()), None).unwrap();
        reg.create(IndexParams::new("a", 2, Metric::L2)).unwrap();
        reg.create(IndexParams::new("b", 2, Metric::L2)).unwrap();
    }
    let store = GetFails {
        inner: DirStore::open(&dir, &StoreOptions::default()).unwrap(),
        key: "_vectors/b.lhv1".into(),
        not_found: false,
        extra_listed: None,
    };
    let err = Registry::with_store(Box::new(store), Options::default()).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert!(err.to_string().contains("\"b\""), "{err}");
}

#[test]
fn an_object_gone_between_list_and_get_is_skipped() {
    let dir = tempdir("gone");
    let store = GetFails {
        inner: DirStore::open(&dir, &StoreOptions::default()).unwrap(),
        key: "_vectors/ghost.lhv1".into(),
        not_found: true,
        extra_listed: Some("_vectors/ghost.lhv1".into()),
    };
    let reg = Registry::with_store(Box::new(store), Options::default()).unwrap();
    assert!(reg.names().is_empty());
    // Not quarantined: the name is free.
    reg.create(IndexParams::new("ghost", 2, Metric::L2))
        .unwrap();
}

#[cfg(unix)]
#[test]
fn special_files_in_a_directory_store_neither_block_nor_load() {
    let dir = tempdir("special");
    let outside = tempdir("special-outside");
    {
        let reg = Registry::open(Some(outside.to_str().unwrap()), None).unwrap();
        reg.create(IndexParams::new("real", 2, Metric::L2)).unwrap();
    }
    let fifo = dir.join("_vectors%2Ffifo.lhv1");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", dir.join("_vectors%2Fzero.lhv1")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("_vectors%2Freal.lhv1"),
        dir.join("_vectors%2Freal.lhv1"),
    )
    .unwrap();
    let url = dir.to_str().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reg = Registry::open(Some(&url), None).map(|r| r.names());
        let store = DirStore::open(&url, &StoreOptions::default()).unwrap();
        let gets: Vec<bool> = ["fifo", "zero", "real"]
            .iter()
            .map(|n| store.get(&format!("_vectors/{n}.lhv1")).is_err())
            .collect();
        let _ = tx.send((reg, gets));
    });
    let (names, gets) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("open blocked on a special file");
    assert_eq!(names.unwrap(), Vec::<String>::new());
    assert_eq!(gets, vec![true, true, true]);
}

#[test]
fn new_options_are_bounded() {
    for bad in [
        "{\"retries\":101}",
        "{\"retries\":4294967295}",
        "{\"max_list_keys\":0}",
        "{\"max_list_page_bytes\":0}",
        "{\"open_timeout_ms\":0}",
        "{\"min_upload_bytes_per_sec\":0}",
    ] {
        assert!(
            matches!(
                Options::from_json(Some(bad)),
                Err(Error::InvalidArgument(_))
            ),
            "{bad}"
        );
    }
    let o = Options::from_json(Some(
        "{\"retries\":100,\"max_list_keys\":5,\"max_list_page_bytes\":7,\"open_timeout_ms\":9}",
    ))
    .unwrap();
    assert_eq!(o.store.retries, 100);
    assert_eq!(o.store.max_list_keys, 5);
    assert_eq!(o.store.max_list_page_bytes, 7);
    assert_eq!((o.open_timeout_ms, o.store.list_timeout_ms), (9, 9));
}

/// Issue 9 point 17: once removed items pass the documented share of the
/// slots, a save compacts first, so the stored object shrinks; below it,
/// removals only tombstone.
#[test]
fn saves_compact_once_removals_pass_the_threshold() {
    let dir = tempdir("autocompact");
    let url = dir.to_str().unwrap();
    let dim = 8;
    let n = 1000;
    let base = clustered(n, dim, 5);
    let all = ids(n, "v");
    let object = dir.join("_vectors%2Fdocs.lhv1");
    let size = || std::fs::metadata(&object).unwrap().len();
    let db = Registry::open(Some(url), None).unwrap();
    let idx = db
        .create(IndexParams::new("docs", dim as u32, Metric::L2))
        .unwrap();
    idx.add(&refs(&all), &base, None).unwrap();
    let full = size();
    // 20% removed: under the threshold, the object keeps every slot.
    idx.remove(&refs(&all[..200])).unwrap();
    assert!(idx.tombstone_fraction() > 0.19);
    assert!(size() * 10 > full * 9, "{} of {full} bytes", size());
    // 60% removed: the save compacts, the object holds the live items only.
    idx.remove(&refs(&all[200..600])).unwrap();
    assert_eq!(idx.tombstone_fraction(), 0.0, "the save compacted");
    assert!(size() * 10 < full * 5, "{} of {full} bytes", size());
    db.close();
    let db = Registry::open(Some(url), None).unwrap();
    let idx = db.get("docs").unwrap();
    assert_eq!(idx.len(), 400);
    let hits = idx.search(&base[700 * dim..701 * dim], 1, None).unwrap();
    assert_eq!(&*hits[0].id, "v700");
    let _ = std::fs::remove_dir_all(&dir);
}
