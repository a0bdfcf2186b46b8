//! [`Registry`]: named indexes, persistent when opened with a store.
//!
//! Each index is one LHV1 object, `{prefix}{name}.lhv1`. On open, every such
//! object is loaded; after create, add, remove and `set_ef_search` the index
//! is saved (in the calling thread, by a background saver, or only on
//! request, per the `save` option); deleting an index deletes its object. A
//! failed save is logged and reported by `save`/`flush`, never fatal:
//! in-memory state is the truth while the process runs.
//!
//! Locking: one lifecycle lock orders create, import, delete and close, so
//! a name's registry entry and its save state change together (a delete
//! racing a create of the same name cannot leave an object the registry no
//! longer knows). Saving one index holds that index's save lock (so saves
//! of one index are ordered and a delete waits for them), and the index's
//! read lock only while the snapshot is copied in memory. No lock is held
//! while a log line is delivered.
//!
//! Several registries (in one process or several, on one machine or many)
//! may share a store: saves and deletes are conditional on the object
//! version this registry last saw, so a stale writer gets `Conflict`
//! instead of overwriting; `refresh` and `reload` catch up with other
//! writers; `read_only` registries never write (see shared.rs and
//! docs/storage.md).

mod map;
mod options;
mod saver;
mod shared;

pub use options::{Options, SaveMode, MAX_LIST_KEYS, MAX_SAVE_INTERVAL_MS};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::index::{Index, IndexObserver, IndexParams};
use crate::lhv1;
use crate::log::{self, log};
use crate::storeclient::{
    check_key, open_store, ConditionalWrites, Precondition, Store, StoreError,
    MAX_ENCODED_KEY_BYTES,
};
use map::Map;
use saver::{lock, Persistor, SaveState, Saved};

/// Installed on every index of a persistent registry.
struct Hook {
    persistor: Weak<Persistor>,
    state: Weak<SaveState>,
}

impl IndexObserver for Hook {
    fn changed(&self, _index: &Index) {
        let (Some(p), Some(st)) = (self.persistor.upgrade(), self.state.upgrade()) else {
            return;
        };
        p.changed(&st, "the change");
    }
}

/// Named indexes, persistent when opened with a store.
/// `Send + Sync`; every method may be called from many threads.
pub struct Registry {
    map: Map,
    persist: Option<Arc<Persistor>>,
    /// Orders create, import, delete and close (see the module doc).
    lifecycle: Mutex<()>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("indexes", &self.map.names())
            .field("store", &self.persist.as_ref().map(|p| p.store.describe()))
            .finish()
    }
}

/// What loading one listed object gave.
enum Loaded {
    Ok,
    /// Deleted between list and get: nothing to load.
    Gone,
    /// Corrupt, unsupported or not the index its key names: quarantined.
    Bad(Error),
}

impl Registry {
    /// Opens a registry. `storage_url` None or "" keeps everything in
    /// memory; otherwise every `{prefix}*.lhv1` object in the store is loaded.
    /// If listing or reading the store fails (after the store's retries), or
    /// open takes longer than `open_timeout_ms`, open fails with `Storage`.
    /// A corrupt or unsupported object is logged and left alone, and its
    /// name cannot be used until an operator removes it.
    pub fn open(storage_url: Option<&str>, options_json: Option<&str>) -> Result<Arc<Registry>> {
        let opts = Options::from_json(options_json)?;
        let url = storage_url.unwrap_or("");
        if url.is_empty() {
            return Ok(Arc::new(Registry {
                map: Map::default(),
                persist: None,
                lifecycle: Mutex::new(()),
                closed: AtomicBool::new(false),
            }));
        }
        let store = open_store(url, &opts.store)?;
        Registry::with_store(store, opts)
    }

