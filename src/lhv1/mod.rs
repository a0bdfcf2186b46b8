//! LHV1: one framed blob per index (specified in docs/lhv1.md). The whole
//! byte format lives in this module:
//!
//! ```text
//! "LHV1" | u32 big-endian envelope length | JSON envelope | graph section
//!                                           envelope.rs     ids.rs, graph.rs
//! ```
//!
//! The envelope carries the parameters, the item count, the metadata and the
//! length and CRC32C of the graph section, so one blob is the whole index and
//! there is no state where parameters and graph disagree. Decoding treats the
//! bytes as hostile: every length is checked against what remains before
//! anything is allocated, and any failure is `Corrupt` (or `Unsupported` for a
//! newer version) with the offset where it was found.

mod envelope;
mod graph;
mod ids;
mod reader;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::index::{graph_params, validate_metadata, Index, IndexParams};
use reader::{put_u32, Reader};

pub const MAGIC: &[u8; 4] = b"LHV1";
/// The newest envelope version this code reads and writes: 2 for quantized
/// indexes; unquantized ones are still written as version 1 (docs/lhv1.md).
pub const VERSION: u64 = 2;
/// Bytes before the envelope: magic and envelope length.
pub const HEADER_LEN: usize = 8;
/// The format number at the start of the graph section.
pub const GRAPH_FORMAT: u32 = 1;

/// What `inspect` reads from a blob without touching the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    pub version: u64,
    pub params: IndexParams,
    pub count: u64,
    pub envelope_len: usize,
    pub graph_len: u64,
    pub graph_crc32c: u32,
    /// Members of the envelope's metadata object (the items that have
    /// metadata, in a blob a writer made).
    pub metadata_count: usize,
}

/// A consistent copy of an index for encoding: the graph section and what
/// the envelope needs, taken under one read lock.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub params: IndexParams,
    /// Live items.
    pub count: u64,
    /// (id, metadata JSON) of the live items that have metadata.
    pub metadata: Vec<(Arc<str>, Arc<str>)>,
    /// The graph section (ids and graph).
    pub graph: Vec<u8>,
    /// `Index::version()` at the time of the snapshot.
    pub version: u64,
}

/// Copies the index into a snapshot under its read lock. The buffer has room
/// for the header and envelope, so `encode_owned` frames it in place.
/// A stopped index (see `Index::ensure_healthy`) is refused with `Internal`,
/// so a broken graph never replaces a good stored copy.
pub fn snapshot(index: &Index) -> Result<Snapshot> {
    let inner = index.read_contents();
    // Checked under the lock: an add that breaks an invariant stops the index
    // before it releases the write lock.
    index.ensure_healthy()?;
    let metadata: Vec<(Arc<str>, Arc<str>)> = inner
        .ids
        .iter()
        .zip(&inner.metadata)
        .filter_map(|(id, md)| Some((id.clone()?, md.clone()?)))
        .collect();
    let mut out = Vec::with_capacity(
        4 + ids::encoded_len(&inner.ids)
            + graph::encoded_len(&inner.graph)
            // The LHV1 header and envelope (a guess; more just grows).
            + 512
            + metadata
                .iter()
                .map(|(id, md)| 2 * id.len() + md.len() + 8)
                .sum::<usize>(),
    );
    crate::hnsw::hugepages::advise_huge_pages(out.as_ptr(), out.capacity());
    put_u32(&mut out, GRAPH_FORMAT);
    ids::write_ids(&inner.ids, &mut out);
    graph::write_graph(&inner.graph, &mut out);
    Ok(Snapshot {
        params: index.params(),
        count: inner.ids.live() as u64,
        metadata,
        graph: out,
        version: index.version(),
    })
}

/// Encodes an index. The snapshot is taken under the index's read lock; the
/// framing is done after the lock is released. Fails with `Unsupported` when
/// the envelope does not fit the format (see `frame_header`).
pub fn encode(index: &Index) -> Result<Vec<u8>> {
    encode_owned(snapshot(index)?)
}

/// Frames a snapshot, reusing its graph buffer for the blob.
pub fn encode_owned(s: Snapshot) -> Result<Vec<u8>> {
    frame_with_limit(s, u32::MAX as usize)
}

