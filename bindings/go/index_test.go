package vectord

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"
)

func TestVersion(t *testing.T) {
	if Version() == "" {
		t.Fatal("empty version")
	}
	if ABIVersion() == 0 {
		t.Fatal("ABI version 0")
	}
	if StatusNotFound.String() == "" {
		t.Fatal("empty status name")
	}
	if Cosine.String() != "cosine" || L2.String() != "l2" || Dot.String() != "dot" || Metric(7).String() != "metric(7)" {
		t.Fatal("metric names")
	}
}

func TestNewIndex(t *testing.T) {
	idx, err := NewIndex(IndexParams{Name: "plain", Dim: 8, Metric: L2, M: 12, EfConstruction: 100, EfSearch: 32})
	must(t, err)
	defer idx.Close()
	if idx.Name() != "plain" || idx.Dim() != 8 || idx.Len() != 0 {
		t.Fatalf("name %q dim %d len %d", idx.Name(), idx.Dim(), idx.Len())
	}
	hits, err := idx.Search(make([]float32, 8), 5)
	must(t, err)
	if len(hits) != 0 {
		t.Fatalf("empty index gave %d hits", len(hits))
	}

	_, err = NewIndex(IndexParams{Name: "", Dim: 8})
	wantErr(t, err, ErrInvalidArgument, "name")
	_, err = NewIndex(IndexParams{Name: "zero-dim", Dim: 0})
	wantErr(t, err, ErrInvalidArgument, "dim")
	_, err = NewIndex(IndexParams{Name: "neg", Dim: -3})
	wantErr(t, err, ErrInvalidArgument, "-3")
	_, err = NewIndex(IndexParams{Name: "bad-m", Dim: 4, M: 1})
	wantErr(t, err, ErrInvalidArgument, "m 1")
	_, err = NewIndex(IndexParams{Name: "nul\x00name", Dim: 4})
	wantErr(t, err, ErrInvalidArgument, "NUL")
	_, err = NewIndex(IndexParams{Name: "bad-metric", Dim: 4, Metric: Metric(9)})
	wantErr(t, err, ErrInvalidArgument)
}

func TestInt8Quantization(t *testing.T) {
	if QuantizationNone.String() != "none" || QuantizationInt8.String() != "int8" || Quantization(5).String() != "quantization(5)" {
		t.Fatal("quantization names")
	}
	_, err := NewIndex(IndexParams{Name: "bad-q", Dim: 4, Quantization: Quantization(2)})
	wantErr(t, err, ErrInvalidArgument, "quantization 2")
	_, err = NewIndex(IndexParams{Name: "bad-q", Dim: 4, Quantization: Quantization(0xFFFFFFFF)})
	wantErr(t, err, ErrInvalidArgument, "quantization")

	// 1200 items: enough for the quantizer to be trained.
	const n, dim = 1200, 16
	idx, err := NewIndex(IndexParams{Name: "q8", Dim: dim, Metric: L2, Quantization: QuantizationInt8})
	must(t, err)
	defer idx.Close()
	if idx.Quantization() != QuantizationInt8 {
		t.Fatalf("quantization %v", idx.Quantization())
	}
	vs := randVectors(rand.New(rand.NewSource(5)), n, dim)
	is := ids("q-", n)
	must(t, idx.Add(is, vs, nil))
	blob, err := idx.Encode()
	must(t, err)
	back, err := Decode(blob)
	must(t, err)
	defer back.Close()
	if back.Quantization() != QuantizationInt8 {
		t.Fatalf("decoded quantization %v", back.Quantization())
	}
	for j := 0; j < n; j += 97 {
		q := vs[j*dim : (j+1)*dim]
		a, err := idx.Search(q, 5)
		must(t, err)
		b, err := back.Search(q, 5)
		must(t, err)
		// Exact f32 distances after the re-rank: the item itself at 0.
		if a[0].ID != is[j] || a[0].Distance != 0 {
			t.Fatalf("query %d: first hit %+v", j, a[0])
		}
		if len(a) != len(b) {
			t.Fatalf("query %d: %d vs %d hits", j, len(a), len(b))
		}
		for h := range a {
			if a[h].ID != b[h].ID || math.Float32bits(a[h].Distance) != math.Float32bits(b[h].Distance) {
				t.Fatalf("query %d hit %d: %+v vs %+v after a round trip", j, h, a[h], b[h])
			}
		}
	}
	idx.Close()
	if idx.Quantization() != QuantizationNone {
		t.Fatal("closed index quantization")
	}
}

