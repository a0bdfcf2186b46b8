//! `Db`: a registry of named indexes with optional persistence.
//!
//! Each index is one LHV1 object, `{prefix}{name}.lhv1`. On open, every such
//! object is loaded; after create, add and remove the index is saved (in the
//! calling thread, by a background saver, or only on request, per the `save`
//! option); deleting an index deletes its object. A failed save is logged and
//! reported by `save`/`flush`, never fatal: in-memory state is the truth while
//! the process runs.
//!
//! Locking: saving one index holds that index's save lock (so saves of one
//! index are ordered and a delete cannot race a save), and the index's read
//! lock only while the snapshot is copied in memory, never while bytes travel.
//! Other indexes are not blocked at all.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::index::{Index, IndexObserver, IndexParams};
use crate::lhv1;
use crate::log::{self, log};
use crate::registry::Registry;
use crate::storeclient::{
    open_store, ConditionalWrites, Precondition, S3Credentials, Store, StoreError, StoreOptions,
    MIN_MULTIPART_THRESHOLD,
};

pub use crate::log::set_log_callback;

/// When indexes are saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Inside the mutating call (the default).
    Sync,
    /// By a background thread, at most every `save_interval_ms`, coalescing
    /// many changes into one upload; flush and close wait for it.
    Async,
    /// Only on `save` and `flush`.
    Manual,
}

/// The longest async save interval or timeout accepted (one day): larger
/// values would overflow time arithmetic.
pub const MAX_SAVE_INTERVAL_MS: u64 = 24 * 60 * 60 * 1000;

/// Registry options (the `options_json` of `vectord_registry_open`).
#[derive(Debug, Clone)]
pub struct Options {
    pub prefix: String,
    pub store: StoreOptions,
    pub save: SaveMode,
    pub save_interval_ms: u64,
    /// Never write: create, import, delete, add and remove fail.
    pub read_only: bool,
    /// Run `refresh` in the background this often (0 = never).
    pub refresh_interval_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "_vectors/".into(),
            store: StoreOptions::default(),
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
    save: Option<String>,
    save_interval_ms: Option<u64>,
    s3: Option<S3Json>,
    multipart_threshold_bytes: Option<u64>,
    conditional_writes: Option<String>,
    read_only: Option<bool>,
    refresh_interval_ms: Option<u64>,
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
        if let Some(t) = j.timeout_ms {
            if t == 0 || t > MAX_SAVE_INTERVAL_MS {
                return Err(Error::InvalidArgument(format!(
                    "options_json: timeout_ms {t} is outside 1..={MAX_SAVE_INTERVAL_MS}"
                )));
            }
            o.store.timeout_ms = t;
        }
        if let Some(t) = j.connect_timeout_ms {
            if t == 0 || t > MAX_SAVE_INTERVAL_MS {
                return Err(Error::InvalidArgument(format!(
                    "options_json: connect_timeout_ms {t} is outside 1..={MAX_SAVE_INTERVAL_MS}"
                )));
            }
            o.store.connect_timeout_ms = t;
        }
        if let Some(r) = j.retries {
            o.store.retries = r;
        }
        if let Some(m) = j.max_object_bytes {
            if m == 0 {
                return Err(Error::InvalidArgument(
                    "options_json: max_object_bytes is 0".into(),
                ));
            }
            o.store.max_object_bytes = m;
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
            if i > MAX_SAVE_INTERVAL_MS {
                return Err(Error::InvalidArgument(format!(
                    "options_json: save_interval_ms {i} is more than {MAX_SAVE_INTERVAL_MS} (one day)"
                )));
            }
            o.save_interval_ms = i;
        }
        o.apply_shared_storage(j.s3, j.multipart_threshold_bytes, j.conditional_writes)?;
        if let Some(r) = j.read_only {
            o.read_only = r;
        }
        if let Some(i) = j.refresh_interval_ms {
            if i > MAX_SAVE_INTERVAL_MS {
                return Err(Error::InvalidArgument(format!(
                    "options_json: refresh_interval_ms {i} is more than {MAX_SAVE_INTERVAL_MS} (one day)"
                )));
            }
            o.refresh_interval_ms = i;
        }
        Ok(o)
    }
}

