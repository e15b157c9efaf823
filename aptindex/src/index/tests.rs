//! Unit tests of the index readers (Packages, Sources, i18n Index): kept
//! apart from `index.rs` so that file holds only the parsing code.

use super::*;

const SHA256_A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const MD5_A: &str = "900150983cd24fb0d6963f7d28e17f72";

fn packages_text() -> String {
    format!(
            "# comment\nPackage: a\nFilename: pool/a.deb\nsize: 3\nDescription: x\n line\n .\nSHA256: {SHA256_A}  \n\n \
             \nPackage: b\r\nFilename: pool/b.deb\r\nSize: 10\r\nMD5sum: {MD5_A}\r\n\r\n\n\nPackage: c\nFilename: pool/c.deb\nSize: 0\nSHA256: {SHA256_A}"
        )
}

#[test]
fn packages() {
    let text = packages_text();
    let e = packages_entries(text.as_bytes()).unwrap();
    assert_eq!(
        e.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["pool/a.deb", "pool/b.deb", "pool/c.deb"]
    );
    assert_eq!(e[0].checksums.size, 3);
    assert_eq!(e[0].checksums.hex(HashKind::Sha256).unwrap(), SHA256_A);
    assert_eq!(e[1].checksums.kinds(), vec![HashKind::Md5]);
    assert_eq!(e[1].checksums.size, 10);
}

#[test]
fn packages_streaming_agrees_at_every_chunk_size() {
    let text = packages_text();
    let whole = packages_entries(text.as_bytes()).unwrap();
    for chunk in 1..80 {
        for cap in [1, 3, 64] {
            let mut got = Vec::new();
            let reader = std::io::BufReader::with_capacity(cap, text.as_bytes());
            stream_packages(reader, chunk, &mut |e| got.push(e)).unwrap();
            assert_eq!(got, whole, "chunk {chunk} cap {cap}");
        }
    }
    let mut got = Vec::new();
    for_each_entry(IndexKind::Packages, "", text.as_bytes(), |e| got.push(e)).unwrap();
    assert_eq!(got, whole);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Streaming in chunks of any size gives what the whole buffer gives.
    #[test]
    fn chunking_never_changes_the_result(
        edits in proptest::collection::vec((0usize..400, proptest::sample::select(b"\n\r \t:#xF0".to_vec())), 0..4),
        chunk in 1usize..128,
    ) {
        let mut data = packages_text().into_bytes();
        for (i, b) in edits {
            let i = i % data.len();
            data[i] = b;
        }
        let whole = packages_entries(&data);
        let mut got = Vec::new();
        let streamed = stream_packages(std::io::BufReader::with_capacity(5, &data[..]), chunk, &mut |e| got.push(e));
        match whole {
            Ok(w) => { proptest::prop_assert!(streamed.is_ok()); proptest::prop_assert_eq!(w, got); }
            Err(e) => proptest::prop_assert_eq!(e.to_string(), streamed.unwrap_err().to_string()),
        }
    }
}

#[test]
fn packages_errors_have_lines() {
    let cases: Vec<(String, usize)> = vec![
        (format!("Package: a\nSize: 3\nSHA256: {SHA256_A}\n"), 1),
        (
            format!("Package: a\nFilename: ../x\nSize: 3\nSHA256: {SHA256_A}\n"),
            2,
        ),
        (format!("Filename: a\nSize: x3\nSHA256: {SHA256_A}\n"), 2),
        (
            format!(
                "Filename: a\nSize: 3\nSHA256: {SHA256_A}\n\nFilename: b\nSize: 3\nSHA256: zz\n"
            ),
            7,
        ),
        (
            format!("Filename: a\n more\nSize: 3\nSHA256: {SHA256_A}\n"),
            2,
        ),
        (" x\n".to_string(), 1),
        ("A: b\nnot a field\n".to_string(), 2),
    ];
    for (text, line) in cases {
        let got = match packages_entries(text.as_bytes()) {
            Err(IndexError::Invalid { line, .. }) => line,
            Err(IndexError::Deb822(Deb822Error::Syntax { line, .. })) => line,
            r => panic!("{text:?}: {r:?}"),
        };
        assert_eq!(got, line, "{text:?}");
        for chunk in [1, 7] {
            let r = stream_packages(text.as_bytes(), chunk, &mut |_| {});
            assert!(r.is_err(), "{text:?}");
        }
    }
}

