#!/bin/sh
# Runs every cargo-fuzz target of aptindex/fuzz for a fixed time and prints
# one line per target: executions, peak RSS, new corpus units, result
# (RELIABILITY.md's fuzzing table). Needs cargo-fuzz (cargo install
# cargo-fuzz --locked); stable Rust with RUSTC_BOOTSTRAP=1, no sanitizer
# (`-s none`: the code under test is safe Rust). Crashes land in
# aptindex/fuzz/artifacts/<target>/.
# Usage: bench/fuzz.sh [seconds per target, default 180] [target ...]
set -eu
cd "$(dirname "$0")/../aptindex/fuzz"
secs="${1:-180}"
[ $# -gt 0 ] && shift
targets="${*:-deb822 release packages sources signature pdiff compress request_path config}"
export RUSTC_BOOTSTRAP=1
[ -d corpus/pdiff ] || ./seed-corpus.sh
cargo fuzz build -s none -O --features programs
mkdir -p logs
for t in $targets; do
    extra=""
    [ "$t" = signature ] && extra="-max_len=4096"
    set +e
    cargo fuzz run -s none -O --features programs "$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 $extra \
        > "logs/$t.log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "logs/$t.log" | tail -1)
    units=$(sed -n 's/^stat::new_units_added: *//p' "logs/$t.log" | tail -1)
    if [ "$rc" = 0 ]; then result="no crash"; else result="FAILED (exit $rc, see aptindex/fuzz/logs/$t.log)"; fi
    echo "$t: ${secs}s, executions ${execs:-?}, new units ${units:-?}, peak RSS ${rss:-?} MB: $result"
done
