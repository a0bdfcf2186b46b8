//! The C ABI (`include/vectord.h`, generated from this module by cbindgen;
//! docs/c-api.md describes the contract).
//!
//! The body of every entry point is one call of [`boundary`] (fallible
//! calls) or [`infallible`] (accessors and `*_free`), which catch panics so
//! no unwind ever crosses into C; tests/ffi_contract.rs checks that for
//! every `extern "C" fn` in the crate. Every pointer argument goes through
//! one of the checked casts below (NULL, alignment, length) before it is
//! dereferenced; a bad argument is an `INVALID_ARGUMENT` error naming the
//! parameter. There is no thread-local state: errors are returned as
//! objects the caller owns.
//!
//! Types that C sees as opaque (`vectord_index`, ...) are plain Rust structs
//! (not `repr(C)`), which cbindgen emits as `typedef struct x x;`.

#![allow(non_camel_case_types)]
// The safety contract of every extern function is the same and is stated
// once, in the header's preamble: each pointer is NULL or points to a live
// object of the declared type (arrays: of the stated length).
#![allow(clippy::missing_safety_doc)]

use std::borrow::Cow;
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
pub const VECTORD_ABI_VERSION: u32 = 2;

/// Cosine distance, 1 - cos(a, b); vectors are normalised when added.
pub const VECTORD_METRIC_COSINE: u32 = 0;
/// Squared Euclidean distance.
pub const VECTORD_METRIC_L2: u32 = 1;
/// Inner-product distance, 1 - a.b.
pub const VECTORD_METRIC_DOT: u32 = 2;

/// Searches walk the f32 vectors.
pub const VECTORD_QUANTIZATION_NONE: u32 = 0;
/// Searches walk 8-bit codes and re-rank the beam's results with exact f32
/// distances (returned distances are exact).
pub const VECTORD_QUANTIZATION_INT8: u32 = 1;

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
    /// A save or delete lost a race with another writer of the same store:
    /// the stored object changed since this process loaded or saved it. The
    /// in-memory index is kept; reload it (or refresh) to recover.
    Conflict = 10,
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
            10 => Conflict,
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
    // A misaligned `err` cannot be written without undefined behaviour and
    // has nowhere else to report to: the status alone comes back.
    if !err.is_null() && err.is_aligned() {
        // SAFETY: the caller passes NULL or a writable `vectord_error **`.
        unsafe { err.write(into_handle(boxed)) };
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

// The checked casts from C pointers. Every pointer an entry point receives
// goes through exactly one of these before it is dereferenced or turned into
// a reference: each checks NULL and alignment (a misaligned reference is
// undefined behaviour in Rust even if never read), so entry points do not
// repeat those checks.

/// `Err` naming `what` unless `p` is aligned for `T`.
fn aligned<T>(p: *const T, what: &str) -> Result<(), Error> {
    if p.is_aligned() {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} ({p:p}) is not aligned to {} bytes",
            std::mem::align_of::<T>()
        )))
    }
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

/// A required pointer to one value (a handle or a struct): the one place a
/// C pointer becomes a Rust reference.
///
/// # Safety
/// `p` is NULL or valid for reads for `'a`.
pub(crate) unsafe fn ref_arg<'a, T>(p: *const T, what: &str) -> Result<&'a T, Error> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    aligned(p, what)?;
    Ok(&*p)
}

/// A NULL-tolerant borrow for accessors that cannot report errors: NULL or
/// a misaligned pointer (never one the library handed out) is `None`.
///
/// # Safety
/// `p` is NULL, misaligned, or valid for reads for `'a`.
pub(crate) unsafe fn opt_ref<'a, T>(p: *const T) -> Option<&'a T> {
    if p.is_aligned() {
        p.as_ref()
    } else {
        None
    }
}

/// Moves `value` to the heap and hands it to C; [`free_box`] takes it back.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back an object made by [`into_handle`]; NULL (and a misaligned
/// pointer, which the library never handed out) is None.
///
/// # Safety
/// `p` is NULL or came from `into_handle::<T>` and is not used again.
pub(crate) unsafe fn take_handle<T>(p: *mut T) -> Option<Box<T>> {
    if !p.is_null() && p.is_aligned() {
        Some(Box::from_raw(p))
    } else {
        None
    }
}

