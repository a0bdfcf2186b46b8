//! A bulk build ends with the slots renumbered for locality
//! (src/hnsw/reorder.rs): every id must keep its vector and metadata, and
//! searches, filters, encode and decode must see the same items.

mod common;

use common::*;
use vectord::index::REORDER_MIN_ITEMS;
use vectord::{lhv1, Filter, Index, IndexParams, Metric};

const DIM: usize = 8;

#[test]
fn a_bulk_build_reorders_and_every_item_keeps_its_vector_and_metadata() {
    let n = REORDER_MIN_ITEMS + 2_000;
    let idx = Index::new(IndexParams::new("r", DIM as u32, Metric::L2)).unwrap();
    idx.set_insert_threads(2);
    let base = clustered(n, DIM, 3);
    let names = ids(n, "v");
    let md: Vec<String> = (0..n)
        .map(|i| format!("{{\"n\":{i},\"odd\":{}}}", i % 2))
        .collect();
    let md_refs: Vec<Option<&str>> = md.iter().map(|m| Some(m.as_str())).collect();
    idx.add(&refs(&names), &base, Some(&md_refs)).unwrap();
    idx.check_graph().unwrap();
    // A later small batch (no reordering) and an upsert.
    idx.add(
        &["extra"],
        &base[..DIM],
        Some(&[Some("{\"n\":-1,\"odd\":0}")]),
    )
    .unwrap();
    let blob = lhv1::encode(&idx).unwrap();
    let back = lhv1::decode(&blob).unwrap();
    // Decoding does not reorder: encoding again gives the same bytes.
    assert!(
        lhv1::encode(&back).unwrap() == blob,
        "the round trip changed the blob"
    );
    let odd = Filter::new("{\"odd\": 1}").unwrap();
    for index in [&idx, &back] {
        assert_eq!(index.len(), n + 1);
        assert_eq!(index.count(Some(&odd)).unwrap(), n / 2);
        let mut self_found = 0;
        for i in 0..n {
            let row = &base[i * DIM..(i + 1) * DIM];
            let (v, m) = index.get(&names[i]).unwrap();
            assert_eq!(v, row, "{}", names[i]);
            assert_eq!(m.as_deref(), Some(md[i].as_str()));
            if i % 50 == 0 {
                let hits = index.search(row, 3, None).unwrap();
                self_found += hits.iter().any(|h| *h.id == *names[i]) as usize;
                let f = index.search_filtered(row, 5, None, Some(&odd)).unwrap();
                assert_eq!(f.len(), 5);
                for h in &f {
                    assert!(
                        h.metadata.as_deref().unwrap().ends_with("\"odd\":1}"),
                        "{h:?}"
                    );
                }
            }
        }
        // Clustered data has exact duplicates rarely; nearly every item finds
        // itself among its 3 nearest.
        assert!(self_found >= n / 50 * 95 / 100, "{self_found}");
    }
}
