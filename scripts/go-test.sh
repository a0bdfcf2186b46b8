#!/bin/sh
# Builds the static library, then vets and tests the Go binding (with the
# race detector) and builds and runs the Go example.
# Usage: scripts/go-test.sh            (from anywhere in the repository)
#        GO_BENCH=1 scripts/go-test.sh (also runs the benchmarks)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$PATH:/usr/lib/go/bin:/usr/local/go/bin"
export CGO_ENABLED=1

echo "== cargo build --release (library and the storaged example the tests start)"
cargo build --release
cargo build --release --example storaged

echo "== bindings/go: go vet"
cd "$root/bindings/go"
go vet ./...

echo "== bindings/go: go test -race"
go test -race -count=1 ./...

if [ "${GO_BENCH:-0}" != 0 ]; then
    echo "== bindings/go: benchmarks"
    go test -run '^$' -bench . -benchtime "${GO_BENCHTIME:-3s}" ./...
fi

echo "== examples/go"
cd "$root/examples/go"
go vet ./...
go build -o "$root/target/go-quickstart" .
"$root/target/go-quickstart"
