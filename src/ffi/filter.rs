//! `vectord_filter`: filters as data (docs/filters.md), and the searches and
//! counts that take one.

use std::ffi::c_char;

use super::buffers::vectord_hits;
use super::index::{ef_arg, index_arg, search_batch_into, search_into, vectord_index};
use super::{
    boundary, free_box, infallible, into_handle, opt_ref, out_arg, str_arg, vectord_error,
    vectord_status,
};
use crate::error::Result;
use crate::filter::Filter;

/// A compiled filter: immutable, thread-safe, reusable by any number of
/// searches on any index. Freed with `vectord_filter_free`.
pub struct vectord_filter {
    filter: Filter,
}

/// `NULL` is no filter; anything else must be a live filter.
///
/// # Safety
/// `p` is NULL or a live filter handle.
unsafe fn filter_arg<'a>(p: *const vectord_filter) -> Option<&'a Filter> {
    opt_ref(p).map(|f| &f.filter)
}

/// Compiles a filter from its JSON text (`filter_json`, non-NULL UTF-8, at
/// most 16 MiB; docs/filters.md). On success `*out` (non-NULL) receives a
/// filter the caller frees with `vectord_filter_free`; it may be shared by
/// any number of threads and searches. A bad filter is
/// `VECTORD_STATUS_INVALID_ARGUMENT` with a message naming where the problem
/// is, e.g. `$and[1].price: $gt needs a number`.
#[no_mangle]
pub unsafe extern "C" fn vectord_filter_new(
    filter_json: *const c_char,
    out: *mut *mut vectord_filter,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let text = str_arg(filter_json, "filter_json")?;
        let out = out_arg(out, "out")?;
        let filter = Filter::new(text)?;
        out.write(into_handle(vectord_filter { filter }));
        Ok(())
    })
}

/// Frees a filter. NULL is allowed.
#[no_mangle]
pub unsafe extern "C" fn vectord_filter_free(f: *mut vectord_filter) {
    infallible((), || free_box(f))
}

/// The `k` (>= 1) nearest live items matching `filter`, nearest first;
/// fewer than `k` only when fewer than `k` items match, never an item that
/// does not match. `ef` 0 is the index's ef_search; `filter` NULL is no
/// filter (as `vectord_index_search_ef`). `idx`, `query` (`dim` floats at
/// any byte alignment) and `out` must not be NULL. On success `*out`
/// receives hits the caller frees with `vectord_hits_free`.
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
        search_into(idx, query, k, ef_arg(ef), filter_arg(filter), out)
    })
}

/// Searches `nq` queries (`nq * dim` floats, row-major, at any byte
/// alignment) with one filter on all cores. `out` must hold `nq` pointers
/// (it may be NULL only when `nq` is 0); on success `out[i]` receives the
/// hits of query `i`, each freed with `vectord_hits_free`. Other arguments
/// as `vectord_index_search_filtered`; the filter is evaluated once for the
/// whole batch.
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
        search_batch_into(idx, nq, queries, k, ef_arg(ef), filter_arg(filter), out)
    })
}

/// How many live items match `filter` (NULL: all of them). `idx` and `out`
/// must not be NULL; `*out` is written on success only.
#[no_mangle]
pub unsafe extern "C" fn vectord_index_count(
    idx: *const vectord_index,
    filter: *const vectord_filter,
    out: *mut usize,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || -> Result<()> {
        let h = index_arg(idx)?;
        let out = out_arg(out, "out")?;
        out.write(h.index.count(filter_arg(filter))?);
        Ok(())
    })
}