/// Drops an object made by [`into_handle`], as [`take_handle`].
///
/// # Safety
/// As [`take_handle`].
pub(crate) unsafe fn free_box<T>(p: *mut T) {
    drop(take_handle(p));
}

/// A checked place to write one result: made only by [`out_arg`] or
/// [`opt_out_arg`], so writing it needs no further check.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// # Safety
    /// The pointer given to `out_arg` is valid for writes.
    pub(crate) unsafe fn write(self, value: T) {
        self.0.write(value)
    }
}

/// A required out-parameter.
pub(crate) fn out_arg<T>(p: *mut T, what: &str) -> Result<Out<T>, Error> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    aligned(p, what)?;
    Ok(Out(p))
}

/// An optional out-parameter: NULL is None (nothing to write).
pub(crate) fn opt_out_arg<T>(p: *mut T, what: &str) -> Result<Option<Out<T>>, Error> {
    if p.is_null() {
        Ok(None)
    } else {
        out_arg(p, what).map(Some)
    }
}

/// `Err` unless `n` elements of `T` fit in one allocation (a Rust slice).
fn slice_len<T>(n: usize, what: &str) -> Result<(), Error> {
    if n.checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(invalid(format!("{what}: {n} elements is too many")));
    }
    Ok(())
}

/// An array of `n` elements; NULL is allowed only when `n` is 0. A
/// misaligned array is refused (C cannot make one of pointers or structs
/// without breaking its own rules); float arrays use [`floats_arg`].
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
    slice_len::<T>(n, what)?;
    aligned(p, what)?;
    Ok(std::slice::from_raw_parts(p, n))
}

/// An array of `n` floats; NULL is allowed only when `n` is 0. Callers
/// (and language bindings) do pass floats at any byte offset, e.g. inside a
/// packed record, so a misaligned array is read with byte copies into an
/// aligned buffer instead of being borrowed.
///
/// # Safety
/// `p` is NULL or valid for reads of `n * 4` bytes for `'a`.
pub(crate) unsafe fn floats_arg<'a>(
    p: *const f32,
    n: usize,
    what: &str,
) -> Result<Cow<'a, [f32]>, Error> {
    if n == 0 {
        return Ok(Cow::Borrowed(&[]));
    }
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL but holds {n} elements")));
    }
    slice_len::<f32>(n, what)?;
    if p.is_aligned() {
        return Ok(Cow::Borrowed(std::slice::from_raw_parts(p, n)));
    }
    let mut copy = vec![0f32; n];
    // Byte copies: `copy_nonoverlapping::<f32>` would itself require `p` to
    // be aligned.
    std::ptr::copy_nonoverlapping(
        p.cast::<u8>(),
        copy.as_mut_ptr().cast::<u8>(),
        n * std::mem::size_of::<f32>(),
    );
    Ok(Cow::Owned(copy))
}

/// Writes `src` to a caller's float array that may sit at any byte offset.
///
/// # Safety
/// `dst` is valid for writes of `src.len() * 4` bytes.
pub(crate) unsafe fn write_floats(dst: *mut f32, src: &[f32]) {
    std::ptr::copy_nonoverlapping(
        src.as_ptr().cast::<u8>(),
        dst.cast::<u8>(),
        std::mem::size_of_val(src),
    );
}

/// `a * b` for array lengths.
pub(crate) fn mul_len(a: usize, b: usize, what: &str) -> Result<usize, Error> {
    a.checked_mul(b)
        .ok_or_else(|| invalid(format!("{what}: {a} * {b} overflows")))
}

// cbindgen copies literal constants into the header but cannot evaluate
// env!(), so the version is written out above; this check makes the build
// fail when Cargo.toml's version and the header's macros disagree. (The
// header builds VECTORD_VERSION_STRING from these three; cbindgen.toml.)
const _: () = assert!(
    VECTORD_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR"))
        && VECTORD_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR"))
        && VECTORD_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")),
    "VECTORD_VERSION_MAJOR/MINOR/PATCH differ from the version in Cargo.toml"
);