#[test]
fn sources() {
    let text = format!(
        "Package: s\nDirectory: pool/main/s\nFiles:\n {MD5_A} 3 s.dsc\n {MD5_A} 3 s.tar.gz\n\
             Checksums-Sha256:\n {SHA256_A} 3 s.dsc\nPackage-List:\n s deb x y\n"
    );
    let e = sources_entries(text.as_bytes()).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].path, "pool/main/s/s.dsc");
    assert_eq!(
        e[0].checksums.kinds(),
        vec![HashKind::Md5, HashKind::Sha256]
    );
    assert_eq!(e[1].path, "pool/main/s/s.tar.gz");
    let mut streamed = Vec::new();
    for_each_entry(IndexKind::Sources, "", text.as_bytes(), |e| {
        streamed.push(e)
    })
    .unwrap();
    assert_eq!(streamed, e);
    assert!(sources_entries(b"Package: s\nFiles:\n a 1 b\n").is_err());
    let conflict =
        format!("Directory: d\nFiles:\n {MD5_A} 3 s.dsc\nChecksums-Sha256:\n {SHA256_A} 4 s.dsc\n");
    assert!(matches!(
        sources_entries(conflict.as_bytes()),
        Err(IndexError::Invalid { line: 5, .. })
    ));
}

#[test]
fn i18n_index() {
    let text = format!("SHA1:\n a9993e364706816aba3e25717850c26c9cd0d89d 3 Translation-en.bz2\nSHA256:\n {SHA256_A} 3 Translation-en.bz2\n");
    let e = i18n_index_entries("dists/x/main/i18n", text.as_bytes()).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, "dists/x/main/i18n/Translation-en.bz2");
    assert_eq!(
        e[0].checksums.kinds(),
        vec![HashKind::Sha1, HashKind::Sha256]
    );
    let via = entries_of("dists/x/main/i18n/Index", text.as_bytes(), 1 << 20).unwrap();
    assert_eq!(via, e);
}

#[test]
fn kinds_by_path() {
    assert_eq!(
        IndexKind::from_path("dists/x/main/binary-amd64/Packages.gz"),
        Some(IndexKind::Packages)
    );
    assert_eq!(
        IndexKind::from_path("main/debian-installer/binary-amd64/Packages"),
        Some(IndexKind::Packages)
    );
    assert_eq!(
        IndexKind::from_path("main/source/Sources.xz"),
        Some(IndexKind::Sources)
    );
    assert_eq!(
        IndexKind::from_path("main/i18n/Index"),
        Some(IndexKind::I18nIndex)
    );
    assert_eq!(
        IndexKind::from_path("main/binary-amd64/Packages.diff/Index"),
        None
    );
    assert_eq!(IndexKind::from_path("main/i18n/Translation-en"), None);
    assert!(entries_of("main/Contents-amd64.gz", b"garbage", 10)
        .unwrap()
        .is_empty());
}

#[test]
fn entries_of_every_compression_and_limit() {
    let text = packages_text();
    let whole = packages_entries(text.as_bytes()).unwrap();
    for c in Compression::ALL {
        let packed = crate::compress::compress(c, text.as_bytes()).unwrap();
        let path = format!("main/binary-amd64/Packages{}", c.extension());
        assert_eq!(entries_of(&path, &packed, 1 << 20).unwrap(), whole, "{c:?}");
        let err = entries_of(&path, &packed, 20).unwrap_err();
        assert!(
            matches!(
                err,
                IndexError::Compression(CompressionError::TooLarge { limit: 20 })
            ),
            "{c:?}: {err}"
        );
    }
    let err = entries_of("main/binary-amd64/Packages.gz", b"not gzip", 1 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Compression(CompressionError::Io {
                format: Compression::Gzip,
                ..
            })
        ),
        "{err}"
    );
}
