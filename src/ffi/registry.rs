//! `vectord_registry`: a set of named indexes, optionally persistent, and
//! the log callback.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::buffers::vectord_strings;
use super::index::{params_arg, vectord_index, vectord_index_params};
use super::{
    boundary, infallible, into_handle, opt_str_arg, out_arg, ref_arg, slice_arg, str_arg,
    take_handle, to_cstring, vectord_error, vectord_status,
};
use crate::index::Index;
use crate::log;
use crate::registry::Registry;

/// A registry of named indexes (in memory, or backed by a directory or a
/// storaged service). Closed with `vectord_registry_close`.
pub struct vectord_registry {
    db: Arc<Registry>,
}

unsafe fn registry_arg<'a>(r: *const vectord_registry) -> crate::Result<&'a vectord_registry> {
    ref_arg(r, "r")
}

impl vectord_registry {
    /// A handle to `index` that saves through this registry.
    fn handle(&self, index: Arc<Index>) -> *mut vectord_index {
        vectord_index::new(index, Some(Arc::downgrade(&self.db)))
    }
}

/// The entry points that act on one index by name (`name` non-NULL UTF-8).
///
/// # Safety
/// As `vectord_registry_delete`.
unsafe fn by_name(
    r: *const vectord_registry,
    name: *const c_char,
    act: impl FnOnce(&Registry, &str) -> crate::Result<()>,
) -> crate::Result<()> {
    let reg = registry_arg(r)?;
    let name = str_arg(name, "name")?;
    act(&reg.db, name)
}

/// Opens a registry and loads every index stored in it. `storage_url` NULL
/// or "" keeps everything in memory; "file:///abs/dir" or a plain path is a
/// directory store; "http(s)://..." is a storaged service. `options_json`
/// NULL means the defaults; unknown keys are an error (docs/c-api.md lists
/// them). Only one process may write a store directory or prefix at a time.
/// On success `*out` receives a registry the caller closes with
/// `vectord_registry_close`.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_open(
    storage_url: *const c_char,
    options_json: *const c_char,
    out: *mut *mut vectord_registry,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let url = opt_str_arg(storage_url, "storage_url")?;
        let options = opt_str_arg(options_json, "options_json")?;
        let out = out_arg(out, "out")?;
        let db = Registry::open(url, options)?;
        out.write(into_handle(vectord_registry { db }));
        Ok(())
    })
}

/// Flushes pending saves (best effort; failures go to the log) and frees the
/// registry. Index handles from it stay usable but are no longer saved. `r`
/// may be NULL; close each registry once, after every call using it
/// returned.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_close(r: *mut vectord_registry) {
    infallible((), || {
        if let Some(r) = take_handle(r) {
            r.db.close();
        }
    })
}

/// Creates an empty index in the registry (and saves it when persistent).
/// `r`, `params` and `params->name` must not be NULL; `params` is only read
/// during the call. On success `*out` receives a handle the caller frees
/// with `vectord_index_free`.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_create(
    r: *mut vectord_registry,
    params: *const vectord_index_params,
    out: *mut *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let reg = registry_arg(r)?;
        let out = out_arg(out, "out")?;
        let params = params_arg(params)?;
        let index = reg.db.create(params)?;
        out.write(reg.handle(index));
        Ok(())
    })
}

/// A new handle to the index called `name` (non-NULL UTF-8). `r` must not
/// be NULL. On success `*out` receives a handle the caller frees with
/// `vectord_index_free`.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_get(
    r: *const vectord_registry,
    name: *const c_char,
    out: *mut *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let reg = registry_arg(r)?;
        let name = str_arg(name, "name")?;
        let out = out_arg(out, "out")?;
        let index = reg.db.get(name)?;
        out.write(reg.handle(index));
        Ok(())
    })
}

/// Deletes the index called `name` (non-NULL UTF-8) and its stored copy;
/// if the store refuses, the index is kept. Handles to it stay usable but
/// are no longer saved. `r` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_delete(
    r: *mut vectord_registry,
    name: *const c_char,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || by_name(r, name, Registry::delete))
}

