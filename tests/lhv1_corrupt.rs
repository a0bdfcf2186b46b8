//! LHV1 decoding treats its input as hostile: truncations, patched fields,
//! bit flips and malformed envelopes must give `Corrupt` (or `Unsupported`
//! for a newer version), never a panic, and never an allocation far beyond
//! the blob's own size.
//!
//! The graph-section offsets are found by an independent parser of the
//! layout in docs/lhv1.md (`Layout`), not by the library's reader.

mod common;

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::sync::OnceLock;

use common::*;
use serde_json::Value;
use vectord::{lhv1, Error, Index, IndexParams, Metric, Quantization};

// ---------------------------------------------------------------------------
// Per-thread allocation accounting (tests run on several threads at once).

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(n: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn note_free(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: AllocLayout) -> *mut u8 {
        note_alloc(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: AllocLayout) -> *mut u8 {
        note_alloc(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: AllocLayout) {
        note_free(l.size());
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: AllocLayout, new: usize) -> *mut u8 {
        note_free(l.size());
        note_alloc(new);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the peak number of bytes it had
/// allocated at once on this thread.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(|p| p.get()) - base)
}

// ---------------------------------------------------------------------------
// Test data.

const DIM: usize = 8;
const M: u32 = 4;
const N: usize = 300;
const REMOVED: usize = 30;

fn build_index(n: usize, dim: usize, metric: Metric, m: u32, seed: u64) -> Index {
    build_index_q(n, dim, metric, m, seed, Quantization::None)
}

fn build_index_q(
    n: usize,
    dim: usize,
    metric: Metric,
    m: u32,
    seed: u64,
    quantization: Quantization,
) -> Index {
    let mut p = IndexParams::new("corrupt", dim as u32, metric);
    p.m = m;
    p.quantization = quantization;
    p.ef_construction = 32;
    let idx = Index::new(p).unwrap();
    idx.set_insert_threads(1);
    let base = clustered(n, dim, seed);
    let all = ids(n, "v");
    let md: Vec<Option<String>> = (0..n)
        .map(|i| (i % 5 == 0).then(|| format!("{{\"i\":{i},\"t\":\"x\"}}")))
        .collect();
    let md_refs: Vec<Option<&str>> = md.iter().map(|m| m.as_deref()).collect();
    idx.add(&refs(&all), &base, Some(&md_refs)).unwrap();
    // Every 10th item goes: tombstones and a free list (and some of them
    // had metadata, which must not travel).
    let gone: Vec<String> = (0..n).step_by(10).map(|i| format!("v{i}")).collect();
    idx.remove(&refs(&gone)).unwrap();
    idx
}

/// 300 items of dim 8 (l2, m=4), every 5th with metadata, every 10th removed.
fn blob() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| {
        let idx = build_index(N, DIM, Metric::L2, M, 7);
        assert_eq!(idx.len(), N - REMOVED);
        lhv1::encode(&idx).unwrap()
    })
}

/// 1100 items of dim 8 (l2, m=4, int8: enough items to train the
/// quantizer), every 5th with metadata, every 10th removed.
fn int8_blob() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| {
        let idx = build_index_q(1100, DIM, Metric::L2, M, 17, Quantization::Int8);
        assert!(idx.quantizer_trained());
        lhv1::encode(&idx).unwrap()
    })
}

