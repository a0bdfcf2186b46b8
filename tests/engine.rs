//! The engine and Index rules of the engine issue, one test per rule.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use vectord::{Error, Index, IndexParams, Metric, Registry};

fn index(metric: Metric, dim: u32) -> Index {
    Index::new(IndexParams::new("t", dim, metric)).unwrap()
}

fn recall_at_10(
    idx: &Index,
    base: &[f32],
    dim: usize,
    queries: &[f32],
    skip: &dyn Fn(usize) -> bool,
) -> f64 {
    let mut hit = 0usize;
    let mut total = 0usize;
    for q in queries.chunks_exact(dim) {
        let truth: HashSet<String> = brute_force(idx.metric(), base, dim, q, 10, skip)
            .into_iter()
            .map(|i| format!("v{i}"))
            .collect();
        let got = idx.search(q, 10, Some(64)).unwrap();
        hit += got.iter().filter(|h| truth.contains(&*h.id)).count();
        total += truth.len();
    }
    hit as f64 / total as f64
}

#[test]
fn recall_at_ef64_on_5000_x_32_reaches_095() {
    let dim = 32;
    let base = embedded(5000, dim, 1);
    let queries = embedded(200, dim, 2);
    for metric in [Metric::L2, Metric::Cosine] {
        let idx = index(metric, dim as u32);
        let ids = ids(5000, "v");
        idx.add(&refs(&ids), &base, None).unwrap();
        assert_eq!(idx.len(), 5000);
        let r = recall_at_10(&idx, &base, dim, &queries, &|_| false);
        assert!(r >= 0.95, "{metric:?} recall@10 {r}");
    }
}

#[test]
fn stored_vectors_come_back_first_at_distance_zero() {
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        for (n, need) in [(100usize, 1.0f64), (5000, 0.99)] {
            let dim = 24;
            // Unit vectors, so that under dot a vector is its own nearest.
            let base = normalized(clustered(n, dim, 3), dim);
            let idx = index(metric, dim as u32);
            let ids = ids(n, "v");
            idx.add(&refs(&ids), &base, None).unwrap();
            let mut ok = 0;
            for (i, q) in base.chunks_exact(dim).enumerate() {
                let hits = idx.search(q, 1, Some(64)).unwrap();
                let h = &hits[0];
                let exact = match metric {
                    Metric::L2 => h.distance == 0.0,
                    _ => h.distance.abs() <= 1e-6,
                };
                if *h.id == ids[i] && exact {
                    ok += 1;
                }
            }
            let frac = ok as f64 / n as f64;
            assert!(frac >= need, "{metric:?} n={n}: {frac}");
        }
    }
}

#[test]
fn upsert_keeps_len_and_returns_the_new_vector() {
    let idx = index(Metric::L2, 4);
    idx.add(
        &["a", "b"],
        &[1., 0., 0., 0., 0., 1., 0., 0.],
        Some(&[Some("{\"v\":1}"), None]),
    )
    .unwrap();
    idx.add(&["a"], &[0., 0., 5., 0.], Some(&[Some("[2]")]))
        .unwrap();
    assert_eq!(idx.len(), 2);
    let (v, md) = idx.get("a").unwrap();
    assert_eq!(v, vec![0., 0., 5., 0.]);
    assert_eq!(md.as_deref(), Some("[2]"));
    let hits = idx.search(&[0., 0., 5., 0.], 2, None).unwrap();
    assert_eq!(&*hits[0].id, "a");
    assert_eq!(hits[0].distance, 0.0);
    assert_eq!(hits.len(), 2);
    // The old vector is gone for good.
    let hits = idx.search(&[1., 0., 0., 0.], 2, None).unwrap();
    assert!(hits.iter().all(|h| h.distance > 0.0));
}

type Case<'a> = (
    Vec<&'a str>,
    Vec<f32>,
    Option<Vec<Option<&'a str>>>,
    fn(&Error) -> bool,
    &'a str,
);

