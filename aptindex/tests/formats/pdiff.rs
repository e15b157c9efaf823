//! The `*.diff/Index` parser: Debian's merged layout (with dak's
//! `X-Unmerged-*` bookkeeping), the plain chained layout, the series apt
//! would pick, and every kind of bad line failing with its line number.

use aptindex::checksum::{Checksums, HashKind};
use aptindex::pdiff::{self, BadName, DiffIndex, DiffIndexError, Precedence};
use proptest::prelude::*;

/// A made-up digest of `kind` for `seed` (not a real file's).
fn hex(kind: HashKind, seed: &str) -> String {
    let sums = Checksums::of_bytes(seed.as_bytes());
    sums.hex(kind).unwrap()
}

/// Debian's merged layout: three patches `T-<new>-F-<old>`, each leading to
/// Current, and dak's unmerged record of the last single step.
fn merged_sample() -> String {
    let to = "2026-12-06-0800.00";
    let from = [
        "2026-12-05-0800.00",
        "2026-12-05-1400.00",
        "2026-12-06-0200.00",
    ];
    let mut s = String::new();
    s += &format!("SHA1-Current: {} 13499\n", hex(HashKind::Sha1, "cur"));
    s += &format!("SHA256-Current: {} 13499\n", hex(HashKind::Sha256, "cur"));
    for (kind, name) in [(HashKind::Sha1, "SHA1"), (HashKind::Sha256, "SHA256")] {
        s += &format!("{name}-History:\n");
        for (i, f) in from.iter().enumerate() {
            s += &format!(
                " {} {} T-{to}-F-{f}\n",
                hex(kind, &format!("h{f}")),
                13000 + i
            );
        }
        s += &format!("{name}-Patches:\n");
        for (i, f) in from.iter().enumerate() {
            s += &format!(
                " {} {:>7} T-{to}-F-{f}\n",
                hex(kind, &format!("p{f}")),
                600 - i
            );
        }
        s += &format!("{name}-Download:\n");
        for (i, f) in from.iter().enumerate() {
            s += &format!(
                " {} {:>7} T-{to}-F-{f}.gz\n",
                hex(kind, &format!("d{f}")),
                300 - i
            );
        }
    }
    for (kind, name) in [(HashKind::Sha1, "SHA1"), (HashKind::Sha256, "SHA256")] {
        s += &format!(
            "X-Unmerged-{name}-History:\n {} 13002 2026-12-06-0200.00\n",
            hex(kind, "uh")
        );
        s += &format!(
            "X-Unmerged-{name}-Patches:\n {} 598 2026-12-06-0200.00\n",
            hex(kind, "up")
        );
        s += &format!(
            "X-Unmerged-{name}-Download:\n {} 298 2026-12-06-0200.00.gz\n",
            hex(kind, "ud")
        );
    }
    s += "X-Patch-Precedence: merged\n";
    s += "X-DAK-Older-Patches: 2026-12-05-0800.00 2026-12-05-1400.00 2026-12-06-0200.00\n";
    s
}

#[test]
fn parses_debians_merged_layout() {
    let index = DiffIndex::parse(merged_sample().as_bytes()).unwrap();
    assert_eq!(index.precedence, Precedence::Merged);
    assert_eq!(index.current.size, 13499);
    assert!(index.current.sha1.is_some() && index.current.sha256.is_some());
    let names: Vec<_> = index.patches.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "T-2026-12-06-0800.00-F-2026-12-05-0800.00",
            "T-2026-12-06-0800.00-F-2026-12-05-1400.00",
            "T-2026-12-06-0800.00-F-2026-12-06-0200.00",
        ]
    );
    for (i, p) in index.patches.iter().enumerate() {
        assert!(p.is_complete(), "{p:?}");
        assert_eq!(p.history.as_ref().unwrap().size, 13000 + i as u64);
        assert_eq!(p.patch.as_ref().unwrap().size, 600 - i as u64);
        let d = p.download.as_ref().unwrap();
        assert_eq!(d.size, 300 - i as u64);
        assert_eq!(d.kinds(), [HashKind::Sha1, HashKind::Sha256]);
    }
    let downloads: Vec<_> = index.downloads().map(|(n, s)| (n, s.size)).collect();
    assert_eq!(
        downloads[0],
        (
            "T-2026-12-06-0800.00-F-2026-12-05-0800.00.gz".to_string(),
            300
        )
    );
    assert_eq!(downloads.len(), 3);
    assert_eq!(index.unmerged.len(), 1);
    assert_eq!(index.unmerged[0].name, "2026-12-06-0200.00");
    assert_eq!(index.unmerged[0].download_name(), "2026-12-06-0200.00.gz");
    assert!(index.unmerged[0].is_complete());
}

