//! The filter language, rule by rule (docs/filters.md): every operator,
//! arrays, nested paths, missing fields, null, type mismatches, and every
//! error path with the message naming where the problem is.

use std::collections::BTreeSet;

use vectord::{Error, Filter, Index, IndexParams, Metric};

/// (id, metadata) of the fixture; vectors are irrelevant here.
const ITEMS: &[(&str, Option<&str>)] = &[
    (
        "a",
        Some(r#"{"price": 10, "tag": "red", "stock": true, "n": {"x": 1, "y": {"z": "deep"}}}"#),
    ),
    (
        "b",
        Some(r#"{"price": 25.5, "tag": ["red", "blue"], "stock": false}"#),
    ),
    (
        "c",
        Some(r#"{"price": "10", "tag": null, "nums": [1, 5, "7"]}"#),
    ),
    ("d", Some(r#"{"price": 1.0, "tag": "blue", "n": {"x": 2}}"#)),
    ("e", Some(r#"{"other": 1}"#)),
    ("f", None),
    ("g", Some(r#"[1, 2, 3]"#)),
    ("h", Some(r#""just a string""#)),
    ("i", Some(r#"{"price": -0.0, "tag": [], "n.x": 9, "n": 5}"#)),
    (
        "j",
        Some(r#"{"price": null, "nums": [[1], {"a": 1}], "deep": [{"k": 1}]}"#),
    ),
];

fn fixture() -> Index {
    let idx = Index::new(IndexParams::new("lang", 2, Metric::L2)).unwrap();
    let ids: Vec<&str> = ITEMS.iter().map(|x| x.0).collect();
    let md: Vec<Option<&str>> = ITEMS.iter().map(|x| x.1).collect();
    let vectors: Vec<f32> = (0..ITEMS.len()).flat_map(|i| [i as f32, 1.0]).collect();
    idx.add(&ids, &vectors, Some(&md)).unwrap();
    idx
}

fn matching(idx: &Index, filter: &str) -> String {
    let f = Filter::new(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let hits = idx
        .search_filtered(&[0.0, 1.0], 100, None, Some(&f))
        .unwrap();
    let ids: BTreeSet<String> = hits.iter().map(|h| h.id.to_string()).collect();
    assert_eq!(ids.len(), hits.len(), "{filter}: a hit twice");
    assert_eq!(idx.count(Some(&f)).unwrap(), ids.len(), "{filter}: count");
    ids.into_iter().collect::<Vec<_>>().join("")
}

#[track_caller]
fn check(idx: &Index, filter: &str, want: &str) {
    assert_eq!(matching(idx, filter), want, "filter {filter}");
}

#[test]
fn empty_filter_matches_everything() {
    let idx = fixture();
    check(&idx, "{}", "abcdefghij");
    check(&idx, " { } ", "abcdefghij");
    assert_eq!(idx.count(None).unwrap(), 10);
    assert_eq!(idx.count(Some(&Filter::all())).unwrap(), 10);
}

#[test]
fn eq_compares_numbers_by_value_and_never_converts_types() {
    let idx = fixture();
    check(&idx, r#"{"price": 10}"#, "a");
    check(&idx, r#"{"price": 10.0}"#, "a");
    check(&idx, r#"{"price": {"$eq": 1e1}}"#, "a");
    check(&idx, r#"{"price": "10"}"#, "c");
    check(&idx, r#"{"price": 1}"#, "d");
    check(&idx, r#"{"price": 0}"#, "i");
    check(&idx, r#"{"price": -0.0}"#, "i");
    check(&idx, r#"{"stock": true}"#, "a");
    check(&idx, r#"{"stock": false}"#, "b");
    check(&idx, r#"{"stock": 0}"#, "");
    check(&idx, r#"{"price": null}"#, "j");
    check(&idx, r#"{"tag": null}"#, "c");
    check(&idx, r#"{"missing": null}"#, "");
}

#[test]
fn eq_on_arrays_means_some_element() {
    let idx = fixture();
    check(&idx, r#"{"tag": "red"}"#, "ab");
    check(&idx, r#"{"tag": "blue"}"#, "bd");
    check(&idx, r#"{"nums": 5}"#, "c");
    check(&idx, r#"{"nums": "7"}"#, "c");
    check(&idx, r#"{"nums": 7}"#, "");
    // Nested arrays and objects inside arrays are not scalars.
    check(&idx, r#"{"nums": 1}"#, "c");
    check(&idx, r#"{"deep.k": 1}"#, "");
}

#[test]
fn ne_and_nin_are_negations_and_hold_without_fields() {
    let idx = fixture();
    check(&idx, r#"{"tag": {"$ne": "red"}}"#, "cdefghij");
    check(&idx, r#"{"price": {"$ne": 10}}"#, "bcdefghij");
    check(&idx, r#"{"tag": {"$nin": ["red", "blue"]}}"#, "cefghij");
    check(&idx, r#"{"tag": {"$nin": []}}"#, "abcdefghij");
    check(&idx, r#"{"tag": {"$in": []}}"#, "");
    check(&idx, r#"{"tag": {"$in": ["blue", null]}}"#, "bcd");
    check(&idx, r#"{"price": {"$in": [10, "10", 25.5]}}"#, "abc");
}

#[test]
fn ranges_need_numbers_in_the_item() {
    let idx = fixture();
    check(&idx, r#"{"price": {"$gt": 1}}"#, "ab");
    check(&idx, r#"{"price": {"$gte": 1}}"#, "abd");
    check(&idx, r#"{"price": {"$lt": 10}}"#, "di");
    check(&idx, r#"{"price": {"$lte": 10}}"#, "adi");
    check(&idx, r#"{"price": {"$gte": 1, "$lt": 25.5}}"#, "ad");
    check(&idx, r#"{"price": {"$gt": -1e308}}"#, "abdi");
    check(&idx, r#"{"price": {"$lt": 0}}"#, "");
    check(&idx, r#"{"price": {"$lte": -0.0}}"#, "i");
    // Arrays: some number element satisfies it; strings never do.
    check(&idx, r#"{"nums": {"$gt": 4}}"#, "c");
    check(&idx, r#"{"nums": {"$gt": 6}}"#, "");
    // Each operator holds on its own (5 > 2, 1 < 4), as in MongoDB.
    check(&idx, r#"{"nums": {"$gt": 2, "$lt": 4}}"#, "c");
    check(&idx, r#"{"nums": {"$gt": 5, "$lt": 4}}"#, "");
    check(&idx, r#"{"tag": {"$gt": 0}}"#, "");
}

#[test]
fn exists_sees_null_but_not_missing() {
    let idx = fixture();
    check(&idx, r#"{"tag": {"$exists": true}}"#, "abcdi");
    check(&idx, r#"{"price": {"$exists": true}}"#, "abcdij");
    check(&idx, r#"{"price": {"$exists": false}}"#, "efgh");
    check(&idx, r#"{"n.y": {"$exists": true}}"#, "a");
    check(&idx, r#"{"n": {"$exists": true}}"#, "adi");
}

#[test]
fn dotted_keys_reach_nested_objects() {
    let idx = fixture();
    check(&idx, r#"{"n.x": 1}"#, "a");
    check(&idx, r#"{"n.x": {"$gte": 1}}"#, "ad");
    check(&idx, r#"{"n.y.z": "deep"}"#, "a");
    // "n.x" at the top level of i is a key with a dot, not a path.
    check(&idx, r#"{"n.x": 9}"#, "");
    check(&idx, r#"{"n": 5}"#, "i");
    check(&idx, r#"{"n.y.z.w": {"$exists": false}}"#, "abcdefghij");
}

#[test]
fn items_without_an_object_have_no_fields() {
    let idx = fixture();
    // f (no metadata), g (array), h (string).
    for f in [
        r#"{"price": {"$ne": 3}}"#,
        r#"{"price": {"$nin": [3]}}"#,
        r#"{"price": {"$exists": false}}"#,
    ] {
        let m = matching(&idx, f);
        assert!(
            m.contains('f') && m.contains('g') && m.contains('h'),
            "{f}: {m}"
        );
    }
    for f in [
        r#"{"0": 1}"#,
        r#"{"price": {"$gte": -1e308}}"#,
        r#"{"price": {"$in": [1, 10, null]}}"#,
    ] {
        let m = matching(&idx, f);
        assert!(
            !m.contains('f') && !m.contains('g') && !m.contains('h'),
            "{f}: {m}"
        );
    }
}

#[test]
fn logic_combines() {
    let idx = fixture();
    check(&idx, r#"{"tag": "red", "stock": true}"#, "a");
    check(&idx, r#"{"$and": [{"tag": "red"}, {"tag": "blue"}]}"#, "b");
    check(&idx, r#"{"$or": [{"tag": "red"}, {"price": 1}]}"#, "abd");
    check(&idx, r#"{"$not": {"tag": "red"}}"#, "cdefghij");
    check(&idx, r#"{"$not": {}}"#, "");
    check(
        &idx,
        r#"{"$or": [{"$and": [{"price": {"$gt": 0}}, {"$not": {"stock": false}}]}, {"other": 1}], "tag": {"$exists": true}}"#,
        "ad",
    );
    check(
        &idx,
        r#"{"$and": [{}], "$or": [{}, {"x": 1}]}"#,
        "abcdefghij",
    );
}

#[test]
fn id_conditions() {
    let idx = fixture();
    check(&idx, r#"{"$id": "c"}"#, "c");
    check(&idx, r#"{"$id": {"$eq": "zz"}}"#, "");
    check(&idx, r#"{"$id": {"$ne": "c"}}"#, "abdefghij");
    check(&idx, r#"{"$id": {"$in": ["a", "e", "nope"]}}"#, "ae");
    check(
        &idx,
        r#"{"$id": {"$nin": ["a", "e"]}, "tag": "blue"}"#,
        "bd",
    );
    check(&idx, r#"{"$id": {"$in": ["a", "b"], "$ne": "a"}}"#, "b");
}

#[test]
fn results_follow_upsert_remove_and_metadata_changes() {
    let idx = fixture();
    let red = Filter::new(r#"{"tag": "red"}"#).unwrap();
    assert_eq!(idx.count(Some(&red)).unwrap(), 2);
    idx.add(&["c"], &[2.0, 1.0], Some(&[Some(r#"{"tag": "red"}"#)]))
        .unwrap();
    check(&idx, r#"{"tag": "red"}"#, "abc");
    check(&idx, r#"{"nums": 5}"#, "");
    idx.add(&["a"], &[0.0, 1.0], None).unwrap();
    check(&idx, r#"{"tag": "red"}"#, "bc");
    check(&idx, r#"{"tag": {"$ne": "red"}}"#, "adefghij");
    idx.remove(&["b"]).unwrap();
    check(&idx, r#"{"tag": "red"}"#, "c");
    check(&idx, r#"{"$id": {"$ne": "zz"}}"#, "acdefghij");
    idx.add(&["new"], &[9.0, 1.0], Some(&[Some(r#"{"tag": ["red"]}"#)]))
        .unwrap();
    check(&idx, r#"{"tag": "red"}"#, "cnew");
    // After decode the attribute index is rebuilt from the metadata.
    let back = vectord::lhv1::decode(&vectord::lhv1::encode(&idx).unwrap()).unwrap();
    check(&back, r#"{"tag": "red"}"#, "cnew");
    check(&back, r#"{"n.x": {"$gte": 1}}"#, "d");
    check(&back, r#"{"$id": {"$nin": ["c"]}}"#, "adefghijnew");
}

#[test]
fn k_larger_than_the_matches_returns_all_matches_sorted() {
    let idx = fixture();
    let f = Filter::new(r#"{"price": {"$exists": true}}"#).unwrap();
    let hits = idx
        .search_filtered(&[100.0, 1.0], 50, Some(1), Some(&f))
        .unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| &*h.id).collect();
    assert_eq!(ids, ["j", "i", "d", "c", "b", "a"]);
    let hits = idx
        .search_filtered(&[100.0, 1.0], 2, None, Some(&f))
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(&*hits[0].id, "j");
    assert_eq!(hits[0].metadata.as_deref(), ITEMS[9].1);
    let none = Filter::new(r#"{"tag": "green"}"#).unwrap();
    assert!(idx
        .search_filtered(&[0.0, 1.0], 5, None, Some(&none))
        .unwrap()
        .is_empty());
    // Argument errors are the unfiltered search's.
    assert!(matches!(
        idx.search_filtered(&[0.0], 5, None, Some(&f)),
        Err(Error::DimensionMismatch(_))
    ));
    assert!(matches!(
        idx.search_filtered(&[0.0, 1.0], 0, None, Some(&f)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        idx.search_filtered(&[0.0, f32::NAN], 1, None, Some(&f)),
        Err(Error::InvalidVector(_))
    ));
    let batch = idx
        .search_batch_filtered(&[100.0, 1.0, 0.0, 1.0], 3, None, Some(&f))
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0][0].id.as_ref(), "j");
    assert_eq!(batch[1][0].id.as_ref(), "a");
    assert!(matches!(
        idx.search_batch_filtered(&[1.0, 1.0, 0.0], 3, None, Some(&f)),
        Err(Error::DimensionMismatch(_))
    ));
    // No filter: the plain search.
    assert_eq!(
        idx.search_filtered(&[3.0, 1.0], 3, None, None).unwrap(),
        idx.search(&[3.0, 1.0], 3, None).unwrap()
    );
}

#[track_caller]
fn rejects(filter: &str, want: &str) {
    match Filter::new(filter) {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains(want), "{filter}: message {m:?} lacks {want:?}")
        }
        other => panic!("{filter}: {other:?}"),
    }
}

#[test]
fn bad_filters_name_the_problem() {
    rejects("", "invalid JSON");
    rejects("{", "invalid JSON");
    rejects(r#"{"a": 1} x"#, "invalid JSON");
    rejects("[]", "a filter is a JSON object, not an array");
    rejects("1", "a filter is a JSON object");
    rejects("null", "a filter is a JSON object");
    rejects(r#"{"$foo": 1}"#, "$foo: unknown operator");
    rejects(
        r#"{"$and": [{"a": 1}, {"price": {"$gt": "x"}}]}"#,
        "$and[1].price: $gt needs a number",
    );
    rejects(r#"{"p": {"$lte": null}}"#, "p: $lte needs a number");
    rejects(r#"{"p": {"$gte": [1]}}"#, "p: $gte needs a number");
    rejects(r#"{"p": {"$lt": true}}"#, "p: $lt needs a number");
    rejects(r#"{"$and": []}"#, "$and: needs at least one filter");
    rejects(r#"{"$or": []}"#, "$or: needs at least one filter");
    rejects(r#"{"$or": {"a": 1}}"#, "$or: needs an array of filters");
    rejects(r#"{"$or": [1]}"#, "$or[0]: a filter is a JSON object");
    rejects(r#"{"$not": [{"a": 1}]}"#, "$not: a filter is a JSON object");
    rejects(
        r#"{"$not": {"a": {"$bad": 1}}}"#,
        "$not.a: unknown operator \"$bad\"",
    );
    rejects(
        r#"{"a": {}}"#,
        "a: a condition object needs at least one operator",
    );
    rejects(
        r#"{"a": [1, 2]}"#,
        "a: a condition is a scalar or an object",
    );
    rejects(r#"{"a": {"$eq": [1]}}"#, "a: $eq needs a scalar");
    rejects(r#"{"a": {"$ne": {"x": 1}}}"#, "a: $ne needs a scalar");
    rejects(r#"{"a": {"$in": 1}}"#, "a: $in needs an array of scalars");
    rejects(r#"{"a": {"$nin": [1, [2]]}}"#, "a: $nin[1] needs a scalar");
    rejects(r#"{"a": {"$exists": 1}}"#, "a: $exists needs a bool");
    rejects(
        r#"{"a": {"$eq": 1, "$regex": "x"}}"#,
        "a: unknown operator \"$regex\"",
    );
    rejects(r#"{"": 1}"#, "a field name is one or more non-empty keys");
    rejects(r#"{"a..b": 1}"#, "a..b: a field name");
    rejects(r#"{"$id": 1}"#, "$id: $id takes a string or an object");
    rejects(
        r#"{"$id": {"$gt": "a"}}"#,
        "$id: unknown operator \"$gt\" on $id",
    );
    rejects(r#"{"$id": {"$eq": 1}}"#, "$id: $eq on $id needs a string");
    rejects(
        r#"{"$id": {"$in": ["a", 2]}}"#,
        "$id: $in[1] on $id needs a string",
    );
    rejects(
        r#"{"$id": {"$nin": "a"}}"#,
        "$id: $nin on $id needs an array of strings",
    );
    rejects(
        r#"{"$id": {}}"#,
        "$id: a condition object needs at least one operator",
    );
    rejects(r#"{"a": 1e999}"#, "invalid JSON");
}

#[test]
fn nesting_and_size_limits() {
    let nest = |n: usize| "{\"$not\": ".repeat(n - 1) + "{}" + &"}".repeat(n - 1);
    Filter::new(&nest(32)).unwrap();
    rejects(&nest(33), "nest deeper than 32");
    let and = |n: usize| "{\"$and\": [".repeat(n - 1) + "{}" + &"]}".repeat(n - 1);
    Filter::new(&and(32)).unwrap();
    rejects(&and(33), "$and[0].$and[0]");
    // Deeper than serde_json's own limit still fails cleanly.
    rejects(&nest(500), "invalid JSON");
    let mut big = String::from(r#"{"a": {"$in": ["#);
    while big.len() <= 16 << 20 {
        big.push_str("\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",");
    }
    big.push_str("1]}}");
    rejects(&big, "more than 16777216");
    // Just under the limit is fine.
    let mut ok = String::from(r#"{"a": {"$in": [1"#);
    while ok.len() < (16 << 20) - 100 {
        ok.push_str(",12345678901234567890");
    }
    ok.push_str("]}}");
    Filter::new(&ok).unwrap();
}

#[test]
fn filters_are_shared_by_threads() {
    let idx = std::sync::Arc::new(fixture());
    let f = std::sync::Arc::new(Filter::new(r#"{"tag": {"$in": ["red", "blue"]}}"#).unwrap());
    std::thread::scope(|s| {
        for t in 0..8 {
            let (idx, f) = (idx.clone(), f.clone());
            s.spawn(move || {
                for i in 0..200 {
                    let q = [(t * i % 10) as f32, 1.0];
                    let hits = idx.search_filtered(&q, 3, None, Some(&f)).unwrap();
                    assert_eq!(hits.len(), 3);
                    assert!(hits.iter().all(|h| ["a", "b", "d"].contains(&&*h.id)));
                    assert_eq!(idx.count(Some(&f)).unwrap(), 3);
                }
            });
        }
    });
}

/// Eight threads share one filter (and so its cached evaluation) while a
/// ninth flips item "c" in and out of the filter: every hit matches the
/// filter as the index stood when that search ran.
#[test]
fn a_shared_filter_follows_changes_made_while_threads_search() {
    let idx = std::sync::Arc::new(fixture());
    let f = std::sync::Arc::new(Filter::new(r#"{"tag": "red"}"#).unwrap());
    std::thread::scope(|s| {
        for t in 0..8 {
            let (idx, f) = (idx.clone(), f.clone());
            s.spawn(move || {
                for i in 0..300 {
                    let q = [((t + i) % 10) as f32, 1.0];
                    for h in idx.search_filtered(&q, 5, None, Some(&f)).unwrap() {
                        let md = h.metadata.as_deref().unwrap_or("");
                        assert!(
                            md.contains(r#""tag": "red""#) || md.contains(r#""tag": ["red""#),
                            "{h:?}"
                        );
                    }
                }
            });
        }
        let idx = idx.clone();
        s.spawn(move || {
            for i in 0..300 {
                let tag = if i % 2 == 0 { "red" } else { "green" };
                let md = format!(r#"{{"tag": "{tag}"}}"#);
                idx.add(&["c"], &[2.0, 1.0], Some(&[Some(md.as_str())]))
                    .unwrap();
            }
        });
    });
    // The last flip left "c" green.
    check(&idx, r#"{"tag": "red"}"#, "ab");
    let hits = idx
        .search_filtered(&[2.0, 1.0], 10, None, Some(&f))
        .unwrap();
    let mut ids: Vec<&str> = hits.iter().map(|h| &*h.id).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
}

/// `rebuild_filter_index` (what compaction calls after renumbering slots)
/// gives back the same answers as the index maintained item by item.
#[test]
fn rebuilding_the_attribute_index_keeps_every_answer() {
    let idx = fixture();
    idx.remove(&["b", "h"]).unwrap();
    idx.add(
        &["c", "k"],
        &[2.0, 1.0, 20.0, 1.0],
        Some(&[Some(r#"{"tag": "red", "price": 3}"#), None]),
    )
    .unwrap();
    let filters = [
        "{}",
        r#"{"tag": "red"}"#,
        r#"{"price": {"$gte": 1, "$lt": 20}}"#,
        r#"{"tag": {"$exists": false}}"#,
        r#"{"$id": {"$nin": ["a"]}, "n.x": {"$ne": 2}}"#,
    ];
    let before: Vec<String> = filters.iter().map(|f| matching(&idx, f)).collect();
    assert_eq!(before[1], "ac");
    idx.rebuild_filter_index().unwrap();
    let after: Vec<String> = filters.iter().map(|f| matching(&idx, f)).collect();
    assert_eq!(before, after);
}

/// Compaction renumbers slots; the attribute index must follow, or filters
/// would answer with the items that used to sit in those slots.
#[test]
fn filters_answer_the_same_after_compaction() {
    let idx = fixture();
    idx.remove(&["a", "b", "h"]).unwrap();
    let filters = [
        "{}",
        r#"{"tag": "red"}"#,
        r#"{"price": {"$gte": 1, "$lt": 20}}"#,
        r#"{"tag": {"$exists": false}}"#,
        r#"{"$id": {"$nin": ["c"]}, "n.x": {"$ne": 2}}"#,
    ];
    let before: Vec<String> = filters.iter().map(|f| matching(&idx, f)).collect();
    let stats = idx.compact().unwrap();
    assert!(stats.slots_after < stats.slots_before, "{stats:?}");
    let after: Vec<String> = filters.iter().map(|f| matching(&idx, f)).collect();
    assert_eq!(before, after);
}

/// A filter object keeps its last evaluation for the index state it was made
/// on; reused across upserts, removals, metadata changes, compaction,
/// reload and two indexes, it must answer as a freshly compiled one.
#[test]
fn one_filter_reused_across_changes_and_indexes_sees_every_change() {
    let idx = fixture();
    let other = fixture();
    let red = Filter::new(r#"{"tag": "red"}"#).unwrap();
    let ids = |i: &Index, f: &Filter| -> String {
        let mut v: Vec<String> = i
            .search_filtered(&[0.0, 1.0], 50, Some(64), Some(f))
            .unwrap()
            .iter()
            .map(|h| h.id.to_string())
            .collect();
        v.sort();
        v.concat()
    };
    let fresh = |i: &Index| ids(i, &Filter::new(r#"{"tag": "red"}"#).unwrap());
    let same = |i: &Index| {
        let want = fresh(i);
        assert_eq!(ids(i, &red), want);
        assert_eq!(
            i.count(Some(&red)).unwrap(),
            i.count(Some(&Filter::new(r#"{"tag": "red"}"#).unwrap()))
                .unwrap()
        );
        want
    };
    assert_eq!(same(&idx), "ab");
    assert_eq!(same(&idx), "ab", "the cached evaluation");
    idx.add(&["c"], &[2.0, 1.0], Some(&[Some(r#"{"tag": "red"}"#)]))
        .unwrap();
    assert_eq!(same(&idx), "abc");
    // The other index, then back: each time the right one's slots.
    other.remove(&["a"]).unwrap();
    assert_eq!(same(&other), "b");
    assert_eq!(same(&idx), "abc");
    idx.add(&["a"], &[0.0, 1.0], None).unwrap();
    assert_eq!(same(&idx), "bc");
    idx.remove(&["b"]).unwrap();
    assert_eq!(same(&idx), "c");
    idx.compact().unwrap();
    assert_eq!(same(&idx), "c");
    let blob = vectord::lhv1::encode(&other).unwrap();
    idx.replace_contents(vectord::lhv1::decode(&blob).unwrap())
        .unwrap();
    assert_eq!(same(&idx), "b");
    // A batch search shares the cache.
    let hits = idx
        .search_batch_filtered(&[0.0, 1.0, 5.0, 1.0], 50, None, Some(&red))
        .unwrap();
    assert!(hits.iter().all(|h| h.len() == 1 && &*h[0].id == "b"));
}
