//! `Index`: one named HNSW index with string ids and optional JSON metadata.
//!
//! Locking: each index has one `RwLock`. Searches (`search`, `search_batch`,
//! `get`, `contains`, `len`) take it shared and run in parallel with each
//! other. `add` and `remove` take it exclusively for the whole batch: they wait
//! for running searches, and searches wait for them. `add` validates its batch
//! before taking the lock, so a bad batch never blocks anybody. Encoding
//! (LHV1) takes it shared while the bytes are copied into memory only.
//!
//! Failure: a mutation either commits whole or changes nothing. Should an
//! invariant break anyway (a bug, or a panic while the index lock is held
//! exclusively), the index stops: every later call returns `Internal` with
//! the reason (see `Index::ensure_healthy`), so nothing broken is searched or
//! saved over the last good stored copy.

use std::collections::{HashSet, TryReserveError};

use crate::hnsw::graph::NO_SLOT;
use crate::idmap::Ids;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::filter::AttrIndex;
use crate::hnsw::graph::{Graph, GraphParams};
use crate::hnsw::visited::Cand;
use crate::hnsw::{Metric, Quantization};
use crate::parallel::{cores, parallel_map};

pub const DEFAULT_M: u32 = 16;
pub const DEFAULT_EF_CONSTRUCTION: u32 = 200;
pub const DEFAULT_EF_SEARCH: u32 = 64;
pub const MAX_DIM: u32 = 65536;
pub const MIN_M: u32 = 2;
pub const MAX_M: u32 = 256;
pub const MAX_EF: u32 = 65536;
pub const MAX_ID_BYTES: usize = 1024;
pub const MAX_NAME_BYTES: usize = 255;
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// The seed of the level generator of a new index (hnswlib's default).
pub const DEFAULT_SEED: u64 = 100;

/// What an index is: its name, shape and HNSW parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexParams {
    pub name: String,
    pub dim: u32,
    pub metric: Metric,
    /// Maximum degree on upper layers (layer 0 allows 2*m). 2..=256.
    pub m: u32,
    /// Beam width while inserting. 1..=65536.
    pub ef_construction: u32,
    /// Default beam width while searching (at least k is used). 1..=65536.
    pub ef_search: u32,
    /// How searches walk the graph: `None` on the f32 vectors, `Int8` on
    /// 8-bit codes with an exact f32 re-rank of the beam's results (trained
    /// once the index holds `hnsw::quant::QUANT_TRAIN_MIN` items).
    pub quantization: Quantization,
}

impl IndexParams {
    /// Parameters with the defaults m=16, ef_construction=200, ef_search=64.
    pub fn new(name: impl Into<String>, dim: u32, metric: Metric) -> IndexParams {
        IndexParams {
            name: name.into(),
            dim,
            metric,
            m: DEFAULT_M,
            ef_construction: DEFAULT_EF_CONSTRUCTION,
            ef_search: DEFAULT_EF_SEARCH,
            quantization: Quantization::None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(Error::InvalidArgument(format!(
                "index {:?}: dim {} is outside 1..={MAX_DIM}",
                self.name, self.dim
            )));
        }
        if !(MIN_M..=MAX_M).contains(&self.m) {
            return Err(Error::InvalidArgument(format!(
                "index {:?}: m {} is outside {MIN_M}..={MAX_M}",
                self.name, self.m
            )));
        }
        for (what, v) in [
            ("ef_construction", self.ef_construction),
            ("ef_search", self.ef_search),
        ] {
            if v == 0 || v > MAX_EF {
                return Err(Error::InvalidArgument(format!(
                    "index {:?}: {what} {v} is outside 1..={MAX_EF}",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

/// Index names: 1..=255 bytes of UTF-8 without NUL or control characters.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidArgument(format!(
            "index name {name:?} must be 1..={MAX_NAME_BYTES} bytes (has {})",
            name.len()
        )));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidArgument(format!(
            "index name {name:?} contains a control character"
        )));
    }
    Ok(())
}

pub(crate) fn validate_id(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("id is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "id is {} bytes, more than {MAX_ID_BYTES}",
            id.len()
        ));
    }
    if id.contains('\0') {
        return Err("id contains a NUL byte".into());
    }
    Ok(())
}

