//! Point 17: compaction drops tombstones, shrinks memory and the saved
//! object, and keeps every live item and search quality.

mod common;

use std::collections::HashSet;

use common::*;
use vectord::index::AUTO_COMPACT_TOMBSTONE_FRACTION;
use vectord::{lhv1, Index, IndexParams, Metric};

const DIM: usize = 16;

fn build(n: usize) -> (Index, Vec<f32>, Vec<String>) {
    let idx = Index::new(IndexParams::new("c", DIM as u32, Metric::L2)).unwrap();
    idx.set_insert_threads(2);
    let base = clustered(n, DIM, 11);
    let ids = ids(n, "v");
    let md: Vec<String> = (0..n).map(|i| format!("{{\"n\":{i}}}")).collect();
    let md_refs: Vec<Option<&str>> = md.iter().map(|m| Some(m.as_str())).collect();
    idx.add(&refs(&ids), &base, Some(&md_refs)).unwrap();
    (idx, base, ids)
}

fn recall_at_10(idx: &Index, base: &[f32], queries: &[f32], live: &dyn Fn(usize) -> bool) -> f64 {
    let (mut hit, mut total) = (0usize, 0usize);
    for q in queries.chunks_exact(DIM) {
        let truth: HashSet<String> = brute_force(Metric::L2, base, DIM, q, 10, &|i| !live(i))
            .into_iter()
            .map(|i| format!("v{i}"))
            .collect();
        let got = idx.search(q, 10, None).unwrap();
        hit += got.iter().filter(|h| truth.contains(&*h.id)).count();
        total += truth.len();
    }
    hit as f64 / total as f64
}

#[test]
fn removing_90_percent_then_compacting_shrinks_object_and_memory_and_keeps_items_and_recall() {
    let n = 6000;
    let (idx, base, ids) = build(n);
    let blob_before = lhv1::encode(&idx).unwrap().len();
    let mem_before = idx.memory_bytes();
    let live = |i: usize| i % 10 == 3;
    let gone: Vec<&str> = (0..n)
        .filter(|&i| !live(i))
        .map(|i| ids[i].as_str())
        .collect();
    assert_eq!(idx.remove(&gone).unwrap(), gone.len());
    assert!((idx.tombstone_fraction() - 0.9).abs() < 1e-9);
    // Removal alone keeps everything (the problem of point 17).
    assert!(lhv1::encode(&idx).unwrap().len() * 10 > blob_before * 9);

    let v0 = idx.version();
    let stats = idx.compact().unwrap();
    assert_eq!(stats.slots_before, n);
    assert_eq!(stats.slots_after, n / 10);
    assert!(idx.version() > v0, "a compaction is a change to save");
    assert_eq!(idx.tombstone_fraction(), 0.0);
    idx.check_graph().unwrap();

    let blob_after = lhv1::encode(&idx).unwrap().len();
    let mem_after = idx.memory_bytes();
    assert!(
        blob_after * 100 <= blob_before * 13,
        "object {blob_before} -> {blob_after} bytes"
    );
    assert!(
        mem_after * 100 <= mem_before * 20,
        "memory {mem_before} -> {mem_after} bytes"
    );
    assert!(stats.bytes_freed >= (mem_before - mem_after) / 2);

    assert_eq!(idx.len(), n / 10);
    for (i, id) in ids.iter().enumerate() {
        if live(i) {
            let (v, md) = idx.get(id).unwrap();
            assert_eq!(v, &base[i * DIM..(i + 1) * DIM], "vector of {id}");
            assert_eq!(md.as_deref(), Some(format!("{{\"n\":{i}}}").as_str()));
            let top = idx.search(&v, 1, None).unwrap();
            assert_eq!(&*top[0].id, id.as_str(), "self-query of {id}");
        } else {
            assert!(!idx.contains(id));
        }
    }
    let queries = clustered(200, DIM, 99);
    let r = recall_at_10(&idx, &base, &queries, &live);
    assert!(r >= 0.95, "recall@10 after compaction {r}");

    // The blob round-trips, and the index keeps working.
    let back = lhv1::decode(&lhv1::encode(&idx).unwrap()).unwrap();
    assert_eq!(back.len(), n / 10);
    back.check_graph().unwrap();
    let extra = clustered(300, DIM, 5);
    let extra_ids = common::ids(300, "x");
    idx.add(&refs(&extra_ids), &extra, None).unwrap();
    idx.check_graph().unwrap();
    for (i, id) in extra_ids.iter().enumerate() {
        let top = idx.search(&extra[i * DIM..(i + 1) * DIM], 1, None).unwrap();
        assert_eq!(&*top[0].id, id.as_str());
    }
}

