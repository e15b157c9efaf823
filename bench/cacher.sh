#!/bin/sh
# Benchmarks of apt-cacher, each side by side with its reference in the same run.
# Needs: nginx (apt-get install nginx-light), apt-get, root (for the isolated apt runs).
# Scale down with BENCH_PACKAGES, BENCH_CLIENTS, BENCH_MIB, BENCH_CONNS, BENCH_FILES.
# Usage: bench/cacher.sh [name-filter]     (e.g. bench/cacher.sh bench_ttfb)
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p apt-cacher
export CACHER_BIN="$CARGO_TARGET_DIR/release/apt-cacher"
cargo test -p integration-tests --test integration -- --ignored --nocapture --test-threads 1 "::${1:-bench_}" 2>&1 |
    grep -v -e '^running' -e '^test result' -e '^$' -e '^     Running'
