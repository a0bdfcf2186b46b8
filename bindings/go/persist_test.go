package vectord

import (
	"bufio"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func forceGC() {
	for j := 0; j < 3; j++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func repoRoot(t testing.TB) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	must(t, err)
	return root
}

// openPersistent opens url, skipping the test when the linked library was
// built without persistence.
func openPersistent(t *testing.T, url string, opts *Options) *Registry {
	t.Helper()
	reg, err := Open(url, opts)
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("library without persistence: %v", err)
	}
	must(t, err)
	return reg
}

// roundTrip writes two indexes through one registry, closes it, and checks
// that a new registry on the same storage sees the same items, vectors,
// metadata and search results; then that a delete persists too.
func roundTrip(t *testing.T, url string, opts *Options) {
	rng := rand.New(rand.NewSource(7))
	const dim = 16
	vs := randVectors(rng, 200, dim)
	is := ids("p-", 200)
	md := make([][]byte, 200)
	for j := range md {
		if j%3 != 0 {
			md[j] = []byte(`{"n":` + itoa(j) + `,"s":"é"}`)
		}
	}

	reg := openPersistent(t, url, opts)
	idx, err := reg.Create(IndexParams{Name: "persisted", Dim: dim, Metric: Cosine})
	must(t, err)
	must(t, idx.Add(is, vs, md))
	must(t, idx.Remove(is[5]))
	must(t, idx.Save())
	tmp, err := reg.Create(IndexParams{Name: "to-delete", Dim: 2, Metric: L2})
	must(t, err)
	must(t, tmp.Add([]string{"a"}, []float32{1, 2}, nil))
	must(t, reg.Flush())
	before, err := idx.SearchBatch(vs[:10*dim], 5)
	must(t, err)
	must(t, idx.Close())
	must(t, tmp.Close())
	must(t, reg.Close())

	reg = openPersistent(t, url, opts)
	names, err := reg.Names()
	must(t, err)
	if !reflect.DeepEqual(names, []string{"persisted", "to-delete"}) {
		t.Fatalf("names after reopen: %q", names)
	}
	idx, err = reg.Get("persisted")
	must(t, err)
	if idx.Len() != 199 || idx.Dim() != dim {
		t.Fatalf("reopened len %d dim %d", idx.Len(), idx.Dim())
	}
	after, err := idx.SearchBatch(vs[:10*dim], 5)
	must(t, err)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("search results changed across reopen:\n%v\n%v", before, after)
	}
	_, m, err := idx.Get(is[7])
	must(t, err)
	if string(m) != string(md[7]) {
		t.Fatalf("metadata %q want %q", m, md[7])
	}
	_, _, err = idx.Get(is[5])
	wantErr(t, err, ErrNotFound, is[5])
	must(t, reg.Delete("to-delete"))
	must(t, reg.Flush())
	must(t, idx.Close())
	must(t, reg.Close())

	reg = openPersistent(t, url, opts)
	defer reg.Close()
	names, err = reg.Names()
	must(t, err)
	if !reflect.DeepEqual(names, []string{"persisted"}) {
		t.Fatalf("names after delete and reopen: %q", names)
	}
}

func TestPersistDirectory(t *testing.T) {
	dir := t.TempDir()
	roundTrip(t, filepath.Join(dir, "store"), &Options{Save: "manual"})
	roundTrip(t, filepath.Join(dir, "store-sync"), &Options{Save: "sync"})
}

// startStoraged runs the example storaged server on a free port and returns
// its address; the server is killed when the test ends.
func startStoraged(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	bin := filepath.Join(root, "target", "release", "examples", "storaged")
	if _, err := os.Stat(bin); err != nil {
		t.Logf("building %s", bin)
		cmd := exec.Command("cargo", "build", "--release", "--example", "storaged")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cargo build --example storaged: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(bin, "--dir", t.TempDir(), "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := cutPrefix(sc.Text(), "listening on "); ok {
				addr <- strings.TrimSpace(rest)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("storaged did not print its address")
	}
	return ""
}

func cutPrefix(s, prefix string) (string, bool) {
	if !strings.HasPrefix(s, prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

func TestPersistStoraged(t *testing.T) {
	addr := startStoraged(t)
	url := "http://" + addr
	roundTrip(t, url, &Options{Prefix: "tenant-a/", TimeoutMs: 10000, Retries: 2, Save: "manual"})
	// Another prefix is another, empty, namespace.
	reg := openPersistent(t, url, &Options{Prefix: "tenant-b/"})
	names, err := reg.Names()
	must(t, err)
	if len(names) != 0 {
		t.Fatalf("tenant-b sees %q", names)
	}
	must(t, reg.Close())
}

// A storage failure surfaces as ErrStorage.
func TestStorageError(t *testing.T) {
	if reg := openDead(t); reg != nil {
		must(t, reg.Close())
	}
}

// openDead opens a registry on an address with no server; depending on the
// library this fails at Open or at the first write, and either way the error
// must match ErrStorage.
func openDead(t *testing.T) *Registry {
	reg, err := Open("http://127.0.0.1:9", &Options{TimeoutMs: 1000, Retries: 1, Save: "manual"})
	if err != nil {
		wantErr(t, err, ErrStorage)
		return nil
	}
	idx, err := reg.Create(IndexParams{Name: "nowhere", Dim: 2, Metric: L2})
	if err != nil {
		wantErr(t, err, ErrStorage)
		return reg
	}
	defer idx.Close()
	must(t, idx.Add([]string{"a"}, []float32{1, 2}, nil))
	wantErr(t, idx.Save(), ErrStorage)
	wantErr(t, reg.Flush(), ErrStorage)
	return reg
}

// Two registries over one directory: the stale writer's save is
// ErrConflict, Reload recovers it in place (the held Index sees the stored
// contents), Refresh picks up the other writer's new index, and a read-only
// registry refuses changes.
func TestConflictReloadRefresh(t *testing.T) {
	dir := t.TempDir()
	manual := &Options{Save: "manual"}
	a := openPersistent(t, dir, manual)
	defer a.Close()
	b := openPersistent(t, dir, manual)
	defer b.Close()
	ia, err := a.Create(IndexParams{Name: "docs", Dim: 2, Metric: L2})
	must(t, err)
	must(t, a.Flush())
	must(t, b.Refresh())
	ib, err := b.Get("docs")
	must(t, err)
	must(t, ia.Add([]string{"a1"}, []float32{1, 2}, nil))
	must(t, a.Flush())
	must(t, ib.Add([]string{"b1"}, []float32{3, 4}, nil))
	if err := b.Flush(); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale save: %v, want ErrConflict", err)
	}
	must(t, b.Reload("docs"))
	if _, _, err := ib.Get("a1"); err != nil {
		t.Fatalf("held index after Reload: %v", err)
	}
	if _, _, err := ib.Get("b1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("discarded item still there: %v", err)
	}
	_, err = a.Create(IndexParams{Name: "more", Dim: 2, Metric: L2})
	must(t, err)
	must(t, a.Flush())
	must(t, b.Refresh())
	if _, err := b.Get("more"); err != nil {
		t.Fatalf("Refresh did not load the new index: %v", err)
	}
	ro := openPersistent(t, dir, &Options{ReadOnly: true})
	defer ro.Close()
	if _, err := ro.Create(IndexParams{Name: "x", Dim: 2, Metric: L2}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("read-only Create: %v", err)
	}
	if err := b.Reload("nowhere"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Reload of an unknown index: %v", err)
	}
}
