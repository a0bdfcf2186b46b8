//! Tests of the object stores: HttpStore against misbehaving in-test servers
//! and the reference storaged server, DirStore on a temporary directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use storaged::{spawn_for_tests, ServerOptions};
use vectord::storeclient::{
    decode_key_segment, encode_key_segment, open_store, DirStore, HttpStore, Store, StoreError,
    StoreOptions,
};

// ---------------------------------------------------------------- helpers

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "vectord-storeclient-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn quick_opts() -> StoreOptions {
    StoreOptions {
        timeout_ms: 2_000,
        connect_timeout_ms: 1_000,
        retries: 0,
        max_object_bytes: 1 << 20,
        ..StoreOptions::default()
    }
}

/// One request as seen by the fake server.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    body: Vec<u8>,
}

/// A misbehaving HTTP server: accepts connections (for at most 10 s or
/// `max_conns` connections), reads one request per connection, lets
/// `handler(index, request, stream)` write whatever it likes, then closes.
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    fn lines(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.line.clone())
            .collect()
    }
}

fn fake_server<F>(max_conns: usize, handler: F) -> Fake
where
    F: Fn(usize, &Seen, &mut TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut n = 0;
        while n < max_conns && Instant::now() < deadline {
            let mut stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let Some(req) = read_one_request(&stream) else {
                continue;
            };
            seen2.lock().unwrap().push(req.clone());
            handler(n, &req, &mut stream);
            let _ = stream.flush();
            n += 1;
        }
    });
    Fake { url, seen }
}

fn read_one_request(stream: &TcpStream) -> Option<Seen> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let line = line.trim_end().to_string();
    if line.is_empty() {
        return None;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Seen { line, body })
}

