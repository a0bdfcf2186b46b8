package vectord

/*
#include <stdlib.h>
#include "vectord.h"

// Defined in index.go's preamble.
size_t vdgo_hits_copy(const vectord_hits *h, size_t start, vectord_hit *out, size_t cap);
void vdgo_hits_free_all(vectord_hits **lists, size_t n);

// One filtered search and the copy of its first cap hits in a single cgo call.
static vectord_status vdgo_search_filtered(const vectord_index *idx, const float *q, size_t k,
		uint32_t ef, const vectord_filter *f, vectord_hits **hits, vectord_hit *out, size_t cap,
		size_t *n, vectord_error **err) {
	vectord_status s = vectord_index_search_filtered(idx, q, k, ef, f, hits, err);
	if (s == VECTORD_STATUS_OK) {
		*n = vdgo_hits_copy(*hits, 0, out, cap);
	}
	return s;
}

// A filtered batch search and the copy of the first cap hits of every query
// (into out[q*cap..]) with each query's hit count in counts[q].
static vectord_status vdgo_search_batch_filtered(const vectord_index *idx, size_t nq,
		const float *qs, size_t k, uint32_t ef, const vectord_filter *f, vectord_hits **lists,
		vectord_hit *out, size_t cap, size_t *counts, vectord_error **err) {
	vectord_status s = vectord_index_search_batch_filtered(idx, nq, qs, k, ef, f, lists, err);
	if (s == VECTORD_STATUS_OK) {
		for (size_t q = 0; q < nq; q++) {
			counts[q] = vdgo_hits_copy(lists[q], 0, out + q * cap, cap);
		}
	}
	return s;
}
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// Filter is a compiled metadata filter (the JSON language of
// docs/filters.md). It is immutable and safe for concurrent use by any
// number of searches on any index. Close releases it (a finalizer does too).
type Filter struct {
	mu  sync.RWMutex // RLock around every C call using it, Lock in Close
	ptr *C.vectord_filter
}

// NewFilter compiles a filter such as `{"tenant": "acme", "price":
// {"$lt": 20}}`. A bad filter gives an error matching ErrInvalidArgument
// whose message names where the problem is.
func NewFilter(json string) (*Filter, error) {
	cjson, err := cString(json, "filter")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cjson))
	var out *C.vectord_filter
	var cerr *C.vectord_error
	st := C.vectord_filter_new(cjson, &out, &cerr)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	f := &Filter{ptr: out}
	runtime.SetFinalizer(f, (*Filter).Close)
	return f, nil
}

// Close releases the filter. It is idempotent and waits for searches in
// flight that use it.
func (f *Filter) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ptr != nil {
		C.vectord_filter_free(f.ptr)
		f.ptr = nil
		runtime.SetFinalizer(f, nil)
	}
	return nil
}

// lock read-locks f for one C call and returns its pointer; a nil *Filter
// is no filter. The caller calls unlock.
func (f *Filter) lock() (*C.vectord_filter, error) {
	if f == nil {
		return nil, nil
	}
	f.mu.RLock()
	if f.ptr == nil {
		f.mu.RUnlock()
		return nil, errClosed("filter")
	}
	return f.ptr, nil
}

func (f *Filter) unlock() {
	if f != nil {
		f.mu.RUnlock()
	}
}

func checkEf(ef int) error {
	if ef < 0 || uint64(ef) > math.MaxUint32 {
		return newError(StatusInvalidArgument, fmt.Sprintf("ef %d is out of range", ef))
	}
	return nil
}

// SearchFiltered returns the k nearest live items to q that match f,
// nearest first; fewer than k only when fewer than k items match. ef 0 is
// the index's ef_search; f nil is no filter.
func (i *Index) SearchFiltered(q []float32, k, ef int, f *Filter) ([]Hit, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	if err := checkEf(ef); err != nil {
		return nil, err
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return nil, errClosed("index")
	}
	if err := i.checkQuery(q, "query"); err != nil {
		return nil, err
	}
	fp, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer f.unlock()
	capacity := inlineCapacity(k)
	buf := make([]C.vectord_hit, capacity)
	var hits *C.vectord_hits
	var n C.size_t
	var cerr *C.vectord_error
	st := C.vdgo_search_filtered(i.ptr, (*C.float)(&q[0]), C.size_t(k), C.uint32_t(ef), fp,
		&hits, &buf[0], C.size_t(capacity), &n, &cerr)
	runtime.KeepAlive(i)
	runtime.KeepAlive(f)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	if int(n) > capacity {
		more := make([]C.vectord_hit, int(n))
		copy(more, buf)
		C.vdgo_hits_copy(hits, C.size_t(capacity), &more[capacity], n-C.size_t(capacity))
		buf = more
	}
	out := convertHits(buf[:n])
	C.vectord_hits_free(hits)
	return out, nil
}

// SearchBatchFiltered searches len(qs)/Dim() queries (row-major) with one
// filter in one call, on all cores; one hit list per query, in order.
func (i *Index) SearchBatchFiltered(qs []float32, k, ef int, f *Filter) ([][]Hit, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	if err := checkEf(ef); err != nil {
		return nil, err
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return nil, errClosed("index")
	}
	if len(qs)%i.dim != 0 {
		return nil, newError(StatusDimensionMismatch, fmt.Sprintf(
			"index %q: %d query components is not a multiple of dim %d", i.name, len(qs), i.dim))
	}
	fp, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer f.unlock()
	nq := len(qs) / i.dim
	if nq == 0 {
		// Nothing to search, but the library still checks k and ef.
		var cerr *C.vectord_error
		st := C.vectord_index_search_batch_filtered(i.ptr, 0, nil, C.size_t(k), C.uint32_t(ef), fp, nil, &cerr)
		runtime.KeepAlive(i)
		runtime.KeepAlive(f)
		if err := takeError(st, cerr); err != nil {
			return nil, err
		}
		return [][]Hit{}, nil
	}
	capacity := inlineCapacity(k)
	lists := make([]*C.vectord_hits, nq)
	buf := make([]C.vectord_hit, nq*capacity)
	counts := make([]C.size_t, nq)
	var cerr *C.vectord_error
	st := C.vdgo_search_batch_filtered(i.ptr, C.size_t(nq), (*C.float)(&qs[0]), C.size_t(k),
		C.uint32_t(ef), fp, &lists[0], &buf[0], C.size_t(capacity), &counts[0], &cerr)
	runtime.KeepAlive(i)
	runtime.KeepAlive(f)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	out := make([][]Hit, nq)
	for q := 0; q < nq; q++ {
		n := int(counts[q])
		if n <= capacity {
			out[q] = convertHits(buf[q*capacity : q*capacity+n])
			continue
		}
		more := make([]C.vectord_hit, n)
		copy(more, buf[q*capacity:(q+1)*capacity])
		C.vdgo_hits_copy(lists[q], C.size_t(capacity), &more[capacity], C.size_t(n-capacity))
		out[q] = convertHits(more)
	}
	C.vdgo_hits_free_all(&lists[0], C.size_t(nq))
	return out, nil
}

// Count returns how many live items match f (nil: all of them).
func (i *Index) Count(f *Filter) (int, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return 0, errClosed("index")
	}
	fp, err := f.lock()
	if err != nil {
		return 0, err
	}
	defer f.unlock()
	var n C.size_t
	var cerr *C.vectord_error
	st := C.vectord_index_count(i.ptr, fp, &n, &cerr)
	runtime.KeepAlive(i)
	runtime.KeepAlive(f)
	if err := takeError(st, cerr); err != nil {
		return 0, err
	}
	return int(n), nil
}
