//! The C ABI (`include/vectord.h`, generated from this module by cbindgen;
//! docs/c-api.md describes the contract).
//!
//! Every entry point runs inside [`boundary`] (fallible calls) or
//! [`infallible`] (accessors and `*_free`), which catch panics so no unwind
//! ever crosses into C. Every pointer argument goes through one of the
//! checks below before it is dereferenced; a bad argument is an
//! `INVALID_ARGUMENT` error naming the parameter. There is no thread-local
//! state: errors are returned as objects the caller owns.
//!
//! Types that C sees as opaque (`vectord_index`, ...) are plain Rust structs
//! (not `repr(C)`), which cbindgen emits as `typedef struct x x;`.

#![allow(non_camel_case_types)]
// The safety contract of every extern function is the same and is stated
// once, in the header's preamble: each pointer is NULL or points to a live
// object of the declared type (arrays: of the stated length).
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;

mod buffers;
mod filter;
mod index;
mod registry;

pub use buffers::*;
pub use filter::*;
pub use index::*;
pub use registry::*;

/// Major version of the library (`vectord_version()` is "MAJOR.MINOR.PATCH").
pub const VECTORD_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const VECTORD_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const VECTORD_VERSION_PATCH: u32 = 0;
/// Version of the binary interface; `vectord_abi_version()` returns the value
/// the library was built with. Bumped on any incompatible change.
pub const VECTORD_ABI_VERSION: u32 = 1;

/// Cosine distance, 1 - cos(a, b); vectors are normalised when added.
pub const VECTORD_METRIC_COSINE: u32 = 0;
/// Squared Euclidean distance.
pub const VECTORD_METRIC_L2: u32 = 1;
/// Inner-product distance, 1 - a.b.
pub const VECTORD_METRIC_DOT: u32 = 2;

/// The result of every fallible call. `VECTORD_STATUS_OK` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum vectord_status {
    /// Success.
    Ok = 0,
    /// A NULL, out-of-range, malformed or non-UTF-8 argument.
    InvalidArgument = 1,
    /// No index or id of that name.
    NotFound = 2,
    /// An index of that name exists already.
    AlreadyExists = 3,
    /// A vector whose length does not match the index's dim.
    DimensionMismatch = 4,
    /// A vector with NaN or infinite components, or a zero vector under cosine.
    InvalidVector = 5,
    /// A blob (LHV1) or stored object that fails validation.
    Corrupt = 6,
    /// A blob written by a newer version, or an unsupported feature.
    Unsupported = 7,
    /// The storage backend failed (I/O, HTTP).
    Storage = 8,
    /// A bug in vectord (including a caught panic).
    Internal = 9,
}

impl vectord_status {
    fn from_code(code: u32) -> Option<vectord_status> {
        use vectord_status::*;
        Some(match code {
            0 => Ok,
            1 => InvalidArgument,
            2 => NotFound,
            3 => AlreadyExists,
            4 => DimensionMismatch,
            5 => InvalidVector,
            6 => Corrupt,
            7 => Unsupported,
            8 => Storage,
            9 => Internal,
            _ => return None,
        })
    }
}

/// A status as C passes it in. C may pass any integer in an enum, and an
/// out-of-range value in a Rust enum is undefined behaviour, so parameters
/// take this (same ABI as the C enum); cbindgen renames it to
/// `vectord_status` and does not emit it.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct vectord_status_arg(pub u32);

/// An error: a status code and a message. Owned by the caller, freed with
/// `vectord_error_free`.
pub struct vectord_error {
    code: vectord_status,
    message: CString,
}

impl vectord_error {
    fn new(e: &Error) -> vectord_error {
        let code = vectord_status::from_code(e.status_code()).unwrap_or(vectord_status::Internal);
        vectord_error {
            code,
            message: to_cstring(e.to_string()),
        }
    }
}

/// A CString of `s`, with any NUL bytes replaced (they cannot appear in ids,
/// names or JSON, but messages quote user input).
pub(crate) fn to_cstring(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let bytes: Vec<u8> = e
            .into_vec()
            .into_iter()
            .map(|b| if b == 0 { b'?' } else { b })
            .collect();
        CString::new(bytes).unwrap_or_default()
    })
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Stores `e` in `*err` (when `err` is not NULL) and returns its status.
fn fail(err: *mut *mut vectord_error, e: Error) -> vectord_status {
    let boxed = vectord_error::new(&e);
    let code = boxed.code;
    if !err.is_null() {
        // SAFETY: the caller passes NULL or a writable `vectord_error **`.
        unsafe { *err = Box::into_raw(Box::new(boxed)) };
    }
    code
}

/// The boundary around every fallible entry point: runs `f`, turns its error
/// or a panic into a status and (if `err` is not NULL) an error object.
/// `*err` is untouched on success.
pub(crate) fn boundary<F>(err: *mut *mut vectord_error, f: F) -> vectord_status
where
    F: FnOnce() -> Result<(), Error>,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => vectord_status::Ok,
        Ok(Err(e)) => fail(err, e),
        Err(p) => fail(
            err,
            Error::Internal(format!("panic inside vectord: {}", panic_message(&*p))),
        ),
    }
}

