//! The registry's options (the `options_json` of `vectord_registry_open`).
//! Every option, its default and its bounds are listed in docs/c-api.md.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::storeclient::{
    ConditionalWrites, S3Credentials, StoreOptions, MAX_RETRIES, MIN_MULTIPART_THRESHOLD,
};

/// When indexes are saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Inside the mutating call (the default).
    Sync,
    /// By a background thread, at most every `save_interval_ms`, coalescing
    /// many changes into one upload; a failed save is retried with capped
    /// backoff; flush and close wait for it.
    Async,
    /// Only on `save` and `flush`.
    Manual,
}

/// The longest timeout or interval accepted (one day): larger values would
/// overflow time arithmetic.
pub const MAX_SAVE_INTERVAL_MS: u64 = 24 * 60 * 60 * 1000;
/// The most keys `max_list_keys` may allow.
pub const MAX_LIST_KEYS: u64 = 100_000_000;

#[derive(Debug, Clone)]
pub struct Options {
    /// Key prefix of the index objects (`{prefix}{name}.lhv1`).
    pub prefix: String,
    /// Timeouts, retries and size limits of the store.
    pub store: StoreOptions,
    pub save: SaveMode,
    pub save_interval_ms: u64,
    /// Budget of the whole open: listing and loading every index.
    pub open_timeout_ms: u64,
    /// Never write: create, import, delete, add and remove fail.
    pub read_only: bool,
    /// Run `refresh` in the background this often (0 = never).
    pub refresh_interval_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        let store = StoreOptions::default();
        Options {
            prefix: "_vectors/".into(),
            open_timeout_ms: store.list_timeout_ms,
            store,
            save: SaveMode::Sync,
            save_interval_ms: 200,
            read_only: false,
            refresh_interval_ms: 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct S3Json {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsJson {
    prefix: Option<String>,
    timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    retries: Option<u32>,
    max_object_bytes: Option<u64>,
    max_list_page_bytes: Option<u64>,
    max_list_keys: Option<u64>,
    open_timeout_ms: Option<u64>,
    min_upload_bytes_per_sec: Option<u64>,
    save: Option<String>,
    save_interval_ms: Option<u64>,
    s3: Option<S3Json>,
    multipart_threshold_bytes: Option<u64>,
    conditional_writes: Option<String>,
    read_only: Option<bool>,
    refresh_interval_ms: Option<u64>,
}

fn in_range(name: &str, v: u64, lo: u64, hi: u64) -> Result<u64> {
    if v < lo || v > hi {
        return Err(Error::InvalidArgument(format!(
            "options_json: {name} {v} is outside {lo}..={hi}"
        )));
    }
    Ok(v)
}

impl Options {
    /// Parses the options JSON; None means defaults. Unknown keys are an
    /// error, so a typo cannot pass silently.
    pub fn from_json(json: Option<&str>) -> Result<Options> {
        let mut o = Options::default();
        let Some(text) = json else {
            return Ok(o);
        };
        let j: OptionsJson = serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("options_json: {e}")))?;
        if let Some(p) = j.prefix {
            o.prefix = p;
        }
        const DAY: u64 = MAX_SAVE_INTERVAL_MS;
        if let Some(t) = j.timeout_ms {
            o.store.timeout_ms = in_range("timeout_ms", t, 1, DAY)?;
        }
        if let Some(t) = j.connect_timeout_ms {
            o.store.connect_timeout_ms = in_range("connect_timeout_ms", t, 1, DAY)?;
        }
        if let Some(r) = j.retries {
            o.store.retries = in_range("retries", r.into(), 0, MAX_RETRIES.into())? as u32;
        }
        if let Some(m) = j.max_object_bytes {
            o.store.max_object_bytes = in_range("max_object_bytes", m, 1, u64::MAX)?;
        }
        if let Some(m) = j.max_list_page_bytes {
            o.store.max_list_page_bytes = in_range("max_list_page_bytes", m, 1, u64::MAX)?;
        }
        if let Some(m) = j.max_list_keys {
            o.store.max_list_keys = in_range("max_list_keys", m, 1, MAX_LIST_KEYS)?;
        }
        if let Some(t) = j.open_timeout_ms {
            o.open_timeout_ms = in_range("open_timeout_ms", t, 1, DAY)?;
            o.store.list_timeout_ms = o.open_timeout_ms;
        }
        if let Some(r) = j.min_upload_bytes_per_sec {
            o.store.min_upload_bytes_per_sec =
                in_range("min_upload_bytes_per_sec", r, 1, u64::MAX)?;
        }
        if let Some(s) = j.save {
            o.save = match s.as_str() {
                "sync" => SaveMode::Sync,
                "async" => SaveMode::Async,
                "manual" => SaveMode::Manual,
                other => {
                    return Err(Error::InvalidArgument(format!(
                    "options_json: save is {other:?}; expected \"sync\", \"async\" or \"manual\""
                )))
                }
            };
        }
        if let Some(i) = j.save_interval_ms {
            o.save_interval_ms = in_range("save_interval_ms", i, 0, DAY)?;
        }
        o.apply_shared_storage(j.s3, j.multipart_threshold_bytes, j.conditional_writes)?;
        if let Some(r) = j.read_only {
            o.read_only = r;
        }
        if let Some(i) = j.refresh_interval_ms {
            o.refresh_interval_ms = in_range("refresh_interval_ms", i, 0, DAY)?;
        }
        Ok(o)
    }

    /// The options of shared storage: S3 credentials, multipart threshold,
    /// conditional writes.
    fn apply_shared_storage(
        &mut self,
        s3: Option<S3Json>,
        multipart_threshold_bytes: Option<u64>,
        conditional_writes: Option<String>,
    ) -> Result<()> {
        if let Some(c) = s3 {
            // Serde's messages never quote a string value, so a secret cannot
            // leak through a parse error either.
            self.store.s3 = Some(S3Credentials {
                access_key_id: c.access_key_id,
                secret_access_key: c.secret_access_key,
                session_token: c.session_token,
            });
        }
        if let Some(t) = multipart_threshold_bytes {
            self.store.multipart_threshold_bytes = in_range(
                "multipart_threshold_bytes (at least the S3 minimum part size, 5 MiB)",
                t,
                MIN_MULTIPART_THRESHOLD,
                u64::MAX,
            )?;
        }
        if let Some(c) = conditional_writes {
            self.store.conditional_writes = match c.as_str() {
                "auto" => ConditionalWrites::Auto,
                "required" => ConditionalWrites::Required,
                "off" => ConditionalWrites::Off,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "options_json: conditional_writes is {other:?}; expected \"auto\", \
                         \"required\" or \"off\""
                    )))
                }
            };
        }
        Ok(())
    }
}
