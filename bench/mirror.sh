#!/usr/bin/env bash
# apt-mirror benchmarks, each figure printed beside its reference from the same run.
#
#   bench/mirror.sh            # 20,000 packages of ~16 KiB, 60,000-package index for RSS
#   N=2000 BIG_N=6000 bench/mirror.sh   # quick run
#
# Needs: python3, nginx (nginx-light), curl, /usr/bin/time (Debian package "time").
# Everything runs on 127.0.0.1: nginx serves a generated repository (bench/mirror_gen.py),
# then we measure
#   1. initial mirror vs plain parallel curl of the same files (same connection count);
#   2. a rerun with the upstream unchanged (target < 1 s);
#   3. a rerun after 1% of the packages changed (target < 10% of the initial time), and
#      another one (another 1%; the oldest snapshot is removed);
#   4. peak RSS of an initial mirror of a 60,000-package index (target < 200 MiB).
set -euo pipefail

N=${N:-20000}
SIZE_KB=${SIZE_KB:-16}
BIG_N=${BIG_N:-60000}
CONNS=${CONNS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/apt-mirror-bench.XXXXXX)}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/apt-mirror}

if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build --release -p apt-mirror)
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cleanup() {
    [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null || true
    [ -z "${KEEP:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

start_nginx() { # root
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$WORK/nginx"
    cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
    server { listen 127.0.0.1:$port; root $1; }
}
EOF
    "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
    NGINX_PID=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.05
    done
    URL="http://127.0.0.1:$port"
}

config() { # file dir
    cat > "$1" <<EOF
dir = "$2"
max_conns = $CONNS
[log]
level = "warning"
[mirror.bench]
url = "$URL"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
EOF
}

# Runs apt-mirror under /usr/bin/time -v; sets ELAPSED and RSS_KB.
run_mirror() { # config
    local t0 t1
    t0=$(now)
    /usr/bin/time -v -o "$WORK/time.txt" "$BIN" -f "$1" > "$WORK/run.txt" 2> "$WORK/run.err" || {
        cat "$WORK/run.txt" "$WORK/run.err"; exit 1; }
    t1=$(now)
    ELAPSED=$(secs "$t0" "$t1")
    RSS_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$WORK/time.txt")
    sed 's/^/    /' "$WORK/run.txt"
}

echo "== generating $N packages of ~${SIZE_KB} KiB in $WORK/upstream"
python3 "$ROOT/bench/mirror_gen.py" "$WORK/upstream" --packages "$N" --size-kb "$SIZE_KB"
start_nginx "$WORK/upstream"
BYTES=$(du -sb "$WORK/upstream/pool" | cut -f1)
FILES=$(wc -l < "$WORK/upstream/pool-files.txt")

echo "== reference: curl --parallel --parallel-max $CONNS of the same $FILES pool files + indices"
{
    for f in dists/stable/Release dists/stable/main/binary-amd64/Packages \
             dists/stable/main/binary-amd64/Packages.gz dists/stable/main/binary-amd64/Packages.xz; do
        printf 'url = "%s/%s"\noutput = "%s/curl/%s"\n' "$URL" "$f" "$WORK" "$f"
    done
    while read -r f; do
        printf 'url = "%s/%s"\noutput = "%s/curl/%s"\n' "$URL" "$f" "$WORK" "$f"
    done < "$WORK/upstream/pool-files.txt"
} > "$WORK/curl.cfg"
sync
t0=$(now)
curl -s --no-progress-meter --fail --create-dirs --parallel --parallel-max "$CONNS" -K "$WORK/curl.cfg"
sync
t1=$(now)
CURL_S=$(secs "$t0" "$t1")
# (Its copy is removed only after apt-mirror's initial run: on ext4, creating
# files right after many were deleted is slower (new inodes avoid recently
# deleted ones), which would handicap whichever runs second.)

echo "== apt-mirror: initial mirror"
config "$WORK/mirror.toml" "$WORK/mirror"
sync
run_mirror "$WORK/mirror.toml"
INIT_S=$ELAPSED; INIT_RSS=$RSS_KB
rm -rf "$WORK/curl"
sync

echo "== apt-mirror: rerun, upstream unchanged"
run_mirror "$WORK/mirror.toml"
NOCHANGE_S=$ELAPSED

CHANGED=$((N / 100))
echo "== upstream: $CHANGED packages (1%) change"
python3 "$ROOT/bench/mirror_gen.py" "$WORK/upstream" --packages "$N" --size-kb "$SIZE_KB" --changed "$CHANGED"
sync  # apt-mirror's syncfs must not pay for the generator's writes
echo "== apt-mirror: rerun after 1% changed"
run_mirror "$WORK/mirror.toml"
CHANGE_S=$ELAPSED

# Steady state: the first packages stay changed, another 1% change, and the
# oldest snapshot falls out of `keep` (removed with the pool files only it named).
echo "== upstream: another $CHANGED packages (1%) change"
python3 "$ROOT/bench/mirror_gen.py" "$WORK/upstream" --packages "$N" --size-kb "$SIZE_KB" --changed "$((2 * CHANGED))"
sync
echo "== apt-mirror: rerun after another 1% changed (oldest snapshot removed)"
run_mirror "$WORK/mirror.toml"
CHANGE2_S=$ELAPSED
SNAPSHOTS=$(find "$WORK/mirror" -maxdepth 1 -name '.bench.*' | sed 's|.*/||' | sort | tr '\n' ' ')
echo "    mirror root entries: $SNAPSHOTS"

kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
rm -rf "$WORK/mirror" "$WORK/upstream"

echo "== generating a $BIG_N-package index (tiny pool files) for peak RSS"
python3 "$ROOT/bench/mirror_gen.py" "$WORK/big" --packages "$BIG_N" --size-kb 0.1
start_nginx "$WORK/big"
PKG_MB=$(python3 -c "import os; print(f'{os.path.getsize(\"$WORK/big/dists/stable/main/binary-amd64/Packages\")/1048576:.1f}')")
config "$WORK/big.toml" "$WORK/bigmirror"
run_mirror "$WORK/big.toml"
BIG_S=$ELAPSED; BIG_RSS=$RSS_KB

python3 - "$CURL_S" "$INIT_S" "$NOCHANGE_S" "$CHANGE_S" "$INIT_RSS" "$BIG_RSS" "$BIG_S" \
    "$N" "$FILES" "$BYTES" "$BIG_N" "$PKG_MB" "$CONNS" "$CHANGE2_S" <<'EOF'
import sys
curl, init, nochange, change, init_rss, big_rss, big_s = map(float, sys.argv[1:8])
n, files, nbytes, big_n = map(int, sys.argv[8:12])
pkg_mb, conns, change2 = sys.argv[12], sys.argv[13], float(sys.argv[14])
mb = nbytes / 1048576
def ok(b): return "OK  " if b else "MISS"
print()
print(f"apt-mirror benchmark: {n} packages, {files} pool files, {mb:.0f} MiB, max_conns={conns}")
print(f"{'measure':44} {'apt-mirror':>12} {'reference':>14}  target")
print(f"{'initial mirror (s)':44} {init:12.2f} {curl:12.2f} s  curl --parallel")
print(f"{'initial throughput (MiB/s)':44} {mb/init:12.1f} {mb/curl:12.1f}    {ok(mb/init >= 0.8*mb/curl)} >= 80% of curl ({100*curl/init:.0f}%)")
print(f"{'rerun, upstream unchanged (s)':44} {nochange:12.3f} {1.0:12.3f} s  {ok(nochange < 1)} < 1 s")
print(f"{'rerun after 1% changed (s)':44} {change:12.2f} {0.1*init:12.2f} s  {ok(change < 0.1*init)} < 10% of initial ({100*change/init:.1f}%)")
print(f"{'rerun after another 1% changed (s)':44} {change2:12.2f} {0.1*init:12.2f} s  {ok(change2 < 0.1*init)} < 10% of initial ({100*change2/init:.1f}%), oldest snapshot removed")
print(f"{'peak RSS, initial mirror (MiB)':44} {init_rss/1024:12.1f}")
print(f"{'peak RSS, %d-package index (%s MiB) (MiB)' % (big_n, pkg_mb):44} {big_rss/1024:12.1f} {200:12.0f}    {ok(big_rss/1024 < 200)} < 200 MiB  ({big_s:.1f} s)")
EOF