    /// Opens a registry over a store built by the caller.
    pub fn with_store(store: Box<dyn Store>, mut opts: Options) -> Result<Arc<Registry>> {
        if !store.supports_conditions() {
            match opts.store.conditional_writes {
                ConditionalWrites::Required => {
                    return Err(Error::Unsupported(format!(
                        "conditional_writes is \"required\" but {} does not support them",
                        store.describe()
                    )))
                }
                _ => opts.store.conditional_writes = ConditionalWrites::Off,
            }
        }
        let deadline = Instant::now() + Duration::from_millis(opts.open_timeout_ms);
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
            pending: Mutex::new(BTreeMap::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            saver: Mutex::new(None),
        });
        let reg = Arc::new(Registry {
            map: Map::default(),
            persist: Some(persistor.clone()),
            lifecycle: Mutex::new(()),
            closed: AtomicBool::new(false),
        });
        let p = &persistor;
        let keys = p
            .store
            .list(&p.prefix)
            .map_err(|e| p.listing_error("", e))?;
        if keys.len() as u64 > opts.store.max_list_keys {
            return Err(Error::Storage(format!(
                "listing {:?} in {}: {} keys, more than max_list_keys ({})",
                p.prefix,
                p.store.describe(),
                keys.len(),
                opts.store.max_list_keys
            )));
        }
        for key in keys {
            let Some(name) = key
                .strip_prefix(p.prefix.as_str())
                .and_then(|k| k.strip_suffix(".lhv1"))
            else {
                continue;
            };
            if Instant::now() > deadline {
                return Err(Error::Storage(format!(
                    "opening {}: not finished within open_timeout_ms ({} ms)",
                    p.store.describe(),
                    opts.open_timeout_ms
                )));
            }
            match reg.load(p, &key, name)? {
                Loaded::Ok => {}
                Loaded::Gone => log(
                    log::WARN,
                    &format!(
                        "index {name:?}: {key} was listed in {} but is gone; skipped",
                        p.store.describe()
                    ),
                ),
                Loaded::Bad(why) => {
                    log(
                        log::ERROR,
                        &format!(
                            "index {name:?} not loaded from {key} in {}: {why}; the object is \
                             left as it is and the name is blocked until it is removed",
                            p.store.describe()
                        ),
                    );
                    lock(&p.quarantined).insert(name.to_string(), why.to_string());
                }
            }
        }
        if p.mode == SaveMode::Async {
            let p2 = persistor.clone();
            let handle = std::thread::Builder::new()
                .name("vectord-saver".into())
                .spawn(move || p2.run_saver())
                .map_err(|e| Error::Internal(format!("starting the saver thread: {e}")))?;
            *lock(&p.saver) = Some(handle);
        }
        if !p.refresh_interval.is_zero() {
            reg.start_refresher(p)?;
        }
        Ok(reg)
    }

    /// Loads one listed object. Storage errors are returned (they fail open:
    /// a timeout must not make an index silently missing); only what the
    /// object itself holds can quarantine it.
    fn load(&self, p: &Arc<Persistor>, key: &str, name: &str) -> Result<Loaded> {
        let (blob, version) = match p.store.get_versioned(key) {
            Ok(b) => b,
            Err(StoreError::KeyNotFound(_)) => return Ok(Loaded::Gone),
            Err(e) => {
                return Err(Error::Storage(format!(
                    "loading index {name:?} from {key} in {}: {e}",
                    p.store.describe()
                )))
            }
        };
        let index = match lhv1::decode(&blob) {
            Ok(i) => i,
            Err(e) => return Ok(Loaded::Bad(e)),
        };
        if index.name() != name {
            return Ok(Loaded::Bad(Error::Corrupt(format!(
                "the object holds index {:?}, not {name:?}",
                index.name()
            ))));
        }
        let next = p.next_precondition(name, version)?;
        index.set_read_only(p.read_only);
        let index = match self.map.register(Arc::new(index)) {
            Ok(i) => i,
            Err(e) => return Ok(Loaded::Bad(e)),
        };
        self.attach(p, index.clone(), Some(index.version()), next, true);
        Ok(Loaded::Ok)
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

    /// Refuses a name this registry's store cannot hold, or whose object
    /// failed to load.
    fn check_name(&self, name: &str) -> Result<()> {
        let Some(p) = &self.persist else {
            return Ok(());
        };
        if let Err(e) = check_key(&p.key(name)) {
            return Err(Error::InvalidArgument(format!(
                "index name {name:?} cannot be saved: {e} (its object key is \
                 {:?}; at most {MAX_ENCODED_KEY_BYTES} bytes once every byte other \
                 than A-Z a-z 0-9 - . _ ~ becomes three)",
                p.key(name)
            )));
        }
        if let Some(why) = lock(&p.quarantined).get(name) {
            return Err(Error::AlreadyExists(format!(
                "index {name:?}: its object {} exists in {} but failed to load ({why}); \
                 remove the object to reuse the name",
                p.key(name),
                p.store.describe()
            )));
        }
        Ok(())
    }

    /// Registers `make()`'s index under the lifecycle lock, then saves it
    /// per the save mode (outside it: a delete that slips in between marks
    /// the state detached under its save lock, so nothing is written back).
    fn add_new(
        &self,
        name: &str,
        make: impl FnOnce(&Map) -> Result<Arc<Index>>,
    ) -> Result<Arc<Index>> {
        let (index, st) = {
            let _life = lock(&self.lifecycle);
            self.check_open()?;
            self.check_writable(&format!("creating index {name:?}"))?;
            self.check_name(name)?;
            let index = make(&self.map)?;
            let st = self.persist.as_ref().map(|p| {
                let cond = p.create_precondition();
                (p, self.attach(p, index.clone(), None, cond, false))
            });
            (index, st)
        };
        if let Some((p, st)) = st {
            p.changed(&st, "the index");
        }
        Ok(index)
    }

    /// Creates an empty index (and saves it); `AlreadyExists` if the name is
    /// taken, or held by an object that failed to load; `InvalidArgument` if
    /// the store could never hold its object.
    pub fn create(&self, params: IndexParams) -> Result<Arc<Index>> {
        params.validate()?;
        let name = params.name.clone();
        self.add_new(&name, |map| map.create(params))
    }

    /// Decodes an LHV1 blob and registers it under the name it carries.
    pub fn import(&self, blob: &[u8]) -> Result<Arc<Index>> {
        self.check_open()?;
        let index = Arc::new(lhv1::decode(blob)?);
        let name = index.name().to_string();
        self.add_new(&name, |map| map.register(index))
    }

    pub fn get(&self, name: &str) -> Result<Arc<Index>> {
        self.check_open()?;
        self.map.get(name)
    }

    /// Index names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.map.names()
    }

    /// Deletes an index and its object. The object goes first: if the store
    /// refuses, the index stays (so it cannot come back after a restart
    /// while the caller believes it gone). Handles to it stay usable.
    pub fn delete(&self, name: &str) -> Result<()> {
        let _life = lock(&self.lifecycle);
        self.check_open()?;
        let index = self.map.get(name)?;
        let Some(p) = &self.persist else {
            self.map.delete(name)?;
            return Ok(());
        };
        self.check_writable(&format!("deleting index {name:?}"))?;
        let st = p.state(name);
        let mut guard = st.as_ref().map(|s| lock(&s.lock));
        let cond = guard.as_ref().map_or(Precondition::Any, |g| g.next.clone());
        let outcome = match cond {
            // Never stored by this registry: whatever is there is another's.
            Precondition::Absent => Ok(()),
            c => p.store.delete_if(&p.key(name), &c),
        };
        match outcome {
            Ok(()) | Err(StoreError::KeyNotFound(_)) => {}
            Err(StoreError::Conflict(why)) => {
                return Err(Error::Conflict(format!(
                    "deleting index {name:?}: {} in {} was changed by another writer since \
                     this registry loaded or saved it ({why}); nothing was deleted",
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
        lock(&p.pending).remove(name);
        self.map.delete(name)?;
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
        p.save_now(&st)
    }

    /// Saves every index that changed since its last save. Tries them all;
    /// fails with `Storage` naming every index still unsaved.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.flush_all()
    }

    fn flush_all(&self) -> Result<()> {
        let Some(p) = &self.persist else {
            return Ok(());
        };
        let states: Vec<Arc<SaveState>> = lock(&p.states).values().cloned().collect();
        let mut failed = Vec::new();
        for st in states {
            if let Err(e) = p.save_now(&st) {
                log(log::ERROR, &e.to_string());
                failed.push((st.name.clone(), e));
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        failed.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<String> = failed.iter().map(|(n, _)| format!("{n:?}")).collect();
        // A lost race is reported as such (its own status), even among
        // other failures: it needs a reload, not a retry.
        let first = failed
            .iter()
            .find(|(_, e)| matches!(e, Error::Conflict(_)))
            .unwrap_or(&failed[0]);
        let msg = format!(
            "{} index(es) not saved: {}; first failure: {}",
            failed.len(),
            names.join(", "),
            first.1
        );
        Err(match first.1 {
            Error::Conflict(_) => Error::Conflict(msg),
            _ => Error::Storage(msg),
        })
    }

    /// Stops the background saver, saves what is pending (logging every
    /// index it could not save), and detaches every index: handles stay
    /// usable, but their changes are no longer saved. Idempotent.
    pub fn close(&self) {
        {
            let _life = lock(&self.lifecycle);
            if self.closed.swap(true, Ordering::AcqRel) {
                return;
            }
        }
        let Some(p) = &self.persist else {
            return;
        };
        p.stop.store(true, Ordering::Release);
        {
            // Taking the lock orders the store of `stop` before the saver's check.
            let _pending = lock(&p.pending);
            p.wake.notify_all();
        }
        if let Some(h) = lock(&p.saver).take() {
            let _ = h.join();
        }
        if let Err(e) = self.flush_all() {
            log(
                log::ERROR,
                &format!(
                    "closing the registry over {}: {e}; those changes are lost",
                    p.store.describe()
                ),
            );
        }
        let states: Vec<Arc<SaveState>> = lock(&p.states).drain().map(|(_, s)| s).collect();
        for st in states {
            lock(&st.lock).detached = true;
            st.index.set_observer(None);
        }
        let refresher = lock(&p.refresher).take();
        if let Some(h) = refresher {
            // The refresher may itself drop the last Arc<Registry> and so run this.
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.close();
    }
}
