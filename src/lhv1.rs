//! LHV1: one framed blob per index (specified in docs/lhv1.md).
//!
//! ```text
//! "LHV1" | u32 big-endian envelope length | JSON envelope | graph section
//! ```
//!
//! The envelope carries the parameters, the item count, the metadata and the
//! length and CRC32C of the graph section, so one blob is the whole index and
//! there is no state where parameters and graph disagree. Decoding treats the
//! bytes as hostile: every length is checked against what remains before
//! anything is allocated, and any failure is `Corrupt` (or `Unsupported` for a
//! newer version) with the offset where it was found.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::hnsw::Metric;
use crate::index::{Index, IndexParams, Snapshot};

pub const MAGIC: &[u8; 4] = b"LHV1";
/// The envelope version this code writes and the newest it reads.
pub const VERSION: u64 = 1;
/// Bytes before the envelope: magic and envelope length.
pub const HEADER_LEN: usize = 8;

#[derive(Serialize, Deserialize)]
struct ParamsJson {
    name: String,
    dim: u32,
    metric: String,
    m: u32,
    ef_construction: u32,
    ef_search: u32,
}

#[derive(Deserialize)]
struct GraphJson {
    len: u64,
    crc32c: u32,
}

#[derive(Deserialize)]
struct VersionJson {
    version: u64,
}

#[derive(Deserialize)]
struct EnvelopeJson {
    params: ParamsJson,
    count: u64,
    #[serde(default)]
    metadata: HashMap<String, Box<RawValue>>,
    graph: GraphJson,
}

/// What `inspect` reads from a blob without touching the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    pub version: u64,
    pub params: IndexParams,
    pub count: u64,
    pub envelope_len: usize,
    pub graph_len: u64,
    pub graph_crc32c: u32,
    /// Items that have metadata.
    pub metadata_count: usize,
}

/// Encodes an index. The snapshot is taken under the index's read lock; the
/// framing is done after the lock is released.
pub fn encode(index: &Index) -> Vec<u8> {
    encode_owned(index.snapshot())
}

/// Frames a snapshot, reusing its graph buffer for the blob.
pub fn encode_owned(s: Snapshot) -> Vec<u8> {
    let env = envelope(&s);
    // Frame in place: grow the graph buffer and move the graph up rather than
    // copy it into a second buffer (on a large index, touching a second set
    // of fresh pages costs more than the move).
    let mut out = s.graph;
    let len = out.len();
    let pre = HEADER_LEN + env.len();
    out.resize(len + pre, 0);
    out.copy_within(..len, pre);
    out[..4].copy_from_slice(MAGIC);
    out[4..HEADER_LEN].copy_from_slice(&(env.len() as u32).to_be_bytes());
    out[HEADER_LEN..pre].copy_from_slice(env.as_bytes());
    out
}

/// The JSON envelope of a snapshot.
fn envelope(s: &Snapshot) -> String {
    let params = ParamsJson {
        name: s.params.name.clone(),
        dim: s.params.dim,
        metric: s.params.metric.as_str().to_string(),
        m: s.params.m,
        ef_construction: s.params.ef_construction,
        ef_search: s.params.ef_search,
    };
    let mut env = String::with_capacity(
        256 + s
            .metadata
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>(),
    );
    env.push_str("{\"version\":");
    env.push_str(&VERSION.to_string());
    env.push_str(",\"params\":");
    env.push_str(&serde_json::to_string(&params).expect("params serialise"));
    env.push_str(&format!(",\"count\":{},\"metadata\":{{", s.count));
    for (i, (id, md)) in s.metadata.iter().enumerate() {
        if i > 0 {
            env.push(',');
        }
        env.push_str(&serde_json::to_string(&**id).expect("strings serialise"));
        env.push(':');
        // Metadata was checked to be one JSON value when it was added.
        env.push_str(md);
    }
    env.push_str(&format!(
        "}},\"graph\":{{\"len\":{},\"crc32c\":{}}}}}",
        s.graph.len(),
        crc32c::crc32c(&s.graph)
    ));
    env
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

fn parse_envelope(env: &[u8]) -> Result<(u64, EnvelopeJson)> {
    let text = std::str::from_utf8(env).map_err(|e| {
        corrupt(format!(
            "offset {}: envelope is not UTF-8",
            HEADER_LEN + e.valid_up_to()
        ))
    })?;
    let v: VersionJson = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("offset {HEADER_LEN}: envelope: {e}")))?;
    if v.version > VERSION {
        return Err(Error::Unsupported(format!(
            "LHV1 envelope version {} is newer than this reader's version {VERSION}",
            v.version
        )));
    }
    if v.version == 0 {
        return Err(corrupt("envelope version 0 does not exist"));
    }
    let e: EnvelopeJson = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("offset {HEADER_LEN}: envelope: {e}")))?;
    Ok((v.version, e))
}

fn params_of(p: &ParamsJson) -> Result<IndexParams> {
    let metric = Metric::parse(&p.metric)
        .ok_or_else(|| corrupt(format!("envelope: unknown metric {:?}", p.metric)))?;
    let params = IndexParams {
        name: p.name.clone(),
        dim: p.dim,
        metric,
        m: p.m,
        ef_construction: p.ef_construction,
        ef_search: p.ef_search,
    };
    params
        .validate()
        .map_err(|e| corrupt(format!("envelope parameters: {e}")))?;
    Ok(params)
}

/// Reads and checks the header and envelope only (params, count, sizes);
/// the graph section's length is checked, its bytes are not read.
pub fn inspect(blob: &[u8]) -> Result<Info> {
    let (env, graph, _) = frame(blob)?;
    let (version, e) = parse_envelope(env)?;
    let params = params_of(&e.params)?;
    if e.graph.len != graph.len() as u64 {
        return Err(corrupt(format!(
            "envelope says the graph section is {} bytes, {} follow the envelope",
            e.graph.len,
            graph.len()
        )));
    }
    Ok(Info {
        version,
        params,
        count: e.count,
        envelope_len: env.len(),
        graph_len: e.graph.len,
        graph_crc32c: e.graph.crc32c,
        metadata_count: e.metadata.len(),
    })
}

/// Decodes a blob into an index, validating everything first.
pub fn decode(blob: &[u8]) -> Result<Index> {
    let (env, graph, graph_at) = frame(blob)?;
    let (_, e) = parse_envelope(env)?;
    let params = params_of(&e.params)?;
    if e.graph.len != graph.len() as u64 {
        return Err(corrupt(format!(
            "offset {graph_at}: envelope says the graph section is {} bytes, {} follow the envelope",
            e.graph.len,
            graph.len()
        )));
    }
    let crc = crc32c::crc32c(graph);
    if crc != e.graph.crc32c {
        return Err(corrupt(format!(
            "offset {graph_at}: graph section CRC32C is {crc:#010x}, the envelope says {:#010x}",
            e.graph.crc32c
        )));
    }
    let metadata = e
        .metadata
        .into_iter()
        .map(|(k, v)| (k, v.get().to_string()))
        .collect();
    Index::restore(params, e.count, metadata, graph, graph_at)
}
