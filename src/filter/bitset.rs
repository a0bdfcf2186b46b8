//! A fixed-size set of slots, one bit each: what a filter evaluates to.

/// Bits over slots `0..len`; bits at or past `len` are always clear.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    pub fn new(len: usize) -> Bitset {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Grows to `len` bits (new bits clear); never shrinks.
    pub fn grow(&mut self, len: usize) {
        if len > self.len {
            self.words.resize(len.div_ceil(64), 0);
            self.len = len;
        }
    }

    #[inline(always)]
    pub fn contains(&self, i: u32) -> bool {
        let i = i as usize;
        match self.words.get(i / 64) {
            Some(w) => w >> (i % 64) & 1 == 1,
            None => false,
        }
    }

    /// Sets bit `i` (ignored past the end).
    #[inline]
    pub fn insert(&mut self, i: u32) {
        let i = i as usize;
        if i < self.len {
            self.words[i / 64] |= 1 << (i % 64);
        }
    }

    #[inline]
    pub fn remove(&mut self, i: u32) {
        let i = i as usize;
        if i < self.len {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    /// How many bits are set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// `self &= other` (bits past `other`'s end are cleared).
    pub fn and_with(&mut self, other: &Bitset) {
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= other.words.get(i).copied().unwrap_or(0);
        }
    }

    /// `self |= other` (bits past `self`'s end are dropped).
    pub fn or_with(&mut self, other: &Bitset) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
        self.clear_tail();
    }

    /// `self = within & !self`: the complement relative to `within`, sized
    /// like `within`.
    pub fn complement_within(&mut self, within: &Bitset) {
        self.words.resize(within.words.len(), 0);
        self.len = within.len;
        for (w, o) in self.words.iter_mut().zip(&within.words) {
            *w = o & !*w;
        }
    }

    fn clear_tail(&mut self) {
        if !self.len.is_multiple_of(64) {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << (self.len % 64)) - 1;
            }
        }
    }

    /// The set bits, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some((i * 64) as u32 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_respect_the_length() {
        let mut a = Bitset::new(70);
        for i in [0, 5, 64, 69, 70, 1000] {
            a.insert(i);
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![0, 5, 64, 69]);
        assert_eq!(a.count(), 4);
        let mut live = Bitset::new(70);
        for i in 0..70 {
            if i % 2 == 1 {
                live.insert(i);
            }
        }
        let mut c = a.clone();
        c.complement_within(&live);
        assert_eq!(c.count(), 33);
        assert!(!c.contains(5) && c.contains(3) && !c.contains(70));
        let mut d = a.clone();
        d.and_with(&live);
        assert_eq!(d.iter().collect::<Vec<_>>(), vec![5, 69]);
        d.or_with(&c);
        assert_eq!(d.count(), 35);
        a.remove(64);
        assert!(!a.contains(64));
        a.grow(200);
        assert_eq!(a.len(), 200);
        assert!(a.contains(69) && !a.contains(150));
    }
}
