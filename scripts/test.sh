#!/usr/bin/env bash
# Sets up what the tests need on a fresh Debian machine (as root), then runs
# every test: format and lint checks, the Rust tests (which also compile and
# run the C tests, the header drift check and the restart acceptance), the C
# tests under valgrind and AddressSanitizer, the Go tests with -race, and
# scripts/install-test.sh (install into a temporary prefix, then build C and
# Go programs outside the checkout with pkg-config).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "setup"
missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v readelf >/dev/null 2>&1 || missing+=(binutils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
cargo --version; cc --version | head -1; valgrind --version; go version
echo "pkg-config $(pkg-config --version)"

# moto: the S3-compatible server the S3 tests start (tests/common/moto.rs).
# Kept in a venv outside the clone so later runs reuse it (about 45 s to
# install on a fresh machine).
moto_venv="${HOME}/.cache/vectord-test/moto-venv"
if [ ! -x "${moto_venv}/bin/moto_server" ]; then
  echo "installing moto[server] into ${moto_venv}"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  mkdir -p "$(dirname "${moto_venv}")"
  python3 -m venv "${moto_venv}"
  "${moto_venv}/bin/pip" install -q 'moto[server]==5.2.*'
fi
# (Not `pip show | head`: with pipefail, pip's broken pipe fails the script.)
"${moto_venv}/bin/python" -c 'import moto; print("moto", moto.__version__)'

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --release"
# --release shares every compiled dependency with the release library the Go
# step links, which saves a whole build; the debug-profile tests (plain
# `cargo test`) run the same tests with debug assertions on.
cargo test --release

step "Go binding: go vet, go test -race, the Go example"
./scripts/go-test.sh

step "install into temporary prefixes; C and Go programs outside the repository"
./scripts/install-test.sh

step "all tests passed"
