//! Which Release files a mirror believes and publishes (`aptindex::trust`):
//! the real Debian suite whose `Release.gpg` is stale
//! (`testdata/debian-stale-release-gpg/`) with the Debian archive keyring,
//! and every fallback case with keys made by the test.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aptindex::signature::{Keyring, SignatureError};
use aptindex::trust::{decide, Decision, Fetched, Problem, ReleaseFile, TrustError};
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, DetachedSignature, KeyType, SecretKeyParamsBuilder,
    SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::Password;

const LOCATION: &str = "http://deb.example.org/debian/dists/bookworm-updates/";

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap()
}

/// 2026-12-05 12:00 UTC: the day the stale suite was fetched.
fn fixture_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_472_000)
}

fn debian_keyring() -> Keyring {
    Keyring::from_files(&[testdata("debian/debian-archive-keyring.gpg")]).unwrap()
}

/// The real files: InRelease, Release, Release.gpg.
fn stale() -> [Vec<u8>; 3] {
    ["InRelease", "Release", "Release.gpg"].map(|n| read(&format!("debian-stale-release-gpg/{n}")))
}

fn fetched<'a>(
    in_release: Option<&'a [u8]>,
    release: Option<&'a [u8]>,
    release_gpg: Option<&'a [u8]>,
) -> Fetched<'a> {
    Fetched {
        in_release,
        release,
        release_gpg,
    }
}

fn url(file: &str) -> String {
    format!("{LOCATION}{file}")
}

fn published(d: &Decision) -> Vec<ReleaseFile> {
    ReleaseFile::ALL
        .into_iter()
        .filter(|f| d.publishes(*f))
        .collect()
}

#[test]
fn debian_stale_release_gpg_is_a_warning_and_not_published() {
    let keyring = debian_keyring();
    let [in_release, release, gpg] = stale();
    // The fixture is what the README says: Release.gpg alone is BAD.
    keyring
        .verify_clearsigned_at(&in_release, fixture_time())
        .unwrap();
    assert!(matches!(
        keyring.verify_detached_at(&release, &gpg, fixture_time()),
        Err(SignatureError::Bad { .. })
    ));

    let d = decide(
        LOCATION,
        &fetched(Some(&in_release), Some(&release), Some(&gpg)),
        Some(&keyring),
        fixture_time(),
    )
    .unwrap();
    assert_eq!(d.authority, ReleaseFile::InRelease);
    assert_eq!(d.release.codename.as_deref(), Some("bookworm-updates"));
    assert!(d.release.entries.contains_key("main/binary-amd64/Packages"));
    assert!(d.other.is_none());
    assert_eq!(
        d.signer.as_ref().unwrap().fingerprint,
        "4CB50190207B4758A3F73A796ED0E7B82643E131"
    );
    // Release is the text InRelease signs: published; Release.gpg is not.
    assert_eq!(
        published(&d),
        [ReleaseFile::InRelease, ReleaseFile::Release]
    );
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    let w = &d.warnings[0];
    assert_eq!(w.file, ReleaseFile::ReleaseGpg);
    assert_eq!(w.url, url("Release.gpg"));
    assert!(!w.published);
    assert!(
        matches!(w.problem, Problem::Signature(SignatureError::Bad { .. })),
        "{w}"
    );
    let text = w.to_string();
    assert!(
        text.starts_with(&format!("{}: BAD signature", url("Release.gpg"))),
        "{text}"
    );
    assert!(text.ends_with("not published"), "{text}");
    // One line, fit for a log line and the run summary.
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.contains("the signature does not match the signed data"),
        "{text}"
    );
}

#[test]
fn debian_stale_release_gpg_without_inrelease_is_an_error() {
    let keyring = debian_keyring();
    let [_, release, gpg] = stale();
    let e = decide(
        LOCATION,
        &fetched(None, Some(&release), Some(&gpg)),
        Some(&keyring),
        fixture_time(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, TrustError::Signature { url: u, source: SignatureError::Bad { .. } } if *u == url("Release.gpg")),
        "{e}"
    );
    assert!(e.to_string().contains("BAD signature"), "{e}");
}