/// The boundary around entry points that cannot report errors (accessors,
/// `*_free`): a panic yields `fallback`.
pub(crate) fn infallible<T, F: FnOnce() -> T>(fallback: T, f: F) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// A required NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    CStr::from_ptr(p)
        .to_str()
        .map_err(|e| invalid(format!("{what} is not valid UTF-8: {e}")))
}

/// An optional string argument: NULL is None.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    p: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        Ok(None)
    } else {
        str_arg(p, what).map(Some)
    }
}

/// A required pointer to one value.
///
/// # Safety
/// `p` is NULL or valid for reads for `'a`.
pub(crate) unsafe fn ref_arg<'a, T>(p: *const T, what: &str) -> Result<&'a T, Error> {
    p.as_ref().ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// A required out-parameter.
pub(crate) fn out_arg<T>(p: *mut *mut T, what: &str) -> Result<(), Error> {
    if p.is_null() {
        Err(invalid(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

/// An array of `n` elements; NULL is allowed only when `n` is 0.
///
/// # Safety
/// `p` is NULL or valid for reads of `n` elements for `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(p: *const T, n: usize, what: &str) -> Result<&'a [T], Error> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL but holds {n} elements")));
    }
    if n.checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(invalid(format!("{what}: {n} elements is too many")));
    }
    Ok(std::slice::from_raw_parts(p, n))
}

/// `a * b` for array lengths.
pub(crate) fn mul_len(a: usize, b: usize, what: &str) -> Result<usize, Error> {
    a.checked_mul(b)
        .ok_or_else(|| invalid(format!("{what}: {a} * {b} overflows")))
}

static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version, "MAJOR.MINOR.PATCH" (static storage; never NULL).
#[no_mangle]
pub extern "C" fn vectord_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The ABI version the library was built with; compare with
/// `VECTORD_ABI_VERSION` from the header you compiled against.
#[no_mangle]
pub extern "C" fn vectord_abi_version() -> u32 {
    VECTORD_ABI_VERSION
}

/// The name of a status, e.g. "VECTORD_STATUS_NOT_FOUND"; "VECTORD_STATUS_UNKNOWN"
/// for a value outside the enum (static storage; never NULL).
#[no_mangle]
pub extern "C" fn vectord_status_name(s: vectord_status_arg) -> *const c_char {
    use vectord_status::*;
    let name: &'static str = match vectord_status::from_code(s.0) {
        Some(Ok) => "VECTORD_STATUS_OK\0",
        Some(InvalidArgument) => "VECTORD_STATUS_INVALID_ARGUMENT\0",
        Some(NotFound) => "VECTORD_STATUS_NOT_FOUND\0",
        Some(AlreadyExists) => "VECTORD_STATUS_ALREADY_EXISTS\0",
        Some(DimensionMismatch) => "VECTORD_STATUS_DIMENSION_MISMATCH\0",
        Some(InvalidVector) => "VECTORD_STATUS_INVALID_VECTOR\0",
        Some(Corrupt) => "VECTORD_STATUS_CORRUPT\0",
        Some(Unsupported) => "VECTORD_STATUS_UNSUPPORTED\0",
        Some(Storage) => "VECTORD_STATUS_STORAGE\0",
        Some(Internal) => "VECTORD_STATUS_INTERNAL\0",
        None => "VECTORD_STATUS_UNKNOWN\0",
    };
    name.as_ptr().cast()
}

/// The status of an error; `VECTORD_STATUS_INVALID_ARGUMENT` for NULL.
#[no_mangle]
pub unsafe extern "C" fn vectord_error_code(e: *const vectord_error) -> vectord_status {
    match e.as_ref() {
        Some(e) => e.code,
        None => vectord_status::InvalidArgument,
    }
}

/// The message of an error, valid until the error is freed; "" for NULL.
#[no_mangle]
pub unsafe extern "C" fn vectord_error_message(e: *const vectord_error) -> *const c_char {
    match e.as_ref() {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Frees an error. NULL is allowed.
#[no_mangle]
pub unsafe extern "C" fn vectord_error_free(e: *mut vectord_error) {
    if !e.is_null() {
        infallible((), || drop(Box::from_raw(e)));
    }
}

/// Frees a string returned by the library (`vectord_index_get`'s metadata).
/// NULL is allowed.
#[no_mangle]
pub unsafe extern "C" fn vectord_string_free(s: *mut c_char) {
    if !s.is_null() {
        infallible((), || drop(CString::from_raw(s)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_the_crate() {
        assert_eq!(
            VECTORD_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            VECTORD_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            VECTORD_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
    }

    #[test]
    fn status_codes_match_errors() {
        for code in 0..10 {
            assert_eq!(vectord_status::from_code(code).unwrap() as u32, code);
        }
        assert!(vectord_status::from_code(10).is_none());
    }

    #[test]
    fn panics_become_internal() {
        let mut err: *mut vectord_error = std::ptr::null_mut();
        let st = boundary(&mut err, || panic!("boom"));
        assert_eq!(st, vectord_status::Internal);
        unsafe {
            assert_eq!(vectord_error_code(err), vectord_status::Internal);
            let msg = CStr::from_ptr(vectord_error_message(err)).to_str().unwrap();
            assert!(msg.contains("boom"), "{msg}");
            vectord_error_free(err);
        }
    }
}
