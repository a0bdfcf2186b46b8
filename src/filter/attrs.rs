//! The attribute index: what makes evaluating a filter cost the size of its
//! answer rather than a JSON walk per item. Maintained on every insert and
//! tombstone, rebuilt from the metadata on decode (LHV1 does not store it).
//!
//! Per metadata path (`["a", "b"]` for `{"a": {"b": ..}}`): the slots where
//! the path is present, an inverted map from scalar value to slots (array
//! elements are posted under their own value, so `$eq` on an array means
//! "has an element equal"), and the numbers in sorted order for ranges.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use super::{Bitset, IdOp, Node, Op, Range, Scalar};
use crate::idmap::Ids;

/// A sorted set in one allocation: evaluating walks it at memory speed
/// (a BTreeSet costs several times more per element), and inserts of new
/// slots, which come in increasing order, append.
#[derive(Debug)]
struct Sorted<T>(Vec<T>);

impl<T> Default for Sorted<T> {
    fn default() -> Self {
        Sorted(Vec::new())
    }
}

impl<T: Ord + Copy> Sorted<T> {
    fn insert(&mut self, x: T) {
        if self.0.last().is_none_or(|l| *l < x) {
            self.0.push(x);
        } else if let Err(i) = self.0.binary_search(&x) {
            self.0.insert(i, x);
        }
    }

    fn remove(&mut self, x: &T) {
        if let Ok(i) = self.0.binary_search(x) {
            self.0.remove(i);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Default)]
struct Field {
    present: Sorted<u32>,
    eq: HashMap<Scalar, Sorted<u32>>,
    /// (order-preserving key of the number, slot).
    nums: Sorted<(u64, u32)>,
    /// Slots holding more than one number here (an array): while there are
    /// none, several ranges on the field can be walked as one interval.
    multi: usize,
    /// The slots holding a number here: while `multi` is 0, a wide range
    /// is these minus the few outside it.
    numbered: Bitset,
}

/// A u64 whose unsigned order is the numeric order of finite f64s (-0.0 is
/// folded into 0.0 first, so it sorts as 0).
fn order_key(x: f64) -> u64 {
    let b = if x == 0.0 { 0 } else { x.to_bits() };
    if b >> 63 == 1 {
        !b
    } else {
        b | 1 << 63
    }
}

type Key = (u64, u32);

/// The larger of two lower bounds.
fn tighter_lo(a: Bound<Key>, b: Bound<Key>) -> Bound<Key> {
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => {
            if x >= y {
                a
            } else {
                b
            }
        }
    }
}

/// The smaller of two upper bounds.
fn tighter_hi(a: Bound<Key>, b: Bound<Key>) -> Bound<Key> {
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x) | Excluded(x), Included(y) | Excluded(y)) => {
            if x <= y {
                a
            } else {
                b
            }
        }
    }
}

/// The attribute index of one `Index`.
#[derive(Debug, Default)]
pub struct AttrIndex {
    fields: HashMap<Vec<Arc<str>>, Field>,
    /// The live slots.
    live: Bitset,
}

/// Calls `f(path, value)` for every path in a metadata object, parents
/// before children.
fn walk(path: &mut Vec<Arc<str>>, v: &Value, f: &mut impl FnMut(&[Arc<str>], &Value)) {
    if let Value::Object(obj) = v {
        for (k, x) in obj {
            path.push(Arc::from(k.as_str()));
            f(path, x);
            walk(path, x, f);
            path.pop();
        }
    }
}

/// The scalars posted for a value: itself, or an array's scalar elements.
fn postings(v: &Value, mut f: impl FnMut(Scalar)) {
    match v {
        Value::Array(items) => items.iter().filter_map(Scalar::of).for_each(f),
        _ => {
            if let Some(s) = Scalar::of(v) {
                f(s)
            }
        }
    }
}

fn parse(metadata: Option<&str>) -> Option<Value> {
    // Stored metadata was validated as JSON when it was added or decoded; a
    // text that does not parse has no fields, on insert and remove alike.
    serde_json::from_str(metadata?).ok()
}

impl AttrIndex {
    /// An index of the live slots of `ids` with their `metadata` (both
    /// indexed by slot); used on decode and after slots are renumbered.
    pub fn rebuild<T: AsRef<str>, U: AsRef<str>>(
        ids: &[Option<T>],
        metadata: &[Option<U>],
    ) -> AttrIndex {
        let mut a = AttrIndex::default();
        a.live.grow(ids.len());
        for (slot, id) in ids.iter().enumerate() {
            if id.is_some() {
                let md = metadata.get(slot).and_then(|m| m.as_ref());
                a.insert(slot as u32, md.map(|m| m.as_ref()));
            }
        }
        a
    }

