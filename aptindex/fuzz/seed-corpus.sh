#!/usr/bin/env bash
# Fills corpus/<target>/ with small seed inputs cut from ../../testdata, so the
# fuzzers start from real-world shapes. Safe to re-run. See bench/README-fuzz.md.
set -euo pipefail
cd "$(dirname "$0")"
T=../../testdata
mkdir -p corpus/{deb822,release,packages,sources,signature}

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
echo "seeded: $(for d in corpus/*; do printf '%s=%s ' "${d#corpus/}" "$(ls "$d" | wc -l)"; done)"
