//! Transparent huge pages for the big arrays (vectors, layer-0 lists, codes,
//! an encode buffer).
//!
//! A search reads rows scattered over arrays of tens or hundreds of MB: with
//! 4 KiB pages nearly every row is a TLB miss and a page walk. Linux backs a
//! range with 2 MiB pages when the range is advised so (`MADV_HUGEPAGE`, the
//! default `madvise` mode of THP) and its pages are touched after the advice;
//! none of hnswlib, FAISS or USearch asks for them. Decoding a big index also
//! takes 512 times fewer page faults.

/// Below this many bytes a buffer is not worth a system call.
const MIN_BYTES: usize = 8 << 20;

/// Asks Linux to back the 2 MiB-aligned interior of `len` bytes from `ptr`
/// with huge pages. Harmless where THP is off or the call fails.
pub(crate) fn advise_huge_pages(ptr: *const u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if len < MIN_BYTES {
            return;
        }
        let start = (ptr as usize).next_multiple_of(HUGE);
        let end = (ptr as usize + len) & !(HUGE - 1);
        if end > start {
            // SAFETY: the range lies inside one live allocation of `len`
            // bytes; MADV_HUGEPAGE changes how its pages are backed, never
            // their contents, and a failure is harmless.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len);
}

/// The same for a vector's whole capacity: called after reserving and before
/// writing, so the new rows fault in as huge pages.
pub(crate) fn advise_capacity<T>(v: &Vec<T>) {
    advise_huge_pages(v.as_ptr().cast(), v.capacity() * std::mem::size_of::<T>());
}
