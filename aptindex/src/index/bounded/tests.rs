//! The bounded reader against hostile indices: bad entries skipped and
//! counted, the entry and path-bytes caps, the decompressed cap while
//! streaming, and the strict readers left as they were.

use super::*;
use crate::compress::compress;

const SHA: &str = "SHA256: 0000000000000000000000000000000000000000000000000000000000000000";

fn par(filename: &str, size: &str) -> String {
    format!("Package: p\nFilename: {filename}\nSize: {size}\n{SHA}\n\n")
}

fn bounds(max_entries: u64) -> Bounds {
    Bounds {
        decompressed: 1 << 30,
        max_entries,
    }
}

#[test]
fn bad_entries_are_skipped_and_counted() {
    let text = [
        par("pool/main/a/a_1_amd64.deb", "1"),
        par("../../etc/passwd", "2"),
        par("/abs/b.deb", "3"),
        par("pool/main/n/nul\0.deb", "4"),
        par("pool/main/s/s_1_amd64.deb", "99999999999999999999999"),
        "Package: nodigest\nFilename: pool/main/d/d.deb\nSize: 5\n\n".to_string(),
        par("pool/main/z/z_1_amd64.deb", "6"),
    ]
    .concat();
    let mut got = Vec::new();
    let skipped = read_bounded(
        "dists/x/main/binary-amd64/Packages",
        text.as_bytes(),
        bounds(100),
        |e| got.push(e.path),
    )
    .unwrap();
    assert_eq!(
        got,
        ["pool/main/a/a_1_amd64.deb", "pool/main/z/z_1_amd64.deb"]
    );
    assert_eq!(skipped.count, 5);
    let first = skipped.first.clone().unwrap();
    assert_eq!(first.line, 7, "{skipped}");
    assert!(first.reason.contains("unsafe Filename"), "{skipped}");
    assert!(skipped.to_string().contains("5 bad entries skipped"));
}

#[test]
fn bad_sources_paragraph_is_skipped() {
    let text = "Package: s\nDirectory: ../up\nFiles:\n 0123456789abcdef0123456789abcdef 1 s.dsc\n\n\
                Package: t\nDirectory: pool/main/t\nFiles:\n 0123456789abcdef0123456789abcdef 2 t.dsc\n\n";
    let mut got = Vec::new();
    let skipped = read_bounded(
        "dists/x/main/source/Sources",
        text.as_bytes(),
        bounds(100),
        |e| got.push(e.path),
    )
    .unwrap();
    assert_eq!(got, ["pool/main/t/t.dsc"]);
    assert_eq!(skipped.count, 1);
    assert_eq!(skipped.first.unwrap().line, 1);
}

#[test]
fn entry_cap_is_a_typed_error() {
    let text: String = (0..50)
        .map(|i| par(&format!("pool/main/p/p{i}.deb"), "1"))
        .collect();
    for c in [Compression::None, Compression::Xz, Compression::Gzip] {
        let path = format!("dists/x/main/binary-amd64/Packages{}", c.extension());
        let packed = compress(c, text.as_bytes()).unwrap();
        let mut n = 0;
        let err = read_bounded(&path, &packed[..], bounds(10), |_| n += 1).unwrap_err();
        assert!(
            matches!(err, IndexError::TooManyEntries { limit: 10 }),
            "{c:?}: {err}"
        );
        assert!(err.to_string().contains("max_index_entries"));
        assert_eq!(n, 10, "{c:?}: no more than the cap handed over");
        let mut n = 0;
        read_bounded(&path, &packed[..], bounds(50), |_| n += 1).unwrap();
        assert_eq!(n, 50);
    }
}

#[test]
fn decompressed_cap_holds_while_streaming() {
    let text: String = (0..200).map(|_| par("pool/a.deb", "1")).collect();
    let packed = compress(Compression::Xz, text.as_bytes()).unwrap();
    let b = Bounds {
        decompressed: 1000,
        max_entries: 1 << 20,
    };
    let mut n = 0;
    let err = read_bounded("Packages.xz", &packed[..], b, |_| n += 1).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Compression(crate::compress::CompressionError::TooLarge { limit: 1000 })
        ),
        "{err}"
    );
    assert!(
        n < 20,
        "stopped near the cap, not after the whole index: {n}"
    );
}