func TestAddSearchGet(t *testing.T) {
	for _, metric := range []Metric{Cosine, L2, Dot} {
		t.Run(metric.String(), func(t *testing.T) {
			idx, is, vs := newTestIndex(t, "asg-"+metric.String(), 200, 16, metric)
			if idx.Len() != 200 {
				t.Fatalf("len %d", idx.Len())
			}
			// Every item finds itself first.
			for j := 0; j < 200; j += 37 {
				q := vs[j*16 : (j+1)*16]
				hits, err := idx.Search(q, 5)
				must(t, err)
				if len(hits) != 5 {
					t.Fatalf("%d hits", len(hits))
				}
				if metric != Dot && hits[0].ID != is[j] {
					t.Fatalf("query %d: first hit %q", j, hits[0].ID)
				}
				for h := 1; h < len(hits); h++ {
					if hits[h].Distance < hits[h-1].Distance {
						t.Fatalf("hits not sorted: %v", hits)
					}
				}
				for _, h := range hits {
					if !strings.HasPrefix(string(h.Metadata), `{"i":`) {
						t.Fatalf("hit %q metadata %q", h.ID, h.Metadata)
					}
				}
			}
			v, md, err := idx.Get(is[3])
			must(t, err)
			if string(md) != `{"i":3}` {
				t.Fatalf("metadata %q", md)
			}
			want := vs[3*16 : 4*16]
			if metric == Cosine {
				var norm float64
				for _, x := range want {
					norm += float64(x) * float64(x)
				}
				norm = math.Sqrt(norm)
				for c := range v {
					if math.Abs(float64(v[c])-float64(want[c])/norm) > 1e-5 {
						t.Fatalf("component %d: %v, want unit %v", c, v[c], float64(want[c])/norm)
					}
				}
			} else {
				for c := range v {
					if v[c] != want[c] {
						t.Fatalf("component %d: %v want %v", c, v[c], want[c])
					}
				}
			}
		})
	}
}

func TestAddErrors(t *testing.T) {
	idx, _, _ := newTestIndex(t, "add-errors", 10, 4, Cosine)
	// Wrong number of components: checked in Go (C has no length to check).
	err := idx.Add([]string{"a", "b"}, make([]float32, 7), nil)
	wantErr(t, err, ErrDimensionMismatch, "7")
	err = idx.Add([]string{"a"}, []float32{1, 2, 3, 4}, [][]byte{nil, nil})
	wantErr(t, err, ErrInvalidArgument, "2 metadata entries")
	// Checked by the library, naming the item.
	err = idx.Add([]string{"ok", "bad-nan"}, []float32{1, 2, 3, 4, 1, float32(math.NaN()), 0, 0}, nil)
	wantErr(t, err, ErrInvalidVector, "bad-nan")
	err = idx.Add([]string{"zero"}, []float32{0, 0, 0, 0}, nil)
	wantErr(t, err, ErrInvalidVector, "zero")
	err = idx.Add([]string{""}, []float32{1, 0, 0, 0}, nil)
	wantErr(t, err, ErrInvalidArgument, "empty")
	err = idx.Add([]string{"twice", "twice"}, []float32{1, 0, 0, 0, 0, 1, 0, 0}, nil)
	wantErr(t, err, ErrInvalidArgument, "twice")
	err = idx.Add([]string{"x", "badjson"}, []float32{1, 0, 0, 0, 0, 1, 0, 0}, [][]byte{nil, []byte("{nope")})
	wantErr(t, err, ErrInvalidArgument, "badjson", "JSON")
	err = idx.Add([]string{"nul\x00id"}, []float32{1, 0, 0, 0}, nil)
	wantErr(t, err, ErrInvalidArgument, "NUL")
	err = idx.Add([]string{"nulmd"}, []float32{1, 0, 0, 0}, [][]byte{[]byte("\"a\x00\"")})
	wantErr(t, err, ErrInvalidArgument, "NUL")
	long := strings.Repeat("L", 100000)
	err = idx.Add([]string{long}, []float32{1, 0, 0, 0}, nil)
	wantErr(t, err, ErrInvalidArgument, "100000 bytes")
	// All-or-nothing: nothing was added by the failed calls.
	if idx.Len() != 10 {
		t.Fatalf("len %d after failed adds", idx.Len())
	}
	// Empty batch is fine.
	must(t, idx.Add(nil, nil, nil))
}