/// The 8 bytes before an envelope of `env_len` bytes. The length field is a
/// u32, so a longer envelope (4 GiB or more of metadata) cannot be written:
/// `Unsupported`, because the index is sound and the caller did nothing
/// wrong; it is this format version that cannot represent it.
pub fn frame_header(env_len: usize) -> Result<[u8; HEADER_LEN]> {
    header_with_limit(env_len, u32::MAX as usize)
}

fn header_with_limit(env_len: usize, limit: usize) -> Result<[u8; HEADER_LEN]> {
    if env_len > limit {
        return Err(Error::Unsupported(format!(
            "the LHV1 envelope would be {env_len} bytes; the format's u32 length field holds at most {limit} (the index's metadata is too large to save as one blob)"
        )));
    }
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4..].copy_from_slice(&(env_len as u32).to_be_bytes());
    Ok(h)
}

/// `encode_owned` with the envelope limit as a parameter, so the failure
/// path can be tested without a 4 GiB envelope.
fn frame_with_limit(s: Snapshot, limit: usize) -> Result<Vec<u8>> {
    let env = envelope::write(&s);
    let header = header_with_limit(env.len(), limit)?;
    // Frame in place: grow the graph buffer and move the graph up rather than
    // copy it into a second buffer (on a large index, touching a second set
    // of fresh pages costs more than the move).
    let mut out = s.graph;
    let len = out.len();
    let pre = HEADER_LEN + env.len();
    out.resize(len + pre, 0);
    out.copy_within(..len, pre);
    out[..HEADER_LEN].copy_from_slice(&header);
    out[HEADER_LEN..pre].copy_from_slice(env.as_bytes());
    Ok(out)
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(msg.into())
}

/// Splits a blob into (envelope JSON, graph bytes, graph offset), checking
/// the magic and the envelope length.
fn frame(blob: &[u8]) -> Result<(&[u8], &[u8], usize)> {
    if blob.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "blob is {} bytes, shorter than the {HEADER_LEN}-byte LHV1 header",
            blob.len()
        )));
    }
    if &blob[..4] != MAGIC {
        return Err(corrupt(format!(
            "offset 0: magic is {:?}, expected \"LHV1\"",
            String::from_utf8_lossy(&blob[..4])
        )));
    }
    let env_len = u32::from_be_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    let rest = blob.len() - HEADER_LEN;
    if env_len > rest {
        return Err(corrupt(format!(
            "offset 4: envelope length {env_len} exceeds the {rest} bytes that follow the header"
        )));
    }
    let env = &blob[HEADER_LEN..HEADER_LEN + env_len];
    Ok((env, &blob[HEADER_LEN + env_len..], HEADER_LEN + env_len))
}

/// Frame and envelope checked, with the graph section's length.
fn open(blob: &[u8]) -> Result<(envelope::Envelope<'_>, &[u8], usize)> {
    let (env, graph, graph_at) = frame(blob)?;
    let e = envelope::parse(env)?;
    if e.graph.len != graph.len() as u64 {
        return Err(corrupt(format!(
            "offset {graph_at}: envelope says the graph section is {} bytes, {} follow the envelope",
            e.graph.len,
            graph.len()
        )));
    }
    Ok((e, graph, graph_at))
}

/// Reads and checks the header and envelope only (params, count, sizes);
/// the graph section's length is checked, its bytes are not read.
pub fn inspect(blob: &[u8]) -> Result<Info> {
    let (e, graph, _) = open(blob)?;
    let mut metadata_count = 0;
    envelope::for_each_metadata(e.metadata, |_, _| {
        metadata_count += 1;
        Ok(())
    })?;
    Ok(Info {
        version: e.version,
        params: e.params,
        count: e.count,
        envelope_len: blob.len() - HEADER_LEN - graph.len(),
        graph_len: e.graph.len,
        graph_crc32c: e.graph.crc32c,
        metadata_count,
    })
}

