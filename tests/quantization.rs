//! quantization = int8: recall next to the f32 index at the same ef, exact
//! distances after the re-rank, the training rule, and the retrain at
//! compaction.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use vectord::hnsw::quant::QUANT_TRAIN_MIN;
use vectord::{lhv1, Index, IndexParams, Metric, Quantization};

fn build(metric: Metric, q: Quantization, base: &[f32], dim: usize) -> Index {
    let mut p = IndexParams::new("q", dim as u32, metric);
    p.quantization = q;
    let idx = Index::new(p).unwrap();
    idx.set_insert_threads(1);
    let all = ids(base.len() / dim, "v");
    idx.add(&refs(&all), base, None).unwrap();
    idx
}

fn recall(idx: &Index, base: &[f32], dim: usize, queries: &[f32], ef: u32) -> f64 {
    let (mut hit, mut total) = (0, 0);
    for q in queries.chunks_exact(dim) {
        let truth: HashSet<String> = brute_force(idx.metric(), base, dim, q, 10, &|_| false)
            .into_iter()
            .map(|i| format!("v{i}"))
            .collect();
        let got = idx.search(q, 10, Some(ef)).unwrap();
        hit += got.iter().filter(|h| truth.contains(&*h.id)).count();
        total += truth.len();
    }
    hit as f64 / total as f64
}

/// The graph is built in f32 either way (one thread, same seed), so the two
/// indexes differ only in the search walk.
#[test]
fn int8_recall_is_within_001_of_f32_at_the_same_ef() {
    let dim = 48;
    let base = embedded(4000, dim, 1);
    let queries = embedded(150, dim, 2);
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let f = build(metric, Quantization::None, &base, dim);
        let q = build(metric, Quantization::Int8, &base, dim);
        assert!(q.quantizer_trained() && !f.quantizer_trained());
        for ef in [10, 16, 64] {
            let rf = recall(&f, &base, dim, &queries, ef);
            let rq = recall(&q, &base, dim, &queries, ef);
            eprintln!("{metric:?} ef {ef}: f32 recall {rf:.4}, int8 {rq:.4}");
            assert!(rq >= rf - 0.01, "{metric:?} ef {ef}: f32 {rf}, int8 {rq}");
        }
    }
}

/// Every returned distance is the exact f32 one (bit for bit what the f32
/// index computes for that item), and a stored vector comes back first at
/// distance 0 under l2.
#[test]
fn int8_distances_are_exact_after_the_rerank() {
    let dim = 40;
    let n = 2500;
    let base = clustered(n, dim, 5);
    let queries = clustered(40, dim, 6);
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let f = build(metric, Quantization::None, &base, dim);
        let q = build(metric, Quantization::Int8, &base, dim);
        for query in queries.chunks_exact(dim) {
            // ef >= len: the f32 index scans every item exactly.
            let all: HashMap<String, u32> = f
                .search(query, n, Some(n as u32))
                .unwrap()
                .into_iter()
                .map(|h| (h.id.to_string(), h.distance.to_bits()))
                .collect();
            let hits = q.search(query, 10, Some(32)).unwrap();
            assert_eq!(hits.len(), 10);
            for h in &hits {
                assert_eq!(
                    h.distance.to_bits(),
                    all[&*h.id],
                    "{metric:?}: {} at {}",
                    h.id,
                    h.distance
                );
            }
            assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
        }
        if metric == Metric::L2 {
            for i in (0..n).step_by(97) {
                let hits = q
                    .search(&base[i * dim..(i + 1) * dim], 3, Some(16))
                    .unwrap();
                assert_eq!(hits[0].id.as_ref(), format!("v{i}"));
                assert_eq!(hits[0].distance, 0.0);
            }
        }
    }
}