const fn parse_u32(s: &str) -> u32 {
    let s = s.as_bytes();
    let mut v = 0u32;
    let mut i = 0;
    while i < s.len() {
        assert!(s[i].is_ascii_digit(), "version part is not a number");
        v = v * 10 + (s[i] - b'0') as u32;
        i += 1;
    }
    v
}

static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version, "MAJOR.MINOR.PATCH". Static storage: never NULL,
/// never freed. Any thread.
#[no_mangle]
pub extern "C" fn vectord_version() -> *const c_char {
    infallible(c"".as_ptr(), || VERSION.as_ptr().cast())
}

/// The ABI version the library was built with; compare with
/// `VECTORD_ABI_VERSION` from the header you compiled against and refuse to
/// run on a mismatch.
#[no_mangle]
pub extern "C" fn vectord_abi_version() -> u32 {
    infallible(VECTORD_ABI_VERSION, || VECTORD_ABI_VERSION)
}

/// The name of a status, e.g. "VECTORD_STATUS_NOT_FOUND";
/// "VECTORD_STATUS_UNKNOWN" for a value outside the enum. Static storage:
/// never NULL, never freed.
#[no_mangle]
pub extern "C" fn vectord_status_name(s: vectord_status_arg) -> *const c_char {
    infallible(c"VECTORD_STATUS_UNKNOWN".as_ptr(), || {
        use vectord_status::*;
        let name: &'static CStr = match vectord_status::from_code(s.0) {
            Some(Ok) => c"VECTORD_STATUS_OK",
            Some(InvalidArgument) => c"VECTORD_STATUS_INVALID_ARGUMENT",
            Some(NotFound) => c"VECTORD_STATUS_NOT_FOUND",
            Some(AlreadyExists) => c"VECTORD_STATUS_ALREADY_EXISTS",
            Some(DimensionMismatch) => c"VECTORD_STATUS_DIMENSION_MISMATCH",
            Some(InvalidVector) => c"VECTORD_STATUS_INVALID_VECTOR",
            Some(Corrupt) => c"VECTORD_STATUS_CORRUPT",
            Some(Unsupported) => c"VECTORD_STATUS_UNSUPPORTED",
            Some(Storage) => c"VECTORD_STATUS_STORAGE",
            Some(Internal) => c"VECTORD_STATUS_INTERNAL",
            Some(Conflict) => c"VECTORD_STATUS_CONFLICT",
            None => c"VECTORD_STATUS_UNKNOWN",
        };
        name.as_ptr()
    })
}

/// The status of an error. `e` may be NULL (gives
/// `VECTORD_STATUS_INVALID_ARGUMENT`).
#[no_mangle]
pub unsafe extern "C" fn vectord_error_code(e: *const vectord_error) -> vectord_status {
    infallible(vectord_status::InvalidArgument, || {
        opt_ref(e).map_or(vectord_status::InvalidArgument, |e| e.code)
    })
}

/// The message of an error (UTF-8, never NULL), owned by `e` and valid until
/// `e` is freed. `e` may be NULL (gives "").
#[no_mangle]
pub unsafe extern "C" fn vectord_error_message(e: *const vectord_error) -> *const c_char {
    infallible(c"".as_ptr(), || {
        opt_ref(e).map_or(c"".as_ptr(), |e| e.message.as_ptr())
    })
}

/// Frees an error from any call's `err`. `e` may be NULL; free each error
/// once.
#[no_mangle]
pub unsafe extern "C" fn vectord_error_free(e: *mut vectord_error) {
    infallible((), || free_box(e))
}

/// Frees a string the library returned through a `char **` (the metadata of
/// `vectord_index_get`). `s` may be NULL; free each string once.
#[no_mangle]
pub unsafe extern "C" fn vectord_string_free(s: *mut c_char) {
    infallible((), || {
        if !s.is_null() {
            drop(CString::from_raw(s));
        }
    })
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
        for code in 0..11 {
            assert_eq!(vectord_status::from_code(code).unwrap() as u32, code);
        }
        assert!(vectord_status::from_code(11).is_none());
        let conflict = crate::Error::Conflict("x".into());
        assert_eq!(
            vectord_status::from_code(conflict.status_code()),
            Some(vectord_status::Conflict)
        );
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
