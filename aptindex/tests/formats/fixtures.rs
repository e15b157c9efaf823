//! The real-world files in `testdata/`: Debian bookworm-updates, Ubuntu
//! xenial and an Artifactory repository. Expected counts were computed
//! independently with awk/grep (see the comments).

use aptindex::checksum::{Checksums, HashKind};
use aptindex::index::{
    entries_of, for_each_entry, i18n_index_entries, packages_entries, IndexKind,
};
use aptindex::release::{is_clearsigned, split_clearsigned, Release};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const LIMIT: u64 = 1 << 30;

#[test]
fn debian_bookworm_updates_inrelease() {
    let data = fixture("debian/bookworm-updates_InRelease");
    assert!(is_clearsigned(&data));
    let r = Release::parse_any(&data).unwrap();
    assert_eq!(r.origin.as_deref(), Some("Debian"));
    assert_eq!(r.codename.as_deref(), Some("bookworm-updates"));
    assert_eq!(r.suite.as_deref(), Some("oldstable-updates"));
    assert!(r.acquire_by_hash);
    assert!(r.no_support_for_architecture_all);
    assert_eq!(
        r.components,
        ["main", "contrib", "non-free-firmware", "non-free"]
    );
    assert!(r.architectures.contains(&"amd64".to_string()));
    // awk '/^-----BEGIN PGP SIGNATURE/{exit} /^ /{print $3}' | sort -u | wc -l → 480
    assert_eq!(r.entries.len(), 480);
    assert!(r.entries.values().all(|c| c.kinds() == [HashKind::Sha256]));
    assert!(r.date_time().is_some());

    // The Packages fixture is the one the InRelease lists.
    let packages = fixture("debian/bookworm-updates_main_binary-amd64_Packages");
    let expected = &r.entries["main/binary-amd64/Packages"];
    expected
        .verify(
            "main/binary-amd64/Packages",
            &Checksums::of_bytes(&packages),
        )
        .unwrap();
    let mut tampered = packages.clone();
    tampered[100] ^= 1;
    assert!(expected
        .verify(
            "main/binary-amd64/Packages",
            &Checksums::of_bytes(&tampered)
        )
        .is_err());

    // grep -c '^Filename:' → 38
    let entries = packages_entries(&packages).unwrap();
    assert_eq!(entries.len(), 38);
    assert!(entries
        .iter()
        .all(|e| e.path.starts_with("pool/") && e.checksums.sha256.is_some()));
}

#[test]
fn debian_inrelease_text_is_what_precedes_the_signature() {
    let data = fixture("debian/bookworm-updates_InRelease");
    let cs = split_clearsigned(&data).unwrap();
    assert!(cs.text.starts_with(b"Origin: Debian\n"));
    assert!(!cs.text.ends_with(b"\n"));
    let sig_at = memchr_find(&data, b"\n-----BEGIN PGP SIGNATURE-----").unwrap();
    assert!(data[..sig_at].ends_with(&cs.text));
    assert!(cs.signature.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
    assert!(cs.signature.ends_with(b"-----END PGP SIGNATURE-----\n"));
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn ubuntu_xenial_inrelease() {
    let r = Release::parse_any(&fixture("aptutil-af/InRelease")).unwrap();
    assert_eq!(r.codename.as_deref(), Some("xenial"));
    assert_eq!(r.version.as_deref(), Some("16.04"));
    // 2514 list lines (MD5Sum, SHA1, SHA256) over 838 distinct paths.
    assert_eq!(r.entries.len(), 838);
    assert!(r
        .entries
        .values()
        .all(|c| c.kinds() == [HashKind::Md5, HashKind::Sha1, HashKind::Sha256]));
    assert_eq!(r.entries["main/binary-amd64/Packages"].size, 7228243);
}

#[test]
fn artifactory_release() {
    let r = Release::parse_any(&fixture("aptutil-af/Release")).unwrap();
    assert_eq!(r.origin.as_deref(), Some("Artifactory"));
    assert_eq!(r.architectures, ["amd64", "i386"]);
    // 27 list lines over 9 distinct paths.
    assert_eq!(r.entries.len(), 9);
    assert_eq!(r.entries["main/binary-amd64/Packages"].size, 15278);
    assert!(r.date_time().is_some());
}

#[test]
fn packages_plain_and_xz_agree() {
    let plain = entries_of(
        "main/binary-amd64/Packages",
        &fixture("aptutil-af/Packages"),
        LIMIT,
    )
    .unwrap();
    let xz = entries_of(
        "main/binary-amd64/Packages.xz",
        &fixture("aptutil-af/Packages.xz"),
        LIMIT,
    )
    .unwrap();
    // grep -c '^Filename:' → 3
    assert_eq!(plain.len(), 3);
    assert_eq!(plain, xz);
}

#[test]
fn sources_gz_yields_its_files() {
    let data = fixture("aptutil-af/Sources.gz");
    let entries = entries_of("dists/trusty/main/source/Sources.gz", &data, LIMIT).unwrap();
    // 3171 paragraphs; awk over Files/Checksums-* lines → 8639 distinct
    // Directory/name paths, each listed in 3 lists.
    assert_eq!(entries.len(), 8639);
    assert!(entries
        .iter()
        .all(|e| e.checksums.kinds() == [HashKind::Md5, HashKind::Sha1, HashKind::Sha256]));
    assert_eq!(entries[0].path, "pool/main/a/aalib/aalib_1.4p5-41.dsc");
    assert_eq!(entries[0].checksums.size, 2078);
}

#[test]
fn i18n_index_yields_its_files() {
    let data = fixture("aptutil-af/Index");
    let entries = i18n_index_entries("dists/xenial/main/i18n", &data).unwrap();
    // grep -c '^ ' Index → 53 (SHA1 only)
    assert_eq!(entries.len(), 53);
    assert!(entries
        .iter()
        .all(|e| e.path.starts_with("dists/xenial/main/i18n/Translation-")));
    let mut streamed = Vec::new();
    for_each_entry(
        IndexKind::I18nIndex,
        "dists/xenial/main/i18n",
        &data[..],
        |e| streamed.push(e),
    )
    .unwrap();
    assert_eq!(streamed, entries);
}
