//! Several writers over one store: the conditional-write matrix on the
//! directory store and storaged (S3: tests/s3.rs), and two real processes
//! writing the same index at once against storaged, S3 (moto) and a
//! directory. The child processes are this test binary itself, re-run with
//! `VECTORD_MP_CHILD` set (the `child_writer` test does the work then).

#[path = "common/moto.rs"]
mod moto;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use storaged::{spawn_for_tests, ServerOptions};
use vectord::storeclient::{open_store, Precondition, Store, StoreError, StoreOptions};
use vectord::{Error, IndexParams, Metric, Registry};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("vectord-mp-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn add(reg: &Registry, index: &str, id: &str) {
    let ix = reg.get(index).unwrap();
    ix.add(&[id], &[1.0, id.len() as f32, 3.0], None).unwrap();
}

/// Store-level preconditions, the same on every store.
fn store_matrix(s: &dyn Store) {
    let v1 = s.put_if("k", b"one", &Precondition::Absent).unwrap();
    let v1 = v1.expect("a version");
    let e = s.put_if("k", b"two", &Precondition::Absent).unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    let (data, v) = s.get_versioned("k").unwrap();
    assert_eq!(
        (data.as_slice(), v.as_deref()),
        (&b"one"[..], Some(v1.as_str()))
    );
    let v2 = s
        .put_if("k", b"two", &Precondition::Version(v1.clone()))
        .unwrap()
        .expect("a version");
    assert_ne!(v1, v2);
    let e = s
        .put_if("k", b"stale", &Precondition::Version(v1.clone()))
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    let e = s.delete_if("k", &Precondition::Version(v1)).unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert_eq!(s.get("k").unwrap(), b"two");
    s.delete_if("k", &Precondition::Version(v2.clone()))
        .unwrap();
    let e = s
        .put_if("k", b"late", &Precondition::Version(v2))
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert!(matches!(s.get("k"), Err(StoreError::KeyNotFound(_))));
    // Unconditional writes still work.
    s.put("k", b"free").unwrap();
    s.put("k", b"free2").unwrap();
    assert_eq!(s.get("k").unwrap(), b"free2");
}

/// Registry-level conflicts between two registries over one store.
fn registry_matrix(url: &str, options: Option<&str>) {
    let open = || Registry::open(Some(url), options).unwrap();
    let params = || IndexParams::new("docs", 3, Metric::L2);
    let a = open();
    let b = open();
    // Create twice: B loses, keeps its index in memory.
    a.create(params()).unwrap();
    add(&a, "docs", "a1");
    b.create(params()).unwrap();
    add(&b, "docs", "b1");
    let e = b.flush().unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    assert!(b.get("docs").unwrap().contains("b1"));
    let held = b.get("docs").unwrap();
    b.reload("docs").unwrap();
    assert!(
        held.contains("a1") && !held.contains("b1"),
        "reload in place"
    );
    // Stale writer.
    add(&a, "docs", "a2");
    add(&b, "docs", "b2");
    assert!(matches!(b.flush(), Err(Error::Conflict(_))));
    // Refresh with unsaved local changes: reported, not discarded.
    assert!(matches!(b.refresh(), Err(Error::Conflict(_))));
    assert!(held.contains("b2"));
    b.reload("docs").unwrap();
    assert!(held.contains("a2") && !held.contains("b2"));
    // Delete, then a stale save.
    a.delete("docs").unwrap();
    add(&b, "docs", "b3");
    assert!(matches!(b.flush(), Err(Error::Conflict(_))));
    assert!(open().names().is_empty());
    // Refresh picks up another registry's new index, add and delete.
    let r = open();
    a.create(IndexParams::new("n", 3, Metric::L2)).unwrap();
    r.refresh().unwrap();
    let n = r.get("n").unwrap();
    add(&a, "n", "x");
    r.refresh().unwrap();
    assert!(n.contains("x"));
    a.delete("n").unwrap();
    r.refresh().unwrap();
    assert!(r.get("n").is_err());
}

#[test]
fn conditional_writes_directory_store() {
    let d = TempDir::new("dir");
    store_matrix(&*open_store(d.0.to_str().unwrap(), &StoreOptions::default()).unwrap());
    let d2 = TempDir::new("dirreg");
    registry_matrix(d2.0.to_str().unwrap(), None);
}

