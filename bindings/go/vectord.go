// Package vectord is the Go binding of vectord: named, persistent HNSW
// vector indexes behind a C ABI.
//
// By default the package links the static library that cargo builds in
// this repository (target/release/libvectord.a), so run
// `cargo build --release` before `go build` or `go test`. With the build tag
// vectord_pkgconfig it uses an installed vectord instead, found by
// `pkg-config vectord` (scripts/install.sh installs it; see README.md).
//
// A Registry holds named indexes, in memory or persisted to a directory or
// an HTTP storaged service. An Index can also live on its own (NewIndex,
// Decode). Every handle is safe for concurrent use by several goroutines;
// Close releases its C resources (a finalizer does it for handles that are
// forgotten, but closing explicitly frees the memory sooner).
//
// Errors returned by the library are of type *Error and match one of the
// sentinel errors (ErrNotFound, ErrDimensionMismatch, ...) with errors.Is.
package vectord

/*
#include <stdlib.h>
#include "vectord.h"
*/
import "C"

import "strconv"

// Metric is the distance function of an index.
type Metric uint32

// The metrics an index can use. Under Cosine the index stores unit vectors,
// so Index.Get returns the normalised vector, not the one that was added.
const (
	// Cosine is the cosine distance 1 - cos(a, b).
	Cosine Metric = 0
	// L2 is the Euclidean distance.
	L2 Metric = 1
	// Dot is the negated inner product (smaller is nearer).
	Dot Metric = 2
)

// String returns the metric's name ("cosine", "l2" or "dot").
func (m Metric) String() string {
	switch m {
	case Cosine:
		return "cosine"
	case L2:
		return "l2"
	case Dot:
		return "dot"
	}
	return "metric(" + strconv.FormatUint(uint64(m), 10) + ")"
}

// Quantization is how an index's searches walk the graph.
type Quantization uint32

const (
	// QuantizationNone walks the float32 vectors.
	QuantizationNone Quantization = 0
	// QuantizationInt8 walks 8-bit codes and re-ranks the candidates with
	// exact float32 distances (returned distances are exact).
	QuantizationInt8 Quantization = 1
)

// String returns "none", "int8" or "quantization(N)".
func (q Quantization) String() string {
	switch q {
	case QuantizationNone:
		return "none"
	case QuantizationInt8:
		return "int8"
	}
	return "quantization(" + strconv.FormatUint(uint64(q), 10) + ")"
}

// Version returns the version string of the linked C library.
func Version() string {
	return C.GoString(C.vectord_version())
}

// ABIVersion returns the C ABI version of the linked library.
func ABIVersion() uint32 {
	return uint32(C.vectord_abi_version())
}

// IndexParams describes an index to create. Zero M, EfConstruction and
// EfSearch select the library's defaults.
type IndexParams struct {
	// Name of the index: 1 to 255 bytes of UTF-8 without control characters.
	Name string
	// Dim is the number of components of every vector.
	Dim int
	// Metric is the distance function.
	Metric Metric
	// M is the maximum graph degree on the upper layers (0 = default).
	M int
	// EfConstruction is the beam width while inserting (0 = default).
	EfConstruction int
	// EfSearch is the default beam width while searching (0 = default).
	EfSearch int
	// Quantization selects the search walk (zero value: QuantizationNone).
	Quantization Quantization
}

// Hit is one search result.
type Hit struct {
	// ID is the item's id.
	ID string
	// Distance from the query under the index's metric.
	Distance float32
	// Metadata is the item's JSON metadata, or nil if it has none.
	Metadata []byte
}

// Item is one vector to add, for Index.AddItems.
type Item struct {
	// ID is the item's id (1 to the library's maximum bytes, no NUL byte).
	ID string
	// Vector has exactly Dim components.
	Vector []float32
	// Metadata is one JSON value, or nil for none.
	Metadata []byte
}
