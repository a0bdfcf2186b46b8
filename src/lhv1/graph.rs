//! The graph's binary form: little-endian, fixed-width, restored by bulk
//! copies plus validation (never by re-inserting). The layout is specified in
//! docs/lhv1.md ("graph section").
//!
//! Every length read from the bytes is checked against what remains before
//! anything is allocated, and once the levels are read the section's exact
//! length is known and checked, so a damaged section fails before its big
//! arrays are copied.

use crate::hnsw::arena::Arena;
use crate::hnsw::hugepages::advise_huge_pages;
use std::sync::atomic::{AtomicU32, Ordering};

use super::reader::{put_u32, put_u64, Reader};
use crate::error::{Error, Result};
use crate::hnsw::graph::{Graph, GraphParams, MAX_LEVEL, NO_SLOT};
use crate::hnsw::quant::Quantizer;
use crate::hnsw::{Metric, Quantization};

/// Bytes of the graph header (docs/lhv1.md, 3.3).
pub(super) const HEADER_BYTES: usize = 44;

/// The fewest bytes one slot takes in the graph section: its level, its
/// flag, its vector and its layer-0 list (upper lists and the free list
/// come on top).
pub(super) fn min_slot_bytes(dim: usize, m: usize) -> usize {
    2 + dim * 4 + (1 + 2 * m) * 4
}

fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: f32 has no padding and any initialised f32 is 4 valid
        // bytes; on little-endian its memory is its LE encoding.
        let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len() * 4) };
        out.extend_from_slice(bytes);
    }
    #[cfg(not(target_endian = "little"))]
    {
        let start = out.len();
        out.resize(start + v.len() * 4, 0);
        for (dst, x) in out[start..].chunks_exact_mut(4).zip(v) {
            dst.copy_from_slice(&x.to_le_bytes());
        }
    }
}

fn put_words(out: &mut Vec<u8>, v: &[AtomicU32]) {
    let start = out.len();
    out.resize(start + v.len() * 4, 0);
    for (dst, x) in out[start..].chunks_exact_mut(4).zip(v) {
        dst.copy_from_slice(&x.load(Ordering::Relaxed).to_le_bytes());
    }
}

/// A 4-byte type for which every bit pattern is a valid value, so that
/// little-endian words can be copied straight into a `Vec` of it.
///
/// # Safety
/// Implementors must have the size, alignment and bit validity of `u32`.
unsafe trait Word32 {
    /// Used on big-endian targets only; little-endian ones copy in bulk.
    #[cfg_attr(target_endian = "little", allow(dead_code))]
    fn from_bits(bits: u32) -> Self;
}

// SAFETY: f32 is 4 bytes, 4-aligned, and every bit pattern is some f32.
unsafe impl Word32 for f32 {
    fn from_bits(bits: u32) -> f32 {
        f32::from_bits(bits)
    }
}

// SAFETY: AtomicU32 has the same in-memory representation as u32.
unsafe impl Word32 for AtomicU32 {
    fn from_bits(bits: u32) -> AtomicU32 {
        AtomicU32::new(bits)
    }
}