#[test]
fn compacting_without_tombstones_changes_nothing() {
    let (idx, _, _) = build(300);
    let blob = lhv1::encode(&idx);
    let v0 = idx.version();
    let stats = idx.compact().unwrap();
    assert_eq!(
        (stats.slots_before, stats.slots_after, stats.bytes_freed),
        (300, 300, 0)
    );
    assert_eq!(idx.version(), v0);
    assert_eq!(lhv1::encode(&idx), blob);
}

#[test]
fn compacting_after_removing_everything_leaves_an_empty_usable_index() {
    let (idx, base, ids) = build(400);
    idx.remove(&refs(&ids)).unwrap();
    let stats = idx.compact().unwrap();
    assert_eq!(stats.slots_after, 0);
    assert!(idx.is_empty());
    assert!(idx.search(&base[..DIM], 5, None).unwrap().is_empty());
    idx.add(&refs(&ids[..100]), &base[..100 * DIM], None)
        .unwrap();
    idx.check_graph().unwrap();
    assert_eq!(
        idx.search(&base[..DIM], 1, None).unwrap()[0].id.as_ref(),
        "v0"
    );
}

#[test]
fn compaction_when_the_entry_point_was_removed_and_upserts_after() {
    let (idx, base, ids) = build(2000);
    // Removing 70% (above the auto-compaction threshold) almost surely
    // takes the entry point: keep only every third item.
    let gone: Vec<&str> = (0..2000)
        .filter(|i| i % 3 != 0)
        .map(|i| ids[i].as_str())
        .collect();
    idx.remove(&gone).unwrap();
    assert!(idx.tombstone_fraction() > AUTO_COMPACT_TOMBSTONE_FRACTION);
    idx.compact().unwrap();
    idx.check_graph().unwrap();
    // Upsert some survivors with new vectors.
    let mut r = Rng(4);
    let up: Vec<&str> = (0..2000).step_by(30).map(|i| ids[i].as_str()).collect();
    let vecs: Vec<f32> = (0..up.len() * DIM).map(|_| r.f32()).collect();
    idx.add(&up, &vecs, None).unwrap();
    idx.check_graph().unwrap();
    for (j, id) in up.iter().enumerate() {
        let top = idx.search(&vecs[j * DIM..(j + 1) * DIM], 1, None).unwrap();
        assert_eq!(&*top[0].id, *id);
    }
    let _ = base;
}

/// Metadata is kept per slot only once some item has it: items added before
/// the first metadata, after it, upserted with and without it, removed and
/// compacted all keep exactly their own, through an encode and decode.
#[test]
fn metadata_arriving_late_survives_upsert_compaction_and_decode() {
    let idx = Index::new(IndexParams::new("late", DIM as u32, Metric::L2)).unwrap();
    let base = clustered(300, DIM, 5);
    let names = ids(300, "v");
    let row = |i: usize| &base[i * DIM..(i + 1) * DIM];
    // 0..100 without metadata: no per-slot metadata yet.
    let first: Vec<&str> = refs(&names)[..100].to_vec();
    idx.add(&first, &base[..100 * DIM], None).unwrap();
    let none_bytes = idx.memory_bytes();
    // 100..200 with metadata.
    let md: Vec<String> = (100..200).map(|i| format!("{{\"n\":{i}}}")).collect();
    let md_refs: Vec<Option<&str>> = md.iter().map(|m| Some(m.as_str())).collect();
    idx.add(
        &refs(&names)[100..200],
        &base[100 * DIM..200 * DIM],
        Some(&md_refs),
    )
    .unwrap();
    assert!(idx.memory_bytes() > none_bytes);
    // 200..300 without; then v5 gains metadata and v150 loses it by upsert.
    idx.add(&refs(&names)[200..300], &base[200 * DIM..], None)
        .unwrap();
    idx.add(&["v5"], row(5), Some(&[Some("{\"n\":5}")]))
        .unwrap();
    idx.add(&["v150"], row(150), None).unwrap();
    let want = |i: usize| -> Option<String> {
        ((100..200).contains(&i) && i != 150 || i == 5).then(|| format!("{{\"n\":{i}}}"))
    };
    for i in (0..300).step_by(2) {
        assert_eq!(idx.remove(&[names[i].as_str()]).unwrap(), 1);
    }
    idx.compact().unwrap();
    let back = lhv1::decode(&lhv1::encode(&idx).unwrap()).unwrap();
    for index in [&idx, &back] {
        assert_eq!(index.len(), 150);
        for i in (1..300).step_by(2) {
            let (v, m) = index.get(&names[i]).unwrap();
            assert_eq!(v, row(i), "{}", names[i]);
            assert_eq!(m.as_deref(), want(i).as_deref(), "{}", names[i]);
            let hit = &index.search(row(i), 1, None).unwrap()[0];
            assert_eq!(hit.metadata.as_deref(), want(i).as_deref());
        }
    }
}
