//! `Index`: one named HNSW index with string ids and optional JSON metadata.
//!
//! Locking: each index has one `RwLock`. Searches (`search`, `search_batch`,
//! `get`, `contains`, `len`) take it shared and run in parallel with each
//! other. `add` and `remove` take it exclusively for the whole batch: they wait
//! for running searches, and searches wait for them. `add` validates its batch
//! before taking the lock, so a bad batch never blocks anybody. Encoding
//! (LHV1) takes it shared while the bytes are copied into memory only.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::filter::AttrIndex;
use crate::hnsw::binary::{self, put_u32, put_u64, Reader};
use crate::hnsw::graph::{Graph, GraphParams};
use crate::hnsw::Metric;

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

fn validate_id(id: &str) -> std::result::Result<(), String> {
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
fn validate_metadata(m: &str) -> std::result::Result<&str, String> {
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

/// Checks a vector's components; under cosine it must not be all zeros.
fn check_vector(v: &[f32], metric: Metric) -> std::result::Result<(), String> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!("component {i} is {}", v[i]));
    }
    if metric == Metric::Cosine && v.iter().all(|&x| x == 0.0) {
        return Err("zero vector has no direction under the cosine metric".into());
    }
    Ok(())
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
    /// Per slot: the id of a live item, None for a tombstone.
    pub(crate) ids: Vec<Option<Arc<str>>>,
    pub(crate) slot_of: HashMap<Arc<str>, u32>,
    /// Per slot: the item's metadata JSON text.
    pub(crate) metadata: Vec<Option<Arc<str>>>,
    /// What filters evaluate against (src/filter); follows every insert and
    /// tombstone, rebuilt with `rebuild_attrs` whenever slots are renumbered.
    pub(crate) attrs: AttrIndex,
}

impl Inner {
    /// Tombstones the item `id` if present; its slot may be reused.
    fn forget(&mut self, id: &str) -> bool {
        let Some(slot) = self.slot_of.remove(id) else {
            return false;
        };
        self.graph.remove(slot);
        self.attrs
            .remove(slot, self.metadata[slot as usize].as_deref());
        self.ids[slot as usize] = None;
        self.metadata[slot as usize] = None;
        true
    }

    /// Rebuilds the attribute index from `ids` and `metadata` (after
    /// compaction renumbered the slots).
    pub(crate) fn rebuild_attrs(&mut self) {
        self.attrs = AttrIndex::rebuild(&self.ids, &self.metadata);
    }