fn empty_blob() -> Vec<u8> {
    lhv1::encode(&Index::new(IndexParams::new("e", 4, Metric::L2)).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------
// An independent parser of the layout (docs/lhv1.md), for offsets.

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Absolute offsets (in the whole blob) of every field.
#[derive(Debug, Clone)]
struct Layout {
    env_len: usize,
    graph_at: usize,
    id_count_at: usize,
    /// Per slot: offset of the u32 id length (the id bytes follow).
    id_at: Vec<usize>,
    ids: Vec<String>,
    dim_at: usize,
    metric_at: usize,
    m_at: usize,
    efc_at: usize,
    slots_at: usize,
    entry_at: usize,
    rng_at: usize,
    free_count_at: usize,
    levels_at: usize,
    flags_at: usize,
    free_at: usize,
    vectors_at: usize,
    layer0_at: usize,
    /// Per slot: offset of its first upper list (level 1).
    upper_at: Vec<usize>,
    /// int8 only: the quantizer's trained flag (its offsets and scales
    /// follow when it is 1).
    quant_at: Option<usize>,
    end: usize,
    dim: usize,
    m: usize,
    slots: usize,
    levels: Vec<u8>,
    flags: Vec<u8>,
    free: Vec<u32>,
    entry: u32,
}

impl Layout {
    fn of(b: &[u8]) -> Layout {
        assert_eq!(&b[..4], b"LHV1");
        let env_len = be32(b, 4) as usize;
        let graph_at = 8 + env_len;
        let mut at = graph_at;
        assert_eq!(le32(b, at), 1, "graph format");
        at += 4;
        let id_count_at = at;
        let n_ids = le64(b, at) as usize;
        at += 8;
        let mut id_at = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..n_ids {
            id_at.push(at);
            let len = le32(b, at) as usize;
            ids.push(String::from_utf8(b[at + 4..at + 4 + len].to_vec()).unwrap());
            at += 4 + len;
        }
        let dim_at = at;
        let dim = le32(b, at) as usize;
        let metric_at = at + 4;
        let m_at = at + 8;
        let m = le32(b, m_at) as usize;
        let efc_at = at + 12;
        let slots_at = at + 16;
        let slots = le64(b, slots_at) as usize;
        let entry_at = at + 24;
        let entry = le32(b, entry_at);
        let rng_at = at + 28;
        let free_count_at = at + 36;
        let free_count = le64(b, free_count_at) as usize;
        let levels_at = at + 44;
        let levels = b[levels_at..levels_at + slots].to_vec();
        let flags_at = levels_at + slots;
        let flags = b[flags_at..flags_at + slots].to_vec();
        let free_at = flags_at + slots;
        let free = (0..free_count).map(|i| le32(b, free_at + 4 * i)).collect();
        let vectors_at = free_at + 4 * free_count;
        let layer0_at = vectors_at + slots * dim * 4;
        let mut at = layer0_at + slots * (1 + 2 * m) * 4;
        let mut upper_at = Vec::new();
        for &l in &levels {
            upper_at.push(at);
            at += l as usize * (1 + m) * 4;
        }
        let env: Value = serde_json::from_slice(&b[8..8 + env_len]).unwrap();
        let quant_at = (env["params"]["quantization"] == "int8").then_some(at);
        if quant_at.is_some() {
            at += 1 + if b[at] == 1 { 8 * dim } else { 0 };
        }
        assert_eq!(at, b.len(), "layout parser disagrees with the blob");
        Layout {
            env_len,
            graph_at,
            id_count_at,
            id_at,
            ids,
            dim_at,
            metric_at,
            m_at,
            efc_at,
            slots_at,
            entry_at,
            rng_at,
            free_count_at,
            levels_at,
            flags_at,
            free_at,
            vectors_at,
            layer0_at,
            upper_at,
            quant_at,
            end: at,
            dim,
            m,
            slots,
            levels,
            flags,
            free,
            entry,
        }
    }

    fn layer0(&self, slot: usize) -> usize {
        self.layer0_at + slot * (1 + 2 * self.m) * 4
    }

    /// Offset of the list of `slot` at `level` >= 1.
    fn upper(&self, slot: usize, level: usize) -> usize {
        self.upper_at[slot] + (level - 1) * (1 + self.m) * 4
    }

    /// Every field boundary, in order.
    fn boundaries(&self) -> Vec<usize> {
        let mut v = vec![
            0,
            4,
            8,
            self.end,
            self.graph_at,
            self.graph_at + 4,
            self.id_count_at + 8,
        ];
        for &a in &self.id_at {
            v.push(a);
            v.push(a + 4);
        }
        if let Some(q) = self.quant_at {
            v.extend([q, q + 1, q + 1 + 4 * self.dim]);
        }
        v.extend([
            self.dim_at,
            self.metric_at,
            self.m_at,
            self.efc_at,
            self.slots_at,
            self.entry_at,
            self.rng_at,
            self.free_count_at,
            self.levels_at,
            self.flags_at,
            self.free_at,
            self.vectors_at,
            self.layer0_at,
        ]);
        for s in 0..self.slots {
            v.push(self.layer0(s));
        }
        v.extend(self.upper_at.iter().copied());
        v.push(self.end);
        v.sort_unstable();
        v.dedup();
        v
    }
}

// ---------------------------------------------------------------------------
// Patching helpers.

fn split(b: &[u8]) -> (Value, Vec<u8>) {
    let n = be32(b, 4) as usize;
    (
        serde_json::from_slice(&b[8..8 + n]).unwrap(),
        b[8 + n..].to_vec(),
    )
}

fn join_raw(env: &[u8], graph: &[u8]) -> Vec<u8> {
    let mut out = b"LHV1".to_vec();
    out.extend_from_slice(&(env.len() as u32).to_be_bytes());
    out.extend_from_slice(env);
    out.extend_from_slice(graph);
    out
}

fn join(env: &Value, graph: &[u8]) -> Vec<u8> {
    join_raw(serde_json::to_string(env).unwrap().as_bytes(), graph)
}

/// The blob with its envelope edited (the graph section and its CRC as is).
fn with_env(b: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let (mut env, graph) = split(b);
    f(&mut env);
    join(&env, &graph)
}

/// Rewrites the envelope's graph length and CRC to match the graph section,
/// so the graph validator itself sees the bytes.
fn fix_crc(b: &[u8]) -> Vec<u8> {
    let (mut env, graph) = split(b);
    env["graph"]["len"] = graph.len().into();
    env["graph"]["crc32c"] = crc32c::crc32c(&graph).into();
    join(&env, &graph)
}

/// The blob with the graph section edited by `f` (given whole-blob offsets
/// minus nothing: `f` gets the whole blob), then the CRC fixed.
fn patch(b: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = b.to_vec();
    f(&mut v);
    fix_crc(&v)
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

// ---------------------------------------------------------------------------
// Checks.

fn decode_caught(b: &[u8]) -> Result<vectord::Result<Index>, String> {
    std::panic::catch_unwind(|| lhv1::decode(b)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// Decoding must fail with `Corrupt`; returns the message. `inspect` must
/// not panic either.
#[track_caller]
fn corrupt(b: &[u8], case: &str) -> String {
    let _ = std::panic::catch_unwind(|| lhv1::inspect(b))
        .unwrap_or_else(|_| panic!("{case}: inspect panicked"));
    match decode_caught(b) {
        Err(p) => panic!("{case}: decode panicked: {p}"),
        Ok(Err(Error::Corrupt(m))) => m,
        Ok(Err(e)) => panic!("{case}: expected Corrupt, got {e:?}"),
        Ok(Ok(_)) => panic!("{case}: expected Corrupt, decode succeeded"),
    }
}

/// Like `corrupt`, and the message names a byte offset.
#[track_caller]
fn corrupt_at(b: &[u8], case: &str) -> String {
    let m = corrupt(b, case);
    assert!(m.contains("offset"), "{case}: message names no offset: {m}");
    m
}

/// Anything but a panic; a blob that decodes must search and re-encode.
fn no_panic(b: &[u8], case: &str) -> bool {
    let _ = std::panic::catch_unwind(|| lhv1::inspect(b))
        .unwrap_or_else(|_| panic!("{case}: inspect panicked"));
    match decode_caught(b) {
        Err(p) => panic!("{case}: decode panicked: {p}"),
        Ok(Err(Error::Corrupt(_) | Error::Unsupported(_))) => false,
        Ok(Err(e)) => panic!("{case}: unexpected error kind {e:?}"),
        Ok(Ok(idx)) => {
            let q: Vec<f32> = (0..idx.dim()).map(|i| 0.1 * i as f32 - 0.3).collect();
            let hits = std::panic::catch_unwind(|| idx.search(&q, 10, Some(32)))
                .unwrap_or_else(|_| panic!("{case}: search of a decoded blob panicked"));
            let _ = hits;
            let again = std::panic::catch_unwind(|| lhv1::encode(&idx).unwrap())
                .unwrap_or_else(|_| panic!("{case}: encode of a decoded blob panicked"));
            assert!(
                lhv1::decode(&again).is_ok(),
                "{case}: a decoded index re-encodes to a blob that does not decode"
            );
            true
        }
    }
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn the_test_blob_is_sound() {
    let b = blob();
    let l = Layout::of(b);
    assert_eq!(l.slots, N);
    assert_eq!(l.dim, DIM);
    assert_eq!(l.m, M as usize);
    assert_eq!(l.free.len(), REMOVED);
    assert_eq!(l.flags.iter().filter(|&&f| f == 1).count(), REMOVED);
    assert!(l.levels.iter().any(|&x| x > 0), "some upper layers");
    assert_eq!(l.ids.iter().filter(|s| s.is_empty()).count(), REMOVED);
    assert!(l.entry < N as u32);
    let idx = lhv1::decode(b).unwrap();
    assert_eq!(idx.len(), N - REMOVED);
    // The envelope round trip used by the patching helpers is lossless.
    let again = fix_crc(b);
    assert_eq!(lhv1::decode(&again).unwrap().len(), N - REMOVED);
    // And so is a patch that writes back what was there.
    let same = patch(b, |v| put64(v, l.rng_at, le64(b, l.rng_at)));
    assert!(lhv1::decode(&same).is_ok());
}

#[test]
fn truncation_at_every_field_boundary() {
    let b = blob();
    let l = Layout::of(b);
    let mut cuts = l.boundaries();
    cuts.extend([1, 3, 5, 7, l.graph_at - 1, l.graph_at + 1, l.end - 1]);
    cuts.retain(|&c| c < b.len());
    cuts.sort_unstable();
    cuts.dedup();
    assert!(cuts.len() > 2 * N, "{} cuts", cuts.len());
    eprintln!(
        "{} boundary cuts ({} in the graph section)",
        cuts.len(),
        cuts.iter().filter(|&&c| c >= l.graph_at).count()
    );
    for &c in &cuts {
        let t = &b[..c];
        corrupt(t, &format!("cut at {c}"));
        if c >= l.graph_at {
            // With the envelope made consistent, the graph reader itself
            // must notice the missing bytes (and say where).
            corrupt_at(&fix_crc(t), &format!("cut at {c}, CRC fixed"));
        }
    }
}

#[test]
fn truncation_at_random_points() {
    let b = blob();
    let l = Layout::of(b);
    let mut r = Rng(0x7123);
    for i in 0..300 {
        let c = r.below(b.len());
        corrupt(&b[..c], &format!("random cut {i} at {c}"));
        if c >= l.graph_at {
            corrupt_at(
                &fix_crc(&b[..c]),
                &format!("random cut {i} at {c}, CRC fixed"),
            );
        }
    }
    // Truncating the empty index's blob anywhere fails too.
    let e = empty_blob();
    for c in 0..e.len() {
        corrupt(&e[..c], &format!("empty blob cut at {c}"));
    }
}

#[test]
fn header_fields() {
    let b = blob();
    let l = Layout::of(b);
    for magic in [[0u8; 4], [0xff; 4], *b"LHV2", *b"lhv1", *b"LHV0", *b"\0HV1"] {
        let mut v = b.to_vec();
        v[..4].copy_from_slice(&magic);
        let m = corrupt(&v, &format!("magic {magic:?}"));
        assert!(m.contains("offset 0"), "{m}");
    }
    let n = l.env_len as u32;
    for len in [
        0,
        1,
        n - 1,
        n + 1,
        n + 8,
        (b.len() - 8) as u32,
        (b.len() - 7) as u32,
        u32::MAX,
        u32::MAX / 2,
        0x8000_0000,
    ] {
        let mut v = b.to_vec();
        v[4..8].copy_from_slice(&len.to_be_bytes());
        corrupt(&v, &format!("envelope length {len}"));
    }
    for short in 0..8 {
        corrupt(&b[..short], &format!("{short}-byte blob"));
    }
}

#[test]
fn envelope_versions() {
    let b = blob();
    let set = |v: Value| with_env(b, |e| e["version"] = v);
    for (v, shown) in [
        (Value::from(3u64), "3"),
        (Value::from(u64::MAX), "18446744073709551615"),
        (Value::from(1u64 << 40), "1099511627776"),
    ] {
        match lhv1::decode(&set(v.clone())) {
            Err(Error::Unsupported(m)) => {
                assert!(m.contains(shown), "names the blob's version: {m}");
                assert!(m.contains('2'), "names the reader's version: {m}");
            }
            other => panic!("version {v}: {other:?}"),
        }
        assert!(matches!(lhv1::inspect(&set(v)), Err(Error::Unsupported(_))));
    }
    for v in [
        Value::from(0),
        Value::from(-1),
        Value::from(1.5),
        Value::from("1"),
        Value::Null,
        Value::from(vec![1]),
        serde_json::json!({"v": 1}),
    ] {
        corrupt(&set(v.clone()), &format!("version {v}"));
    }
    corrupt(
        &with_env(b, |e| {
            e.as_object_mut().unwrap().remove("version");
        }),
        "missing version",
    );
}

/// Version 2 exists for quantized indexes only, and names its quantization;
/// version 1 never carries one (a version-1 reader would ignore it and
/// answer differently, so an int8 blob is version 2, which such a reader
/// refuses as Unsupported).
#[test]
fn quantization_in_the_envelope() {
    let b = blob();
    let q = int8_blob();
    assert_eq!(lhv1::inspect(b).unwrap().version, 1);
    let info = lhv1::inspect(q).unwrap();
    assert_eq!(info.version, 2);
    assert_eq!(info.params.quantization, Quantization::Int8);
    let unknown = with_env(q, |e| e["params"]["quantization"] = "int4".into());
    match lhv1::decode(&unknown) {
        Err(Error::Unsupported(m)) => assert!(m.contains("int4"), "{m}"),
        other => panic!("quantization int4: {other:?}"),
    }
    corrupt(
        &with_env(q, |e| e["version"] = 1.into()),
        "int8 in version 1",
    );
    corrupt(
        &with_env(q, |e| e["params"]["quantization"] = "none".into()),
        "none in version 2",
    );
    corrupt(
        &with_env(q, |e| {
            e["params"].as_object_mut().unwrap().remove("quantization");
        }),
        "version 2 without quantization",
    );
    for v in [Value::from(1), Value::Null, Value::from(vec!["int8"])] {
        corrupt(
            &with_env(q, |e| e["params"]["quantization"] = v.clone()),
            &format!("quantization {v}"),
        );
    }
    // Envelope and graph section disagree about the quantizer block.
    corrupt_at(
        &with_env(b, |e| {
            e["version"] = 2.into();
            e["params"]["quantization"] = "int8".into();
        }),
        "int8 envelope on an unquantized graph",
    );
    corrupt_at(
        &with_env(q, |e| {
            e["version"] = 1.into();
            e["params"].as_object_mut().unwrap().remove("quantization");
        }),
        "unquantized envelope on an int8 graph",
    );
}

#[test]
fn quantizer_fields() {
    let b = int8_blob();
    let l = Layout::of(b);
    let at = l.quant_at.expect("int8 blob has a quantizer block");
    assert_eq!(b[at], 1);
    assert_eq!(l.end - at, 1 + 8 * l.dim);
    let offsets = at + 1;
    let scales = at + 1 + 4 * l.dim;
    assert!(lhv1::decode(b).is_ok());
    let m = corrupt_at(&patch(b, |v| v[at] = 2), "quantizer flag 2");
    assert!(m.contains("quantizer flag 2"), "{m}");
    corrupt_at(&patch(b, |v| v[at] = 0), "untrained flag with a quantizer");
    corrupt_at(
        &patch(b, |v| v.truncate(at + 1)),
        "trained flag without the quantizer",
    );
    for (what, off, bits) in [
        ("NaN offset", offsets, f32::NAN.to_bits()),
        ("infinite offset", offsets + 4, f32::INFINITY.to_bits()),
        ("NaN scale", scales, f32::NAN.to_bits()),
        ("infinite scale", scales + 8, f32::INFINITY.to_bits()),
        (
            "negative scale",
            scales + 4 * (l.dim - 1),
            (-1.0f32).to_bits(),
        ),
        ("negative zero scale", scales, (-0.0f32).to_bits()),
    ] {
        let m = corrupt_at(&patch(b, |v| put32(v, off, bits)), what);
        assert!(m.contains("quantizer"), "{what}: {m}");
    }
    for c in l.boundaries() {
        if c < b.len() {
            corrupt(&b[..c], &format!("int8 cut at {c}"));
        }
    }
    // Any byte of the block, flipped with the CRC fixed: no panic, and what
    // decodes searches and re-encodes.
    for i in at..l.end {
        for bit in [0, 3, 7] {
            no_panic(&patch(b, |v| v[i] ^= 1 << bit), &format!("flip {i}.{bit}"));
        }
    }
    // Untrained (too few items): the flag alone, and it round-trips.
    let small = lhv1::encode(&build_index_q(
        50,
        4,
        Metric::Cosine,
        2,
        4,
        Quantization::Int8,
    ))
    .unwrap();
    let ls = Layout::of(&small);
    assert_eq!(ls.end - ls.quant_at.unwrap(), 1);
    assert_eq!(small[ls.quant_at.unwrap()], 0);
    let back = lhv1::decode(&small).unwrap();
    assert!(!back.quantizer_trained());
    assert_eq!(lhv1::encode(&back).unwrap(), small);
    corrupt_at(
        &patch(&small, |v| v[ls.quant_at.unwrap()] = 1),
        "trained flag, no quantizer",
    );
}

#[test]
fn envelope_fields() {
    let b = blob();
    let huge = Value::from(1u64 << 40);
    type Edit<'a> = Box<dyn Fn(&mut Value) + 'a>;
    let cases: Vec<(&str, Edit)> = vec![
        ("dim 0", Box::new(|e| e["params"]["dim"] = 0.into())),
        ("dim 9", Box::new(|e| e["params"]["dim"] = 9.into())),
        (
            "dim u32::MAX",
            Box::new(|e| e["params"]["dim"] = u32::MAX.into()),
        ),
        ("dim 2^40", Box::new(|e| e["params"]["dim"] = huge.clone())),
        ("dim -8", Box::new(|e| e["params"]["dim"] = (-8).into())),
        ("dim \"8\"", Box::new(|e| e["params"]["dim"] = "8".into())),
        ("m 0", Box::new(|e| e["params"]["m"] = 0.into())),
        ("m 1", Box::new(|e| e["params"]["m"] = 1.into())),
        ("m 5", Box::new(|e| e["params"]["m"] = 5.into())),
        ("m 257", Box::new(|e| e["params"]["m"] = 257.into())),
        (
            "m u32::MAX",
            Box::new(|e| e["params"]["m"] = u32::MAX.into()),
        ),
        ("m 2^40", Box::new(|e| e["params"]["m"] = huge.clone())),
        (
            "efc 0",
            Box::new(|e| e["params"]["ef_construction"] = 0.into()),
        ),
        (
            "efc 33",
            Box::new(|e| e["params"]["ef_construction"] = 33.into()),
        ),
        (
            "ef_search 0",
            Box::new(|e| e["params"]["ef_search"] = 0.into()),
        ),
        (
            "ef_search 2^20",
            Box::new(|e| e["params"]["ef_search"] = (1 << 20).into()),
        ),
        (
            "metric hamming",
            Box::new(|e| e["params"]["metric"] = "hamming".into()),
        ),
        (
            "metric L2",
            Box::new(|e| e["params"]["metric"] = "L2".into()),
        ),
        (
            "metric cosine",
            Box::new(|e| e["params"]["metric"] = "cosine".into()),
        ),
        ("metric 1", Box::new(|e| e["params"]["metric"] = 1.into())),
        (
            "metric null",
            Box::new(|e| e["params"]["metric"] = Value::Null),
        ),
        ("name empty", Box::new(|e| e["params"]["name"] = "".into())),
        (
            "name 300 bytes",
            Box::new(|e| e["params"]["name"] = "n".repeat(300).into()),
        ),
        (
            "name with NUL",
            Box::new(|e| e["params"]["name"] = "a\u{0}b".into()),
        ),
        (
            "params missing",
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("params");
            }),
        ),
        (
            "dim missing",
            Box::new(|e| {
                e["params"].as_object_mut().unwrap().remove("dim");
            }),
        ),
        (
            "params an array",
            Box::new(|e| e["params"] = Value::from(vec![1, 2])),
        ),
        ("count 0", Box::new(|e| e["count"] = 0.into())),
        (
            "count - 1",
            Box::new(|e| e["count"] = (N - REMOVED - 1).into()),
        ),
        (
            "count + 1",
            Box::new(|e| e["count"] = (N - REMOVED + 1).into()),
        ),
        ("count = slots", Box::new(|e| e["count"] = N.into())),
        ("count u64::MAX", Box::new(|e| e["count"] = u64::MAX.into())),
        ("count -1", Box::new(|e| e["count"] = (-1).into())),
        ("count 1e3", Box::new(|e| e["count"] = 1e3.into())),
        (
            "count missing",
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("count");
            }),
        ),
        ("graph.len 0", Box::new(|e| e["graph"]["len"] = 0.into())),
        (
            "graph.len - 1",
            Box::new(|e| {
                let n = e["graph"]["len"].as_u64().unwrap();
                e["graph"]["len"] = (n - 1).into();
            }),
        ),
        (
            "graph.len + 1",
            Box::new(|e| {
                let n = e["graph"]["len"].as_u64().unwrap();
                e["graph"]["len"] = (n + 1).into();
            }),
        ),
        (
            "graph.len u64::MAX",
            Box::new(|e| e["graph"]["len"] = u64::MAX.into()),
        ),
        (
            "graph.len string",
            Box::new(|e| e["graph"]["len"] = "1".into()),
        ),
        (
            "graph.crc32c 0",
            Box::new(|e| e["graph"]["crc32c"] = 0.into()),
        ),
        (
            "graph.crc32c u32::MAX",
            Box::new(|e| e["graph"]["crc32c"] = u32::MAX.into()),
        ),
        (
            "graph.crc32c 2^32",
            Box::new(|e| e["graph"]["crc32c"] = (1u64 << 32).into()),
        ),
        (
            "graph.crc32c ^ 1",
            Box::new(|e| {
                let c = e["graph"]["crc32c"].as_u64().unwrap();
                e["graph"]["crc32c"] = (c ^ 1).into();
            }),
        ),
        (
            "graph.crc32c missing",
            Box::new(|e| {
                e["graph"].as_object_mut().unwrap().remove("crc32c");
            }),
        ),
        (
            "graph missing",
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("graph");
            }),
        ),
        (
            "metadata an array",
            Box::new(|e| e["metadata"] = Value::from(vec![1])),
        ),
        (
            "metadata for an unknown id",
            Box::new(|e| {
                e["metadata"]["nobody"] = serde_json::json!({"a": 1});
            }),
        ),
        (
            "metadata for a removed id",
            Box::new(|e| {
                e["metadata"]["v10"] = serde_json::json!(1);
            }),
        ),
        (
            "metadata for the empty id",
            Box::new(|e| {
                e["metadata"][""] = serde_json::json!(1);
            }),
        ),
        (
            "metadata over 64 KiB",
            Box::new(|e| {
                e["metadata"]["v5"] = "x".repeat(70_000).into();
            }),
        ),
    ];
    for (case, f) in &cases {
        corrupt(&with_env(b, f), case);
    }
    // Readers ignore unknown fields, at the top and inside objects.
    let extra = with_env(b, |e| {
        e["future"] = serde_json::json!({"x": [1, 2, 3]});
        e["params"]["quantizer"] = "pq".into();
        e["graph"]["compression"] = Value::Null;
    });
    assert_eq!(lhv1::decode(&extra).unwrap().len(), N - REMOVED);
    assert_eq!(lhv1::inspect(&extra).unwrap().count, (N - REMOVED) as u64);
    // No metadata object at all is an index without metadata.
    let none = with_env(b, |e| {
        e.as_object_mut().unwrap().remove("metadata");
    });
    assert!(lhv1::decode(&none).unwrap().get("v5").unwrap().1.is_none());
}

