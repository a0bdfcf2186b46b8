//! Filtered search: the k nearest slots among those a filter allows.
//!
//! The answer is always exact in what it may return (only allowed slots) and
//! in how many (fewer than k only when fewer than k are allowed); the
//! strategy only decides how close to the true top k it gets and how fast:
//!
//! - few matches: scan them exactly (cheaper than any walk);
//! - most nodes match (from `WIDE_FROM`): an unfiltered beam in which
//!   failing nodes route but are not kept, walked on until it also holds
//!   the allowed share of its width (`walk_wide`);
//! - in between, walk layer 0 through every node but keep only allowed
//!   ones; around a node whose neighbours mostly fail, look two hops out
//!   through the failing ones (ACORN-1) instead of computing their
//!   distances, so a sparse allowed set stays connected;
//! - a valve: once the walk has computed more distances than there are
//!   matches, an exact scan is cheaper than going on, so it finishes with one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

use super::{with_scratch, Cand, Graph};
use crate::filter::Bitset;
use crate::hnsw::visited::Best;

/// A walk computes about ef * max_degree distances (1,200 to 2,800 at ef
/// 64, m 16 on wordnet-minilm-30k), each dearer than a scanned one. Hence:
/// scan when there are at most this many times ef * max_degree matches
/// (in quarters). Measured on wordnet-minilm-30k at ef 64 (threshold 2 x
/// 2,048 before, 1 x after, examples/filter_bench.rs): 3,004 evenly spread
/// matches scan in 229 us and walk in 160 us (recall 0.98); 2,317
/// clustered ones (`$and` verb + example) scan in 190 us and walk in 245 us.
/// The crossover sits between, at about 1.25 x ef * max_degree (it was at
/// 2 x before the aligned arena, huge pages and reordering made each walk
/// distance cheaper).
const EXACT_QUARTERS_PER_WALK_DISTANCE: usize = 5;

/// From this share of matching items on, the walk is `walk_wide`: its beam
/// is bounded like an unfiltered one (FAISS does so at every selectivity,
/// and loses recall below about 30%: 0.93 at 10% on wordnet-minilm-30k).
const WIDE_FROM: f64 = 0.3;

/// A node expands two hops out when fewer than 1 in this many of its
/// unvisited neighbours pass.
const TWO_HOP_BELOW: usize = 4;

impl Graph {
    /// The k nearest slots set in `allowed` (which holds `matches` bits, all
    /// live), nearest first. `ef` is the beam width (at least k is used).
    pub fn search_filtered(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        allowed: &Bitset,
        matches: usize,
    ) -> Vec<Cand> {
        if k == 0 || matches == 0 {
            return Vec::new();
        }
        let Some(entry) = self.entry() else {
            return Vec::new();
        };
        let ef = ef.max(k);
        if matches * 4 <= EXACT_QUARTERS_PER_WALK_DISTANCE * ef * self.max_degree(0) {
            return self.exact_filtered(q, k, allowed);
        }
        // Keeping ef allowed results means walking past about ef / sel
        // nodes; a beam of ef * sqrt(sel) (at least ef / 2) keeps recall at
        // the unfiltered level for less work (measured: 50% selectivity,
        // recall@10 0.991 at 0.76x the unfiltered QPS instead of 0.994 at
        // 0.46x).
        let sel = matches as f64 / (self.slots() - self.free.len()).max(1) as f64;
        // Where most nodes pass, bound the beam by ef over every node walked
        // (as an unfiltered search), once k matches are in hand.
        let all_ef = (sel >= WIDE_FROM).then_some(ef);
        let ef = ((ef as f64 * sel.sqrt()).ceil() as usize)
            .max(ef / 2)
            .max(k);
        let (done, mut out) = with_scratch(|s| {
            let mut links = std::mem::take(&mut s.links);
            let cur = self.descend(q, entry, 0, &mut links);
            s.links = links;
            if let Some(ef) = all_ef {
                // Half what a beam of ef holds of a filter spread evenly
                // (measured, ef 64: on `$not` noun, 41%, recall@10 0.927
                // with k, 0.976 with half, 0.985 with all of it, the last
                // at 0.8x the speed of half).
                let deep = ((ef as f64 * sel * 0.5).ceil() as usize).max(k);
                let out = self.walk_wide(q, cur, ef, deep, allowed, s);
                return (true, out);
            }
            let done = self.walk_filtered(q, cur, ef, allowed, matches, s);
            // Nearest first, as both walks leave them.
            let out: Vec<Cand> = s.best.drain().collect();
            (done, out)
        });
        if !done || out.len() < k.min(matches) {
            return self.exact_filtered(q, k, allowed);
        }
        out.truncate(k);
        out
    }

