//! Object stores that hold the persisted index blobs.
//!
//! Three implementations of [`Store`] exist:
//!
//! * [`DirStore`]: one file per key in a local directory, written atomically
//!   (temporary file, fsync, rename, fsync of the directory).
//! * [`HttpStore`]: a blocking client of the storaged object service, whose
//!   wire protocol is described in `docs/storaged-protocol.md`.
//! * [`S3Store`]: a blocking client of S3 and S3-compatible servers
//!   (`s3://bucket/prefix?endpoint=...`), see `docs/storage.md`.
//!
//! Every store reports a *version* of each object (the ETag for HTTP and
//! S3, a file identity token for the directory) and can make a write
//! conditional on it ([`Precondition`]); a failed condition is
//! [`StoreError::Conflict`]. That is what lets several processes share one
//! store without overwriting each other's saves.
//!
//! The reference storaged server is the `storaged` workspace crate.
//!
//! Keys are arbitrary non-empty UTF-8 strings other than `.` and `..`. Both
//! stores map a key to a single path segment / file name with
//! [`encode_key_segment`], so a key never names a sub-directory and never
//! escapes the store, whatever it contains.

mod dir;
mod http;
pub mod s3;
mod wire;

pub use dir::DirStore;
pub use http::HttpStore;
pub use s3::S3Store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What must hold of the stored object for a write to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Nothing: the write happens whatever is stored.
    Any,
    /// No object may exist under the key (`If-None-Match: *`).
    Absent,
    /// The stored object must have exactly this version (`If-Match`).
    Version(String),
}

/// A key and the version of its object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// None when the store does not report versions in listings.
    pub version: Option<String>,
}

/// A flat key/value object store holding whole objects.
///
/// The conditional methods have defaults for stores without versions: they
/// behave like the plain ones when the precondition is [`Precondition::Any`]
/// and refuse anything else, so such a store can never silently ignore a
/// condition.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Stores `data` under `key`, atomically replacing any previous object.
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError>;
    /// Returns the object stored under `key`; [`StoreError::KeyNotFound`] if absent.
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Removes the object stored under `key`; [`StoreError::KeyNotFound`] if absent.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// All keys starting with `prefix`, sorted (byte order of the UTF-8 keys).
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// A short description for log messages, e.g. `dir:/path` or `http://host:port/base`.
    fn describe(&self) -> String;

    /// Whether `put_if` and `delete_if` honour every [`Precondition`]. A
    /// store that does not is used unconditionally under
    /// `"conditional_writes": "auto"` and refused under `"required"`.
    fn supports_conditions(&self) -> bool {
        false
    }

    /// Stores `data` under `key` only if `cond` holds, atomically with the
    /// check; [`StoreError::Conflict`] if it does not. Returns the version
    /// of the new object when the store reports one.
    fn put_if(
        &self,
        key: &str,
        data: &[u8],
        cond: &Precondition,
    ) -> Result<Option<String>, StoreError> {
        match cond {
            Precondition::Any => self.put(key, data).map(|()| None),
            _ => Err(unconditional_only(self)),
        }
    }

    /// The object under `key` and its version (None when the store reports none).
    fn get_versioned(&self, key: &str) -> Result<(Vec<u8>, Option<String>), StoreError> {
        self.get(key).map(|d| (d, None))
    }

    /// Removes the object under `key` only if `cond` holds;
    /// [`StoreError::Conflict`] if it does not.
    fn delete_if(&self, key: &str, cond: &Precondition) -> Result<(), StoreError> {
        match cond {
            Precondition::Any => self.delete(key),
            _ => Err(unconditional_only(self)),
        }
    }

    /// Like [`Store::list`], with each object's version where the listing
    /// carries it (S3, the directory); refresh uses it to skip downloads.
    fn list_versions(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        Ok(self
            .list(prefix)?
            .into_iter()
            .map(|key| Listed { key, version: None })
            .collect())
    }
}

fn unconditional_only<S: Store + ?Sized>(s: &S) -> StoreError {
    StoreError::Storage(format!(
        "{} does not support conditional writes",
        s.describe()
    ))
}

/// Refuses an object larger than the store's `max_object_bytes` before
/// anything is written; `what` names the operation and key.
fn check_object_size(what: &str, len: usize, max: u64) -> Result<(), StoreError> {
    if len as u64 > max {
        return Err(StoreError::Storage(format!(
            "{what}: object of {len} bytes exceeds the limit of {max} bytes"
        )));
    }
    Ok(())
}

/// What a [`Store`] operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The key does not exist (decided by a 404 status or `io::ErrorKind::NotFound`).
    #[error("key not found: {0}")]
    KeyNotFound(String),
    /// A write's precondition failed: another writer changed (or created,
    /// or deleted) the object since this one's version was read.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Any other failure: I/O, transport, unexpected status, bad response, invalid key.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<StoreError> for crate::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::KeyNotFound(k) => crate::Error::NotFound(k),
            StoreError::Conflict(m) => crate::Error::Conflict(m),
            StoreError::Storage(m) => crate::Error::Storage(m),
        }
    }
}

