//! Reused "visited" marks and search heaps: one scratch set per thread,
//! kept in a thread-local, so a search allocates nothing once its thread has
//! searched before and takes no lock to get its scratch.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

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

impl Cand {
    /// The order as one integer: `f32::total_cmp`'s order of the distance in
    /// the high half, the slot in the low half. The heaps compare on every
    /// step of a search; one u64 compare has no branch where a float compare
    /// followed by a tie-break has two.
    #[inline(always)]
    fn key(&self) -> u64 {
        let bits = self.dist.to_bits() as i32;
        // As total_cmp: negative floats get their magnitude bits flipped,
        // then the sign flip maps i32 order onto u32 order.
        let ordered = (bits ^ (((bits >> 31) as u32) >> 1) as i32) as u32 ^ 0x8000_0000;
        (ordered as u64) << 32 | self.slot as u64
    }
}

impl Ord for Cand {
    #[inline(always)]
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Cand {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The best results of a beam, kept sorted nearest first in one array:
/// what a search reads of them is the farthest (the beam's bound, after
/// every kept neighbour) and, at the end, all of them in order. A binary
/// heap gives the farthest as cheaply but pays a sift on every push and
/// pop and a sort at the end; here a push is a binary search and a short
/// move (a beam holds ef, tens to hundreds), a pop of the farthest is free
/// and the end needs no sort.
#[derive(Default)]
pub struct Best {
    sorted: Vec<Cand>,
}

impl Best {
    pub fn new() -> Best {
        Best::default()
    }

    pub fn clear(&mut self) {
        self.sorted.clear();
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    #[inline]
    pub fn push(&mut self, c: Cand) {
        let at = self.sorted.partition_point(|x| x < &c);
        self.sorted.insert(at, c);
    }

    /// The farthest.
    #[inline]
    pub fn peek(&self) -> Option<&Cand> {
        self.sorted.last()
    }

    /// Takes out the farthest.
    #[inline]
    pub fn pop(&mut self) -> Option<Cand> {
        self.sorted.pop()
    }

    /// Adds `c`, then takes out and returns the farthest if more than `cap`
    /// are held (a beam of width `cap`).
    #[inline]
    pub fn push_bounded(&mut self, c: Cand, cap: usize) -> Option<Cand> {
        self.push(c);
        if self.sorted.len() > cap {
            self.sorted.pop()
        } else {
            None
        }
    }

    /// A beam of width `cap`'s bound: the farthest distance held once it is
    /// full (nothing farther can be kept or lead anywhere), +inf before.
    #[inline]
    pub fn bound(&self, cap: usize) -> f32 {
        match self.sorted.last() {
            Some(w) if self.sorted.len() >= cap => w.dist,
            _ => f32::INFINITY,
        }
    }

    /// All of them, nearest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Cand> {
        self.sorted.drain(..)
    }

    /// All of them, nearest first.
    pub fn into_vec(self) -> Vec<Cand> {
        self.sorted
    }
}

/// Everything one search needs besides the graph.
pub struct Scratch {
    pub visited: Visited,
    /// Frontier, nearest first.
    pub frontier: BinaryHeap<std::cmp::Reverse<Cand>>,
    /// Best results so far, nearest first.
    pub best: Best,
    /// Neighbour ids copied out of a list before they are visited.
    pub links: Vec<u32>,
    /// The int8 walk's runners-up: the best of what `best` evicted, so the
    /// exact re-rank sees at least 2k candidates (quant_search.rs).
    pub spill: Best,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            visited: Visited::new(),
            frontier: BinaryHeap::new(),
            best: Best::new(),
            links: Vec::new(),
            spill: Best::new(),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// Runs `f` with this thread's scratch set. The visited marks are stamped
/// with an epoch, so one set serves every graph the thread searches. Nested
/// use (never done today) and use while the thread-local is being torn down
/// get a fresh set instead of a panic.
pub fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut f = Some(f);
    let done = SCRATCH.try_with(|cell| {
        cell.try_borrow_mut()
            .ok()
            .map(|mut s| (f.take().expect("f is used once"))(&mut s))
    });
    match done {
        Ok(Some(r)) => r,
        _ => (f.take().expect("f was not used"))(&mut Scratch::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_order_as_total_cmp_then_slot() {
        let ds = [
            f32::NEG_INFINITY,
            -1e30,
            -2.0,
            -1.0,
            -f32::MIN_POSITIVE,
            -1e-45,
            -0.0,
            0.0,
            1e-45,
            f32::MIN_POSITIVE,
            0.5,
            1.0,
            1.0000001,
            3e38,
            f32::INFINITY,
        ];
        let cands: Vec<Cand> = ds
            .iter()
            .flat_map(|&dist| [0, 1, u32::MAX].map(|slot| Cand { dist, slot }))
            .collect();
        for a in &cands {
            for b in &cands {
                let want = a.dist.total_cmp(&b.dist).then(a.slot.cmp(&b.slot));
                assert_eq!(a.cmp(b), want, "{a:?} vs {b:?}");
            }
        }
    }

    /// Best keeps what a max-heap bounded the same way keeps, and drains
    /// it nearest first.
    #[test]
    fn best_matches_a_bounded_binary_heap() {
        let mut state = 7u64;
        let mut best = Best::new();
        let mut heap = BinaryHeap::new();
        for round in 0..50 {
            best.clear();
            heap.clear();
            let cap = 1 + round % 17;
            for i in 0..200u32 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                // Few distinct distances, so ties are broken by slot.
                let c = Cand {
                    dist: (state >> 60) as f32,
                    slot: i,
                };
                best.push(c);
                heap.push(c);
                if best.len() > cap {
                    assert_eq!(best.pop(), heap.pop());
                }
                assert_eq!(best.peek(), heap.peek());
            }
            let want = std::mem::take(&mut heap).into_sorted_vec();
            assert_eq!(best.drain().collect::<Vec<_>>(), want);
        }
    }

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

    #[test]
    fn scratch_is_per_thread_and_nesting_gets_a_fresh_set() {
        with_scratch(|s| s.links.push(7));
        with_scratch(|s| {
            assert_eq!(s.links, [7], "the thread keeps its set");
            with_scratch(|inner| assert!(inner.links.is_empty()));
        });
        std::thread::spawn(|| with_scratch(|s| assert!(s.links.is_empty())))
            .join()
            .unwrap();
    }
}
