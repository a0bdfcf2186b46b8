//! `vectord_filter`: filters as data (docs/filters.md), and the searches and
//! counts that take one.

use super::buffers::{pack_hits, vectord_hits};
use super::index::{index_arg, vectord_index};
use super::{boundary, infallible, invalid, mul_len, out_arg, slice_arg, str_arg};
use super::{vectord_error, vectord_status};
use crate::filter::Filter;

/// A compiled filter: immutable, thread-safe, reusable by any number of
/// searches on any index. Freed with `vectord_filter_free`.
pub struct vectord_filter {
    filter: Filter,
}

/// `NULL` is no filter; anything else must be a live filter.
unsafe fn filter_arg<'a>(p: *const vectord_filter) -> Option<&'a Filter> {
    p.as_ref().map(|f| &f.filter)
}

fn ef_arg(ef: u32) -> Option<u32> {
    (ef != 0).then_some(ef)
}

/// Compiles a filter from its JSON text (docs/filters.md). A bad filter is
/// `VECTORD_STATUS_INVALID_ARGUMENT` with a message naming where the problem
/// is, e.g. `$and[1].price: $gt needs a number`.
#[no_mangle]
pub unsafe extern "C" fn vectord_filter_new(
    filter_json: *const std::ffi::c_char,
    out: *mut *mut vectord_filter,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let text = str_arg(filter_json, "filter_json")?;
        out_arg(out, "out")?;
        let filter = Filter::new(text)?;
        *out = Box::into_raw(Box::new(vectord_filter { filter }));
        Ok(())
    })
}

/// Frees a filter. NULL is allowed.
#[no_mangle]
pub unsafe extern "C" fn vectord_filter_free(f: *mut vectord_filter) {
    if !f.is_null() {
        infallible((), || drop(Box::from_raw(f)));
    }
}

/// The `k` nearest live items matching `filter`, nearest first; fewer than
/// `k` only when fewer than `k` items match. `ef` 0 is the index's
/// ef_search; `filter` NULL is no filter (as `vectord_index_search_ef`).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_search_filtered(
    idx: *const vectord_index,
    query: *const f32,
    k: usize,
    ef: u32,
    filter: *const vectord_filter,
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
        let hits = h
            .index
            .search_filtered(q, k, ef_arg(ef), filter_arg(filter))?;
        *out = pack_hits(&hits);
        Ok(())
    })
}

/// Searches `nq` queries (`nq * dim` floats, row-major) with one filter on
/// all cores; `out` receives `nq` hit lists, as `vectord_index_search_batch`.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_search_batch_filtered(
    idx: *const vectord_index,
    nq: usize,
    queries: *const f32,
    k: usize,
    ef: u32,
    filter: *const vectord_filter,
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
        let results = h
            .index
            .search_batch_filtered(queries, k, ef_arg(ef), filter_arg(filter))?;
        for (i, hits) in results.iter().enumerate() {
            *out.add(i) = pack_hits(hits);
        }
        Ok(())
    })
}

/// How many live items match `filter` (NULL: all of them).
#[no_mangle]
pub unsafe extern "C" fn vectord_index_count(
    idx: *const vectord_index,
    filter: *const vectord_filter,
    out: *mut usize,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let h = index_arg(idx)?;
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        *out = h.index.count(filter_arg(filter));
        Ok(())
    })
}
