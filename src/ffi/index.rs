//! `vectord_index`: index handles and everything done through them.

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::{Arc, Weak};

use super::buffers::{pack_hits, vectord_bytes, vectord_hits};
use super::{
    boundary, infallible, invalid, mul_len, opt_str_arg, out_arg, ref_arg, slice_arg, str_arg,
    to_cstring, vectord_error, vectord_status,
};
use crate::error::{Error, Result};
use crate::hnsw::Metric;
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
        Box::into_raw(Box::new(vectord_index { index, db, name }))
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
    let or = |v: u32, d: u32| if v == 0 { d } else { v };
    let params = IndexParams {
        name: name.to_string(),
        dim: p.dim,
        metric,
        m: or(p.m, DEFAULT_M),
        ef_construction: or(p.ef_construction, DEFAULT_EF_CONSTRUCTION),
        ef_search: or(p.ef_search, DEFAULT_EF_SEARCH),
    };
    params.validate()?;
    Ok(params)
}

/// Writes a new handle to `*out` (checked non-NULL by the caller).
unsafe fn put_index(out: *mut *mut vectord_index, index: Arc<Index>, db: Option<Weak<Registry>>) {
    *out = vectord_index::new(index, db);
}

/// Creates an empty in-memory index that belongs to no registry.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_new(
    params: *const vectord_index_params,
    out: *mut *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        out_arg(out, "out")?;
        let params = params_arg(params)?;
        let index = Arc::new(Index::new(params)?);
        put_index(out, index, None);
        Ok(())
    })
}

/// Another handle to the same index (freed separately).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_ref(
    idx: *mut vectord_index,
    out: *mut *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        out_arg(out, "out")?;
        put_index(out, h.index.clone(), h.db.clone());
        Ok(())
    })
}

/// Frees a handle. NULL is allowed.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_free(idx: *mut vectord_index) {
    if !idx.is_null() {
        infallible((), || drop(Box::from_raw(idx)));
    }
}

/// Upserts `n` items.
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
        let id_ptrs = slice_arg(ids, n, "ids")?;
        let mut id_strs = Vec::with_capacity(n);
        for (i, &p) in id_ptrs.iter().enumerate() {
            id_strs.push(str_arg(p, &format!("ids[{i}]"))?);
        }
        let len = mul_len(n, h.index.dim() as usize, "vectors")?;
        let vectors = slice_arg(vectors, len, "vectors")?;
        let md = if metadata.is_null() {
            None
        } else {
            let md_ptrs = slice_arg(metadata, n, "metadata")?;
            let mut md = Vec::with_capacity(n);
            for (i, &p) in md_ptrs.iter().enumerate() {
                md.push(opt_str_arg(p, &format!("metadata[{i}]"))?);
            }
            Some(md)
        };
        h.index.add(&id_strs, vectors, md.as_deref())
    })
}

/// Removes the given ids (absent ids are skipped).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_remove(
    idx: *mut vectord_index,
    n: usize,
    ids: *const *const c_char,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        let id_ptrs = slice_arg(ids, n, "ids")?;
        let mut id_strs = Vec::with_capacity(n);
        for (i, &p) in id_ptrs.iter().enumerate() {
            id_strs.push(str_arg(p, &format!("ids[{i}]"))?);
        }
        h.index.remove(&id_strs).map(|_| ())
    })
}

unsafe fn search_impl(
    idx: *mut vectord_index,
    query: *const f32,
    k: usize,
    ef: Option<u32>,
    out: *mut *mut vectord_hits,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        if query.is_null() {
            return Err(invalid("query is NULL"));
        }
        if k == 0 {
            return Err(invalid("k is 0; ask for at least one hit"));
        }
        out_arg(out, "out")?;
        let q = slice_arg(query, h.index.dim() as usize, "query")?;
        let hits = h.index.search(q, k, ef)?;
        *out = pack_hits(&hits);
        Ok(())
    })
}

