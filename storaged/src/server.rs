//! A small reference implementation of the storaged service (see
//! `docs/storaged-protocol.md`) over a directory.
//!
//! HTTP/1.1 over `std::net`, one thread per connection, keep-alive,
//! `Content-Length` and `Transfer-Encoding: chunked` request bodies,
//! `Expect: 100-continue`. It is meant for development and tests, not for
//! exposure to untrusted networks (no TLS, no authentication).

use crate::dir::{Cond, Dir, DirError};
use crate::key::{decode_key_segment_lenient, key_problem};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Settings of the reference server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Most keys returned by one list page (at least 1).
    pub page_size: usize,
    /// Largest request body accepted (413 beyond), also the largest object served.
    pub max_body_bytes: u64,
    /// Path prefix the service lives under, e.g. `/store` (empty: the root).
    pub base_path: String,
    /// How long an idle keep-alive connection (or a stalled read) is kept.
    pub idle_timeout_ms: u64,
    /// Test aid: how long a DELETE reply is held back after the file is
    /// gone (0: not at all), to widen races between a delete and later calls.
    pub delete_reply_delay_ms: u64,
    /// Test aid: while positive, each PUT takes one from this count and
    /// waits `put_commit_delay_ms` after reading its body, before checking
    /// its precondition and committing: a write the server commits after
    /// the client gave up on it.
    pub delayed_puts: Arc<AtomicU32>,
    /// See `delayed_puts`.
    pub put_commit_delay_ms: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            page_size: 1000,
            max_body_bytes: 4 << 30,
            base_path: String::new(),
            idle_timeout_ms: 60_000,
            delete_reply_delay_ms: 0,
            delayed_puts: Arc::new(AtomicU32::new(0)),
            put_commit_delay_ms: 0,
        }
    }
}

/// Most bytes of a request line plus headers.
const MAX_HEAD_BYTES: u64 = 64 * 1024;
/// Most header lines of a request.
const MAX_HEADERS: usize = 100;

/// Serves the directory `dir` on `listener` until the process ends (or an
/// accept error other than a transient one occurs).
pub fn serve(dir: &Path, listener: TcpListener, opts: &ServerOptions) -> io::Result<()> {
    serve_until(dir, listener, opts, Arc::new(AtomicBool::new(false)))
}

