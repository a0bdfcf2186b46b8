//! Compaction: drops tombstones for good. Lists that name a tombstone are
//! repaired first (while the tombstones still route searches), then the live
//! slots are renumbered densely in place, keeping their order, and every
//! array shrinks to the live count.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::{Cand, Entry, Graph, Scratch, NO_SLOT};

impl Graph {
    /// Share of the slots that are tombstones (0 for an empty graph).
    pub fn tombstone_fraction(&self) -> f64 {
        if self.slots() == 0 {
            0.0
        } else {
            self.free.len() as f64 / self.slots() as f64
        }
    }

    /// Removes every tombstone, computing repairs on up to `threads`
    /// threads. Returns, per old slot, its new slot (`NO_SLOT` for a
    /// tombstone). Live slots keep their vectors, levels and relative order.
    pub fn compact(&mut self, threads: usize) -> Vec<u32> {
        let n = self.slots();
        if self.free.is_empty() {
            return (0..n as u32).collect();
        }
        if self.free.len() == n {
            self.clear();
            return vec![NO_SLOT; n];
        }
        let mut affected: Vec<(u32, u8)> = Vec::new();
        let mut links = Vec::new();
        for s in 0..n as u32 {
            if self.deleted[s as usize] {
                continue;
            }
            for level in 0..=self.levels[s as usize] {
                self.read_links(s, level, &mut links);
                if links.iter().any(|&l| self.deleted[l as usize]) {
                    affected.push((s, level));
                }
            }
        }
        let repaired: Vec<OnceLock<Vec<u32>>> = affected.iter().map(|_| OnceLock::new()).collect();
        {
            let this = &*self;
            crate::parallel::parallel_for(
                affected.len(),
                threads,
                || (Scratch::new(), Vec::new()),
                |(s, via), i| {
                    let (node, level) = affected[i];
                    let _ = repaired[i].set(this.repaired_list(node, level, s, via));
                },
            );
        }
        for (&(node, level), list) in affected.iter().zip(repaired) {
            let list = list.into_inner().unwrap_or_default();
            self.write_links(node, level, &list);
        }

        let mut map = vec![NO_SLOT; n];
        let mut live = 0u32;
        for (s, m) in map.iter_mut().enumerate() {
            if !self.deleted[s] {
                *m = live;
                live += 1;
            }
        }
        let live = live as usize;
        let dim = self.params.dim;
        let w0 = 1 + 2 * self.params.m;
        let mut row: Vec<u32> = Vec::with_capacity(w0);
        for old in 0..n {
            let new = map[old];
            if new == NO_SLOT {
                continue;
            }
            let new = new as usize;
            if new != old {
                self.vectors
                    .copy_within(old * dim..(old + 1) * dim, new * dim);
                self.levels[new] = self.levels[old];
                self.upper.swap(new, old);
            }
            row.clear();
            row.extend(
                self.layer0[old * w0..(old + 1) * w0]
                    .iter()
                    .map(|w| w.load(Ordering::Relaxed)),
            );
            let count = (row[0] as usize).min(w0 - 1);
            let mut kept = 0;
            for j in 1..=count {
                let to = map[row[j] as usize];
                if to != NO_SLOT {
                    row[1 + kept] = to;
                    kept += 1;
                }
            }
            row[0] = kept as u32;
            for (w, &v) in self.layer0[new * w0..(new + 1) * w0]
                .iter()
                .zip(&row[..1 + kept])
            {
                w.store(v, Ordering::Relaxed);
            }
            let wu = 1 + self.params.m;
            for list in self.upper[new].chunks_exact(wu) {
                let count = (list[0].load(Ordering::Relaxed) as usize).min(wu - 1);
                let mut kept = 0;
                for j in 1..=count {
                    let to = map[list[j].load(Ordering::Relaxed) as usize];
                    if to != NO_SLOT {
                        list[1 + kept].store(to, Ordering::Relaxed);
                        kept += 1;
                    }
                }
                list[0].store(kept as u32, Ordering::Relaxed);
            }
        }
        self.vectors.truncate(live * dim);
        self.vectors.shrink_to_fit();
        self.layer0.truncate(live * w0);
        self.layer0.shrink_to_fit();
        self.upper.truncate(live);
        self.upper.shrink_to_fit();
        self.levels.truncate(live);
        self.levels.shrink_to_fit();
        self.deleted = vec![false; live];
        self.free = Vec::new();
        self.locks = (0..live).map(|_| AtomicBool::new(false)).collect();
        self.indeg = Vec::new();
        self.indeg = self.count_in_degrees();
        self.orphans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        // Compaction is the quantizer's retrain point (quant.rs): the codes
        // were renumbered anyway, and the live vectors may have drifted from
        // the ones it was trained on.
        self.train_codes(true);
        let old_entry = self.entry();
        let entry = match old_entry {
            Some(e) if map[e.slot as usize] != NO_SLOT => Entry {
                slot: map[e.slot as usize],
                level: e.level,
            },
            _ => {
                // The entry point was a tombstone: the highest live node
                // takes over (nothing live is above it).
                let (slot, level) =
                    self.levels
                        .iter()
                        .enumerate()
                        .fold(
                            (0usize, 0u8),
                            |best, (s, &l)| {
                                if l > best.1 {
                                    (s, l)
                                } else {
                                    best
                                }
                            },
                        );
                Entry {
                    slot: slot as u32,
                    level,
                }
            }
        };
        self.set_entry(Some(entry));
        let all: Vec<u32> = (0..live as u32).collect();
        self.ensure_reachable(&all);
        map
    }

    /// A new list for live `node` at `level` without tombstones: its live
    /// links, the live links of its tombstoned links and, when those are
    /// too few, the nearest live nodes a beam search finds; pruned with the
    /// heuristic and topped up to the full degree.
    fn repaired_list(&self, node: u32, level: u8, s: &mut Scratch, via: &mut Vec<u32>) -> Vec<u32> {
        let base = self.vector(node);
        let max = self.max_degree(level);
        let mut list = Vec::new();
        self.read_links(node, level, &mut list);
        let mut cands: Vec<Cand> = Vec::new();
        let push = |cands: &mut Vec<Cand>, v: u32| {
            if v != node && !self.deleted[v as usize] {
                cands.push(Cand {
                    dist: self.dist.eval(base, self.vector(v)),
                    slot: v,
                });
            }
        };
        for &l in &list {
            if self.deleted[l as usize] {
                self.read_links(l, level, via);
                for &v in via.iter() {
                    push(&mut cands, v);
                }
            } else {
                push(&mut cands, l);
            }
        }
        cands.sort_unstable();
        cands.dedup_by_key(|c| c.slot);
        if cands.len() < 2 * max {
            cands.extend(self.nearest_live(base, level, node, s));
            cands.sort_unstable();
            cands.dedup_by_key(|c| c.slot);
        }
        let mut chosen = Vec::with_capacity(max);
        self.select_filled(&cands, max, &mut chosen);
        chosen
    }
}
