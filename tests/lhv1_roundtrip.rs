//! LHV1 round trips: identical results, hit for hit, bit for bit.

mod common;

use common::*;
use vectord::{lhv1, Index, IndexParams, Metric, Quantization};

#[test]
fn round_trip_is_exact_and_later_inserts_match() {
    let cases = [Metric::Cosine, Metric::L2, Metric::Dot]
        .into_iter()
        .flat_map(|m| [(m, Quantization::None), (m, Quantization::Int8)]);
    for (metric, quantization) in cases {
        let dim = 16;
        let base = clustered(2000, dim, 21);
        let all = ids(2000, "v");
        let mut p = IndexParams::new("rt", dim as u32, metric);
        p.quantization = quantization;
        let idx = Index::new(p).unwrap();
        idx.set_insert_threads(1);
        let md: Vec<Option<&str>> = (0..2000)
            .map(|i| {
                if i % 3 == 0 {
                    Some("{\"k\": [1, \"\\u00e9\"]}")
                } else {
                    None
                }
            })
            .collect();
        idx.add(&refs(&all), &base, Some(&md)).unwrap();
        idx.remove(&refs(&all[..100])).unwrap();
        let blob = lhv1::encode(&idx).unwrap();
        let info = lhv1::inspect(&blob).unwrap();
        assert_eq!(info.count, 1900);
        // Unquantized indexes stay readable by version-1 readers.
        let version = if quantization == Quantization::None {
            1
        } else {
            2
        };
        assert_eq!(info.version, version);
        assert_eq!(info.params.quantization, quantization);
        assert_eq!(idx.quantizer_trained(), quantization == Quantization::Int8);
        assert_eq!(back_trained(&blob), quantization == Quantization::Int8);
        assert_eq!(info.params, idx.params());
        let back = lhv1::decode(&blob).unwrap();
        back.set_insert_threads(1);
        assert_eq!(back.len(), idx.len());
        assert_eq!(back.params(), idx.params());
        let queries = clustered(100, dim, 22);
        for q in queries.chunks_exact(dim) {
            let a = idx.search(q, 10, None).unwrap();
            let b = back.search(q, 10, None).unwrap();
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.id, y.id);
                assert_eq!(x.distance.to_bits(), y.distance.to_bits());
                assert_eq!(x.metadata, y.metadata);
            }
        }
        assert_eq!(
            back.get("v300").unwrap().1.as_deref(),
            Some("{\"k\": [1, \"\\u00e9\"]}")
        );
        // The same later inserts give the same graph (RNG state travels).
        let more = ids(300, "w");
        let mv = clustered(300, dim, 23);
        idx.add(&refs(&more), &mv, None).unwrap();
        back.add(&refs(&more), &mv, None).unwrap();
        assert_eq!(lhv1::encode(&idx).unwrap(), lhv1::encode(&back).unwrap());
    }
}

fn back_trained(blob: &[u8]) -> bool {
    lhv1::decode(blob).unwrap().quantizer_trained()
}

#[test]
fn empty_index_round_trips() {
    for quantization in [Quantization::None, Quantization::Int8] {
        let mut p = IndexParams::new("e", 3, Metric::L2);
        p.quantization = quantization;
        let idx = Index::new(p).unwrap();
        let blob = lhv1::encode(&idx).unwrap();
        let back = lhv1::decode(&blob).unwrap();
        assert!(back.is_empty());
        assert_eq!(back.quantization(), quantization);
        assert!(back.search(&[1., 2., 3.], 3, None).unwrap().is_empty());
        assert_eq!(lhv1::encode(&back).unwrap(), blob);
    }
}

/// The fuzz seeds were written by the encoder before the format code moved
/// into one module: they must still decode and re-encode byte for byte.
#[test]
fn stored_v1_blobs_reencode_bit_for_bit() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let blob = std::fs::read(&path).unwrap();
        let idx = lhv1::decode(&blob).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert_eq!(lhv1::encode(&idx).unwrap(), blob, "{path:?}");
        seen += 1;
    }
    assert!(seen >= 4, "{seen} seeds in {dir:?}");
}