    /// Records a new live item in `slot` with its metadata text.
    pub fn insert(&mut self, slot: u32, metadata: Option<&str>) {
        self.live.grow(slot as usize + 1);
        self.live.insert(slot);
        let Some(v) = parse(metadata) else { return };
        walk(&mut Vec::new(), &v, &mut |path, x| {
            let field = match self.fields.get_mut(path) {
                Some(f) => f,
                None => self.fields.entry(path.to_vec()).or_default(),
            };
            field.present.insert(slot);
            let mut numbers = 0;
            postings(x, |s| {
                if let Scalar::Num(bits) = s {
                    numbers += 1;
                    field.nums.insert((order_key(f64::from_bits(bits)), slot));
                }
                field.eq.entry(s).or_default().insert(slot);
            });
            field.multi += usize::from(numbers > 1);
            if numbers > 0 {
                field.numbered.grow(slot as usize + 1);
                field.numbered.insert(slot);
            }
        });
    }

    /// Forgets the item in `slot`, whose metadata text was `metadata`.
    pub fn remove(&mut self, slot: u32, metadata: Option<&str>) {
        self.live.remove(slot);
        let Some(v) = parse(metadata) else { return };
        walk(&mut Vec::new(), &v, &mut |path, x| {
            let Some(field) = self.fields.get_mut(path) else {
                return;
            };
            field.present.remove(&slot);
            let mut numbers = 0;
            postings(x, |s| {
                if let Scalar::Num(bits) = s {
                    numbers += 1;
                    field.nums.remove(&(order_key(f64::from_bits(bits)), slot));
                }
                if let Some(set) = field.eq.get_mut(&s) {
                    set.remove(&slot);
                    if set.is_empty() {
                        field.eq.remove(&s);
                    }
                }
            });
            field.multi -= usize::from(numbers > 1);
            field.numbered.remove(slot);
            if field.present.is_empty() {
                self.fields.remove(path);
            }
        });
    }

    /// The live slots.
    pub fn live(&self) -> &Bitset {
        &self.live
    }

    /// The live slots matching `node`; `slot_of` resolves `$id`.
    pub(crate) fn eval(&self, node: &Node, slot_of: &Ids) -> Bitset {
        match node {
            Node::And(subs) => {
                let mut out = self.live.clone();
                for n in subs {
                    out.and_with(&self.eval(n, slot_of));
                }
                out
            }
            Node::Or(subs) => {
                let mut out = Bitset::new(self.live.len());
                for n in subs {
                    out.or_with(&self.eval(n, slot_of));
                }
                out
            }
            Node::Not(sub) => {
                let mut out = self.eval(sub, slot_of);
                out.complement_within(&self.live);
                out
            }
            Node::Field { path, ops } => {
                let field = self.fields.get(path.as_slice());
                let mut out = self.live.clone();
                for op in ops.iter().filter(|o| !matches!(o, Op::Range(_))) {
                    out.and_with(&self.op(field, op));
                }
                // Ranges: an item with several numbers here may satisfy
                // each by a different one, so each is its own interval then;
                // otherwise they all narrow one interval, walked once.
                let ranges: Vec<Range> = ops
                    .iter()
                    .filter_map(|o| match o {
                        Op::Range(r) => Some(*r),
                        _ => None,
                    })
                    .collect();
                if field.is_some_and(|f| f.multi > 0) {
                    for r in &ranges {
                        out.and_with(&self.interval(field, std::slice::from_ref(r)));
                    }
                } else if !ranges.is_empty() {
                    out.and_with(&self.interval(field, &ranges));
                }
                out
            }
            Node::Id(ops) => {
                let mut out = self.live.clone();
                for op in ops {
                    let (ids, negate) = match op {
                        IdOp::Eq(id) => (std::slice::from_ref(id), false),
                        IdOp::Ne(id) => (std::slice::from_ref(id), true),
                        IdOp::In(ids) => (ids.as_slice(), false),
                        IdOp::Nin(ids) => (ids.as_slice(), true),
                    };
                    let mut set = Bitset::new(self.live.len());
                    for id in ids {
                        if let Some(slot) = slot_of.slot(id) {
                            set.insert(slot);
                        }
                    }
                    if negate {
                        set.complement_within(&self.live);
                    }
                    out.and_with(&set);
                }
                out
            }
        }
    }

