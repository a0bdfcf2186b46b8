//! Reused "visited" marks and search heaps: one scratch set per searching
//! thread, taken from a pool and returned, so a search allocates nothing once
//! the pool is warm.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Mutex;

/// Epoch-stamped visited marks: clearing is one increment, not a memset,
/// except when the 16-bit epoch wraps (once every 65,535 searches).
pub struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn new() -> Visited {
        Visited {
            marks: Vec::new(),
            epoch: 0,
        }
    }

    /// Starts a new search over `n` slots.
    pub fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Marks `i`; returns true if it was not marked in this search yet.
    #[inline(always)]
    pub fn insert(&mut self, i: u32) -> bool {
        let m = &mut self.marks[i as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }

    #[inline(always)]
    pub fn contains(&self, i: u32) -> bool {
        self.marks[i as usize] == self.epoch
    }
}

/// A (distance, slot) pair ordered by distance, then slot, with a total order
/// on f32 (distances are never NaN: inputs are checked to be finite).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cand {
    pub dist: f32,
    pub slot: u32,
}

impl Eq for Cand {}

impl Ord for Cand {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.slot.cmp(&other.slot))
    }
}

impl PartialOrd for Cand {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A min-heap entry (BinaryHeap is a max-heap).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nearest(pub std::cmp::Reverse<Cand>);

/// Everything one search needs besides the graph.
pub struct Scratch {
    pub visited: Visited,
    /// Frontier, nearest first.
    pub frontier: BinaryHeap<std::cmp::Reverse<Cand>>,
    /// Best results so far, farthest on top.
    pub best: BinaryHeap<Cand>,
    /// Neighbour ids copied out of a list before they are visited.
    pub links: Vec<u32>,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            visited: Visited::new(),
            frontier: BinaryHeap::new(),
            best: BinaryHeap::new(),
            links: Vec::new(),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// A pool of scratch sets shared by the threads that search one graph.
#[derive(Default)]
pub struct ScratchPool {
    free: Mutex<Vec<Scratch>>,
}

impl ScratchPool {
    pub fn take(&self) -> Scratch {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    pub fn give(&self, s: Scratch) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        // Keep no more than a handful: one per thread that searches at once.
        if free.len() < 64 {
            free.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_resets_by_epoch_and_survives_wrap() {
        let mut v = Visited::new();
        v.reset(10);
        assert!(v.insert(3));
        assert!(!v.insert(3));
        assert!(v.contains(3));
        for _ in 0..70_000 {
            v.reset(10);
            assert!(!v.contains(3));
            assert!(v.insert(3));
        }
        v.reset(20);
        assert!(v.insert(19));
    }
}
