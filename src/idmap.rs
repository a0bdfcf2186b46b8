//! The ids of an index: per slot the id of the live item in it (None for a
//! tombstone), and the way back from an id to its slot.
//!
//! The way back is a hash table of bare slot numbers (4 bytes an entry)
//! whose hashes and equality read the id out of the per-slot array, rather
//! than a `HashMap<Arc<str>, u32>` that holds a second 16-byte pointer to
//! every id and 4 bytes of padding. At 100,000 items that is about 2.6 MB
//! less, a quarter of everything an index keeps besides vectors and links.
//! Hashing stays keyed with std's random SipHash state: ids come from users,
//! and a fixed hash would let them flood one bucket.

use std::collections::hash_map::RandomState;
use std::collections::TryReserveError;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

pub(crate) struct Ids {
    /// Per slot: the id of a live item, None for a tombstone.
    by_slot: Vec<Option<Arc<str>>>,
    /// The slots that hold an id, found by the id's hash.
    table: HashTable<u32>,
    hasher: RandomState,
}

impl std::ops::Deref for Ids {
    type Target = [Option<Arc<str>>];

    /// Read access per slot; every write goes through a method so the table
    /// follows.
    fn deref(&self) -> &Self::Target {
        &self.by_slot
    }
}

impl Ids {
    pub(crate) fn new() -> Ids {
        Ids {
            by_slot: Vec::new(),
            table: HashTable::new(),
            hasher: RandomState::new(),
        }
    }

    /// From per-slot ids; `Err((slot, id))` names the first slot whose id
    /// an earlier slot already holds.
    pub(crate) fn from_slots(by_slot: Vec<Option<Arc<str>>>) -> Result<Ids, (usize, Arc<str>)> {
        let live = by_slot.iter().flatten().count();
        let mut ids = Ids {
            by_slot,
            table: HashTable::with_capacity(live),
            hasher: RandomState::new(),
        };
        for slot in 0..ids.by_slot.len() {
            if let Some(id) = ids.by_slot[slot].clone() {
                if ids.slot(&id).is_some() {
                    return Err((slot, id));
                }
                ids.link(&id, slot as u32);
            }
        }
        Ok(ids)
    }

    fn hash(hasher: &RandomState, id: &str) -> u64 {
        hasher.hash_one(id)
    }

