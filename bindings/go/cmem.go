package vectord

/*
#include <stdlib.h>
#include <string.h>
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// ptrSize is the size of a C pointer.
const ptrSize = unsafe.Sizeof(uintptr(0))

// packIDs copies ids into ONE C allocation laid out as an array of
// len(ids) `char *` followed by the NUL-terminated bytes they point to.
// The caller frees it with C.free. The pointers are stored as uintptr:
// they point into C memory, never at Go memory. An id holding a NUL byte cannot cross the
// C ABI intact, so it is refused here.
func packIDs(ids []string) (unsafe.Pointer, error) {
	total := uintptr(len(ids)) * ptrSize
	for j, id := range ids {
		if strings.IndexByte(id, 0) >= 0 {
			return nil, newError(StatusInvalidArgument, fmt.Sprintf("item %d (id %q): id contains a NUL byte", j, id))
		}
		total += uintptr(len(id)) + 1
	}
	buf := C.malloc(C.size_t(total))
	ptrs := unsafe.Slice((*uintptr)(buf), len(ids))
	data := unsafe.Slice((*byte)(buf), total)
	off := uintptr(len(ids)) * ptrSize
	for j, id := range ids {
		ptrs[j] = uintptr(unsafe.Pointer(&data[off]))
		off += uintptr(copy(data[off:], id))
		data[off] = 0
		off++
	}
	return buf, nil
}

// packMetadata is packIDs for metadata: nil entries become NULL pointers.
func packMetadata(md [][]byte) (unsafe.Pointer, error) {
	total := uintptr(len(md)) * ptrSize
	for j, m := range md {
		if m == nil {
			continue
		}
		if i := strings.IndexByte(string(m), 0); i >= 0 {
			return nil, newError(StatusInvalidArgument, fmt.Sprintf("item %d: metadata contains a NUL byte at offset %d", j, i))
		}
		total += uintptr(len(m)) + 1
	}
	buf := C.malloc(C.size_t(total))
	ptrs := unsafe.Slice((*uintptr)(buf), len(md))
	data := unsafe.Slice((*byte)(buf), total)
	off := uintptr(len(md)) * ptrSize
	for j, m := range md {
		if m == nil {
			ptrs[j] = 0
			continue
		}
		ptrs[j] = uintptr(unsafe.Pointer(&data[off]))
		off += uintptr(copy(data[off:], m))
		data[off] = 0
		off++
	}
	return buf, nil
}

// cString is C.CString that refuses strings holding a NUL byte; what names
// the argument in the error message.
func cString(s, what string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, newError(StatusInvalidArgument, fmt.Sprintf("%s %q contains a NUL byte", what, s))
	}
	return C.CString(s), nil
}

// cBytes copies the NUL-terminated C string p into a new Go byte slice
// without a cgo call.
func cBytes(p *C.char) []byte {
	if p == nil {
		return nil
	}
	n := cStrlen(p)
	b := make([]byte, n)
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(p)), n))
	return b
}

func cStrlen(p *C.char) int {
	q := unsafe.Pointer(p)
	n := 0
	for *(*byte)(unsafe.Add(q, n)) != 0 {
		n++
	}
	return n
}
