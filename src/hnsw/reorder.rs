//! Node reordering for locality: renumbers the slots in breadth-first order
//! of the layer-0 graph from the entry point, so that a node's neighbours
//! sit near it in the vector and list arrays. A search then reads rows that
//! share pages and stream better; insertion order (random for most data)
//! scatters them. The graph itself is unchanged: the same links between the
//! same vectors, only renamed, so searches find the same items.
//!
//! Done at the end of a bulk build and after a compaction (`Index` decides);
//! never on decode, so that decoding and encoding again gives the same bytes.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::{Entry, Graph, NO_SLOT};

/// Moves row `old` of `data` (rows of `width`) to row `new_of_old[old]`,
/// in place, following each cycle of the permutation with one spare row.
fn permute_rows<T: Copy + Default>(data: &mut [T], width: usize, new_of_old: &[u32]) {
    let n = new_of_old.len();
    debug_assert_eq!(data.len(), n * width);
    let mut done = vec![false; n];
    let mut carried = vec![T::default(); width];
    let mut swap = vec![T::default(); width];
    for start in 0..n {
        if done[start] || new_of_old[start] as usize == start {
            done[start] = true;
            continue;
        }
        // Carry the start row to its place, pick up what was there, and so
        // on until the cycle comes back to the start.
        carried.copy_from_slice(&data[start * width..(start + 1) * width]);
        let mut at = start;
        loop {
            done[at] = true;
            let to = new_of_old[at] as usize;
            let dst = &mut data[to * width..(to + 1) * width];
            swap.copy_from_slice(dst);
            dst.copy_from_slice(&carried);
            std::mem::swap(&mut carried, &mut swap);
            at = to;
            if at == start {
                break;
            }
        }
    }
}

impl Graph {
    /// The breadth-first order of layer 0 from the entry point (each list in
    /// its stored order, nearest first); slots no walk reaches come last, in
    /// slot order. Returns the new slot of each old one.
    fn bfs_order(&self) -> Vec<u32> {
        let n = self.slots();
        let mut new_of_old = vec![NO_SLOT; n];
        let mut queue: Vec<u32> = Vec::with_capacity(n);
        let mut links = Vec::new();
        if let Some(e) = self.entry() {
            new_of_old[e.slot as usize] = 0;
            queue.push(e.slot);
        }
        let mut head = 0;
        while head < queue.len() {
            let s = queue[head];
            head += 1;
            self.read_links(s, 0, &mut links);
            for &l in &links {
                if new_of_old[l as usize] == NO_SLOT {
                    new_of_old[l as usize] = queue.len() as u32;
                    queue.push(l);
                }
            }
        }
        for (s, new) in new_of_old.iter_mut().enumerate() {
            if *new == NO_SLOT {
                *new = queue.len() as u32;
                queue.push(s as u32);
            }
        }
        new_of_old
    }

    /// Renumbers every slot in breadth-first order (see the module docs).
    /// Returns the new slot of each old one, or None when nothing moved: an
    /// empty graph, or one with tombstones (their slots wait in the free
    /// list for reuse, so it is left as it is).
    pub fn reorder(&mut self) -> Option<Vec<u32>> {
        let n = self.slots();
        if n == 0 || !self.free.is_empty() {
            return None;
        }
        let map = self.bfs_order();
        let dim = self.params.dim;
        permute_rows(&mut self.vectors, dim, &map);

        let w0 = 1 + 2 * self.params.m;
        // SAFETY: AtomicU32 has the size, alignment and bit validity of u32,
        // and `&mut` excludes every other access for the duration.
        let words: &mut [u32] = unsafe {
            std::slice::from_raw_parts_mut(
                self.layer0.as_mut_ptr().cast::<u32>(),
                self.layer0.len(),
            )
        };
        permute_rows(words, w0, &map);
        for list in words.chunks_exact_mut(w0) {
            let count = (list[0] as usize).min(w0 - 1);
            for l in &mut list[1..=count] {
                *l = map[*l as usize];
            }
        }

        let mut upper: Vec<Box<[AtomicU32]>> = (0..n).map(|_| Box::default()).collect();
        for (old, lists) in self.upper.drain(..).enumerate() {
            upper[map[old] as usize] = lists;
        }
        let wu = 1 + self.params.m;
        for lists in &upper {
            for list in lists.chunks_exact(wu) {
                let count = (list[0].load(Ordering::Relaxed) as usize).min(wu - 1);
                for l in &list[1..=count] {
                    l.store(map[l.load(Ordering::Relaxed) as usize], Ordering::Relaxed);
                }
            }
        }
        self.upper = upper;
        permute_rows(&mut self.levels, 1, &map);
        let mut indeg: Vec<u32> = self
            .indeg
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        permute_rows(&mut indeg, 1, &map);
        self.indeg = indeg.into_iter().map(AtomicU32::new).collect();
        self.locks = (0..n).map(|_| AtomicBool::new(false)).collect();
        self.orphans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter_mut()
            .for_each(|s| *s = map[*s as usize]);
        if let Some(c) = self.codes.as_mut() {
            // Moved with their rows, in place: building them again would
            // hold two copies at the peak.
            permute_rows(&mut c.codes, dim, &map);
            if !c.norms.is_empty() {
                permute_rows(&mut c.norms, 1, &map);
            }
        }
        if let Some(e) = self.entry() {
            self.set_entry(Some(Entry {
                slot: map[e.slot as usize],
                level: e.level,
            }));
        }
        Some(map)
    }
}