/// Like [`serve`], returning once `stop` is set and one more connection
/// (possibly a dummy one, to wake up `accept`) has arrived.
pub fn serve_until(
    dir: &Path,
    listener: TcpListener,
    opts: &ServerOptions,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let store =
        Arc::new(Dir::open(dir, opts.max_body_bytes).map_err(|e| io::Error::other(e.to_string()))?);
    let opts = Arc::new(opts.clone());
    let mut transient_errors = 0u32;
    loop {
        let conn = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        match conn {
            Ok((stream, _)) => {
                transient_errors = 0;
                let store = Arc::clone(&store);
                let opts = Arc::clone(&opts);
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name("storaged-conn".into())
                    .spawn(move || handle_connection(stream, &store, &opts, &stop))?;
            }
            Err(e) => {
                // e.g. EMFILE or ECONNABORTED: back off a little, give up if persistent.
                transient_errors += 1;
                if transient_errors > 100 {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A server running on background threads, stopped when dropped.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    base_path: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` plus the base path: the storage URL clients are given.
    pub fn url(&self) -> String {
        format!(
            "http://{}{}",
            self.addr,
            self.base_path.trim_end_matches('/')
        )
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake up the accept call.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a server over `dir` on `listener` in a background thread.
pub fn spawn(dir: &Path, listener: TcpListener, opts: ServerOptions) -> io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let dir = dir.to_path_buf();
    // Open once here so that a bad directory is reported to the caller.
    Dir::open(&dir, opts.max_body_bytes).map_err(|e| io::Error::other(e.to_string()))?;
    let base_path = opts.base_path.clone();
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("storaged-accept".into())
        .spawn(move || serve_until(&dir, listener, &opts, stop2))?;
    Ok(ServerHandle {
        addr,
        base_path,
        stop,
        thread: Some(thread),
    })
}

/// Starts a server over `dir` on `127.0.0.1:0` (a free port) in the background.
pub fn spawn_for_tests(dir: &Path, opts: ServerOptions) -> io::Result<ServerHandle> {
    spawn(dir, TcpListener::bind("127.0.0.1:0")?, opts)
}

struct Request {
    method: String,
    target: String,
    /// `If-Match` (an entity tag or `*`).
    if_match: Option<String>,
    /// `If-None-Match` (only `*` is supported, on PUT).
    if_none_match: Option<String>,
    keep_alive: bool,
    body: Vec<u8>,
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// The object's version, sent as `ETag`.
    etag: Option<String>,
}

impl Reply {
    fn json(status: u16, v: serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: v.to_string().into_bytes(),
            etag: None,
        }
    }

    fn error(status: u16, msg: &str) -> Reply {
        Reply::json(status, serde_json::json!({ "error": msg }))
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            content_type: "application/octet-stream",
            body: Vec::new(),
            etag: None,
        }
    }
}

/// Why a request could not be read; the connection is closed after the reply.
enum ReadError {
    /// The peer closed, timed out or failed: nothing to answer.
    Gone,
    /// Answer with this reply, then close.
    Reply(Reply),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Gone
    }
}

fn handle_connection(stream: TcpStream, store: &Dir, opts: &ServerOptions, stop: &AtomicBool) {
    let idle = Some(Duration::from_millis(opts.idle_timeout_ms.max(1)));
    let _ = stream.set_read_timeout(idle);
    let _ = stream.set_write_timeout(idle);
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let (reply, keep_alive) = match read_request(&mut reader, &mut writer, opts) {
            Ok(None) | Err(ReadError::Gone) => break,
            Ok(Some(req)) => {
                let reply = route(&req, store, opts);
                (reply, req.keep_alive && !stop.load(Ordering::SeqCst))
            }
            Err(ReadError::Reply(r)) => (r, false),
        };
        if write_reply(&mut writer, &reply, keep_alive).is_err() || !keep_alive {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

/// Reads one line of the head (without the line end), charging `budget`.
fn read_head_line<R: BufRead>(r: &mut R, budget: &mut u64) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    let n = r.by_ref().take(*budget + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if n as u64 > *budget {
        return Err(ReadError::Reply(Reply::error(
            431,
            "request head too large",
        )));
    }
    *budget -= n as u64;
    if line.last() != Some(&b'\n') {
        return Err(ReadError::Gone); // EOF in the middle of the head
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| ReadError::Reply(Reply::error(400, "request head is not UTF-8")))
}

fn bad(msg: &str) -> ReadError {
    ReadError::Reply(Reply::error(400, msg))
}

fn read_request<R: BufRead, W: Write>(
    r: &mut R,
    w: &mut W,
    opts: &ServerOptions,
) -> Result<Option<Request>, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    // Skip empty lines before the request line (RFC 9112, 2.2).
    let line = loop {
        match read_head_line(r, &mut budget)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("malformed method"));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => {
            return Err(ReadError::Reply(Reply::error(
                505,
                "only HTTP/1.0 and HTTP/1.1 are supported",
            )))
        }
    };
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut close = !http11;
    let mut expect_continue = false;
    let mut if_match = None;
    let mut if_none_match = None;
    let mut count = 0;
    loop {
        let Some(h) = read_head_line(r, &mut budget)? else {
            return Err(ReadError::Gone);
        };
        if h.is_empty() {
            break;
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(ReadError::Reply(Reply::error(431, "too many headers")));
        }
        if h.starts_with(' ') || h.starts_with('\t') {
            return Err(bad("obsolete header line folding"));
        }
        let Some((name, value)) = h.split_once(':') else {
            return Err(bad("malformed header line"));
        };
        if name.is_empty() || name.ends_with(' ') || name.ends_with('\t') {
            return Err(bad("malformed header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n: u64 = value
                    .parse()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| bad("bad Content-Length"))?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(bad("conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => {
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(ReadError::Reply(Reply::error(
                        501,
                        "only the chunked transfer coding is supported",
                    )));
                }
                chunked = true;
            }
            "connection" => {
                for tok in value.split(',').map(str::trim) {
                    if tok.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if tok.eq_ignore_ascii_case("keep-alive") && !http11 {
                        close = false;
                    }
                }
            }
            "if-match" => set_once(&mut if_match, value, "If-Match")?,
            "if-none-match" => set_once(&mut if_none_match, value, "If-None-Match")?,
            "expect" => {
                if value.eq_ignore_ascii_case("100-continue") {
                    expect_continue = http11;
                } else {
                    return Err(ReadError::Reply(Reply::error(417, "unsupported Expect")));
                }
            }
            _ => {}
        }
    }
    if chunked && content_length.is_some() {
        return Err(bad("both Transfer-Encoding and Content-Length"));
    }
    if content_length.is_some_and(|n| n > opts.max_body_bytes) {
        return Err(ReadError::Reply(Reply::error(
            413,
            "request body too large",
        )));
    }
    if expect_continue && (chunked || content_length.is_some_and(|n| n > 0)) {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        w.flush()?;
    }
    let body = if chunked {
        read_chunked(r, opts.max_body_bytes)?
    } else if let Some(n) = content_length {
        let mut body = Vec::with_capacity(n.min(1 << 20) as usize);
        r.by_ref().take(n).read_to_end(&mut body)?;
        if (body.len() as u64) < n {
            return Err(ReadError::Gone); // cut short
        }
        body
    } else {
        Vec::new()
    };
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        if_match,
        if_none_match,
        keep_alive: !close,
        body,
    }))
}

/// Stores the object, first waiting `put_commit_delay_ms` if a delayed
/// PUT is armed (`ServerOptions::delayed_puts`).
fn put_after_test_delay(
    store: &Dir,
    key: &str,
    body: &[u8],
    cond: &Cond,
    opts: &ServerOptions,
) -> Result<String, DirError> {
    let delay = opts
        .delayed_puts
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok();
    if delay {
        std::thread::sleep(Duration::from_millis(opts.put_commit_delay_ms));
    }
    store.put(key, body, cond)
}

/// Records a header that may appear only once.
fn set_once(slot: &mut Option<String>, value: &str, name: &str) -> Result<(), ReadError> {
    if slot.replace(value.to_string()).is_some() {
        return Err(bad(&format!("more than one {name} header")));
    }
    Ok(())
}

fn read_chunked<R: BufRead>(r: &mut R, max: u64) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD_BYTES; // for chunk-size lines and trailers
    loop {
        let Some(line) = read_head_line(r, &mut budget)? else {
            return Err(ReadError::Gone);
        };
        let size_str = line
            .split(';')
            .next()
            .unwrap_or("")
            .trim_matches([' ', '\t']);
        if size_str.is_empty() || size_str.len() > 16 {
            return Err(bad("bad chunk size"));
        }
        let size = u64::from_str_radix(size_str, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers up to the empty line.
            loop {
                match read_head_line(r, &mut budget)? {
                    None => return Err(ReadError::Gone),
                    Some(l) if l.is_empty() => return Ok(body),
                    Some(_) => {}
                }
            }
        }
        if body.len() as u64 + size > max {
            return Err(ReadError::Reply(Reply::error(
                413,
                "request body too large",
            )));
        }
        let before = body.len();
        r.by_ref().take(size).read_to_end(&mut body)?;
        if ((body.len() - before) as u64) < size {
            return Err(ReadError::Gone);
        }
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn write_reply<W: Write>(w: &mut W, reply: &Reply, keep_alive: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    if reply.status != 204 {
        head.push_str(&format!(
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            reply.content_type,
            reply.body.len()
        ));
    }
    if reply.status == 405 {
        head.push_str("Allow: GET, PUT, DELETE\r\n");
    }
    if let Some(e) = &reply.etag {
        head.push_str(&format!("ETag: {e}\r\n"));
    }
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    w.write_all(head.as_bytes())?;
    if reply.status != 204 {
        w.write_all(&reply.body)?;
    }
    w.flush()
}

fn route(req: &Request, store: &Dir, opts: &ServerOptions) -> Reply {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.target.as_str(), None),
    };
    if !path.starts_with('/') {
        return Reply::error(400, "request target must be an absolute path");
    }
    let base = opts.base_path.trim_end_matches('/');
    let Some(rest) = path.strip_prefix(base) else {
        return Reply::error(404, "unknown path");
    };
    if rest == "/v1/objects" || rest == "/v1/objects/" && query.is_some() {
        if req.method != "GET" {
            return Reply::error(405, "method not allowed");
        }
        return list(store, query.unwrap_or(""), opts);
    }
    let Some(seg) = rest.strip_prefix("/v1/objects/") else {
        return Reply::error(404, "unknown path");
    };
    if seg.contains('/') {
        return Reply::error(400, "a key must be one path segment (encode '/' as %2F)");
    }
    let Some(key) = decode_key_segment_lenient(seg) else {
        return Reply::error(400, "bad percent-encoding in key");
    };
    if let Some(why) = key_problem(&key) {
        return Reply::error(400, &why);
    }
    let cond = match condition(req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match req.method.as_str() {
        "GET" => match store.get(&key) {
            Ok((data, etag)) => Reply {
                status: 200,
                content_type: "application/octet-stream",
                body: data,
                etag: Some(etag),
            },
            Err(e) => failed(e, &key),
        },
        "PUT" => match put_after_test_delay(store, &key, &req.body, &cond, opts) {
            Ok(etag) => Reply {
                etag: Some(etag),
                ..Reply::empty(204)
            },
            Err(e) => failed(e, &key),
        },
        "DELETE" => {
            if cond == Cond::Absent {
                return Reply::error(400, "If-None-Match is not supported on DELETE");
            }
            let r = store.delete(&key, &cond);
            if opts.delete_reply_delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(opts.delete_reply_delay_ms));
            }
            match r {
                Ok(()) => Reply::empty(204),
                Err(e) => failed(e, &key),
            }
        }
        _ => Reply::error(405, "method not allowed"),
    }
}

/// The precondition of a request: `If-Match: <etag>|*` or
/// `If-None-Match: *` (on PUT), never both.
fn condition(req: &Request) -> Result<Cond, Reply> {
    match (&req.if_match, &req.if_none_match) {
        (None, None) => Ok(Cond::Any),
        (Some(_), Some(_)) => Err(Reply::error(
            400,
            "If-Match and If-None-Match together are not supported",
        )),
        (Some(m), None) if m == "*" => Ok(Cond::Exists),
        (Some(m), None) => {
            if m.contains(',') {
                return Err(Reply::error(
                    400,
                    "If-Match with a list of tags is not supported",
                ));
            }
            Ok(Cond::Matches(m.trim_start_matches("W/").to_string()))
        }
        (None, Some(n)) if n == "*" && req.method == "PUT" => Ok(Cond::Absent),
        (None, Some(_)) => Err(Reply::error(
            400,
            "only If-None-Match: * on PUT is supported",
        )),
    }
}

fn failed(e: DirError, key: &str) -> Reply {
    match e {
        DirError::PreconditionFailed(why) => Reply::json(
            412,
            serde_json::json!({ "error": format!("precondition failed: {why}"), "key": key }),
        ),
        DirError::NotFound => Reply::json(
            404,
            serde_json::json!({ "error": "key not found", "key": key }),
        ),
        DirError::BadKey(m) => Reply::error(400, &m),
        DirError::TooLarge(m) => Reply::error(413, &m),
        DirError::Io(m) => Reply::error(500, &m),
    }
}

fn list(store: &Dir, query: &str, opts: &ServerOptions) -> Reply {
    let mut prefix = String::new();
    let mut start_after: Option<String> = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(value) = decode_key_segment_lenient(value) else {
            return Reply::error(400, "bad percent-encoding in query");
        };
        match name {
            "prefix" => prefix = value,
            "start_after" => start_after = Some(value),
            _ => {}
        }
    }
    let keys = match store.list(&prefix) {
        Ok(k) => k,
        Err(e) => return Reply::error(500, &e.to_string()),
    };
    let page_size = opts.page_size.max(1);
    let mut rest = keys
        .into_iter()
        .filter(|k| start_after.as_ref().is_none_or(|s| k > s));
    let page: Vec<String> = rest.by_ref().take(page_size).collect();
    let next = if rest.next().is_some() {
        page.last().cloned()
    } else {
        None
    };
    Reply::json(
        200,
        serde_json::json!({ "keys": page, "next_start_after": next }),
    )
}