impl Options {
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
            if t < MIN_MULTIPART_THRESHOLD {
                return Err(Error::InvalidArgument(format!(
                    "options_json: multipart_threshold_bytes {t} is below the S3 minimum part \
                     size of {MIN_MULTIPART_THRESHOLD} (5 MiB)"
                )));
            }
            self.store.multipart_threshold_bytes = t;
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

/// What is known about saving one registered index.
struct SaveState {
    name: String,
    index: Arc<Index>,
    lock: Mutex<Saved>,
}

struct Saved {
    /// Deleted or closed: never write this object again.
    detached: bool,
    /// `Index::version()` of the last successful save, None if never saved.
    version: Option<u64>,
    /// The precondition of the next write of this index's object: the
    /// version it was loaded from or last saved as, `Absent` for an index
    /// this process created, `Any` when the store gave no version (or
    /// conditional writes are off).
    next: Precondition,
    /// Whether an object of this index is known to have been in the store
    /// (loaded or saved): refresh drops such an index when the object goes.
    on_store: bool,
}

struct Persistor {
    store: Box<dyn Store>,
    prefix: String,
    conditional: ConditionalWrites,
    read_only: bool,
    refresh_interval: Duration,
    refresher: Mutex<Option<JoinHandle<()>>>,
    mode: SaveMode,
    interval: Duration,
    states: Mutex<HashMap<String, Arc<SaveState>>>,
    /// Names whose object failed to load, with the reason. Such an object is
    /// never overwritten or deleted automatically.
    quarantined: Mutex<HashMap<String, String>>,
    dirty: Mutex<BTreeSet<String>>,
    wake: Condvar,
    stop: AtomicBool,
    saver: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Persistor {
    fn key(&self, name: &str) -> String {
        format!("{}{}.lhv1", self.prefix, name)
    }

    /// Saves the index if it changed since its last save.
    fn save_state(&self, st: &SaveState) -> Result<()> {
        let mut saved = lock(&st.lock);
        if saved.detached {
            return Ok(());
        }
        let current = st.index.version();
        if saved.version == Some(current) {
            return Ok(());
        }
        if self.read_only {
            return Err(self.read_only_error(&format!("saving index {:?}", st.name)));
        }
        let snap = st.index.snapshot();
        let snap_version = snap.version;
        let blob = lhv1::encode_owned(snap);
        let key = self.key(&st.name);
        match self.store.put_if(&key, &blob, &saved.next) {
            Ok(version) => {
                saved.version = Some(snap_version);
                saved.on_store = true;
                saved.next = self.next_precondition(&st.name, version)?;
                log(
                    log::DEBUG,
                    &format!("saved index {:?} ({} bytes) to {key}", st.name, blob.len()),
                );
                Ok(())
            }
            Err(StoreError::Conflict(why)) => Err(Error::Conflict(format!(
                "saving index {:?} to {} as {key}: another writer changed the object since \
                 this process loaded or saved it ({why}); the local changes are kept in \
                 memory and not written: reload the index (discarding them) or refresh",
                st.name,
                self.store.describe()
            ))),
            Err(e) => Err(Error::Storage(format!(
                "saving index {:?} to {} as {key}: {e}",
                st.name,
                self.store.describe()
            ))),
        }
    }

    /// The precondition for the write after one that left `version`.
    fn next_precondition(&self, name: &str, version: Option<String>) -> Result<Precondition> {
        match (self.conditional, version) {
            (ConditionalWrites::Off, _) => Ok(Precondition::Any),
            (_, Some(v)) => Ok(Precondition::Version(v)),
            (ConditionalWrites::Auto, None) => Ok(Precondition::Any),
            (ConditionalWrites::Required, None) => Err(Error::Unsupported(format!(
                "index {name:?}: conditional_writes is \"required\" but {} reported no \
                 version (ETag) for its object",
                self.store.describe()
            ))),
        }
    }

    /// The precondition of the first write of an index this process created.
    fn create_precondition(&self) -> Precondition {
        match self.conditional {
            ConditionalWrites::Off => Precondition::Any,
            _ => Precondition::Absent,
        }
    }

    fn read_only_error(&self, what: &str) -> Error {
        Error::InvalidArgument(format!(
            "{what}: the registry over {} is read-only (\"read_only\": true)",
            self.store.describe()
        ))
    }

    fn state(&self, name: &str) -> Option<Arc<SaveState>> {
        lock(&self.states).get(name).cloned()
    }

    fn mark_dirty(&self, name: &str) {
        lock(&self.dirty).insert(name.to_string());
        self.wake.notify_all();
    }

    /// The background saver: waits for dirty indexes, then saves them at
    /// most once per interval.
    fn run_saver(self: Arc<Self>) {
        // None until the first round: the first change is saved at once.
        let mut last: Option<Instant> = None;
        loop {
            {
                let mut dirty = lock(&self.dirty);
                while dirty.is_empty() && !self.stop.load(Ordering::Acquire) {
                    dirty = self.wake.wait(dirty).unwrap_or_else(|p| p.into_inner());
                }
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let now = Instant::now();
            let due = last.map_or(now, |l| l + self.interval);
            if due > now {
                // Let more changes pile up; close wakes us early.
                let dirty = lock(&self.dirty);
                let _ = self.wake.wait_timeout(dirty, due - now);
                if self.stop.load(Ordering::Acquire) {
                    return;
                }
                if Instant::now() < due {
                    continue;
                }
            }
            last = Some(Instant::now());
            let names = std::mem::take(&mut *lock(&self.dirty));
            for name in names {
                if let Some(st) = self.state(&name) {
                    if let Err(e) = self.save_state(&st) {
                        log(log::ERROR, &e.to_string());
                    }
                }
            }
        }
    }
}

/// Installed on every index of a persistent Db.
struct Hook {
    persistor: Weak<Persistor>,
    state: Weak<SaveState>,
}

impl IndexObserver for Hook {
    fn changed(&self, _index: &Index) {
        let (Some(p), Some(st)) = (self.persistor.upgrade(), self.state.upgrade()) else {
            return;
        };
        match p.mode {
            SaveMode::Sync => {
                if let Err(e) = p.save_state(&st) {
                    log(log::ERROR, &format!("{e} (the change is kept in memory)"));
                }
            }
            SaveMode::Async => p.mark_dirty(&st.name),
            SaveMode::Manual => {}
        }
    }
}

/// A registry of named indexes, persistent when opened with a store.
/// `Send + Sync`; every method may be called from many threads.
pub struct Db {
    registry: Registry,
    persist: Option<Arc<Persistor>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("indexes", &self.registry.names())
            .field("store", &self.persist.as_ref().map(|p| p.store.describe()))
            .finish()
    }
}

impl Db {
    /// Opens a registry. `storage_url` None or "" keeps everything in
    /// memory; otherwise every `{prefix}*.lhv1` object in the store is loaded.
    /// If listing the store fails, open fails with `Storage`. An object that
    /// fails to load is logged and left alone, and its name cannot be used
    /// until an operator removes it.
    pub fn open(storage_url: Option<&str>, options_json: Option<&str>) -> Result<Arc<Db>> {
        let opts = Options::from_json(options_json)?;
        let url = storage_url.unwrap_or("");
        if url.is_empty() {
            return Ok(Arc::new(Db {
                registry: Registry::new(),
                persist: None,
                closed: AtomicBool::new(false),
            }));
        }
        let store = open_store(url, &opts.store)?;
        Db::with_store(store, opts)
    }