/// Checks that metadata is one JSON value of at most 64 KiB; returns it
/// without surrounding white space.
pub(crate) fn validate_metadata(m: &str) -> std::result::Result<&str, String> {
    if m.len() > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata is {} bytes, more than {MAX_METADATA_BYTES}",
            m.len()
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(m)
        .map_err(|e| format!("metadata is not valid JSON: {e}"))?;
    Ok(m.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r')))
}

/// The largest squared norm (summed in f64) of an l2 or dot vector. With
/// |a|^2 and |b|^2 at most L, |a.b| <= L and |a-b|^2 <= 4L = f32::MAX / 2, so
/// every distance between accepted vectors (and queries) is finite in f32,
/// with room to spare for the kernels' rounding. Not `pub`: cbindgen would
/// put it in the C header.
const MAX_SQUARED_NORM: f64 = f32::MAX as f64 / 8.0;

/// Checks a vector (item or query): finite components; under cosine not all
/// zeros; under l2 and dot a squared norm of at most `MAX_SQUARED_NORM`.
/// Cosine vectors need no size limit: they are normalised with the norm in
/// f64 (`distance::normalize`), where neither denormal nor 1e38 components
/// underflow or overflow, so any finite non-zero vector becomes finite.
fn check_vector(v: &[f32], metric: Metric) -> std::result::Result<(), String> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!("component {i} is {}", v[i]));
    }
    let squared_norm: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
    match metric {
        Metric::Cosine if squared_norm == 0.0 => {
            Err("zero vector has no direction under the cosine metric".into())
        }
        Metric::L2 | Metric::Dot if squared_norm > MAX_SQUARED_NORM => Err(format!(
            "squared norm {squared_norm:e} is above {MAX_SQUARED_NORM:e} (f32::MAX / 8), \
             the limit under the {} metric that keeps every distance finite",
            metric.as_str()
        )),
        _ => Ok(()),
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: Arc<str>,
    pub distance: f32,
    pub metadata: Option<Arc<str>>,
}

pub(crate) struct Inner {
    pub(crate) graph: Graph,
    /// Per slot the id of a live item (None for a tombstone), and each
    /// id's slot.
    pub(crate) ids: Ids,
    /// Per slot: the item's metadata JSON text.
    pub(crate) metadata: Vec<Option<Arc<str>>>,
    /// What filters evaluate against (src/filter); follows every insert and
    /// tombstone, rebuilt with `rebuild_attrs` whenever slots are renumbered.
    pub(crate) attrs: AttrIndex,
    /// Names this state of the contents: drawn from one process-wide
    /// counter when the contents are made and at every exclusive lock, so
    /// no two states (of any two indexes) share one. A filter's cached
    /// evaluation is valid for the stamp it was made under.
    pub(crate) stamp: u64,
}

/// A stamp no contents have had yet (`Inner::stamp`).
pub(crate) fn next_stamp() -> u64 {
    static STAMPS: AtomicU64 = AtomicU64::new(0);
    STAMPS.fetch_add(1, Ordering::Relaxed) + 1
}

impl Inner {
    /// Tombstones the item `id` if present; its slot may be reused.
    fn forget(&mut self, id: &str) -> bool {
        let Some(slot) = self.ids.remove(id) else {
            return false;
        };
        self.graph.remove(slot);
        let md = self.metadata.get_mut(slot as usize).and_then(Option::take);
        self.attrs.remove(slot, md.as_deref());
        true
    }

    /// The metadata of a slot. `metadata` is shorter than the slots while
    /// the slots past its end have none (an index that never had metadata
    /// spends no 16 bytes a slot on it).
    pub(crate) fn metadata_of(&self, slot: u32) -> Option<&Arc<str>> {
        self.metadata.get(slot as usize).and_then(Option::as_ref)
    }

    /// Moves every slot's id and metadata to `map[slot]` (`NO_SLOT`: a
    /// tombstone, dropped) after the graph renumbered its slots into
    /// `slots`, and rebuilds what is keyed by slot.
    fn renumber(&mut self, map: &[u32], slots: usize) -> std::result::Result<(), String> {
        let mut ids: Vec<Option<Arc<str>>> = vec![None; slots];
        let with_metadata = self.metadata.iter().any(Option::is_some);
        let mut metadata: Vec<Option<Arc<str>>> = vec![None; if with_metadata { slots } else { 0 }];
        for (old, &new) in map.iter().enumerate() {
            if new == NO_SLOT {
                continue;
            }
            ids[new as usize] = self.ids[old].clone();
            if let Some(md) = self.metadata.get_mut(old).and_then(Option::take) {
                metadata[new as usize] = Some(md);
            }
        }
        // Renumbering moves every id, so the map is built afresh; the ids
        // were unique before and renumbering only moves them.
        self.ids = Ids::from_slots(ids)
            .map_err(|(slot, id)| format!("put id {id:?} in two slots (slot {slot})"))?;
        self.metadata = metadata;
        // The attribute index is keyed by slot.
        self.rebuild_attrs();
        Ok(())
    }