func TestUpsertAndAddItems(t *testing.T) {
	idx, err := NewIndex(IndexParams{Name: "items", Dim: 3, Metric: L2})
	must(t, err)
	defer idx.Close()
	must(t, idx.AddItems([]Item{
		{ID: "a", Vector: []float32{1, 0, 0}, Metadata: []byte(`{"k":"a"}`)},
		{ID: "b", Vector: []float32{0, 1, 0}},
		{ID: "c", Vector: []float32{0, 0, 1}, Metadata: []byte(`"c"`)},
	}))
	if idx.Len() != 3 {
		t.Fatalf("len %d", idx.Len())
	}
	_, md, err := idx.Get("b")
	must(t, err)
	if md != nil {
		t.Fatalf("b has metadata %q", md)
	}
	// Upsert replaces vector and metadata.
	must(t, idx.AddItems([]Item{{ID: "a", Vector: []float32{5, 5, 5}}}))
	v, md, err := idx.Get("a")
	must(t, err)
	if v[0] != 5 || md != nil || idx.Len() != 3 {
		t.Fatalf("after upsert: %v %q len %d", v, md, idx.Len())
	}
	err = idx.AddItems([]Item{{ID: "short", Vector: []float32{1}}})
	wantErr(t, err, ErrDimensionMismatch, "short")
}

func TestRemove(t *testing.T) {
	idx, is, vs := newTestIndex(t, "remove", 50, 8, L2)
	must(t, idx.Remove(is[0], is[1], "never-there"))
	if idx.Len() != 48 {
		t.Fatalf("len %d", idx.Len())
	}
	_, _, err := idx.Get(is[0])
	wantErr(t, err, ErrNotFound, is[0])
	hits, err := idx.Search(vs[:8], 48)
	must(t, err)
	for _, h := range hits {
		if h.ID == is[0] || h.ID == is[1] {
			t.Fatalf("removed id %q found", h.ID)
		}
	}
	must(t, idx.Remove())
	wantErr(t, idx.Remove("fine", ""), ErrInvalidArgument, "empty")
	wantErr(t, idx.Remove("a\x00b"), ErrInvalidArgument, "NUL")
	if idx.Len() != 48 {
		t.Fatalf("len %d", idx.Len())
	}
}

func TestSearchErrors(t *testing.T) {
	idx, _, _ := newTestIndex(t, "search-errors", 20, 4, Cosine)
	_, err := idx.Search([]float32{1, 2, 3}, 3)
	wantErr(t, err, ErrDimensionMismatch, "3 components")
	_, err = idx.Search(nil, 3)
	wantErr(t, err, ErrDimensionMismatch, "0 components")
	_, err = idx.Search([]float32{1, 2, 3, 4}, 0)
	wantErr(t, err, ErrInvalidArgument, "k")
	_, err = idx.Search([]float32{1, 2, 3, 4}, -1)
	wantErr(t, err, ErrInvalidArgument, "-1")
	_, err = idx.Search([]float32{0, 0, 0, 0}, 3)
	wantErr(t, err, ErrInvalidVector, "zero")
	_, err = idx.Search([]float32{1, float32(math.Inf(1)), 0, 0}, 3)
	wantErr(t, err, ErrInvalidVector, "component 1")
	// More hits than fit inline, and k larger than the index.
	big, _, vs := newTestIndex(t, "search-big", maxInlineHits+40, 4, L2)
	hits, err := big.Search(vs[:4], maxInlineHits+100)
	must(t, err)
	if len(hits) != maxInlineHits+40 {
		t.Fatalf("%d hits, want %d", len(hits), maxInlineHits+40)
	}
	seen := map[string]bool{}
	for _, h := range hits {
		if seen[h.ID] || h.Metadata == nil {
			t.Fatalf("hit %+v duplicated or without metadata", h)
		}
		seen[h.ID] = true
	}
	batch, err := big.SearchBatch(vs[:12], maxInlineHits+1)
	must(t, err)
	for q, hs := range batch {
		if len(hs) != maxInlineHits+1 {
			t.Fatalf("query %d: %d hits", q, len(hs))
		}
	}
}

