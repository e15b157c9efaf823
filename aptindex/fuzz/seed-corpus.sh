#!/usr/bin/env bash
# Fills corpus/<target>/ with small seed inputs cut from ../../testdata, so the
# fuzzers start from real-world shapes. Safe to re-run. See bench/README-fuzz.md.
set -euo pipefail
cd "$(dirname "$0")"
T=../../testdata
mkdir -p corpus/{deb822,release,packages,sources,signature,pdiff,compress,request_path,config}

# Split a deb822 file into chunks of N paragraphs (keeps inputs small).
chunks() { # file prefix paragraphs-per-chunk max-chunks outdir
    awk -v RS= -v ORS='\n\n' -v n="$3" -v max="$4" -v out="$5" -v p="$2" '
        { f = sprintf("%s/%s-%03d", out, p, int((NR-1)/n)); if (int((NR-1)/n) < max) print > f }' "$1"
}
chunks "$T/debian/bookworm-updates_main_binary-amd64_Packages" bookworm 3 8 corpus/packages
chunks "$T/aptutil-af/Packages" af 3 8 corpus/packages
{ zcat "$T/aptutil-af/Sources.gz" || true; } | head -c 200000 > /tmp/aptindex-fuzz-sources.$$
chunks /tmp/aptindex-fuzz-sources.$$ af 2 10 corpus/sources
rm -f /tmp/aptindex-fuzz-sources.$$
cp corpus/packages/bookworm-000 corpus/deb822/packages
cp corpus/sources/af-000 corpus/deb822/sources
cp "$T/aptutil-af/Index" corpus/deb822/index
printf 'Field: value\n continued\n .\n\n# comment\nOther:x\r\n\r\n' > corpus/deb822/small

cp "$T/aptutil-af/Release" corpus/release/artifactory-Release
cp "$T/debian/bookworm-updates_InRelease" corpus/release/debian-InRelease
# The xenial InRelease is 240 kB; its first 40 kB of entries plus the
# signature keep the shape at a size libFuzzer mutates quickly.
{ head -c 40000 "$T/aptutil-af/InRelease" | sed '$d'; sed -n '/-----BEGIN PGP SIGNATURE-----/,$p' "$T/aptutil-af/InRelease"; } \
    > corpus/release/xenial-InRelease-cut

cp "$T/debian/bookworm-updates_InRelease" corpus/signature/debian-InRelease
sed -n '/-----BEGIN PGP SIGNATURE-----/,$p' "$T/debian/bookworm-updates_InRelease" > corpus/signature/debian-Release.gpg
sed -n '/-----BEGIN PGP SIGNATURE-----/,$p' "$T/aptutil-af/InRelease" > corpus/signature/xenial-Release.gpg
cp "$T/debian/debian-archive-keyring.gpg" corpus/signature/debian-keyring.gpg
# PDiff Index: the real one, and a small merged series with an unmerged one.
cp "$T/aptutil-af/Index" corpus/pdiff/index
printf 'SHA256-Current: %064d 10\nSHA256-History:\n %064d 8 p1\nSHA256-Patches:\n %064d 3 p1\nSHA256-Download:\n %064d 5 p1\nX-Unmerged-SHA256-History:\n %064d 8 u1\nX-Patch-Precedence: merged\n' 1 2 3 4 5 > corpus/pdiff/small

# compress: first byte picks the format (index into Compression::ALL: 1 gz, 2 xz).
{ printf '\001'; head -c 4096 "$T/aptutil-af/Sources.gz"; } > corpus/compress/gz-cut
{ printf '\002'; cat "$T/aptutil-af/Packages.xz"; } > corpus/compress/xz
printf '\005(\265/\375\000X\031\000\000hello' > corpus/compress/zst-head
printf '\000plain' > corpus/compress/plain

# request_path: the request targets apt and proxies send.
printf '/debian/dists/stable/InRelease' > corpus/request_path/prefix
printf '/debian/pool/main/h/hello/hello_1.0_amd64.deb' > corpus/request_path/pool
printf 'http://deb.example.org/debian/dists/stable/main/binary-amd64/by-hash/SHA256/00ff' > corpus/request_path/proxy
printf 'http://HTTPS///security.example.org/debian-security/dists/x/Release' > corpus/request_path/https
printf 'http://127.0.0.1:3142/ubuntu/pool/a%%2Fb.deb' > corpus/request_path/self
printf 'git.example.org:443' > corpus/request_path/connect

# config: the packaged defaults of both programs.
cp ../../apt-cacher/debian/apt-cacher.toml corpus/config/apt-cacher
cp ../../apt-mirror/debian/mirror.toml corpus/config/mirror
echo "seeded: $(for d in corpus/*; do printf '%s=%s ' "${d#corpus/}" "$(ls "$d" | wc -l)"; done)"
