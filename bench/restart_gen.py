#!/usr/bin/env python3
"""Builds an apt-cacher state on disk for bench/restart.sh: SUITES suites of
one mapping `debian`, each a current generation (`meta_dir/debian/dists%2Fsuite-N/
gen-1/` + `current`) with an unsigned Release and a `Packages.xz` of
ENTRIES entries (what apt fetches, so what a cache holds), and every listed .deb stored in `cache_dir` under its
verified key (`debian/<pool path>#<sha256>`), in the layouts the cacher
uses (generation/layout.rs, cache/key.rs). Files are small (64 bytes) and
distinct. Usage: restart_gen.py DIR [SUITES] [ENTRIES]"""
import hashlib, lzma, os, sys

root = sys.argv[1]
suites = int(sys.argv[2]) if len(sys.argv) > 2 else 10
entries = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
meta, cache = os.path.join(root, "meta"), os.path.join(root, "cache")
for s in range(suites):
    suite = f"suite-{s}"
    paras = []
    for i in range(entries):
        name = f"pkg{s}x{i}"
        pool = f"pool/main/p/{name}/{name}_1.0_amd64.deb"
        data = (f"{suite} {name} ".encode() * 8)[:64]
        sha = hashlib.sha256(data).hexdigest()
        key = os.path.join(cache, "debian", pool + "#" + sha)
        os.makedirs(os.path.dirname(key), exist_ok=True)
        with open(key, "wb") as f:
            f.write(data)
        paras.append(
            f"Package: {name}\nVersion: 1.0\nArchitecture: amd64\n"
            f"Filename: {pool}\nSize: {len(data)}\nSHA256: {sha}\n"
            f"Description: bench package\n"
        )
    packages = "\n".join(paras).encode()
    gen = os.path.join(meta, "debian", f"dists%2F{suite}", "gen-1")
    os.makedirs(os.path.join(gen, "main", "binary-amd64"), exist_ok=True)
    packages = lzma.compress(packages)
    with open(os.path.join(gen, "main", "binary-amd64", "Packages.xz"), "wb") as f:
        f.write(packages)
    release = (
        f"Origin: bench\nSuite: {suite}\nCodename: {suite}\n"
        "Date: Sat, 05 Dec 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\n"
        "SHA256:\n"
        f" {hashlib.sha256(packages).hexdigest()} {len(packages)} main/binary-amd64/Packages.xz\n"
    )
    with open(os.path.join(gen, "Release"), "w") as f:
        f.write(release)
    os.symlink("gen-1", os.path.join(meta, "debian", f"dists%2F{suite}", "current"))
print(f"{suites} suites x {entries} entries, {suites * entries} cached files under {root}")
