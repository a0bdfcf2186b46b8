//! Row storage aligned to cache lines: every slot's f32 vector, and the
//! int8 codes.
//!
//! A `Vec<f32>` from the system allocator starts 16 bytes past a 64-byte
//! boundary (glibc puts its chunk header there), so every 512-byte row of a
//! 128-d index straddled 9 cache lines instead of 8, and a 384-d row 25
//! instead of 24: each distance read one line more than the data. Here the
//! storage is a vector of 64-byte blocks, so a row starts on a line whenever
//! its size is a multiple of 64 bytes (f32 rows of 128, 384, 768, 1536
//! components; code rows of 128 or 384 bytes).
//!
//! It reads and writes as a `[T]` (Deref), and grows like a `Vec`.

use std::collections::TryReserveError;

/// One cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; LINE]);

const LINE: usize = 64;

/// Element types an arena holds: plain numbers for which every bit pattern,
/// all zeros included, is a value.
///
/// # Safety
/// Implementors have no padding, accept every bit pattern and need an
/// alignment of at most 64.
pub unsafe trait Plain: Copy + PartialEq + 'static {
    const ZERO: Self;
}
// SAFETY: plain numbers.
unsafe impl Plain for f32 {
    const ZERO: f32 = 0.0;
}
// SAFETY: plain numbers.
unsafe impl Plain for u8 {
    const ZERO: u8 = 0;
}

pub struct Arena<T: Plain> {
    /// Enough lines for `len` elements; bytes past them are zero.
    lines: Vec<Line>,
    /// Elements in use.
    len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T: Plain> Clone for Arena<T> {
    fn clone(&self) -> Self {
        Arena {
            lines: self.lines.clone(),
            len: self.len,
            _t: std::marker::PhantomData,
        }
    }
}

impl<T: Plain> Default for Arena<T> {
    fn default() -> Self {
        Arena::new()
    }
}

impl<T: Plain> Arena<T> {
    const PER_LINE: usize = LINE / std::mem::size_of::<T>();

    pub fn new() -> Arena<T> {
        Arena {
            lines: Vec::new(),
            len: 0,
            _t: std::marker::PhantomData,
        }
    }

    /// The elements of `v`, copied into aligned storage.
    pub fn from_slice(v: &[T]) -> Arena<T> {
        let mut a = Arena::new();
        a.reserve(v.len());
        a.resize(v.len(), T::ZERO);
        a.copy_from_slice(v);
        a
    }

    /// An arena of `len` components written by `fill` (which sees them all,
    /// zeroed first), with the room advised for huge pages before the first
    /// write. Fails only for lack of memory.
    pub fn try_filled(
        len: usize,
        fill: impl FnOnce(&mut [T]),
    ) -> Result<Arena<T>, TryReserveError> {
        let mut a = Arena::new();
        a.try_reserve_exact(len)?;
        super::hugepages::advise_huge_pages(a.lines.as_ptr().cast(), a.capacity_bytes());
        a.resize(len, T::ZERO);
        fill(&mut a);
        Ok(a)
    }

    fn lines_for(len: usize) -> usize {
        len.div_ceil(Self::PER_LINE)
    }

    /// Elements the arena can hold without reallocating.
    pub fn capacity(&self) -> usize {
        self.lines.capacity() * Self::PER_LINE
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

    /// Grows (new elements `value`) or shrinks to `len` elements.
    pub fn resize(&mut self, len: usize, value: T) {
        if len <= self.len {
            self.truncate(len);
            return;
        }
        let old = self.len;
        self.lines.resize(Self::lines_for(len), Line([0; LINE]));
        self.len = len;
        if value != T::ZERO {
            self[old..len].fill(value);
        }
    }

    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.lines.truncate(Self::lines_for(len));
        self.len = len;
        // Keep the promise that elements past `len` are zero.
        let tail = self.lines.len() * Self::PER_LINE;
        // SAFETY: the lines hold `tail` initialised elements (T: Plain).
        let all =
            unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), tail) };
        all[len..].fill(T::ZERO);
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.len = 0;
    }

    pub fn shrink_to_fit(&mut self) {
        self.lines.shrink_to_fit();
    }
}

impl<T: Plain> std::ops::Deref for Arena<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `lines` holds at least `len` initialised elements,
        // contiguous (Line is 64 plain bytes, 64-aligned), and every bit
        // pattern is a T (T: Plain).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> std::ops::DerefMut for Arena<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> std::fmt::Debug for Arena<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_start_on_cache_lines_and_grow_like_a_vec() {
        let mut bytes: Arena<u8> = Arena::new();
        bytes.resize(200, 7);
        assert_eq!(
            (
                bytes.len(),
                bytes.capacity() % 64,
                bytes.as_ptr() as usize % 64
            ),
            (200, 0, 0)
        );
        assert!(bytes.iter().all(|&b| b == 7));
        let mut a: Arena<f32> = Arena::new();
        assert_eq!(a.as_ptr() as usize % 64, 0);
        for i in 0..100 {
            let len = a.len();
            a.resize(len + 128, i as f32);
            assert_eq!(a.as_ptr() as usize % 64, 0);
        }
        assert_eq!(a.len(), 12_800);
        assert!(a
            .chunks_exact(128)
            .enumerate()
            .all(|(i, r)| r.iter().all(|&x| x == i as f32)));
        a.truncate(12_800 - 64 - 3);
        a.resize(12_800, 0.0);
        assert!(
            a[12_800 - 67..].iter().all(|&x| x == 0.0),
            "shrunk components come back zeroed"
        );
        assert_eq!(a[12_800 - 68], 99.0);
        let b = Arena::from_slice(&a);
        assert_eq!(&b[..], &a[..]);
        assert_eq!(b.as_ptr() as usize % 64, 0);
        let c: Arena<f32> = Arena::try_filled(1000, |v| {
            v.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32)
        })
        .unwrap();
        assert_eq!((c.len(), c[999]), (1000, 999.0));
    }
}