#[test]
fn malformed_envelopes() {
    let b = blob();
    let (env, graph) = split(b);
    let text = serde_json::to_string(&env).unwrap();
    let mut not_utf8 = text.clone().into_bytes();
    let i = not_utf8.iter().position(|&c| c == b'c').unwrap();
    not_utf8[i] = 0xff;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("not JSON", b"hello, world".to_vec()),
        ("null", b"null".to_vec()),
        ("an array", b"[1,2,3]".to_vec()),
        ("an empty object", b"{}".to_vec()),
        ("a number", b"1".to_vec()),
        ("not UTF-8", not_utf8),
        (
            "UTF-16",
            text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
        ),
        ("BOM", [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat()),
        ("trailing garbage", format!("{text}x").into_bytes()),
        ("trailing object", format!("{text}{{}}").into_bytes()),
        ("trailing NUL", format!("{text}\0").into_bytes()),
        ("cut short", text.as_bytes()[..text.len() - 1].to_vec()),
        (
            "unterminated string",
            b"{\"version\":1,\"params\":\"".to_vec(),
        ),
        ("deep nesting", "[".repeat(100_000).into_bytes()),
        ("deep nesting in an unknown field", {
            let mut s = text[..text.len() - 1].to_string();
            s.push_str(",\"x\":");
            s.push_str(&"[".repeat(10_000));
            s.into_bytes()
        }),
    ];
    for (case, env) in &cases {
        corrupt(&join_raw(env, &graph), case);
    }
    // Non-UTF-8 is reported with its offset.
    let m = corrupt(&join_raw(&cases[6].1, &graph), "not UTF-8");
    assert!(m.contains("offset"), "{m}");
}