/// The `k` nearest items to `query` (`dim` floats), nearest first, using the
/// index's ef_search.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_search(
    idx: *mut vectord_index,
    query: *const f32,
    k: usize,
    out: *mut *mut vectord_hits,
    err: *mut *mut vectord_error,
) -> vectord_status {
    search_impl(idx, query, k, None, out, err)
}

/// As `vectord_index_search` with beam width `ef` for this call only (0 =
/// the index's ef_search; at least `k` is used).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_search_ef(
    idx: *mut vectord_index,
    query: *const f32,
    k: usize,
    ef: u32,
    out: *mut *mut vectord_hits,
    err: *mut *mut vectord_error,
) -> vectord_status {
    let ef = if ef == 0 { None } else { Some(ef) };
    search_impl(idx, query, k, ef, out, err)
}

/// Searches `nq` queries (`nq * dim` floats, row-major) on all cores.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_search_batch(
    idx: *mut vectord_index,
    nq: usize,
    queries: *const f32,
    k: usize,
    out: *mut *mut vectord_hits,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        if k == 0 {
            return Err(invalid("k is 0; ask for at least one hit"));
        }
        let len = mul_len(nq, h.index.dim() as usize, "queries")?;
        let queries = slice_arg(queries, len, "queries")?;
        if nq > 0 && out.is_null() {
            return Err(invalid(format!("out is NULL but nq is {nq}")));
        }
        if nq == 0 {
            return Ok(());
        }
        let results = h.index.search_batch(queries, k, None)?;
        for (i, hits) in results.iter().enumerate() {
            *out.add(i) = pack_hits(hits);
        }
        Ok(())
    })
}

/// Copies the stored vector of `id` to `vector_out` (`dim` floats; NULL to
/// skip) and its metadata to `*metadata_out` (NULL to skip).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_get(
    idx: *mut vectord_index,
    id: *const c_char,
    vector_out: *mut f32,
    metadata_out: *mut *mut c_char,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        let id = str_arg(id, "id")?;
        let (vector, metadata) = h.index.get(id)?;
        if !vector_out.is_null() {
            ptr::copy_nonoverlapping(vector.as_ptr(), vector_out, vector.len());
        }
        if !metadata_out.is_null() {
            *metadata_out = match metadata {
                Some(m) => to_cstring(m.to_string()).into_raw(),
                None => ptr::null_mut(),
            };
        }
        Ok(())
    })
}

/// Number of live items (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_len(idx: *mut vectord_index) -> usize {
    match idx.as_ref() {
        Some(h) => infallible(0, || h.index.len()),
        None => 0,
    }
}

/// Vector length (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_dim(idx: *mut vectord_index) -> u32 {
    idx.as_ref().map_or(0, |h| h.index.dim())
}

/// The index's name, valid while this handle lives (NULL for NULL).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_name(idx: *mut vectord_index) -> *const c_char {
    idx.as_ref().map_or(ptr::null(), |h| h.name.as_ptr())
}

/// Changes the default beam width of later searches (1..=65536).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_set_ef_search(
    idx: *mut vectord_index,
    ef: u32,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || index_arg(idx)?.index.set_ef_search(ef))
}

/// Encodes the index as one LHV1 blob.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_encode(
    idx: *mut vectord_index,
    out: *mut *mut vectord_bytes,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        out_arg(out, "out")?;
        let data = lhv1::encode(&h.index);
        *out = Box::into_raw(Box::new(vectord_bytes { data }));
        Ok(())
    })
}

/// Decodes an LHV1 blob into a new index that belongs to no registry.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_decode(
    blob: *const u8,
    len: usize,
    out: *mut *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let blob = slice_arg(blob, len, "blob")?;
        out_arg(out, "out")?;
        let index = Arc::new(lhv1::decode(blob)?);
        put_index(out, index, None);
        Ok(())
    })
}

/// Persists the index now through the registry it came from.
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
            Error::InvalidArgument(format!(
                "index {:?}: its registry is closed",
                h.index.name()
            ))
        })?;
        db.save(&h.index)
    })
}