#[test]
fn debian_tampered_inrelease_and_stale_pair_is_an_error_naming_both() {
    let keyring = debian_keyring();
    let [in_release, release, gpg] = stale();
    let tampered = String::from_utf8(in_release)
        .unwrap()
        .replacen("Label: Debian", "Label: Debiam", 1)
        .into_bytes();
    let e = decide(
        LOCATION,
        &fetched(Some(&tampered), Some(&release), Some(&gpg)),
        Some(&keyring),
        fixture_time(),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, TrustError::NoValidRelease { .. }), "{text}");
    assert!(text.contains(&url("InRelease")), "{text}");
    assert!(text.contains(&url("Release.gpg")), "{text}");
    assert_eq!(text.matches("BAD signature").count(), 2, "{text}");
}

#[test]
fn debian_without_keyring_publishes_everything() {
    let [in_release, release, gpg] = stale();
    let d = decide(
        LOCATION,
        &fetched(Some(&in_release), Some(&release), Some(&gpg)),
        None,
        fixture_time(),
    )
    .unwrap();
    assert_eq!(d.authority, ReleaseFile::InRelease);
    assert!(d.signer.is_none());
    assert!(d.warnings.is_empty());
    assert_eq!(published(&d), ReleaseFile::ALL);
}

// Keys made by the test.

fn make_key() -> SignedSecretKey {
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("Test Archive <archive@example.invalid>".into());
    params
        .build()
        .unwrap()
        .generate(rand::thread_rng())
        .unwrap()
}

fn keyring_of(key: &SignedSecretKey) -> Keyring {
    Keyring::from_bytes(&key.to_public_key().to_bytes().unwrap()).unwrap()
}

fn clearsign(text: &str, key: &SignedSecretKey) -> Vec<u8> {
    CleartextSignedMessage::sign(rand::thread_rng(), text, &**key, &Password::empty())
        .unwrap()
        .to_armored_string(ArmorOptions::default())
        .unwrap()
        .into_bytes()
}

fn detach_sign(text: &str, key: &SignedSecretKey) -> Vec<u8> {
    DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        &**key,
        &Password::empty(),
        HashAlgorithm::Sha256,
        text.as_bytes(),
    )
    .unwrap()
    .to_armored_string(ArmorOptions::default())
    .unwrap()
    .into_bytes()
}

const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A Release listing one Packages file, of `size` bytes (0 = empty).
fn release_text(by_hash: bool, size: u32) -> String {
    let sha = if size == 0 {
        EMPTY.to_string()
    } else {
        format!("{:064x}", size)
    };
    let by_hash = if by_hash {
        "Acquire-By-Hash: yes\n"
    } else {
        ""
    };
    format!(
        "Origin: Test\nSuite: stable\nCodename: test\n{by_hash}SHA256:\n {sha} {size} main/binary-amd64/Packages\n"
    )
}

/// A suite signed by `key`: (InRelease, Release, Release.gpg).
fn suite(key: &SignedSecretKey, text: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (
        clearsign(text, key),
        text.as_bytes().to_vec(),
        detach_sign(text, key),
    )
}

