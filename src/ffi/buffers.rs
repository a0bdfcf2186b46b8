//! Result buffers handed to C: hits, string lists, byte buffers.

use std::alloc::{alloc, dealloc, Layout};
use std::ffi::{c_char, CString};
use std::ptr;

use super::{free_box, infallible, opt_ref};
use crate::index::Hit;

/// One search hit. `id` and `metadata` (NULL when the item has none) are
/// NUL-terminated and live as long as the `vectord_hits` they came from.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vectord_hit {
    /// The item's id (UTF-8, never NULL).
    pub id: *const c_char,
    /// Its distance to the query under the index's metric (smaller is nearer).
    pub distance: f32,
    /// The item's metadata JSON, or NULL.
    pub metadata: *const c_char,
}

/// The hits of one search, nearest first. Immutable; freed with
/// `vectord_hits_free`.
//
// In memory it is one allocation: a `HitsHeader`, then the `vectord_hit`
// array, then every id and metadata string NUL-terminated. C sees only the
// opaque type; the pointer really points at the header.
pub struct vectord_hits {
    _opaque: [u8; 0],
}

#[repr(C)]
struct HitsHeader {
    len: usize,
    /// Size of the whole allocation (its alignment is `HITS_ALIGN`).
    size: usize,
}

const HITS_ALIGN: usize = {
    let a = std::mem::align_of::<HitsHeader>();
    let b = std::mem::align_of::<vectord_hit>();
    if a > b {
        a
    } else {
        b
    }
};

/// Offset of the hit array after the header.
const HITS_OFFSET: usize = {
    let h = std::mem::size_of::<HitsHeader>();
    let a = std::mem::align_of::<vectord_hit>();
    h.div_ceil(a) * a
};

/// Packs `hits` into one allocation. Returns NULL only if the allocator
/// fails (which aborts in practice).
pub(crate) fn pack_hits(hits: &[Hit]) -> *mut vectord_hits {
    let strings: usize = hits
        .iter()
        .map(|h| h.id.len() + 1 + h.metadata.as_ref().map_or(0, |m| m.len() + 1))
        .sum();
    let array = hits.len() * std::mem::size_of::<vectord_hit>();
    let size = HITS_OFFSET + array + strings;
    let Ok(layout) = Layout::from_size_align(size, HITS_ALIGN) else {
        return ptr::null_mut();
    };
    // SAFETY: `size` is at least the header's size, so not zero; every write
    // below stays inside the `size` bytes laid out above.
    unsafe {
        let base = alloc(layout);
        if base.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        base.cast::<HitsHeader>().write(HitsHeader {
            len: hits.len(),
            size,
        });
        let out = base.add(HITS_OFFSET).cast::<vectord_hit>();
        let mut s = base.add(HITS_OFFSET + array);
        let mut put = |text: &str| -> *const c_char {
            let start = s;
            ptr::copy_nonoverlapping(text.as_ptr(), s, text.len());
            *s.add(text.len()) = 0;
            s = s.add(text.len() + 1);
            start.cast()
        };
        for (i, h) in hits.iter().enumerate() {
            let id = put(&h.id);
            let metadata = match &h.metadata {
                Some(m) => put(m),
                None => ptr::null(),
            };
            out.add(i).write(vectord_hit {
                id,
                distance: h.distance,
                metadata,
            });
        }
        base.cast()
    }
}

/// The header of a packed hit list; NULL or misaligned (never a pointer the
/// library handed out) is None.
///
/// # Safety
/// `h` is NULL, misaligned, or a live `vectord_hits` from `pack_hits`.
unsafe fn header<'a>(h: *const vectord_hits) -> Option<&'a HitsHeader> {
    opt_ref(h.cast::<HitsHeader>())
}

/// Number of hits in `h`. `h` may be NULL (gives 0).
#[no_mangle]
pub unsafe extern "C" fn vectord_hits_len(h: *const vectord_hits) -> usize {
    infallible(0, || header(h).map_or(0, |hd| hd.len))
}

/// Hit `i` of `h` (0 = nearest), owned by `h` and valid until `h` is freed.
/// NULL if `h` is NULL or `i >= vectord_hits_len(h)`.
#[no_mangle]
pub unsafe extern "C" fn vectord_hits_get(h: *const vectord_hits, i: usize) -> *const vectord_hit {
    infallible(ptr::null(), || match header(h) {
        Some(hd) if i < hd.len => h.cast::<u8>().add(HITS_OFFSET).cast::<vectord_hit>().add(i),
        _ => ptr::null(),
    })
}