#[test]
fn every_validation_failure_commits_nothing() {
    let idx = index(Metric::Cosine, 3);
    idx.add(&["keep"], &[1., 2., 3.], Some(&[Some("{\"a\":1}")]))
        .unwrap();
    let long = "x".repeat(1025);
    let big_md = format!("\"{}\"", "y".repeat(64 * 1024));
    let cases: Vec<Case> = vec![
        (
            vec!["n1", ""],
            vec![1., 1., 1., 1., 1., 1.],
            None,
            |e| matches!(e, Error::InvalidArgument(_)),
            "item 1",
        ),
        (
            vec!["n1", &long],
            vec![1., 1., 1., 1., 1., 1.],
            None,
            |e| matches!(e, Error::InvalidArgument(_)),
            "item 1",
        ),
        (
            vec!["n1", "n1"],
            vec![1., 1., 1., 1., 1., 1.],
            None,
            |e| matches!(e, Error::InvalidArgument(_)),
            "twice",
        ),
        (
            vec!["n1", "keep"],
            vec![1., 1., 1., 1., 1.],
            None,
            |e| matches!(e, Error::DimensionMismatch(_)),
            "components",
        ),
        (
            vec!["n1", "keep"],
            vec![1., 1., 1., 1., f32::NAN, 1.],
            None,
            |e| matches!(e, Error::InvalidVector(_)),
            "item 1",
        ),
        (
            vec!["n1", "keep"],
            vec![1., 1., 1., f32::INFINITY, 1., 1.],
            None,
            |e| matches!(e, Error::InvalidVector(_)),
            "item 1",
        ),
        (
            vec!["n1", "keep"],
            vec![1., 1., 1., 0., 0., 0.],
            None,
            |e| matches!(e, Error::InvalidVector(_)),
            "zero vector",
        ),
        (
            vec!["n1", "keep"],
            vec![1., 1., 1., 2., 2., 2.],
            Some(vec![None, Some("{not json")]),
            |e| matches!(e, Error::InvalidArgument(_)),
            "not valid JSON",
        ),
        (
            vec!["n1", "keep"],
            vec![1., 1., 1., 2., 2., 2.],
            Some(vec![None, Some(&big_md)]),
            |e| matches!(e, Error::InvalidArgument(_)),
            "metadata is",
        ),
        (
            vec!["n1", "keep"],
            vec![1., 1., 1., 2., 2., 2.],
            Some(vec![None]),
            |e| matches!(e, Error::InvalidArgument(_)),
            "metadata entries",
        ),
        (
            vec!["n1", "a\0b"],
            vec![1., 1., 1., 2., 2., 2.],
            None,
            |e| matches!(e, Error::InvalidArgument(_)),
            "NUL",
        ),
    ];
    for (i, (ids, vecs, md, kind, text)) in cases.into_iter().enumerate() {
        let err = idx.add(&ids, &vecs, md.as_deref()).unwrap_err();
        assert!(kind(&err), "case {i}: wrong kind {err:?}");
        assert!(
            err.to_string().contains(text),
            "case {i}: {err} lacks {text:?}"
        );
        assert_eq!(idx.len(), 1, "case {i} committed something");
        assert!(!idx.contains("n1"));
        let (v, md) = idx.get("keep").unwrap();
        assert!(
            (v[2] - 3.0 / 14f32.sqrt()).abs() < 1e-6,
            "case {i} changed keep"
        );
        assert_eq!(md.as_deref(), Some("{\"a\":1}"));
    }
    assert_eq!(idx.version(), 1);
}

