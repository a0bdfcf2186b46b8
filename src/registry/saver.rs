//! Saving indexes: the one place a snapshot is taken and uploaded
//! ([`Persistor::save_now`]), and the background saver of the async mode.
//!
//! Saves of one index are serialised by its save lock: one PUT in flight
//! at a time, the store's retries included, so a retried older snapshot
//! never races a newer one from this process. Every save carries the
//! precondition of the object version it replaces (docs/storage.md), so a
//! PUT the server commits after the client gave up on it cannot land over
//! a newer save, and a save racing another process's is a `Conflict`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::options::SaveMode;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::lhv1;
use crate::log::{self, log};
use crate::storeclient::{ConditionalWrites, Precondition, Store, StoreError};

/// Delay before the async saver retries an index whose save failed `fails`
/// times: doubling from 100 ms, capped at 2 s, so a save lands within about
/// 2 s of the store coming back.
pub(super) fn retry_delay(fails: u32) -> Duration {
    Duration::from_millis((100u64 << fails.saturating_sub(1).min(5)).min(2_000))
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What is known about saving one registered index.
pub(super) struct SaveState {
    pub(super) name: String,
    pub(super) index: Arc<Index>,
    pub(super) lock: Mutex<Saved>,
}

pub(super) struct Saved {
    /// Deleted or closed: never write this object again.
    pub(super) detached: bool,
    /// `Index::version()` of the last successful save, None if never saved.
    pub(super) version: Option<u64>,
    /// The precondition of the next write of this index's object: the
    /// version it was loaded from or last saved as, `Absent` for an index
    /// this process created, `Any` when the store gave no version (or
    /// conditional writes are off).
    pub(super) next: Precondition,
    /// Whether an object of this index is known to have been in the store
    /// (loaded or saved): refresh drops such an index when the object goes.
    pub(super) on_store: bool,
}

/// An index waiting for the async saver.
#[derive(Clone, Copy)]
pub(super) enum Pending {
    /// Changed: saved in the next round.
    Changed,
    /// Its save failed `fails` times in a row: retried at `at`.
    Retry { fails: u32, at: Instant },
}

pub(super) struct Persistor {
    pub(super) store: Box<dyn Store>,
    pub(super) prefix: String,
    pub(super) conditional: ConditionalWrites,
    pub(super) read_only: bool,
    pub(super) refresh_interval: Duration,
    pub(super) refresher: Mutex<Option<JoinHandle<()>>>,
    pub(super) mode: SaveMode,
    pub(super) interval: Duration,
    pub(super) states: Mutex<HashMap<String, Arc<SaveState>>>,
    /// Names whose object is corrupt or unsupported, with the reason. Such
    /// an object is never overwritten or deleted automatically.
    pub(super) quarantined: Mutex<HashMap<String, String>>,
    pub(super) pending: Mutex<BTreeMap<String, Pending>>,
    pub(super) wake: Condvar,
    pub(super) stop: AtomicBool,
    pub(super) saver: Mutex<Option<JoinHandle<()>>>,
}

impl Persistor {
    pub(super) fn key(&self, name: &str) -> String {
        format!("{}{}.lhv1", self.prefix, name)
    }

    /// Saves the index if it changed since its last save: the one place a
    /// snapshot is taken for saving. Holds the index's save lock for the
    /// whole upload (so saves of one index never overlap and a delete waits
    /// for them); logs only after releasing it.
    pub(super) fn save_now(&self, st: &SaveState) -> Result<()> {
        // A stopped index is never written (its stored copy is the last good
        // one), and saying so beats a silent "nothing to save".
        st.index.ensure_healthy()?;
        if !self.read_only
            && st.index.tombstone_fraction() > crate::index::AUTO_COMPACT_TOMBSTONE_FRACTION
        {
            // Removals shrink the stored object too. Done before the save
            // lock is taken: compaction is a change, and in sync mode its
            // own notification saves the compacted index through here.
            st.index.compact()?;
        }
        let key = self.key(&st.name);
        let saved_bytes = {
            let mut saved = lock(&st.lock);
            if saved.detached || saved.version == Some(st.index.version()) {
                return Ok(());
            }
            if self.read_only {
                return Err(self.read_only_error(&format!("saving index {:?}", st.name)));
            }
            let snap = lhv1::snapshot(&st.index)?;
            let snap_version = snap.version;
            let blob = lhv1::encode_owned(snap).map_err(|e| match e {
                Error::Unsupported(m) => {
                    Error::Unsupported(format!("saving index {:?}: {m}", st.name))
                }
                other => other,
            })?;
            let version = self
                .store
                .put_if(&key, &blob, &saved.next)
                .map_err(|e| match e {
                    StoreError::Conflict(why) => Error::Conflict(format!(
                        "saving index {:?} to {} as {key}: another writer changed the object \
                         since this process loaded or saved it ({why}); the local changes are \
                         kept in memory, not written: reload the index (discarding them) or \
                         refresh",
                        st.name,
                        self.store.describe()
                    )),
                    e => Error::Storage(format!(
                        "saving index {:?} to {} as {key}: {e}",
                        st.name,
                        self.store.describe()
                    )),
                })?;
            saved.version = Some(snap_version);
            saved.on_store = true;
            saved.next = self.next_precondition(&st.name, version)?;
            blob.len()
        };
        log(
            log::DEBUG,
            &format!("saved index {:?} ({saved_bytes} bytes) to {key}", st.name),
        );
        Ok(())
    }

    /// The precondition for the write after one that left `version`.
    pub(super) fn next_precondition(
        &self,
        name: &str,
        version: Option<String>,
    ) -> Result<Precondition> {
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
    pub(super) fn create_precondition(&self) -> Precondition {
        match self.conditional {
            ConditionalWrites::Off => Precondition::Any,
            _ => Precondition::Absent,
        }
    }

    pub(super) fn read_only_error(&self, what: &str) -> Error {
        Error::InvalidArgument(format!(
            "{what}: the registry over {} is read-only (\"read_only\": true)",
            self.store.describe()
        ))
    }

    /// What a change to an index sets off, by save mode: a save now (a
    /// failure is logged, `what` is kept in memory), a queued save, or
    /// nothing.
    pub(super) fn changed(&self, st: &SaveState, what: &str) {
        match self.mode {
            SaveMode::Sync => {
                if let Err(e) = self.save_now(st) {
                    log(log::ERROR, &format!("{e} ({what} is kept in memory)"));
                }
            }
            SaveMode::Async => self.mark_dirty(&st.name),
            SaveMode::Manual => {}
        }
    }

    /// A failed listing of the store, `context` first.
    pub(super) fn listing_error(&self, context: &str, e: StoreError) -> Error {
        Error::Storage(format!(
            "{context}listing {:?} in {}: {e}",
            self.prefix,
            self.store.describe()
        ))
    }

    pub(super) fn state(&self, name: &str) -> Option<Arc<SaveState>> {
        lock(&self.states).get(name).cloned()
    }

    /// Queues an index for the async saver. An index already waiting for a
    /// retry keeps its backoff: a change does not hammer a failing store.
    pub(super) fn mark_dirty(&self, name: &str) {
        lock(&self.pending)
            .entry(name.to_string())
            .or_insert(Pending::Changed);
        self.wake.notify_all();
    }

    /// The names waiting to be saved, or None once `stop` is set. Changed
    /// indexes wait for the round after `last` (so changes coalesce); failed
    /// ones for their retry time.
    fn next_batch(&self, last: Option<Instant>) -> Option<Vec<String>> {
        let mut pending = lock(&self.pending);
        loop {
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            let now = Instant::now();
            let round = last.map_or(now, |l| l + self.interval);
            let mut ready = Vec::new();
            let mut earliest: Option<Instant> = None;
            for (name, p) in pending.iter() {
                let at = match *p {
                    Pending::Changed => round,
                    Pending::Retry { at, .. } => at,
                };
                if at <= now {
                    ready.push(name.clone());
                } else {
                    earliest = Some(earliest.map_or(at, |e: Instant| e.min(at)));
                }
            }
            if !ready.is_empty() {
                return Some(ready);
            }
            pending = match earliest {
                None => self.wake.wait(pending).unwrap_or_else(|p| p.into_inner()),
                Some(t) => {
                    self.wake
                        .wait_timeout(pending, t - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// The background saver: saves changed indexes at most once per
    /// interval, and retries failed saves until they succeed, the index is
    /// deleted, or the registry closes (close then saves once more and
    /// reports what is still unsaved).
    pub(super) fn run_saver(self: Arc<Self>) {
        let mut last: Option<Instant> = None;
        while let Some(batch) = self.next_batch(last) {
            last = Some(Instant::now());
            for name in batch {
                // Taken off before saving: a change during the save queues it again.
                let fails = match lock(&self.pending).remove(&name) {
                    Some(Pending::Retry { fails, .. }) => fails,
                    _ => 0,
                };
                let Some(st) = self.state(&name) else {
                    continue;
                };
                if let Err(e) = self.save_now(&st) {
                    if matches!(e, Error::Conflict(_)) {
                        // Retrying cannot win: the stored object is newer.
                        // The index stays unsaved until reload or refresh;
                        // flush and close report it.
                        log(log::ERROR, &e.to_string());
                        continue;
                    }
                    if !matches!(e, Error::Storage(_)) {
                        // A stopped index or a format limit: trying again
                        // cannot help; the next change queues it anew.
                        log(log::ERROR, &format!("{e} (not retried)"));
                        continue;
                    }
                    let fails = fails.saturating_add(1);
                    let delay = retry_delay(fails);
                    if lock(&self.states).contains_key(&name) {
                        lock(&self.pending).insert(
                            name.clone(),
                            Pending::Retry {
                                fails,
                                at: Instant::now() + delay,
                            },
                        );
                    }
                    log(
                        log::ERROR,
                        &format!(
                            "{e} (attempt {fails}; retrying in {} ms)",
                            delay.as_millis()
                        ),
                    );
                }
            }
        }
    }
}
