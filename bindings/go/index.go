package vectord

/*
#include <stdlib.h>
#include "vectord.h"

// Copies hits start.. of h into out (at most cap entries); returns the
// total number of hits in h. Not static: filter.go's search helpers use it.
size_t vdgo_hits_copy(const vectord_hits *h, size_t start, vectord_hit *out, size_t cap) {
	size_t n = vectord_hits_len(h);
	size_t j = 0;
	for (size_t i = start; i < n && j < cap; i++, j++) {
		out[j] = *vectord_hits_get(h, i);
	}
	return n;
}

void vdgo_hits_free_all(vectord_hits **lists, size_t n) {
	for (size_t i = 0; i < n; i++) {
		vectord_hits_free(lists[i]);
		lists[i] = NULL;
	}
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

// maxInlineHits bounds the hits copied out in the search call itself; lists
// longer than this (k > maxInlineHits) take one more cgo call.
const maxInlineHits = 256

// inlineCapacity is how many hits per query a search copies out in its own
// cgo call: k, at most maxInlineHits, at least 1 (the buffer's first
// element is passed to C).
func inlineCapacity(k int) int {
	if k > maxInlineHits {
		return maxInlineHits
	}
	if k == 0 {
		return 1
	}
	return k
}

// Index is a handle to one HNSW index. It is safe for concurrent use.
//
// An index obtained from a Registry stays usable after the registry deletes
// it or is closed. Close releases the handle; methods called after Close
// return an error matching ErrInvalidArgument.
type Index struct {
	mu   sync.RWMutex // RLock around every C call, Lock in Close
	ptr  *C.vectord_index
	dim  int
	name string
}

func wrapIndex(p *C.vectord_index) *Index {
	idx := &Index{
		ptr:  p,
		dim:  int(C.vectord_index_dim(p)),
		name: C.GoString(C.vectord_index_name(p)),
	}
	runtime.SetFinalizer(idx, (*Index).Close)
	return idx
}

// cParams converts p to the C struct; the caller frees the name.
func (p IndexParams) cParams() (C.vectord_index_params, error) {
	var cp C.vectord_index_params
	for _, f := range []struct {
		what string
		v    int
	}{{"dim", p.Dim}, {"m", p.M}, {"ef_construction", p.EfConstruction}, {"ef_search", p.EfSearch}} {
		if f.v < 0 || uint64(f.v) > math.MaxUint32 {
			return cp, newError(StatusInvalidArgument, fmt.Sprintf("index %q: %s %d is out of range", p.Name, f.what, f.v))
		}
	}
	name, err := cString(p.Name, "index name")
	if err != nil {
		return cp, err
	}
	cp.name = name
	cp.dim = C.uint32_t(p.Dim)
	cp.metric = C.uint32_t(p.Metric)
	cp.m = C.uint32_t(p.M)
	cp.ef_construction = C.uint32_t(p.EfConstruction)
	cp.ef_search = C.uint32_t(p.EfSearch)
	cp.quantization = C.uint32_t(p.Quantization)
	return cp, nil
}

// NewIndex creates a standalone, in-memory index (not in any registry).
func NewIndex(p IndexParams) (*Index, error) {
	cp, err := p.cParams()
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cp.name))
	var out *C.vectord_index
	var cerr *C.vectord_error
	st := C.vectord_index_new(&cp, &out, &cerr)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	return wrapIndex(out), nil
}

// Decode rebuilds a standalone index from an LHV1 blob made by Encode. A
// damaged blob gives an error matching ErrCorrupt.
func Decode(blob []byte) (*Index, error) {
	var p *C.uint8_t
	if len(blob) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&blob[0]))
	}
	var out *C.vectord_index
	var cerr *C.vectord_error
	st := C.vectord_index_decode(p, C.size_t(len(blob)), &out, &cerr)
	runtime.KeepAlive(blob)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	return wrapIndex(out), nil
}

// Close releases the handle. It is idempotent and safe to call from several
// goroutines; it waits for calls in flight on this handle to return. The
// index itself lives on while a registry or another handle refers to it.
func (i *Index) Close() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.ptr != nil {
		C.vectord_index_free(i.ptr)
		i.ptr = nil
		runtime.SetFinalizer(i, nil)
	}
	return nil
}

// Name returns the index's name.
func (i *Index) Name() string { return i.name }

// Dim returns the number of components of the index's vectors.
func (i *Index) Dim() int { return i.dim }

// Quantization returns how the index's searches walk the graph
// (QuantizationNone after Close).
func (i *Index) Quantization() Quantization {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return QuantizationNone
	}
	q := C.vectord_index_quantization(i.ptr)
	runtime.KeepAlive(i)
	return Quantization(q)
}

// Len returns the number of live items (0 after Close).
func (i *Index) Len() int {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return 0
	}
	n := C.vectord_index_len(i.ptr)
	runtime.KeepAlive(i)
	return int(n)
}

// Add upserts a batch in one call: vectors holds len(ids)*Dim() components,
// row-major; metadata is nil or has one entry per id, each nil or one JSON
// value. The batch is all-or-nothing: the first bad item fails the call and
// the error names its position.
func (i *Index) Add(ids []string, vectors []float32, metadata [][]byte) error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return errClosed("index")
	}
	n := len(ids)
	if len(vectors) != n*i.dim {
		return newError(StatusDimensionMismatch, fmt.Sprintf(
			"index %q: %d ids need %d components (dim %d), got %d", i.name, n, n*i.dim, i.dim, len(vectors)))
	}
	if metadata != nil && len(metadata) != n {
		return newError(StatusInvalidArgument, fmt.Sprintf(
			"index %q: %d metadata entries for %d ids", i.name, len(metadata), n))
	}
	if n == 0 {
		return nil
	}
	cids, err := packIDs(ids)
	if err != nil {
		return err
	}
	defer C.free(cids)
	var cmd unsafe.Pointer
	if metadata != nil {
		if cmd, err = packMetadata(metadata); err != nil {
			return err
		}
		defer C.free(cmd)
	}
	var cerr *C.vectord_error
	st := C.vectord_index_add(i.ptr, C.size_t(n), (**C.char)(cids), (*C.float)(&vectors[0]), (**C.char)(cmd), &cerr)
	runtime.KeepAlive(i)
	return takeError(st, cerr)
}

// AddItems is Add for a slice of items (copied into one batch first).
func (i *Index) AddItems(items []Item) error {
	ids := make([]string, len(items))
	vectors := make([]float32, 0, len(items)*i.dim)
	var metadata [][]byte
	for j, it := range items {
		if len(it.Vector) != i.dim {
			return newError(StatusDimensionMismatch, fmt.Sprintf(
				"index %q: item %d (id %q) has %d components, the index has dim %d", i.name, j, it.ID, len(it.Vector), i.dim))
		}
		ids[j] = it.ID
		vectors = append(vectors, it.Vector...)
		if it.Metadata != nil {
			if metadata == nil {
				metadata = make([][]byte, len(items))
			}
			metadata[j] = it.Metadata
		}
	}
	return i.Add(ids, vectors, metadata)
}

// Remove deletes the given ids in one call; ids that are not present are
// skipped.
func (i *Index) Remove(ids ...string) error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return errClosed("index")
	}
	if len(ids) == 0 {
		return nil
	}
	cids, err := packIDs(ids)
	if err != nil {
		return err
	}
	defer C.free(cids)
	var cerr *C.vectord_error
	st := C.vectord_index_remove(i.ptr, C.size_t(len(ids)), (**C.char)(cids), &cerr)
	runtime.KeepAlive(i)
	return takeError(st, cerr)
}

// Compact drops removed items for good: the index's slots are renumbered,
// the links around removed items repaired, and their memory released, so the
// saved object shrinks as well. Live items keep their ids, vectors and
// metadata. The index is locked exclusively while it runs; saves compact on
// their own once removed items exceed a fixed share of the slots.
func (i *Index) Compact() error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return errClosed("index")
	}
	var cerr *C.vectord_error
	st := C.vectord_index_compact(i.ptr, &cerr)
	runtime.KeepAlive(i)
	return takeError(st, cerr)
}

func (i *Index) checkQuery(q []float32, what string) error {
	if len(q) != i.dim {
		return newError(StatusDimensionMismatch, fmt.Sprintf(
			"index %q: %s has %d components, the index has dim %d", i.name, what, len(q), i.dim))
	}
	return nil
}

func checkK(k int) error {
	if k < 0 {
		return newError(StatusInvalidArgument, fmt.Sprintf("k is %d", k))
	}
	return nil
}

// Search returns the k nearest live items to q, nearest first (fewer if the
// index holds fewer). q must have Dim() components. It is SearchFiltered
// with the index's ef_search and no filter.
func (i *Index) Search(q []float32, k int) ([]Hit, error) {
	return i.SearchFiltered(q, k, 0, nil)
}

// SearchBatch searches len(qs)/Dim() queries (row-major) in one call, on
// all cores; it returns one hit list per query, in order. It is
// SearchBatchFiltered with the index's ef_search and no filter.
func (i *Index) SearchBatch(qs []float32, k int) ([][]Hit, error) {
	return i.SearchBatchFiltered(qs, k, 0, nil)
}

// convertHits copies C hits (whose strings are still owned by C) into Go.
func convertHits(raw []C.vectord_hit) []Hit {
	out := make([]Hit, len(raw))
	for j := range raw {
		out[j] = Hit{
			ID:       C.GoString(raw[j].id),
			Distance: float32(raw[j].distance),
			Metadata: cBytes(raw[j].metadata),
		}
	}
	return out
}

// Get returns the stored vector of id (the unit vector under Cosine) and
// its metadata (nil if none). A missing id gives an error matching
// ErrNotFound.
func (i *Index) Get(id string) ([]float32, []byte, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return nil, nil, errClosed("index")
	}
	cid, err := cString(id, "id")
	if err != nil {
		return nil, nil, err
	}
	defer C.free(unsafe.Pointer(cid))
	vec := make([]float32, i.dim)
	var md *C.char
	var cerr *C.vectord_error
	st := C.vectord_index_get(i.ptr, cid, (*C.float)(&vec[0]), &md, &cerr)
	runtime.KeepAlive(i)
	if err := takeError(st, cerr); err != nil {
		return nil, nil, err
	}
	meta := cBytes(md)
	C.vectord_string_free(md)
	return vec, meta, nil
}

// SetEfSearch sets the index's default search beam width.
func (i *Index) SetEfSearch(ef int) error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return errClosed("index")
	}
	if ef < 0 || uint64(ef) > math.MaxUint32 {
		return newError(StatusInvalidArgument, fmt.Sprintf("index %q: ef_search %d is out of range", i.name, ef))
	}
	var cerr *C.vectord_error
	st := C.vectord_index_set_ef_search(i.ptr, C.uint32_t(ef), &cerr)
	runtime.KeepAlive(i)
	return takeError(st, cerr)
}

// Encode serialises the index as an LHV1 blob (see Decode and
// Registry.Import).
func (i *Index) Encode() ([]byte, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return nil, errClosed("index")
	}
	var b *C.vectord_bytes
	var cerr *C.vectord_error
	st := C.vectord_index_encode(i.ptr, &b, &cerr)
	runtime.KeepAlive(i)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	defer C.vectord_bytes_free(b)
	n := int(C.vectord_bytes_len(b))
	out := make([]byte, n)
	if n > 0 {
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(C.vectord_bytes_data(b))), n))
	}
	return out, nil
}

// Save writes the index to its registry's storage now. A standalone index
// (NewIndex, Decode) has no storage and fails.
func (i *Index) Save() error {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.ptr == nil {
		return errClosed("index")
	}
	var cerr *C.vectord_error
	st := C.vectord_index_save(i.ptr, &cerr)
	runtime.KeepAlive(i)
	return takeError(st, cerr)
}