    /// Opens a registry over a store built by the caller.
    pub fn with_store(store: Box<dyn Store>, opts: Options) -> Result<Arc<Db>> {
        let persistor = Arc::new(Persistor {
            store,
            prefix: opts.prefix,
            conditional: opts.store.conditional_writes,
            read_only: opts.read_only,
            refresh_interval: Duration::from_millis(opts.refresh_interval_ms),
            refresher: Mutex::new(None),
            mode: opts.save,
            interval: Duration::from_millis(opts.save_interval_ms),
            states: Mutex::new(HashMap::new()),
            quarantined: Mutex::new(HashMap::new()),
            dirty: Mutex::new(BTreeSet::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            saver: Mutex::new(None),
        });
        let db = Arc::new(Db {
            registry: Registry::new(),
            persist: Some(persistor.clone()),
            closed: AtomicBool::new(false),
        });
        let keys = persistor.store.list(&persistor.prefix).map_err(|e| {
            Error::Storage(format!(
                "listing {:?} in {}: {e}",
                persistor.prefix,
                persistor.store.describe()
            ))
        })?;
        for key in keys {
            let Some(name) = key
                .strip_prefix(persistor.prefix.as_str())
                .and_then(|k| k.strip_suffix(".lhv1"))
            else {
                continue;
            };
            if let Err(why) = db.load(&persistor, &key, name) {
                log(
                    log::ERROR,
                    &format!(
                        "index {name:?} not loaded from {key} in {}: {why}; the object is left as it is",
                        persistor.store.describe()
                    ),
                );
                lock(&persistor.quarantined).insert(name.to_string(), why.to_string());
            }
        }
        if persistor.mode == SaveMode::Async {
            let p = persistor.clone();
            let handle = std::thread::Builder::new()
                .name("vectord-saver".into())
                .spawn(move || p.run_saver())
                .map_err(|e| Error::Internal(format!("starting the saver thread: {e}")))?;
            *lock(&persistor.saver) = Some(handle);
        }
        if !persistor.refresh_interval.is_zero() {
            db.start_refresher(&persistor)?;
        }
        Ok(db)
    }

    fn load(&self, p: &Arc<Persistor>, key: &str, name: &str) -> Result<()> {
        let (index, next) = p.fetch(key, name)?;
        index.set_read_only(p.read_only);
        let index = self.registry.register(Arc::new(index))?;
        self.attach(p, index.clone(), Some(index.version()), next, true);
        Ok(())
    }

    fn attach(
        &self,
        p: &Arc<Persistor>,
        index: Arc<Index>,
        saved: Option<u64>,
        next: Precondition,
        on_store: bool,
    ) -> Arc<SaveState> {
        let st = Arc::new(SaveState {
            name: index.name().to_string(),
            index: index.clone(),
            lock: Mutex::new(Saved {
                detached: false,
                version: saved,
                next,
                on_store,
            }),
        });
        lock(&p.states).insert(st.name.clone(), st.clone());
        index.set_observer(Some(Arc::new(Hook {
            persistor: Arc::downgrade(p),
            state: Arc::downgrade(&st),
        })));
        st
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::InvalidArgument("the registry is closed".into()));
        }
        Ok(())
    }

