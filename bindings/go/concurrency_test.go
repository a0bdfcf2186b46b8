package vectord

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"
)

// 16 goroutines share one index and one registry, mixing searches, adds,
// removes and calls that fail. Each failing call uses a bad input unique to
// its goroutine and iteration, and the error it gets back must name exactly
// that input: an error never leaks from one call (or thread) to another.
func TestConcurrentErrorsBelongToTheirCall(t *testing.T) {
	const (
		dim        = 8
		goroutines = 16
	)
	iters := 60
	if testing.Short() {
		iters = 15
	}
	reg, err := Open("", nil)
	must(t, err)
	defer reg.Close()
	idx, err := reg.Create(IndexParams{Name: "shared", Dim: dim, Metric: L2})
	must(t, err)
	defer idx.Close()
	rng := rand.New(rand.NewSource(1))
	base := randVectors(rng, 300, dim)
	must(t, idx.Add(ids("base-", 300), base, nil))

	errs := make(chan string, goroutines*iters*8)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(100 + g)))
			fail := func(format string, a ...interface{}) {
				errs <- fmt.Sprintf("goroutine %d: ", g) + fmt.Sprintf(format, a...)
			}
			// check: err must match sentinel and contain every fragment.
			check := func(what string, err error, sentinel error, fragments ...string) {
				if err == nil {
					fail("%s: no error", what)
					return
				}
				if e, ok := err.(*Error); !ok || e.Unwrap() != sentinel {
					fail("%s: want %v, got %v", what, sentinel, err)
					return
				}
				for _, f := range fragments {
					if !strings.Contains(err.Error(), f) {
						fail("%s: error %q is not about %q", what, err, f)
					}
				}
			}
			for j := 0; j < iters; j++ {
				tag := fmt.Sprintf("g%d-j%d", g, j)
				switch j % 8 {
				case 0: // a good search
					q := randVectors(rng, 1, dim)
					hits, err := idx.Search(q, 10)
					if err != nil || len(hits) != 10 {
						fail("search: %d hits, %v", len(hits), err)
					}
				case 1: // add then remove own items
					own := []string{"own-" + tag + "-a", "own-" + tag + "-b"}
					md := [][]byte{[]byte(`{"g":` + itoa(g) + `}`), nil}
					if err := idx.Add(own, randVectors(rng, 2, dim), md); err != nil {
						fail("add: %v", err)
					}
					v, m, err := idx.Get(own[0])
					if err != nil || len(v) != dim || string(m) != `{"g":`+itoa(g)+`}` {
						fail("get own: %v %q %v", v, m, err)
					}
					if err := idx.Remove(own...); err != nil {
						fail("remove: %v", err)
					}
				case 2: // an id of a length unique to this call (library check)
					n := 1025 + g*100 + j
					long := strings.Repeat("x", n)
					err := idx.Add([]string{"fine-" + tag, long}, randVectors(rng, 2, dim), nil)
					check("long id", err, ErrInvalidArgument, fmt.Sprintf("id is %d bytes", n), "item 1")
				case 3: // a missing id unique to this call (library check)
					id := "missing-" + tag
					_, _, err := idx.Get(id)
					check("get missing", err, ErrNotFound, `"`+id+`"`)
				case 4: // bad metadata on an item named after this call (library check)
					id := "badmd-" + tag
					err := idx.Add([]string{id}, randVectors(rng, 1, dim), [][]byte{[]byte("{" + tag)})
					check("bad metadata", err, ErrInvalidArgument, `"`+id+`"`, "JSON")
				case 5: // a query of a dimension unique to this goroutine (Go check)
					n := dim + 1 + g
					_, err := idx.Search(make([]float32, n), 3)
					check("wrong dim", err, ErrDimensionMismatch, fmt.Sprintf("has %d components", n))
				case 6: // NaN in batch query number g (library check), then a good batch
					qs := randVectors(rng, goroutines, dim)
					qs[g*dim+j%dim] = float32(math.NaN())
					_, err := idx.SearchBatch(qs, 5)
					check("batch NaN", err, ErrInvalidVector, fmt.Sprintf("query %d:", g), fmt.Sprintf("component %d", j%dim))
					res, err := idx.SearchBatch(randVectors(rng, 4, dim), 5)
					if err != nil || len(res) != 4 || len(res[3]) != 5 {
						fail("good batch: %v", err)
					}
				case 7: // an empty id at a position unique to this goroutine, and a missing index
					rm := append(ids("gone-"+tag+"-", g), "")
					err := idx.Remove(rm...)
					check("remove empty", err, ErrInvalidArgument, fmt.Sprintf("id %d (", g))
					name := "no-index-" + tag
					_, err = reg.Get(name)
					check("registry get", err, ErrNotFound, `"`+name+`"`)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	n := 0
	for e := range errs {
		if n < 20 {
			t.Error(e)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d failures", n)
	}
	if idx.Len() != 300 {
		t.Fatalf("len %d after balanced adds and removes", idx.Len())
	}
}