#[test]
fn no_inrelease_and_a_good_pair_is_accepted() {
    let key = make_key();
    let keyring = keyring_of(&key);
    let (_, release, gpg) = suite(&key, &release_text(false, 0));
    let d = decide(
        LOCATION,
        &fetched(None, Some(&release), Some(&gpg)),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(d.authority, ReleaseFile::Release);
    assert!(d.warnings.is_empty());
    assert_eq!(
        published(&d),
        [ReleaseFile::Release, ReleaseFile::ReleaseGpg]
    );
    assert!(d.release.entries.contains_key("main/binary-amd64/Packages"));
}

#[test]
fn bad_inrelease_and_a_good_pair_is_accepted_with_a_warning() {
    let key = make_key();
    let other = make_key();
    let keyring = keyring_of(&key);
    let text = release_text(false, 0);
    let (_, release, gpg) = suite(&key, &text);
    // Tampered, and signed by a key not in the keyring.
    let tampered = String::from_utf8(clearsign(&text, &key))
        .unwrap()
        .replacen("Origin: Test", "Origin: Evil", 1)
        .into_bytes();
    let foreign = clearsign(&text, &other);
    for (in_release, want) in [
        (tampered, "BAD signature"),
        (foreign, "no signature by a key in the keyring"),
    ] {
        let d = decide(
            LOCATION,
            &fetched(Some(&in_release), Some(&release), Some(&gpg)),
            Some(&keyring),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(d.authority, ReleaseFile::Release);
        assert_eq!(d.release.origin.as_deref(), Some("Test"));
        assert_eq!(
            published(&d),
            [ReleaseFile::Release, ReleaseFile::ReleaseGpg]
        );
        assert_eq!(d.warnings.len(), 1);
        let w = &d.warnings[0];
        assert_eq!(
            (w.file, w.url.as_str()),
            (ReleaseFile::InRelease, url("InRelease").as_str())
        );
        assert!(w.to_string().contains(want), "{w}");
    }
}

#[test]
fn bad_inrelease_and_a_bad_pair_is_an_error_naming_both() {
    let key = make_key();
    let keyring = keyring_of(&key);
    let (in_release, release, _) = suite(&key, &release_text(false, 0));
    let (_, _, stale_gpg) = suite(&key, &release_text(false, 7));
    let tampered = String::from_utf8(in_release)
        .unwrap()
        .replacen("Origin: Test", "Origin: Evil", 1)
        .into_bytes();
    // Stale signature, no signature, no Release.
    let cases = [
        (
            fetched(Some(&tampered), Some(&release), Some(&stale_gpg)),
            "Release.gpg: BAD signature",
        ),
        (
            fetched(Some(&tampered), Some(&release), None),
            "Release.gpg: not found upstream (404), so",
        ),
        (
            fetched(Some(&tampered), None, Some(&stale_gpg)),
            "Release: not found upstream (404)",
        ),
    ];
    for (files, want) in cases {
        let e = decide(LOCATION, &files, Some(&keyring), SystemTime::now()).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, TrustError::NoValidRelease { .. }), "{text}");
        assert!(
            text.starts_with(&format!("{}: BAD signature", url("InRelease"))),
            "{text}"
        );
        assert!(text.contains(&format!("{LOCATION}{want}")), "{text}");
    }
}

#[test]
fn no_inrelease_and_a_bad_or_missing_release_gpg_is_an_error() {
    let key = make_key();
    let keyring = keyring_of(&key);
    let (_, release, _) = suite(&key, &release_text(false, 0));
    let (_, _, stale_gpg) = suite(&key, &release_text(false, 7));
    let e = decide(
        LOCATION,
        &fetched(None, Some(&release), Some(&stale_gpg)),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}: BAD signature", url("Release.gpg"))),
        "{e}"
    );
    let e = decide(
        LOCATION,
        &fetched(None, Some(&release), None),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(e, TrustError::Unsigned { .. }), "{e}");
    assert!(e.to_string().contains(&url("Release.gpg")), "{e}");
    let e = decide(
        LOCATION,
        &fetched(None, None, Some(&stale_gpg)),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(e, TrustError::NotFound { .. }), "{e}");
}

