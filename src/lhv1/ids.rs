//! The ids section at the start of the graph section (docs/lhv1.md, 3.2).
//!
//! Decoding checks the section in one pass that allocates nothing, and
//! builds the id table in a second pass only after the graph has been read
//! and checked: a damaged blob is rejected before the id table, the most
//! expensive part of an index per byte of blob, is allocated.

use std::sync::Arc;

use super::reader::{put_u32, put_u64, Reader};
use crate::error::{Error, Result};
use crate::hnsw::Graph;
use crate::idmap::Ids;
use crate::index::{validate_id, MAX_ID_BYTES};

/// Per slot, in slot order: the id's length, then its bytes (none for a
/// tombstone).
pub(super) fn write_ids(ids: &[Option<Arc<str>>], out: &mut Vec<u8>) {
    put_u64(out, ids.len() as u64);
    for id in ids {
        let s = id.as_deref().unwrap_or("");
        // Ids are at most MAX_ID_BYTES, checked when they were added.
        put_u32(out, s.len() as u32);
        out.extend_from_slice(s.as_bytes());
    }
}

/// Bytes `write_ids` will write.
pub(super) fn encoded_len(ids: &[Option<Arc<str>>]) -> usize {
    8 + ids
        .iter()
        .map(|id| 4 + id.as_ref().map_or(0, |s| s.len()))
        .sum::<usize>()
}

/// An ids section that has been checked but not yet built.
pub(super) struct Checked<'a> {
    /// Positioned at the first id length.
    first: Reader<'a>,
    pub slots: usize,
    pub live: u64,
}

/// Reads the id count and checks every id (length, UTF-8, allowed bytes)
/// without allocating. `min_slot_bytes` is the least a slot takes in the
/// rest of the graph section, so the count is bounded by what the bytes
/// that follow can hold.
pub(super) fn check<'a>(
    r: &mut Reader<'a>,
    min_slot_bytes: usize,
    graph_header_bytes: usize,
) -> Result<Checked<'a>> {
    let slots = r.u64("id count")?;
    // Each slot takes its 4-byte id length here plus `min_slot_bytes` in
    // the graph, which follows after its header.
    let room = r.remaining().saturating_sub(graph_header_bytes) / (4 + min_slot_bytes);
    if slots > room as u64 {
        return Err(r.corrupt(format_args!(
            "id count {slots} cannot fit in the {} bytes that follow (each slot takes at least {})",
            r.remaining(),
            4 + min_slot_bytes
        )));
    }
    let first = r.clone();
    let mut live = 0;
    for slot in 0..slots {
        live += u64::from(read_one(r, slot)?.is_some());
    }
    Ok(Checked {
        first,
        slots: slots as usize,
        live,
    })
}

/// One id: None for a tombstone. The slice borrows from the blob.
fn read_one<'a>(r: &mut Reader<'a>, slot: u64) -> Result<Option<&'a str>> {
    let len = r.u32("id length")? as usize;
    if len == 0 {
        return Ok(None);
    }
    if len > MAX_ID_BYTES {
        return Err(r.corrupt(format_args!("id of slot {slot} is {len} bytes")));
    }
    let at = r.offset();
    let bytes = r.bytes(len, "id")?;
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| validate_id(s).is_ok())
        .map(Some)
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "graph section at offset {at}: id of slot {slot} is not a valid id"
            ))
        })
}

/// The ids of a checked section, which must agree with the graph's
/// tombstones.
pub(super) fn build(c: Checked<'_>, graph: &Graph) -> Result<Ids> {
    let mut r = c.first;
    let mut ids: Vec<Option<Arc<str>>> = Vec::with_capacity(c.slots);
    // Where each id's bytes start, to name a repeated one by its offset.
    let mut offsets: Vec<usize> = Vec::with_capacity(c.slots);
    for slot in 0..c.slots {
        let at = r.offset();
        let id = read_one(&mut r, slot as u64)?;
        offsets.push(at + 4);
        if id.is_some() == graph.is_deleted(slot as u32) {
            return Err(Error::Corrupt(format!(
                "graph section: slot {slot} is {} but {} an id",
                if id.is_some() { "a tombstone" } else { "live" },
                if id.is_some() { "has" } else { "lacks" }
            )));
        }
        let Some(id) = id else {
            ids.push(None);
            continue;
        };
        ids.push(Some(Arc::from(id)));
    }
    Ids::from_slots(ids).map_err(|(slot, id)| {
        Error::Corrupt(format!(
            "graph section at offset {}: id {id:?} appears twice",
            offsets[slot]
        ))
    })
}
