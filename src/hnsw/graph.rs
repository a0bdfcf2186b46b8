//! The HNSW graph (Malkov & Yashunin). Unlike hnswlib, which interleaves each
//! node's vector, layer-0 links and label in one block, the parts live in
//! separate arrays indexed by slot: all vectors in one contiguous f32 matrix
//! (the binary form writes and reads it as one run, and distance kernels
//! stream rows of it), all layer-0 neighbour lists (degree 2*M) in one
//! contiguous array, upper layers in one small array per node that has them.
//!
//! Slots are the graph's internal ids. A removed item leaves a tombstone: the
//! slot keeps its vector and links so searches can still route through it,
//! it is never returned, and a later insert reuses the slot (after repairing
//! the lists that link to it) or a compaction drops it (compact.rs).
//!
//! Concurrency model: structural changes (growing the arrays, tombstones,
//! repairs) need `&mut Graph`. Inserting a batch runs on several threads over
//! `&Graph`: neighbour lists are atomics, each writer holds the node's spin
//! lock, and readers load a list's count with Acquire so they only ever see
//! ids of slots whose vectors were written before the parallel phase began.
//!
//! The entry point is one atomic word, read with Acquire by searches and
//! inserts (no lock on the search path). Inserts whose level is above the
//! current top hold `top_lock` for their whole insert, as hnswlib holds its
//! global lock: two such nodes are then inserted one after the other, so the
//! second starts from the first and links to it on the levels they share
//! above the old top. Other inserts never take that lock.

use std::collections::TryReserveError;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use super::arena::Arena;
use super::distance::{DistFn, Metric};
use super::quant::{Codes, Quantization, Quantizer, QUANT_TRAIN_MIN};
use super::visited::{with_scratch, Cand, Scratch};
use crate::parallel::parallel_for;

// Link repair, reachability and compaction live in their own files; as child
// modules they reach the graph's private lists and counters.
#[path = "compact.rs"]
mod compact;
#[path = "reorder.rs"]
mod reorder;
#[path = "repair.rs"]
mod repair;

// Filtered search lives apart (src/hnsw/filtered.rs) but needs the graph's
// private walk helpers, so it is a child module.
#[path = "filtered.rs"]
mod filtered;

// The walk on int8 codes (src/hnsw/quant_search.rs), a child module for the
// same reason.
#[path = "quant_search.rs"]
mod quant_search;

/// Highest level a node may have. With M >= 2 the chance of reaching it is
/// below 1e-9 per node; the cap keeps the binary form and validation bounded.
pub const MAX_LEVEL: u8 = 31;
/// No entry point (empty graph).
pub const NO_SLOT: u32 = u32::MAX;

/// Structural parameters of a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphParams {
    pub dim: usize,
    pub metric: Metric,
    /// Maximum degree on layers >= 1; layer 0 allows 2*m.
    pub m: usize,
    pub ef_construction: usize,
}

/// A tiny spin lock, one byte per node (a std Mutex per node would cost 8).
/// Held only while a neighbour list is rewritten.
struct SpinLock<'a>(&'a AtomicBool);

impl<'a> SpinLock<'a> {
    fn lock(flag: &'a AtomicBool) -> SpinLock<'a> {
        let mut spins = 0u32;
        while flag
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        SpinLock(flag)
    }
}

impl Drop for SpinLock<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    slot: u32,
    level: u8,
}

impl Entry {
    /// The slot in the low 32 bits, the level above it; NO_SLOT = none.
    fn pack(e: Option<Entry>) -> u64 {
        match e {
            Some(e) => (e.level as u64) << 32 | e.slot as u64,
            None => NO_SLOT as u64,
        }
    }

    fn unpack(word: u64) -> Option<Entry> {
        let slot = word as u32;
        (slot != NO_SLOT).then_some(Entry {
            slot,
            level: (word >> 32) as u8,
        })
    }
}

pub struct Graph {
    pub(crate) params: GraphParams,
    dist: DistFn,
    /// `slots * dim` components; cosine vectors are stored normalised.
    pub(crate) vectors: Arena<f32>,
    /// Per slot `1 + 2m` words: the count, then the neighbour slots.
    pub(crate) layer0: Vec<AtomicU32>,
    /// Per slot, `level * (1 + m)` words for levels 1..=level.
    pub(crate) upper: Vec<Box<[AtomicU32]>>,
    pub(crate) levels: Vec<u8>,
    pub(crate) deleted: Vec<bool>,
    /// Tombstoned slots waiting for reuse, most recent last.
    pub(crate) free: Vec<u32>,
    locks: Vec<AtomicBool>,
    /// `Entry::pack` of the entry point.
    entry: AtomicU64,
    /// Held by an insert that raises the top level, for its whole insert.
    top_lock: Mutex<()>,
    /// Per slot: how many layer-0 lists (of any slot, tombstones included)
    /// name it. Kept exact by `write_links`; lets a repair know when it has
    /// found every list pointing at a slot without scanning them all.
    indeg: Vec<AtomicU32>,
    /// Slots whose layer-0 in-degree fell to 0 since the last reachability
    /// pass (`repair.rs`); rare, so a mutex is cheap.
    orphans: Mutex<Vec<u32>>,
    pub(crate) rng: u64,
    quantization: Quantization,
    /// The int8 codes once the quantizer is trained (quant.rs,
    /// `QUANT_TRAIN_MIN`); None before, and always under `Quantization::None`.
    pub(crate) codes: Option<Box<Codes>>,
    /// Room for the codes, reserved by `try_reserve` when the coming batch
    /// trains the quantizer, used by `train_codes`.
    codes_room: Arena<u8>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("params", &self.params)
            .field("slots", &self.slots())
            .field("free", &self.free.len())
            .finish()
    }
}

