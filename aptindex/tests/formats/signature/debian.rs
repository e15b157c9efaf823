//! The real Debian InRelease files with the Debian archive keyring.

use super::*;

#[test]
fn debian_keyring_loads_all_keys() {
    let keyring = debian_keyring();
    // gpg --show-keys lists 9 primary keys.
    assert_eq!(keyring.len(), 9, "{keyring:?}");
    assert!(keyring
        .fingerprints()
        .contains(&BOOKWORM_PRIMARY.to_string()));
}

#[test]
fn debian_inrelease_verifies() {
    let keyring = debian_keyring();
    let data = read("debian/bookworm-updates_InRelease");
    let (text, signer) = keyring
        .verify_clearsigned_at(&data, fixture_time())
        .unwrap();
    assert_eq!(signer.fingerprint, BOOKWORM_SUBKEY);
    assert_eq!(signer.primary_fingerprint, BOOKWORM_PRIMARY);
    assert_eq!(
        signer.user_id.as_deref(),
        Some("Debian Archive Automatic Signing Key (12/bookworm) <ftpmaster@debian.org>")
    );
    assert_eq!(text, naive_signed_text(&data));
    assert!(text.starts_with(b"Origin: Debian\n"));
    // The signed text (no final newline, as apt hands it on) parses.
    let release = aptindex::Release::parse(&text).unwrap();
    assert_eq!(release.suite.as_deref(), Some("oldstable-updates"));
    assert!(release.entries.contains_key("main/binary-amd64/Packages"));

    // With the clock (the keys are valid until 2031).
    let (text_now, signer_now) = keyring.verify_clearsigned(&data).unwrap();
    assert_eq!(text_now, text);
    assert_eq!(signer_now, signer);
}

#[test]
fn debian_inrelease_verifies_by_second_signature_alone() {
    // Keep only the trixie key: the first (bookworm) signature is then by an
    // unknown key and must be ignored.
    let all = read("debian/debian-archive-keyring.gpg");
    let keys: Vec<SignedPublicKey> = SignedPublicKey::from_bytes_many(&all[..])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let trixie: Vec<&SignedPublicKey> = keys
        .iter()
        .filter(|k| {
            k.public_subkeys
                .iter()
                .any(|s| format!("{:X}", s.key.fingerprint()) == TRIXIE_SUBKEY)
        })
        .collect();
    assert_eq!(trixie.len(), 1);
    let keyring = Keyring::from_bytes(&trixie[0].to_bytes().unwrap()).unwrap();
    assert_eq!(keyring.len(), 1);
    let data = read("debian/bookworm-updates_InRelease");
    let (_, signer) = keyring
        .verify_clearsigned_at(&data, fixture_time())
        .unwrap();
    assert_eq!(signer.fingerprint, TRIXIE_SUBKEY);
}

#[test]
fn debian_keyring_armoured_blocks() {
    // Every key as its own armour block, all in one .asc file.
    let all = read("debian/debian-archive-keyring.gpg");
    let mut asc = String::from("Some comment before the keys\n\n");
    for key in SignedPublicKey::from_bytes_many(&all[..]).unwrap() {
        asc.push_str(
            &key.unwrap()
                .to_armored_string(ArmorOptions::default())
                .unwrap(),
        );
        asc.push('\n');
    }
    let keyring = Keyring::from_bytes(asc.as_bytes()).unwrap();
    assert_eq!(keyring.len(), 9);
    let (_, signer) = keyring
        .verify_clearsigned_at(&read("debian/bookworm-updates_InRelease"), fixture_time())
        .unwrap();
    assert_eq!(signer.fingerprint, BOOKWORM_SUBKEY);

    // All keys in a single armour block (what `gpg --armor --export` writes).
    let mut one_block = Vec::new();
    pgp::armor::write(
        &RawBytes(all),
        pgp::armor::BlockType::PublicKey,
        &mut one_block,
        None,
        true,
    )
    .unwrap();
    let keyring = Keyring::from_bytes(&one_block).unwrap();
    assert_eq!(keyring.len(), 9);
}

#[test]
fn debian_inrelease_tampered_is_bad() {
    let keyring = debian_keyring();
    let mut data = read("debian/bookworm-updates_InRelease");
    let pos = data
        .windows(8)
        .position(|w| w == b"Suite: o")
        .expect("Suite line");
    data[pos + 7] = b'O'; // "Suite: Oldstable-updates"
    match keyring.verify_clearsigned_at(&data, fixture_time()) {
        Err(SignatureError::Bad {
            fingerprint,
            reason,
        }) => {
            assert!(
                fingerprint == BOOKWORM_SUBKEY || fingerprint == TRIXIE_SUBKEY,
                "{fingerprint}: {reason}"
            );
        }
        other => panic!("expected Bad, got {other:?}"),
    }
}

#[test]
fn debian_inrelease_foreign_key_is_unknown() {
    let foreign = make_key(false);
    let keyring = Keyring::from_bytes(&foreign.to_public_key().to_bytes().unwrap()).unwrap();
    let data = read("debian/bookworm-updates_InRelease");
    match keyring.verify_clearsigned_at(&data, fixture_time()) {
        Err(SignatureError::UnknownKey { issuers }) => {
            assert!(issuers.contains(BOOKWORM_SUBKEY), "{issuers}");
            assert!(issuers.contains(TRIXIE_SUBKEY), "{issuers}");
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    // An empty keyring knows nobody either.
    let empty = Keyring::from_bytes(b"").unwrap();
    assert!(empty.is_empty());
    assert!(matches!(
        empty.verify_clearsigned(&data),
        Err(SignatureError::UnknownKey { .. })
    ));
}

#[test]
fn xenial_inrelease_is_unknown_key() {
    // Signed by two Ubuntu keys (DSA 40976EAF437D05B5, RSA 3B4FE6ACC0B21F32)
    // that are not in the Debian keyring.
    let data = read("aptutil-af/InRelease");
    match debian_keyring().verify_clearsigned(&data) {
        Err(SignatureError::UnknownKey { issuers }) => {
            assert!(issuers.contains("40976EAF437D05B5"), "{issuers}");
            assert!(issuers.contains("3B4FE6ACC0B21F32"), "{issuers}");
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
}