/// Decodes a blob into an index, validating everything first.
///
/// Memory: every allocation is bounded by the bytes that back it, and the
/// cheap checks (CRC, id syntax, counts, the graph section's exact length)
/// come before the big arrays are allocated, so a damaged blob is mostly
/// rejected before it costs more than its own size.
pub fn decode(blob: &[u8]) -> Result<Index> {
    let (e, graph_bytes, graph_at) = open(blob)?;
    let crc = crc32c::crc32c(graph_bytes);
    if crc != e.graph.crc32c {
        return Err(corrupt(format!(
            "offset {graph_at}: graph section CRC32C is {crc:#010x}, the envelope says {:#010x}",
            e.graph.crc32c
        )));
    }
    let gp = graph_params(&e.params);
    let mut r = Reader::new(graph_bytes, graph_at);
    let format = r.u32("graph format")?;
    if format == 0 {
        return Err(r.corrupt("graph format 0 does not exist"));
    }
    if format != GRAPH_FORMAT {
        return Err(Error::Unsupported(format!(
            "graph format {format}; this reader knows format {GRAPH_FORMAT}"
        )));
    }
    let checked = ids::check(
        &mut r,
        graph::min_slot_bytes(gp.dim, gp.m),
        graph::HEADER_BYTES,
    )?;
    if checked.live != e.count {
        return Err(r.corrupt(format_args!(
            "the ids section holds {} live ids, the envelope's count is {}",
            checked.live, e.count
        )));
    }
    let graph = graph::read_graph(&mut r, &gp, e.params.quantization, checked.slots)?;
    if r.remaining() != 0 {
        return Err(r.corrupt(format_args!(
            "{} bytes left over after the graph",
            r.remaining()
        )));
    }
    let ids = ids::build(checked, &graph)?;
    // Per slot, allocated at the first metadata: an index without any keeps
    // it empty, as `Index` does.
    let mut md: Vec<Option<Arc<str>>> = Vec::new();
    // A repeated id takes its last value (docs/lhv1.md, 2).
    envelope::for_each_metadata(e.metadata, |id, text| {
        let slot = ids.slot(id).ok_or_else(|| {
            corrupt(format!(
                "metadata names id {id:?}, which is not in the index"
            ))
        })?;
        let text =
            validate_metadata(text).map_err(|e| corrupt(format!("metadata of id {id:?}: {e}")))?;
        if md.is_empty() {
            md.resize(ids.len(), None);
        }
        md[slot as usize] = Some(Arc::from(text));
        Ok(())
    })?;
    Ok(Index::from_contents(e.params, graph, ids, md))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hnsw::Metric;

    #[test]
    fn envelope_length_must_fit_in_u32() {
        let max = u32::MAX as usize;
        let h = frame_header(max).unwrap();
        assert_eq!(&h[..4], MAGIC);
        assert_eq!(h[4..], [0xff; 4]);
        assert_eq!(frame_header(163).unwrap()[4..], [0, 0, 0, 163]);
        for len in [max + 1, max + 2, 1 << 33, usize::MAX] {
            match frame_header(len) {
                Err(Error::Unsupported(m)) => {
                    assert!(m.contains(&len.to_string()), "{m}");
                    assert!(m.contains("u32"), "{m}");
                }
                other => panic!("envelope of {len} bytes: {other:?}"),
            }
        }
    }

    #[test]
    fn encode_reports_an_envelope_too_long_for_the_header() {
        let idx = Index::new(IndexParams::new("big", 2, Metric::L2)).unwrap();
        let md = "{\"pad\":\"".to_string() + &"x".repeat(1000) + "\"}";
        idx.add(&["a"], &[1.0, 2.0], Some(&[Some(md.as_str())]))
            .unwrap();
        let blob = encode(&idx).unwrap();
        let env_len = inspect(&blob).unwrap().envelope_len;
        // The public path and the limit it is given agree with frame_header:
        // one byte short of the envelope fails, its exact length does not.
        assert!(matches!(
            frame_with_limit(snapshot(&idx).unwrap(), env_len - 1),
            Err(Error::Unsupported(_))
        ));
        assert_eq!(
            frame_with_limit(snapshot(&idx).unwrap(), env_len).unwrap(),
            blob
        );
    }
}
