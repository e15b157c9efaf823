//! Round trips on generated repositories: a Release plus Packages in every
//! compression and their by-hash copies, written to a temporary directory
//! and read back; and decompression bombs that must fail cleanly.

use aptindex::checksum::{Checksums, HashKind, Hasher, HashingWriter};
use aptindex::compress::{self, Compression, CompressionError};
use aptindex::index::{entries_of, IndexError};
use aptindex::path::{by_hash_path, classify, PathKind};
use aptindex::release::{suite_dir, Release};
use std::fmt::Write as _;
use std::io::Write as _;

fn packages_text(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let deb = format!("pkg{i} contents");
        let c = Checksums::of_bytes(deb.as_bytes());
        writeln!(
            s,
            "Package: pkg{i}\nVersion: 1.{i}\nArchitecture: amd64\nFilename: pool/main/p/pkg{i}/pkg{i}_1.{i}_amd64.deb\n\
             Size: {}\nMD5sum: {}\nSHA1: {}\nSHA256: {}\nSHA512: {}\nDescription: package {i}\n long text\n .\n more\n",
            c.size,
            c.hex(HashKind::Md5).unwrap(),
            c.hex(HashKind::Sha1).unwrap(),
            c.hex(HashKind::Sha256).unwrap(),
            c.hex(HashKind::Sha512).unwrap(),
        )
        .unwrap();
    }
    s
}

fn release_for(files: &[(String, Vec<u8>)], suite: &str) -> String {
    let mut s = format!(
        "Origin: Test\nSuite: {suite}\nDate: Sat, 10 Jun 2023 08:50:41 UTC\nAcquire-By-Hash: yes\n"
    );
    for kind in HashKind::ALL {
        writeln!(s, "{}:", kind.by_hash_name()).unwrap();
        for (path, data) in files {
            let c = Checksums::of_bytes(data);
            writeln!(s, " {} {:>10} {path}", c.hex(kind).unwrap(), c.size).unwrap();
        }
    }
    s
}

fn round_trip(suite: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = suite_dir(suite);
    let root = tmp.path().join(&dir);
    let text = packages_text(50);
    let mut files = Vec::new();
    for c in Compression::ALL {
        let rel = format!("main/binary-amd64/Packages{}", c.extension());
        files.push((rel, compress::compress(c, text.as_bytes()).unwrap()));
    }
    for (rel, data) in &files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        let sha = Checksums::of_bytes(data).hex(HashKind::Sha256).unwrap();
        let by_hash = by_hash_path(rel, HashKind::Sha256, &sha);
        std::fs::create_dir_all(root.join(&by_hash).parent().unwrap()).unwrap();
        std::fs::write(root.join(&by_hash), data).unwrap();
    }
    std::fs::write(root.join("Release"), release_for(&files, suite)).unwrap();

    let release = Release::parse(&std::fs::read(root.join("Release")).unwrap()).unwrap();
    assert_eq!(release.entries.len(), Compression::ALL.len());
    assert!(release.acquire_by_hash);
    let expected_entries = aptindex::index::packages_entries(text.as_bytes()).unwrap();
    assert_eq!(expected_entries.len(), 50);
    for (rel, sums) in &release.entries {
        assert_eq!(classify(&aptindex::path::join(&dir, rel)), PathKind::Index);
        // Verify the file through a streaming hasher, then via its by-hash copy.
        let data = std::fs::read(root.join(rel)).unwrap();
        let mut w = HashingWriter::new(std::io::sink(), Hasher::for_expected(sums));
        w.write_all(&data).unwrap();
        sums.verify(rel, &w.finish().1).unwrap();
        let by_hash = by_hash_path(rel, HashKind::Sha256, &sums.hex(HashKind::Sha256).unwrap());
        match classify(&aptindex::path::join(&dir, &by_hash)) {
            PathKind::ByHash {
                dir: d,
                kind: HashKind::Sha256,
                hex,
            } => {
                assert_eq!(d, aptindex::path::join(&dir, "main/binary-amd64"));
                assert_eq!(Some(hex), sums.hex(HashKind::Sha256));
            }
            other => panic!("{by_hash}: {other:?}"),
        }
        let copy = std::fs::read(root.join(&by_hash)).unwrap();
        sums.verify(&by_hash, &Checksums::of_bytes(&copy)).unwrap();
        let entries = entries_of(rel, &data, 1 << 20).unwrap();
        assert_eq!(entries, expected_entries, "{rel}");
    }
}

#[test]
fn generated_repository_round_trip() {
    round_trip("stable");
}

#[test]
fn generated_flat_repository_round_trip() {
    round_trip("./");
    round_trip("sub/");
}

#[test]
fn corrupted_index_fails_verification() {
    let text = packages_text(3);
    let packed = compress::compress(Compression::Xz, text.as_bytes()).unwrap();
    let expected = Checksums::of_bytes(&packed);
    let mut bad = packed.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    let err = expected
        .verify("Packages.xz", &Checksums::of_bytes(&bad))
        .unwrap_err();
    assert!(err.to_string().contains("Packages.xz"));
    assert!(entries_of("main/binary-amd64/Packages.xz", &bad, 1 << 20).is_err());
}

#[test]
fn decompression_bomb_fails_cleanly() {
    // 1 GiB of zeros, gzip-compressed while streaming (about 10 MiB).
    let zeros = vec![0u8; 1 << 20];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..1024 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 16 << 20, "{}", bomb.len());
    let limit = 16 << 20;
    match compress::decompress(Compression::Gzip, &bomb, limit) {
        Err(CompressionError::TooLarge { limit: l }) => assert_eq!(l, limit),
        other => panic!("{:?}", other.map(|v| v.len())),
    }
    match entries_of("dists/x/main/binary-amd64/Packages.gz", &bomb, limit) {
        Err(IndexError::Compression(CompressionError::TooLarge { .. })) => {}
        other => panic!("{other:?}"),
    }
    // Smaller bombs in the other formats against a small limit.
    let small = vec![b'\n'; 4 << 20];
    for c in [
        Compression::Xz,
        Compression::Bzip2,
        Compression::Lzma,
        Compression::Zstd,
    ] {
        let packed = compress::compress(c, &small).unwrap();
        assert!(matches!(
            compress::decompress(c, &packed, 1 << 20),
            Err(CompressionError::TooLarge { limit: 1_048_576 })
        ));
        let path = format!("main/source/Sources{}", c.extension());
        assert!(matches!(
            entries_of(&path, &packed, 1 << 20),
            Err(IndexError::Compression(CompressionError::TooLarge { .. }))
        ));
    }
}
