//! `vectord_index`: index handles and everything done through them.

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::{Arc, Weak};

use super::buffers::{pack_hits, vectord_bytes, vectord_hits};
use super::{
    boundary, floats_arg, free_box, infallible, into_handle, invalid, mul_len, opt_out_arg,
    opt_ref, opt_str_arg, out_arg, ref_arg, slice_arg, str_arg, to_cstring, vectord_error,
    vectord_status, write_floats,
};
use crate::error::Result;
use crate::filter::Filter;
use crate::hnsw::{Metric, Quantization};
use crate::index::{Index, IndexParams, DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_M};
use crate::lhv1;
use crate::registry::Registry;

/// What an index is. Zero for `m`, `ef_construction` or `ef_search` means
/// the default (16, 200, 64).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vectord_index_params {
    /// 1..=255 bytes of UTF-8 without control characters.
    pub name: *const c_char,
    /// Vector length, 1..=65536.
    pub dim: u32,
    /// One of `VECTORD_METRIC_*`.
    pub metric: u32,
    /// Maximum graph degree on upper layers, 2..=256 (0 = 16).
    pub m: u32,
    /// Beam width while inserting (0 = 200).
    pub ef_construction: u32,
    /// Default beam width while searching (0 = 64).
    pub ef_search: u32,
    /// One of `VECTORD_QUANTIZATION_*` (0 = none). Added in ABI 2.
    pub quantization: u32,
}

/// A reference to an index. Each handle is freed once with
/// `vectord_index_free`; the index lives while any handle does, even after
/// its registry deleted it or was closed.
pub struct vectord_index {
    pub(crate) index: Arc<Index>,
    /// The registry the index came from, for `vectord_index_save`.
    pub(crate) db: Option<Weak<Registry>>,
    pub(crate) name: CString,
}

impl vectord_index {
    pub(crate) fn new(index: Arc<Index>, db: Option<Weak<Registry>>) -> *mut vectord_index {
        let name = to_cstring(index.name().to_string());
        into_handle(vectord_index { index, db, name })
    }
}

/// A C handle to an index built in Rust (for programs that mix both sides;
/// the handle belongs to no registry). Free it with `vectord_index_free`.
pub fn index_handle(index: Arc<Index>) -> *mut vectord_index {
    vectord_index::new(index, None)
}

/// # Safety
/// `p` is NULL or a live index handle.
pub(crate) unsafe fn index_arg<'a>(p: *const vectord_index) -> Result<&'a vectord_index> {
    ref_arg(p, "idx")
}

/// # Safety
/// `p` is NULL or valid for reads, and its `name` NULL or a C string.
pub(crate) unsafe fn params_arg(p: *const vectord_index_params) -> Result<IndexParams> {
    let p = ref_arg(p, "params")?;
    let name = str_arg(p.name, "params->name")?;
    let metric = match p.metric {
        super::VECTORD_METRIC_COSINE => Metric::Cosine,
        super::VECTORD_METRIC_L2 => Metric::L2,
        super::VECTORD_METRIC_DOT => Metric::Dot,
        m => {
            return Err(invalid(format!(
                "params->metric {m} is not a VECTORD_METRIC_* value (0 cosine, 1 l2, 2 dot)"
            )))
        }
    };
    let quantization = Quantization::from_code(p.quantization).ok_or_else(|| {
        invalid(format!(
            "params->quantization {} is not a VECTORD_QUANTIZATION_* value (0 none, 1 int8)",
            p.quantization
        ))
    })?;
    let or = |v: u32, d: u32| if v == 0 { d } else { v };
    let params = IndexParams {
        name: name.to_string(),
        dim: p.dim,
        metric,
        m: or(p.m, DEFAULT_M),
        ef_construction: or(p.ef_construction, DEFAULT_EF_CONSTRUCTION),
        ef_search: or(p.ef_search, DEFAULT_EF_SEARCH),
        quantization,
    };
    params.validate()?;
    Ok(params)
}

/// Creates an empty in-memory index that belongs to no registry
/// (`vectord_index_save` refuses it; `vectord_index_encode` serialises it).
/// `params` and `params->name` must not be NULL; `params` is only read during
/// the call. On success `*out` receives a handle the caller frees with
/// `vectord_index_free`.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_new(
    params: *const vectord_index_params,
    out: *mut *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let out = out_arg(out, "out")?;
        let params = params_arg(params)?;
        let index = Arc::new(Index::new(params)?);
        out.write(vectord_index::new(index, None));
        Ok(())
    })
}

/// Another handle to the same index as `idx` (it shares the index and its
/// registry, if any). `idx` must not be NULL; on success `*out` receives a
/// handle the caller frees with `vectord_index_free`, independently of `idx`.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_ref(
    idx: *const vectord_index,
    out: *mut *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        let out = out_arg(out, "out")?;
        out.write(vectord_index::new(h.index.clone(), h.db.clone()));
        Ok(())
    })
}

