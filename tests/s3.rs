//! The S3 store against a real S3-compatible server (moto, started here;
//! see tests/common/moto.rs): objects, paging, multipart, and the
//! conditional-write matrix through the registry. Each test skips with a
//! printed reason when moto is not installed.

#[path = "common/moto.rs"]
mod moto;

use moto::Moto;
use vectord::registry::Options;
use vectord::storeclient::{
    open_store, Precondition, S3Credentials, S3Store, Store, StoreError, StoreOptions,
};
use vectord::Registry as Db;
use vectord::{Error, IndexParams, Metric};

fn store_options() -> StoreOptions {
    StoreOptions {
        s3: Some(S3Credentials {
            access_key_id: moto::ACCESS_KEY.into(),
            secret_access_key: moto::SECRET_KEY.into(),
            session_token: None,
        }),
        retries: 1,
        ..StoreOptions::default()
    }
}

fn open_db(url: &str, extra: &str) -> std::sync::Arc<Db> {
    Db::open(Some(url), Some(&Moto::options(extra))).unwrap()
}

fn add(db: &Db, index: &str, ids: &[&str]) {
    let ix = db.get(index).unwrap();
    let v: Vec<f32> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, _)| [1.0 + i as f32, 2.0, 3.0])
        .collect();
    ix.add(ids, &v, None).unwrap();
}

fn params(name: &str) -> IndexParams {
    IndexParams::new(name, 3, Metric::L2)
}

#[test]
fn s3_objects_versions_and_paging() {
    let Some(m) = moto::start() else { return };
    let bucket = m.bucket();
    let mut s = S3Store::open(&m.url(&bucket, "team/a"), &store_options()).unwrap();
    s.set_list_page_size(2);
    let other = S3Store::open(&m.url(&bucket, "team/b"), &store_options()).unwrap();
    other.put("_vectors/x.lhv1", b"other prefix").unwrap();
    let keys: Vec<String> = (0..5).map(|i| format!("_vectors/k {i}&<é>.lhv1")).collect();
    for (i, k) in keys.iter().enumerate() {
        s.put(k, format!("v{i}").as_bytes()).unwrap();
    }
    // Five keys at two per page: three pages, in order, only this prefix.
    assert_eq!(s.list("_vectors/").unwrap(), keys);
    let listed = s.list_versions("_vectors/").unwrap();
    assert!(listed.iter().all(|l| l.version.is_some()));
    let (data, version) = s.get_versioned(&keys[2]).unwrap();
    assert_eq!(data, b"v2");
    assert_eq!(version, listed[2].version, "GET and LIST agree on the ETag");
    assert_eq!(other.list("").unwrap(), vec!["_vectors/x.lhv1"]);
    // The storaged list bounds hold for S3 too.
    let mut bounded = S3Store::open(
        &m.url(&bucket, "team/a"),
        &StoreOptions {
            max_list_keys: 3,
            ..store_options()
        },
    )
    .unwrap();
    bounded.set_list_page_size(2);
    let e = bounded.list("_vectors/").unwrap_err().to_string();
    assert!(e.contains("max_list_keys"), "{e}");
    s.delete(&keys[0]).unwrap();
    assert!(matches!(s.get(&keys[0]), Err(StoreError::KeyNotFound(_))));
    assert!(matches!(
        s.delete(&keys[0]),
        Err(StoreError::KeyNotFound(_))
    ));
    assert_eq!(s.list("_vectors/").unwrap().len(), 4);
}

