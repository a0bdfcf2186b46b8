//! Damaged LHV1 blobs of 1, 8 and 64 MiB must be rejected with at most
//! 2 x the blob + 16 MiB allocated at the peak (process-wide, so the decoder's
//! helper thread counts too).
//!
//! The blobs are written here from docs/lhv1.md, not by the library: that is
//! fast at these sizes and keeps the test independent of the encoder. This
//! binary has one test so that nothing else allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use vectord::{lhv1, Error};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::SeqCst) + n;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        CURRENT.fetch_sub(l.size(), Ordering::SeqCst);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // Counted as a new block alongside the old one: that is the peak a
        // moving realloc reaches.
        grew(new);
        CURRENT.fetch_sub(l.size(), Ordering::SeqCst);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The result of `f` and the most bytes allocated at once while it ran,
/// above what was allocated when it started.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

const MIB: usize = 1 << 20;

/// One index shape and where its fields sit in the graph section.
struct Shape {
    dim: usize,
    m: usize,
}

/// A graph section (docs/lhv1.md, 3) and the offsets of its fields.
struct Graph {
    bytes: Vec<u8>,
    slots: usize,
    live: usize,
    id_count_at: usize,
    id_at: Vec<usize>,
    slots_at: usize,
    free_count_at: usize,
    vectors_at: usize,
    layer0_at: usize,
    upper_at: usize,
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn set32(v: &mut [u8], at: usize, x: u32) {
    v[at..at + 4].copy_from_slice(&x.to_le_bytes());
}
fn set64(v: &mut [u8], at: usize, x: u64) {
    v[at..at + 8].copy_from_slice(&x.to_le_bytes());
}

fn id(slot: usize) -> String {
    format!("id-{slot}")
}

/// About `target` bytes of graph section: slot 0 on level 1 (the entry
/// point), every 10th slot from 5 a tombstone, each layer-0 list linking to
/// the next two slots.
fn graph_section(s: &Shape, target: usize) -> Graph {
    let per_slot = 4 + 8 + 2 + 4 * s.dim + 4 * (1 + 2 * s.m);
    let n = (target / per_slot).max(3);
    let dead = |i: usize| i % 10 == 5;
    let mut b = Vec::with_capacity(target + 4096);
    put32(&mut b, 1);
    let id_count_at = b.len();
    put64(&mut b, n as u64);
    let mut id_at = Vec::with_capacity(n);
    let mut live = 0;
    for i in 0..n {
        id_at.push(b.len());
        if dead(i) {
            put32(&mut b, 0);
        } else {
            let t = id(i);
            put32(&mut b, t.len() as u32);
            b.extend_from_slice(t.as_bytes());
            live += 1;
        }
    }
    put32(&mut b, s.dim as u32);
    put32(&mut b, 1); // l2
    put32(&mut b, s.m as u32);
    put32(&mut b, 40);
    let slots_at = b.len();
    put64(&mut b, n as u64);
    put32(&mut b, 0); // entry point
    put64(&mut b, 100);
    let free: Vec<usize> = (0..n).filter(|&i| dead(i)).collect();
    let free_count_at = b.len();
    put64(&mut b, free.len() as u64);
    b.extend((0..n).map(|i| u8::from(i == 0)));
    b.extend((0..n).map(|i| u8::from(dead(i))));
    for &f in &free {
        put32(&mut b, f as u32);
    }
    let vectors_at = b.len();
    for i in 0..n * s.dim {
        b.extend_from_slice(&(((i * 7) % 13) as f32 - 6.0).to_le_bytes());
    }
    let layer0_at = b.len();
    for i in 0..n {
        put32(&mut b, 2);
        put32(&mut b, ((i + 1) % n) as u32);
        put32(&mut b, ((i + 2) % n) as u32);
        for _ in 2..2 * s.m {
            put32(&mut b, 0);
        }
    }
    let upper_at = b.len();
    put32(&mut b, 0);
    for _ in 0..s.m {
        put32(&mut b, 0);
    }
    Graph {
        bytes: b,
        slots: n,
        live,
        id_count_at,
        id_at,
        slots_at,
        free_count_at,
        vectors_at,
        layer0_at,
        upper_at,
    }
}

/// Frames a graph section with an envelope whose length and CRC match it,
/// into `out` (reused: at 64 MiB, fresh buffers per case are what is slow).
fn wrap_into(out: &mut Vec<u8>, s: &Shape, section: &[u8], count: usize, metadata: &str) {
    let env = format!(
        "{{\"version\":1,\"params\":{{\"name\":\"alloc\",\"dim\":{},\"metric\":\"l2\",\"m\":{},\"ef_construction\":40,\"ef_search\":16}},\"count\":{count},\"metadata\":{{{metadata}}},\"graph\":{{\"len\":{},\"crc32c\":{}}}}}",
        s.dim,
        s.m,
        section.len(),
        crc32c::crc32c(section)
    );
    out.clear();
    out.extend_from_slice(b"LHV1");
    out.extend_from_slice(&(env.len() as u32).to_be_bytes());
    out.extend_from_slice(env.as_bytes());
    out.extend_from_slice(section);
}

/// The work buffers of one blob size: a graph section and a whole blob.
#[derive(Default)]
struct Bufs {
    section: Vec<u8>,
    blob: Vec<u8>,
}

/// A metadata member for every live item.
fn all_metadata(g: &Graph) -> String {
    let mut md = String::new();
    for i in (0..g.slots).filter(|i| i % 10 != 5) {
        if !md.is_empty() {
            md.push(',');
        }
        md.push_str(&format!("\"{}\":{}", id(i), i % 7));
    }
    md
}

const METADATA: &str = "\"id-1\":{\"k\":1},\"id-2\":[1,2,3]";

/// The damaged variants of one blob, each written into `Bufs::blob` on
/// demand. Every one has its CRC fixed, so the damage itself is what the
/// decoder must catch, except "bad CRC".
type Case<'a> = (&'static str, Box<dyn Fn(&mut Bufs) + 'a>);

fn damaged<'a>(s: &'a Shape, g: &'a Graph, late_damage: bool) -> Vec<Case<'a>> {
    // The section patched by `f`, framed with a matching envelope.
    let patched_with = move |b: &mut Bufs, count: usize, md: &str, f: &dyn Fn(&mut Vec<u8>)| {
        b.section.clear();
        b.section.extend_from_slice(&g.bytes);
        f(&mut b.section);
        wrap_into(&mut b.blob, s, &b.section, count, md);
    };
    let patched =
        move |b: &mut Bufs, f: &dyn Fn(&mut Vec<u8>)| patched_with(b, g.live, METADATA, f);
    let ids_room = (g.bytes.len() - g.id_count_at - 8) as u64;
    let mut out: Vec<Case<'a>> = vec![
        // The most ids the old check (4 bytes each) let through.
        (
            "id count raised to remaining/4",
            Box::new(move |b| patched(b, &|v| set64(v, g.id_count_at, ids_room / 4))),
        ),
        (
            "id count doubled",
            Box::new(move |b| patched(b, &|v| set64(v, g.id_count_at, 2 * g.slots as u64))),
        ),
        (
            "id count 2^40",
            Box::new(move |b| patched(b, &|v| set64(v, g.id_count_at, 1 << 40))),
        ),
        (
            // The most slots per byte an ids section can claim.
            "every id empty, as many as fit",
            Box::new(move |b| {
                patched_with(b, 0, "", &|v| {
                    set64(v, g.id_count_at, ids_room / 4);
                    v[g.id_count_at + 8..].fill(0);
                })
            }),
        ),
        (
            "slot count raised",
            Box::new(move |b| patched(b, &|v| set64(v, g.slots_at, g.slots as u64 + 1))),
        ),
        (
            "free count raised",
            Box::new(move |b| patched(b, &|v| set64(v, g.free_count_at, g.slots as u64))),
        ),
        (
            // Metadata for every item makes the envelope big and its members
            // many and small: it must not be expanded before the damage is
            // found.
            "metadata on every item, id count raised",
            Box::new(move |b| {
                let md = all_metadata(g);
                patched_with(b, g.live, &md, &|v| set64(v, g.id_count_at, ids_room / 4))
            }),
        ),
        (
            "envelope count raised",
            Box::new(move |b| patched_with(b, g.live + 1, METADATA, &|_| {})),
        ),
        (
            "last id length raised",
            Box::new(move |b| patched(b, &|v| set32(v, g.id_at[g.slots - 1], 1000))),
        ),
        (
            "truncated to half",
            Box::new(move |b| {
                patched(b, &|_| {});
                b.blob.truncate(b.blob.len() / 2);
            }),
        ),
        (
            "graph section truncated, envelope matching",
            Box::new(move |b| patched(b, &|v| v.truncate(v.len() - 8))),
        ),
        (
            "bad CRC",
            Box::new(move |b| {
                patched(b, &|_| {});
                let at = b.blob.len() - g.bytes.len() + g.vectors_at + 1;
                b.blob[at] ^= 0x40;
            }),
        ),
        (
            "bytes after the last list",
            Box::new(move |b| patched(b, &|v| v.extend_from_slice(&[0; 64]))),
        ),
    ];
    if late_damage {
        // Damage found only while the big arrays are checked or the id table
        // is built: it may cost what the index it describes costs, which for
        // this shape is within the bound.
        let last_l0 = g.layer0_at + (g.slots - 1) * 4 * (1 + 2 * s.m);
        let last = (0..g.slots).rev().find(|&i| i % 10 != 5).unwrap();
        let twin = (1..g.slots)
            .find(|&i| i % 10 != 5 && id(i).len() == id(last).len())
            .unwrap();
        let late: Vec<Case<'a>> = vec![
            (
                "last layer-0 neighbour out of range",
                Box::new(move |b| patched(b, &|v| set32(v, last_l0 + 4, g.slots as u32))),
            ),
            (
                "last vector component NaN",
                Box::new(move |b| patched(b, &|v| set32(v, g.layer0_at - 4, f32::NAN.to_bits()))),
            ),
            (
                "upper list degree over m",
                Box::new(move |b| patched(b, &|v| set32(v, g.upper_at, s.m as u32 + 1))),
            ),
            (
                "last id repeats an earlier one",
                Box::new(move |b| {
                    patched(b, &|v| {
                        let at = g.id_at[last] + 4;
                        v[at..at + id(twin).len()].copy_from_slice(id(twin).as_bytes())
                    })
                }),
            ),
            (
                "metadata names a missing id",
                Box::new(move |b| patched_with(b, g.live, "\"nobody\":1", &|_| {})),
            ),
        ];
        out.extend(late);
    }
    out
}

