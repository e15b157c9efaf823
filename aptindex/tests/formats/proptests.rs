//! Property tests: random and mutated bytes into every parser must never
//! panic, and the two deb822 APIs (buffer and streaming) must agree.

use aptindex::compress::{self, Compression};
use aptindex::deb822::{paragraphs, ParagraphReader};
use aptindex::index::{self, entries_of, IndexKind};
use aptindex::path;
use aptindex::release::{self, Release};
use proptest::prelude::*;
use std::sync::OnceLock;

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Small real-world seeds that mutations start from.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let sources = compress::decompress(
            Compression::Gzip,
            &fixture("aptutil-af/Sources.gz"),
            1 << 30,
        )
        .unwrap();
        vec![
            fixture("debian/bookworm-updates_InRelease"),
            fixture("aptutil-af/Release"),
            fixture("aptutil-af/Index"),
            fixture("aptutil-af/Packages"),
            fixture("debian/bookworm-updates_main_binary-amd64_Packages")[..6000].to_vec(),
            sources[..8000].to_vec(),
            b"Package: a\r\nFilename: p/a.deb\r\nSize: 1\r\n\r\n# c\n \t\nA: b\n c\n .\n".to_vec(),
        ]
    })
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop::sample::select(vec![
        b'\n', b'\r', b' ', b'\t', b':', b'#', b'-', b'.', b'/', 0xff, 0xc3, b'0',
    ]);
    prop_oneof![
        (
            any::<usize>(),
            prop_oneof![any::<u8>(), interesting.clone()]
        )
            .prop_map(|(i, b)| Edit::Flip(i, b)),
        (
            any::<usize>(),
            prop::collection::vec(prop_oneof![any::<u8>(), interesting], 1..8)
        )
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = data.len();
        match e {
            Edit::Flip(i, b) if len > 0 => data[i % len] = *b,
            Edit::Insert(i, v) => {
                let at = i % (len + 1);
                data.splice(at..at, v.iter().copied());
            }
            Edit::Delete(i, n) if len > 0 => {
                let at = i % len;
                data.drain(at..(at + n).min(len));
            }
            Edit::Truncate(i) => data.truncate(i % (len + 1)),
            _ => {}
        }
    }
    data
}

/// Random bytes or a mutated seed.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec(
            prop::sample::select(b"ab:# \t\r\n.-/0123456789fF".to_vec()),
            0..512
        ),
        (0..seeds().len(), prop::collection::vec(edit(), 0..6))
            .prop_map(|(s, edits)| apply(seeds()[s].clone(), &edits)),
    ]
}

/// A paragraph's fields as (name, raw value, line).
type Fields = Vec<(String, String, usize)>;