    /// The table's hash of an entry: that of the id in its slot (the table
    /// asks when it grows).
    fn rehash<'a>(
        by_slot: &'a [Option<Arc<str>>],
        hasher: &'a RandomState,
    ) -> impl Fn(&u32) -> u64 + 'a {
        move |&s| Self::hash(hasher, by_slot[s as usize].as_deref().unwrap_or(""))
    }

    /// Whether an entry is the one for `id`.
    fn holds<'a>(by_slot: &'a [Option<Arc<str>>], id: &'a str) -> impl Fn(&u32) -> bool + 'a {
        move |&s| by_slot[s as usize].as_deref() == Some(id)
    }

    /// How many live items (ids) there are.
    pub(crate) fn live(&self) -> usize {
        self.table.len()
    }

    /// The slot holding `id`.
    pub(crate) fn slot(&self, id: &str) -> Option<u32> {
        self.table
            .find(Self::hash(&self.hasher, id), Self::holds(&self.by_slot, id))
            .copied()
    }

    /// Adds `slot` to the table under `id` (already in `by_slot[slot]`).
    fn link(&mut self, id: &str, slot: u32) {
        let Ids {
            by_slot,
            table,
            hasher,
        } = self;
        table.insert_unique(Self::hash(hasher, id), slot, Self::rehash(by_slot, hasher));
    }

    /// Puts `id` in `slot`, which must hold no id, and `id` must be in no
    /// other slot; `Index` forgets the old version of an id first.
    pub(crate) fn set(&mut self, slot: u32, id: Arc<str>) {
        debug_assert!(self.by_slot[slot as usize].is_none() && self.slot(&id).is_none());
        self.by_slot[slot as usize] = Some(id.clone());
        self.link(&id, slot);
    }

    /// Takes `id` out; returns the slot it was in (now None).
    pub(crate) fn remove(&mut self, id: &str) -> Option<u32> {
        let found = self
            .table
            .find_entry(Self::hash(&self.hasher, id), Self::holds(&self.by_slot, id))
            .ok()?;
        let (slot, _) = found.remove();
        self.by_slot[slot as usize] = None;
        Some(slot)
    }

    /// Grows or shrinks the per-slot array to `n` slots (new ones empty).
    /// Shrinking is only for slots that hold no id.
    pub(crate) fn resize(&mut self, n: usize) {
        debug_assert!(self.by_slot[n.min(self.by_slot.len())..]
            .iter()
            .all(Option::is_none));
        self.by_slot.resize(n, None);
    }

    /// Room for `slots` slots in all and `new_ids` more ids.
    pub(crate) fn try_reserve(
        &mut self,
        slots: usize,
        new_ids: usize,
    ) -> Result<(), TryReserveError> {
        let need = slots.saturating_sub(self.by_slot.len());
        self.by_slot.try_reserve_exact(need)?;
        let Ids {
            by_slot,
            table,
            hasher,
        } = self;
        table
            .try_reserve(new_ids, Self::rehash(by_slot, hasher))
            // hashbrown's error is capacity overflow or allocation failure;
            // std's TryReserveError has no public constructor, so ask a Vec
            // for the same impossible size to get one.
            .or_else(|_| Vec::<u8>::new().try_reserve(usize::MAX).map(|_| ()))
    }

    /// Bytes held (estimate: no allocator slack).
    pub(crate) fn memory_bytes(&self) -> usize {
        let strings: usize = self.by_slot.iter().flatten().map(|s| s.len() + 16).sum();
        strings
            + self.by_slot.capacity() * std::mem::size_of::<Option<Arc<str>>>()
            + self.table.capacity() * (std::mem::size_of::<u32>() + 1)
    }

    /// Empties a slot without telling the table: only for the test hook that
    /// breaks an index on purpose.
    pub(crate) fn break_slot_for_test(&mut self, slot: u32) {
        self.by_slot[slot as usize] = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_find_remove_and_reuse() {
        let mut ids = Ids::new();
        ids.try_reserve(1000, 1000).unwrap();
        ids.resize(1000);
        for s in 0..1000u32 {
            ids.set(s, Arc::from(format!("id{s}")));
        }
        assert_eq!(ids.live(), 1000);
        for s in 0..1000u32 {
            assert_eq!(ids.slot(&format!("id{s}")), Some(s));
        }
        assert_eq!(ids.slot("id1000"), None);
        for s in (0..1000u32).step_by(3) {
            assert_eq!(ids.remove(&format!("id{s}")), Some(s));
            assert_eq!(ids.remove(&format!("id{s}")), None);
            assert!(ids[s as usize].is_none());
        }
        assert_eq!(ids.live(), 666);
        // Slots are reused under other ids; the old ids stay gone.
        for s in (0..1000u32).step_by(3) {
            ids.set(s, Arc::from(format!("new{s}")));
        }
        for s in 0..1000u32 {
            let (want, gone) = if s % 3 == 0 {
                (format!("new{s}"), Some(format!("id{s}")))
            } else {
                (format!("id{s}"), None)
            };
            assert_eq!(ids.slot(&want), Some(s));
            if let Some(g) = gone {
                assert_eq!(ids.slot(&g), None);
            }
        }
    }

    #[test]
    fn from_slots_names_the_first_repeated_id() {
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let ok = Ids::from_slots(vec![Some(a.clone()), None, Some(b.clone())]).unwrap();
        assert_eq!(
            (ok.slot("a"), ok.slot("b"), ok.live()),
            (Some(0), Some(2), 2)
        );
        let dup = Ids::from_slots(vec![Some(a.clone()), Some(b), None, Some(a.clone())]);
        assert_eq!(dup.err(), Some((3, a)));
    }
}
