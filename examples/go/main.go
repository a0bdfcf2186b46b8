// Command quickstart is the Go version of the C quickstart: it opens an
// in-memory registry, creates an index, adds vectors with metadata,
// searches, prints the hits, and round-trips the index through Encode and
// Decode.
//
// Build the library first (cargo build --release at the repository root),
// then: cd examples/go && go run .
package main

import (
	"errors"
	"fmt"
	"log"

	"vectord.local/vectord"
)

func main() {
	fmt.Printf("vectord %s (ABI %d)\n", vectord.Version(), vectord.ABIVersion())

	// "" keeps the registry in memory; a directory path or an
	// http://storaged URL would persist it.
	reg, err := vectord.Open("", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()

	idx, err := reg.Create(vectord.IndexParams{Name: "fruit", Dim: 4, Metric: vectord.Cosine})
	if err != nil {
		log.Fatal(err)
	}
	defer idx.Close()

	// One batch: ids, row-major vectors, and optional JSON metadata.
	ids := []string{"apple", "banana", "cherry", "date"}
	vectors := []float32{
		1.0, 0.1, 0.0, 0.0,
		0.9, 0.3, 0.1, 0.0,
		0.0, 1.0, 0.2, 0.0,
		0.0, 0.1, 1.0, 0.5,
	}
	metadata := [][]byte{
		[]byte(`{"color":"red"}`),
		[]byte(`{"color":"yellow"}`),
		nil, // no metadata
		[]byte(`{"color":"brown"}`),
	}
	if err := idx.Add(ids, vectors, metadata); err != nil {
		log.Fatal(err)
	}

	hits, err := idx.Search([]float32{1, 0.2, 0, 0}, 3)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d items, top %d:\n", idx.Len(), len(hits))
	for _, h := range hits {
		md := string(h.Metadata)
		if h.Metadata == nil {
			md = "(none)"
		}
		fmt.Printf("  %-8s distance %.4f  metadata %s\n", h.ID, h.Distance, md)
	}

	// Errors carry the library's message and match sentinels.
	if _, _, err := idx.Get("mango"); errors.Is(err, vectord.ErrNotFound) {
		fmt.Println("as expected:", err)
	}

	// Encode to an LHV1 blob and decode it into a standalone index.
	blob, err := idx.Encode()
	if err != nil {
		log.Fatal(err)
	}
	copyIdx, err := vectord.Decode(blob)
	if err != nil {
		log.Fatal(err)
	}
	defer copyIdx.Close()
	again, err := copyIdx.Search([]float32{1, 0.2, 0, 0}, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("encoded %d bytes; decoded %q has %d items, nearest %s\n",
		len(blob), copyIdx.Name(), copyIdx.Len(), again[0].ID)
}