#[test]
fn queries_are_checked_and_edge_cases_are_not_errors() {
    let idx = index(Metric::Cosine, 3);
    assert!(idx.search(&[1., 0., 0.], 5, None).unwrap().is_empty());
    idx.add(&["a", "b"], &[1., 0., 0., 0., 1., 0.], None)
        .unwrap();
    assert_eq!(idx.search(&[1., 0., 0.], 50, None).unwrap().len(), 2);
    assert!(matches!(
        idx.search(&[1., 0.], 1, None),
        Err(Error::DimensionMismatch(_))
    ));
    assert!(matches!(
        idx.search(&[0., 0., 0.], 1, None),
        Err(Error::InvalidVector(_))
    ));
    assert!(matches!(
        idx.search(&[f32::NAN, 0., 0.], 1, None),
        Err(Error::InvalidVector(_))
    ));
    assert!(matches!(
        idx.search(&[1., 0., 0.], 0, None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        idx.search(&[1., 0., 0.], 1, Some(0)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        idx.set_ef_search(0),
        Err(Error::InvalidArgument(_))
    ));
    idx.set_ef_search(300).unwrap();
    assert_eq!(idx.params().ef_search, 300);
    let batch = idx
        .search_batch(&[1., 0., 0., 0., 1., 0.], 1, None)
        .unwrap();
    assert_eq!(&*batch[0][0].id, "a");
    assert_eq!(&*batch[1][0].id, "b");
    let err = idx
        .search_batch(&[1., 0., 0., 0., 0., 0.], 1, None)
        .unwrap_err();
    assert!(err.to_string().contains("query 1"), "{err}");
    assert!(matches!(idx.get("zz"), Err(Error::NotFound(_))));
    for bad in [
        IndexParams {
            dim: 0,
            ..IndexParams::new("x", 1, Metric::L2)
        },
        IndexParams {
            dim: 65537,
            ..IndexParams::new("x", 1, Metric::L2)
        },
        IndexParams {
            m: 1,
            ..IndexParams::new("x", 1, Metric::L2)
        },
        IndexParams {
            ef_construction: 0,
            ..IndexParams::new("x", 1, Metric::L2)
        },
        IndexParams::new("", 1, Metric::L2),
    ] {
        assert!(matches!(Index::new(bad), Err(Error::InvalidArgument(_))));
    }
}

#[test]
fn search_batch_matches_single_searches() {
    let dim = 16;
    let base = clustered(2000, dim, 5);
    let idx = index(Metric::L2, dim as u32);
    let ids = ids(2000, "v");
    idx.add(&refs(&ids), &base, None).unwrap();
    let queries = clustered(64, dim, 6);
    let batch = idx.search_batch(&queries, 7, None).unwrap();
    assert_eq!(batch.len(), 64);
    for (q, hits) in queries.chunks_exact(dim).zip(&batch) {
        assert_eq!(&idx.search(q, 7, None).unwrap(), hits);
    }
}

#[test]
fn removing_30_percent_keeps_recall_of_a_fresh_build() {
    let dim = 32;
    let n = 5000;
    let base = clustered(n, dim, 7);
    let queries = clustered(200, dim, 8);
    let all = ids(n, "v");
    let idx = index(Metric::L2, dim as u32);
    idx.add(&refs(&all), &base, None).unwrap();
    let removed = |i: usize| i % 10 < 3;
    let gone: Vec<&str> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| removed(*i))
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(idx.remove(&gone).unwrap(), 1500);
    assert_eq!(idx.remove(&gone).unwrap(), 0, "a second remove is a no-op");
    assert_eq!(idx.len(), 3500);
    for q in queries.chunks_exact(dim) {
        for h in idx.search(q, 50, None).unwrap() {
            let i: usize = h.id[1..].parse().unwrap();
            assert!(!removed(i), "removed item {} returned", h.id);
        }
    }
    let after = recall_at_10(&idx, &base, dim, &queries, &removed);

    let fresh = index(Metric::L2, dim as u32);
    let keep_ids: Vec<&str> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !removed(*i))
        .map(|(_, s)| s.as_str())
        .collect();
    let keep_vecs: Vec<f32> = base
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| !removed(*i))
        .flat_map(|(_, v)| v.to_vec())
        .collect();
    fresh.add(&keep_ids, &keep_vecs, None).unwrap();
    let fresh_r = recall_at_10(&fresh, &base, dim, &queries, &removed);
    assert!(
        after >= fresh_r - 0.02,
        "after remove {after}, fresh {fresh_r}"
    );

    // Slots are reused: adding as many items back does not grow the graph.
    let before = idx.memory_bytes();
    let back: Vec<String> = (0..1500).map(|i| format!("w{i}")).collect();
    idx.add(&refs(&back), &clustered(1500, dim, 9), None)
        .unwrap();
    assert_eq!(idx.len(), 5000);
    assert!(
        idx.memory_bytes() <= before + 1500 * 40,
        "slots were not reused"
    );
    // Recall over what is live now (the survivors and the new items).
    let new_vecs = clustered(1500, dim, 9);
    let mut live_ids: Vec<String> = keep_ids.iter().map(|s| s.to_string()).collect();
    live_ids.extend(back.iter().cloned());
    let mut live_vecs = keep_vecs.clone();
    live_vecs.extend_from_slice(&new_vecs);
    let truth_recall = |idx: &Index| {
        let mut hit = 0;
        for q in queries.chunks_exact(dim) {
            let truth: HashSet<&str> = brute_force(Metric::L2, &live_vecs, dim, q, 10, &|_| false)
                .into_iter()
                .map(|i| live_ids[i].as_str())
                .collect();
            hit += idx
                .search(q, 10, Some(64))
                .unwrap()
                .iter()
                .filter(|h| truth.contains(&*h.id))
                .count();
        }
        hit as f64 / (queries.len() / dim * 10) as f64
    };
    let fresh2 = index(Metric::L2, dim as u32);
    fresh2.add(&refs(&live_ids), &live_vecs, None).unwrap();
    let (r2, f2) = (truth_recall(&idx), truth_recall(&fresh2));
    assert!(
        r2 >= f2 - 0.02,
        "after re-adding into reused slots {r2}, fresh build {f2}"
    );
}