    /// Where most nodes pass: an unfiltered beam of `ef` over every node
    /// (failing ones route but are not kept), the `deep` nearest allowed
    /// ones kept aside. The walk ends where both are full and the frontier
    /// lies beyond both: where the filter is spread evenly the two radii
    /// agree and this costs what an unfiltered search does; where matches
    /// are locally sparse (anti-correlated filters) the allowed radius is
    /// the wider and the walk goes on to it (measured on `$not` noun, 41%:
    /// recall@10 0.927 with the beam alone). Nothing else: no neighbourhood
    /// census, no two-hop, no budget (the caller's threshold keeps this to
    /// selectivities where an exact scan never pays).
    fn walk_wide(
        &self,
        q: &[f32],
        start: Cand,
        ef: usize,
        deep: usize,
        allowed: &Bitset,
        s: &mut crate::hnsw::visited::Scratch,
    ) -> Vec<Cand> {
        s.visited.reset(self.slots());
        s.frontier.clear();
        s.best.clear();
        s.visited.insert(start.slot);
        s.frontier.push(Reverse(start));
        s.best.push(start);
        let mut kept = Best::new();
        if allowed.contains(start.slot) {
            kept.push(start);
        }
        let mut links = std::mem::take(&mut s.links);
        let bound = |beam: &Best, kept: &Best| beam.bound(ef).max(kept.bound(deep));
        let mut worst = bound(&s.best, &kept);
        while let Some(Reverse(c)) = s.frontier.pop() {
            if c.dist > worst {
                break;
            }
            if let Some(Reverse(next)) = s.frontier.peek() {
                self.prefetch_list(next.slot, 0);
            }
            self.collect_unvisited(c.slot, 0, &mut s.visited, &mut links, |n| self.prefetch(n));
            for &n in links.iter() {
                // SAFETY: n < slots, checked above.
                let d = self.dist.eval(q, unsafe { self.vector_unchecked(n) });
                if d < worst {
                    let cand = Cand { dist: d, slot: n };
                    s.frontier.push(Reverse(cand));
                    s.best.push_bounded(cand, ef);
                    if allowed.contains(n) {
                        kept.push_bounded(cand, deep);
                    }
                    worst = bound(&s.best, &kept);
                }
            }
        }
        s.links = links;
        kept.into_vec()
    }