    pub(crate) fn hit(&self, slot: u32, distance: f32) -> Hit {
        Hit {
            id: self.ids[slot as usize]
                .clone()
                .unwrap_or_else(|| Arc::from("")),
            distance,
            metadata: self.metadata[slot as usize].clone(),
        }
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
    /// Threads used to insert a batch; 0 = all cores.
    insert_threads: AtomicUsize,
    /// Bumped by every committed mutation (persistence uses it to know what
    /// is dirty).
    version: AtomicU64,
    inner: RwLock<Inner>,
    /// Told after every committed add or remove (persistence hooks in here).
    observer: RwLock<Option<Arc<dyn IndexObserver>>>,
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

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Index {
    pub fn new(params: IndexParams) -> Result<Index> {
        Index::with_seed(params, DEFAULT_SEED)
    }

    /// A new index whose level generator starts from `seed` (builds on one
    /// thread with the same seed and inputs are identical).
    pub fn with_seed(params: IndexParams, seed: u64) -> Result<Index> {
        params.validate()?;
        let graph = Graph::new(graph_params(&params), seed);
        Ok(Index::from_inner(
            params,
            Inner {
                graph,
                ids: Vec::new(),
                slot_of: HashMap::new(),
                metadata: Vec::new(),
                attrs: AttrIndex::default(),
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
            insert_threads: AtomicUsize::new(0),
            version: AtomicU64::new(0),
            inner: RwLock::new(inner),
            observer: RwLock::new(None),
        }
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

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the index half-written
        // in a way later readers trip on (writes are validated first), so a
        // poisoned lock is still usable.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
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

    pub fn params(&self) -> IndexParams {
        IndexParams {
            name: self.name.clone(),
            dim: self.dim,
            metric: self.metric,
            m: self.m,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search(),
        }
    }

    pub fn ef_search(&self) -> u32 {
        self.ef_search.load(Ordering::Relaxed)
    }

    /// Changes the default beam width of later searches.
    pub fn set_ef_search(&self, ef: u32) -> Result<()> {
        if ef == 0 || ef > MAX_EF {
            return Err(Error::InvalidArgument(format!(
                "index {:?}: ef_search {ef} is outside 1..={MAX_EF}",
                self.name
            )));
        }
        self.ef_search.store(ef, Ordering::Relaxed);
        Ok(())
    }

    /// Threads used to insert one batch; 0 (the default) means all cores.
    pub fn set_insert_threads(&self, threads: usize) {
        self.insert_threads.store(threads, Ordering::Relaxed);
    }

    /// A counter bumped by every committed add or remove.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.read().slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: &str) -> bool {
        self.read().slot_of.contains_key(id)
    }

    /// The stored vector (unit length under cosine) and metadata of `id`.
    pub fn get(&self, id: &str) -> Result<(Vec<f32>, Option<Arc<str>>)> {
        let inner = self.read();
        let slot = *inner
            .slot_of
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("index {:?} has no id {id:?}", self.name)))?;
        Ok((
            inner.graph.vector(slot).to_vec(),
            inner.metadata[slot as usize].clone(),
        ))
    }

    /// Upserts a batch: `vectors` is `ids.len() * dim` row-major; `metadata`
    /// is None or one entry per item. All-or-nothing: every item is checked
    /// before anything changes, and the first bad one fails the call, naming
    /// its position.
    pub fn add(
        &self,
        ids: &[&str],
        vectors: &[f32],
        metadata: Option<&[Option<&str>]>,
    ) -> Result<()> {
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

        let mut guard = self.write();
        let inner = &mut *guard;
        // Upsert: the old version of an existing id becomes a tombstone whose
        // slot the batch may reuse.
        for id in ids {
            inner.forget(id);
        }
        let slots = inner.graph.insert_batch(vectors, threads);
        let n = inner.graph.slots();
        inner.ids.resize(n, None);
        inner.metadata.resize(n, None);
        for ((id, md), slot) in ids.iter().zip(clean_md).zip(slots) {
            let id: Arc<str> = Arc::from(*id);
            inner.ids[slot as usize] = Some(id.clone());
            inner.attrs.insert(slot, md.as_deref());
            inner.metadata[slot as usize] = md;
            inner.slot_of.insert(id, slot);
        }
        self.version.fetch_add(1, Ordering::Release);
        drop(guard);
        self.notify();
        Ok(())
    }

    /// Removes the given ids; ids that are not present are skipped (so a
    /// retried remove succeeds). Returns how many items were removed.
    pub fn remove(&self, ids: &[&str]) -> Result<usize> {
        for (i, id) in ids.iter().enumerate() {
            validate_id(id).map_err(|e| {
                Error::InvalidArgument(format!("index {:?}: id {i} ({id:?}): {e}", self.name))
            })?;
        }
        let mut guard = self.write();
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
            crate::hnsw::distance::normalize(q, buf);
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
        let ef = self.check_k(k, ef)?;
        let mut buf = Vec::new();
        let q = self.prepare_query(query, "query", &mut buf)?;
        let inner = self.read();
        Ok(inner
            .graph
            .search(q, k, ef)
            .into_iter()
            .map(|c| inner.hit(c.slot, c.dist))
            .collect())
    }

    /// Searches `queries.len() / dim` queries on all cores; one hit list per
    /// query, in order. Every query is checked before any search runs.
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        ef: Option<u32>,
    ) -> Result<Vec<Vec<Hit>>> {
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
        let inner = self.read();
        let run = |i: usize| -> Vec<Hit> {
            inner
                .graph
                .search(&prepared[i * dim..(i + 1) * dim], k, ef)
                .into_iter()
                .map(|c| inner.hit(c.slot, c.dist))
                .collect()
        };
        let threads = cores().min(nq / 4).max(1);
        if threads == 1 {
            return Ok((0..nq).map(run).collect());
        }
        let mut out: Vec<Vec<Hit>> = vec![Vec::new(); nq];
        let next = AtomicUsize::new(0);
        let results = std::sync::Mutex::new(&mut out);
        std::thread::scope(|sc| {
            for _ in 0..threads {
                sc.spawn(|| {
                    let mut local = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= nq {
                            break;
                        }
                        local.push((i, run(i)));
                    }
                    let mut res = results.lock().unwrap_or_else(|p| p.into_inner());
                    for (i, hits) in local {
                        res[i] = hits;
                    }
                });
            }
        });
        Ok(out)
    }