#[cfg(test)]
mod tests {
    use super::permute_rows;
    use crate::hnsw::{Graph, GraphParams, Metric, Quantization};

    /// Same links between the same vectors: every search returns the same
    /// distances before and after, the hits' vectors are the ones the old
    /// slots held, and the structure (counts, in-degrees, entry) checks out.
    #[test]
    fn reordering_renames_slots_and_keeps_every_search() {
        for quantization in [Quantization::None, Quantization::Int8] {
            let dim = 12;
            let params = GraphParams {
                dim,
                metric: Metric::L2,
                m: 6,
                ef_construction: 40,
            };
            let mut g = Graph::new(params, 7);
            g.set_quantization(quantization);
            let mut state = 99u64;
            let mut rnd = || {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 24) as f32
            };
            let data: Vec<f32> = (0..3000 * dim).map(|_| rnd()).collect();
            g.insert_batch(&data, 1);
            let queries: Vec<Vec<f32>> =
                (0..50).map(|_| (0..dim).map(|_| rnd()).collect()).collect();
            let before: Vec<_> = queries.iter().map(|q| g.search(q, 10, 32)).collect();
            let old_vectors = g.vectors.clone();
            let (entry_before, _) = g.entry_point();
            let map = g.reorder().expect("a graph without tombstones reorders");
            assert_ne!(
                map,
                (0..3000u32).collect::<Vec<_>>(),
                "BFS order is not insertion order"
            );
            g.check_invariants().unwrap();
            assert_eq!(g.entry_point().0, map[entry_before as usize]);
            assert_eq!(g.entry_point().0, 0, "the entry point comes first");
            for (old, &new) in map.iter().enumerate() {
                assert_eq!(g.vector(new), &old_vectors[old * dim..(old + 1) * dim]);
            }
            for (q, was) in queries.iter().zip(&before) {
                let now = g.search(q, 10, 32);
                let d =
                    |v: &[crate::hnsw::visited::Cand]| v.iter().map(|c| c.dist).collect::<Vec<_>>();
                assert_eq!(d(&now), d(was), "{quantization:?}");
                for (n, w) in now.iter().zip(was) {
                    if n.dist != w.dist {
                        continue;
                    }
                    assert_eq!(g.vector(n.slot), g.vector(map[w.slot as usize]));
                }
            }
        }
    }

    #[test]
    fn permute_rows_moves_every_row_once() {
        // A permutation with a fixed point, a 2-cycle and a 4-cycle.
        let map = [0u32, 2, 1, 4, 5, 6, 3];
        let mut data: Vec<u32> = (0..7).flat_map(|r| [r * 10, r * 10 + 1]).collect();
        permute_rows(&mut data, 2, &map);
        for (old, &new) in map.iter().enumerate() {
            let new = new as usize;
            assert_eq!(
                &data[new * 2..new * 2 + 2],
                &[old as u32 * 10, old as u32 * 10 + 1]
            );
        }
    }
}
