//! Filtered results against a brute-force evaluation of the same filter,
//! written from the rules in docs/filters.md independently of src/filter:
//! thousands of random filters over random metadata, through upserts and
//! removes and a decode, and the graph walk (many matches) against the
//! filtered exact truth.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use vectord::{Filter, Index, IndexParams, Metric};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

// ---- the reference: the rules, evaluated on JSON values ----

fn lookup<'a>(md: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    let mut cur = md?;
    for part in key.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(_), _) | (Value::Object(_), _) => false,
        _ => a == b,
    }
}

fn has_eq(x: Option<&Value>, v: &Value) -> bool {
    match x {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|e| scalar_eq(e, v)),
        Some(x) => scalar_eq(x, v),
    }
}

fn has_num(x: Option<&Value>, ok: impl Fn(f64) -> bool) -> bool {
    let num = |v: &Value| v.is_number() && ok(v.as_f64().unwrap());
    match x {
        None => false,
        Some(Value::Array(items)) => items.iter().any(num),
        Some(x) => num(x),
    }
}

fn holds(op: &str, arg: &Value, x: Option<&Value>) -> bool {
    let n = || arg.as_f64().unwrap();
    match op {
        "$eq" => has_eq(x, arg),
        "$ne" => !has_eq(x, arg),
        "$in" => arg.as_array().unwrap().iter().any(|v| has_eq(x, v)),
        "$nin" => !arg.as_array().unwrap().iter().any(|v| has_eq(x, v)),
        "$gt" => has_num(x, |y| y > n()),
        "$gte" => has_num(x, |y| y >= n()),
        "$lt" => has_num(x, |y| y < n()),
        "$lte" => has_num(x, |y| y <= n()),
        "$exists" => x.is_some() == arg.as_bool().unwrap(),
        _ => unreachable!("{op}"),
    }
}

fn reference(f: &Value, id: &str, md: Option<&Value>) -> bool {
    f.as_object()
        .unwrap()
        .iter()
        .all(|(k, c)| match k.as_str() {
            "$and" => c.as_array().unwrap().iter().all(|s| reference(s, id, md)),
            "$or" => c.as_array().unwrap().iter().any(|s| reference(s, id, md)),
            "$not" => !reference(c, id, md),
            key => {
                let x = if key == "$id" {
                    Some(Value::String(id.to_string()))
                } else {
                    lookup(md, key).cloned()
                };
                match c {
                    Value::Object(ops) => ops.iter().all(|(op, a)| holds(op, a, x.as_ref())),
                    v => has_eq(x.as_ref(), v),
                }
            }
        })
}

// ---- random metadata and filters ----

const FIELDS: &[&str] = &["a", "b", "c", "n.x", "n.y", "n"];

fn scalar(r: &mut Rng) -> Value {
    match r.below(9) {
        0 => Value::Null,
        1 => json!(r.below(2) == 1),
        2 | 3 => json!(r.below(5)),
        4 => json!(r.below(5) as f64 + 0.5),
        5 => json!(-(r.below(3) as f64)),
        _ => json!(format!("s{}", r.below(4))),
    }
}

fn value(r: &mut Rng) -> Value {
    match r.below(6) {
        0 => Value::Array((0..r.below(4)).map(|_| scalar(r)).collect()),
        1 => json!([[scalar(r)], {"x": scalar(r)}]),
        _ => scalar(r),
    }
}

fn metadata(r: &mut Rng) -> Option<String> {
    match r.below(12) {
        0 => None,
        1 => Some(value(r).to_string()),
        _ => {
            let mut m = serde_json::Map::new();
            for k in ["a", "b", "c"] {
                if r.below(4) != 0 {
                    m.insert(k.into(), value(r));
                }
            }
            match r.below(3) {
                0 => {}
                1 => {
                    m.insert("n".into(), value(r));
                }
                _ => {
                    let mut n = serde_json::Map::new();
                    for k in ["x", "y"] {
                        if r.below(3) != 0 {
                            n.insert(k.into(), value(r));
                        }
                    }
                    m.insert("n".into(), Value::Object(n));
                }
            }
            Some(Value::Object(m).to_string())
        }
    }
}

