#!/usr/bin/env bash
# Benchmarks for the aptindex library (issue 2), each measured against
# `sha256sum` in the same run, on the same file, timed the same way
# (wall clock of the whole process, best of $RUNS runs alternating with
# sha256sum's so both see the same machine load, file in the page cache):
#   1. extracting the file entries of a generated 63,000-paragraph, ~50 MB
#      Packages file shaped like Debian's main/binary-amd64;
#   2. verifying a 200 MiB file with SHA-256 (streaming, size + digest).
# Usage: bench/aptindex.sh   (env: RUNS=7, CARGO_TARGET_DIR, WORKDIR)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p aptindex --example aptindex-bench
BIN="$TARGET/release/examples/aptindex-bench"
WORK=${WORKDIR:-$(mktemp -d)}
trap '[ -z "${WORKDIR:-}" ] && rm -rf "$WORK"' EXIT

# Nanoseconds of wall clock one run of "$@" takes (output discarded).
run_ns() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s%N)
  echo $(( t1 - t0 ))
}

# Runs command A (sha256sum) and command B (ours) alternately $RUNS times, so
# both see the same machine load, and prints "bestA bestB" in seconds.
# A and B are given as two strings, split on white space (no quoting needed).
race() {
  local a="$1" b="$2" ba="" bb="" t
  for _ in $(seq "$RUNS"); do
    t=$(run_ns $a); if [ -z "$ba" ] || [ "$t" -lt "$ba" ]; then ba=$t; fi
    t=$(run_ns $b); if [ -z "$bb" ] || [ "$t" -lt "$bb" ]; then bb=$t; fi
  done
  awk -v a="$ba" -v b="$bb" 'BEGIN { printf "%.4f %.4f\n", a / 1e9, b / 1e9 }'
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== 1. Packages parse vs sha256sum"
"$BIN" gen "$WORK/Packages" 63000
BYTES=$(stat -c %s "$WORK/Packages")
echo "Packages: $(grep -c '^Package:' "$WORK/Packages") paragraphs, $BYTES bytes"
cat "$WORK/Packages" >/dev/null
"$BIN" parse "$WORK/Packages" >/dev/null   # warm-up; prints internal timing
read -r SHA PARSE < <(race "sha256sum $WORK/Packages" "$BIN parse $WORK/Packages")
awk -v s="$SHA" -v p="$PARSE" -v b="$BYTES" 'BEGIN {
  printf "sha256sum:      %.4f s  %7.0f MB/s\n", s, b / s / 1e6
  printf "aptindex parse: %.4f s  %7.0f MB/s\n", p, b / p / 1e6
  printf "parse / sha256sum time ratio: %.3f (target <= 0.25)\n", p / s
}'

read -r SHA COLLECT < <(race "sha256sum $WORK/Packages" "$BIN parse-collect $WORK/Packages")
awk -v s="$SHA" -v p="$COLLECT" -v b="$BYTES" 'BEGIN {
  printf "(collecting all entries in a Vec: sha256sum %.4f s, parse-collect %.4f s, %.0f MB/s, ratio %.3f)\n", s, p, b / p / 1e6, p / s
}'
# For context: the parse alone, on a buffer already in memory (best of 20, in-process).
"$BIN" parse-buffer "$WORK/Packages" 20 2>&1 >/dev/null | sed 's/^/in-process /'

echo "== 2. SHA-256 verification of a 200 MiB file vs sha256sum"
head -c $((200 << 20)) /dev/urandom > "$WORK/blob"
cat "$WORK/blob" >/dev/null
DIGEST=$(sha256sum "$WORK/blob" | cut -d' ' -f1)
"$BIN" verify "$WORK/blob" "$DIGEST" >/dev/null   # warm-up; prints internal timing
read -r SHA VERIFY < <(race "sha256sum $WORK/blob" "$BIN verify $WORK/blob $DIGEST")
awk -v s="$SHA" -v v="$VERIFY" -v b=$((200 << 20)) 'BEGIN {
  printf "sha256sum:       %.4f s  %7.0f MB/s\n", s, b / s / 1e6
  printf "aptindex verify: %.4f s  %7.0f MB/s\n", v, b / v / 1e6
  printf "verify speed / sha256sum speed: %.3f (target >= 0.90)\n", s / v
}'
