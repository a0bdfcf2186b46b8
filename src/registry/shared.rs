//! Sharing a store with other processes: read-only registries, `refresh`
//! (catch up with every other writer), `reload` (take the stored version of
//! one index) and the background refresher. Conditional saves and deletes
//! themselves live in saver.rs and mod.rs; docs/storage.md tells the whole
//! story.
//!
//! Lock order, as everywhere in the registry: the lifecycle lock before an
//! index's save lock; the index's own lock is taken last (by
//! `Index::replace_contents`).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::saver::{lock, Persistor, SaveState};
use super::{Loaded, Registry};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::lhv1;
use crate::log::{self, log};
use crate::storeclient::{Precondition, StoreError};

/// What one refresh could not apply.
#[derive(Default)]
struct Problems {
    /// Indexes whose stored object changed or went while they have unsaved
    /// local changes (kept, never discarded silently).
    conflicts: Vec<String>,
    /// Other failures (a failed listing fails the whole refresh instead).
    errors: Vec<String>,
}

impl Persistor {
    /// Downloads and decodes the object of index `name`, with the
    /// precondition its next write must carry.
    fn fetch(&self, name: &str) -> Result<(Index, Precondition)> {
        let key = self.key(name);
        let (blob, version) = self.store.get_versioned(&key).map_err(|e| match e {
            StoreError::KeyNotFound(k) => Error::NotFound(k),
            e => Error::Storage(format!(
                "loading index {name:?} from {key} in {}: {e}",
                self.store.describe()
            )),
        })?;
        let index = lhv1::decode(&blob)?;
        if index.name() != name {
            return Err(Error::Corrupt(format!(
                "{key}: the object holds index {:?}, not {name:?}",
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

impl Registry {
    pub(super) fn check_writable(&self, what: &str) -> Result<()> {
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
    /// reloads indexes whose stored version changed, and drops indexes whose
    /// object is gone, each only when the index has no unsaved local
    /// changes. Those are reported together as one `Conflict` after
    /// everything else was applied; they are never discarded. When nothing
    /// changed, a refresh only lists (the S3 and directory listings carry
    /// versions; storaged's does not, so there each index is downloaded to
    /// compare). In memory: a no-op.
    pub fn refresh(&self) -> Result<()> {
        self.check_open()?;
        let Some(p) = &self.persist else {
            return Ok(());
        };
        let listed = p
            .store
            .list_versions(&p.prefix)
            .map_err(|e| p.listing_error("refresh: ", e))?;
        let mut problems = Problems::default();
        let mut present = BTreeSet::new();
        for l in &listed {
            let Some(name) = p.name_of(&l.key) else {
                continue;
            };
            present.insert(name.to_string());
            match p.state(name) {
                None => self.refresh_new(p, name, &l.key, &mut problems),
                Some(st) => {
                    if let Err(e) = self.refresh_one(p, &st, l.version.as_deref(), &mut problems) {
                        problems.errors.push(format!("index {name:?}: {e}"));
                    }
                }
            }
        }
        let states: Vec<Arc<SaveState>> = lock(&p.states).values().cloned().collect();
        for st in states.iter().filter(|s| !present.contains(&s.name)) {
            self.refresh_gone(p, st, &mut problems);
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

    /// An object no index of this registry stands for: load it.
    fn refresh_new(&self, p: &Arc<Persistor>, name: &str, key: &str, problems: &mut Problems) {
        let _life = lock(&self.lifecycle);
        if self.closed.load(Ordering::Acquire)
            || p.state(name).is_some()
            || lock(&p.quarantined).contains_key(name)
        {
            return;
        }
        match self.load(p, key, name) {
            Ok(Loaded::Ok) => log(log::INFO, &format!("refresh: loaded new index {name:?}")),
            Ok(Loaded::Gone) => {}
            Ok(Loaded::Bad(why)) => {
                lock(&p.quarantined).insert(name.to_string(), why.to_string());
                problems
                    .errors
                    .push(format!("index {name:?}: not loaded from {key}: {why}"));
            }
            Err(e) => problems.errors.push(e.to_string()),
        }
    }

    /// Reloads a registered index if its stored version differs from the
    /// one it was loaded from or saved as.
    fn refresh_one(
        &self,
        p: &Arc<Persistor>,
        st: &SaveState,
        listed: Option<&str>,
        problems: &mut Problems,
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
        let (fresh, next) = match p.fetch(&st.name) {
            Ok(f) => f,
            Err(Error::NotFound(_)) => return Ok(()), // deleted since listing: next refresh
            Err(e) => return Err(e),
        };
        if next == saved.next && next != Precondition::Any {
            return Ok(()); // the listing had no version; the download says unchanged
        }
        if saved.version != Some(st.index.version()) {
            problems.conflicts.push(format!(
                "index {:?}: another writer saved a newer version, and this registry has \
                 unsaved changes to it (kept; reload the index to take the stored version)",
                st.name
            ));
            return Ok(());
        }
        let v = st.index.replace_contents(fresh)?;
        saved.version = Some(v);
        saved.next = next;
        saved.on_store = true;
        drop(saved);
        log(log::INFO, &format!("refresh: reloaded index {:?}", st.name));
        Ok(())
    }

    /// A registered index whose object is not listed: another writer
    /// deleted it, unless it was never stored (created here, unsaved).
    fn refresh_gone(&self, p: &Arc<Persistor>, st: &Arc<SaveState>, problems: &mut Problems) {
        let _life = lock(&self.lifecycle);
        let mut saved = lock(&st.lock);
        if saved.detached || !saved.on_store {
            return;
        }
        if saved.version != Some(st.index.version()) {
            problems.conflicts.push(format!(
                "index {:?}: another writer deleted its object, and this registry has unsaved \
                 changes to it (kept; delete or reload the index)",
                st.name
            ));
            return;
        }
        saved.detached = true;
        drop(saved);
        self.drop_local(p, st);
        log(
            log::INFO,
            &format!("refresh: dropped index {:?} (its object is gone)", st.name),
        );
    }

    /// Discards this registry's state of index `name` and loads the stored
    /// one; handles already held see the reloaded contents. If the store
    /// has no object for it, the index is dropped from the registry. An
    /// index only in the store is loaded. `NotFound` if neither has it.
    pub fn reload(&self, name: &str) -> Result<()> {
        let _life = lock(&self.lifecycle);
        self.check_open()?;
        let Some(p) = &self.persist else {
            return Err(Error::InvalidArgument(format!(
                "reload of index {name:?}: the registry has no store"
            )));
        };
        let Some(st) = p.state(name) else {
            lock(&p.quarantined).remove(name);
            return match self.load(p, &p.key(name), name)? {
                Loaded::Ok => Ok(()),
                Loaded::Gone => Err(Error::NotFound(format!(
                    "index {name:?}: neither in the registry nor in {}",
                    p.store.describe()
                ))),
                Loaded::Bad(why) => {
                    lock(&p.quarantined).insert(name.to_string(), why.to_string());
                    Err(why)
                }
            };
        };
        let mut saved = lock(&st.lock);
        match p.fetch(name) {
            Ok((fresh, next)) => {
                let v = st.index.replace_contents(fresh)?;
                saved.version = Some(v);
                saved.next = next;
                saved.on_store = true;
                drop(saved);
                lock(&p.pending).remove(name);
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

    /// Forgets a registered index whose object is gone: no more saves;
    /// handles stay usable. The caller holds the lifecycle lock.
    fn drop_local(&self, p: &Arc<Persistor>, st: &SaveState) {
        st.index.set_observer(None);
        {
            let mut states = lock(&p.states);
            if states
                .get(&st.name)
                .is_some_and(|s| Arc::ptr_eq(&s.index, &st.index))
            {
                states.remove(&st.name);
            }
        }
        lock(&p.pending).remove(&st.name);
        if self
            .map
            .get(&st.name)
            .is_ok_and(|i| Arc::ptr_eq(&i, &st.index))
        {
            let _ = self.map.delete(&st.name);
        }
    }

    /// Starts the background refresher (`refresh_interval_ms`). It holds
    /// only weak references, so it never keeps a registry alive; close
    /// stops it.
    pub(super) fn start_refresher(self: &Arc<Self>, p: &Arc<Persistor>) -> Result<()> {
        let weak = Arc::downgrade(self);
        let pw = Arc::downgrade(p);
        let interval = p.refresh_interval;
        let handle = std::thread::Builder::new()
            .name("vectord-refresh".into())
            .spawn(move || loop {
                {
                    let Some(p) = pw.upgrade() else { return };
                    // The condvar is shared with the saver (woken by every
                    // change), so wait out the whole interval.
                    let deadline = Instant::now() + interval;
                    let mut pending = lock(&p.pending);
                    loop {
                        if p.stop.load(Ordering::Acquire) {
                            return;
                        }
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        pending = p
                            .wake
                            .wait_timeout(pending, deadline - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
                let Some(reg) = weak.upgrade() else { return };
                if reg.closed.load(Ordering::Acquire) {
                    return;
                }
                if let Err(e) = reg.refresh() {
                    log(log::WARN, &format!("background {e}"));
                }
            })
            .map_err(|e| Error::Internal(format!("starting the refresh thread: {e}")))?;
        *lock(&p.refresher) = Some(handle);
        Ok(())
    }
}