/// When saves are made conditional on the stored version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalWrites {
    /// Whenever the store reports versions (the default).
    Auto,
    /// Always: opening a store that reports no versions fails.
    Required,
    /// Never: last writer wins (the behaviour before versions existed).
    Off,
}

/// S3 credentials given in the options (else taken from the environment).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Secrets never reach a log or an error message, not even through `{:?}`.
impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The smallest multipart threshold accepted: S3 refuses parts below 5 MiB.
pub const MIN_MULTIPART_THRESHOLD: u64 = 5 << 20;

/// Tuning of the stores. Timeouts and retries only matter for [`HttpStore`] and [`S3Store`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Budget of one HTTP attempt, from connecting to the end of the response
    /// body. A PUT gets more: see `min_upload_bytes_per_sec`.
    pub timeout_ms: u64,
    /// Budget of establishing the TCP (and TLS) connection.
    pub connect_timeout_ms: u64,
    /// Retries after the first try, on connection errors, timeouts, cut
    /// bodies, 5xx, 408 and 429; at most [`MAX_RETRIES`].
    pub retries: u32,
    /// Largest object accepted by `put` and returned by `get`.
    pub max_object_bytes: u64,
    /// Largest body of one list page.
    pub max_list_page_bytes: u64,
    /// Most keys one `list` call collects over all its pages.
    pub max_list_keys: u64,
    /// Budget of one whole `list` call, all pages and retries included.
    pub list_timeout_ms: u64,
    /// A PUT of `n` bytes may take `timeout_ms + n / min_upload_bytes_per_sec`
    /// seconds, so a large index can be uploaded over a slow link.
    pub min_upload_bytes_per_sec: u64,
    /// S3 only: credentials; None reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
    /// and `AWS_SESSION_TOKEN`.
    pub s3: Option<S3Credentials>,
    /// S3 only: objects larger than this are uploaded in parts of this size
    /// (at least [`MIN_MULTIPART_THRESHOLD`]).
    pub multipart_threshold_bytes: u64,
    /// Whether saves and deletes carry preconditions.
    pub conditional_writes: ConditionalWrites,
}

/// Most retries accepted: more would only hide an outage for hours.
pub const MAX_RETRIES: u32 = 100;
/// Longest `Retry-After` honoured; a server asking for more gets this.
pub const MAX_RETRY_AFTER_MS: u64 = 60_000;

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            retries: 3,
            max_object_bytes: 4 << 30,
            max_list_page_bytes: 64 << 20,
            max_list_keys: 1_000_000,
            list_timeout_ms: 300_000,
            min_upload_bytes_per_sec: 1 << 20,
            s3: None,
            multipart_threshold_bytes: 64 << 20,
            conditional_writes: ConditionalWrites::Auto,
        }
    }
}