    /// Beam search on layer 0 keeping only allowed slots in `s.best`.
    /// Returns false when it gave up after `budget` distance computations.
    #[allow(clippy::too_many_arguments)]
    fn walk_filtered(
        &self,
        q: &[f32],
        start: Cand,
        ef: usize,
        allowed: &Bitset,
        budget: usize,
        s: &mut crate::hnsw::visited::Scratch,
    ) -> bool {
        s.visited.reset(self.slots());
        s.frontier.clear();
        s.best.clear();
        s.visited.insert(start.slot);
        s.frontier.push(Reverse(start));
        if allowed.contains(start.slot) {
            s.best.push(start);
        }
        let slots = self.slots();
        let mut pass = std::mem::take(&mut s.links);
        let mut fail: Vec<u32> = Vec::new();
        let mut hop: Vec<u32> = Vec::new();
        let mut computed = 1usize;
        let max_degree = self.max_degree(0);
        let mut worst = s.best.bound(ef);
        while let Some(Reverse(c)) = s.frontier.pop() {
            if c.dist > worst {
                break;
            }
            pass.clear();
            fail.clear();
            // Judged over the whole list, visited or not: how selective the
            // filter is around this node.
            let (mut passing, mut listed) = (0usize, 0usize);
            self.unvisited_links(c.slot, slots, &mut s.visited, |n, seen| {
                let ok = allowed.contains(n);
                passing += usize::from(ok);
                listed += 1;
                if seen {
                    return;
                }
                if ok {
                    pass.push(n);
                } else {
                    fail.push(n);
                }
            });
            if passing * TWO_HOP_BELOW < listed {
                // Mostly failing neighbours: the allowed nodes two hops out
                // stand in for them, and only those cost a distance; no more
                // of them than a full neighbour list, so one expansion costs
                // what an unfiltered one does.
                for &f in &fail {
                    if pass.len() >= max_degree {
                        break;
                    }
                    hop.clear();
                    self.unvisited_links_if(
                        f,
                        slots,
                        &mut s.visited,
                        allowed,
                        max_degree - pass.len(),
                        &mut hop,
                    );
                    pass.extend_from_slice(&hop);
                }
                // Where even two hops find nothing allowed, walk on through
                // the failing nodes rather than let the beam die out here.
                if !pass.is_empty() {
                    fail.clear();
                }
            }
            for &n in pass.iter().chain(fail.iter()) {
                self.prefetch(n);
            }
            computed += pass.len() + fail.len();
            for (&n, keep) in pass
                .iter()
                .map(|n| (n, true))
                .chain(fail.iter().map(|n| (n, false)))
            {
                let d = self.distance_to(q, n);
                if d < worst {
                    let cand = Cand { dist: d, slot: n };
                    s.frontier.push(Reverse(cand));
                    if keep {
                        s.best.push_bounded(cand, ef);
                    }
                    worst = s.best.bound(ef);
                }
            }
            if computed > budget {
                s.links = pass;
                return false;
            }
        }
        s.links = pass;
        true
    }

    /// Calls `f(n, seen)` for each neighbour `n` of `slot` on layer 0,
    /// `seen` telling whether it was visited already; marks it visited.
    #[inline(always)]
    fn unvisited_links(
        &self,
        slot: u32,
        slots: usize,
        visited: &mut crate::hnsw::visited::Visited,
        mut f: impl FnMut(u32, bool),
    ) {
        if let Some((count, words)) = self.list(slot, 0).split_first() {
            let cnt = (count.load(Ordering::Acquire) as usize).min(words.len());
            for w in &words[..cnt] {
                let n = w.load(Ordering::Relaxed);
                if (n as usize) < slots {
                    let fresh = visited.insert(n);
                    f(n, !fresh);
                }
            }
        }
    }

    /// Appends to `out` the unvisited allowed neighbours of `slot` on layer
    /// 0, marking them visited (failing ones stay unvisited: another path
    /// may still lead through them).
    #[inline(always)]
    fn unvisited_links_if(
        &self,
        slot: u32,
        slots: usize,
        visited: &mut crate::hnsw::visited::Visited,
        allowed: &Bitset,
        limit: usize,
        out: &mut Vec<u32>,
    ) {
        if let Some((count, words)) = self.list(slot, 0).split_first() {
            let cnt = (count.load(Ordering::Acquire) as usize).min(words.len());
            for w in &words[..cnt] {
                let n = w.load(Ordering::Relaxed);
                if (n as usize) < slots && allowed.contains(n) && visited.insert(n) {
                    out.push(n);
                    if out.len() >= limit {
                        return;
                    }
                }
            }
        }
    }

    /// The k nearest allowed slots by brute force, nearest first.
    pub fn exact_filtered(&self, q: &[f32], k: usize, allowed: &Bitset) -> Vec<Cand> {
        let mut best: BinaryHeap<Cand> = BinaryHeap::with_capacity(k + 1);
        for slot in allowed.iter() {
            if slot as usize >= self.slots() || self.is_deleted(slot) {
                continue;
            }
            let c = Cand {
                dist: self.distance_to(q, slot),
                slot,
            };
            if best.len() < k {
                best.push(c);
            } else if best.peek().is_some_and(|w| c < *w) {
                best.pop();
                best.push(c);
            }
        }
        best.into_sorted_vec()
    }
}