func TestSearchBatch(t *testing.T) {
	idx, is, vs := newTestIndex(t, "batch", 300, 8, L2)
	qs := vs[:40*8]
	res, err := idx.SearchBatch(qs, 3)
	must(t, err)
	if len(res) != 40 {
		t.Fatalf("%d lists", len(res))
	}
	for q, hits := range res {
		single, err := idx.Search(qs[q*8:(q+1)*8], 3)
		must(t, err)
		if len(hits) != 3 || hits[0].ID != is[q] {
			t.Fatalf("query %d: %+v", q, hits)
		}
		for h := range hits {
			if hits[h].ID != single[h].ID || hits[h].Distance != single[h].Distance || !bytes.Equal(hits[h].Metadata, single[h].Metadata) {
				t.Fatalf("query %d hit %d: batch %+v single %+v", q, h, hits[h], single[h])
			}
		}
	}
	empty, err := idx.SearchBatch(nil, 3)
	must(t, err)
	if len(empty) != 0 {
		t.Fatal("empty batch gave results")
	}
	_, err = idx.SearchBatch(vs[:12], 3)
	wantErr(t, err, ErrDimensionMismatch, "12")
	_, err = idx.SearchBatch(vs[:16], 0)
	wantErr(t, err, ErrInvalidArgument, "k")
	bad := append([]float32{}, vs[:24]...)
	bad[8+5] = float32(math.NaN())
	_, err = idx.SearchBatch(bad, 3)
	wantErr(t, err, ErrInvalidVector, "query 1")
}

func TestSetEfSearch(t *testing.T) {
	idx, _, vs := newTestIndex(t, "ef", 100, 4, L2)
	must(t, idx.SetEfSearch(200))
	_, err := idx.Search(vs[:4], 10)
	must(t, err)
	wantErr(t, idx.SetEfSearch(0), ErrInvalidArgument, "0")
	wantErr(t, idx.SetEfSearch(-5), ErrInvalidArgument, "-5")
	wantErr(t, idx.SetEfSearch(1<<40), ErrInvalidArgument)
}

func TestEncodeDecode(t *testing.T) {
	idx, is, vs := newTestIndex(t, "codec", 120, 12, Cosine)
	blob, err := idx.Encode()
	must(t, err)
	if !bytes.HasPrefix(blob, []byte("LHV1")) {
		t.Fatalf("blob starts %q", blob[:8])
	}
	dec, err := Decode(blob)
	must(t, err)
	defer dec.Close()
	if dec.Name() != "codec" || dec.Dim() != 12 || dec.Len() != 120 {
		t.Fatalf("decoded %q dim %d len %d", dec.Name(), dec.Dim(), dec.Len())
	}
	for j := 0; j < 120; j += 11 {
		a, err := idx.Search(vs[j*12:(j+1)*12], 4)
		must(t, err)
		b, err := dec.Search(vs[j*12:(j+1)*12], 4)
		must(t, err)
		for h := range a {
			if a[h].ID != b[h].ID || a[h].Distance != b[h].Distance || !bytes.Equal(a[h].Metadata, b[h].Metadata) {
				t.Fatalf("query %d: %+v vs %+v", j, a, b)
			}
		}
	}
	_, md, err := dec.Get(is[7])
	must(t, err)
	if string(md) != `{"i":7}` {
		t.Fatalf("metadata %q", md)
	}
	again, err := dec.Encode()
	must(t, err)
	if !bytes.Equal(blob, again) {
		t.Fatal("re-encoding the decoded index changed the bytes")
	}
}

func TestDecodeCorrupt(t *testing.T) {
	idx, _, _ := newTestIndex(t, "corrupt", 30, 4, L2)
	blob, err := idx.Encode()
	must(t, err)
	// A flipped byte in the graph section fails the CRC.
	flipped := append([]byte{}, blob...)
	flipped[len(flipped)-3] ^= 0x5a
	_, err = Decode(flipped)
	wantErr(t, err, ErrCorrupt)
	// Truncated, bad magic, empty.
	_, err = Decode(blob[:len(blob)/2])
	wantErr(t, err, ErrCorrupt)
	bad := append([]byte("XXXX"), blob[4:]...)
	_, err = Decode(bad)
	wantErr(t, err, ErrCorrupt)
	_, err = Decode(nil)
	wantErr(t, err, ErrCorrupt)
	// A newer envelope version is Unsupported, not Corrupt.
	if !bytes.Contains(blob, []byte(`"version":1`)) {
		t.Fatalf("no version field in envelope %q", blob[:100])
	}
	newer := bytes.Replace(blob, []byte(`"version":1`), []byte(`"version":9`), 1)
	_, err = Decode(newer)
	wantErr(t, err, ErrUnsupported)
}

func TestStandaloneSave(t *testing.T) {
	idx, _, _ := newTestIndex(t, "no-storage", 3, 4, L2)
	err := idx.Save()
	if err == nil {
		t.Fatal("Save of a standalone index succeeded")
	}
	var e *Error
	if !errors.As(err, &e) || e.Code == StatusOK || e.Message == "" {
		t.Fatalf("Save error %#v", err)
	}
	t.Logf("Save of a standalone index: %v", err)
}