    fn check_not_quarantined(&self, name: &str) -> Result<()> {
        if let Some(p) = &self.persist {
            if let Some(why) = lock(&p.quarantined).get(name) {
                return Err(Error::AlreadyExists(format!(
                    "index {name:?}: its object {} exists in {} but failed to load ({why}); \
                     remove the object to reuse the name",
                    p.key(name),
                    p.store.describe()
                )));
            }
        }
        Ok(())
    }

    /// Saves a newly registered index according to the save mode.
    fn first_save(&self, p: &Arc<Persistor>, st: &SaveState) {
        match p.mode {
            SaveMode::Sync => {
                if let Err(e) = p.save_state(st) {
                    log(log::ERROR, &format!("{e} (the index is kept in memory)"));
                }
            }
            SaveMode::Async => p.mark_dirty(&st.name),
            SaveMode::Manual => {}
        }
    }

    /// Creates an empty index (and saves it); `AlreadyExists` if the name is
    /// taken, or held by an object that failed to load.
    pub fn create(&self, params: IndexParams) -> Result<Arc<Index>> {
        self.check_open()?;
        self.check_not_quarantined(&params.name)?;
        self.check_writable("creating an index")?;
        let index = self.registry.create(params)?;
        if let Some(p) = &self.persist {
            let st = self.attach(p, index.clone(), None, p.create_precondition(), false);
            self.first_save(p, &st);
        }
        Ok(index)
    }

    /// Decodes an LHV1 blob and registers it under the name it carries.
    pub fn import(&self, blob: &[u8]) -> Result<Arc<Index>> {
        self.check_open()?;
        self.check_writable("importing an index")?;
        let index = lhv1::decode(blob)?;
        self.check_not_quarantined(index.name())?;
        let index = self.registry.register(Arc::new(index))?;
        if let Some(p) = &self.persist {
            let st = self.attach(p, index.clone(), None, p.create_precondition(), false);
            self.first_save(p, &st);
        }
        Ok(index)
    }

    pub fn get(&self, name: &str) -> Result<Arc<Index>> {
        self.check_open()?;
        self.registry.get(name)
    }