fn respond(stream: &mut TcpStream, status: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn http_store(url: &str, opts: StoreOptions) -> HttpStore {
    HttpStore::new(url, &opts).unwrap()
}

fn is_storage(r: &Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(r, Err(StoreError::Storage(_)))
}

// ---------------------------------------------------------------- HttpStore vs. misbehaving servers

#[test]
fn http_retries_5xx_then_succeeds() {
    let fake = fake_server(3, |i, _, s| {
        if i < 2 {
            respond(s, "500 Internal Server Error", b"busy");
        } else {
            respond(s, "200 OK", b"hello");
        }
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            retries: 3,
            ..quick_opts()
        },
    );
    assert_eq!(store.get("k").unwrap(), b"hello");
    assert_eq!(fake.hits(), 3);
}

#[test]
fn http_5xx_exhausts_retries() {
    let fake = fake_server(10, |_, _, s| respond(s, "503 Service Unavailable", b"down"));
    let store = http_store(
        &fake.url,
        StoreOptions {
            retries: 2,
            ..quick_opts()
        },
    );
    match store.put("k", b"x") {
        Err(StoreError::Storage(m)) => {
            assert!(
                m.contains("503") && m.contains("PUT") && m.contains("down"),
                "{m}"
            )
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    assert_eq!(fake.hits(), 3);
}

#[test]
fn http_4xx_is_not_retried_and_quotes_at_most_200_bytes() {
    let fake = fake_server(10, |_, _, s| {
        respond(s, "403 Forbidden", &[b'z'; 1000]);
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            retries: 3,
            ..quick_opts()
        },
    );
    match store.get("k") {
        Err(StoreError::Storage(m)) => {
            assert!(m.contains("403"), "{m}");
            assert!(m.matches('z').count() <= 200, "{m}");
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    assert_eq!(fake.hits(), 1);
}

#[test]
fn http_hanging_server_times_out() {
    let fake = fake_server(2, |_, _, _| std::thread::sleep(Duration::from_secs(3)));
    let store = http_store(
        &fake.url,
        StoreOptions {
            timeout_ms: 300,
            retries: 0,
            ..quick_opts()
        },
    );
    let t = Instant::now();
    let r = store.get("k");
    let took = t.elapsed();
    assert!(is_storage(&r), "{r:?}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[test]
fn http_timeout_is_per_attempt_and_retried() {
    // Hang on each connection in its own thread so the next attempt is accepted.
    let fake = fake_server(3, |_, _, s| {
        let held = s.try_clone().unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            drop(held);
        });
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            timeout_ms: 200,
            retries: 1,
            ..quick_opts()
        },
    );
    let t = Instant::now();
    match store.get("k") {
        Err(StoreError::Storage(m)) => assert!(m.contains("after 2 attempts"), "{m}"),
        other => panic!("expected a storage error, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(fake.hits(), 2);
}

#[test]
fn http_body_cut_short_is_storage_error_and_retried() {
    let fake = fake_server(10, |_, _, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            retries: 1,
            ..quick_opts()
        },
    );
    let r = store.get("k");
    assert!(is_storage(&r), "{r:?}");
    assert_eq!(fake.hits(), 2);
}

#[test]
fn http_404_is_key_not_found_on_get_and_delete() {
    let fake = fake_server(3, |_, _, s| respond(s, "404 Not Found", b"nothing here"));
    let store = http_store(
        &fake.url,
        StoreOptions {
            retries: 3,
            ..quick_opts()
        },
    );
    assert!(matches!(store.get("a/b"), Err(StoreError::KeyNotFound(k)) if k == "a/b"));
    assert!(matches!(store.delete("a/b"), Err(StoreError::KeyNotFound(k)) if k == "a/b"));
    assert_eq!(fake.hits(), 2, "a 404 is not retried");
    let e: vectord::Error = store.get("a/b").unwrap_err().into();
    assert_eq!(e, vectord::Error::NotFound("a/b".into()));
}

#[test]
fn http_not_found_is_decided_by_status_not_text() {
    let fake = fake_server(2, |_, _, s| respond(s, "400 Bad Request", b"key not found"));
    let store = http_store(&fake.url, quick_opts());
    assert!(matches!(store.get("k"), Err(StoreError::Storage(_))));
    assert!(matches!(store.delete("k"), Err(StoreError::Storage(_))));
}

#[test]
fn http_garbage_list_json_is_storage_error() {
    let bodies: Vec<&'static [u8]> = vec![
        b"not json",
        b"[]",
        b"{}",
        b"{\"keys\": \"a\"}",
        b"{\"keys\": [1, 2]}",
        b"{\"keys\": [\"a\", null]}",
        b"{\"keys\": [\"a\"], \"next_start_after\": 5}",
        b"\xff\xfe",
        b"",
    ];
    let n = bodies.len();
    let bodies2 = bodies.clone();
    let fake = fake_server(n, move |i, _, s| respond(s, "200 OK", bodies2[i]));
    let store = http_store(&fake.url, quick_opts());
    for b in &bodies {
        let r = store.list("");
        assert!(is_storage(&r), "{:?} -> {r:?}", String::from_utf8_lossy(b));
    }
    assert_eq!(fake.hits(), n);
}

#[test]
fn http_oversized_response_is_refused() {
    // A huge Content-Length: refused before reading the body.
    let fake = fake_server(1, |_, _, s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\nConnection: close\r\n\r\n",
        );
        let _ = s.write_all(&[0u8; 4096]);
        std::thread::sleep(Duration::from_secs(3));
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            max_object_bytes: 1024,
            retries: 2,
            ..quick_opts()
        },
    );
    let t = Instant::now();
    match store.get("k") {
        Err(StoreError::Storage(m)) => {
            assert!(m.contains("1000000000000 bytes exceeds"), "{m}")
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(fake.hits(), 1, "an oversized object is not retried");

    // No Content-Length (body delimited by close): the read is capped.
    let fake = fake_server(1, |_, _, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let _ = s.write_all(&[7u8; 8192]);
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            max_object_bytes: 1024,
            ..quick_opts()
        },
    );
    match store.get("k") {
        Err(StoreError::Storage(m)) => assert!(m.contains("exceeds"), "{m}"),
        other => panic!("expected a storage error, got {other:?}"),
    }
}

#[test]
fn http_put_refuses_oversized_object_locally() {
    let fake = fake_server(1, |_, _, s| respond(s, "204 No Content", b""));
    let store = http_store(
        &fake.url,
        StoreOptions {
            max_object_bytes: 10,
            ..quick_opts()
        },
    );
    assert!(is_storage(&store.put("k", &[0; 11])));
    assert_eq!(fake.hits(), 0);
}

#[test]
fn http_list_follows_pagination_three_pages() {
    let fake = fake_server(3, |i, _, s| {
        let body: &[u8] = match i {
            0 => br#"{"keys": ["p/a", "p/b"], "next_start_after": "p/b"}"#,
            1 => br#"{"keys": ["p/c", "p/d e"], "next_start_after": "p/d e"}"#,
            _ => br#"{"keys": ["p/z"], "next_start_after": null}"#,
        };
        respond(s, "200 OK", body);
    });
    let store = http_store(&fake.url, quick_opts());
    assert_eq!(
        store.list("p/").unwrap(),
        vec!["p/a", "p/b", "p/c", "p/d e", "p/z"]
    );
    assert_eq!(
        fake.lines(),
        vec![
            "GET /v1/objects?prefix=p%2F HTTP/1.1",
            "GET /v1/objects?prefix=p%2F&start_after=p%2Fb HTTP/1.1",
            "GET /v1/objects?prefix=p%2F&start_after=p%2Fd%20e HTTP/1.1",
        ]
    );
}

#[test]
fn http_wire_format_of_put_get_delete() {
    let fake = fake_server(3, |i, _, s| match i {
        0 => respond(s, "201 Created", b""),
        1 => respond(s, "200 OK", b"payload"),
        _ => respond(s, "200 OK", b""),
    });
    let store = http_store(&format!("{}/base/", fake.url), quick_opts());
    assert_eq!(store.describe(), format!("{}/base", fake.url));
    store.put("a/b %é", b"payload").unwrap();
    assert_eq!(store.get("a/b %é").unwrap(), b"payload");
    store.delete("a/b %é").unwrap();
    assert_eq!(
        fake.lines(),
        vec![
            "PUT /base/v1/objects/a%2Fb%20%25%C3%A9 HTTP/1.1",
            "GET /base/v1/objects/a%2Fb%20%25%C3%A9 HTTP/1.1",
            "DELETE /base/v1/objects/a%2Fb%20%25%C3%A9 HTTP/1.1",
        ]
    );
    assert_eq!(fake.seen.lock().unwrap()[0].body, b"payload");
}

#[test]
fn http_connection_refused_is_storage_error() {
    // Bind then drop: the port is (very likely) closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let store = http_store(
        &format!("http://{addr}"),
        StoreOptions {
            retries: 1,
            ..quick_opts()
        },
    );
    assert!(is_storage(&store.get("k")));
}

// ---------------------------------------------------------------- keys through both stores

const SPECIAL_KEYS: &[&str] = &[
    "a/b",
    "100%",
    "%2F",
    "with space",
    "ünïcødé/キー",
    "../../etc/x",
    "_vectors/../../etc/x",
    "_vectors/plain",
    "~tilde.-_",
    "a+b=c&d?e#f",
    "tab\there\nnewline",
    ".hidden",
    "...",
];

fn exercise_special_keys(store: &dyn Store) {
    for (i, k) in SPECIAL_KEYS.iter().enumerate() {
        store.put(k, format!("value {i}").as_bytes()).unwrap();
    }
    for (i, k) in SPECIAL_KEYS.iter().enumerate() {
        assert_eq!(
            store.get(k).unwrap(),
            format!("value {i}").as_bytes(),
            "{k}"
        );
    }
    let mut all: Vec<String> = SPECIAL_KEYS.iter().map(|s| s.to_string()).collect();
    all.sort();
    assert_eq!(store.list("").unwrap(), all);
    assert_eq!(
        store.list("_vectors/").unwrap(),
        vec!["_vectors/../../etc/x", "_vectors/plain"]
    );
    assert_eq!(store.list("nothing").unwrap(), Vec::<String>::new());
    // Replace.
    store.put("a/b", b"new").unwrap();
    assert_eq!(store.get("a/b").unwrap(), b"new");
    // Empty object.
    store.put("empty", b"").unwrap();
    assert_eq!(store.get("empty").unwrap(), b"");
    store.delete("empty").unwrap();
    for k in SPECIAL_KEYS {
        store.delete(k).unwrap();
        assert!(
            matches!(store.get(k), Err(StoreError::KeyNotFound(_))),
            "{k}"
        );
        assert!(
            matches!(store.delete(k), Err(StoreError::KeyNotFound(_))),
            "{k}"
        );
    }
    assert_eq!(store.list("").unwrap(), Vec::<String>::new());
    for bad in ["", ".", ".."] {
        assert!(matches!(store.put(bad, b"x"), Err(StoreError::Storage(_))));
        assert!(matches!(store.get(bad), Err(StoreError::Storage(_))));
    }
}

#[test]
fn special_keys_round_trip_dirstore() {
    let root = TempDir::new("dirkeys");
    let dir = root.path().join("store");
    let store = DirStore::open(&dir, &StoreOptions::default()).unwrap();
    assert_eq!(store.describe(), format!("dir:{}", dir.display()));
    exercise_special_keys(&store);
    assert_eq!(names_in(root.path()), vec!["store"]);
}

#[test]
fn special_keys_round_trip_storaged() {
    let root = TempDir::new("srvkeys");
    let dir = root.path().join("served");
    let server = spawn_for_tests(
        &dir,
        ServerOptions {
            page_size: 2,
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let store = open_store(&server.url(), &quick_opts()).unwrap();
    exercise_special_keys(store.as_ref());
    // While objects exist, the files are exactly the encoded keys.
    for k in SPECIAL_KEYS {
        store.put(k, b"x").unwrap();
    }
    let mut expect: Vec<String> = SPECIAL_KEYS.iter().map(|k| encode_key_segment(k)).collect();
    expect.sort();
    assert_eq!(names_in(&dir), expect);
    assert_eq!(names_in(root.path()), vec!["served"]);
}

#[test]
fn storaged_with_base_path() {
    let root = TempDir::new("srvbase");
    let server = spawn_for_tests(
        root.path(),
        ServerOptions {
            base_path: "/store/".into(),
            ..ServerOptions::default()
        },
    )
    .unwrap();
    assert!(server.url().ends_with("/store"));
    let store = open_store(&server.url(), &quick_opts()).unwrap();
    store.put("k", b"v").unwrap();
    assert_eq!(store.get("k").unwrap(), b"v");
    let wrong = open_store(&format!("http://{}", server.addr()), &quick_opts()).unwrap();
    assert!(matches!(wrong.get("k"), Err(StoreError::KeyNotFound(_))));
    assert!(matches!(wrong.list(""), Err(StoreError::Storage(_))));
}

/// Sends raw bytes to the server, half-closes, returns everything it answers.
fn raw_exchange(addr: std::net::SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn storaged_rejects_bad_requests() {
    let root = TempDir::new("srvbad");
    let server = spawn_for_tests(
        root.path(),
        ServerOptions {
            max_body_bytes: 100,
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let a = server.addr();
    let status = |req: &[u8]| {
        let r = raw_exchange(a, req);
        r.split(' ').nth(1).unwrap_or("").to_string()
    };
    assert_eq!(status(b"garbage\r\n\r\n"), "400");
    assert_eq!(status(b"GET / HTTP/9.9\r\n\r\n"), "505");
    assert_eq!(status(b"GET /v1/objects/%zz HTTP/1.1\r\n\r\n"), "400");
    assert_eq!(status(b"GET /v1/objects/a/b HTTP/1.1\r\n\r\n"), "400");
    assert_eq!(status(b"GET /v1/objects/.. HTTP/1.1\r\n\r\n"), "400");
    assert_eq!(status(b"POST /v1/objects/x HTTP/1.1\r\n\r\n"), "405");
    assert_eq!(
        status(b"PUT /v1/objects/x HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
        "400"
    );
    assert_eq!(
        status(b"PUT /v1/objects/x HTTP/1.1\r\nContent-Length: 101\r\n\r\n"),
        "413"
    );
    assert_eq!(
        status(b"PUT /v1/objects/x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
        "501"
    );
    let huge_header = format!("GET /x HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(70_000));
    assert_eq!(status(huge_header.as_bytes()), "431");
    let r = raw_exchange(a, b"GET /nope HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    assert!(
        r.contains("application/json") && r.contains("{\"error\""),
        "{r}"
    );
    // Missing key: 404 with a JSON body.
    let r = raw_exchange(a, b"GET /v1/objects/missing HTTP/1.1\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 404") && r.contains("\"key\":\"missing\""),
        "{r}"
    );
    // Still serving after all that.
    let store = open_store(&server.url(), &quick_opts()).unwrap();
    store.put("ok", b"fine").unwrap();
    assert_eq!(store.get("ok").unwrap(), b"fine");
}

#[test]
fn storaged_chunked_keep_alive_and_expect() {
    let root = TempDir::new("srvchunk");
    let server = spawn_for_tests(root.path(), ServerOptions::default()).unwrap();
    let a = server.addr();
    // Chunked body, then a pipelined GET on the same (keep-alive) connection.
    let r = raw_exchange(
        a,
        b"PUT /v1/objects/c%2Fk HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n\
          GET /v1/objects/c%2fk HTTP/1.1\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    assert!(
        r.contains("HTTP/1.1 200 OK") && r.ends_with("hello, world"),
        "{r}"
    );
    // Expect: 100-continue.
    let r = raw_exchange(
        a,
        b"PUT /v1/objects/e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert!(
        r.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204"),
        "{r}"
    );
    // Connection: close is honoured (the server closes after one reply).
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /v1/objects/e HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.contains("Connection: close") && out.ends_with("abc"),
        "{out}"
    );
    let store = DirStore::open(root.path(), &StoreOptions::default()).unwrap();
    assert_eq!(store.get("c/k").unwrap(), b"hello, world");
}

// ---------------------------------------------------------------- DirStore

#[test]
fn dirstore_dotdot_stays_inside() {
    let root = TempDir::new("dotdot");
    let dir = root.path().join("a").join("b");
    let store = DirStore::open(&dir, &StoreOptions::default()).unwrap();
    for k in [
        "../../etc/x",
        "_vectors/../../etc/x",
        "../x",
        "/abs/x",
        "sub/dir/x",
    ] {
        store.put(k, k.as_bytes()).unwrap();
        assert_eq!(store.get(k).unwrap(), k.as_bytes());
        assert!(store.path_for(k).unwrap().starts_with(&dir));
    }
    assert_eq!(names_in(root.path()), vec!["a"]);
    assert_eq!(names_in(&root.path().join("a")), vec!["b"]);
    let names = names_in(&dir);
    assert_eq!(names.len(), 5);
    for n in &names {
        assert!(!n.contains('/'));
        assert!(std::fs::metadata(dir.join(n)).unwrap().is_file());
        assert!(decode_key_segment(n).is_some(), "{n}");
    }
    assert!(names.contains(&"..%2F..%2Fetc%2Fx".to_string()));
    assert!(!root.path().join("etc").exists());
}

#[test]
fn dirstore_skips_temp_and_foreign_files() {
    let root = TempDir::new("tmpfiles");
    let store = DirStore::open(root.path(), &StoreOptions::default()).unwrap();
    store.put("real", b"1").unwrap();
    std::fs::write(root.path().join("%tmp-123-4"), b"partial").unwrap();
    std::fs::write(root.path().join("bad%zz"), b"?").unwrap();
    std::fs::write(root.path().join("lower%2f"), b"?").unwrap();
    std::fs::write(root.path().join("has space"), b"?").unwrap();
    std::fs::create_dir(root.path().join("subdir")).unwrap();
    assert_eq!(store.list("").unwrap(), vec!["real"]);
    // No temp file is left behind by put.
    assert!(names_in(root.path())
        .iter()
        .all(|n| n == "real" || n == "%tmp-123-4" || !n.starts_with("%tmp")));
}

#[test]
fn dirstore_put_replaces_atomically() {
    let root = TempDir::new("atomic");
    let store = Arc::new(DirStore::open(root.path(), &StoreOptions::default()).unwrap());
    let a = vec![b'a'; 1 << 20];
    let b = vec![b'b'; 3 << 19];
    store.put("obj", &a).unwrap();
    let writer = {
        let (store, a, b) = (Arc::clone(&store), a.clone(), b.clone());
        std::thread::spawn(move || {
            for i in 0..30 {
                store.put("obj", if i % 2 == 0 { &b } else { &a }).unwrap();
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let got = store.get("obj").unwrap();
        assert!(got == a || got == b, "torn read of {} bytes", got.len());
        reads += 1;
        assert_eq!(store.list("").unwrap(), vec!["obj"]);
    }
    writer.join().unwrap();
    assert_eq!(names_in(root.path()), vec!["obj"]);
}

#[test]
fn dirstore_not_found_and_size_limit() {
    let root = TempDir::new("limits");
    let store = DirStore::open(
        root.path(),
        &StoreOptions {
            max_object_bytes: 10,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        store.get("nope"),
        Err(StoreError::KeyNotFound("nope".into()))
    );
    assert_eq!(
        store.delete("nope"),
        Err(StoreError::KeyNotFound("nope".into()))
    );
    store.put("ten", &[1; 10]).unwrap();
    assert_eq!(store.get("ten").unwrap().len(), 10);
    assert!(matches!(
        store.put("big", &[1; 11]),
        Err(StoreError::Storage(_))
    ));
    std::fs::write(root.path().join("big"), [1u8; 11]).unwrap();
    assert!(matches!(store.get("big"), Err(StoreError::Storage(_))));
}

// ---------------------------------------------------------------- open_store

#[test]
fn open_store_urls() {
    let root = TempDir::new("urls");
    let inv = |u: &str| {
        assert!(
            matches!(
                open_store(u, &StoreOptions::default()),
                Err(vectord::Error::InvalidArgument(_))
            ),
            "{u}"
        )
    };
    for u in [
        "",
        "ftp://host/x",
        "s3://bucket",
        "http://",
        "http:///path",
        "file://relative/path",
        "http://h:1/b?q=1",
        // Mistyped URLs that used to become directories under the cwd.
        "localhost:7070",
        "http:/h:7070",
        "htp://h:7070",
        " http://127.0.0.1:1",
        "http://127.0.0.1:1 ",
        "\tdata",
        "C:dir",
    ] {
        inv(u);
    }
    for u in ["localhost:7070", "http:"] {
        assert!(!std::path::Path::new(u).exists(), "{u} created a directory");
    }
    let rel = format!("target/vectord-urls-{}/a:b", std::process::id());
    let s = open_store(&rel, &StoreOptions::default()).unwrap();
    assert!(s.describe().starts_with("dir:"));
    let _ = std::fs::remove_dir_all(format!("target/vectord-urls-{}", std::process::id()));
    let s = open_store("http://127.0.0.1:1/base/", &StoreOptions::default()).unwrap();
    assert_eq!(s.describe(), "http://127.0.0.1:1/base");
    let s = open_store("HTTPS://example.invalid", &StoreOptions::default()).unwrap();
    assert_eq!(s.describe(), "HTTPS://example.invalid");

    let d = root.path().join("via file url");
    let url = format!("file://{}", d.display()).replace(' ', "%20");
    let s = open_store(&url, &StoreOptions::default()).unwrap();
    assert_eq!(s.describe(), format!("dir:{}", d.display()));
    assert!(d.is_dir());
    let p = root.path().join("plain");
    let s = open_store(p.to_str().unwrap(), &StoreOptions::default()).unwrap();
    s.put("k", b"v").unwrap();
    assert!(p.join("k").is_file());
}

// ---------------------------------------------------------------- issue 9 hardening

#[test]
fn http_list_is_bounded_in_total_keys() {
    // A cursor that advances forever.
    let fake = fake_server(500, |i, _, s| {
        let body =
            format!(r#"{{"keys": ["p/{i:06}a", "p/{i:06}b"], "next_start_after": "p/{i:06}b"}}"#);
        respond(s, "200 OK", body.as_bytes());
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            max_list_keys: 50,
            ..quick_opts()
        },
    );
    let err = store.list("p/").unwrap_err();
    assert!(err.to_string().contains("max_list_keys"), "{err}");
    assert!(fake.hits() <= 26, "{} pages fetched", fake.hits());
}

#[test]
fn http_list_is_bounded_in_time() {
    let fake = fake_server(500, |i, _, s| {
        std::thread::sleep(Duration::from_millis(50));
        let body = format!(r#"{{"keys": ["p/{i:06}"], "next_start_after": "p/{i:06}"}}"#);
        respond(s, "200 OK", body.as_bytes());
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            list_timeout_ms: 400,
            ..quick_opts()
        },
    );
    let t = Instant::now();
    let err = store.list("p/").unwrap_err();
    assert!(err.to_string().contains("list_timeout_ms"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn http_list_page_limit_is_not_the_object_limit() {
    let keys: Vec<String> = (0..40)
        .map(|i| format!("\"p/index-{i:04}.lhv1\""))
        .collect();
    let body = format!(
        r#"{{"keys": [{}], "next_start_after": null}}"#,
        keys.join(",")
    );
    assert!(body.len() > 100);
    let fake = fake_server(1, move |_, _, s| respond(s, "200 OK", body.as_bytes()));
    let store = http_store(
        &fake.url,
        StoreOptions {
            max_object_bytes: 100,
            ..quick_opts()
        },
    );
    assert_eq!(store.list("p/").unwrap().len(), 40);
}

fn respond_with(stream: &mut TcpStream, status: &str, headers: &str) {
    let head =
        format!("HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(head.as_bytes());
}

#[test]
fn http_429_and_408_are_retried_honouring_retry_after() {
    let fake = fake_server(3, |i, _, s| match i {
        0 => respond_with(s, "429 Too Many Requests", "Retry-After: 1\r\n"),
        1 => respond_with(s, "408 Request Timeout", ""),
        _ => respond(s, "200 OK", b"ok"),
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            retries: 2,
            ..quick_opts()
        },
    );
    let t = Instant::now();
    assert_eq!(store.get("k").unwrap(), b"ok");
    assert_eq!(fake.hits(), 3);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn http_put_timeout_grows_with_the_body() {
    // The server answers 1.5 s after reading the body: more than timeout_ms,
    // less than timeout_ms plus 1 MiB at 512 KiB/s.
    let fake = fake_server(1, |_, _, s| {
        std::thread::sleep(Duration::from_millis(1500));
        respond_with(s, "204 No Content", "");
    });
    let store = http_store(
        &fake.url,
        StoreOptions {
            timeout_ms: 1000,
            min_upload_bytes_per_sec: 512 << 10,
            max_object_bytes: 2 << 20,
            ..quick_opts()
        },
    );
    store.put("big", &vec![7u8; 1 << 20]).unwrap();
    assert_eq!(fake.hits(), 1);
}

#[test]
fn dirstore_refuses_keys_too_long_for_a_file_name() {
    let root = TempDir::new("longkey");
    let store = DirStore::open(root.path(), &StoreOptions::default()).unwrap();
    store.put(&"k".repeat(255), b"v").unwrap();
    let err = store.put(&"k".repeat(256), b"v").unwrap_err();
    assert!(err.to_string().contains("too long"), "{err}");
    let err = store.put(&"/".repeat(86), b"v").unwrap_err();
    assert!(err.to_string().contains("too long"), "{err}");
}

#[test]
fn storaged_refuses_keys_too_long_with_400() {
    let root = TempDir::new("longkey-http");
    let server = spawn_for_tests(root.path(), ServerOptions::default()).unwrap();
    let reply = raw_exchange(
        server.addr(),
        format!(
            "PUT /v1/objects/{} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nv",
            "k".repeat(300)
        )
        .as_bytes(),
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}
