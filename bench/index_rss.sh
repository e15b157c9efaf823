#!/bin/bash
# Peak RSS of apt-cacher and apt-mirror reading (1) a real-size Debian main
# amd64 Packages (63,000 entries, generated in the shape of the real one by
# bench/mirror_gen.py) and (2) a 2 GiB decompression bomb (tiny identical
# paragraphs, xz: a few hundred KiB), for two builds side by side (issue #13,
# item 2). Everything runs on 127.0.0.1 (nginx serves the repositories).
#
#   bench/index_rss.sh                      # NEW=target/release BASE=/work/base-bin
#   BASE=/path/to/old/bin NEW=/path/to/new/bin bench/index_rss.sh
#
# Each run is under `ulimit -v` ($VMEM_KB, default 8 GiB) so that a build
# without bounds fails (out of memory) instead of taking the machine down.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NEW=${NEW:-$ROOT/target/release}
BASE=${BASE:-/work/base-bin}
N=${N:-63000}
BOMB_MIB=${BOMB_MIB:-2048}
VMEM_KB=${VMEM_KB:-8388608}
WORK=${WORK:-$(mktemp -d /tmp/index-rss.XXXXXX)}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cleanup() {
    [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null || true
    [ -z "${KEEP:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_nginx() { # root
    local port
    port=$(free_port)
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

rss_of() { awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print int($2/1024)}' "$1"; }

# apt-mirror: one run; prints "RSS MiB, exit status".
mirror_rss() { # bin label
    local dir="$WORK/m-$2" status=0
    rm -rf "$dir"; mkdir -p "$dir"
    cat > "$dir/mirror.toml" <<EOF
dir = "$dir/root"
[log]
level = "error"
[mirror.bench]
url = "$URL"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
EOF
    (ulimit -v "$VMEM_KB"; /usr/bin/time -v -o "$dir/time.txt" "$1/apt-mirror" -f "$dir/mirror.toml" \
        > "$dir/out.txt" 2>&1) || status=$?
    echo "$(rss_of "$dir/time.txt") MiB, exit $status: $(grep -o 'FAILED.*' "$dir/out.txt" | head -c 160)"
}

# apt-cacher: started, asked for the Release then the index (parsed when it
# is committed into the generation), stopped; prints "RSS MiB, HTTP status".
cacher_rss() { # bin label
    local dir="$WORK/c-$2" port code tpid cpid
    rm -rf "$dir"; mkdir -p "$dir"
    port=$(free_port)
    cat > "$dir/cacher.toml" <<EOF
listen_address = "127.0.0.1:$port"
meta_dir = "$dir/meta"
cache_dir = "$dir/cache"
[log]
level = "error"
[mapping]
bench = "$URL"
EOF
    (ulimit -v "$VMEM_KB"; exec /usr/bin/time -v -o "$dir/time.txt" "$1/apt-cacher" -f "$dir/cacher.toml" \
        > "$dir/out.txt" 2>&1) &
    tpid=$!
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$port/bench/dists/stable/Release" && break
        sleep 0.05
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 600 \
        "http://127.0.0.1:$port/bench/dists/stable/main/binary-amd64/Packages.xz" || true)
    cpid=$(pgrep -P "$tpid" || true)
    [ -n "$cpid" ] && kill "$cpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    echo "$(rss_of "$dir/time.txt") MiB, HTTP $code: $(grep -io 'quarantined.*' "$dir/out.txt" | head -c 160)"
}

echo "== generating a $N-package repository (tiny pool files) in $WORK/real"
python3 "$ROOT/bench/mirror_gen.py" "$WORK/real" --packages "$N" --size-kb 0.1 > /dev/null
echo "   Packages: $(stat -c %s "$WORK/real/dists/stable/main/binary-amd64/Packages") bytes, $(grep -c '^Package:' "$WORK/real/dists/stable/main/binary-amd64/Packages") entries"

echo "== generating a $BOMB_MIB MiB bomb in $WORK/bomb"
python3 - "$WORK/bomb" "$BOMB_MIB" <<'EOF'
import hashlib, lzma, os, sys
out, mib = sys.argv[1], int(sys.argv[2])
d = os.path.join(out, "dists/stable/main/binary-amd64")
os.makedirs(d, exist_ok=True)
par = b"Package: b\nFilename: pool/main/b/b.deb\nSize: 1\nSHA256: " + b"0" * 64 + b"\n\n"
chunk = par * ((1 << 20) // len(par))
c = lzma.LZMACompressor(preset=1)
packed = bytearray()
total = 0
while total < mib << 20:
    packed += c.compress(chunk)
    total += len(chunk)
packed += c.flush()
with open(os.path.join(d, "Packages.xz"), "wb") as f:
    f.write(packed)
h = hashlib.sha256(packed).hexdigest()
rel = ("Suite: stable\nCodename: stable\nComponents: main\nArchitectures: amd64\n"
       "Date: Sat, 05 Dec 2026 00:00:00 UTC\nSHA256:\n %s %d main/binary-amd64/Packages.xz\n" % (h, len(packed)))
open(os.path.join(out, "dists/stable/Release"), "w").write(rel)
print("   Packages.xz: %d bytes compressed, %d bytes decompressed" % (len(packed), total))
EOF

for repo in real bomb; do
    start_nginx "$WORK/$repo"
    for build in BASE NEW; do
        bin=${!build}
        echo "$repo $build apt-cacher: $(cacher_rss "$bin" "$repo-$build")"
        echo "$repo $build apt-mirror: $(mirror_rss "$bin" "$repo-$build")"
    done
    kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
done
