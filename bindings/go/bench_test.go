package vectord

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The benchmarks run on the wordnet-minilm-30k dataset (TEXMEX fvecs) found
// at $VECTORD_DATASET, default ../../../shared/datasets/wordnet-minilm-30k.
// The built index is cached as an LHV1 blob in the temp directory so that
// later runs only decode it.

func datasetDir() string {
	if d := os.Getenv("VECTORD_DATASET"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "datasets", "wordnet-minilm-30k")
}

// readFvecs reads a TEXMEX .fvecs file: per row an int32 (little-endian)
// dimension then that many float32s. It returns the rows flattened.
func readFvecs(path string) ([]float32, int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(raw) < 4 {
		return nil, 0, fmt.Errorf("%s: too short", path)
	}
	dim := int(int32(binary.LittleEndian.Uint32(raw)))
	row := 4 + 4*dim
	if dim <= 0 || len(raw)%row != 0 {
		return nil, 0, fmt.Errorf("%s: dim %d does not divide %d bytes", path, dim, len(raw))
	}
	n := len(raw) / row
	out := make([]float32, 0, n*dim)
	for r := 0; r < n; r++ {
		off := r * row
		if d := int(int32(binary.LittleEndian.Uint32(raw[off:]))); d != dim {
			return nil, 0, fmt.Errorf("%s: row %d has dim %d, want %d", path, r, d, dim)
		}
		for c := 0; c < dim; c++ {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(raw[off+4+4*c:])))
		}
	}
	return out, dim, nil
}

type benchData struct {
	idx     *Index
	queries []float32
	nq      int
	err     error
	skip    string
}

var (
	benchOnce sync.Once
	bench     benchData
)

func loadBench(b *testing.B) *benchData {
	benchOnce.Do(func() {
		dir := datasetDir()
		base, dim, err := readFvecs(filepath.Join(dir, "base.fvecs"))
		if os.IsNotExist(err) {
			bench.skip = fmt.Sprintf("dataset not found at %s (set VECTORD_DATASET)", dir)
			return
		}
		if err != nil {
			bench.err = err
			return
		}
		qs, qdim, err := readFvecs(filepath.Join(dir, "query.fvecs"))
		if err != nil || qdim != dim {
			bench.err = fmt.Errorf("queries: dim %d vs %d: %v", qdim, dim, err)
			return
		}
		bench.queries, bench.nq = qs, len(qs)/dim
		n := len(base) / dim
		cache := filepath.Join(os.TempDir(), fmt.Sprintf("vectord-go-bench-%s-%d.lhv1", filepath.Base(dir), n))
		if blob, err := os.ReadFile(cache); err == nil {
			if idx, err := Decode(blob); err == nil && idx.Len() == n {
				bench.idx = idx
				return
			}
		}
		idx, err := NewIndex(IndexParams{Name: "wordnet", Dim: dim, Metric: Cosine})
		if err != nil {
			bench.err = err
			return
		}
		is := make([]string, n)
		for j := range is {
			is[j] = fmt.Sprintf("w%d", j)
		}
		md := make([][]byte, n)
		for j := range md {
			md[j] = []byte(fmt.Sprintf(`{"row":%d}`, j))
		}
		if bench.err = idx.Add(is, base, md); bench.err != nil {
			return
		}
		if blob, err := idx.Encode(); err == nil {
			_ = os.WriteFile(cache, blob, 0o644)
		}
		bench.idx = idx
	})
	if bench.skip != "" {
		b.Skip(bench.skip)
	}
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return &bench
}

const benchK = 10

// BenchmarkSearch: one query per op through the Go API, one goroutine.
func BenchmarkSearch(b *testing.B) {
	d := loadBench(b)
	dim := d.idx.Dim()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		q := n % d.nq
		hits, err := d.idx.Search(d.queries[q*dim:(q+1)*dim], benchK)
		if err != nil || len(hits) != benchK {
			b.Fatal(len(hits), err)
		}
	}
}

// BenchmarkSearchCBaseline: the same queries through vectord_index_search
// in a C loop (one cgo call for all b.N queries).
func BenchmarkSearchCBaseline(b *testing.B) {
	d := loadBench(b)
	b.ResetTimer()
	seen, err := d.idx.cBaselineSearch(d.queries, benchK, b.N)
	if err != nil || seen < int64(b.N) {
		b.Fatal(seen, err)
	}
}

// BenchmarkSearchBatch: all queries per op through SearchBatch (all cores);
// ns/query is reported alongside ns/op.
func BenchmarkSearchBatch(b *testing.B) {
	d := loadBench(b)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for n := 0; n < b.N; n++ {
		res, err := d.idx.SearchBatch(d.queries, benchK)
		if err != nil || len(res) != d.nq {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*d.nq), "ns/query")
}

// BenchmarkSearchBatchCBaseline: vectord_index_search_batch over all
// queries in a C loop.
func BenchmarkSearchBatchCBaseline(b *testing.B) {
	d := loadBench(b)
	b.ResetTimer()
	start := time.Now()
	if _, err := d.idx.cBaselineBatch(d.queries, benchK, b.N); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*d.nq), "ns/query")
}

// The Go layer's fixed per-query cost, isolated: the same pair on a tiny
// index (100 items, dim 8) where the search itself is cheap, so the
// difference between the two is the overhead in absolute nanoseconds.
func smallIndex(b *testing.B) (*Index, []float32) {
	idx, _, vs := newTestIndex(b, "small", 100, 8, L2)
	return idx, vs
}

func BenchmarkSearchSmall(b *testing.B) {
	idx, vs := smallIndex(b)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		q := n % 100
		if _, err := idx.Search(vs[q*8:(q+1)*8], benchK); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSearchSmallCBaseline(b *testing.B) {
	idx, vs := smallIndex(b)
	b.ResetTimer()
	if _, err := idx.cBaselineSearch(vs, benchK, b.N); err != nil {
		b.Fatal(err)
	}
}