#[test]
fn s3_conditional_primitives() {
    let Some(m) = moto::start() else { return };
    let s = open_store(&m.url(&m.bucket(), ""), &store_options()).unwrap();
    let v1 = s
        .put_if("k", b"one", &Precondition::Absent)
        .unwrap()
        .unwrap();
    // Create twice: the second loses.
    assert!(matches!(
        s.put_if("k", b"two", &Precondition::Absent),
        Err(StoreError::Conflict(_))
    ));
    let v2 = s
        .put_if("k", b"two", &Precondition::Version(v1.clone()))
        .unwrap()
        .unwrap();
    // A stale writer (still holding v1) loses and changes nothing.
    assert!(matches!(
        s.put_if("k", b"stale", &Precondition::Version(v1.clone())),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.delete_if("k", &Precondition::Version(v1)),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get("k").unwrap(), b"two");
    s.delete_if("k", &Precondition::Version(v2.clone()))
        .unwrap();
    // Delete, then a stale save: the object stays gone.
    assert!(matches!(
        s.put_if("k", b"late", &Precondition::Version(v2)),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(s.get("k"), Err(StoreError::KeyNotFound(_))));
}

#[test]
fn s3_multipart_upload() {
    let Some(m) = moto::start() else { return };
    let bucket = m.bucket();
    let opts = StoreOptions {
        multipart_threshold_bytes: 5 << 20,
        ..store_options()
    };
    let s = S3Store::open(&m.url(&bucket, "p"), &opts).unwrap();
    // 11 MiB + 3 bytes: parts of 5, 5 and 1 MiB + 3.
    let big: Vec<u8> = (0..(11u32 << 20) + 3)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let v = s.put_if("big", &big, &Precondition::Absent).unwrap();
    let (back, v2) = s.get_versioned("big").unwrap();
    assert!(back == big, "multipart object differs");
    assert!(v.is_some() && v == v2, "{v:?} vs {v2:?}");
    assert!(v.as_deref().unwrap().contains("-3"), "a 3-part ETag: {v:?}");
    // Conditional completion: the second create loses, and its parts are
    // aborted, not left behind.
    let e = s.put_if("big", &big, &Precondition::Absent).unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(&format!("{}/{bucket}?uploads", m.endpoint))
        .call()
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert!(!text.contains("<UploadId>"), "upload left behind: {text}");
    assert!(s.get("big").unwrap() == big);
}

#[test]
fn s3_open_needs_credentials_and_hides_secrets() {
    // No credentials in the options, and (for this check) none in the
    // environment of this test binary.
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        eprintln!("SKIPPED: AWS_ACCESS_KEY_ID is set in the environment");
        return;
    }
    let e = Db::open(Some("s3://bucket?endpoint=http://127.0.0.1:1"), None).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("AWS_ACCESS_KEY_ID") && msg.contains("options_json"),
        "{msg}"
    );
    // A failing open names neither the secret nor the token.
    let opts = r#"{"s3": {"access_key_id": "AK", "secret_access_key": "SECRET-123", "session_token": "TOKEN-456"}, "retries": 0, "timeout_ms": 500}"#;
    let e = Db::open(Some("s3://bucket?endpoint=http://127.0.0.1:1"), Some(opts)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Storage(_)), "{msg}");
    assert!(
        !msg.contains("SECRET-123") && !msg.contains("TOKEN-456"),
        "{msg}"
    );
    let e = Db::open(Some("s3://bucket"), Some(r#"{"s3": {"access_key_id": "AK", "secret_access_key": "S"}, "multipart_threshold_bytes": 1000}"#)).unwrap_err();
    assert!(e.to_string().contains("multipart_threshold_bytes"), "{e}");
}

/// The conditional-write matrix through two registries over one bucket
/// (two writers that do not know each other).
#[test]
fn s3_registry_conflicts() {
    let Some(m) = moto::start() else { return };
    let url = m.url(&m.bucket(), "app");
    let a = open_db(&url, "");
    let b = open_db(&url, "");
    // Create twice: the second writer's save is a CONFLICT, its index stays
    // in memory, and the stored object is the first one.
    a.create(params("docs")).unwrap();
    add(&a, "docs", &["a1"]);
    b.create(params("docs")).unwrap();
    add(&b, "docs", &["b1"]);
    let e = b.flush().unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    assert_eq!(e.status_code(), 10);
    assert!(b.get("docs").unwrap().contains("b1"), "kept in memory");
    let c = open_db(&url, "");
    assert!(c.get("docs").unwrap().contains("a1"));
    assert!(!c.get("docs").unwrap().contains("b1"));
    // B recovers by reloading: its handle sees the stored contents.
    let held = b.get("docs").unwrap();
    b.reload("docs").unwrap();
    assert!(held.contains("a1") && !held.contains("b1"));
    b.flush().unwrap();
    // Stale writer: C loaded before A's next save; C's save conflicts.
    add(&a, "docs", &["a2"]);
    a.flush().unwrap();
    add(&c, "docs", &["c1"]);
    assert!(matches!(c.flush(), Err(Error::Conflict(_))));
    // Delete by A, then a stale save by B: the object stays deleted.
    b.refresh().unwrap();
    assert!(held.contains("a2"), "refresh reloaded in place");
    a.delete("docs").unwrap();
    add(&b, "docs", &["b2"]);
    assert!(matches!(b.flush(), Err(Error::Conflict(_))));
    let d = open_db(&url, "");
    assert!(d.names().is_empty(), "{:?}", d.names());
    // A stale delete (C still holds the old version) is refused too.
    a.create(params("tmp")).unwrap();
    a.flush().unwrap();
    c.refresh().unwrap_err(); // C's docs: unsaved changes, object gone
    add(&a, "tmp", &["t1"]);
    a.flush().unwrap();
    let e = c.delete("tmp").unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    assert!(d.get("tmp").is_err() && open_db(&url, "").get("tmp").is_ok());
}

/// Refresh picks up another process's add, delete and new index, and only
/// lists when nothing changed.
#[test]
fn s3_refresh_and_read_only() {
    let Some(m) = moto::start() else { return };
    let url = m.url(&m.bucket(), "");
    let w = open_db(&url, "");
    w.create(params("one")).unwrap();
    add(&w, "one", &["x1"]);
    let r = open_db(&url, r#", "read_only": true"#);
    assert!(r.is_read_only());
    let one = r.get("one").unwrap();
    assert!(one.contains("x1"));
    // Read-only: every mutation fails clearly; nothing is written.
    for e in [
        r.create(params("new")).unwrap_err(),
        r.delete("one").unwrap_err(),
        one.add(&["y"], &[1.0, 1.0, 1.0], None).unwrap_err(),
        one.remove(&["x1"]).unwrap_err(),
    ] {
        assert!(e.to_string().contains("read-only"), "{e}");
    }
    // Another process adds, creates and deletes.
    add(&w, "one", &["x2"]);
    w.create(params("two")).unwrap();
    add(&w, "two", &["z1"]);
    r.refresh().unwrap();
    assert!(one.contains("x2"), "the held handle sees the reload");
    assert!(r.get("two").unwrap().contains("z1"));
    w.delete("one").unwrap();
    r.refresh().unwrap();
    assert_eq!(r.names(), vec!["two"]);
    // Background refresh.
    let bg = open_db(&url, r#", "read_only": true, "refresh_interval_ms": 50"#);
    w.create(params("three")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while bg.get("three").is_err() {
        assert!(std::time::Instant::now() < deadline, "background refresh");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn s3_conditional_writes_off_is_last_writer_wins() {
    let Some(m) = moto::start() else { return };
    let url = m.url(&m.bucket(), "");
    let a = open_db(&url, r#", "conditional_writes": "off""#);
    let b = open_db(&url, r#", "conditional_writes": "off""#);
    a.create(params("i")).unwrap();
    b.create(params("i")).unwrap();
    add(&b, "i", &["b"]);
    b.flush().unwrap();
    assert!(open_db(&url, "").get("i").unwrap().contains("b"));
    let _ = Options::default();
}