/// Most cache lines of one row a search asks for ahead of its distance
/// kernel. A 128-d f32 row (8 lines) asked for whole ran 8-10% faster than
/// its first two lines (synth-100k, ef 24 and 32, A/B in one sitting); at
/// 384-d (24 lines) 8 were as fast as 2 and all 24 slower: the hardware
/// prefetcher streams the rest of a long row once the kernel reads it, and
/// more requests in flight only queue.
const PREFETCH_LINES: usize = 8;

/// Asks for the first lines (up to `PREFETCH_LINES`) of the row of `len`
/// elements starting at `data[i]`.
#[inline(always)]
pub(super) fn prefetch_row<T>(data: &[T], i: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if i < data.len() {
        let bytes = len * std::mem::size_of::<T>();
        let lines = bytes.div_ceil(64).min(PREFETCH_LINES);
        let p = data.as_ptr().wrapping_add(i) as *const i8;
        for l in 0..lines {
            // SAFETY: prefetch never faults, whatever the address; the row
            // starts inside `data` and wrapping_add keeps the arithmetic
            // defined.
            unsafe {
                std::arch::x86_64::_mm_prefetch(
                    p.wrapping_add(l * 64),
                    std::arch::x86_64::_MM_HINT_T0,
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, i, len);
}

/// splitmix64: small, fast and good enough for level draws; its whole state
/// is one u64, which the binary form stores so reloaded graphs keep drawing
/// the same levels.
fn next_u64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Graph {
    pub fn new(params: GraphParams, seed: u64) -> Graph {
        Graph {
            dist: DistFn::new(params.metric),
            params,
            vectors: Arena::new(),
            layer0: Vec::new(),
            upper: Vec::new(),
            levels: Vec::new(),
            deleted: Vec::new(),
            free: Vec::new(),
            locks: Vec::new(),
            entry: AtomicU64::new(Entry::pack(None)),
            top_lock: Mutex::new(()),
            indeg: Vec::new(),
            orphans: Mutex::new(Vec::new()),
            rng: seed,
            quantization: Quantization::None,
            codes: None,
            codes_room: Arena::new(),
        }
    }

    /// Sets how searches walk the graph; only on an empty graph (the
    /// quantizer is trained later, see `QUANT_TRAIN_MIN`).
    pub fn set_quantization(&mut self, q: Quantization) {
        debug_assert_eq!(self.slots(), 0);
        self.quantization = q;
        self.codes = None;
    }

    pub fn quantization(&self) -> Quantization {
        self.quantization
    }

    /// The trained quantizer, if any.
    pub fn quantizer(&self) -> Option<&Quantizer> {
        self.codes.as_ref().map(|c| &c.quantizer)
    }

    /// Restores the quantization and quantizer of a decoded graph; the codes
    /// are derived again from the vectors (encoding is deterministic, so they
    /// are the ones the encoded index had).
    pub(crate) fn restore_quantizer(&mut self, q: Quantization, quantizer: Option<Quantizer>) {
        self.quantization = q;
        self.codes = quantizer.map(|qz| {
            Box::new(Codes::build(
                qz,
                &self.vectors,
                self.params.dim,
                self.params.metric,
            ))
        });
    }

    /// Trains the quantizer on every stored vector once an int8 graph
    /// reaches `QUANT_TRAIN_MIN` slots (or retrains it, after a compaction).
    fn train_codes(&mut self, retrain: bool) {
        if self.quantization != Quantization::Int8 || (self.codes.is_some() && !retrain) {
            return;
        }
        if self.slots() < QUANT_TRAIN_MIN {
            self.codes = None;
            return;
        }
        let dim = self.params.dim;
        let qz = Quantizer::train(&self.vectors, dim);
        // A retrain writes over the old codes' buffer (it reads only the
        // vectors), so it needs no second one either.
        let room = match self.codes.take() {
            Some(old) if self.codes_room.capacity() == 0 => old.codes,
            _ => std::mem::take(&mut self.codes_room),
        };
        self.codes = Some(Box::new(Codes::build_in(
            qz,
            &self.vectors,
            dim,
            self.params.metric,
            room,
        )));
    }

    /// Rebuilds a graph from parts that the binary reader has already
    /// validated (see `binary.rs`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        params: GraphParams,
        vectors: Arena<f32>,
        layer0: Vec<AtomicU32>,
        upper: Vec<Box<[AtomicU32]>>,
        levels: Vec<u8>,
        deleted: Vec<bool>,
        free: Vec<u32>,
        entry: u32,
        rng: u64,
    ) -> Graph {
        let n = levels.len();
        let entry = (entry != NO_SLOT).then(|| Entry {
            slot: entry,
            level: levels[entry as usize],
        });
        let mut g = Graph {
            dist: DistFn::new(params.metric),
            params,
            vectors,
            layer0,
            upper,
            levels,
            deleted,
            free,
            locks: (0..n).map(|_| AtomicBool::new(false)).collect(),
            entry: AtomicU64::new(Entry::pack(entry)),
            top_lock: Mutex::new(()),
            indeg: Vec::new(),
            orphans: Mutex::new(Vec::new()),
            rng,
            quantization: Quantization::None,
            codes: None,
            codes_room: Arena::new(),
        };
        g.indeg = g.count_in_degrees();
        g
    }

    #[inline]
    pub fn slots(&self) -> usize {
        self.levels.len()
    }

    pub fn params(&self) -> &GraphParams {
        &self.params
    }

    pub fn entry_point(&self) -> (u32, u8) {
        match self.entry() {
            Some(e) => (e.slot, e.level),
            None => (NO_SLOT, 0),
        }
    }

    /// Acquire: pairs with the Release store of the insert that made the
    /// node the entry point, after its lists were written.
    #[inline]
    fn entry(&self) -> Option<Entry> {
        Entry::unpack(self.entry.load(Ordering::Acquire))
    }

    fn set_entry(&self, e: Option<Entry>) {
        self.entry.store(Entry::pack(e), Ordering::Release);
    }

    #[inline(always)]
    pub fn vector(&self, slot: u32) -> &[f32] {
        let d = self.params.dim;
        let s = slot as usize * d;
        &self.vectors[s..s + d]
    }

    #[inline]
    pub fn is_deleted(&self, slot: u32) -> bool {
        self.deleted[slot as usize]
    }

    #[inline(always)]
    fn max_degree(&self, level: u8) -> usize {
        if level == 0 {
            self.params.m * 2
        } else {
            self.params.m
        }
    }

    /// The words of one neighbour list: `[count, n1, n2, ...]`. A level above
    /// the node's own has no list (an empty slice), which also keeps reads
    /// through stale links safe.
    #[inline(always)]
    fn list(&self, slot: u32, level: u8) -> &[AtomicU32] {
        if level == 0 {
            let w = 1 + 2 * self.params.m;
            let s = slot as usize * w;
            &self.layer0[s..s + w]
        } else {
            let w = 1 + self.params.m;
            let u = &self.upper[slot as usize];
            let s = (level as usize - 1) * w;
            if s + w <= u.len() {
                &u[s..s + w]
            } else {
                &[]
            }
        }
    }

    /// Copies a node's neighbours into `out`.
    #[inline(always)]
    fn read_links(&self, slot: u32, level: u8, out: &mut Vec<u32>) {
        out.clear();
        let list = self.list(slot, level);
        if let Some((count, links)) = list.split_first() {
            let n = (count.load(Ordering::Acquire) as usize).min(links.len());
            out.extend(links[..n].iter().map(|l| l.load(Ordering::Relaxed)));
        }
    }

    /// Overwrites a node's neighbour list; the caller holds the node's lock
    /// (or `&mut self`). On layer 0 the in-degree counters follow: what
    /// leaves the list is decremented, what enters it incremented.
    fn write_links(&self, slot: u32, level: u8, links: &[u32]) {
        let list = self.list(slot, level);
        if let Some((count, words)) = list.split_first() {
            let n = links.len().min(words.len());
            if level == 0 {
                self.count_list_change(count, words, &links[..n]);
            }
            for (w, &l) in words.iter().zip(&links[..n]) {
                w.store(l, Ordering::Relaxed);
            }
            count.store(n as u32, Ordering::Release);
        }
    }

    /// The neighbours of a slot at a level (for validation, tests and the
    /// binary writer).
    pub fn neighbours(&self, slot: u32, level: u8) -> Vec<u32> {
        let mut v = Vec::new();
        self.read_links(slot, level, &mut v);
        v
    }

    fn random_level(&mut self) -> u8 {
        let mult = 1.0 / (self.params.m.max(2) as f64).ln();
        // Uniform in (0, 1]: never ln(0).
        let u = ((next_u64(&mut self.rng) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let level = (-u.ln() * mult).floor();
        if level >= MAX_LEVEL as f64 {
            MAX_LEVEL
        } else {
            level as u8
        }
    }

    #[inline(always)]
    fn distance_to(&self, q: &[f32], slot: u32) -> f32 {
        self.dist.eval(q, self.vector(slot))
    }

    /// The vector of a slot without a bounds check.
    ///
    /// # Safety
    /// `slot < self.slots()` (then `vectors` holds the whole row: it always
    /// has `slots * dim` components).
    #[inline(always)]
    unsafe fn vector_unchecked(&self, slot: u32) -> &[f32] {
        let d = self.params.dim;
        debug_assert!((slot as usize) < self.slots());
        self.vectors
            .get_unchecked(slot as usize * d..(slot as usize + 1) * d)
    }

    /// Asks for the first cache lines of a slot's vector (the hardware
    /// prefetcher streams the rest once the kernel starts reading).
    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        let d = self.params.dim;
        prefetch_row(&self.vectors, slot as usize * d, d);
    }

    /// Asks for the cache line holding a slot's neighbour count and first
    /// neighbours at `level` (layer 0 only: upper lists are few and small).
    #[inline(always)]
    fn prefetch_list(&self, slot: u32, level: u8) {
        if level == 0 {
            prefetch_row(&self.layer0, slot as usize * (1 + 2 * self.params.m), 1);
        }
    }

    /// Greedy descent from the entry point down to `level` (the starting
    /// point of a beam search on that layer).
    fn descend(&self, q: &[f32], entry: Entry, level: u8, links: &mut Vec<u32>) -> Cand {
        let mut cur = Cand {
            dist: self.distance_to(q, entry.slot),
            slot: entry.slot,
        };
        let mut l = entry.level;
        while l > level {
            cur = self.greedy(q, cur, l, links);
            l -= 1;
        }
        cur
    }

    /// Pass 1 of every beam step: the neighbours of `slot` at `level` not
    /// visited yet, marked visited, each handed to `prefetch` so its data
    /// loads while earlier distances are computed. Every slot put in
    /// `out` is below `slots()`, whatever a list holds, so callers may read
    /// its rows unchecked.
    #[inline(always)]
    pub(super) fn collect_unvisited(
        &self,
        slot: u32,
        level: u8,
        visited: &mut super::visited::Visited,
        out: &mut Vec<u32>,
        prefetch: impl Fn(u32),
    ) {
        out.clear();
        let slots = self.slots();
        if let Some((count, words)) = self.list(slot, level).split_first() {
            let cnt = (count.load(Ordering::Acquire) as usize).min(words.len());
            for w in &words[..cnt] {
                let n = w.load(Ordering::Relaxed);
                if (n as usize) < slots && visited.insert(n) {
                    prefetch(n);
                    out.push(n);
                }
            }
        }
    }

    /// Greedy walk on one upper layer: the nearest node reachable by always
    /// stepping to a closer neighbour.
    fn greedy(&self, q: &[f32], mut cur: Cand, level: u8, links: &mut Vec<u32>) -> Cand {
        loop {
            let mut moved = false;
            self.read_links(cur.slot, level, links);
            // Ask for every neighbour's row first, then take them four at a
            // time (bit-identical to one by one, and in the same order, so
            // the walk is the one the single kernel would take).
            for &n in links.iter() {
                self.prefetch(n);
            }
            let mut blocks = links.chunks_exact(4);
            for b in &mut blocks {
                let ds = self.dist.eval4(
                    q,
                    [
                        self.vector(b[0]),
                        self.vector(b[1]),
                        self.vector(b[2]),
                        self.vector(b[3]),
                    ],
                );
                for (&n, d) in b.iter().zip(ds) {
                    if d < cur.dist {
                        cur = Cand { dist: d, slot: n };
                        moved = true;
                    }
                }
            }
            for &n in blocks.remainder() {
                let d = self.distance_to(q, n);
                if d < cur.dist {
                    cur = Cand { dist: d, slot: n };
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Beam search on one layer. Leaves up to `ef` results in `s.best`
    /// (farthest on top). Tombstones are walked through but never kept when
    /// `skip_deleted` is set; `exclude` is never kept either (a slot being
    /// re-inserted must not become its own neighbour).
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        q: &[f32],
        start: Cand,
        ef: usize,
        level: u8,
        skip_deleted: bool,
        exclude: u32,
        s: &mut Scratch,
    ) {
        s.visited.reset(self.slots());
        s.frontier.clear();
        s.best.clear();
        s.visited.insert(start.slot);
        s.frontier.push(std::cmp::Reverse(start));
        let keep = |slot: u32| slot != exclude && !(skip_deleted && self.deleted[slot as usize]);
        if keep(start.slot) {
            s.best.push(start);
        }
        let mut links = std::mem::take(&mut s.links);
        let mut worst = s.best.bound(ef);
        while let Some(std::cmp::Reverse(c)) = s.frontier.pop() {
            if c.dist > worst {
                break;
            }
            if let Some(std::cmp::Reverse(next)) = s.frontier.peek() {
                self.prefetch_list(next.slot, level);
            }
            // Pass 1: collect the unvisited neighbours and prefetch their
            // vectors, so the loads overlap the distance computations of
            // pass 2 instead of stalling each one.
            self.collect_unvisited(c.slot, level, &mut s.visited, &mut links, |n| {
                self.prefetch(n)
            });
            // Pass 2: distances, four neighbours per kernel call (the query
            // is read once per block and four independent sums overlap),
            // the rest one by one; both give the same bits. Then the heaps.
            let mut dists = [0f32; 4];
            for (i, &n) in links.iter().enumerate() {
                let d = if i % 4 == 0 && i + 4 <= links.len() {
                    // SAFETY: every link < slots, checked in pass 1.
                    dists = unsafe {
                        self.dist.eval4(
                            q,
                            [
                                self.vector_unchecked(links[i]),
                                self.vector_unchecked(links[i + 1]),
                                self.vector_unchecked(links[i + 2]),
                                self.vector_unchecked(links[i + 3]),
                            ],
                        )
                    };
                    dists[0]
                } else if i / 4 * 4 + 4 <= links.len() {
                    dists[i % 4]
                } else {
                    // SAFETY: n < slots, checked in pass 1.
                    self.dist.eval(q, unsafe { self.vector_unchecked(n) })
                };
                if d < worst {
                    let cand = Cand { dist: d, slot: n };
                    s.frontier.push(std::cmp::Reverse(cand));
                    if keep(n) {
                        s.best.push_bounded(cand, ef);
                        worst = s.best.bound(ef);
                    }
                }
            }
        }
        s.links = links;
    }

    /// Malkov & Yashunin algorithm 4 (as hnswlib's heuristic): walk the
    /// candidates nearest first and keep one only if it is nearer to the base
    /// than to every neighbour already kept. `cands` must be sorted ascending.
    fn select_heuristic(&self, cands: &[Cand], max: usize, out: &mut Vec<u32>) {
        out.clear();
        if cands.len() <= max {
            out.extend(cands.iter().map(|c| c.slot));
            return;
        }
        let mut kept: Vec<Cand> = Vec::with_capacity(max);
        for c in cands {
            if kept.len() >= max {
                break;
            }
            let v = self.vector(c.slot);
            let good = kept
                .iter()
                .all(|k| self.dist.eval(v, self.vector(k.slot)) >= c.dist);
            if good {
                kept.push(*c);
            }
        }
        out.extend(kept.iter().map(|c| c.slot));
    }

    /// Adds `new` to `node`'s list at `level`, pruning with the heuristic when
    /// the list is full.
    fn link_back(&self, node: u32, new: u32, level: u8, links: &mut Vec<u32>) {
        let max = self.max_degree(level);
        let _guard = SpinLock::lock(&self.locks[node as usize]);
        self.read_links(node, level, links);
        if links.contains(&new) {
            return;
        }
        if links.len() < max {
            links.push(new);
            self.write_links(node, level, links);
            return;
        }
        let base = self.vector(node);
        let mut cands: Vec<Cand> = links
            .iter()
            .chain(std::iter::once(&new))
            .map(|&n| Cand {
                dist: self.dist.eval(base, self.vector(n)),
                slot: n,
            })
            .collect();
        cands.sort_unstable();
        let mut chosen = Vec::with_capacity(max);
        self.select_heuristic(&cands, max, &mut chosen);
        self.write_links(node, level, &chosen);
    }

    /// Links one slot (vector and level already in place) into the graph.
    fn insert_slot(&self, slot: u32, s: &mut Scratch) {
        let level = self.levels[slot as usize];
        let raises = |e: Option<Entry>| e.is_none_or(|e| level > e.level);
        let mut entry = self.entry();
        // The top only rises while a batch runs, so a node at or below it
        // now stays there; only the others need the lock, and must look at
        // the entry again once they hold it.
        let _top = if raises(entry) {
            let guard = self.top_lock.lock().unwrap_or_else(|p| p.into_inner());
            entry = self.entry();
            raises(entry).then_some(guard)
        } else {
            None
        };
        let Some(entry) = entry else {
            self.set_entry(Some(Entry { slot, level }));
            return;
        };
        if entry.slot == slot {
            return;
        }
        let q = self.vector(slot);
        let mut links = Vec::new();
        let mut cur = Cand {
            dist: self.distance_to(q, entry.slot),
            slot: entry.slot,
        };
        let mut l = entry.level;
        while l > level {
            cur = self.greedy(q, cur, l, &mut links);
            l -= 1;
        }
        let top = level.min(entry.level);
        let mut chosen = Vec::with_capacity(self.params.m);
        let mut found: Vec<Cand> = Vec::new();
        for l in (0..=top).rev() {
            self.search_layer(q, cur, self.params.ef_construction, l, true, slot, s);
            found.clear();
            found.extend(s.best.drain());
            if found.is_empty() {
                // Everything reachable here is a tombstone: keep the walk's
                // node as the only link so the new node stays reachable.
                if cur.slot != slot {
                    found.push(cur);
                }
            }
            self.select_heuristic(&found, self.params.m, &mut chosen);
            {
                let _guard = SpinLock::lock(&self.locks[slot as usize]);
                self.write_links(slot, l, &chosen);
            }
            for &n in &chosen {
                self.link_back(n, slot, l, &mut links);
            }
            if let Some(first) = found.first() {
                cur = *first;
            }
        }
        if level > entry.level {
            // `_top` is held: no other insert can have raised the top since.
            self.set_entry(Some(Entry { slot, level }));
        }
    }

    /// Writes a vector into a slot's storage, normalised under cosine.
    fn store_row(&mut self, slot: u32, row: &[f32]) {
        let dim = self.params.dim;
        let dst = &mut self.vectors[slot as usize * dim..(slot as usize + 1) * dim];
        if self.params.metric == Metric::Cosine {
            // `Index` checks every vector first (`check_vector`).
            let normalised = super::distance::normalize(row, dst);
            debug_assert!(normalised, "a vector that cannot be normalised was stored");
        } else {
            dst.copy_from_slice(row);
        }
        if let Some(c) = self.codes.as_mut() {
            let dst = &self.vectors[slot as usize * dim..(slot as usize + 1) * dim];
            c.set_row(slot as usize, dst);
        }
    }

    /// Places `vectors` (n * dim; normalised here under cosine) into slots,
    /// reusing tombstones first, and links them in on up to `threads`
    /// threads. Returns the slot of each vector, in order.
    pub fn insert_batch(&mut self, vectors: &[f32], threads: usize) -> Vec<u32> {
        let dim = self.params.dim;
        let n = vectors.len() / dim;
        let mut slots = Vec::with_capacity(n);
        // A graph whose every slot is a tombstone routes nowhere useful:
        // start over rather than hang new nodes off dead ones.
        if self.free.len() == self.slots() && self.slots() > 0 {
            self.clear();
        }
        let entry = self.entry();
        // The entry point's slot is not reused: its upper lists are where
        // every search starts.
        let mut reused = Vec::new();
        let mut kept = Vec::new();
        while reused.len() < n {
            match self.free.pop() {
                Some(f) if entry.is_some_and(|e| e.slot == f) => kept.push(f),
                Some(f) => reused.push(f),
                None => break,
            }
        }
        self.free.extend(kept);
        self.detach(&reused);
        // Grow every per-slot array once for the whole batch: for a first
        // batch this allocates exactly what is needed, instead of doubling
        // (up to 2x the vectors' size, plus a copy, at the peak).
        let fresh = n - reused.len();
        if fresh > 0 {
            self.vectors.reserve(fresh * dim);
            self.layer0.reserve(fresh * (1 + 2 * self.params.m));
            self.upper.reserve(fresh);
            self.levels.reserve(fresh);
            self.deleted.reserve(fresh);
            self.locks.reserve(fresh);
            self.indeg.reserve(fresh);
            self.vectors.advise_huge_pages();
            super::hugepages::advise_capacity(&self.layer0);
        }
        let mut reuse = reused.into_iter();
        for row in vectors.chunks_exact(dim) {
            let slot = match reuse.next() {
                Some(slot) => {
                    self.store_row(slot, row);
                    self.deleted[slot as usize] = false;
                    slot
                }
                None => {
                    let slot = self.slots() as u32;
                    let level = self.random_level();
                    self.vectors.resize(self.vectors.len() + dim, 0.0);
                    self.store_row(slot, row);
                    let w0 = 1 + 2 * self.params.m;
                    self.layer0.extend((0..w0).map(|_| AtomicU32::new(0)));
                    let wu = level as usize * (1 + self.params.m);
                    self.upper
                        .push((0..wu).map(|_| AtomicU32::new(0)).collect());
                    self.levels.push(level);
                    self.deleted.push(false);
                    self.locks.push(AtomicBool::new(false));
                    self.indeg.push(AtomicU32::new(0));
                    slot
                }
            };
            slots.push(slot);
        }
        // Construction walks the f32 vectors, so the graph is the one an
        // unquantized index builds; the codes only serve searches.
        self.train_codes(false);
        // Below 64 nodes per thread, starting threads costs more than it
        // saves. One thread inserts in order, which keeps builds reproducible.
        let threads = threads.max(1).min(n / 64).max(1);
        let this = &*self;
        parallel_for(
            slots.len(),
            threads,
            || (),
            |_, i| with_scratch(|s| this.insert_slot(slots[i], s)),
        );
        self.ensure_reachable(&slots);
        slots
    }

    /// How many slots `insert_batch` of `n` vectors appends (rather than
    /// reuses) once the live slots `freeing` have been removed too; mirrors
    /// its choice of slots, so a caller can reserve room before changing
    /// anything.
    pub(crate) fn fresh_slots(&self, n: usize, freeing: &[u32]) -> usize {
        let free = self.free.len() + freeing.len();
        if free == self.slots() {
            // Empty, or every slot a tombstone: `insert_batch` starts over.
            return n;
        }
        let entry_free = self
            .entry()
            .is_some_and(|e| self.deleted[e.slot as usize] || freeing.contains(&e.slot));
        n.saturating_sub(free - usize::from(entry_free))
    }

    /// Makes room for `fresh` appended slots in every per-slot array and for
    /// `freeing` more tombstones in the free list, so an allocation failure
    /// is reported before the graph changes.
    pub(crate) fn try_reserve(
        &mut self,
        fresh: usize,
        freeing: usize,
    ) -> Result<(), TryReserveError> {
        self.free.try_reserve(freeing)?;
        let need = |words: usize| fresh.saturating_mul(words);
        self.vectors.try_reserve_exact(need(self.params.dim))?;
        self.layer0.try_reserve_exact(need(1 + 2 * self.params.m))?;
        self.upper.try_reserve_exact(fresh)?;
        self.levels.try_reserve_exact(fresh)?;
        self.deleted.try_reserve_exact(fresh)?;
        self.locks.try_reserve_exact(fresh)?;
        self.indeg.try_reserve_exact(fresh)?;
        self.vectors.advise_huge_pages();
        super::hugepages::advise_capacity(&self.layer0);
        if self.quantization == Quantization::Int8 {
            // Room for every slot's codes: the batch may be the one that
            // trains the quantizer.
            let slots = self.slots().saturating_add(fresh);
            if self.codes.is_none() && slots >= QUANT_TRAIN_MIN {
                // Training needs room for every slot's codes: take it now.
                let need = slots.saturating_mul(self.params.dim);
                self.codes_room.clear();
                self.codes_room.try_reserve_exact(need)?;
            }
            if let Some(c) = self.codes.as_mut() {
                c.codes.try_reserve_exact(need(self.params.dim))?;
                if self.params.metric == Metric::L2 {
                    c.norms.try_reserve_exact(fresh)?;
                }
            }
        }
        Ok(())
    }

    /// Forgets every node; the arrays keep their room and the level
    /// generator its state.
    fn clear(&mut self) {
        self.vectors.clear();
        self.layer0.clear();
        self.upper.clear();
        self.levels.clear();
        self.deleted.clear();
        self.free.clear();
        self.locks.clear();
        self.indeg.clear();
        self.codes = None;
        self.orphans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.set_entry(None);
    }

    /// Tombstones a slot. It keeps its vector and links, so searches still
    /// route through it (as hnswlib's mark-deleted); it is never returned and
    /// its slot is reused by a later insert, which first repairs the lists
    /// that link to it (`detach`, repair.rs), or dropped by `compact`.
    pub fn remove(&mut self, slot: u32) {
        if self.deleted[slot as usize] {
            return;
        }
        self.deleted[slot as usize] = true;
        self.free.push(slot);
    }

    /// k nearest live slots to `q` (normalised for cosine), nearest first.
    pub fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<Cand> {
        let Some(entry) = self.entry() else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        let live = self.slots() - self.free.len();
        if ef.max(k) >= live {
            // The beam would cover the whole index anyway: an exact scan costs
            // no more, and it also finds nodes that no link reaches (HNSW can
            // leave a few), so "k >= len returns everything" always holds.
            return self.exact(q, k);
        }
        if let Some(codes) = self.codes.as_deref() {
            return self.search_int8(codes, q, k, ef, entry);
        }
        with_scratch(|s| {
            let mut links = std::mem::take(&mut s.links);
            let cur = self.descend(q, entry, 0, &mut links);
            s.links = links;
            let skip_deleted = !self.free.is_empty();
            self.search_layer(q, cur, ef.max(k), 0, skip_deleted, NO_SLOT, s);
            let mut out: Vec<Cand> = s.best.drain().collect();
            out.truncate(k);
            out
        })
    }

    /// k nearest live slots by brute force, nearest first.
    fn exact(&self, q: &[f32], k: usize) -> Vec<Cand> {
        let mut out: Vec<Cand> = (0..self.slots() as u32)
            .filter(|&s| !self.deleted[s as usize])
            .map(|s| Cand {
                dist: self.distance_to(q, s),
                slot: s,
            })
            .collect();
        out.sort_unstable();
        out.truncate(k);
        out
    }

    /// Checks the graph's structure: array sizes, the entry point, the free
    /// list, and every neighbour list (in range, no self or repeated links,
    /// within the degree bound, only to nodes that have the level, and not
    /// empty on a level that holds other nodes). O(slots * m); for tests and
    /// debugging. The message names the first broken rule.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let n = self.slots();
        let (dim, m) = (self.params.dim, self.params.m);
        let sizes = [
            ("vectors", self.vectors.len(), n * dim),
            ("layer0", self.layer0.len(), n * (1 + 2 * m)),
            ("upper", self.upper.len(), n),
            ("deleted", self.deleted.len(), n),
            ("locks", self.locks.len(), n),
        ];
        for (what, got, want) in sizes {
            if got != want {
                return Err(format!("{what} has {got} entries for {n} slots"));
            }
        }
        if let Some(c) = self.codes.as_deref() {
            let norms = if self.params.metric == Metric::L2 {
                n
            } else {
                0
            };
            if c.codes.len() != n * dim || c.norms.len() != norms {
                return Err(format!(
                    "int8 codes ({} bytes, {} norms) do not cover {n} slots",
                    c.codes.len(),
                    c.norms.len()
                ));
            }
            let mut row = vec![0u8; dim];
            for slot in 0..n as u32 {
                c.quantizer.encode(self.vector(slot), &mut row);
                if row[..] != c.codes[slot as usize * dim..(slot as usize + 1) * dim] {
                    return Err(format!("slot {slot}'s int8 codes are not its vector's"));
                }
            }
        }
        let top = self.levels.iter().copied().max();
        match (self.entry(), top) {
            (None, None) => {}
            (Some(e), Some(top)) if (e.slot as usize) < n => {
                if e.level != top || self.levels[e.slot as usize] != top {
                    return Err(format!(
                        "entry point {} at level {} (its own level {}) is not on the top level {top}",
                        e.slot, e.level, self.levels[e.slot as usize]
                    ));
                }
            }
            (e, _) => return Err(format!("entry point {e:?} for {n} slots")),
        }
        let mut in_free = vec![false; n];
        for &f in &self.free {
            let f = f as usize;
            if f >= n || in_free[f] || !self.deleted[f] {
                return Err(format!(
                    "free list entry {f} is out of range, live or repeated"
                ));
            }
            in_free[f] = true;
        }
        if self.deleted.iter().filter(|&&d| d).count() != self.free.len() {
            return Err("a tombstone is missing from the free list".into());
        }
        // at_level[l]: how many nodes have level l or more.
        let mut at_level = [0usize; MAX_LEVEL as usize + 1];
        for &l in &self.levels {
            at_level[..=l as usize].iter_mut().for_each(|c| *c += 1);
        }
        let mut links = Vec::new();
        for slot in 0..n as u32 {
            let level = self.levels[slot as usize];
            if self.upper[slot as usize].len() != level as usize * (1 + m) {
                return Err(format!(
                    "slot {slot} at level {level} has the wrong upper lists"
                ));
            }
            for l in 0..=level {
                let list = self.list(slot, l);
                let count = list[0].load(Ordering::Acquire) as usize;
                if count > self.max_degree(l) {
                    return Err(format!("slot {slot} has {count} links at level {l}"));
                }
                self.read_links(slot, l, &mut links);
                if links.is_empty() && at_level[l as usize] > 1 {
                    return Err(format!(
                        "slot {slot} has no links at level {l}, which holds {} nodes",
                        at_level[l as usize]
                    ));
                }
                for (i, &to) in links.iter().enumerate() {
                    if to as usize >= n || to == slot || links[..i].contains(&to) {
                        return Err(format!(
                            "slot {slot} links to {to} at level {l}: out of range, itself or twice"
                        ));
                    }
                    if self.levels[to as usize] < l {
                        return Err(format!(
                            "slot {slot} links at level {l} to {to}, whose level is {}",
                            self.levels[to as usize]
                        ));
                    }
                }
            }
        }
        self.check_links_and_reach()
    }

    /// Bytes held by the graph's arrays (not counting the allocator's slack).
    pub fn memory_bytes(&self) -> usize {
        self.vectors.capacity() * 4
            + self.layer0.capacity() * 4
            + self
                .upper
                .iter()
                .map(|u| u.len() * 4 + std::mem::size_of::<Box<[AtomicU32]>>())
                .sum::<usize>()
            + self.levels.capacity() * 3
            + self.free.capacity() * 4
            + self.indeg.capacity() * 4
            + self.codes.as_ref().map_or(0, |c| c.memory_bytes())
            + self.codes_room.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> GraphParams {
        GraphParams {
            dim: 2,
            metric: Metric::L2,
            m: 2,
            ef_construction: 8,
        }
    }

    fn grid(n: usize) -> Vec<f32> {
        (0..n)
            .flat_map(|i| [(i % 17) as f32, (i / 17) as f32])
            .collect()
    }

    /// The search loop takes neighbour distances four at a time and the
    /// rest one by one; every returned distance must be, bit for bit, the
    /// single kernel's distance to that slot, and the hits must agree with a
    /// brute-force scan (up to ties) on an awkward dimension.
    #[test]
    fn batched_search_distances_equal_single_ones() {
        for metric in [Metric::L2, Metric::Cosine] {
            let dim = 33;
            let p = GraphParams {
                dim,
                metric,
                m: 6,
                ef_construction: 40,
            };
            let mut g = Graph::new(p, 9);
            let mut seed = 1u64;
            let mut rnd = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            };
            let mut data: Vec<f32> = (0..600 * dim).map(|_| rnd()).collect();
            if metric == Metric::Cosine {
                for row in data.chunks_exact_mut(dim) {
                    let src = row.to_vec();
                    assert!(super::super::distance::normalize(&src, row));
                }
            }
            g.insert_batch(&data, 1);
            let f = DistFn::new(metric);
            for qi in 0..20 {
                let q = &data[qi * 7 * dim..(qi * 7 + 1) * dim];
                let hits = g.search(q, 10, 64);
                assert_eq!(hits.len(), 10);
                for h in &hits {
                    let d = f.eval(q, g.vector(h.slot));
                    assert_eq!(h.dist.to_bits(), d.to_bits(), "{metric:?} slot {}", h.slot);
                }
                let exact = g.exact(q, 10);
                assert_eq!(hits[0].dist.to_bits(), exact[0].dist.to_bits());
            }
        }
    }

    #[test]
    fn check_invariants_notices_a_node_cut_off_on_a_level() {
        let mut g = Graph::new(params(), 3);
        g.insert_batch(&grid(300), 1);
        g.check_invariants().unwrap();
        let (_, top) = g.entry_point();
        assert!(top >= 1);
        let cut = (0..g.slots() as u32)
            .find(|&s| g.levels[s as usize] >= 1)
            .unwrap();
        g.write_links(cut, 1, &[]);
        let err = g.check_invariants().unwrap_err();
        assert!(
            err.contains(&format!("slot {cut} has no links at level 1")),
            "{err}"
        );
        g.write_links(cut, 0, &[cut]);
        assert!(g.check_invariants().is_err());
    }

    #[test]
    fn fresh_slots_predicts_how_much_a_batch_appends() {
        for (start, removed, freeing, batch) in [
            (0usize, 0usize, 0usize, 10usize),
            (100, 10, 0, 5),
            (100, 10, 0, 30),
            (100, 10, 20, 25),
            (100, 10, 20, 40),
            (100, 100, 0, 7),
            (100, 60, 40, 50),
        ] {
            let mut g = Graph::new(params(), 5);
            g.insert_batch(&grid(start), 1);
            for s in 0..removed as u32 {
                g.remove(s);
            }
            let gone: Vec<u32> = (removed as u32..(removed + freeing) as u32).collect();
            let want = g.fresh_slots(batch, &gone);
            for &s in &gone {
                g.remove(s);
            }
            let before = if g.free.len() == g.slots() {
                0
            } else {
                g.slots()
            };
            g.insert_batch(&grid(batch), 1);
            assert_eq!(
                g.slots() - before,
                want,
                "{start} slots, {removed} removed, {freeing} freed, batch {batch}"
            );
        }
    }
}
