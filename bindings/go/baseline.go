package vectord

/*
#include <string.h>
#include "vectord.h"

// The C-only baseline of the benchmarks: count searches cycling over nq
// queries, in a C loop, reading every hit's id and metadata (as a C caller
// would) and freeing the list. Returns the number of hits seen, or -1.
static long long vdgo_baseline_search(vectord_index *idx, const float *qs, size_t nq, size_t dim,
		size_t k, size_t count, vectord_error **err) {
	long long seen = 0;
	for (size_t c = 0; c < count; c++) {
		vectord_hits *h = NULL;
		if (vectord_index_search(idx, qs + (c % nq) * dim, k, &h, err) != VECTORD_STATUS_OK) return -1;
		size_t n = vectord_hits_len(h);
		for (size_t i = 0; i < n; i++) {
			const vectord_hit *hit = vectord_hits_get(h, i);
			seen += strlen(hit->id) > 0;
			if (hit->metadata) seen += strlen(hit->metadata) == 0;
		}
		vectord_hits_free(h);
	}
	return seen;
}

// The same for search_batch: count batches of nq queries.
static long long vdgo_baseline_batch(vectord_index *idx, const float *qs, size_t nq, size_t k,
		size_t count, vectord_hits **lists, vectord_error **err) {
	long long seen = 0;
	for (size_t c = 0; c < count; c++) {
		if (vectord_index_search_batch(idx, nq, qs, k, lists, err) != VECTORD_STATUS_OK) return -1;
		for (size_t q = 0; q < nq; q++) {
			size_t n = vectord_hits_len(lists[q]);
			for (size_t i = 0; i < n; i++) {
				const vectord_hit *hit = vectord_hits_get(lists[q], i);
				seen += strlen(hit->id) > 0;
				if (hit->metadata) seen += strlen(hit->metadata) == 0;
			}
			vectord_hits_free(lists[q]);
			lists[q] = NULL;
		}
	}
	return seen;
}
*/
import "C"

import "runtime"

// cBaselineSearch runs count single searches (cycling over the queries in
// qs) entirely in C, in one cgo call. It exists only for the benchmarks,
// to measure the Go layer's per-query overhead against the bare C ABI.
func (i *Index) cBaselineSearch(qs []float32, k, count int) (int64, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return 0, errClosed("index")
	}
	var cerr *C.vectord_error
	n := C.vdgo_baseline_search(i.ptr, (*C.float)(&qs[0]), C.size_t(len(qs)/i.dim), C.size_t(i.dim),
		C.size_t(k), C.size_t(count), &cerr)
	runtime.KeepAlive(i)
	if n < 0 {
		return 0, takeError(uint32(C.VECTORD_STATUS_INTERNAL), cerr)
	}
	return int64(n), nil
}

// cBaselineBatch runs count batch searches of all of qs entirely in C, in
// one cgo call (benchmarks only).
func (i *Index) cBaselineBatch(qs []float32, k, count int) (int64, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return 0, errClosed("index")
	}
	nq := len(qs) / i.dim
	lists := make([]*C.vectord_hits, nq)
	var cerr *C.vectord_error
	n := C.vdgo_baseline_batch(i.ptr, (*C.float)(&qs[0]), C.size_t(nq), C.size_t(k), C.size_t(count), &lists[0], &cerr)
	runtime.KeepAlive(i)
	if n < 0 {
		return 0, takeError(uint32(C.VECTORD_STATUS_INTERNAL), cerr)
	}
	return int64(n), nil
}