    /// Bytes held by the graph, ids and metadata (an estimate that ignores
    /// allocator slack).
    pub fn memory_bytes(&self) -> usize {
        let inner = self.read();
        let strings: usize = inner
            .ids
            .iter()
            .flatten()
            .map(|s| s.len() + 16)
            .chain(inner.metadata.iter().flatten().map(|s| s.len() + 16))
            .sum();
        inner.graph.memory_bytes()
            + strings
            + inner.ids.capacity() * 32
            + inner.slot_of.capacity() * 24
    }

    /// Writes the graph section (ids and graph, docs/lhv1.md) under a read
    /// lock, together with what the envelope needs, taken from the same
    /// snapshot: live count and metadata.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.read();
        let mut graph = Vec::with_capacity(
            binary::encoded_len(&inner.graph)
                + 16
                + inner
                    .ids
                    .iter()
                    .flatten()
                    .map(|s| s.len() + 4)
                    .sum::<usize>()
                // Room for the LHV1 header and envelope, so framing the blob
                // in place does not reallocate (a guess; more just grows).
                + 512
                + inner
                    .ids
                    .iter()
                    .zip(&inner.metadata)
                    .filter_map(|(id, md)| Some(2 * id.as_ref()?.len() + md.as_ref()?.len() + 8))
                    .sum::<usize>(),
        );
        binary::advise_huge_pages(graph.as_ptr(), graph.capacity());
        put_u32(&mut graph, GRAPH_FORMAT);
        put_u64(&mut graph, inner.ids.len() as u64);
        for id in &inner.ids {
            let s = id.as_deref().unwrap_or("");
            put_u32(&mut graph, s.len() as u32);
            graph.extend_from_slice(s.as_bytes());
        }
        binary::write_graph(&inner.graph, &mut graph);
        let metadata = inner
            .ids
            .iter()
            .zip(&inner.metadata)
            .filter_map(|(id, md)| Some((id.clone()?, md.clone()?)))
            .collect();
        Snapshot {
            params: self.params(),
            count: inner.slot_of.len() as u64,
            metadata,
            graph,
            version: self.version(),
        }
    }

    /// Restores an index from a graph section and the envelope's parameters,
    /// count and metadata, validating everything (see docs/lhv1.md).
    /// `base` is the offset of `graph` in the whole blob, for messages.
    pub fn restore(
        params: IndexParams,
        count: u64,
        metadata: Vec<(String, String)>,
        graph: &[u8],
        base: usize,
    ) -> Result<Index> {
        params
            .validate()
            .map_err(|e| Error::Corrupt(format!("envelope parameters: {e}")))?;
        let mut r = Reader::new(graph, base);
        let format = r.u32("graph format")?;
        if format == 0 {
            return Err(r.corrupt("graph format 0 does not exist"));
        }
        if format != GRAPH_FORMAT {
            return Err(Error::Unsupported(format!(
                "graph format {format}; this reader knows format {GRAPH_FORMAT}"
            )));
        }
        let slots = r.u64("id count")?;
        // Every id takes at least its 4-byte length.
        if slots > (r.remaining() / 4) as u64 {
            return Err(r.corrupt(format_args!(
                "id count {slots} cannot fit in {} bytes",
                r.remaining()
            )));
        }
        let mut ids: Vec<Option<Arc<str>>> = Vec::with_capacity(slots as usize);
        let mut slot_of: HashMap<Arc<str>, u32> = HashMap::with_capacity(slots as usize);
        for slot in 0..slots as u32 {
            let len = r.u32("id length")? as usize;
            if len == 0 {
                ids.push(None);
                continue;
            }
            if len > MAX_ID_BYTES {
                return Err(r.corrupt(format_args!("id of slot {slot} is {len} bytes")));
            }
            let at = r.offset();
            let bytes = r.bytes(len, "id")?;
            let id = std::str::from_utf8(bytes)
                .ok()
                .filter(|s| validate_id(s).is_ok())
                .ok_or_else(|| {
                    Error::Corrupt(format!(
                        "graph section at offset {at}: id of slot {slot} is not a valid id"
                    ))
                })?;
            let id: Arc<str> = Arc::from(id);
            if slot_of.insert(id.clone(), slot).is_some() {
                return Err(Error::Corrupt(format!(
                    "graph section at offset {at}: id {id:?} appears twice"
                )));
            }
            ids.push(Some(id));
        }
        let graph = binary::read_graph(&mut r, &graph_params(&params))?;
        if r.remaining() != 0 {
            return Err(r.corrupt(format_args!(
                "{} bytes left over after the graph",
                r.remaining()
            )));
        }
        if graph.slots() != ids.len() {
            return Err(Error::Corrupt(format!(
                "graph section: {} ids for {} slots",
                ids.len(),
                graph.slots()
            )));
        }
        for (slot, id) in ids.iter().enumerate() {
            if id.is_some() == graph.is_deleted(slot as u32) {
                return Err(Error::Corrupt(format!(
                    "graph section: slot {slot} is {} but {} an id",
                    if id.is_some() { "a tombstone" } else { "live" },
                    if id.is_some() { "has" } else { "lacks" }
                )));
            }
        }
        if slot_of.len() as u64 != count {
            return Err(Error::Corrupt(format!(
                "envelope count {count} but the graph holds {} items",
                slot_of.len()
            )));
        }
        let mut md: Vec<Option<Arc<str>>> = vec![None; ids.len()];
        for (id, text) in metadata {
            let slot = *slot_of.get(id.as_str()).ok_or_else(|| {
                Error::Corrupt(format!(
                    "metadata names id {id:?}, which is not in the index"
                ))
            })?;
            let text = validate_metadata(&text)
                .map_err(|e| Error::Corrupt(format!("metadata of id {id:?}: {e}")))?;
            md[slot as usize] = Some(Arc::from(text));
        }
        let attrs = AttrIndex::rebuild(&ids, &md);
        Ok(Index::from_inner(
            params,
            Inner {
                graph,
                ids,
                slot_of,
                metadata: md,
                attrs,
            },
        ))
    }
}

/// The format number at the start of the graph section.
pub const GRAPH_FORMAT: u32 = 1;

/// A consistent copy of an index for encoding.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub params: IndexParams,
    pub count: u64,
    pub metadata: Vec<(Arc<str>, Arc<str>)>,
    pub graph: Vec<u8>,
    /// `Index::version()` at the time of the snapshot.
    pub version: u64,
}

fn graph_params(p: &IndexParams) -> GraphParams {
    GraphParams {
        dim: p.dim as usize,
        metric: p.metric,
        m: p.m as usize,
        ef_construction: p.ef_construction as usize,
    }
}
