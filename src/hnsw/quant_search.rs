//! The int8 search walk: the upper layers are descended greedily in f32
//! (a few dozen distances), the layer-0 beam runs on the slots' 8-bit codes
//! (quant.rs), and the beam's `ef` results are re-ranked with the exact f32
//! distance, so the returned distances are exact (0 for a stored vector
//! under l2) and only which candidates reach the re-rank is approximate.

use std::cmp::Reverse;

use super::{with_scratch, Cand, Entry, Graph};
use crate::hnsw::quant::{ip_kernel, Codes, IpKernel, QueryCode};

impl Graph {
    /// k nearest live slots to `q` (normalised for cosine), nearest first,
    /// with exact distances; `ef >= k`, the graph is not empty.
    pub(super) fn search_int8(
        &self,
        codes: &Codes,
        q: &[f32],
        k: usize,
        ef: usize,
        entry: Entry,
    ) -> Vec<Cand> {
        let qc = QueryCode::new(q, &codes.quantizer, self.params.metric);
        let kernel = ip_kernel();
        with_scratch(|s| {
            let mut links = std::mem::take(&mut s.links);
            let cur = self.descend(q, entry, 0, &mut links);
            let ef = ef.max(k);
            let start = Cand {
                dist: self.estimate(codes, &qc, kernel, cur.slot),
                slot: cur.slot,
            };
            let skip_deleted = !self.free.is_empty();
            s.visited.reset(self.slots());
            s.frontier.clear();
            s.best.clear();
            s.spill.clear();
            // At a small ef the ef best estimates can miss a true neighbour
            // that the next few estimates hold: re-rank at least 2k.
            let spill_max = (2 * k).saturating_sub(ef);
            s.visited.insert(start.slot);
            s.frontier.push(Reverse(start));
            let keep = |slot: u32| !(skip_deleted && self.deleted[slot as usize]);
            if keep(start.slot) {
                s.best.push(start);
            }
            let mut worst = s.best.bound(ef);
            while let Some(Reverse(c)) = s.frontier.pop() {
                if c.dist > worst {
                    break;
                }
                if let Some(Reverse(next)) = s.frontier.peek() {
                    self.prefetch_list(next.slot, 0);
                }
                self.collect_unvisited(c.slot, 0, &mut s.visited, &mut links, |n| {
                    self.prefetch_codes(codes, n)
                });
                for &n in links.iter() {
                    let d = self.estimate(codes, &qc, kernel, n);
                    if d < worst {
                        let cand = Cand { dist: d, slot: n };
                        s.frontier.push(Reverse(cand));
                        if keep(n) {
                            let out = s.best.push_bounded(cand, ef);
                            if spill_max > 0 {
                                if let Some(out) = out {
                                    s.spill.push_bounded(out, spill_max);
                                }
                            }
                            worst = s.best.bound(ef);
                        }
                    }
                }
            }
            s.links = links;
            let mut out: Vec<Cand> = s.best.drain().chain(s.spill.drain()).collect();
            // The re-rank reads ef or more f32 rows scattered over the
            // arena: ask for them all before the first distance.
            for c in &out {
                self.prefetch(c.slot);
            }
            for c in &mut out {
                c.dist = self.distance_to(q, c.slot);
            }
            out.sort_unstable();
            out.truncate(k);
            out
        })
    }

    /// The estimated distance to a slot from its codes. Slots beyond the
    /// codes (none: every stored row is encoded) would read as far away.
    #[inline(always)]
    fn estimate(&self, codes: &Codes, qc: &QueryCode, kernel: IpKernel, slot: u32) -> f32 {
        let d = self.params.dim;
        let at = slot as usize * d;
        let Some(row) = codes.codes.get(at..at + d) else {
            return f32::INFINITY;
        };
        // SAFETY: the kernel was chosen for this CPU and reads
        // min(row.len(), codes.len()) bytes of each.
        let ip = unsafe { kernel(row, &qc.codes) };
        qc.distance(ip, codes.norms.get(slot as usize).copied().unwrap_or(0.0))
    }

    #[inline(always)]
    fn prefetch_codes(&self, codes: &Codes, slot: u32) {
        let d = self.params.dim;
        super::prefetch_row(&codes.codes, slot as usize * d, d);
        // Under l2 the estimate also reads the row's squared norm, from
        // another array: one more line per neighbour to ask for early.
        super::prefetch_row(&codes.norms, slot as usize, 1);
    }
}