    /// Index names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.registry.names()
    }

    /// Deletes an index and its object. The object goes first: if the store
    /// refuses, the index stays (so it cannot come back after a restart
    /// while the caller believes it gone). Handles to it stay usable.
    pub fn delete(&self, name: &str) -> Result<()> {
        self.check_open()?;
        let index = self.registry.get(name)?;
        let Some(p) = &self.persist else {
            self.registry.delete(name)?;
            return Ok(());
        };
        self.check_writable(&format!("deleting index {name:?}"))?;
        let st = p.state(name);
        let mut guard = st.as_ref().map(|s| lock(&s.lock));
        let cond = guard.as_ref().map_or(Precondition::Any, |g| g.next.clone());
        let outcome = match cond {
            // Never stored by this process: whatever is there is another's.
            Precondition::Absent => Ok(()),
            c => p.store.delete_if(&p.key(name), &c),
        };
        match outcome {
            Ok(()) | Err(StoreError::KeyNotFound(_)) => {}
            Err(StoreError::Conflict(why)) => {
                return Err(Error::Conflict(format!(
                    "deleting index {name:?}: {} in {} was changed by another writer since \
                     this process loaded or saved it ({why}); nothing was deleted",
                    p.key(name),
                    p.store.describe()
                )))
            }
            Err(e) => {
                return Err(Error::Storage(format!(
                    "deleting index {name:?}: removing {} from {}: {e}",
                    p.key(name),
                    p.store.describe()
                )))
            }
        }
        if let Some(g) = guard.as_mut() {
            g.detached = true;
        }
        drop(guard);
        index.set_observer(None);
        lock(&p.states).remove(name);
        lock(&p.dirty).remove(name);
        self.registry.delete(name)?;
        Ok(())
    }

    pub fn is_persistent(&self) -> bool {
        self.persist.is_some()
    }

    /// Saves one index now (if it changed since its last save).
    /// `InvalidArgument` if this registry has no store or the index is not
    /// (or no longer) registered in it.
    pub fn save(&self, index: &Index) -> Result<()> {
        self.check_open()?;
        let Some(p) = &self.persist else {
            return Err(Error::InvalidArgument(
                "the index belongs to no persistent registry".into(),
            ));
        };
        let st = p
            .state(index.name())
            .filter(|s| std::ptr::eq(Arc::as_ptr(&s.index), index))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "index {:?} is not registered in this registry",
                    index.name()
                ))
            })?;
        p.save_state(&st)
    }

    /// Saves every index that changed since its last save. Tries them all;
    /// returns the first failure.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.flush_all()
    }

    fn flush_all(&self) -> Result<()> {
        let Some(p) = &self.persist else {
            return Ok(());
        };
        let states: Vec<Arc<SaveState>> = lock(&p.states).values().cloned().collect();
        let mut first = None;
        for st in states {
            if let Err(e) = p.save_state(&st) {
                log(log::ERROR, &e.to_string());
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Stops the background saver, saves what is pending, and detaches every
    /// index: handles stay usable, but their changes are no longer saved.
    /// Idempotent.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(p) = &self.persist else {
            return;
        };
        p.stop.store(true, Ordering::Release);
        p.wake.notify_all();
        if let Some(h) = lock(&p.saver).take() {
            let _ = h.join();
        }
        let _ = self.flush_all();
        let states: Vec<Arc<SaveState>> = lock(&p.states).drain().map(|(_, s)| s).collect();
        for st in states {
            lock(&st.lock).detached = true;
            st.index.set_observer(None);
        }
        let refresher = lock(&p.refresher).take();
        if let Some(h) = refresher {
            // The refresher may itself drop the last Arc<Db> and so run this.
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.close();
    }
}

// ---------------------------------------------------------------------------
// Shared storage: several processes over one store (docs/storage.md).
// Conditional writes live in `Persistor::save_state` and `Db::delete`; what
// follows is loading with versions, read-only registries, refresh and reload.
// ---------------------------------------------------------------------------

/// What one refresh found that it could not apply.
#[derive(Debug, Default)]
struct RefreshProblems {
    /// Indexes whose stored object changed or went while they have unsaved
    /// local changes (kept, never discarded silently).
    conflicts: Vec<String>,
    /// Other failures (listing aside, which fails the whole refresh).
    errors: Vec<String>,
}

impl Persistor {
    /// Downloads and decodes the object `key` of index `name`, with the
    /// precondition its next write must carry.
    fn fetch(&self, key: &str, name: &str) -> Result<(Index, Precondition)> {
        let (blob, version) = self.store.get_versioned(key).map_err(Error::from)?;
        let index = lhv1::decode(&blob)?;
        if index.name() != name {
            return Err(Error::Corrupt(format!(
                "the object holds index {:?}, not {name:?}",
                index.name()
            )));
        }
        let next = self.next_precondition(name, version)?;
        Ok((index, next))
    }

    fn name_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.prefix.as_str())
            .and_then(|k| k.strip_suffix(".lhv1"))
    }
}