fn condition(r: &mut Rng) -> Value {
    let list = |r: &mut Rng| Value::Array((0..r.below(4)).map(|_| scalar(r)).collect());
    let mut ops = serde_json::Map::new();
    if r.below(4) == 0 {
        // Two bounds: on arrays each may hold by a different element.
        let lo = r.below(6) as f64 - 1.5;
        return json!({"$gt": lo, "$lt": lo + r.below(4) as f64});
    }
    for _ in 0..1 + r.below(2) {
        let (op, arg) = match r.below(9) {
            0 => ("$eq", scalar(r)),
            1 => ("$ne", scalar(r)),
            2 => ("$in", list(r)),
            3 => ("$nin", list(r)),
            4 => ("$gt", json!(r.below(6) as f64 - 1.5)),
            5 => ("$gte", json!(r.below(6) as i64 - 1)),
            6 => ("$lt", json!(r.below(6) as f64 - 0.5)),
            7 => ("$lte", json!(r.below(6) as i64 - 1)),
            _ => ("$exists", json!(r.below(2) == 1)),
        };
        ops.insert(op.into(), arg);
    }
    if ops.len() == 1 && ops.contains_key("$eq") && r.below(2) == 0 {
        return ops.remove("$eq").unwrap();
    }
    Value::Object(ops)
}

fn filter(r: &mut Rng, depth: usize, ids: usize) -> Value {
    let mut m = serde_json::Map::new();
    for _ in 0..r.below(3) + usize::from(depth == 0) {
        match r.below(if depth >= 3 { 7 } else { 10 }) {
            0..=5 => {
                m.insert(FIELDS[r.below(FIELDS.len())].into(), condition(r));
            }
            6 => {
                let id = |r: &mut Rng| json!(format!("id{}", r.below(ids + 5)));
                let c = match r.below(4) {
                    0 => id(r),
                    1 => json!({"$ne": id(r)}),
                    2 => json!({"$in": [id(r), id(r), id(r)]}),
                    _ => json!({"$nin": [id(r), id(r)]}),
                };
                m.insert("$id".into(), c);
            }
            7 => {
                m.insert("$not".into(), filter(r, depth + 1, ids));
            }
            k => {
                let subs = (0..1 + r.below(3))
                    .map(|_| filter(r, depth + 1, ids))
                    .collect();
                m.insert(
                    if k == 8 { "$and" } else { "$or" }.into(),
                    Value::Array(subs),
                );
            }
        }
    }
    Value::Object(m)
}

struct Model {
    items: Vec<(String, Option<Value>, Vec<f32>)>,
}

impl Model {
    fn expected(&self, f: &Value) -> BTreeSet<String> {
        self.items
            .iter()
            .filter(|(id, md, _)| reference(f, id, md.as_ref()))
            .map(|x| x.0.clone())
            .collect()
    }
}