#[test]
fn damaged_blobs_allocate_at_most_twice_their_size() {
    // Realistic vectors (dim 32, m 8): every damage, early or late. Tiny
    // vectors (dim 1, m 2) make the id table the biggest part of an index,
    // several times the blob: structural damage must still be rejected
    // before it is built.
    for (shape, late) in [
        (Shape { dim: 32, m: 8 }, true),
        (Shape { dim: 1, m: 2 }, false),
    ] {
        for size in [MIB, 8 * MIB, 64 * MIB] {
            let g = graph_section(&shape, size);
            let what = format!("dim {} m {}, {} MiB", shape.dim, shape.m, size / MIB);
            let mut bufs = Bufs::default();
            wrap_into(&mut bufs.blob, &shape, &g.bytes, g.live, METADATA);
            let idx =
                lhv1::decode(&bufs.blob).unwrap_or_else(|e| panic!("{what}: sound blob: {e}"));
            assert_eq!(idx.len(), g.live, "{what}");
            assert!(idx.get("id-1").unwrap().1.is_some(), "{what}");
            drop(idx);
            for (case, make) in damaged(&shape, &g, late) {
                make(&mut bufs);
                let blob = &bufs.blob;
                let (res, peak) = peak_of(|| lhv1::decode(blob));
                match res {
                    Err(Error::Corrupt(_)) => {}
                    other => panic!("{what}, {case}: expected Corrupt, got {other:?}"),
                }
                let bound = 2 * blob.len() + 16 * MIB;
                assert!(
                    peak <= bound,
                    "{what}, {case}: a {} byte blob made decode allocate {peak} bytes (bound {bound})",
                    blob.len()
                );
            }
        }
    }
}