impl Db {
    fn check_writable(&self, what: &str) -> Result<()> {
        match &self.persist {
            Some(p) if p.read_only => Err(p.read_only_error(what)),
            _ => Ok(()),
        }
    }

    /// Whether the registry was opened with `"read_only": true`.
    pub fn is_read_only(&self) -> bool {
        self.persist.as_ref().is_some_and(|p| p.read_only)
    }

    /// Brings the registry up to date with its store: loads new objects,
    /// reloads indexes whose stored version changed, drops indexes whose
    /// object is gone, each only when the index has no unsaved local
    /// changes; those are reported together as one `Conflict` error after
    /// everything else was applied. Listing is all it costs when nothing
    /// changed and the store lists versions (S3, directory). In memory: a
    /// no-op.
    pub fn refresh(&self) -> Result<()> {
        self.check_open()?;
        let Some(p) = &self.persist else {
            return Ok(());
        };
        let listed = p.store.list_versions(&p.prefix).map_err(|e| {
            Error::Storage(format!(
                "refresh: listing {:?} in {}: {e}",
                p.prefix,
                p.store.describe()
            ))
        })?;
        let mut problems = RefreshProblems::default();
        let mut present = BTreeSet::new();
        for l in &listed {
            let Some(name) = p.name_of(&l.key) else {
                continue;
            };
            present.insert(name.to_string());
            match p.state(name) {
                None => {
                    if lock(&p.quarantined).contains_key(name) {
                        continue;
                    }
                    match self.load(p, &l.key, name) {
                        Ok(()) => log(log::INFO, &format!("refresh: loaded new index {name:?}")),
                        // Created locally meanwhile (not saved yet): a race
                        // the next save of that index reports as a conflict.
                        Err(Error::AlreadyExists(_)) => {}
                        Err(e) => problems
                            .errors
                            .push(format!("loading new index {name:?}: {e}")),
                    }
                }
                Some(st) => {
                    if let Err(e) = self.refresh_one(p, &st, l.version.as_deref(), &mut problems) {
                        problems.errors.push(format!("index {name:?}: {e}"));
                    }
                }
            }
        }
        let states: Vec<Arc<SaveState>> = lock(&p.states).values().cloned().collect();
        for st in states {
            if present.contains(&st.name) {
                continue;
            }
            let mut saved = lock(&st.lock);
            if saved.detached || !saved.on_store {
                continue; // created here and not saved yet: not gone
            }
            if saved.version != Some(st.index.version()) {
                problems.conflicts.push(format!(
                    "index {:?}: its object was deleted by another writer, and it has unsaved \
                     local changes (kept; delete or reload it)",
                    st.name
                ));
                continue;
            }
            saved.detached = true;
            drop(saved);
            self.drop_local(p, &st);
            log(
                log::INFO,
                &format!("refresh: dropped index {:?} (object gone)", st.name),
            );
        }
        if !problems.conflicts.is_empty() {
            let mut all = problems.conflicts;
            all.extend(problems.errors);
            return Err(Error::Conflict(format!("refresh: {}", all.join("; "))));
        }
        if !problems.errors.is_empty() {
            return Err(Error::Storage(format!(
                "refresh: {}",
                problems.errors.join("; ")
            )));
        }
        Ok(())
    }