/// A reader producing an endless index without holding it: the scan must
/// stop at the cap having read only a bounded prefix.
struct Endless {
    n: u64,
    pending: Vec<u8>,
    read: u64,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            self.n += 1;
            self.pending = par(&format!("pool/p{}.deb", self.n), "1").into_bytes();
        }
        let k = buf.len().min(self.pending.len());
        buf[..k].copy_from_slice(&self.pending[..k]);
        self.pending.drain(..k);
        self.read += k as u64;
        Ok(k)
    }
}

#[test]
fn streams_without_reading_everything() {
    let mut src = Endless {
        n: 0,
        pending: Vec::new(),
        read: 0,
    };
    let reader = std::io::BufReader::new(&mut src);
    let err = scan_bounded(
        IndexKind::Packages,
        "",
        reader,
        1000,
        UnsafePaths::Skip,
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, IndexError::TooManyEntries { limit: 1000 }));
    // 1000 paragraphs of ~120 bytes plus the scanner's 1 MiB buffer.
    assert!(src.read < 3 << 20, "read {} bytes", src.read);
}

#[test]
fn strict_readers_still_fail_on_a_bad_entry() {
    let text = [par("pool/a.deb", "1"), par("../b.deb", "1")].concat();
    assert!(crate::index::packages_entries(text.as_bytes()).is_err());
    let r = crate::index::for_each_entry(IndexKind::Packages, "", text.as_bytes(), |_| {});
    assert!(r.is_err());
}

#[test]
fn unsafe_paths_can_fail_the_index() {
    let text = [par("pool/a.deb", "1"), par("../b.deb", "1")].concat();
    let err = scan_bounded(
        IndexKind::Packages,
        "",
        text.as_bytes(),
        10,
        UnsafePaths::Fail,
        |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Invalid {
                kind: InvalidKind::UnsafePath,
                line: 7,
                ..
            }
        ),
        "{err}"
    );
    // Other bad entries are still skipped.
    let text = [par("pool/a.deb", "1"), par("pool/b.deb", "1x")].concat();
    let s = scan_bounded(
        IndexKind::Packages,
        "",
        text.as_bytes(),
        10,
        UnsafePaths::Fail,
        |_| {},
    )
    .unwrap();
    assert_eq!(s.count, 1);
}

#[test]
fn long_paths_are_skipped_and_path_bytes_are_capped() {
    let long = format!("pool/main/l/{}.deb", "x".repeat(MAX_PATH_LEN));
    let text = [par(&long, "1"), par("pool/main/a/a_1_amd64.deb", "2")].concat();
    let mut got = Vec::new();
    let skipped = read_bounded(
        "dists/x/main/binary-amd64/Packages",
        text.as_bytes(),
        bounds(100),
        |e| got.push(e.path),
    )
    .unwrap();
    assert_eq!(got, ["pool/main/a/a_1_amd64.deb"]);
    assert_eq!(skipped.count, 1);
    assert!(
        skipped.to_string().contains("bytes (most 1024)"),
        "{skipped}"
    );

    // Unique paths just under the length cap: the path-bytes cap ends the
    // index long before the entry cap would (streamed: never all in memory).
    struct Unique(u64, Vec<u8>);
    impl std::io::Read for Unique {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                self.0 += 1;
                let name = format!("pool/main/u/{:0>1000}.deb", self.0);
                self.1 = par(&name, "1").into_bytes();
                self.1.reverse();
            }
            let mut n = 0;
            while n < buf.len() {
                match self.1.pop() {
                    Some(b) => buf[n] = b,
                    None => break,
                }
                n += 1;
            }
            Ok(n)
        }
    }
    let mut count = 0u64;
    let err = read_bounded(
        "dists/x/main/binary-amd64/Packages",
        std::io::BufReader::new(Unique(0, Vec::new())),
        bounds(1000),
        |_| count += 1,
    )
    .unwrap_err();
    assert!(
        matches!(err, IndexError::TooManyPathBytes { limit } if limit == 256_000),
        "{err}"
    );
    assert!(count <= 256, "{count}");
    assert_eq!(path_bytes_cap(u64::MAX), MAX_PATH_BYTES);
}