/// Frees hits from `vectord_index_search[_ef]` or one entry of
/// `vectord_index_search_batch`'s array, with every `vectord_hit` and string
/// in them. `h` may be NULL; free each once.
#[no_mangle]
pub unsafe extern "C" fn vectord_hits_free(h: *mut vectord_hits) {
    infallible((), || {
        if let Some(hd) = header(h) {
            // SAFETY: the same size and alignment `pack_hits` allocated with.
            let layout = Layout::from_size_align_unchecked(hd.size, HITS_ALIGN);
            dealloc(h.cast(), layout);
        }
    })
}

/// A list of strings (index names). Freed with `vectord_strings_free`.
pub struct vectord_strings {
    pub(crate) items: Vec<CString>,
}

/// Number of strings in `s`. `s` may be NULL (gives 0).
#[no_mangle]
pub unsafe extern "C" fn vectord_strings_len(s: *const vectord_strings) -> usize {
    infallible(0, || opt_ref(s).map_or(0, |s| s.items.len()))
}

/// String `i` of `s`, owned by `s` and valid until `s` is freed. NULL if `s`
/// is NULL or `i >= vectord_strings_len(s)`.
#[no_mangle]
pub unsafe extern "C" fn vectord_strings_get(s: *const vectord_strings, i: usize) -> *const c_char {
    infallible(ptr::null(), || {
        match opt_ref(s).and_then(|s| s.items.get(i)) {
            Some(c) => c.as_ptr(),
            None => ptr::null(),
        }
    })
}

/// Frees a list of strings and the strings in it. `s` may be NULL; free
/// each list once.
#[no_mangle]
pub unsafe extern "C" fn vectord_strings_free(s: *mut vectord_strings) {
    infallible((), || free_box(s))
}

/// A byte buffer (an LHV1 blob). Freed with `vectord_bytes_free`.
pub struct vectord_bytes {
    pub(crate) data: Vec<u8>,
}

/// The `vectord_bytes_len(b)` bytes of `b`, owned by `b` and valid until `b`
/// is freed (not NULL for an empty buffer). `b` may be NULL (gives NULL).
#[no_mangle]
pub unsafe extern "C" fn vectord_bytes_data(b: *const vectord_bytes) -> *const u8 {
    infallible(ptr::null(), || {
        opt_ref(b).map_or(ptr::null(), |b| b.data.as_ptr())
    })
}

/// Number of bytes in `b`. `b` may be NULL (gives 0).
#[no_mangle]
pub unsafe extern "C" fn vectord_bytes_len(b: *const vectord_bytes) -> usize {
    infallible(0, || opt_ref(b).map_or(0, |b| b.data.len()))
}

/// Frees a byte buffer. `b` may be NULL; free each buffer once.
#[no_mangle]
pub unsafe extern "C" fn vectord_bytes_free(b: *mut vectord_bytes) {
    infallible((), || free_box(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::sync::Arc;

    #[test]
    fn packed_hits_round_trip() {
        let hits = vec![
            Hit {
                id: Arc::from("a"),
                distance: 0.0,
                metadata: Some(Arc::from("{\"x\":1}")),
            },
            Hit {
                id: Arc::from("bcd"),
                distance: 2.5,
                metadata: None,
            },
        ];
        unsafe {
            let p = pack_hits(&hits);
            assert_eq!(vectord_hits_len(p), 2);
            let h0 = &*vectord_hits_get(p, 0);
            assert_eq!(CStr::from_ptr(h0.id).to_str().unwrap(), "a");
            assert_eq!(CStr::from_ptr(h0.metadata).to_str().unwrap(), "{\"x\":1}");
            let h1 = &*vectord_hits_get(p, 1);
            assert_eq!(CStr::from_ptr(h1.id).to_str().unwrap(), "bcd");
            assert_eq!(h1.distance, 2.5);
            assert!(h1.metadata.is_null());
            assert!(vectord_hits_get(p, 2).is_null());
            vectord_hits_free(p);
            let empty = pack_hits(&[]);
            assert_eq!(vectord_hits_len(empty), 0);
            vectord_hits_free(empty);
        }
    }
}
