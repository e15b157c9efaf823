#!/usr/bin/env bash
# Issue 13, item 3: a flood of made-up suite names against apt-cacher.
# For each binary given (default: /work/base-bin/apt-cacher if present, and
# target/release/apt-cacher), on 127.0.0.1 against nginx serving a one-suite
# repository, it prints:
#   1. RSS after start (the real suite and its pool file cached),
#   2. RSS after 500 requests for InRelease of suites with 60 KB names,
#   3. RSS after $SHORT (200,000) requests for InRelease of short made-up names,
#   4. the median and 95th percentile of a cached pool hit (200 sequential
#      requests on one keep-alive connection) before the flood and after it,
#   5. the suites on /~/status.json after the flood.
# Needs: python3, nginx (nginx-light), curl.
# Usage: bench/suite_flood.sh [binary...]     (env: SHORT=200000, LONG=500)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHORT=${SHORT:-200000}
LONG=${LONG:-500}
WORK=$(mktemp -d /tmp/suite-flood.XXXXXX)
chmod 755 "$WORK"   # nginx workers read it
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ $# -eq 0 ]; then
    set --
    [ -x /work/base-bin/apt-cacher ] && set -- /work/base-bin/apt-cacher
    set -- "$@" "${CARGO_TARGET_DIR:-$ROOT/target}/release/apt-cacher"
fi

cleanup() {
    [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null || true
    [ -n "${CACHER_PID:-}" ] && kill "$CACHER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A one-suite repository: Release listing Packages, Packages listing one .deb.
python3 - "$WORK/up" <<'EOF'
import hashlib, os, sys
root = sys.argv[1]
deb = os.urandom(100_000)
os.makedirs(f"{root}/pool/main/a", exist_ok=True)
open(f"{root}/pool/main/a/a_1_amd64.deb", "wb").write(deb)
pk = (f"Package: a\nVersion: 1\nArchitecture: amd64\nFilename: pool/main/a/a_1_amd64.deb\n"
      f"Size: {len(deb)}\nSHA256: {hashlib.sha256(deb).hexdigest()}\n\n").encode()
d = f"{root}/dists/stable"
os.makedirs(f"{d}/main/binary-amd64", exist_ok=True)
open(f"{d}/main/binary-amd64/Packages", "wb").write(pk)
rel = ("Origin: bench\nSuite: stable\nCodename: stable\nDate: Thu, 01 Jan 2026 00:00:00 UTC\n"
       "Architectures: amd64\nComponents: main\nSHA256:\n"
       f" {hashlib.sha256(pk).hexdigest()} {len(pk)} main/binary-amd64/Packages\n")
open(f"{d}/Release", "w").write(rel)
open(f"{d}/InRelease", "w").write(rel)
EOF

UP_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    keepalive_requests 1000000;
    large_client_header_buffers 4 128k;
    server { listen 127.0.0.1:$UP_PORT; root $WORK/up; }
}
EOF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
NGINX_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$UP_PORT/" && break; sleep 0.05; done

# The client: N requests for made-up suites (4 keep-alive connections),
# or the pool-hit latency; speaks HTTP/1.1 with http.client.
cat > "$WORK/client.py" <<'EOF'
import http.client, sys, threading, time, statistics
port, mode = int(sys.argv[1]), sys.argv[2]
def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)
if mode == "flood":
    n, namelen, tag = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    codes = {}
    lock = threading.Lock()
    def worker(k):
        c = conn()
        for i in range(k, n, 4):
            name = (f"{tag}{i}-" * (namelen // 8 + 1))[:namelen] if namelen > 16 else f"{tag}{i}"
            try:
                c.request("GET", f"/m/dists/{name}/InRelease")
                r = c.getresponse(); r.read()
                s = r.status
            except Exception as e:
                s = type(e).__name__
                c.close(); c = conn()
            with lock:
                codes[s] = codes.get(s, 0) + 1
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print("statuses:", dict(sorted(codes.items(), key=str)))
else:
    c = conn(); times = []
    for _ in range(200):
        t0 = time.perf_counter()
        c.request("GET", "/m/pool/main/a/a_1_amd64.deb")
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(f"pool hit: median {statistics.median(times):.3f} ms, p95 {times[189]:.3f} ms")
EOF

rss() { awk '/VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }

for BIN in "$@"; do
    echo "== $BIN"
    if [ ! -x "$BIN" ]; then echo "   not built (cargo build --release -p apt-cacher)"; continue; fi
    rm -rf "$WORK/meta" "$WORK/cache"
    PORT=$(free_port)
    cat > "$WORK/cacher.toml" <<EOF
listen_address = "127.0.0.1:$PORT"
meta_dir = "$WORK/meta"
cache_dir = "$WORK/cache"
[log]
level = "error"
[mapping]
m = "http://127.0.0.1:$UP_PORT"
EOF
    "$BIN" -f "$WORK/cacher.toml" > "$WORK/cacher.log" 2>&1 &
    CACHER_PID=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/~/status.json" && break; sleep 0.05; done
    curl -s -o /dev/null "http://127.0.0.1:$PORT/m/dists/stable/InRelease"
    curl -s -o /dev/null "http://127.0.0.1:$PORT/m/dists/stable/main/binary-amd64/Packages"
    curl -s -o /dev/null "http://127.0.0.1:$PORT/m/pool/main/a/a_1_amd64.deb"
    sleep 1
    echo "   RSS at start: $(rss $CACHER_PID)"
    echo "   before the flood: $(python3 "$WORK/client.py" "$PORT" hit)"
    t0=$(date +%s.%N)
    echo "   $LONG names of 60 KB: $(python3 "$WORK/client.py" "$PORT" flood "$LONG" 60000 L)"
    echo "   RSS after them: $(rss $CACHER_PID)  ($(python3 -c "import time; print(f'{time.time() - $t0:.1f}')") s)"
    t0=$(date +%s.%N)
    echo "   $SHORT short names: $(python3 "$WORK/client.py" "$PORT" flood "$SHORT" 0 s)"
    echo "   RSS after them: $(rss $CACHER_PID)  ($(python3 -c "import time; print(f'{time.time() - $t0:.1f}')") s)"
    echo "   after the flood: $(python3 "$WORK/client.py" "$PORT" hit)"
    echo "   suites on status.json: $(curl -s "http://127.0.0.1:$PORT/~/status.json" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["generations"]))')"
    echo "   directories under meta_dir/m: $(find "$WORK/meta/m" -mindepth 1 -maxdepth 1 -type d | wc -l)"
    kill "$CACHER_PID"; wait "$CACHER_PID" 2>/dev/null || true
    CACHER_PID=
done