/// Everything the streaming reader yields: the parsed paragraphs, or the first error's line.
fn via_reader(data: &[u8]) -> Result<Vec<Fields>, String> {
    let mut r = ParagraphReader::new(data);
    let mut out = Vec::new();
    loop {
        match r.next_paragraph() {
            Ok(Some(p)) => {
                let par = p.parse().map_err(|e| e.to_string())?;
                out.push(
                    par.fields
                        .iter()
                        .map(|f| (f.name.to_string(), f.raw.to_string(), f.line))
                        .collect(),
                );
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn via_buffer(data: &[u8]) -> Result<Vec<Fields>, String> {
    paragraphs(data)
        .map(|p| {
            p.map(|par| {
                par.fields
                    .iter()
                    .map(|f| (f.name.to_string(), f.raw.to_string(), f.line))
                    .collect()
            })
            .map_err(|e| e.to_string())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deb822_both_apis_agree(data in input()) {
        // Same paragraphs; on bad input both fail (possibly reporting a different first problem).
        match (via_buffer(&data), via_reader(&data)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "buffer {:?} vs reader {:?}", a, b),
        }
        let small = ParagraphReader::with_limit(&data[..], 16).count();
        prop_assert!(small <= data.len() + 1);
    }

    #[test]
    fn field_lines_never_panic(data in input()) {
        for par in paragraphs(&data).flatten() {
            for f in &par.fields {
                let n = f.lines().count();
                prop_assert!(n >= 1);
            }
        }
    }

    #[test]
    fn release_parsers_never_panic(data in input()) {
        let _ = Release::parse(&data);
        let _ = Release::parse_any(&data);
        if let Ok(cs) = release::split_clearsigned(&data) {
            prop_assert!(cs.signature.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
            prop_assert!(cs.text.len() <= data.len());
        }
        let _ = release::is_clearsigned(&data);
    }

    #[test]
    fn index_parsers_never_panic(data in input()) {
        let fast = index::packages_entries(&data);
        let mut streamed = Vec::new();
        let s = index::for_each_entry(IndexKind::Packages, "", &data[..], |e| streamed.push(e));
        prop_assert_eq!(fast.is_ok(), s.is_ok());
        if let Ok(fast) = &fast {
            prop_assert_eq!(fast, &streamed);
            for e in fast {
                prop_assert!(path::is_safe_relative(&e.path));
            }
        }
        let _ = index::sources_entries(&data);
        let _ = index::i18n_index_entries("dists/x/main/i18n", &data);
        let _ = index::for_each_entry(IndexKind::Sources, "", &data[..], |_| {});
        let _ = index::for_each_entry(IndexKind::I18nIndex, "d", &data[..], |_| {});
    }

    #[test]
    fn pdiff_index_parser_never_panics(data in input()) {
        if let Ok(index) = aptindex::pdiff::DiffIndex::parse(&data) {
            for p in &index.patches {
                prop_assert!(aptindex::pdiff::check_patch_name(&p.name).is_ok());
            }
        }
    }

    #[test]
    fn packages_fast_scanner_agrees_with_deb822(data in input()) {
        // On input the generic parser accepts, the fast scanner finds the same Filename values.
        if let (Ok(fast), Ok(pars)) = (index::packages_entries(&data), paragraphs(&data).collect::<Result<Vec<_>, _>>()) {
            let names: Vec<&str> = pars.iter().filter_map(|p| p.get("Filename")).collect();
            let fast_names: Vec<&str> = fast.iter().map(|e| e.path.as_str()).collect();
            prop_assert_eq!(fast_names, names);
        }
    }

    #[test]
    fn compressed_indices_never_panic(
        data in input(),
        format in prop::sample::select(Compression::ALL.to_vec()),
        edits in prop::collection::vec(edit(), 0..3),
        limit in 0u64..4096,
    ) {
        let packed = compress::compress(format, &data).unwrap();
        let mangled = apply(packed.clone(), &edits);
        for name in ["main/binary-amd64/Packages", "main/source/Sources", "main/i18n/Index"] {
            let p = format!("{name}{}", format.extension());
            let _ = entries_of(&p, &mangled, 1 << 20);
            let _ = entries_of(&p, &packed, limit);
        }
        match compress::decompress(format, &packed, limit) {
            Ok(out) => prop_assert!(out.len() as u64 <= limit && out == data),
            Err(_) => prop_assert!(data.len() as u64 > limit),
        }
        if let Ok(out) = compress::decompress(format, &mangled, limit) {
            prop_assert!(out.len() as u64 <= limit);
        }
    }

    #[test]
    fn random_bytes_into_decoders(data in prop::collection::vec(any::<u8>(), 0..256), limit in 0u64..100_000) {
        for format in Compression::ALL {
            let _ = compress::decompress(format, &data, limit);
        }
    }

    #[test]
    fn paths_never_panic(p in prop_oneof![
        any::<String>(),
        prop::collection::vec(prop::sample::select(vec!["by-hash", "SHA256", "MD5Sum", "a", "..", ".", "", "Packages.gz",
            "0123456789abcdef0123456789abcdef", "Release", "i18n", "Index", "/", "Translation-en"]), 0..6)
            .prop_map(|v| v.join("/")),
    ]) {
        let _ = path::classify(&p);
        let _ = IndexKind::from_path(&p);
        let _ = Compression::from_path(&p);
        let _ = release::suite_dir(&p);
        let bh = path::by_hash_path(&p, aptindex::HashKind::Md5, "0123456789abcdef0123456789abcdef");
        let _ = path::classify(&bh);
        if path::is_safe_relative(&p) {
            prop_assert!(p.split('/').all(|c| c != ".." && c != "." && !c.is_empty()));
            prop_assert!(!p.starts_with('/'));
        }
    }
}