/// Below QUANT_TRAIN_MIN items an int8 index is untrained and searches in
/// f32 (answers identical to an unquantized index); the add that reaches it
/// trains on everything held; compaction retrains, or forgets the quantizer
/// when it leaves fewer items than that.
#[test]
fn the_quantizer_is_trained_at_the_documented_points() {
    let dim = 16;
    let base = clustered(QUANT_TRAIN_MIN + 200, dim, 9);
    let all = ids(QUANT_TRAIN_MIN + 200, "v");
    let mut p = IndexParams::new("t", dim as u32, Metric::L2);
    p.quantization = Quantization::Int8;
    let q = Index::new(p).unwrap();
    let f = Index::new(IndexParams::new("t", dim as u32, Metric::L2)).unwrap();
    q.set_insert_threads(1);
    f.set_insert_threads(1);
    let small = 10;
    for idx in [&q, &f] {
        idx.add(&refs(&all[..1]), &base[..dim], None).unwrap();
        idx.add(&refs(&all[1..small]), &base[dim..small * dim], None)
            .unwrap();
    }
    assert!(!q.quantizer_trained());
    let probe = &base[3 * dim..4 * dim];
    assert_eq!(
        q.search(probe, 5, None).unwrap(),
        f.search(probe, 5, None).unwrap()
    );
    let below = QUANT_TRAIN_MIN - 1;
    q.add(
        &refs(&all[small..below]),
        &base[small * dim..below * dim],
        None,
    )
    .unwrap();
    assert!(!q.quantizer_trained(), "{below} items: not yet");
    q.add(&refs(&all[below..]), &base[below * dim..], None)
        .unwrap();
    assert!(q.quantizer_trained());
    q.check_graph().unwrap();
    // The trained state travels and stays put through later adds.
    let back = lhv1::decode(&lhv1::encode(&q).unwrap()).unwrap();
    assert!(back.quantizer_trained());
    // Compaction with enough items left retrains (exact matches still come
    // back first at 0); with too few it goes back to the f32 walk.
    q.remove(&refs(&all[..100])).unwrap();
    q.compact().unwrap();
    assert!(q.quantizer_trained());
    q.check_graph().unwrap();
    let hits = q.search(&base[500 * dim..501 * dim], 1, Some(16)).unwrap();
    assert_eq!((hits[0].id.as_ref(), hits[0].distance), ("v500", 0.0));
    q.remove(&refs(&all[100..400])).unwrap();
    q.compact().unwrap();
    assert!(q.len() < QUANT_TRAIN_MIN && !q.quantizer_trained());
    let hits = q.search(&base[500 * dim..501 * dim], 1, Some(16)).unwrap();
    assert_eq!((hits[0].id.as_ref(), hits[0].distance), ("v500", 0.0));
}

/// Upserts after training encode with the fixed quantizer (values outside
/// its range clamp) and are still found, at their exact distance.
#[test]
fn inserts_after_training_use_the_fixed_quantizer() {
    let dim = 16;
    let n = QUANT_TRAIN_MIN + 100;
    let base = clustered(n, dim, 13);
    let q = build(Metric::L2, Quantization::Int8, &base, dim);
    let before = lhv1::encode(&q).unwrap();
    // Slightly beyond every trained range: clamps on encode.
    let outlier: Vec<f32> = base[..dim].iter().map(|x| x * 1.5 + 0.3).collect();
    q.add(&["v0"], &outlier, None).unwrap();
    let hits = q.search(&outlier, 1, Some(64)).unwrap();
    assert_eq!((hits[0].id.as_ref(), hits[0].distance), ("v0", 0.0));
    // Removed slots are reused by new items: their codes are rewritten
    // (check_graph compares every slot's codes with its vector's).
    let gone = ids(200, "v");
    q.remove(&refs(&gone[1..])).unwrap();
    let fresh = clustered(150, dim, 14);
    let fresh_ids = ids(150, "w");
    q.add(&refs(&fresh_ids), &fresh, None).unwrap();
    q.check_graph().unwrap();
    for i in (0..150).step_by(7) {
        let hits = q
            .search(&fresh[i * dim..(i + 1) * dim], 1, Some(64))
            .unwrap();
        assert_eq!((&*hits[0].id, hits[0].distance), (&*fresh_ids[i], 0.0));
    }
    // The quantizer in the blob did not change: the graph section's tail
    // (flag + offsets + scales) is the same bytes.
    let after = lhv1::encode(&q).unwrap();
    let tail = 1 + 8 * dim;
    assert_eq!(before[before.len() - tail..], after[after.len() - tail..]);
}
