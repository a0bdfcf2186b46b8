#!/bin/sh
# Runs the C tests (c-tests/) under valgrind (--leak-check=full, definite
# leaks and any error fail) and with AddressSanitizer on the C side.
# The work is done by tests/c_tests.rs; with CI=true a missing valgrind or
# ASan fails instead of being skipped loudly.
set -eu
cd "$(dirname "$0")/.."
exec cargo test --test c_tests -- --nocapture --test-threads=1 \
    c_tests_under_valgrind c_tests_with_address_sanitizer