#[test]
fn conditional_writes_storaged() {
    let d = TempDir::new("http");
    let server = spawn_for_tests(&d.0, ServerOptions::default()).unwrap();
    let s = open_store(&server.url(), &StoreOptions::default()).unwrap();
    store_matrix(&*s);
    // The reference server answers a bad precondition header with 400.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/v1/objects/x", server.url());
    let r = agent
        .put(&url)
        .header("If-None-Match", "\"abc\"")
        .send(&b"x"[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = agent.put(&url).send(&b"x"[..]).unwrap();
    assert!(r.headers().get("etag").is_some(), "PUT returns an ETag");
    let d2 = TempDir::new("httpreg");
    let server2 = spawn_for_tests(&d2.0, ServerOptions::default()).unwrap();
    registry_matrix(&server2.url(), None);
}

#[test]
fn conditional_writes_required_refuses_a_store_without_them() {
    #[derive(Debug)]
    struct Plain(Box<dyn Store>);
    impl Store for Plain {
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
            "plain".into()
        }
    }
    let d = TempDir::new("plain");
    let plain = || {
        Box::new(Plain(
            open_store(d.0.to_str().unwrap(), &StoreOptions::default()).unwrap(),
        ))
    };
    let opts = vectord::registry::Options::from_json(Some(r#"{"conditional_writes": "required"}"#))
        .unwrap();
    let e = Registry::with_store(plain(), opts).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    // auto: used unconditionally.
    let reg = Registry::with_store(plain(), Default::default()).unwrap();
    reg.create(IndexParams::new("i", 3, Metric::L2)).unwrap();
    reg.flush().unwrap();
    let e = Registry::open(None, Some(r#"{"conditional_writes": "sometimes"}"#)).unwrap_err();
    assert!(e.to_string().contains("conditional_writes"), "{e}");
}

// ---------------------------------------------------------------------------
// Two real processes.
// ---------------------------------------------------------------------------

const ROUNDS: usize = 25;

/// The child: adds `ROUNDS` items, one save each; on CONFLICT reloads
/// (dropping the unsaved item) and tries the same item again. Prints
/// `ACK id` for every item a successful save stored and `CONFLICT` for
/// every lost race.
#[test]
fn child_writer() {
    let Ok(url) = std::env::var("VECTORD_MP_CHILD") else {
        return; // only runs as a child
    };
    let options = std::env::var("VECTORD_MP_OPTIONS").unwrap();
    let me = std::env::var("VECTORD_MP_NAME").unwrap();
    let go = PathBuf::from(std::env::var("VECTORD_MP_GO").unwrap());
    let reg = Registry::open(Some(&url), Some(&options)).unwrap();
    println!("READY");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() {
        assert!(Instant::now() < deadline, "no go signal");
        std::thread::sleep(Duration::from_millis(2));
    }
    for i in 0..ROUNDS {
        let id = format!("{me}-{i}");
        loop {
            let ix = reg.get("shared").unwrap();
            ix.add(&[&id], &[1.0, i as f32, 2.0], None).unwrap();
            match reg.save(&ix) {
                Ok(()) => {
                    println!("ACK {id}");
                    break;
                }
                Err(Error::Conflict(_)) => {
                    println!("CONFLICT");
                    reg.reload("shared").unwrap();
                }
                Err(e) => panic!("save of {id}: {e}"),
            }
        }
    }
    println!("DONE");
}

fn two_writers(url: &str, options: &str) {
    let creator = Registry::open(Some(url), Some(options)).unwrap();
    creator
        .create(IndexParams::new("shared", 3, Metric::L2))
        .unwrap();
    creator.flush().unwrap();
    drop(creator);
    let go = TempDir::new("go");
    let go_file = go.0.join("go");
    let exe = std::env::current_exe().unwrap();
    let spawn = |name: &str| {
        Command::new(&exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env("VECTORD_MP_CHILD", url)
            .env("VECTORD_MP_OPTIONS", options)
            .env("VECTORD_MP_NAME", name)
            .env("VECTORD_MP_GO", &go_file)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = [spawn("A"), spawn("B")];
    let mut outs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    for o in &mut outs {
        let mut line = String::new();
        // libtest may print "test child_writer ... " before it on the same line.
        while !line.trim_end().ends_with("READY") {
            line.clear();
            assert!(
                o.read_line(&mut line).unwrap() > 0,
                "child died before READY"
            );
        }
    }
    std::fs::write(&go_file, b"go").unwrap();
    let mut acked = BTreeSet::new();
    let mut conflicts = 0;
    for (c, o) in children.iter_mut().zip(outs) {
        let mut done = false;
        for line in o.lines() {
            let line = line.unwrap();
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.insert(id.to_string());
            } else if line == "CONFLICT" {
                conflicts += 1;
            } else if line == "DONE" {
                done = true;
            }
        }
        assert!(c.wait().unwrap().success() && done, "a child failed");
    }
    let fin = Registry::open(Some(url), Some(options)).unwrap();
    let ix = fin.get("shared").unwrap();
    let missing: Vec<&String> = acked.iter().filter(|id| !ix.contains(id)).collect();
    println!(
        "  {url}: {} saves acknowledged, {conflicts} conflicts, final object holds {} items",
        acked.len(),
        ix.len()
    );
    assert_eq!(acked.len(), 2 * ROUNDS, "every item was acknowledged once");
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert_eq!(ix.len(), 2 * ROUNDS, "nothing unacknowledged in the object");
    assert!(conflicts > 0, "the two writers never raced");
}

#[test]
fn two_processes_directory_store() {
    let d = TempDir::new("mpdir");
    two_writers(d.0.to_str().unwrap(), r#"{"save": "manual"}"#);
}

#[test]
fn two_processes_storaged() {
    let d = TempDir::new("mphttp");
    let server = spawn_for_tests(&d.0, ServerOptions::default()).unwrap();
    two_writers(&server.url(), r#"{"save": "manual"}"#);
}

#[test]
fn two_processes_s3() {
    let Some(m) = moto::start() else { return };
    let url = m.url(&m.bucket(), "mp");
    two_writers(&url, &moto::Moto::options(r#", "save": "manual""#));
}

/// A refresh over unchanged indexes only lists (the directory listing
/// carries versions): no object is downloaded. A changed one is.
#[test]
fn refresh_of_unchanged_indexes_only_lists() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use vectord::storeclient::Listed;

    #[derive(Debug)]
    struct Counting(Box<dyn Store>, Arc<AtomicUsize>);
    impl Store for Counting {
        fn put(&self, k: &str, d: &[u8]) -> Result<(), StoreError> {
            self.0.put(k, d)
        }
        fn get(&self, k: &str) -> Result<Vec<u8>, StoreError> {
            self.get_versioned(k).map(|(d, _)| d)
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
        fn supports_conditions(&self) -> bool {
            true
        }
        fn put_if(
            &self,
            k: &str,
            d: &[u8],
            c: &Precondition,
        ) -> Result<Option<String>, StoreError> {
            self.0.put_if(k, d, c)
        }
        fn get_versioned(&self, k: &str) -> Result<(Vec<u8>, Option<String>), StoreError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.get_versioned(k)
        }
        fn delete_if(&self, k: &str, c: &Precondition) -> Result<(), StoreError> {
            self.0.delete_if(k, c)
        }
        fn list_versions(&self, p: &str) -> Result<Vec<Listed>, StoreError> {
            self.0.list_versions(p)
        }
    }
    let d = TempDir::new("count");
    let url = d.0.to_str().unwrap();
    let w = Registry::open(Some(url), None).unwrap();
    for i in 0..20 {
        w.create(IndexParams::new(format!("i{i}"), 3, Metric::L2))
            .unwrap();
    }
    let gets = Arc::new(AtomicUsize::new(0));
    let store = Counting(
        open_store(url, &StoreOptions::default()).unwrap(),
        gets.clone(),
    );
    let r = Registry::with_store(Box::new(store), Default::default()).unwrap();
    assert_eq!(
        gets.load(Ordering::SeqCst),
        20,
        "open loads each index once"
    );
    r.refresh().unwrap();
    r.refresh().unwrap();
    assert_eq!(
        gets.load(Ordering::SeqCst),
        20,
        "unchanged: refresh only lists"
    );
    add(&w, "i7", "new");
    r.refresh().unwrap();
    assert_eq!(
        gets.load(Ordering::SeqCst),
        21,
        "one changed index, one download"
    );
    assert!(r.get("i7").unwrap().contains("new"));
}

/// The issue's late write: a PUT the client gave up on (timeout) that the
/// server commits afterwards must not land over a newer save by another
/// writer. Its `If-Match` still names the version it replaced, so the
/// server refuses it; the writer that gave up sees CONFLICT on its next
/// save. (With `"conditional_writes": "off"` the late PUT wins and the
/// newer save is lost.)
#[test]
fn late_put_cannot_overwrite_a_newer_save() {
    use std::sync::atomic::Ordering;
    let d = TempDir::new("late");
    let opts = ServerOptions {
        put_commit_delay_ms: 600,
        ..ServerOptions::default()
    };
    let delayed = opts.delayed_puts.clone();
    let server = spawn_for_tests(&d.0, opts).unwrap();
    let url = server.url();
    let slow = r#"{"save": "manual", "timeout_ms": 200, "retries": 0}"#;
    let p1 = Registry::open(Some(&url), Some(slow)).unwrap();
    p1.create(IndexParams::new("docs", 3, Metric::L2)).unwrap();
    p1.flush().unwrap();
    let p2 = Registry::open(Some(&url), Some(slow)).unwrap();
    add(&p1, "docs", "p1-late");
    delayed.store(1, Ordering::SeqCst);
    let started = Instant::now();
    let e = p1.flush().unwrap_err();
    assert!(matches!(e, Error::Storage(_)), "timed out: {e}");
    // The server still holds p1's PUT; p2 saves a newer version meanwhile.
    add(&p2, "docs", "p2-new");
    p2.flush().unwrap();
    // Let the held PUT reach its check and be refused.
    std::thread::sleep(Duration::from_millis(900).saturating_sub(started.elapsed()));
    let fresh = Registry::open(Some(&url), None).unwrap();
    let ix = fresh.get("docs").unwrap();
    assert!(ix.contains("p2-new"), "the newer save was overwritten");
    assert!(!ix.contains("p1-late"));
    // p1's change is still unsaved, and now a conflict.
    assert!(matches!(p1.flush(), Err(Error::Conflict(_))));
}
