//! The f32 matrix of every slot's vector, 64-byte aligned.
//!
//! A `Vec<f32>` from the system allocator starts 16 bytes past a 64-byte
//! boundary (glibc puts its chunk header there), so every 512-byte row of a
//! 128-d index straddled 9 cache lines instead of 8, and a 384-d row 25
//! instead of 24: each distance read one line more than the data. Here the
//! storage is a vector of 64-byte blocks, so a row starts on a line whenever
//! `dim` is a multiple of 16 (128, 384, 768, 1536 ...).
//!
//! It reads and writes as a `[f32]` (Deref), and grows like a `Vec`.

use std::collections::TryReserveError;

/// One cache line of components.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line([f32; LANES]);

const LANES: usize = 16;

#[derive(Clone, Default)]
pub struct Arena {
    /// `len.div_ceil(LANES)` lines; components past `len` are zero.
    lines: Vec<Line>,
    /// Components in use.
    len: usize,
}

impl Arena {
    pub fn new() -> Arena {
        Arena::default()
    }

    /// The components of `v`, copied into aligned storage.
    pub fn from_slice(v: &[f32]) -> Arena {
        let mut a = Arena::new();
        a.reserve(v.len());
        a.resize(v.len(), 0.0);
        a.copy_from_slice(v);
        a
    }

    /// An arena of `len` components written by `fill` (which sees them all,
    /// zeroed first), with the room advised for huge pages before the first
    /// write. Fails only for lack of memory.
    pub fn try_filled(len: usize, fill: impl FnOnce(&mut [f32])) -> Result<Arena, TryReserveError> {
        let mut a = Arena::new();
        a.try_reserve_exact(len)?;
        super::hugepages::advise_huge_pages(a.lines.as_ptr().cast(), a.capacity_bytes());
        a.resize(len, 0.0);
        fill(&mut a);
        Ok(a)
    }

    fn lines_for(len: usize) -> usize {
        len.div_ceil(LANES)
    }

    /// Components the arena can hold without reallocating.
    pub fn capacity(&self) -> usize {
        self.lines.capacity() * LANES
    }

    fn capacity_bytes(&self) -> usize {
        self.lines.capacity() * std::mem::size_of::<Line>()
    }

    pub fn reserve(&mut self, additional: usize) {
        let want = Self::lines_for(self.len + additional);
        self.lines.reserve(want.saturating_sub(self.lines.len()));
    }

    pub fn try_reserve_exact(&mut self, additional: usize) -> Result<(), TryReserveError> {
        let want = Self::lines_for(self.len.saturating_add(additional));
        self.lines
            .try_reserve_exact(want.saturating_sub(self.lines.len()))
    }

    /// Asks for huge pages over the whole room (see hugepages.rs); call after
    /// reserving and before writing new rows.
    pub fn advise_huge_pages(&self) {
        super::hugepages::advise_huge_pages(self.lines.as_ptr().cast(), self.capacity_bytes());
    }

    /// Grows (new components `value`) or shrinks to `len` components.
    pub fn resize(&mut self, len: usize, value: f32) {
        if len <= self.len {
            self.truncate(len);
            return;
        }
        let old = self.len;
        self.lines.resize(Self::lines_for(len), Line::default());
        self.len = len;
        if value != 0.0 {
            self[old..len].fill(value);
        }
    }

    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.lines.truncate(Self::lines_for(len));
        self.len = len;
        // Keep the promise that components past `len` are zero.
        let tail = self.lines.len() * LANES;
        // SAFETY: the lines hold `tail` initialised components.
        let all = unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), tail) };
        all[len..].fill(0.0);
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.len = 0;
    }

    pub fn shrink_to_fit(&mut self) {
        self.lines.shrink_to_fit();
    }
}

impl std::ops::Deref for Arena {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `lines` holds at least `len` initialised f32s, contiguous
        // (Line is repr(C) around [f32; 16] with no padding).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len) }
    }
}

impl std::ops::DerefMut for Arena {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_start_on_cache_lines_and_grow_like_a_vec() {
        let mut a = Arena::new();
        assert_eq!(a.as_ptr() as usize % 64, 0);
        for i in 0..100 {
            let len = a.len();
            a.resize(len + 128, i as f32);
            assert_eq!(a.as_ptr() as usize % 64, 0);
        }
        assert_eq!(a.len(), 12_800);
        assert!(a.chunks_exact(128).enumerate().all(|(i, r)| r.iter().all(|&x| x == i as f32)));
        a.truncate(12_800 - 64 - 3);
        a.resize(12_800, 0.0);
        assert!(a[12_800 - 67..].iter().all(|&x| x == 0.0), "shrunk components come back zeroed");
        assert_eq!(a[12_800 - 68], 99.0);
        let b = Arena::from_slice(&a);
        assert_eq!(&b[..], &a[..]);
        assert_eq!(b.as_ptr() as usize % 64, 0);
        let c = Arena::try_filled(1000, |v| v.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32)).unwrap();
        assert_eq!((c.len(), c[999]), (1000, 999.0));
    }
}
