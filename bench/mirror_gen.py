#!/usr/bin/env python3
"""Generates an unsigned APT repository for apt-mirror benchmarks.

    mirror_gen.py OUT --packages N [--size-kb K] [--changed C] [--suite S]

Pool files are pseudo-random and deterministic per (name, version), so a
second call with --changed C rewrites only the first C packages (version 2,
new content) and the indices; every other pool file stays byte-identical.
Writes dists/S/{Release, main/binary-amd64/Packages{,.gz,.xz}} and
pool/main/..., and prints the list of pool paths to OUT/pool-files.txt.
"""

import argparse
import gzip
import hashlib
import lzma
import os
import random
import time


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--packages", type=int, required=True)
    ap.add_argument("--size-kb", type=float, default=16)
    ap.add_argument("--changed", type=int, default=0)
    ap.add_argument("--suite", default="stable")
    a = ap.parse_args()

    paras = []
    pool = []
    for i in range(a.packages):
        name = f"bench{i:06d}"
        version = "2.0" if i < a.changed else "1.0"
        rnd = random.Random(f"{name}/{version}")
        # Sizes vary from half to one and a half times the mean.
        size = max(1, int(a.size_kb * 1024 * (0.5 + rnd.random())))
        rel = f"pool/main/b/{name}/{name}_{version}_amd64.deb"
        path = os.path.join(a.out, rel)
        if os.path.exists(path) and os.path.getsize(path) == size:
            with open(path, "rb") as f:
                data = f.read()
        else:
            data = rnd.randbytes(size)
            write(path, data)
        pool.append(rel)
        paras.append(
            f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n"
            f"Maintainer: Bench <bench@example.invalid>\nInstalled-Size: {size // 1024 + 1}\n"
            f"Depends: libc6 (>= 2.36)\nSection: misc\nPriority: optional\n"
            f"Filename: {rel}\nSize: {size}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
            f"Description: benchmark package {i}\n"
            f" A generated package used to measure apt-mirror.\n"
        )
    packages = "\n".join(paras).encode()
    dist = os.path.join(a.out, "dists", a.suite)
    files = {
        "main/binary-amd64/Packages": packages,
        "main/binary-amd64/Packages.gz": gzip.compress(packages, 6, mtime=0),
        "main/binary-amd64/Packages.xz": lzma.compress(packages, preset=6),
    }
    for rel, data in files.items():
        write(os.path.join(dist, rel), data)
    date = time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime())
    release = [
        "Origin: Bench", "Label: Bench", f"Suite: {a.suite}", f"Codename: {a.suite}",
        f"Date: {date}", "Architectures: amd64", "Components: main", "MD5Sum:",
    ]
    for rel, data in files.items():
        release.append(f" {hashlib.md5(data).hexdigest()} {len(data):>12} {rel}")
    release.append("SHA256:")
    for rel, data in files.items():
        release.append(f" {hashlib.sha256(data).hexdigest()} {len(data):>12} {rel}")
    write(os.path.join(dist, "Release"), ("\n".join(release) + "\n").encode())
    with open(os.path.join(a.out, "pool-files.txt"), "w") as f:
        f.write("\n".join(pool) + "\n")


if __name__ == "__main__":
    main()