#[test]
fn chained_layout_and_the_series_apt_would_use() {
    let old = Checksums::of_bytes(b"generation 1\n");
    let mid = Checksums::of_bytes(b"generation 2\n");
    let cur = Checksums::of_bytes(b"generation 3\n");
    let line = |s: &Checksums, name: &str| {
        format!(" {} {} {name}\n", s.hex(HashKind::Sha256).unwrap(), s.size)
    };
    let text = format!(
        "SHA256-Current: {} {}\nSHA256-History:\n{}{}SHA256-Patches:\n{}{}SHA256-Download:\n{}{}",
        cur.hex(HashKind::Sha256).unwrap(),
        cur.size,
        line(&old, "p1"),
        line(&mid, "p2"),
        line(&Checksums::of_bytes(b"1c"), "p1"),
        line(&Checksums::of_bytes(b"2c"), "p2"),
        line(&Checksums::of_bytes(b"1z"), "p1.gz"),
        line(&Checksums::of_bytes(b"2z"), "p2.gz"),
    );
    let index = DiffIndex::parse(text.as_bytes()).unwrap();
    assert_eq!(index.precedence, Precedence::Chained);
    let names = |s: &[pdiff::Patch]| s.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(index.series_from(&old).unwrap()), ["p1", "p2"]);
    assert_eq!(names(index.series_from(&mid).unwrap()), ["p2"]);
    assert_eq!(index.series_from(&cur).unwrap().len(), 0);
    assert!(index.series_from(&Checksums::of_bytes(b"other")).is_none());
    // A local state known only by size matches nothing.
    let size_only = Checksums {
        size: old.size,
        ..Checksums::default()
    };
    assert!(index.series_from(&size_only).is_none());
}

#[test]
fn md5_sha512_fields_and_odd_case_are_read_unknown_hashes_ignored() {
    let s = Checksums::of_bytes(b"x");
    let text = format!(
        "md5sum-current: {} 1\nSHA512-Current: {} 1\nSHA3-Current: zz 1\nSHA512-History:\n {} 5 a\nSHA3-History:\n nonsense\n",
        s.hex(HashKind::Md5).unwrap(),
        s.hex(HashKind::Sha512).unwrap(),
        s.hex(HashKind::Sha512).unwrap(),
    );
    let index = DiffIndex::parse(text.as_bytes()).unwrap();
    assert!(index.current.md5.is_some() && index.current.sha512.is_some());
    assert_eq!(index.patches.len(), 1);
    assert!(!index.patches[0].is_complete());
}

#[test]
fn downloads_that_are_not_gz_are_skipped() {
    let s = hex(HashKind::Sha256, "a");
    let text = format!("SHA256-Current: {s} 1\nSHA256-Download:\n {s} 3 p1.xz\n {s} 3 p2.gz\n");
    let index = DiffIndex::parse(text.as_bytes()).unwrap();
    let names: Vec<_> = index.downloads().map(|(n, _)| n).collect();
    assert_eq!(names, ["p2.gz"]);
}

fn error_of(text: &str) -> DiffIndexError {
    DiffIndex::parse(text.as_bytes()).expect_err(text)
}

#[test]
fn bad_lines_fail_with_their_line_number() {
    let h = hex(HashKind::Sha256, "a");
    let h1 = hex(HashKind::Sha1, "a");
    let cur = format!("SHA256-Current: {h} 10\n");
    let cases: Vec<(String, usize)> = vec![
        (format!("SHA256-Current: {h}\n"), 1),
        (format!("SHA256-Current: {h} ten\n"), 1),
        ("SHA256-Current: abc 10\n".to_string(), 1),
        (format!("{cur}SHA256-History:\n {h} 1 a\n {h} 1\n"), 4),
        (format!("{cur}SHA256-History:\n {h} 1 a b\n"), 3),
        (format!("{cur}SHA256-Patches:\n {h} -1 a\n"), 3),
        (format!("{cur}SHA256-Download:\n {h} 1 ../evil.gz\n"), 3),
        (format!("{cur}SHA256-History:\n {h} 1 ..\n"), 3),
        (format!("{cur}SHA256-History:\n {h} 1 a/b\n"), 3),
        (format!("{cur}SHA256-Download:\n {h} 1 .gz\n"), 3),
        (format!("{cur}SHA256-Download:\n {h} 1 a\\b.gz\n"), 3),
        (format!("{cur}SHA1-Current: {h1} 11\n"), 2),
        (
            format!("{cur}SHA256-History:\n {h} 1 a\nSHA1-History:\n {h1} 2 a\n"),
            5,
        ),
        (
            format!(
                "{cur}SHA256-History:\n {h} 1 a\n {} 1 a\n",
                hex(HashKind::Sha256, "b")
            ),
            4,
        ),
        (format!("{cur}Bad line\n"), 2),
    ];
    for (text, line) in cases {
        let err = error_of(&text);
        let got = match &err {
            DiffIndexError::Malformed { line, .. }
            | DiffIndexError::BadSize { line, .. }
            | DiffIndexError::BadHash { line, .. }
            | DiffIndexError::BadName { line, .. }
            | DiffIndexError::Conflict { line, .. } => *line,
            DiffIndexError::Syntax(aptindex::deb822::Deb822Error::Syntax { line, .. }) => *line,
            e => panic!("{text:?}: unexpected {e}"),
        };
        assert_eq!(got, line, "{text:?}: {err}");
        assert!(err.to_string().contains(&format!("line {line}")), "{err}");
    }
}