    /// Rebuilds the attribute index from `ids` and `metadata` (after
    /// compaction renumbered the slots).
    pub(crate) fn rebuild_attrs(&mut self) {
        self.attrs = AttrIndex::rebuild(&self.ids, &self.metadata);
    }

    /// The hit for a slot a search returned; a slot without an id means the
    /// graph and the ids disagree, which stops the index (no made-up id).
    fn hit(&self, slot: u32, distance: f32) -> std::result::Result<Hit, String> {
        let id = self.ids.get(slot as usize).cloned().flatten();
        let id = id.ok_or_else(|| format!("a search returned slot {slot}, which has no id"))?;
        Ok(Hit {
            id,
            distance,
            metadata: self.metadata_of(slot).cloned(),
        })
    }

    /// Hits for a search's result, in order.
    pub(crate) fn hits(&self, found: Vec<Cand>) -> std::result::Result<Vec<Hit>, String> {
        found
            .into_iter()
            .map(|c| self.hit(c.slot, c.dist))
            .collect()
    }

    /// Room for a batch of `ids` in every per-slot array and the id map,
    /// taken before anything changes so that running out of memory fails the
    /// add with the index untouched.
    fn try_reserve(
        &mut self,
        ids: &[&str],
        with_metadata: bool,
    ) -> std::result::Result<(), TryReserveError> {
        let upserted: Vec<u32> = ids.iter().filter_map(|id| self.ids.slot(id)).collect();
        let fresh = self.graph.fresh_slots(ids.len(), &upserted);
        self.graph.try_reserve(fresh, upserted.len())?;
        // `ids` has one entry per slot, as the graph; `metadata` only once
        // some item has metadata.
        self.ids
            .try_reserve(self.graph.slots() + fresh, ids.len() - upserted.len())?;
        if with_metadata {
            let need = (self.graph.slots() + fresh).saturating_sub(self.metadata.len());
            self.metadata.try_reserve_exact(need)?;
        }
        Ok(())
    }

    /// What must hold after an add put `ids` into `slots`: O(batch).
    fn check_added(&self, ids: &[&str], slots: &[u32]) -> std::result::Result<(), String> {
        let n = self.graph.slots();
        if slots.len() != ids.len() || self.ids.len() != n || self.metadata.len() > n {
            return Err(format!(
                "after an add of {} items: {} slots placed, {} ids and {} metadata for {n} slots",
                ids.len(),
                slots.len(),
                self.ids.len(),
                self.metadata.len()
            ));
        }
        let live = n - self.graph.free.len();
        if self.ids.live() != live {
            return Err(format!(
                "after an add: {} ids for {live} live slots",
                self.ids.live()
            ));
        }
        for (id, &slot) in ids.iter().zip(slots) {
            let named = self.ids[slot as usize].as_deref() == Some(*id);
            if !named || self.ids.slot(id) != Some(slot) || self.graph.is_deleted(slot) {
                return Err(format!("after an add: id {id:?} and slot {slot} disagree"));
            }
        }
        Ok(())
    }
}

/// A named HNSW index. `Send + Sync`: share it in an `Arc`; see the module
/// docs for what blocks what.
pub struct Index {
    name: String,
    dim: u32,
    metric: Metric,
    m: u32,
    ef_construction: u32,
    ef_search: AtomicU32,
    quantization: Quantization,
    /// Threads used to insert a batch; 0 = all cores.
    insert_threads: AtomicUsize,
    /// Bumped by every committed mutation (persistence uses it to know what
    /// is dirty).
    version: AtomicU64,
    inner: RwLock<Inner>,
    /// Told after every committed add or remove (persistence hooks in here).
    observer: RwLock<Option<Arc<dyn IndexObserver>>>,
    /// Why the index stopped, once it has (see the module docs).
    failed: OnceLock<String>,
    /// Test hook: the next add breaks an invariant (`inject_fault_for_tests`).
    fault: AtomicBool,
    /// Set for the indexes of a read-only registry: add and remove refuse.
    read_only: AtomicBool,
}

/// Something that wants to know when an index changed (after the change is
/// committed and the index lock released).
pub trait IndexObserver: Send + Sync {
    fn changed(&self, index: &Index);
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("len", &self.len())
            .finish()
    }
}

impl Index {
    pub fn new(params: IndexParams) -> Result<Index> {
        Index::with_seed(params, DEFAULT_SEED)
    }