#[test]
fn removing_everything_then_adding_works() {
    let idx = index(Metric::L2, 2);
    let ids = ids(300, "v");
    let vecs = clustered(300, 2, 11);
    idx.add(&refs(&ids), &vecs, None).unwrap();
    idx.remove(&refs(&ids)).unwrap();
    assert!(idx.is_empty());
    assert!(idx.search(&[0.5, 0.5], 3, None).unwrap().is_empty());
    idx.add(&refs(&ids[..10]), &vecs[..20], None).unwrap();
    let hits = idx.search(&vecs[..2], 10, None).unwrap();
    assert_eq!(hits.len(), 10);
    assert_eq!(&*hits[0].id, "v0");
}

#[test]
fn single_threaded_builds_are_reproducible() {
    let dim = 8;
    let base = clustered(1500, dim, 12);
    let ids = ids(1500, "v");
    let build = || {
        let idx = Index::with_seed(IndexParams::new("r", dim as u32, Metric::L2), 42).unwrap();
        idx.set_insert_threads(1);
        idx.add(&refs(&ids), &base, None).unwrap();
        idx
    };
    let (a, b) = (build(), build());
    assert_eq!(a.snapshot().graph, b.snapshot().graph);
}

#[test]
fn readers_and_writers_run_together() {
    let dim = 16;
    let idx = Arc::new(index(Metric::Cosine, dim as u32));
    let base = clustered(3000, dim, 13);
    let ids0 = ids(1000, "v");
    idx.add(&refs(&ids0), &base[..1000 * dim], None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let searches = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for t in 0..8 {
        let (idx, stop, searches) = (idx.clone(), stop.clone(), searches.clone());
        let q = base[t * dim..(t + 1) * dim].to_vec();
        handles.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let hits = idx.search(&q, 10, None).unwrap();
                assert!(!hits.is_empty() && hits.len() <= 10);
                for w in hits.windows(2) {
                    assert!(w[0].distance <= w[1].distance);
                }
                for h in &hits {
                    assert!(h.id.starts_with('v') || h.id.starts_with('w'));
                    assert!(h.distance.is_finite());
                }
                searches.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in 0..2 {
        let (idx, stop) = (idx.clone(), stop.clone());
        let base = base.clone();
        handles.push(std::thread::spawn(move || {
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let lo = 1000 + (round * 50 + w * 25) % 2000;
                let ids: Vec<String> = (lo..lo + 25).map(|i| format!("w{i}")).collect();
                idx.add(&refs(&ids), &base[lo * dim..(lo + 25) * dim], None)
                    .unwrap();
                let gone: Vec<String> = (lo..lo + 10).map(|i| format!("w{i}")).collect();
                idx.remove(&refs(&gone)).unwrap();
                round += 1;
            }
        }));
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    assert!(searches.load(Ordering::Relaxed) > 100);
    assert!(idx.len() >= 1000);
}

#[test]
fn registry_lifecycle() {
    let r = Registry::open(None, None).unwrap();
    let a = r.create(IndexParams::new("b", 3, Metric::L2)).unwrap();
    r.create(IndexParams::new("a", 3, Metric::Dot)).unwrap();
    assert!(matches!(
        r.create(IndexParams::new("a", 3, Metric::Dot)),
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(r.names(), vec!["a", "b"]);
    assert!(Arc::ptr_eq(&r.get("b").unwrap(), &a));
    assert!(matches!(r.get("zz"), Err(Error::NotFound(_))));
    r.delete("b").unwrap();
    assert!(matches!(r.delete("b"), Err(Error::NotFound(_))));
    // A handle outlives its registry entry.
    a.add(&["x"], &[1., 2., 3.], None).unwrap();
    assert_eq!(a.len(), 1);
    let pre = Index::new(IndexParams::new("c", 2, Metric::L2)).unwrap();
    let blob = vectord::lhv1::encode(&pre);
    r.import(&blob).unwrap();
    assert!(matches!(r.import(&blob), Err(Error::AlreadyExists(_))));
    assert_eq!(r.names(), vec!["a", "c"]);
    assert!(matches!(
        r.create(IndexParams::new("", 3, Metric::L2)),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn index_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Index>();
    check::<Registry>();
}

#[test]
fn k_at_least_len_returns_every_live_item() {
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let dim = 8;
        let n = 300;
        let base = normalized(clustered(n, dim, 41), dim);
        let idx = index(metric, dim as u32);
        let all = ids(n, "v");
        idx.add(&refs(&all), &base, None).unwrap();
        idx.remove(&refs(&all[..30])).unwrap();
        for q in base.chunks_exact(dim).take(20) {
            let hits = idx.search(q, 1000, None).unwrap();
            assert_eq!(hits.len(), 270, "{metric:?}");
            let unique: HashSet<&str> = hits.iter().map(|h| &*h.id).collect();
            assert_eq!(unique.len(), 270);
            assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
            assert!(hits
                .iter()
                .all(|h| h.id[1..].parse::<usize>().unwrap() >= 30));
        }
    }
}