func TestClosedIndex(t *testing.T) {
	idx, is, vs := newTestIndex(t, "closed", 10, 4, L2)
	must(t, idx.Close())
	must(t, idx.Close()) // twice is fine
	wantErr(t, idx.Add([]string{"n"}, vs[:4], nil), ErrInvalidArgument, "closed")
	wantErr(t, idx.AddItems([]Item{{ID: "n", Vector: vs[:4]}}), ErrInvalidArgument, "closed")
	wantErr(t, idx.Remove(is[0]), ErrInvalidArgument, "closed")
	_, err := idx.Search(vs[:4], 3)
	wantErr(t, err, ErrInvalidArgument, "closed")
	_, err = idx.SearchBatch(vs[:8], 3)
	wantErr(t, err, ErrInvalidArgument, "closed")
	_, _, err = idx.Get(is[0])
	wantErr(t, err, ErrInvalidArgument, "closed")
	wantErr(t, idx.SetEfSearch(10), ErrInvalidArgument, "closed")
	_, err = idx.Encode()
	wantErr(t, err, ErrInvalidArgument, "closed")
	wantErr(t, idx.Save(), ErrInvalidArgument, "closed")
	if idx.Len() != 0 || idx.Dim() != 4 || idx.Name() != "closed" {
		t.Fatal("accessors after close")
	}
}

// Close racing with calls in flight, from several goroutines: no crash, and
// every call either works or reports the closed handle.
func TestCloseRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		idx, _, vs := newTestIndex(t, "close-race", 50, 4, L2)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for j := 0; j < 20; j++ {
					if g%4 == 0 && j == 10 {
						must(t, idx.Close())
					}
					_, err := idx.Search(vs[:4], 3)
					if err != nil {
						wantErr(t, err, ErrInvalidArgument, "closed")
					}
				}
			}(g)
		}
		wg.Wait()
	}
}

func TestErrorType(t *testing.T) {
	e := &Error{Code: StatusNotFound, Message: "index \"x\""}
	if !errors.Is(e, ErrNotFound) || errors.Is(e, ErrCorrupt) {
		t.Fatal("errors.Is by code")
	}
	if !errors.Is(e, &Error{Code: StatusNotFound}) {
		t.Fatal("errors.Is against a code-only *Error")
	}
	if errors.Unwrap(e) != ErrNotFound {
		t.Fatal("Unwrap")
	}
	if e.Error() != `vectord: index "x"` {
		t.Fatalf("Error() = %q", e.Error())
	}
	// Every status maps to its own sentinel.
	for code := StatusInvalidArgument; code <= StatusConflict; code++ {
		err := &Error{Code: code, Message: "m"}
		n := 0
		for _, s := range sentinels[1:] {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 || !errors.Is(err, sentinels[code]) {
			t.Fatalf("code %d matches %d sentinels", code, n)
		}
	}
}

func TestCompact(t *testing.T) {
	const n, dim = 1000, 8
	idx, is, vs := newTestIndex(t, "compact", n, dim, L2)
	before, err := idx.Encode()
	must(t, err)
	var gone []string
	for j := range is {
		if j%10 != 0 {
			gone = append(gone, is[j])
		}
	}
	must(t, idx.Remove(gone...))
	must(t, idx.Compact())
	after, err := idx.Encode()
	must(t, err)
	if len(after)*100 > len(before)*15 {
		t.Fatalf("encoded size %d -> %d after removing 90%% and compacting", len(before), len(after))
	}
	if idx.Len() != n/10 {
		t.Fatalf("len %d", idx.Len())
	}
	for j := 0; j < n; j += 10 {
		v, md, err := idx.Get(is[j])
		must(t, err)
		for c := range v {
			if v[c] != vs[j*dim+c] {
				t.Fatalf("vector of %s changed", is[j])
			}
		}
		if string(md) != `{"i":`+itoa(j)+`}` {
			t.Fatalf("metadata of %s is %s", is[j], md)
		}
		hits, err := idx.Search(v, 1)
		must(t, err)
		if len(hits) != 1 || hits[0].ID != is[j] {
			t.Fatalf("self-query of %s gave %v", is[j], hits)
		}
	}
	must(t, idx.Close())
	if err := idx.Compact(); err == nil {
		t.Fatal("Compact on a closed index succeeded")
	}
}