#[test]
fn graph_header_fields() {
    let b = blob();
    let l = Layout::of(b);
    let c = |case: &str, f: &dyn Fn(&mut Vec<u8>)| corrupt_at(&patch(b, f), case);

    // Format: 0 is corrupt, a newer one is unsupported and says so.
    corrupt(&patch(b, |v| put32(v, l.graph_at, 0)), "graph format 0");
    for f in [2, u32::MAX] {
        match lhv1::decode(&patch(b, |v| put32(v, l.graph_at, f))) {
            Err(Error::Unsupported(m)) => {
                assert!(m.contains(&f.to_string()) && m.contains('1'), "{m}")
            }
            other => panic!("graph format {f}: {other:?}"),
        }
    }
    for n in [0, 1, N as u64 - 1, N as u64 + 1, 1 << 32, 1 << 60, u64::MAX] {
        c(&format!("id count {n}"), &|v| put64(v, l.id_count_at, n));
    }
    let live = (0..N).find(|&s| !l.ids[s].is_empty()).unwrap();
    let dead = (0..N).find(|&s| l.ids[s].is_empty()).unwrap();
    let a = l.id_at[live];
    for n in [1025, 4096, u32::MAX, l.ids[live].len() as u32 + 1] {
        c(&format!("id length {n}"), &|v| put32(v, a, n));
    }
    // A live slot whose id is empty (a tombstone in the ids, live in the graph).
    corrupt(
        &patch(b, |v| {
            let len = le32(v, a) as usize;
            put32(v, a, 0);
            v.drain(a + 4..a + 4 + len);
        }),
        "live slot with an empty id",
    );
    // A tombstone given an id.
    corrupt(
        &patch(b, |v| {
            put32(v, l.id_at[dead], 3);
            for (i, &x) in b"zzz".iter().enumerate() {
                v.insert(l.id_at[dead] + 4 + i, x);
            }
        }),
        "tombstone with an id",
    );
    c("id not UTF-8", &|v| v[a + 4] = 0xff);
    c("id with NUL", &|v| v[a + 4] = 0);
    // Duplicate ids: copy one live id over another of the same length.
    let (x, y) = (0..N)
        .flat_map(|i| (i + 1..N).map(move |j| (i, j)))
        .find(|&(i, j)| {
            !l.ids[i].is_empty() && l.ids[i].len() == l.ids[j].len() && !l.ids[j].is_empty()
        })
        .unwrap();
    let m = c("duplicate id", &|v| {
        let len = l.ids[x].len();
        let src = v[l.id_at[x] + 4..l.id_at[x] + 4 + len].to_vec();
        v[l.id_at[y] + 4..l.id_at[y] + 4 + len].copy_from_slice(&src);
    });
    assert!(m.contains("twice"), "{m}");

    for d in [0, DIM as u32 - 1, DIM as u32 + 1, u32::MAX] {
        c(&format!("graph dim {d}"), &|v| put32(v, l.dim_at, d));
    }
    for code in [0, 2, 3, u32::MAX] {
        c(&format!("metric code {code}"), &|v| {
            put32(v, l.metric_at, code)
        });
    }
    for m in [0, 1, M - 1, M + 1, u32::MAX] {
        c(&format!("graph m {m}"), &|v| put32(v, l.m_at, m));
    }
    for e in [0, 31, u32::MAX] {
        c(&format!("graph ef_construction {e}"), &|v| {
            put32(v, l.efc_at, e)
        });
    }
    for s in [
        0,
        1,
        N as u64 - 1,
        N as u64 + 1,
        u32::MAX as u64,
        1 << 32,
        1 << 60,
        u64::MAX,
    ] {
        c(&format!("slot count {s}"), &|v| put64(v, l.slots_at, s));
    }
    let top = *l.levels.iter().max().unwrap();
    let low = (0..N).find(|&s| l.levels[s] < top).unwrap() as u32;
    for e in [N as u32, N as u32 + 1, u32::MAX, u32::MAX - 1, low] {
        let m = c(&format!("entry point {e}"), &|v| put32(v, l.entry_at, e));
        assert!(m.contains("entry point"), "{m}");
    }
    let fc = REMOVED as u64;
    for f in [0, fc - 1, fc + 1, N as u64, N as u64 + 1, 1 << 60, u64::MAX] {
        c(&format!("free count {f}"), &|v| {
            put64(v, l.free_count_at, f)
        });
    }
    // The RNG state is not validated: any value decodes (and later inserts
    // draw different levels).
    for s in [0, 1, u64::MAX] {
        let idx = lhv1::decode(&patch(b, |v| put64(v, l.rng_at, s))).unwrap();
        assert_eq!(idx.len(), N - REMOVED);
    }
}