    /// A new index whose level generator starts from `seed` (builds on one
    /// thread with the same seed and inputs are identical).
    pub fn with_seed(params: IndexParams, seed: u64) -> Result<Index> {
        params.validate()?;
        let mut graph = Graph::new(graph_params(&params), seed);
        graph.set_quantization(params.quantization);
        Ok(Index::from_inner(
            params,
            Inner {
                graph,
                ids: Ids::new(),
                metadata: Vec::new(),
                attrs: AttrIndex::default(),
                stamp: next_stamp(),
            },
        ))
    }

    fn from_inner(params: IndexParams, inner: Inner) -> Index {
        Index {
            name: params.name,
            dim: params.dim,
            metric: params.metric,
            m: params.m,
            ef_construction: params.ef_construction,
            ef_search: AtomicU32::new(params.ef_search),
            quantization: params.quantization,
            insert_threads: AtomicUsize::new(0),
            version: AtomicU64::new(0),
            inner: RwLock::new(inner),
            observer: RwLock::new(None),
            failed: OnceLock::new(),
            fault: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
        }
    }

    /// `Ok` unless the index has stopped after a broken invariant; then
    /// `Internal` with the reason. Every operation that can fail calls it
    /// first; saving must too, so a stopped index never replaces its last
    /// good stored copy.
    pub fn ensure_healthy(&self) -> Result<()> {
        if self.failed.get().is_none() && self.inner.is_poisoned() {
            return Err(self.fail("a panic interrupted a change to the index".into()));
        }
        match self.failed.get() {
            None => Ok(()),
            Some(why) => Err(self.stopped(why)),
        }
    }

    fn stopped(&self, why: &str) -> Error {
        Error::Internal(format!(
            "index {:?} has stopped: {why}; every call fails and it is not saved, so its \
             stored copy stays as it was (reopen to load that copy)",
            self.name
        ))
    }

    /// Stops the index (the first reason wins) and logs it. Call it with no
    /// lock held: the log may go to a callback of the embedding program.
    pub(crate) fn fail(&self, why: String) -> Error {
        let first = self.failed.set(why).is_ok();
        self.report_stop(first)
    }

    /// The error of a stopped index, logged when `first` (this call stopped
    /// it). Call it with no lock held.
    fn report_stop(&self, first: bool) -> Error {
        let why = self.failed.get().map_or("", |w| w.as_str());
        if first {
            crate::log::log(
                crate::log::ERROR,
                &format!("index {:?} stopped: {why}", self.name),
            );
        }
        self.stopped(why)
    }

    /// Makes the next `add` break an invariant after it has changed the
    /// graph, as a bug would, so tests can check that the index then stops.
    #[doc(hidden)]
    pub fn inject_fault_for_tests(&self) {
        self.fault.store(true, Ordering::SeqCst);
    }