/// Opens the store named by `url`.
///
/// * `http://host:port[/base]` or `https://...` gives an [`HttpStore`];
/// * `s3://bucket[/prefix][?endpoint=...&region=...&path_style=...]` gives an [`S3Store`];
/// * `file:///abs/path` or a plain filesystem path (relative or absolute)
///   gives a [`DirStore`] (the directory is created if missing).
///
/// The empty string (in-memory, handled by the caller), leading or trailing
/// whitespace, other schemes, and anything with a `:` before its first `/`
/// (`localhost:7070`, `http:/h:p`: almost surely a mistyped URL, not a
/// directory) are [`crate::Error::InvalidArgument`].
pub fn open_store(url: &str, opts: &StoreOptions) -> Result<Box<dyn Store>, crate::Error> {
    const FORMS: &str =
        "use http://host:port[/base], https://..., s3://bucket[/prefix], file:///absolute/path \
                         or a directory path";
    if url.is_empty() {
        return Err(crate::Error::InvalidArgument(
            "store url is empty (in-memory indexes have no store)".into(),
        ));
    }
    if url.trim() != url {
        return Err(crate::Error::InvalidArgument(format!(
            "store url {url:?} has leading or trailing whitespace; {FORMS}"
        )));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(Box::new(HttpStore::new(url, opts)?));
    }
    if lower.starts_with("s3://") {
        return Ok(Box::new(S3Store::open(url, opts)?));
    }
    if lower.starts_with("file://") {
        let path = &url["file://".len()..];
        if !path.starts_with('/') {
            return Err(crate::Error::InvalidArgument(format!(
                "store url {url:?}: file URLs must be file:///absolute/path"
            )));
        }
        let path = decode_key_segment_lenient(path).ok_or_else(|| {
            crate::Error::InvalidArgument(format!("store url {url:?}: bad percent escape"))
        })?;
        return Ok(Box::new(DirStore::open(path, opts)?));
    }
    let before_slash = url.split('/').next().unwrap_or("");
    if let Some(pos) = before_slash.find(':') {
        return Err(crate::Error::InvalidArgument(format!(
            "store url {url:?}: {:?} is not a supported scheme and a directory path \
             with ':' before its first '/' is taken for a mistyped URL; {FORMS}",
            &url[..pos]
        )));
    }
    Ok(Box::new(DirStore::open(url, opts)?))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes every byte of `key` except `A-Z a-z 0-9 - . _ ~`,
/// with uppercase hex digits. The result is a single path segment / file name.
pub fn encode_key_segment(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// The strict inverse of [`encode_key_segment`]: `Some(k)` exactly when
/// `encode_key_segment(k) == s`. Bad or lowercase escapes, escaped
/// unreserved bytes, raw reserved characters and invalid UTF-8 give `None`.
pub fn decode_key_segment(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = upper_hex_value(*bytes.get(i + 1)?)?;
            let lo = upper_hex_value(*bytes.get(i + 2)?)?;
            let v = (hi << 4) | lo;
            if is_unreserved(v) {
                return None;
            }
            out.push(v);
            i += 3;
        } else if is_unreserved(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

fn upper_hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Lenient percent-decoding (either hex case, any other byte kept as is),
/// for what other clients may send; `None` on a bad escape or invalid UTF-8.
pub(crate) fn decode_key_segment_lenient(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The longest percent-encoded key a store accepts: the file-name limit
/// (`NAME_MAX`) of the directory store and of the reference storaged, so a
/// key that one store holds every store holds.
pub const MAX_ENCODED_KEY_BYTES: usize = 255;

/// Keys every store refuses: they cannot be a file name or a path segment,
/// or their file name would be longer than [`MAX_ENCODED_KEY_BYTES`].
pub fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key == "." || key == ".." {
        return Err(StoreError::Storage(format!(
            "invalid key {key:?}: keys must be non-empty and not \".\" or \"..\""
        )));
    }
    let n = encoded_len(key);
    if n > MAX_ENCODED_KEY_BYTES {
        return Err(StoreError::Storage(format!(
            "key too long: {n} bytes percent-encoded, at most {MAX_ENCODED_KEY_BYTES}"
        )));
    }
    Ok(())
}

/// `encode_key_segment(key).len()` without building it.
pub fn encoded_len(key: &str) -> usize {
    key.bytes()
        .map(|b| if is_unreserved(b) { 1 } else { 3 })
        .sum()
}

/// Delay before retry number `attempt` (1-based): exponential from 50 ms,
/// capped at 2 s, with "full jitter" in [delay/2, delay] derived from the
/// clock and a process-wide counter (no random number generator needed).
pub(crate) fn backoff_delay(attempt: u32) -> Duration {
    const BASE_MS: u64 = 50;
    const CAP_MS: u64 = 2_000;
    let exp = BASE_MS.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    let delay = exp.min(CAP_MS);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let half = delay / 2;
    Duration::from_millis(half + x % (delay - half + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_examples() {
        assert_eq!(encode_key_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_key_segment("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(encode_key_segment("%"), "%25");
        assert_eq!(encode_key_segment("é"), "%C3%A9");
        assert_eq!(encode_key_segment("../../etc/x"), "..%2F..%2Fetc%2Fx");
    }

    #[test]
    fn round_trip_every_char() {
        for c in (0u32..0x800).chain([0xFFFF, 0x1F600, 0x10FFFF]) {
            if let Some(c) = char::from_u32(c) {
                let k = format!("x{c}y");
                let e = encode_key_segment(&k);
                assert!(e.bytes().all(|b| is_unreserved(b) || b == b'%'));
                assert_eq!(decode_key_segment(&e).as_deref(), Some(k.as_str()));
            }
        }
    }

    #[test]
    fn every_byte_escape() {
        for b in 0u8..=255 {
            let s = format!("%{b:02X}");
            let d = decode_key_segment(&s);
            if is_unreserved(b) || b >= 0x80 {
                // escaped unreserved bytes are not canonical; lone high bytes are not UTF-8
                assert_eq!(d, None, "{s}");
            } else {
                assert_eq!(d, Some((b as char).to_string()), "{s}");
                assert_eq!(encode_key_segment(&(b as char).to_string()), s);
            }
        }
    }

    #[test]
    fn decode_rejects_bad_input() {
        for bad in [
            "%", "%2", "%G0", "%2f", "a%zz", "%41", "a/b", "a b", "%C3", "%FF", "é", "a?b", "%%",
        ] {
            assert_eq!(decode_key_segment(bad), None, "{bad:?}");
        }
        assert_eq!(decode_key_segment("").as_deref(), Some(""));
    }

    #[test]
    fn lenient_decode() {
        assert_eq!(
            decode_key_segment_lenient("a%2fb%41").as_deref(),
            Some("a/bA")
        );
        assert_eq!(decode_key_segment_lenient("%zz"), None);
        assert_eq!(decode_key_segment_lenient("%ff"), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        for attempt in 1..40 {
            let d = backoff_delay(attempt).as_millis() as u64;
            let full = (50u64 << (attempt - 1).min(16)).min(2000);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d}");
        }
    }

    #[test]
    fn error_conversion() {
        let e: crate::Error = StoreError::KeyNotFound("k".into()).into();
        assert_eq!(e, crate::Error::NotFound("k".into()));
        let e: crate::Error = StoreError::Storage("s".into()).into();
        assert_eq!(e, crate::Error::Storage("s".into()));
    }
}
