#!/bin/sh
# The 30-minute soak of the release apt-cacher (RELIABILITY.md): real apt-get
# loops and HTTP clients through it while the upstream churns and faults are
# injected; samples its RSS, descriptors and threads every minute and fails
# if any of them grew past the slack (see
# tests/tests/integration/cacher_bench/soak.rs).
# Needs: apt-get, gpgv, root (for the isolated apt runs).
# Usage: bench/soak.sh            (SOAK_MINUTES=5 bench/soak.sh for a short one)
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p apt-cacher
export CACHER_BIN="$CARGO_TARGET_DIR/release/apt-cacher"
export SOAK_MINUTES="${SOAK_MINUTES:-30}"
cargo test -p integration-tests --test integration -- --ignored --nocapture --exact \
    cacher_bench::soak::soak_mixed_apt_traffic_with_churn_and_faults 2>&1 |
    grep -v -e '^running' -e '^$' -e '^     Running'