    /// Makes add and remove fail (the index belongs to a read-only registry).
    pub fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::Release);
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only.load(Ordering::Acquire) {
            return Err(Error::InvalidArgument(format!(
                "index {:?} belongs to a read-only registry (\"read_only\": true): \
                 add and remove are refused",
                self.name
            )));
        }
        Ok(())
    }

    /// Replaces this index's items and graph by those of `other` (a freshly
    /// loaded copy of the same index), in place, so every handle to this
    /// index sees them. The parameters must match: a handle's dim and
    /// metric never change. Returns the new `version()`, taken under the
    /// write lock, so a caller can tell a later change from the swap.
    pub fn replace_contents(&self, other: Index) -> Result<u64> {
        if other.name != self.name
            || other.dim != self.dim
            || other.metric != self.metric
            || other.m != self.m
            || other.ef_construction != self.ef_construction
        {
            return Err(Error::Conflict(format!(
                "index {:?}: the stored index has other parameters ({:?}) than the loaded one \
                 ({:?}); delete the local index and get it again",
                self.name,
                other.params(),
                self.params()
            )));
        }
        let mut fresh = other.inner.into_inner().unwrap_or_else(|p| p.into_inner());
        fresh.stamp = next_stamp();
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        *guard = fresh;
        self.ef_search
            .store(other.ef_search.load(Ordering::Relaxed), Ordering::Relaxed);
        let v = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        drop(guard);
        Ok(v)
    }

    /// Installs (or with None removes) the observer told about changes.
    pub fn set_observer(&self, observer: Option<Arc<dyn IndexObserver>>) {
        *self.observer.write().unwrap_or_else(|p| p.into_inner()) = observer;
    }

    fn notify(&self) {
        let obs = self
            .observer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(o) = obs {
            o.changed(self);
        }
    }

    /// The shared lock, poisoned or not: for calls that cannot report an
    /// error. The others use `read_checked`.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The shared lock, or the reason the index stopped (it may have stopped
    /// while this call waited).
    pub(crate) fn read_checked(&self) -> Result<RwLockReadGuard<'_, Inner>> {
        let guard = self.read();
        if self.failed.get().is_none() && !self.inner.is_poisoned() {
            return Ok(guard);
        }
        drop(guard);
        Err(self.unhealthy())
    }

    /// The exclusive lock, or the reason the index stopped.
    pub(crate) fn write_checked(&self) -> Result<RwLockWriteGuard<'_, Inner>> {
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        // Whatever the holder changes, it is a new state for cached filter
        // evaluations.
        guard.stamp = next_stamp();
        if self.failed.get().is_none() && !self.inner.is_poisoned() {
            return Ok(guard);
        }
        drop(guard);
        Err(self.unhealthy())
    }

    fn unhealthy(&self) -> Error {
        match self.ensure_healthy() {
            Err(e) => e,
            Ok(()) => Error::Internal(format!("index {:?}: lost track of its state", self.name)),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dim(&self) -> u32 {
        self.dim
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn quantization(&self) -> Quantization {
        self.quantization
    }

    /// Whether an int8 index has trained its quantizer yet (it does when it
    /// first holds `hnsw::quant::QUANT_TRAIN_MIN` items; until then its
    /// searches walk the f32 vectors).
    pub fn quantizer_trained(&self) -> bool {
        self.read().graph.quantizer().is_some()
    }

    pub fn params(&self) -> IndexParams {
        IndexParams {
            name: self.name.clone(),
            dim: self.dim,
            metric: self.metric,
            m: self.m,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search(),
            quantization: self.quantization,
        }
    }

    pub fn ef_search(&self) -> u32 {
        self.ef_search.load(Ordering::Relaxed)
    }

    /// Changes the default beam width of later searches.
    pub fn set_ef_search(&self, ef: u32) -> Result<()> {
        self.ensure_healthy()?;
        if ef == 0 || ef > MAX_EF {
            return Err(Error::InvalidArgument(format!(
                "index {:?}: ef_search {ef} is outside 1..={MAX_EF}",
                self.name
            )));
        }
        self.ef_search.store(ef, Ordering::Relaxed);
        // ef_search is saved with the index: count it as a change.
        self.version.fetch_add(1, Ordering::Release);
        self.notify();
        Ok(())
    }

    /// Threads used to insert one batch; 0 (the default) means all cores.
    pub fn set_insert_threads(&self, threads: usize) {
        self.insert_threads.store(threads, Ordering::Relaxed);
    }

    /// A counter bumped by every committed add or remove (and `set_ef_search`).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.read().ids.live()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: &str) -> bool {
        self.read().ids.slot(id).is_some()
    }

    /// The stored vector (unit length under cosine) and metadata of `id`.
    pub fn get(&self, id: &str) -> Result<(Vec<f32>, Option<Arc<str>>)> {
        self.ensure_healthy()?;
        let inner = self.read_checked()?;
        let slot = inner
            .ids
            .slot(id)
            .ok_or_else(|| Error::NotFound(format!("index {:?} has no id {id:?}", self.name)))?;
        Ok((
            inner.graph.vector(slot).to_vec(),
            inner.metadata_of(slot).cloned(),
        ))
    }

    /// Upserts a batch: `vectors` is `ids.len() * dim` row-major; `metadata`
    /// is None or one entry per item. All-or-nothing: every item is checked
    /// before anything changes, and the first bad one fails the call, naming
    /// its position. Room for the batch is reserved before the first change
    /// too, and insert threads that cannot start leave their share to the
    /// others (down to the calling thread), so neither fails half a batch.
    ///
    /// Vectors must have finite components. Under cosine they must not be
    /// all zeros (any other size works: they are normalised in f64). Under
    /// l2 and dot the squared norm, summed in f64, must be at most
    /// f32::MAX / 8 (about 4.25e37: one component up to about 6.5e18, or
    /// all `dim` components up to 6.5e18 / sqrt(dim)), which keeps every
    /// distance between stored vectors and queries finite; queries obey the
    /// same rules.
    /// Anything else is `InvalidVector`, naming the item and the rule.
    ///
    /// A bulk build (a batch of at least `REORDER_MIN_ITEMS`, no smaller
    /// than the index was) ends by renumbering the graph's slots for memory
    /// locality (hnsw/reorder.rs): about one copy of each row, invisible
    /// through the API (ids, vectors, metadata and results are unchanged).
    pub fn add(
        &self,
        ids: &[&str],
        vectors: &[f32],
        metadata: Option<&[Option<&str>]>,
    ) -> Result<()> {
        self.ensure_healthy()?;
        self.check_writable()?;
        let dim = self.dim as usize;
        if vectors.len() != ids.len() * dim {
            return Err(Error::DimensionMismatch(format!(
                "index {:?}: {} ids need {} components (dim {dim}), got {}",
                self.name,
                ids.len(),
                ids.len() * dim,
                vectors.len()
            )));
        }
        if let Some(md) = metadata {
            if md.len() != ids.len() {
                return Err(Error::InvalidArgument(format!(
                    "index {:?}: {} metadata entries for {} ids",
                    self.name,
                    md.len(),
                    ids.len()
                )));
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let mut seen = HashSet::with_capacity(ids.len());
        let mut clean_md: Vec<Option<Arc<str>>> = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let at = |why: String| format!("index {:?}: item {i} (id {id:?}): {why}", self.name);
            validate_id(id).map_err(|e| Error::InvalidArgument(at(e)))?;
            if !seen.insert(*id) {
                return Err(Error::InvalidArgument(at(
                    "id appears twice in the batch".into()
                )));
            }
            check_vector(&vectors[i * dim..(i + 1) * dim], self.metric)
                .map_err(|e| Error::InvalidVector(at(e)))?;
            let md = match metadata.and_then(|m| m[i]) {
                Some(text) => Some(Arc::from(
                    validate_metadata(text).map_err(|e| Error::InvalidArgument(at(e)))?,
                )),
                None => None,
            };
            clean_md.push(md);
        }
        let threads = match self.insert_threads.load(Ordering::Relaxed) {
            0 => cores(),
            t => t,
        };

        let mut guard = self.write_checked()?;
        let inner = &mut *guard;
        // Metadata takes per-slot room once any item of the index has some.
        let with_metadata = clean_md.iter().any(Option::is_some) || !inner.metadata.is_empty();
        inner.try_reserve(ids, with_metadata).map_err(|e| {
            Error::Internal(format!(
                "index {:?}: no memory for a batch of {} items ({e}); nothing was changed",
                self.name,
                ids.len()
            ))
        })?;
        // Upsert: the old version of an existing id becomes a tombstone whose
        // slot the batch may reuse.
        for id in ids {
            inner.forget(id);
        }
        let live_before = inner.ids.live();
        let slots = inner.graph.insert_batch(vectors, threads);
        let n = inner.graph.slots();
        inner.ids.resize(n);
        if with_metadata {
            inner.metadata.resize(n, None);
        }
        for ((id, md), &slot) in ids.iter().zip(clean_md).zip(&slots) {
            inner.ids.set(slot, Arc::from(*id));
            inner.attrs.insert(slot, md.as_deref());
            if md.is_some() {
                inner.metadata[slot as usize] = md;
            }
        }
        if self.fault.swap(false, Ordering::SeqCst) {
            if let Some(&slot) = slots.first() {
                inner.ids.break_slot_for_test(slot);
            }
        }
        if let Err(why) = inner.check_added(ids, &slots) {
            // Stopped before the lock is released: no search or snapshot may
            // see the broken graph as healthy.
            let first = self.failed.set(why).is_ok();
            drop(guard);
            return Err(self.report_stop(first));
        }
        // A bulk build (a batch at least as large as the index was, of at
        // least REORDER_MIN_ITEMS) ends with the slots renumbered for
        // locality (hnsw/reorder.rs); amortised over the batch it costs about
        // one copy of each row.
        let bulk = ids.len() >= REORDER_MIN_ITEMS && ids.len() >= live_before;
        if let Some(map) = bulk.then(|| inner.graph.reorder()).flatten() {
            if let Err(why) = inner.renumber(&map, n) {
                let first = self.failed.set(format!("reordering {why}")).is_ok();
                drop(guard);
                return Err(self.report_stop(first));
            }
        }
        self.version.fetch_add(1, Ordering::Release);
        drop(guard);
        self.notify();
        Ok(())
    }

    /// Removes the given ids; ids that are not present are skipped (so a
    /// retried remove succeeds). Returns how many items were removed.
    pub fn remove(&self, ids: &[&str]) -> Result<usize> {
        self.ensure_healthy()?;
        self.check_writable()?;
        for (i, id) in ids.iter().enumerate() {
            validate_id(id).map_err(|e| {
                Error::InvalidArgument(format!("index {:?}: id {i} ({id:?}): {e}", self.name))
            })?;
        }
        let mut guard = self.write_checked()?;
        let inner = &mut *guard;
        let removed = ids.iter().filter(|id| inner.forget(id)).count();
        if removed > 0 {
            self.version.fetch_add(1, Ordering::Release);
        }
        drop(guard);
        if removed > 0 {
            self.notify();
        }
        Ok(removed)
    }

    pub(crate) fn prepare_query<'a>(
        &self,
        q: &'a [f32],
        which: &str,
        buf: &'a mut Vec<f32>,
    ) -> Result<&'a [f32]> {
        if q.len() != self.dim as usize {
            return Err(Error::DimensionMismatch(format!(
                "index {:?}: {which} has {} components, the index has dim {}",
                self.name,
                q.len(),
                self.dim
            )));
        }
        check_vector(q, self.metric)
            .map_err(|e| Error::InvalidVector(format!("index {:?}: {which}: {e}", self.name)))?;
        if self.metric == Metric::Cosine {
            buf.clear();
            buf.resize(q.len(), 0.0);
            if !crate::hnsw::distance::normalize(q, buf) {
                return Err(Error::InvalidVector(format!(
                    "index {:?}: {which} cannot be normalised to finite components",
                    self.name
                )));
            }
            Ok(buf)
        } else {
            Ok(q)
        }
    }

    pub(crate) fn check_k(&self, k: usize, ef: Option<u32>) -> Result<usize> {
        if k == 0 {
            return Err(Error::InvalidArgument(format!(
                "index {:?}: k is 0",
                self.name
            )));
        }
        let ef = match ef {
            Some(e) if e == 0 || e > MAX_EF => {
                return Err(Error::InvalidArgument(format!(
                    "index {:?}: ef {e} is outside 1..={MAX_EF}",
                    self.name
                )))
            }
            Some(e) => e,
            None => self.ef_search(),
        };
        Ok(ef as usize)
    }

    /// The k nearest live items to `query`, nearest first. `ef` overrides the
    /// index's ef_search for this call (at least k is used). An empty index
    /// returns no hits.
    pub fn search(&self, query: &[f32], k: usize, ef: Option<u32>) -> Result<Vec<Hit>> {
        self.ensure_healthy()?;
        let ef = self.check_k(k, ef)?;
        let mut buf = Vec::new();
        let q = self.prepare_query(query, "query", &mut buf)?;
        let inner = self.read_checked()?;
        let hits = inner.hits(inner.graph.search(q, k, ef));
        drop(inner);
        hits.map_err(|why| self.fail(why))
    }

    /// Searches `queries.len() / dim` queries on all cores; one hit list per
    /// query, in order. Every query is checked before any search runs.
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        ef: Option<u32>,
    ) -> Result<Vec<Vec<Hit>>> {
        self.ensure_healthy()?;
        let ef = self.check_k(k, ef)?;
        let dim = self.dim as usize;
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch(format!(
                "index {:?}: {} query components is not a multiple of dim {dim}",
                self.name,
                queries.len()
            )));
        }
        let nq = queries.len() / dim;
        let mut prepared = Vec::with_capacity(queries.len());
        let mut buf = Vec::new();
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            let q = self.prepare_query(q, &format!("query {i}"), &mut buf)?;
            prepared.extend_from_slice(q);
        }
        let inner = self.read_checked()?;
        // Fewer than 4 queries per thread do not pay for starting it.
        let threads = cores().min(nq / 4).max(1);
        let hits = parallel_map(nq, threads, |i| {
            inner.hits(inner.graph.search(&prepared[i * dim..(i + 1) * dim], k, ef))
        });
        drop(inner);
        hits.into_iter()
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(|why| self.fail(why))
    }

    /// Bytes held by the graph, ids and metadata (an estimate that ignores
    /// allocator slack).
    pub fn memory_bytes(&self) -> usize {
        let inner = self.read();
        let metadata: usize = inner.metadata.iter().flatten().map(|s| s.len() + 16).sum();
        inner.graph.memory_bytes()
            + inner.ids.memory_bytes()
            + metadata
            + inner.metadata.capacity() * std::mem::size_of::<Option<Arc<str>>>()
    }

    /// The contents under the read lock, for `lhv1::snapshot`.
    pub(crate) fn read_contents(&self) -> RwLockReadGuard<'_, Inner> {
        self.read()
    }

    /// An index from contents the lhv1 decoder has validated: per slot the
    /// id (None for a tombstone) and metadata, and the map of live ids.
    pub(crate) fn from_contents(
        params: IndexParams,
        graph: Graph,
        ids: Ids,
        metadata: Vec<Option<Arc<str>>>,
    ) -> Index {
        // The attribute index is derived data: rebuilt here, never stored.
        let attrs = AttrIndex::rebuild(&ids, &metadata);
        Index::from_inner(
            params,
            Inner {
                graph,
                ids,
                metadata,
                attrs,
                stamp: next_stamp(),
            },
        )
    }

    /// Share of the index's slots that hold removed items (tombstones),
    /// 0 for an empty index. See [`AUTO_COMPACT_TOMBSTONE_FRACTION`].
    pub fn tombstone_fraction(&self) -> f64 {
        self.read().graph.tombstone_fraction()
    }

    /// Drops every removed item for good: slots are renumbered densely, the
    /// links around removed items are repaired, and memory and the saved
    /// object shrink to the live items. Every live item keeps its id, vector
    /// and metadata. Holds the index lock exclusively while it runs (about
    /// as long as re-inserting the items whose links named a removed one).
    /// A compaction that drops something counts as a change (the index is
    /// saved again).
    pub fn compact(&self) -> Result<CompactStats> {
        let threads = match self.insert_threads.load(Ordering::Relaxed) {
            0 => cores(),
            t => t,
        };
        self.ensure_healthy()?;
        let mut guard = self.write_checked()?;
        let inner = &mut *guard;
        let slots_before = inner.graph.slots();
        let bytes = |i: &Inner| {
            i.graph.memory_bytes()
                + i.ids.memory_bytes()
                + i.metadata.capacity() * std::mem::size_of::<Option<Arc<str>>>()
        };
        let bytes_before = bytes(inner);
        if inner.graph.tombstone_fraction() == 0.0 {
            return Ok(CompactStats {
                slots_before,
                slots_after: slots_before,
                bytes_freed: 0,
            });
        }
        let mut map = inner.graph.compact(threads);
        // Compaction renumbers every slot anyway: renumber them for locality
        // too (hnsw/reorder.rs), one renumbering of the ids for both.
        if let Some(order) = inner.graph.reorder() {
            for new in map.iter_mut().filter(|n| **n != NO_SLOT) {
                *new = order[*new as usize];
            }
        }
        let live = inner.graph.slots();
        inner
            .renumber(&map, live)
            .map_err(|why| Error::Internal(format!("index {:?}: compaction {why}", self.name)))?;
        let stats = CompactStats {
            slots_before,
            slots_after: live,
            bytes_freed: bytes_before.saturating_sub(bytes(inner)),
        };
        self.version.fetch_add(1, Ordering::Release);
        drop(guard);
        self.notify();
        Ok(stats)
    }

    /// Checks the graph's structural invariants (see
    /// `Graph::check_invariants`): links in range, exact in-degree
    /// counters, and an incoming layer-0 link for every live item but the
    /// entry point, so no item is unreachable. For tests and diagnostics;
    /// costs a pass over every list.
    pub fn check_graph(&self) -> Result<()> {
        let inner = self.read();
        inner
            .graph
            .check_invariants()
            .map_err(|e| Error::Internal(format!("index {:?}: graph invariant: {e}", self.name)))?;
        for (slot, id) in inner.ids.iter().enumerate() {
            if id.is_some() == inner.graph.is_deleted(slot as u32) {
                return Err(Error::Internal(format!(
                    "index {:?}: slot {slot} liveness disagrees with its id",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

/// The smallest batch after which `Index::add` renumbers the slots for
/// locality (when the batch is also at least as large as the index was).
/// Below it the whole index fits in a core's cache and gains nothing.
pub const REORDER_MIN_ITEMS: usize = 10_000;

/// Tombstones (removed items still holding their slot) above this share of
/// an index's slots make a save compact the index first ([`Index::compact`]),
/// so removals shrink the saved object and memory. At 0.3 an index carries
/// at most about 43% more slots than live items before a save.
pub const AUTO_COMPACT_TOMBSTONE_FRACTION: f64 = 0.3;

/// What [`Index::compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactStats {
    /// Slots (live items plus tombstones) before.
    pub slots_before: usize,
    /// Slots after: the live item count.
    pub slots_after: usize,
    /// Bytes of index memory released (the estimate of `memory_bytes`).
    pub bytes_freed: usize,
}

pub(crate) fn graph_params(p: &IndexParams) -> GraphParams {
    GraphParams {
        dim: p.dim as usize,
        metric: p.metric,
        m: p.m as usize,
        ef_construction: p.ef_construction as usize,
    }
}