/// The names of the registry's indexes, sorted. `r` must not be NULL. On
/// success `*out` receives a list the caller frees with
/// `vectord_strings_free`.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_names(
    r: *const vectord_registry,
    out: *mut *mut vectord_strings,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let reg = registry_arg(r)?;
        let out = out_arg(out, "out")?;
        let items: Vec<CString> = reg.db.names().into_iter().map(to_cstring).collect();
        out.write(into_handle(vectord_strings { items }));
        Ok(())
    })
}

/// Decodes the LHV1 blob of `len` bytes at `blob` (untrusted: checked
/// completely) and registers it under the name it carries (and saves it when
/// persistent); `VECTORD_STATUS_ALREADY_EXISTS` if that name is taken. `r`
/// must not be NULL; `blob` may be NULL only when `len` is 0 and is only
/// read during the call. On success `*out` receives a handle the caller
/// frees with `vectord_index_free`.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_import(
    r: *mut vectord_registry,
    blob: *const u8,
    len: usize,
    out: *mut *mut vectord_index,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || {
        let reg = registry_arg(r)?;
        let blob = slice_arg(blob, len, "blob")?;
        let out = out_arg(out, "out")?;
        let index = reg.db.import(blob)?;
        out.write(reg.handle(index));
        Ok(())
    })
}

/// Writes every pending change to storage and reports the first failure
/// (no-op in memory). `r` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_flush(
    r: *mut vectord_registry,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || registry_arg(r)?.db.flush())
}

/// Brings the registry up to date with its store (for read replicas and
/// after a conflict): loads indexes other processes created, reloads those
/// whose stored version changed, drops those whose object is gone — each
/// only when it has no unsaved local changes; those are reported as one
/// `VECTORD_STATUS_CONFLICT` after everything else was applied, never
/// discarded. Costs one listing when nothing changed (S3, directory). No-op
/// in memory.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_refresh(
    r: *mut vectord_registry,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || registry_arg(r)?.db.refresh())
}

/// Discards this registry's state of the index called `name` (unsaved
/// changes included) and loads the stored one; handles already held see
/// the reloaded contents. If the store no longer has it, the index is
/// dropped from the registry. `VECTORD_STATUS_NOT_FOUND` if neither has it;
/// `VECTORD_STATUS_CONFLICT` if the stored index has other parameters
/// (dim, metric, m, ef_construction) than the loaded one.
#[no_mangle]
pub unsafe extern "C" fn vectord_registry_reload(
    r: *mut vectord_registry,
    name: *const c_char,
    err: *mut *mut vectord_error,
) -> vectord_status {
    boundary(err, || by_name(r, name, Registry::reload))
}

/// The C log callback and its user pointer. The caller promises the
/// callback may be called from any thread with that pointer.
struct CLogger {
    cb: extern "C" fn(level: u32, message: *const c_char, user: *mut c_void),
    user: *mut c_void,
}

// SAFETY: `vectord_set_log_callback` documents that the callback and `user`
// must be usable from any thread.
unsafe impl Send for CLogger {}
unsafe impl Sync for CLogger {}

/// Routes log messages (level 1 error, 2 warning, 3 info, 4 debug) to `cb`,
/// process-wide. `cb` is called from any thread, possibly from several at
/// once, with `user`, which must stay valid until the callback is replaced;
/// `message` is valid during the call only. NULL `cb` restores the
/// default: warnings and errors to stderr.
#[no_mangle]
pub unsafe extern "C" fn vectord_set_log_callback(
    cb: Option<extern "C" fn(level: u32, message: *const c_char, user: *mut c_void)>,
    user: *mut c_void,
) {
    infallible((), || match cb {
        None => log::set_log_callback(None),
        Some(cb) => {
            let logger = CLogger { cb, user };
            log::set_log_callback(Some(Box::new(move |level: u32, message: &str| {
                let logger = &logger;
                let text = to_cstring(message.to_string());
                (logger.cb)(level, text.as_ptr(), logger.user);
            })));
        }
    })
}