/// Frees one handle; the index itself lives while other handles do. `idx`
/// may be NULL; free each handle once, after every call using it returned.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_free(idx: *mut vectord_index) {
    infallible((), || free_box(idx))
}

/// The ids of an `ids` argument of `n` entries.
///
/// # Safety
/// `ids` is NULL or valid for reads of `n` pointers, each NULL or a C string.
unsafe fn ids_arg<'a>(ids: *const *const c_char, n: usize) -> Result<Vec<&'a str>> {
    slice_arg(ids, n, "ids")?
        .iter()
        .enumerate()
        .map(|(i, &p)| str_arg(p, &format!("ids[{i}]")))
        .collect()
}

/// Upserts `n` items, all or none: every item is checked before the index
/// changes. `ids` holds `n` non-NULL UTF-8 ids; `vectors` holds `n * dim`
/// floats, row-major, at any byte alignment; `metadata` is NULL (no
/// metadata for any item) or holds `n` entries, each NULL or one JSON
/// value. With `n == 0` every array may be NULL. `idx` must not be NULL.
/// The arrays are only read during the call. Waits for running searches on
/// this index; searches wait for it.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_add(
    idx: *mut vectord_index,
    n: usize,
    ids: *const *const c_char,
    vectors: *const f32,
    metadata: *const *const c_char,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        let ids = ids_arg(ids, n)?;
        let len = mul_len(n, h.index.dim() as usize, "vectors")?;
        let vectors = floats_arg(vectors, len, "vectors")?;
        let md = if metadata.is_null() {
            None
        } else {
            let md = slice_arg(metadata, n, "metadata")?
                .iter()
                .enumerate()
                .map(|(i, &p)| opt_str_arg(p, &format!("metadata[{i}]")))
                .collect::<Result<Vec<_>>>()?;
            Some(md)
        };
        h.index.add(&ids, &vectors, md.as_deref())
    })
}

/// Removes the `n` ids in `ids` (each non-NULL UTF-8; absent ids are
/// skipped), all or none. With `n == 0`, `ids` may be NULL. `idx` must not
/// be NULL. Waits for running searches on this index; searches wait for it.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_remove(
    idx: *mut vectord_index,
    n: usize,
    ids: *const *const c_char,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        let ids = ids_arg(ids, n)?;
        h.index.remove(&ids).map(|_| ())
    })
}

/// Drops removed items for good: renumbers the index's slots, repairs the
/// links around removed items and releases their memory, so the saved
/// object shrinks too. Every live item keeps its id, vector and metadata.
/// `idx` must not be NULL. Holds the index exclusively while it runs. A save compacts on its own
/// once removed items exceed a fixed share of the slots.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_compact(
    idx: *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        h.index.compact().map(|_| ())
    })
}

/// The beam width of a C call: 0 is the index's ef_search.
pub(crate) fn ef_arg(ef: u32) -> Option<u32> {
    (ef != 0).then_some(ef)
}

/// The one search behind the single-query entry points (`filter` None is
/// the plain search).
///
/// # Safety
/// As `vectord_index_search`.
pub(crate) unsafe fn search_into(
    idx: *const vectord_index,
    query: *const f32,
    k: usize,
    ef: Option<u32>,
    filter: Option<&Filter>,
    out: *mut *mut vectord_hits,
) -> Result<()> {
    let h = index_arg(idx)?;
    let out = out_arg(out, "out")?;
    let q = floats_arg(query, h.index.dim() as usize, "query")?;
    let hits = h.index.search_filtered(&q, k, ef, filter)?;
    out.write(pack_hits(&hits));
    Ok(())
}

/// The one batch search behind the batch entry points (`filter` None is
/// the plain batch search).
///
/// # Safety
/// As `vectord_index_search_batch`.
pub(crate) unsafe fn search_batch_into(
    idx: *const vectord_index,
    nq: usize,
    queries: *const f32,
    k: usize,
    ef: Option<u32>,
    filter: Option<&Filter>,
    out: *mut *mut vectord_hits,
) -> Result<()> {
    let h = index_arg(idx)?;
    let len = mul_len(nq, h.index.dim() as usize, "queries")?;
    let queries = floats_arg(queries, len, "queries")?;
    if nq > 0 {
        out_arg(out, "out")?;
    }
    let results = h.index.search_batch_filtered(&queries, k, ef, filter)?;
    for (i, hits) in results.iter().enumerate() {
        // `out` was checked above (results is empty when nq is 0).
        out.add(i).write(pack_hits(hits));
    }
    Ok(())
}

/// The `k` (>= 1) nearest items to `query`, nearest first, with the index's
/// ef_search; fewer when the index holds fewer. `idx`, `query` (`dim`
/// floats at any byte alignment) and `out` must not be NULL. On success
/// `*out` receives hits the caller frees with `vectord_hits_free`. Runs in
/// parallel with other searches on the index.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_search(
    idx: *const vectord_index,
    query: *const f32,
    k: usize,
    out: *mut *mut vectord_hits,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || search_into(idx, query, k, None, None, out))
}

