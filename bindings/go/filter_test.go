package vectord

import (
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"testing"
)

// filterIndex holds 400 items with {"g": j%4, "even": j%2==0, "n": {"v": j}};
// every tenth has no metadata.
func filterIndex(t *testing.T) (*Index, []float32) {
	t.Helper()
	idx, err := NewIndex(IndexParams{Name: "filtered", Dim: 8, Metric: L2})
	must(t, err)
	rng := rand.New(rand.NewSource(3))
	vecs := randVectors(rng, 400, 8)
	md := make([][]byte, 400)
	for j := range md {
		if j%10 != 9 {
			md[j] = []byte(fmt.Sprintf(`{"g": %d, "even": %t, "n": {"v": %d}}`, j%4, j%2 == 0, j))
		}
	}
	must(t, idx.Add(ids("id", 400), vecs, md))
	return idx, vecs
}

func num(t *testing.T, id string) int {
	n, err := strconv.Atoi(id[2:])
	must(t, err)
	return n
}

func TestFilteredSearchAndCount(t *testing.T) {
	idx, vecs := filterIndex(t)
	defer idx.Close()
	f, err := NewFilter(`{"g": {"$in": [1, 3]}, "n.v": {"$gte": 100}}`)
	must(t, err)
	defer f.Close()
	want := 0
	for j := 100; j < 400; j++ {
		if j%2 == 1 && j%10 != 9 {
			want++
		}
	}
	n, err := idx.Count(f)
	must(t, err)
	if n != want {
		t.Fatalf("count %d, want %d", n, want)
	}
	all, err := idx.Count(nil)
	must(t, err)
	if all != 400 {
		t.Fatalf("count(nil) %d", all)
	}
	hits, err := idx.SearchFiltered(vecs[:8], 10, 0, f)
	must(t, err)
	if len(hits) != 10 {
		t.Fatalf("%d hits", len(hits))
	}
	for j, h := range hits {
		v := num(t, h.ID)
		if v%2 != 1 || v < 100 || v%10 == 9 {
			t.Fatalf("hit %s does not match", h.ID)
		}
		if j > 0 && h.Distance < hits[j-1].Distance {
			t.Fatal("unsorted")
		}
	}
	// k beyond the matches (and beyond the inline copy): all of them.
	hits, err = idx.SearchFiltered(vecs[:8], 1000, 32, f)
	must(t, err)
	if len(hits) != want {
		t.Fatalf("%d hits, want %d", len(hits), want)
	}
	// nil filter is the plain search.
	plain, err := idx.Search(vecs[8:16], 3)
	must(t, err)
	same, err := idx.SearchFiltered(vecs[8:16], 3, 0, nil)
	must(t, err)
	if fmt.Sprint(plain) != fmt.Sprint(same) {
		t.Fatalf("%v != %v", plain, same)
	}
	batch, err := idx.SearchBatchFiltered(vecs[:3*8], 300, 0, f)
	must(t, err)
	if len(batch) != 3 || len(batch[0]) != want || len(batch[2]) != want {
		t.Fatalf("batch shape %d", len(batch))
	}
	for q := range batch {
		for _, h := range batch[q] {
			if num(t, h.ID)%2 != 1 {
				t.Fatalf("batch hit %s does not match", h.ID)
			}
		}
	}
	empty, err := idx.SearchBatchFiltered(nil, 3, 0, f)
	must(t, err)
	if len(empty) != 0 {
		t.Fatal("empty batch")
	}
	// Changes are seen at once.
	must(t, idx.Remove("id101", "id103"))
	n, err = idx.Count(f)
	must(t, err)
	if n != want-2 {
		t.Fatalf("after remove %d", n)
	}
}

func TestFilterErrors(t *testing.T) {
	idx, vecs := filterIndex(t)
	defer idx.Close()
	_, err := NewFilter(`{"$and": [{}, {"price": {"$gt": "x"}}]}`)
	wantErr(t, err, ErrInvalidArgument, "$and[1].price: $gt needs a number")
	_, err = NewFilter(`{"a": 1`)
	wantErr(t, err, ErrInvalidArgument, "invalid JSON")
	_, err = NewFilter("{\"a\": \"\x00\"}")
	wantErr(t, err, ErrInvalidArgument, "NUL")
	f, err := NewFilter(`{}`)
	must(t, err)
	_, err = idx.SearchFiltered(vecs[:7], 1, 0, f)
	wantErr(t, err, ErrDimensionMismatch)
	_, err = idx.SearchFiltered(vecs[:8], 0, 0, f)
	wantErr(t, err, ErrInvalidArgument, "k is 0")
	_, err = idx.SearchFiltered(vecs[:8], 1, 70000, f)
	wantErr(t, err, ErrInvalidArgument, "ef 70000")
	_, err = idx.SearchFiltered(vecs[:8], 1, -1, f)
	wantErr(t, err, ErrInvalidArgument, "ef -1")
	_, err = idx.SearchBatchFiltered(vecs[:9], 1, 0, f)
	wantErr(t, err, ErrDimensionMismatch)
	must(t, f.Close())
	must(t, f.Close())
	_, err = idx.SearchFiltered(vecs[:8], 1, 0, f)
	wantErr(t, err, ErrInvalidArgument, "filter is closed")
	_, err = idx.Count(f)
	wantErr(t, err, ErrInvalidArgument, "filter is closed")
	g, err := NewFilter(`{}`)
	must(t, err)
	defer g.Close()
	must(t, idx.Close())
	_, err = idx.Count(g)
	wantErr(t, err, ErrInvalidArgument, "index is closed")
}

// 8 goroutines share one filter while another goroutine upserts.
func TestFilterSharedByGoroutines(t *testing.T) {
	idx, vecs := filterIndex(t)
	defer idx.Close()
	f, err := NewFilter(`{"even": true}`)
	must(t, err)
	defer f.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for r := 0; r < 40; r++ {
				q := vecs[((g*40+r)%400)*8:][:8]
				hits, err := idx.SearchFiltered(q, 5, 0, f)
				if err != nil {
					errs <- err
					return
				}
				for _, h := range hits {
					if v, _ := strconv.Atoi(h.ID[2:]); v%2 != 0 && h.ID[:2] == "id" {
						errs <- fmt.Errorf("hit %s is odd", h.ID)
						return
					}
				}
				if _, err := idx.Count(f); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := 0; r < 10; r++ {
			id := fmt.Sprintf("up%d", r)
			if err := idx.Add([]string{id}, vecs[:8], [][]byte{[]byte(`{"even": true}`)}); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := idx.Count(f)
	must(t, err)
	if n != 200+10 {
		t.Fatalf("count %d", n)
	}
}