#[test]
fn good_inrelease_and_a_release_that_differs_is_not_published() {
    let key = make_key();
    let keyring = keyring_of(&key);
    let (in_release, _, _) = suite(&key, &release_text(false, 0));
    let (_, old_release, old_gpg) = suite(&key, &release_text(false, 7));
    // Release differs; its Release.gpg is missing, or signs yet other text.
    for gpg in [None, Some(&detach_sign("Origin: Older\n", &key))] {
        let d = decide(
            LOCATION,
            &fetched(
                Some(&in_release),
                Some(&old_release),
                gpg.map(|g| g.as_slice()),
            ),
            Some(&keyring),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(d.authority, ReleaseFile::InRelease);
        assert_eq!(published(&d), [ReleaseFile::InRelease]);
        let w = d.warning(ReleaseFile::Release).unwrap();
        assert!(matches!(w.problem, Problem::DiffersFromInRelease));
        assert_eq!(w.url, url("Release"));
        assert_eq!(d.warning(ReleaseFile::ReleaseGpg).is_some(), gpg.is_some());
    }
    // Both validly signed but different, no by-hash: InRelease decides (as
    // for apt), the other pair is a warning and is not published.
    let d = decide(
        LOCATION,
        &fetched(Some(&in_release), Some(&old_release), Some(&old_gpg)),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(d.authority, ReleaseFile::InRelease);
    assert_eq!(published(&d), [ReleaseFile::InRelease]);
    assert!(d.other.is_none());
    let w = d.warning(ReleaseFile::Release).unwrap();
    assert!(
        matches!(w.problem, Problem::OtherVersionWithoutByHash),
        "{w}"
    );
    assert_eq!(w.url, url("Release"));
    assert!(w.to_string().contains("by-hash"), "{w}");
}

#[test]
fn good_inrelease_and_another_signed_release_with_by_hash_keeps_both() {
    let key = make_key();
    let keyring = keyring_of(&key);
    let (in_release, _, _) = suite(&key, &release_text(true, 0));
    let (_, old_release, old_gpg) = suite(&key, &release_text(true, 7));
    let d = decide(
        LOCATION,
        &fetched(Some(&in_release), Some(&old_release), Some(&old_gpg)),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(published(&d), ReleaseFile::ALL);
    let other = d.other.as_ref().unwrap();
    assert_eq!(other.entries["main/binary-amd64/Packages"].size, 7);
    assert_eq!(d.release.entries["main/binary-amd64/Packages"].size, 0);
    assert!(matches!(
        d.warning(ReleaseFile::Release).unwrap().problem,
        Problem::OtherVersion
    ));
}

#[test]
fn good_inrelease_alone_or_with_an_orphan_release_gpg() {
    let key = make_key();
    let keyring = keyring_of(&key);
    let (in_release, release, gpg) = suite(&key, &release_text(false, 0));
    let d = decide(
        LOCATION,
        &fetched(Some(&in_release), None, None),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(published(&d), [ReleaseFile::InRelease]);
    assert!(d.warnings.is_empty());
    let d = decide(
        LOCATION,
        &fetched(Some(&in_release), None, Some(&gpg)),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(published(&d), [ReleaseFile::InRelease]);
    assert!(matches!(
        d.warning(ReleaseFile::ReleaseGpg).unwrap().problem,
        Problem::NoRelease
    ));
    // All three good: all published, no warning.
    let d = decide(
        LOCATION,
        &fetched(Some(&in_release), Some(&release), Some(&gpg)),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(published(&d), ReleaseFile::ALL);
    assert!(d.warnings.is_empty() && d.other.is_none());
}

#[test]
fn a_verified_text_that_is_not_a_release_is_an_error() {
    let key = make_key();
    let keyring = keyring_of(&key);
    let text = "SHA256:\n not-a-hash 1 x\n";
    let (in_release, _, _) = suite(&key, text);
    let e = decide(
        LOCATION,
        &fetched(Some(&in_release), None, None),
        Some(&keyring),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(e, TrustError::Unreadable { .. }), "{e}");
    assert!(e.to_string().starts_with(&url("InRelease")), "{e}");
}
