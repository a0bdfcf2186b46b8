package vectord

import (
	"errors"
	"math/rand"
	"strings"
	"testing"
)

// randVectors returns n*dim components in [-1, 1).
func randVectors(rng *rand.Rand, n, dim int) []float32 {
	v := make([]float32, n*dim)
	for j := range v {
		v[j] = rng.Float32()*2 - 1
	}
	return v
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for j := range out {
		out[j] = prefix + itoa(j)
	}
	return out
}

func itoa(j int) string {
	if j == 0 {
		return "0"
	}
	var b []byte
	for ; j > 0; j /= 10 {
		b = append([]byte{byte('0' + j%10)}, b...)
	}
	return string(b)
}

// wantErr fails unless err matches sentinel with errors.Is, is an *Error
// and its message contains every fragment.
func wantErr(t testing.TB, err error, sentinel error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %v, got nil", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("want errors.Is(err, %v), got %v", sentinel, err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *Error", err, err)
	}
	for _, s := range sentinels {
		if s != nil && s != sentinel && errors.Is(err, s) {
			t.Fatalf("error %v also matches %v", err, s)
		}
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newTestIndex builds a standalone index holding n random items with
// metadata {"i": j}.
func newTestIndex(t testing.TB, name string, n, dim int, metric Metric) (*Index, []string, []float32) {
	t.Helper()
	idx, err := NewIndex(IndexParams{Name: name, Dim: dim, Metric: metric})
	must(t, err)
	t.Cleanup(func() { idx.Close() })
	rng := rand.New(rand.NewSource(int64(n*31 + dim)))
	vs := randVectors(rng, n, dim)
	is := ids("item-", n)
	md := make([][]byte, n)
	for j := range md {
		md[j] = []byte(`{"i":` + itoa(j) + `}`)
	}
	must(t, idx.Add(is, vs, md))
	return idx, is, vs
}