/// As `vectord_index_search`, with beam width `ef` (1..=65536; 0 = the
/// index's ef_search) for this call only; at least `k` is used.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_search_ef(
    idx: *const vectord_index,
    query: *const f32,
    k: usize,
    ef: u32,
    out: *mut *mut vectord_hits,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || search_into(idx, query, k, ef_arg(ef), None, out))
}

/// Searches `nq` queries for their `k` (>= 1) nearest items each, on all
/// cores. `queries` holds `nq * dim` floats, row-major, at any byte
/// alignment; `out` must hold `nq` pointers. On success `out[i]` receives
/// the hits of query `i`, each freed by the caller with `vectord_hits_free`;
/// on failure `out` is not written. With `nq == 0`, `queries` and `out` may
/// be NULL (k is still checked). `idx` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_search_batch(
    idx: *const vectord_index,
    nq: usize,
    queries: *const f32,
    k: usize,
    out: *mut *mut vectord_hits,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        search_batch_into(idx, nq, queries, k, None, None, out)
    })
}

/// Looks up item `id` (non-NULL UTF-8). Copies its stored vector to
/// `vector_out` (NULL to skip; else room for `dim` floats, at any byte
/// alignment; under cosine the normalised vector) and its metadata to
/// `*metadata_out` (NULL to skip; receives NULL when the item has none, else
/// a string the caller frees with `vectord_string_free`). `idx` must not be
/// NULL. Nothing is written on failure.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_get(
    idx: *const vectord_index,
    id: *const c_char,
    vector_out: *mut f32,
    metadata_out: *mut *mut c_char,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        let id = str_arg(id, "id")?;
        let metadata_out = opt_out_arg(metadata_out, "metadata_out")?;
        let (vector, metadata) = h.index.get(id)?;
        if !vector_out.is_null() {
            write_floats(vector_out, &vector);
        }
        if let Some(out) = metadata_out {
            out.write(match metadata {
                Some(m) => to_cstring(m.to_string()).into_raw(),
                None => ptr::null_mut(),
            });
        }
        Ok(())
    })
}

/// Number of live items. `idx` may be NULL (gives 0).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_len(idx: *const vectord_index) -> usize {
    infallible(0, || opt_ref(idx).map_or(0, |h| h.index.len()))
}

/// The index's `VECTORD_QUANTIZATION_*` value. `idx` may be NULL (gives 0).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_quantization(idx: *const vectord_index) -> u32 {
    infallible(0, || {
        opt_ref(idx).map_or(0, |h| h.index.quantization().code())
    })
}

/// Vector length of the index. `idx` may be NULL (gives 0).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_dim(idx: *const vectord_index) -> u32 {
    infallible(0, || opt_ref(idx).map_or(0, |h| h.index.dim()))
}

/// The index's name, owned by `idx` and valid until this handle is freed.
/// `idx` may be NULL (gives NULL).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_name(idx: *const vectord_index) -> *const c_char {
    infallible(ptr::null(), || {
        opt_ref(idx).map_or(ptr::null(), |h| h.name.as_ptr())
    })
}

/// Changes the default beam width of later searches (1..=65536) on every
/// handle of the index. `idx` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_set_ef_search(
    idx: *mut vectord_index,
    ef: u32,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || index_arg(idx)?.index.set_ef_search(ef))
}

/// Encodes the index as one LHV1 blob (docs/lhv1.md). `idx` and `out` must
/// not be NULL. On success `*out` receives bytes the caller frees with
/// `vectord_bytes_free`. Runs in parallel with searches.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_encode(
    idx: *const vectord_index,
    out: *mut *mut vectord_bytes,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        let out = out_arg(out, "out")?;
        let data = lhv1::encode(&h.index)?;
        out.write(into_handle(vectord_bytes { data }));
        Ok(())
    })
}

/// Decodes the LHV1 blob of `len` bytes at `blob` (untrusted: checked
/// completely) into a new index that belongs to no registry. `blob` may be
/// NULL only when `len` is 0; it is only read during the call. On success
/// `*out` receives a handle the caller frees with `vectord_index_free`.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_decode(
    blob: *const u8,
    len: usize,
    out: *mut *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let blob = slice_arg(blob, len, "blob")?;
        let out = out_arg(out, "out")?;
        let index = Arc::new(lhv1::decode(blob)?);
        out.write(vectord_index::new(index, None));
        Ok(())
    })
}

/// Persists the index now through the registry it came from; fails with
/// `VECTORD_STATUS_INVALID_ARGUMENT` when it belongs to no persistent
/// registry (or that registry is closed). `idx` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_save(
    idx: *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        let db = h.db.as_ref().ok_or_else(|| {
            invalid(format!(
                "index {:?} belongs to no persistent registry",
                h.index.name()
            ))
        })?;
        let db = db.upgrade().ok_or_else(|| {
            invalid(format!(
                "index {:?}: its registry is closed",
                h.index.name()
            ))
        })?;
        db.save(&h.index)
    })
}