#[test]
fn graph_body_fields() {
    let b = blob();
    let l = Layout::of(b);
    let c = |case: &str, f: &dyn Fn(&mut Vec<u8>)| corrupt_at(&patch(b, f), case);
    let m = l.m;
    let level0 = (0..N).find(|&s| l.levels[s] == 0).unwrap();
    let upper = (0..N).find(|&s| l.levels[s] > 0).unwrap();

    for lv in [32u8, 100, 255] {
        let msg = c(&format!("level {lv}"), &|v| v[l.levels_at + level0] = lv);
        assert!(msg.contains("level"), "{msg}");
    }
    // Level 31 on a level-0 slot is in range, but the upper lists no longer
    // line up with what follows.
    c("level 31", &|v| v[l.levels_at + level0] = 31);
    // A level lowered: upper lists left over, or neighbours not reaching.
    c("level lowered", &|v| v[l.levels_at + upper] -= 1);

    let dead = l.free[0] as usize;
    let live = (0..N).find(|&s| l.flags[s] == 0).unwrap();
    for f in [2u8, 3, 0x80, 0xff] {
        let msg = c(&format!("tombstone flag {f}"), &|v| {
            v[l.flags_at + live] = f
        });
        assert!(msg.contains("flag"), "{msg}");
    }
    c("tombstone revived", &|v| v[l.flags_at + dead] = 0);
    corrupt(
        &patch(b, |v| v[l.flags_at + live] = 1),
        "live slot tombstoned",
    );

    let msg = c("free list names a live slot", &|v| {
        put32(v, l.free_at, live as u32)
    });
    assert!(msg.contains("free list"), "{msg}");
    c("free list out of range", &|v| put32(v, l.free_at, N as u32));
    c("free list u32::MAX", &|v| put32(v, l.free_at, u32::MAX));
    c("free list repeats", &|v| put32(v, l.free_at + 4, l.free[0]));

    for (bits, what) in [
        (f32::NAN.to_bits(), "NaN"),
        (f32::INFINITY.to_bits(), "+inf"),
        (f32::NEG_INFINITY.to_bits(), "-inf"),
        (0x7fc0_0001, "NaN payload"),
    ] {
        for slot in [0, N / 2, N - 1, dead] {
            let at = |l: &Layout| l.vectors_at + (slot * DIM + 3) * 4;
            let v = patch(b, |v| put32(v, at(&l), bits));
            let msg = corrupt_at(&v, &format!("{what} in slot {slot}"));
            assert!(msg.contains("not finite"), "{msg}");
            // The envelope may have changed length with its CRC: the offset
            // is the component's in the patched blob.
            let want = format!("offset {}:", at(&Layout::of(&v)));
            assert!(
                msg.contains(&want),
                "names the component: {msg} (want {want})"
            );
        }
    }

    // Layer 0: degree over 2m, neighbours out of range.
    for deg in [2 * m as u32 + 1, 1000, u32::MAX] {
        let msg = c(&format!("layer-0 degree {deg}"), &|v| {
            put32(v, l.layer0(level0), deg)
        });
        assert!(msg.contains("degree"), "{msg}");
    }
    // Make sure the list has at least one neighbour to spoil.
    let with_nb = (0..N).find(|&s| le32(b, l.layer0(s)) > 0).unwrap();
    for nb in [N as u32, N as u32 + 7, u32::MAX] {
        let msg = c(&format!("layer-0 neighbour {nb}"), &|v| {
            put32(v, l.layer0(with_nb) + 4, nb)
        });
        assert!(msg.contains("out of range"), "{msg}");
    }
    // A degree raised within the limit over unused (zero) words is valid:
    // slot 0 exists. (Documented: words past the count are not read.)
    // Upper layers: degree over m, neighbour out of range, neighbour that
    // does not reach the level.
    let u = l.upper(upper, 1);
    for deg in [m as u32 + 1, 2 * m as u32, u32::MAX] {
        let msg = c(&format!("level-1 degree {deg}"), &|v| put32(v, u, deg));
        assert!(msg.contains("degree"), "{msg}");
    }
    let up_nb = (0..N)
        .filter(|&s| l.levels[s] > 0)
        .find(|&s| le32(b, l.upper(s, 1)) > 0)
        .unwrap();
    let u = l.upper(up_nb, 1);
    c("level-1 neighbour out of range", &|v| {
        put32(v, u + 4, N as u32)
    });
    let msg = c("level-1 neighbour on level 0 only", &|v| {
        put32(v, u + 4, level0 as u32)
    });
    assert!(msg.contains("does not reach"), "{msg}");

    // Bytes after the last list.
    corrupt_at(
        &patch(b, |v| v.extend_from_slice(&[0, 0, 0, 0])),
        "trailing bytes",
    );
}