    /// Reloads one registered index if its stored version differs from the
    /// one it was loaded from or saved as.
    fn refresh_one(
        &self,
        p: &Arc<Persistor>,
        st: &SaveState,
        listed: Option<&str>,
        problems: &mut RefreshProblems,
    ) -> Result<()> {
        let mut saved = lock(&st.lock);
        if saved.detached {
            return Ok(());
        }
        if let (Some(v), Precondition::Version(known)) = (listed, &saved.next) {
            if v == known {
                return Ok(());
            }
        }
        let key = p.key(&st.name);
        let (fresh, next) = p.fetch(&key, &st.name)?;
        if next == saved.next && next != Precondition::Any {
            return Ok(()); // listing gave no version; the download says unchanged
        }
        if saved.version != Some(st.index.version()) {
            problems.conflicts.push(format!(
                "index {:?}: another writer saved a newer version, and it has unsaved local \
                 changes (kept; reload it to take the stored version)",
                st.name
            ));
            return Ok(());
        }
        let v = st.index.replace_contents(fresh)?;
        saved.version = Some(v);
        saved.next = next;
        saved.on_store = true;
        log(log::INFO, &format!("refresh: reloaded index {:?}", st.name));
        Ok(())
    }

    /// Discards the local state of index `name` and loads the stored one.
    /// Handles already held see the reloaded contents. If the store has no
    /// object for it, the index is dropped from the registry (`NotFound` if
    /// neither has it). An index only in the store is loaded.
    pub fn reload(&self, name: &str) -> Result<()> {
        self.check_open()?;
        let Some(p) = &self.persist else {
            return Err(Error::InvalidArgument(
                "reload needs a registry with a store".into(),
            ));
        };
        let key = p.key(name);
        let Some(st) = p.state(name) else {
            lock(&p.quarantined).remove(name);
            return self.load(p, &key, name).map_err(|e| match e {
                Error::NotFound(_) => Error::NotFound(format!(
                    "index {name:?}: neither registered nor in {}",
                    p.store.describe()
                )),
                e => e,
            });
        };
        let mut saved = lock(&st.lock);
        match p.fetch(&key, name) {
            Ok((fresh, next)) => {
                let v = st.index.replace_contents(fresh)?;
                saved.version = Some(v);
                saved.next = next;
                saved.on_store = true;
                lock(&p.dirty).remove(name);
                Ok(())
            }
            Err(Error::NotFound(_)) => {
                saved.detached = true;
                drop(saved);
                self.drop_local(p, &st);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets a registered index (its object is gone): no more saves,
    /// handles stay usable.
    fn drop_local(&self, p: &Arc<Persistor>, st: &SaveState) {
        st.index.set_observer(None);
        let mut states = lock(&p.states);
        if states
            .get(&st.name)
            .is_some_and(|s| Arc::ptr_eq(&s.index, &st.index))
        {
            states.remove(&st.name);
        }
        drop(states);
        lock(&p.dirty).remove(&st.name);
        if let Ok(i) = self.registry.get(&st.name) {
            if Arc::ptr_eq(&i, &st.index) {
                let _ = self.registry.delete(&st.name);
            }
        }
    }

    /// Starts the background refresher (`refresh_interval_ms`). It holds
    /// only a weak reference, so it never keeps a registry alive.
    fn start_refresher(self: &Arc<Self>, p: &Arc<Persistor>) -> Result<()> {
        let weak = Arc::downgrade(self);
        let interval = p.refresh_interval;
        let pw = Arc::downgrade(p);
        let handle = std::thread::Builder::new()
            .name("vectord-refresh".into())
            .spawn(move || loop {
                {
                    let Some(p) = pw.upgrade() else { return };
                    // The condvar is shared with the saver (woken by every
                    // change), so wait out the whole interval.
                    let deadline = Instant::now() + interval;
                    loop {
                        let guard = lock(&p.dirty);
                        if p.stop.load(Ordering::Acquire) {
                            return;
                        }
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        let _ = p.wake.wait_timeout(guard, deadline - now);
                    }
                }
                let Some(db) = weak.upgrade() else { return };
                if db.closed.load(Ordering::Acquire) {
                    return;
                }
                if let Err(e) = db.refresh() {
                    log(log::WARN, &format!("background {e}"));
                }
            })
            .map_err(|e| Error::Internal(format!("starting the refresh thread: {e}")))?;
        *lock(&p.refresher) = Some(handle);
        Ok(())
    }
}