fn check_filters(idx: &Index, model: &Model, r: &mut Rng, n: usize) -> (usize, usize) {
    let (mut empty, mut full) = (0, 0);
    for _ in 0..n {
        let f = filter(r, 0, model.items.len());
        let text = f.to_string();
        let compiled = Filter::new(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let want = model.expected(&f);
        assert_eq!(
            idx.count(Some(&compiled)).unwrap(),
            want.len(),
            "count of {text}"
        );
        let hits = idx
            .search_filtered(&[0.5; 4], model.items.len() + 1, None, Some(&compiled))
            .unwrap();
        let got: BTreeSet<String> = hits.iter().map(|h| h.id.to_string()).collect();
        assert_eq!(got, want, "{text}");
        empty += usize::from(want.is_empty());
        full += usize::from(want.len() == model.items.len());
    }
    (empty, full)
}

#[test]
fn random_filters_match_the_reference() {
    let mut r = Rng(7);
    let idx = Index::new(IndexParams::new("rand", 4, Metric::L2)).unwrap();
    let mut model = Model { items: Vec::new() };
    let add = |idx: &Index, model: &mut Model, r: &mut Rng, ids: &[String]| {
        let mds: Vec<Option<String>> = ids.iter().map(|_| metadata(r)).collect();
        let vecs: Vec<f32> = (0..ids.len() * 4).map(|_| r.f32()).collect();
        let id_refs: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
        let md_refs: Vec<Option<&str>> = mds.iter().map(|m| m.as_deref()).collect();
        idx.add(&id_refs, &vecs, Some(&md_refs)).unwrap();
        for (i, id) in ids.iter().enumerate() {
            model.items.retain(|x| &x.0 != id);
            let md = mds[i].as_ref().map(|m| serde_json::from_str(m).unwrap());
            model
                .items
                .push((id.clone(), md, vecs[i * 4..i * 4 + 4].to_vec()));
        }
    };
    let ids: Vec<String> = (0..300).map(|i| format!("id{i}")).collect();
    add(&idx, &mut model, &mut r, &ids);
    let (empty, full) = check_filters(&idx, &model, &mut r, 1500);
    // The generator reaches both extremes and everything in between.
    assert!(empty > 50 && empty < 1200 && full > 20, "{empty} {full}");
    // Upserts (new metadata, new vectors), removes, new ids.
    let again: Vec<String> = (0..120).map(|i| format!("id{}", i * 2)).collect();
    add(&idx, &mut model, &mut r, &again);
    let gone: Vec<String> = (0..60).map(|i| format!("id{}", i * 5 + 1)).collect();
    let gone_refs: Vec<&str> = gone.iter().map(|s| s.as_str()).collect();
    idx.remove(&gone_refs).unwrap();
    model.items.retain(|x| !gone.contains(&x.0));
    let more: Vec<String> = (300..340).map(|i| format!("id{i}")).collect();
    add(&idx, &mut model, &mut r, &more);
    check_filters(&idx, &model, &mut r, 1000);
    let back = vectord::lhv1::decode(&vectord::lhv1::encode(&idx).unwrap()).unwrap();
    check_filters(&back, &model, &mut r, 500);
}

/// Many matches: the graph walk answers; its hits must all match, be sorted,
/// number min(k, matches), and agree with the exact filtered truth.
#[test]
fn graph_walk_keeps_only_matches_and_finds_the_true_neighbours() {
    let (n, dim) = (6000usize, 8usize);
    let mut r = Rng(11);
    let mut params = IndexParams::new("walk", dim as u32, Metric::L2);
    params.m = 8;
    params.ef_construction = 60;
    let idx = Index::new(params).unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("id{i}")).collect();
    let vecs: Vec<f32> = (0..n * dim).map(|_| r.f32()).collect();
    let mds: Vec<String> = (0..n)
        .map(|i| {
            // "r" uniform 0..9; "half" follows the first coordinate, so a
            // filter on it is correlated with where the query is.
            json!({"r": i % 10, "half": vecs[i * dim] < 0.5, "tags": [i % 3, i % 7]}).to_string()
        })
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
    let md_refs: Vec<Option<&str>> = mds.iter().map(|m| Some(m.as_str())).collect();
    idx.add(&id_refs, &vecs, Some(&md_refs)).unwrap();
    let meta: Vec<Value> = mds
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    let filters = [
        r#"{"r": {"$lt": 5}}"#,
        r#"{"r": {"$gte": 6}}"#,
        r#"{"r": {"$nin": [0, 1, 2, 3, 4, 5]}}"#,
        r#"{"half": true}"#,
        r#"{"half": false, "r": {"$ne": 3}}"#,
        r#"{"$or": [{"tags": 0}, {"tags": 1}]}"#,
        r#"{"$not": {"r": 9}}"#,
    ];
    let k = 10;
    let (mut found, mut total) = (0usize, 0usize);
    for text in filters {
        let f: Value = serde_json::from_str(text).unwrap();
        let allowed: Vec<usize> = (0..n)
            .filter(|&i| reference(&f, &ids[i], Some(&meta[i])))
            .collect();
        assert!(allowed.len() > 2100, "{text}: {} matches", allowed.len());
        let compiled = Filter::new(text).unwrap();
        let queries: Vec<f32> = (0..40 * dim).map(|_| r.f32()).collect();
        // ef 24: the walk answers from 24 * 16 * 2 = 768 matches on.
        let batch = idx
            .search_batch_filtered(&queries, k, Some(24), Some(&compiled))
            .unwrap();
        for (qi, q) in queries.chunks_exact(dim).enumerate() {
            let dist = |i: usize| -> f32 {
                q.iter()
                    .zip(&vecs[i * dim..(i + 1) * dim])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum()
            };
            let mut truth: Vec<(f32, usize)> = allowed.iter().map(|&i| (dist(i), i)).collect();
            truth.sort_by(|a, b| a.0.total_cmp(&b.0));
            let truth: BTreeSet<String> = truth[..k].iter().map(|x| ids[x.1].clone()).collect();
            let hits = idx
                .search_filtered(q, k, Some(24), Some(&compiled))
                .unwrap();
            assert_eq!(hits, batch[qi], "{text}: batch and single differ");
            assert_eq!(hits.len(), k, "{text}");
            for w in hits.windows(2) {
                assert!(w[0].distance <= w[1].distance, "{text}: unsorted");
            }
            for h in &hits {
                let i: usize = h.id[2..].parse().unwrap();
                assert!(
                    reference(&f, &h.id, Some(&meta[i])),
                    "{text}: {} fails",
                    h.id
                );
                assert!((h.distance - dist(i)).abs() < 1e-4);
            }
            found += hits.iter().filter(|h| truth.contains(&*h.id)).count();
            total += k;
        }
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.95, "recall@10 {recall}");
}