#[test]
fn bit_flips_with_the_crc_as_is() {
    let b = blob();
    let l = Layout::of(b);
    let mut r = Rng(0xB17);
    let mut decoded = 0;
    for i in 0..1000 {
        let mut v = b.to_vec();
        let at = r.below(v.len());
        v[at] ^= 1 << r.below(8);
        let case = format!("flip {i} at {at}");
        if at >= l.graph_at {
            // CRC32C catches every single-bit error in the graph section.
            let msg = corrupt(&v, &case);
            assert!(msg.contains("CRC32C"), "{case}: {msg}");
        } else if no_panic(&v, &case) {
            // A flip in the envelope can leave valid JSON (a digit of
            // ef_search, a letter of the name or of metadata).
            decoded += 1;
        }
    }
    assert!(decoded < 1000);
    eprintln!("1000 flips with the CRC as is: {decoded} envelope flips still decode");
}

#[test]
fn bit_flips_with_the_crc_fixed() {
    let b = blob();
    let l = Layout::of(b);
    let mut r = Rng(0xF1F);
    let mut ok = 0;
    for i in 0..800 {
        let mut v = b.to_vec();
        // Only the graph section: the validator is what is tested.
        let flips = 1 + r.below(3);
        for _ in 0..flips {
            let at = l.graph_at + r.below(v.len() - l.graph_at);
            v[at] ^= 1 << r.below(8);
        }
        if no_panic(&fix_crc(&v), &format!("flip {i}, CRC fixed")) {
            ok += 1;
        }
    }
    // Flips in vectors, the RNG state or unused list words are valid.
    assert!(ok > 0);
    eprintln!("800 graph flips with the CRC fixed: {ok} decode");
    // Random bytes overwritten (whole words), CRC fixed.
    for i in 0..300 {
        let mut v = b.to_vec();
        let at = l.graph_at + r.below(v.len() - l.graph_at - 4);
        let word = match r.below(4) {
            0 => 0,
            1 => u32::MAX,
            2 => N as u32,
            _ => r.next_u64() as u32,
        };
        put32(&mut v, at, word);
        no_panic(&fix_crc(&v), &format!("word {i} at {at}, CRC fixed"));
    }
}

