//! The HNSW graph (Malkov & Yashunin), laid out like hnswlib: vectors in one
//! contiguous f32 array, layer-0 neighbour lists (degree 2*M) in one
//! contiguous array, upper layers in one small array per node that has them.
//!
//! Slots are the graph's internal ids. A removed item leaves a tombstone: the
//! slot keeps its vector and links so searches can still route through it,
//! its live neighbours get their lists repaired, it is never returned, and a
//! later insert reuses the slot.
//!
//! Concurrency model: structural changes (growing the arrays, tombstones,
//! repairs) need `&mut Graph`. Inserting a batch runs on several threads over
//! `&Graph`: neighbour lists are atomics, each writer holds the node's spin
//! lock, and readers load a list's count with Acquire so they only ever see
//! ids of slots whose vectors were written before the parallel phase began.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::distance::{DistFn, Metric};
use super::visited::{Cand, Scratch, ScratchPool};

// Filtered search lives apart (src/hnsw/filtered.rs) but needs the graph's
// private walk helpers, so it is a child module.
#[path = "filtered.rs"]
mod filtered;

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

pub struct Graph {
    pub(crate) params: GraphParams,
    dist: DistFn,
    /// `slots * dim` components; cosine vectors are stored normalised.
    pub(crate) vectors: Vec<f32>,
    /// Per slot `1 + 2m` words: the count, then the neighbour slots.
    pub(crate) layer0: Vec<AtomicU32>,
    /// Per slot, `level * (1 + m)` words for levels 1..=level.
    pub(crate) upper: Vec<Box<[AtomicU32]>>,
    pub(crate) levels: Vec<u8>,
    pub(crate) deleted: Vec<bool>,
    /// Tombstoned slots waiting for reuse, most recent last.
    pub(crate) free: Vec<u32>,
    locks: Vec<AtomicBool>,
    entry: Mutex<Option<Entry>>,
    pub(crate) rng: u64,
    scratch: ScratchPool,
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
            vectors: Vec::new(),
            layer0: Vec::new(),
            upper: Vec::new(),
            levels: Vec::new(),
            deleted: Vec::new(),
            free: Vec::new(),
            locks: Vec::new(),
            entry: Mutex::new(None),
            rng: seed,
            scratch: ScratchPool::default(),
        }
    }

    /// Rebuilds a graph from parts that the binary reader has already
    /// validated (see `binary.rs`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        params: GraphParams,
        vectors: Vec<f32>,
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
        Graph {
            dist: DistFn::new(params.metric),
            params,
            vectors,
            layer0,
            upper,
            levels,
            deleted,
            free,
            locks: (0..n).map(|_| AtomicBool::new(false)).collect(),
            entry: Mutex::new(entry),
            rng,
            scratch: ScratchPool::default(),
        }
    }

    #[inline]
    pub fn slots(&self) -> usize {
        self.levels.len()
    }

    pub fn params(&self) -> &GraphParams {
        &self.params
    }

    pub fn entry_point(&self) -> (u32, u8) {
        match *self.entry.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => (e.slot, e.level),
            None => (NO_SLOT, 0),
        }
    }

    fn entry(&self) -> Option<Entry> {
        *self.entry.lock().unwrap_or_else(|p| p.into_inner())
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
    /// (or `&mut self`).
    fn write_links(&self, slot: u32, level: u8, links: &[u32]) {
        let list = self.list(slot, level);
        if let Some((count, words)) = list.split_first() {
            let n = links.len().min(words.len());
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
        #[cfg(target_arch = "x86_64")]
        {
            let i = slot as usize * self.params.dim;
            if i < self.vectors.len() {
                // SAFETY: the address is inside `vectors` (the second line
                // may lie past its end: prefetch never faults, and
                // wrapping_add keeps the pointer arithmetic defined).
                unsafe {
                    let p = self.vectors.as_ptr().add(i) as *const i8;
                    std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0);
                    std::arch::x86_64::_mm_prefetch(
                        p.wrapping_add(64),
                        std::arch::x86_64::_MM_HINT_T0,
                    );
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// Asks for the cache line holding a slot's neighbour count and first
    /// neighbours at `level` (layer 0 only: upper lists are few and small).
    #[inline(always)]
    fn prefetch_list(&self, slot: u32, level: u8) {
        #[cfg(target_arch = "x86_64")]
        if level == 0 {
            let i = slot as usize * (1 + 2 * self.params.m);
            if i < self.layer0.len() {
                // SAFETY: the address is inside `layer0`.
                unsafe {
                    std::arch::x86_64::_mm_prefetch(
                        self.layer0.as_ptr().add(i) as *const i8,
                        std::arch::x86_64::_MM_HINT_T0,
                    )
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (slot, level);
    }

    /// Greedy walk on one upper layer: the nearest node reachable by always
    /// stepping to a closer neighbour.
    fn greedy(&self, q: &[f32], mut cur: Cand, level: u8, links: &mut Vec<u32>) -> Cand {
        loop {
            let mut moved = false;
            self.read_links(cur.slot, level, links);
            for &n in links.iter() {
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
        let slots = self.slots();
        let mut links = std::mem::take(&mut s.links);
        // The farthest kept result once `best` holds `ef` (else +inf): a
        // neighbour farther than this can neither be kept nor lead anywhere.
        let bound = |best: &std::collections::BinaryHeap<Cand>| {
            if best.len() >= ef {
                best.peek().map_or(f32::INFINITY, |w| w.dist)
            } else {
                f32::INFINITY
            }
        };
        let mut worst = bound(&s.best);
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
            links.clear();
            if let Some((count, words)) = self.list(c.slot, level).split_first() {
                let cnt = (count.load(Ordering::Acquire) as usize).min(words.len());
                for w in &words[..cnt] {
                    let n = w.load(Ordering::Relaxed);
                    // Links always name existing slots; the check keeps the
                    // unchecked accesses below sound whatever a list holds.
                    if (n as usize) < slots && s.visited.insert(n) {
                        self.prefetch(n);
                        links.push(n);
                    }
                }
            }
            // Pass 2: distances, and the two heaps.
            for &n in links.iter() {
                // SAFETY: n < slots, checked in pass 1.
                let d = self.dist.eval(q, unsafe { self.vector_unchecked(n) });
                if d < worst {
                    let cand = Cand { dist: d, slot: n };
                    s.frontier.push(std::cmp::Reverse(cand));
                    if keep(n) {
                        s.best.push(cand);
                        if s.best.len() > ef {
                            s.best.pop();
                        }
                        worst = bound(&s.best);
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
        let entry = {
            let mut e = self.entry.lock().unwrap_or_else(|p| p.into_inner());
            match *e {
                None => {
                    *e = Some(Entry { slot, level });
                    return;
                }
                Some(x) => x,
            }
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
            found.sort_unstable();
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
            let mut e = self.entry.lock().unwrap_or_else(|p| p.into_inner());
            if e.is_none_or(|x| level > x.level) {
                *e = Some(Entry { slot, level });
            }
        }
    }

    /// Writes a vector into a slot's storage, normalised under cosine.
    fn store_row(&mut self, slot: u32, row: &[f32]) {
        let dim = self.params.dim;
        let dst = &mut self.vectors[slot as usize * dim..(slot as usize + 1) * dim];
        if self.params.metric == Metric::Cosine {
            super::distance::normalize(row, dst);
        } else {
            dst.copy_from_slice(row);
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
                    slot
                }
            };
            slots.push(slot);
        }
        let threads = threads.max(1).min(n / 64).max(1);
        if threads == 1 {
            let mut s = self.scratch.take();
            for &slot in &slots {
                self.insert_slot(slot, &mut s);
            }
            self.scratch.give(s);
        } else {
            let next = AtomicUsize::new(0);
            let this = &*self;
            let slots_ref = &slots;
            std::thread::scope(|sc| {
                for _ in 0..threads {
                    sc.spawn(|| {
                        let mut s = this.scratch.take();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= slots_ref.len() {
                                break;
                            }
                            this.insert_slot(slots_ref[i], &mut s);
                        }
                        this.scratch.give(s);
                    });
                }
            });
        }
        slots
    }

    fn clear(&mut self) {
        let seed = self.rng;
        let params = self.params;
        *self = Graph::new(params, seed);
    }

    /// Tombstones a slot. It keeps its vector and links, so searches still
    /// route through it (as hnswlib's mark-deleted); it is never returned and
    /// its slot is reused by a later insert, which repairs the links around
    /// it first (`unlink`).
    pub fn remove(&mut self, slot: u32) {
        if self.deleted[slot as usize] {
            return;
        }
        self.deleted[slot as usize] = true;
        self.free.push(slot);
    }

    /// Before tombstones' slots take new vectors: every list that links to
    /// one of them (found by one pass over all lists, since links are not
    /// symmetric) is rebuilt from its other links plus the tombstones' own
    /// links, so nothing that was reachable through them is cut off and no
    /// list keeps pointing at a vector it never chose. Then the slots' own
    /// lists are emptied for the re-insert. Costs O(slots * m) per batch.
    fn detach(&mut self, reused: &[u32]) {
        if reused.is_empty() {
            return;
        }
        let mut is_reused = vec![false; self.slots()];
        for &r in reused {
            is_reused[r as usize] = true;
        }
        let mut list = Vec::new();
        let mut via = Vec::new();
        let mut chosen = Vec::new();
        let mut cands: Vec<Cand> = Vec::new();
        for n in 0..self.slots() as u32 {
            if is_reused[n as usize] {
                continue;
            }
            for level in 0..=self.levels[n as usize] {
                self.read_links(n, level, &mut list);
                if !list.iter().any(|&l| is_reused[l as usize]) {
                    continue;
                }
                let base = self.vector(n);
                cands.clear();
                for &l in &list {
                    if is_reused[l as usize] {
                        self.read_links(l, level, &mut via);
                        for &v in &via {
                            if v != n && !is_reused[v as usize] {
                                cands.push(Cand {
                                    dist: self.dist.eval(base, self.vector(v)),
                                    slot: v,
                                });
                            }
                        }
                    } else {
                        cands.push(Cand {
                            dist: self.dist.eval(base, self.vector(l)),
                            slot: l,
                        });
                    }
                }
                cands.sort_unstable();
                cands.dedup_by_key(|c| c.slot);
                let max = self.max_degree(level);
                self.select_heuristic(&cands, max, &mut chosen);
                // Top up with the nearest pruned candidates: a repaired node
                // has lost links and should not lose reach as well.
                for c in &cands {
                    if chosen.len() >= max {
                        break;
                    }
                    if !chosen.contains(&c.slot) {
                        chosen.push(c.slot);
                    }
                }
                self.write_links(n, level, &chosen);
            }
        }
        for &r in reused {
            for level in 0..=self.levels[r as usize] {
                self.write_links(r, level, &[]);
            }
        }
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
        let mut s = self.scratch.take();
        let mut links = std::mem::take(&mut s.links);
        let mut cur = Cand {
            dist: self.distance_to(q, entry.slot),
            slot: entry.slot,
        };
        for l in (1..=entry.level).rev() {
            cur = self.greedy(q, cur, l, &mut links);
        }
        s.links = links;
        let skip_deleted = !self.free.is_empty();
        self.search_layer(q, cur, ef.max(k), 0, skip_deleted, NO_SLOT, &mut s);
        let mut out: Vec<Cand> = s.best.drain().collect();
        out.sort_unstable();
        out.truncate(k);
        self.scratch.give(s);
        out
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
    }
}
