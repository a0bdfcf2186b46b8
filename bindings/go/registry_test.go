package vectord

import (
	"math/rand"
	"reflect"
	"testing"
)

func TestRegistryInMemory(t *testing.T) {
	reg, err := Open("", nil)
	must(t, err)
	defer reg.Close()
	a, err := reg.Create(IndexParams{Name: "b-index", Dim: 4, Metric: L2})
	must(t, err)
	defer a.Close()
	_, err = reg.Create(IndexParams{Name: "a-index", Dim: 6, Metric: Dot, EfSearch: 20})
	must(t, err)
	_, err = reg.Create(IndexParams{Name: "b-index", Dim: 4})
	wantErr(t, err, ErrAlreadyExists, "b-index")
	_, err = reg.Create(IndexParams{Name: "bad", Dim: 0})
	wantErr(t, err, ErrInvalidArgument, "dim")

	names, err := reg.Names()
	must(t, err)
	if !reflect.DeepEqual(names, []string{"a-index", "b-index"}) {
		t.Fatalf("names %q", names)
	}

	must(t, a.Add([]string{"x", "y"}, []float32{1, 0, 0, 0, 0, 1, 0, 0}, [][]byte{[]byte(`[1,2]`), nil}))
	// Get returns another handle to the same index.
	b, err := reg.Get("b-index")
	must(t, err)
	if b.Len() != 2 || b.Dim() != 4 || b.Name() != "b-index" {
		t.Fatalf("get: len %d dim %d name %q", b.Len(), b.Dim(), b.Name())
	}
	must(t, b.Close())
	if a.Len() != 2 {
		t.Fatal("closing one handle affected another")
	}
	_, err = reg.Get("nope")
	wantErr(t, err, ErrNotFound, "nope")
	_, err = reg.Get("bad\x00name")
	wantErr(t, err, ErrInvalidArgument, "NUL")

	// Import a blob made elsewhere.
	other, _, vs := newTestIndex(t, "imported", 40, 4, Cosine)
	blob, err := other.Encode()
	must(t, err)
	imp, err := reg.Import(blob)
	must(t, err)
	defer imp.Close()
	if imp.Name() != "imported" || imp.Len() != 40 {
		t.Fatalf("import: %q len %d", imp.Name(), imp.Len())
	}
	hits, err := imp.Search(vs[:4], 1)
	must(t, err)
	if hits[0].ID != "item-0" || string(hits[0].Metadata) != `{"i":0}` {
		t.Fatalf("imported search %+v", hits)
	}
	_, err = reg.Import(blob)
	wantErr(t, err, ErrAlreadyExists, "imported")
	_, err = reg.Import(blob[:20])
	wantErr(t, err, ErrCorrupt)
	_, err = reg.Import(nil)
	wantErr(t, err, ErrCorrupt)

	// Delete: gone from the registry, the handle still works.
	must(t, reg.Delete("b-index"))
	wantErr(t, reg.Delete("b-index"), ErrNotFound, "b-index")
	_, err = reg.Get("b-index")
	wantErr(t, err, ErrNotFound)
	if _, err := a.Search([]float32{1, 0, 0, 0}, 1); err != nil {
		t.Fatalf("search after delete: %v", err)
	}
	must(t, reg.Flush())

	// Close: the registry refuses calls, index handles still work.
	must(t, reg.Close())
	must(t, reg.Close())
	hits, err = a.Search([]float32{1, 0, 0, 0}, 1)
	must(t, err)
	if hits[0].ID != "x" || string(hits[0].Metadata) != `[1,2]` {
		t.Fatalf("search after registry close: %+v", hits)
	}
	must(t, a.Add([]string{"z"}, []float32{0, 0, 1, 0}, nil))
	_, err = reg.Create(IndexParams{Name: "late", Dim: 2})
	wantErr(t, err, ErrInvalidArgument, "closed")
	_, err = reg.Get("a-index")
	wantErr(t, err, ErrInvalidArgument, "closed")
	wantErr(t, reg.Delete("a-index"), ErrInvalidArgument, "closed")
	_, err = reg.Names()
	wantErr(t, err, ErrInvalidArgument, "closed")
	_, err = reg.Import(blob)
	wantErr(t, err, ErrInvalidArgument, "closed")
	wantErr(t, reg.Flush(), ErrInvalidArgument, "closed")
}

func TestOpenErrors(t *testing.T) {
	_, err := Open("ftp://example.invalid/x", nil)
	wantErr(t, err, ErrInvalidArgument)
	_, err = Open("", &Options{Save: "sometimes"})
	wantErr(t, err, ErrInvalidArgument, "sometimes")
	_, err = Open("dir\x00", nil)
	wantErr(t, err, ErrInvalidArgument, "NUL")
	// Options on an in-memory registry are accepted.
	reg, err := Open("", &Options{Save: "manual"})
	must(t, err)
	must(t, reg.Close())
}

// Forgotten handles are freed by finalizers (nothing to assert beyond "no
// crash"; run with -race to catch a free racing a call).
func TestFinalizers(t *testing.T) {
	for j := 0; j < 50; j++ {
		reg, err := Open("", nil)
		must(t, err)
		idx, err := reg.Create(IndexParams{Name: "f", Dim: 2, Metric: L2})
		must(t, err)
		must(t, idx.Add([]string{"a"}, randVectors(rand.New(rand.NewSource(int64(j))), 1, 2), nil))
	}
	forceGC()
}