#[test]
fn hostile_lengths_allocate_little() {
    // A ~200-byte blob claiming 2^60 ids, 2^60 slots, 2^60 free slots.
    let e = empty_blob();
    let l = Layout::of(&e);
    assert!(e.len() < 300, "{}", e.len());
    let bound = |len: usize| 64 * 1024 + 16 * len;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("ids 2^60", patch(&e, |v| put64(v, l.id_count_at, 1 << 60))),
        (
            "ids u64::MAX",
            patch(&e, |v| put64(v, l.id_count_at, u64::MAX)),
        ),
        ("slots 2^60", patch(&e, |v| put64(v, l.slots_at, 1 << 60))),
        ("slots 2^31", patch(&e, |v| put64(v, l.slots_at, 1 << 31))),
        (
            "free 2^60",
            patch(&e, |v| put64(v, l.free_count_at, 1 << 60)),
        ),
        ("envelope 4 GiB", {
            let mut v = e.clone();
            v[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
            v
        }),
        (
            "graph.len 2^60",
            with_env(&e, |j| j["graph"]["len"] = (1u64 << 60).into()),
        ),
        (
            "count 2^60",
            with_env(&e, |j| j["count"] = (1u64 << 60).into()),
        ),
    ];
    for (case, v) in &cases {
        let start = std::time::Instant::now();
        let (res, peak) = peak_of(|| lhv1::decode(v));
        assert!(matches!(res, Err(Error::Corrupt(_))), "{case}: {res:?}");
        assert!(
            peak <= bound(v.len()),
            "{case}: {} byte blob made decode allocate {peak} bytes",
            v.len()
        );
        assert!(start.elapsed().as_millis() < 100, "{case}: slow failure");
    }
    // Patched counts in the real blob: the reader rejects them before it
    // allocates for them.
    let b = blob();
    let l = Layout::of(b);
    let big: Vec<(&str, Vec<u8>)> = vec![
        ("ids 2^60", patch(b, |v| put64(v, l.id_count_at, 1 << 60))),
        (
            "ids slots*4",
            patch(b, |v| put64(v, l.id_count_at, (b.len() / 4) as u64)),
        ),
        ("ids all empty", {
            // As many zero-length ids as the bytes can hold: the most ids
            // per byte a blob can claim.
            let mut v = b.to_vec();
            let k = (b.len() - l.id_count_at - 8) / 4;
            put64(&mut v, l.id_count_at, k as u64);
            v[l.id_count_at + 8..].fill(0);
            fix_crc(&v)
        }),
        ("slots 2^60", patch(b, |v| put64(v, l.slots_at, 1 << 60))),
        (
            "free 2^60",
            patch(b, |v| put64(v, l.free_count_at, 1 << 60)),
        ),
        (
            "id length 2^31",
            patch(b, |v| put32(v, l.id_at[1], 1 << 31)),
        ),
        ("level 255", patch(b, |v| v[l.levels_at] = 255)),
    ];
    for (case, v) in &big {
        let (res, peak) = peak_of(|| lhv1::decode(v));
        assert!(matches!(res, Err(Error::Corrupt(_))), "{case}: {res:?}");
        assert!(
            peak <= bound(v.len()),
            "{case}: {} byte blob made decode allocate {peak} bytes",
            v.len()
        );
    }
    // A valid blob decodes within the same bound.
    let (res, peak) = peak_of(|| lhv1::decode(b));
    assert!(res.is_ok());
    assert!(
        peak <= bound(b.len()),
        "valid decode allocated {peak} bytes"
    );
}