#[test]
fn empty_missing_current_and_oversized_inputs_fail() {
    assert!(matches!(error_of(""), DiffIndexError::Empty));
    assert!(matches!(
        error_of("\n# only a comment\n"),
        DiffIndexError::Empty
    ));
    let h = hex(HashKind::Sha256, "a");
    assert!(matches!(
        error_of(&format!("SHA256-History:\n {h} 1 a\n")),
        DiffIndexError::NoCurrent
    ));
    assert!(matches!(
        error_of(&format!("X-Unmerged-SHA256-Current: {h} 1\n")),
        DiffIndexError::NoCurrent
    ));
    let big = vec![b'#'; pdiff::MAX_DIFF_INDEX_SIZE + 1];
    assert!(matches!(
        DiffIndex::parse(&big),
        Err(DiffIndexError::TooLarge { .. })
    ));
    let mut many = format!("SHA256-Current: {h} 1\nSHA256-History:\n");
    for i in 0..=pdiff::MAX_PATCHES {
        many += &format!(" {h} 1 p{i}\n");
    }
    assert!(matches!(
        error_of(&many),
        DiffIndexError::TooManyPatches { .. }
    ));
}

#[test]
fn patch_names_and_paths() {
    assert_eq!(
        pdiff::check_patch_name("T-2026-12-06-0800.00-F-2026-12-05-0800.00"),
        Ok(())
    );
    assert_eq!(pdiff::check_patch_name(""), Err(BadName::Empty));
    assert_eq!(pdiff::check_patch_name(".."), Err(BadName::Dots));
    assert_eq!(pdiff::check_patch_name("a/b"), Err(BadName::Separator));
    assert_eq!(pdiff::check_patch_name("a\0b"), Err(BadName::Separator));
    assert_eq!(
        pdiff::check_patch_name(&"a".repeat(256)),
        Err(BadName::TooLong)
    );
    assert_eq!(
        pdiff::diff_index_path("main/binary-amd64/Packages.xz"),
        "main/binary-amd64/Packages.diff/Index"
    );
    assert_eq!(
        pdiff::diff_index_path("main/i18n/Translation-en"),
        "main/i18n/Translation-en.diff/Index"
    );
    assert_eq!(
        pdiff::diff_dir("main/binary-amd64/Packages.diff/Index"),
        "main/binary-amd64/Packages.diff"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Mutated samples and random bytes never panic; whatever parses keeps
    /// only safe names and bounded series.
    #[test]
    fn never_panics(
        cut in any::<usize>(),
        at in any::<usize>(),
        insert in prop::collection::vec(prop::sample::select(b" \n\t:/.-a0#\xff".to_vec()), 0..6),
        random in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut data = merged_sample().into_bytes();
        let at = at % (data.len() + 1);
        data.splice(at..at, insert);
        data.truncate(cut % (data.len() + 1) + data.len() / 2);
        for input in [&data[..], &random[..]] {
            if let Ok(index) = DiffIndex::parse(input) {
                for p in index.patches.iter().chain(&index.unmerged) {
                    prop_assert!(pdiff::check_patch_name(&p.name).is_ok());
                    prop_assert!(pdiff::check_patch_name(&p.download_name()).is_ok());
                }
                prop_assert!(index.patches.len() <= pdiff::MAX_PATCHES);
                let _ = index.series_from(&index.current);
            }
        }
    }
}