    /// The slots with a number satisfying every range in `ranges`.
    fn interval(&self, field: Option<&Field>, ranges: &[Range]) -> Bitset {
        let (mut lo, mut hi) = (Unbounded, Unbounded);
        for r in ranges {
            match *r {
                Range::Gt(x) => lo = tighter_lo(lo, Excluded((order_key(x), u32::MAX))),
                Range::Gte(x) => lo = tighter_lo(lo, Included((order_key(x), 0))),
                Range::Lt(x) => hi = tighter_hi(hi, Excluded((order_key(x), 0))),
                Range::Lte(x) => hi = tighter_hi(hi, Included((order_key(x), u32::MAX))),
            }
        }
        let mut set = Bitset::new(self.live.len());
        if let Some(f) = field {
            let v = &f.nums.0;
            let start = match lo {
                Included(k) => v.partition_point(|x| *x < k),
                Excluded(k) => v.partition_point(|x| *x <= k),
                Unbounded => 0,
            };
            let end = match hi {
                Included(k) => v.partition_point(|x| *x <= k),
                Excluded(k) => v.partition_point(|x| *x < k),
                Unbounded => v.len(),
            };
            let end = end.max(start);
            if f.multi == 0 && end - start > v.len() / 2 {
                // One number per slot: out of range is in range's
                // complement, and there are fewer of those to clear (the
                // copy is a word per 64 slots: `r < 999` of 30k items
                // clears 30 bits instead of setting 29,970).
                set.or_with(&f.numbered);
                for &(_, s) in v[..start].iter().chain(&v[end..]) {
                    set.remove(s);
                }
            } else {
                for &(_, s) in &v[start..end] {
                    set.insert(s);
                }
            }
        }
        set
    }

    /// The slots satisfying one non-range operator.
    fn op(&self, field: Option<&Field>, op: &Op) -> Bitset {
        let mut out = Bitset::new(self.live.len());
        let (negate, set_of) = match op {
            Op::Eq(_) | Op::In(_) | Op::Range(_) => (false, op),
            Op::Ne(_) | Op::Nin(_) => (true, op),
            Op::Exists(b) => (!b, op),
        };
        if let Some(f) = field {
            let mut add = |slots: &Sorted<u32>| slots.0.iter().for_each(|&s| out.insert(s));
            match set_of {
                Op::Eq(v) | Op::Ne(v) => {
                    if let Some(s) = f.eq.get(v) {
                        add(s)
                    }
                }
                Op::In(vs) | Op::Nin(vs) => {
                    for v in vs {
                        if let Some(s) = f.eq.get(v) {
                            add(s)
                        }
                    }
                }
                Op::Exists(_) => add(&f.present),
                // Ranges go through `interval`.
                Op::Range(_) => {}
            }
        }
        if negate {
            out.complement_within(&self.live);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_key_sorts_like_the_numbers() {
        let xs = [-1e300, -2.5, -1.0, -0.0, 0.0, 1e-300, 1.0, 2.5, 1e300];
        for w in xs.windows(2) {
            assert!(order_key(w[0]) <= order_key(w[1]), "{w:?}");
        }
        assert_eq!(order_key(-0.0), order_key(0.0));
    }

    #[test]
    fn wide_ranges_clear_the_complement_exactly() {
        let mut a = AttrIndex::default();
        let md = |i: u32| match i % 7 {
            0 => r#"{"x": "str"}"#.to_string(),
            1 => r#"{"y": 1}"#.to_string(),
            _ => format!(r#"{{"x": {}}}"#, i % 50),
        };
        for i in 0..300 {
            a.insert(i, Some(&md(i)));
        }
        for i in (0..300).step_by(11) {
            a.remove(i, Some(&md(i)));
        }
        let field = a.fields.get([Arc::<str>::from("x")].as_slice());
        for (ranges, keep) in [
            (vec![Range::Lt(45.0)], (|x| x < 45) as fn(u32) -> bool),
            (vec![Range::Gte(3.0), Range::Lte(48.0)], |x| {
                (3..=48).contains(&x)
            }),
            (vec![Range::Gt(49.0)], |_| false),
            (vec![Range::Gt(5.0), Range::Lt(4.0)], |_| false),
        ] {
            let want: Vec<u32> = (0..300)
                .filter(|&i| i % 11 != 0 && i % 7 > 1 && keep(i % 50))
                .collect();
            let got = a.interval(field, &ranges);
            assert_eq!(got.iter().collect::<Vec<_>>(), want, "{ranges:?}");
        }
    }

    #[test]
    fn remove_undoes_insert() {
        let mut a = AttrIndex::default();
        a.insert(0, Some(r#"{"a": {"b": [1, "x", null]}, "c": 2}"#));
        a.insert(1, Some(r#"{"a": 3}"#));
        a.remove(0, Some(r#"{"a": {"b": [1, "x", null]}, "c": 2}"#));
        assert_eq!(a.fields.len(), 1);
        let f = &a.fields[&vec![Arc::<str>::from("a")]];
        assert_eq!(f.present.0, vec![1]);
        assert_eq!(f.nums.0.len(), 1);
        assert_eq!(f.eq.len(), 1);
        assert_eq!(a.live.iter().collect::<Vec<_>>(), vec![1]);
    }
}