#[test]
fn other_shapes_reject_patches_too() {
    // Cosine and dot, a different m: the same field patches are Corrupt.
    for (metric, m) in [(Metric::Cosine, 2), (Metric::Dot, 8)] {
        let idx = build_index(120, 5, metric, m, 3);
        let b = lhv1::encode(&idx).unwrap();
        let l = Layout::of(&b);
        assert!(lhv1::decode(&b).is_ok());
        corrupt_at(&patch(&b, |v| put64(v, l.slots_at, 1 << 40)), "slots");
        corrupt_at(&patch(&b, |v| v[l.flags_at] = 2), "flag");
        corrupt_at(
            &patch(&b, |v| put32(v, l.layer0(0), 2 * m + 1)),
            "layer-0 degree",
        );
        corrupt_at(
            &patch(&b, |v| put32(v, l.vectors_at, f32::NAN.to_bits())),
            "NaN",
        );
        for c in l.boundaries() {
            if c < b.len() {
                corrupt(&b[..c], &format!("{metric:?} cut at {c}"));
            }
        }
    }
}

/// Writes small real blobs as the fuzzer's seed corpus:
/// `cargo test --test lhv1_corrupt -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode");
    std::fs::create_dir_all(&dir).unwrap();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("empty-l2", empty_blob()),
        (
            "cosine-40x4-m2",
            lhv1::encode(&build_index(40, 4, Metric::Cosine, 2, 1)).unwrap(),
        ),
        (
            "dot-60x3-m3",
            lhv1::encode(&build_index(60, 3, Metric::Dot, 3, 2)).unwrap(),
        ),
        (
            "l2-150x8-m4",
            lhv1::encode(&build_index(150, 8, Metric::L2, 4, 3)).unwrap(),
        ),
        // Version 2: trained (the quantizer block) and untrained (its flag).
        (
            "int8-l2-1100x2-m2",
            lhv1::encode(&build_index_q(
                1100,
                2,
                Metric::L2,
                2,
                5,
                Quantization::Int8,
            ))
            .unwrap(),
        ),
        (
            "int8-cosine-40x4-m2",
            lhv1::encode(&build_index_q(
                40,
                4,
                Metric::Cosine,
                2,
                6,
                Quantization::Int8,
            ))
            .unwrap(),
        ),
    ];
    for (name, b) in seeds {
        assert!(b.len() < 64 << 10, "{name}: {} bytes", b.len());
        std::fs::write(dir.join(name), b).unwrap();
    }
}

/// A blob over 16 MiB takes the decoder's two-thread path (vectors on one
/// thread, layer-0 lists on the other): both threads' checks must still
/// catch damage, and a sound blob must still round-trip.
#[test]
fn large_blobs_are_checked_on_both_decode_threads() {
    let n = 16_500;
    let dim = 256;
    let idx = build_index(n, dim, Metric::L2, 4, 91);
    let b = lhv1::encode(&idx).unwrap();
    let l = Layout::of(&b);
    assert!(
        l.end - l.vectors_at >= 16 << 20,
        "blob too small for the threaded path"
    );
    let back = lhv1::decode(&b).expect("sound large blob");
    assert_eq!(back.len(), idx.len());
    let q = &clustered(1, dim, 92);
    assert_eq!(
        idx.search(q, 5, None).unwrap(),
        back.search(q, 5, None).unwrap()
    );
    let last_vec = l.vectors_at + (n * dim - 1) * 4;
    let msg = corrupt_at(
        &patch(&b, |v: &mut Vec<u8>| {
            v[last_vec..last_vec + 4].copy_from_slice(&f32::NAN.to_le_bytes())
        }),
        "NaN in the last vector",
    );
    assert!(msg.contains("not finite"), "{msg}");
    let w0 = 1 + 2 * l.m;
    let last_list = l.layer0_at + (n - 1) * w0 * 4;
    let msg = corrupt_at(
        &patch(&b, |v: &mut Vec<u8>| {
            put32(v, last_list, 1);
            put32(v, last_list + 4, n as u32 + 7);
        }),
        "neighbour out of range in the last layer-0 list",
    );
    assert!(msg.contains("out of range"), "{msg}");
}