/// `b.len() / 4` little-endian words (vectors as f32, lists as atomics).
fn get_words<T: Word32>(b: &[u8]) -> Vec<T> {
    let n = b.len() / 4;
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise_huge_pages(v.as_ptr().cast(), n * 4);
    #[cfg(target_endian = "little")]
    // SAFETY: the capacity is n words; `Word32` types accept every 4-byte
    // pattern, and the bytes are LE, which is the memory order here.
    unsafe {
        std::ptr::copy_nonoverlapping(b.as_ptr(), v.as_mut_ptr().cast::<u8>(), n * 4);
        v.set_len(n);
    }
    #[cfg(not(target_endian = "little"))]
    v.extend(
        b.chunks_exact(4)
            .map(|c| T::from_bits(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
    );
    v
}

/// Bytes the graph's binary form will take (for reserving the output).
pub(super) fn encoded_len(g: &Graph) -> usize {
    64 + g.slots() * 2
        + g.free.len() * 4
        + g.vectors.len() * 4
        + g.layer0.len() * 4
        + g.upper.iter().map(|u| u.len() * 4).sum::<usize>()
        + 1
        + g.quantizer().map_or(0, |q| q.offset.len() * 8)
}

/// Header, levels, tombstones, free list, vectors, layer 0, upper layers.
pub(super) fn write_graph(g: &Graph, out: &mut Vec<u8>) {
    let p = g.params();
    let (entry, _) = g.entry_point();
    put_u32(out, p.dim as u32);
    put_u32(out, p.metric.code());
    put_u32(out, p.m as u32);
    put_u32(out, p.ef_construction as u32);
    put_u64(out, g.slots() as u64);
    put_u32(out, entry);
    put_u64(out, g.rng);
    put_u64(out, g.free.len() as u64);
    out.extend_from_slice(&g.levels);
    out.extend(g.deleted.iter().map(|&d| d as u8));
    for &f in &g.free {
        put_u32(out, f);
    }
    put_f32s(out, &g.vectors);
    put_words(out, &g.layer0);
    for u in &g.upper {
        put_words(out, u);
    }
    if g.quantization() == Quantization::Int8 {
        // The quantizer, not the codes: codes are derived again on decode.
        match g.quantizer() {
            Some(q) => {
                out.push(1);
                put_f32s(out, &q.offset);
                put_f32s(out, &q.scale);
            }
            None => out.push(0),
        }
    }
}

/// Reads and validates a graph written by `write_graph`. `expect` are the
/// parameters the envelope declared and `id_count` the slots the ids section
/// listed; the graph must agree with both.
pub(super) fn read_graph(
    r: &mut Reader<'_>,
    expect: &GraphParams,
    quantization: Quantization,
    id_count: usize,
) -> Result<Graph> {
    let dim = r.u32("dim")? as usize;
    let metric = r.u32("metric")?;
    let m = r.u32("m")? as usize;
    let efc = r.u32("ef_construction")? as usize;
    if dim != expect.dim
        || Metric::from_code(metric) != Some(expect.metric)
        || m != expect.m
        || efc != expect.ef_construction
    {
        return Err(r.corrupt(format_args!(
            "graph parameters (dim {dim}, metric {metric}, m {m}, ef_construction {efc}) disagree with the envelope's"
        )));
    }
    let slots = r.u64("slot count")?;
    let per_slot = min_slot_bytes(dim, m);
    if slots > (r.remaining() / per_slot) as u64 || slots >= NO_SLOT as u64 {
        return Err(r.corrupt(format_args!(
            "slot count {slots} is more than the {} remaining bytes can hold",
            r.remaining()
        )));
    }
    if slots != id_count as u64 {
        return Err(r.corrupt(format_args!(
            "slot count {slots} but the ids section lists {id_count} slots"
        )));
    }
    let n = slots as usize;
    let entry = r.u32("entry point")?;
    let rng = r.u64("rng state")?;
    let free_count = r.u64("free-slot count")?;
    if free_count > slots {
        return Err(r.corrupt(format_args!(
            "free-slot count {free_count} exceeds slot count {slots}"
        )));
    }
    let levels_at = r.offset();
    let level_bytes = r.array(slots, 1, "levels")?;
    if let Some(i) = level_bytes.iter().position(|&l| l > MAX_LEVEL) {
        return Err(Error::Corrupt(format!(
            "graph section at offset {}: slot {i} has level {} above the maximum {MAX_LEVEL}",
            levels_at + i,
            level_bytes[i]
        )));
    }
    // The header and levels fix the length of everything that follows:
    // check it before anything is copied, so a section with bytes missing
    // or left over (or a count or level that does not match them) fails
    // without allocating for it. n, dim, m and free_count are bounded above,
    // so none of this overflows.
    let w0 = 1 + 2 * m;
    let wu = 1 + m;
    let upper_words: usize = level_bytes.iter().map(|&l| l as usize).sum::<usize>() * wu;
    let need = n + free_count as usize * 4 + n * dim * 4 + n * w0 * 4 + upper_words * 4;
    // An int8 graph ends with a trained flag and, when set, the quantizer.
    let quant_bytes = |trained: bool| match quantization {
        Quantization::None => 0,
        Quantization::Int8 => 1 + if trained { dim * 8 } else { 0 },
    };
    if need + quant_bytes(false) != r.remaining() && need + quant_bytes(true) != r.remaining() {
        return Err(r.corrupt(format_args!(
            "the graph header and levels describe {need} more bytes, but {} remain",
            r.remaining()
        )));
    }
    let levels = level_bytes.to_vec();
    let flags = r.array(slots, 1, "tombstone flags")?;
    if let Some(i) = flags.iter().position(|&f| f > 1) {
        return Err(r.corrupt(format_args!("slot {i} has tombstone flag {}", flags[i])));
    }
    let deleted: Vec<bool> = flags.iter().map(|&f| f == 1).collect();
    let free_bytes = r.array(free_count, 4, "free list")?;
    let mut seen = vec![false; n];
    let mut free = Vec::with_capacity(free_count as usize);
    for c in free_bytes.chunks_exact(4) {
        let f = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let ok = (f as usize) < n && deleted[f as usize] && !seen[f as usize];
        if !ok {
            return Err(r.corrupt(format_args!(
                "free list entry {f} is out of range, live or repeated"
            )));
        }
        seen[f as usize] = true;
        free.push(f);
    }
    drop(seen);
    let tombstones = deleted.iter().filter(|&&d| d).count();
    if tombstones != free.len() {
        return Err(r.corrupt(format_args!(
            "{tombstones} tombstones but {} free slots",
            free.len()
        )));
    }
    let vat = r.offset();
    let vbytes = r.array(slots, dim * 4, "vectors")?;
    let l0at = r.offset();
    let l0bytes = r.array(slots, w0 * 4, "layer-0 lists")?;
    // The two biggest arrays are independent: on a large index copy and
    // check them on two threads (decode is bound by touching fresh pages).
    let (layer0, vectors) = if vbytes.len() + l0bytes.len() >= 16 << 20 {
        crate::parallel::join(
            || read_layer0(l0bytes, l0at, m, n),
            || read_vectors(vbytes, vat, dim),
        )
    } else {
        (
            read_layer0(l0bytes, l0at, m, n),
            read_vectors(vbytes, vat, dim),
        )
    };
    let (vectors, layer0) = (vectors?, layer0?);
    let mut upper = Vec::with_capacity(n);
    for (slot, &lv) in levels.iter().enumerate() {
        let at = r.offset();
        let words = get_words(r.array(lv as u64, wu * 4, "upper lists")?);
        for (i, list) in words.chunks_exact(wu).enumerate() {
            let level = i + 1;
            check_list(list, m, n, |nb| levels[nb as usize] as usize >= level).map_err(|e| {
                Error::Corrupt(format!(
                    "graph section at offset {}: level-{level} list of slot {slot}: {e}",
                    at + i * wu * 4
                ))
            })?;
        }
        upper.push(words.into_boxed_slice());
    }
    let quantizer = match quantization {
        Quantization::None => None,
        Quantization::Int8 => {
            let at = r.offset();
            let flag = r.array(1, 1, "quantizer flag")?[0];
            let want = quant_bytes(flag == 1) - 1;
            if flag > 1 || r.remaining() != want {
                return Err(Error::Corrupt(format!(
                    "graph section at offset {at}: quantizer flag {flag} with {} bytes after it",
                    r.remaining()
                )));
            }
            if flag == 1 {
                let q = Quantizer {
                    offset: get_words(r.array(dim as u64, 4, "quantizer offsets")?),
                    scale: get_words(r.array(dim as u64, 4, "quantizer scales")?),
                };
                q.check(dim).map_err(|e| {
                    Error::Corrupt(format!("graph section at offset {}: {e}", at + 1))
                })?;
                Some(q)
            } else {
                None
            }
        }
    };
    if n == 0 {
        if entry != NO_SLOT {
            return Err(r.corrupt(format_args!("entry point {entry} in an empty graph")));
        }
    } else {
        let top = levels.iter().copied().max().unwrap_or(0);
        if entry as usize >= n || levels[entry as usize] != top {
            return Err(r.corrupt(format_args!(
                "entry point {entry} is out of range or not on the top level {top}"
            )));
        }
    }
    let mut g = Graph::from_parts(
        *expect, vectors, layer0, upper, levels, deleted, free, entry, rng,
    );
    g.restore_quantizer(quantization, quantizer);
    Ok(g)
}

/// The vectors array, checked to be finite. `at` is its offset in the blob.
fn read_vectors(bytes: &[u8], at: usize, dim: usize) -> Result<Arena<f32>> {
    let vectors = Arena::try_filled(bytes.len() / 4, |dst| {
        for (d, b) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
            *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    })
    .map_err(|e| Error::Internal(format!("no memory for {} vector bytes: {e}", bytes.len())))?;
    // Branch-free scan (vectorises); the position only on failure.
    if vectors.iter().fold(false, |bad, v| bad | !v.is_finite()) {
        let i = vectors.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(Error::Corrupt(format!(
            "graph section at offset {}: component {} of slot {} is not finite",
            at + i * 4,
            i % dim.max(1),
            i / dim.max(1)
        )));
    }
    Ok(vectors)
}

/// The layer-0 lists of `slots` nodes, each checked. `at` is the offset.
fn read_layer0(bytes: &[u8], at: usize, m: usize, slots: usize) -> Result<Vec<AtomicU32>> {
    let w0 = 1 + 2 * m;
    let layer0 = get_words(bytes);
    for (slot, list) in layer0.chunks_exact(w0).enumerate() {
        check_list(list, 2 * m, slots, |_| true).map_err(|e| {
            Error::Corrupt(format!(
                "graph section at offset {}: layer-0 list of slot {slot}: {e}",
                at + slot * w0 * 4
            ))
        })?;
    }
    Ok(layer0)
}

fn check_list(
    list: &[AtomicU32],
    max: usize,
    slots: usize,
    level_ok: impl Fn(u32) -> bool,
) -> std::result::Result<(), String> {
    let count = list[0].load(Ordering::Relaxed) as usize;
    if count > max {
        return Err(format!("degree {count} exceeds {max}"));
    }
    for w in &list[1..=count] {
        let nb = w.load(Ordering::Relaxed);
        if nb as usize >= slots {
            return Err(format!("neighbour {nb} out of range (slots: {slots})"));
        }
        if !level_ok(nb) {
            return Err(format!("neighbour {nb} does not reach this level"));
        }
    }
    Ok(())
}
