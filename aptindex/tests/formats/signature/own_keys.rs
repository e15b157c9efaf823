//! Keys and signatures made by the test with `pgp`: round trips, dash
//! escaping, keyring files, malformed messages and several signatures.

use super::*;

#[test]
fn own_key_clearsigned_round_trip_binary_and_armoured_keyring() {
    let key = make_key(true);
    let public = key.to_public_key();
    let binary = Keyring::from_bytes(&public.to_bytes().unwrap()).unwrap();
    let armoured = Keyring::from_bytes(
        public
            .to_armored_string(ArmorOptions::default())
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(binary.len(), 1);
    assert_eq!(armoured.len(), 1);

    // Signed by the primary key.
    let signed = clearsign(RELEASE, &*key);
    for keyring in [&binary, &armoured] {
        let (text, signer) = keyring.verify_clearsigned(&signed).unwrap();
        assert_eq!(text, RELEASE.as_bytes());
        assert_eq!(signer.fingerprint, fpr(&key.primary_key));
        assert_eq!(signer.primary_fingerprint, fpr(&key.primary_key));
        assert_eq!(signer.user_id.as_deref(), Some(UID));
    }

    // Signed by the subkey.
    let signed = clearsign(RELEASE, &key.secret_subkeys[0].key);
    let (text, signer) = binary.verify_clearsigned(&signed).unwrap();
    assert_eq!(text, RELEASE.as_bytes());
    assert_eq!(signer.fingerprint, fpr(&key.secret_subkeys[0].key));
    assert_eq!(signer.primary_fingerprint, fpr(&key.primary_key));
}

#[test]
fn dash_escaped_text_round_trips() {
    let key = make_key(false);
    let keyring = Keyring::from_bytes(&key.to_public_key().to_bytes().unwrap()).unwrap();
    let text = "Origin: Test\n- a line with a dash\n-----BEGIN PGP SIGNATURE-----\nEnd: x\n";
    let signed = clearsign(text, &*key);
    assert!(signed.windows(11).any(|w| w == b"\n- - a line"));
    let (got, _) = keyring.verify_clearsigned(&signed).unwrap();
    assert_eq!(got, text.as_bytes());

    // CRLF line ends in the file: same signed text, `\n`-joined.
    let crlf = String::from_utf8(signed)
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes();
    let (got, _) = keyring.verify_clearsigned(&crlf).unwrap();
    assert_eq!(got, text.as_bytes());
}

#[test]
fn own_key_detached_round_trip() {
    let key = make_key(true);
    let keyring = Keyring::from_bytes(&key.to_public_key().to_bytes().unwrap()).unwrap();
    let sub = &key.secret_subkeys[0].key;
    let sig = detach_sign(RELEASE.as_bytes(), sub);

    let armoured = sig.to_armored_bytes(ArmorOptions::default()).unwrap();
    let binary = sig.to_bytes().unwrap();
    for s in [&armoured, &binary] {
        let signer = keyring.verify_detached(RELEASE.as_bytes(), s).unwrap();
        assert_eq!(signer.fingerprint, fpr(sub));
        assert_eq!(signer.primary_fingerprint, fpr(&key.primary_key));
    }

    // Tampered data.
    let mut tampered = RELEASE.as_bytes().to_vec();
    tampered[0] = b'o';
    assert!(matches!(
        keyring.verify_detached(&tampered, &armoured),
        Err(SignatureError::Bad { .. })
    ));

    // Several signatures: one by a foreign key (ignored), one by ours, in
    // two armour blocks, and as concatenated binary packets.
    let foreign = make_key(false);
    let foreign_sig = detach_sign(RELEASE.as_bytes(), &*foreign);
    let mut two = foreign_sig
        .to_armored_bytes(ArmorOptions::default())
        .unwrap();
    two.extend_from_slice(&armoured);
    let signer = keyring.verify_detached(RELEASE.as_bytes(), &two).unwrap();
    assert_eq!(signer.fingerprint, fpr(sub));
    let mut two_bin = foreign_sig.to_bytes().unwrap();
    two_bin.extend_from_slice(&binary);
    let signer = keyring
        .verify_detached(RELEASE.as_bytes(), &two_bin)
        .unwrap();
    assert_eq!(signer.fingerprint, fpr(sub));

    // Only the foreign signature: unknown key, naming it.
    match keyring.verify_detached(RELEASE.as_bytes(), &foreign_sig.to_bytes().unwrap()) {
        Err(SignatureError::UnknownKey { issuers }) => {
            assert!(issuers.contains(&fpr(&foreign.primary_key)), "{issuers}")
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
}

#[test]
fn merged_keyring_files_and_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_key(false);
    let b = make_key(false);
    let pa = dir.path().join("a.gpg");
    let pb = dir.path().join("b.asc");
    std::fs::write(&pa, a.to_public_key().to_bytes().unwrap()).unwrap();
    std::fs::write(
        &pb,
        b.to_public_key()
            .to_armored_string(ArmorOptions::default())
            .unwrap(),
    )
    .unwrap();
    let keyring = Keyring::from_files(&[&pa, &pb]).unwrap();
    assert_eq!(keyring.len(), 2);
    let (_, signer) = keyring
        .verify_clearsigned(&clearsign(RELEASE, &*b))
        .unwrap();
    assert_eq!(signer.fingerprint, fpr(&b.primary_key));

    let bad = dir.path().join("garbage.gpg");
    std::fs::write(&bad, b"this is not a keyring\n").unwrap();
    let err = Keyring::from_files(&[&pa, &bad]).unwrap_err();
    assert!(matches!(err, SignatureError::Keyring(_)));
    assert!(err.to_string().contains("garbage.gpg"), "{err}");
    let missing = dir.path().join("missing.gpg");
    let err = Keyring::from_files(&[&missing]).unwrap_err();
    assert!(err.to_string().contains("missing.gpg"), "{err}");
}

#[test]
fn malformed_clearsigned_messages() {
    let key = make_key(false);
    let keyring = Keyring::from_bytes(&key.to_public_key().to_bytes().unwrap()).unwrap();
    let good = String::from_utf8(clearsign(RELEASE, &*key)).unwrap();
    keyring.verify_clearsigned(good.as_bytes()).unwrap();

    let cases: Vec<(&str, String)> = vec![
        ("unsigned", RELEASE.to_string()),
        ("leading text", format!("junk\n{good}")),
        (
            "unescaped dash line",
            good.replace("Suite: stable", "-Suite: stable"),
        ),
        ("trailing text", format!("{good}Origin: Evil\n")),
        (
            "second message",
            format!(
                "{good}{}",
                String::from_utf8(clearsign("Origin: Evil\n", &*key)).unwrap()
            ),
        ),
        (
            "unclosed signature",
            good.replace("-----END PGP SIGNATURE-----", ""),
        ),
        (
            "no signature",
            good[..good.find("-----BEGIN PGP SIGNATURE").unwrap()].to_string(),
        ),
        ("empty", String::new()),
    ];
    for (what, data) in cases {
        match keyring.verify_clearsigned(data.as_bytes()) {
            Err(SignatureError::Malformed(m)) => eprintln!("{what}: {m}"),
            other => panic!("{what}: expected Malformed, got {other:?}"),
        }
    }
    // Blank lines after the signature are tolerated.
    keyring
        .verify_clearsigned(format!("{good}\n\n").as_bytes())
        .unwrap();
}

/// The `-----BEGIN PGP SIGNATURE-----` … block of a clearsigned message.
fn signature_part(signed: &[u8]) -> &[u8] {
    let start = signed
        .windows(29)
        .position(|w| w == b"-----BEGIN PGP SIGNATURE-----")
        .unwrap();
    &signed[start..]
}

#[test]
fn several_signatures_rotation_and_mismatch() {
    const DAY: u64 = 86_400;
    let good_key = make_key(false);
    let old_key = make_key_at(false, Timestamp::from_secs(now_secs() - 10 * DAY as u32));
    let mut keyring_bytes = good_key.to_public_key().to_bytes().unwrap();
    keyring_bytes.extend(
        with_expiry(&old_key, Duration::from_secs(DAY))
            .to_bytes()
            .unwrap(),
    );
    let keyring = Keyring::from_bytes(&keyring_bytes).unwrap();
    assert_eq!(keyring.len(), 2);

    let by_good = clearsign(RELEASE, &*good_key);
    let by_old = clearsign(RELEASE, &*old_key);
    assert!(matches!(
        keyring.verify_clearsigned(&by_old),
        Err(SignatureError::Expired { .. })
    ));

    // Key rotation: a signature by an expired key next to a good one is fine,
    // in either order.
    let mut both = by_good.clone();
    both.extend_from_slice(signature_part(&by_old));
    let (text, signer) = keyring.verify_clearsigned(&both).unwrap();
    assert_eq!(text, RELEASE.as_bytes());
    assert_eq!(signer.fingerprint, fpr(&good_key.primary_key));
    let mut both = by_old.clone();
    both.extend_from_slice(signature_part(&by_good));
    let (_, signer) = keyring.verify_clearsigned(&both).unwrap();
    assert_eq!(signer.fingerprint, fpr(&good_key.primary_key));

    // A second known key whose signature does not match: the whole file is
    // bad, as for apt.
    let other_key = make_key(false);
    let mut keyring_bytes = good_key.to_public_key().to_bytes().unwrap();
    keyring_bytes.extend(other_key.to_public_key().to_bytes().unwrap());
    let keyring = Keyring::from_bytes(&keyring_bytes).unwrap();
    let by_other_elsewhere = clearsign("Origin: Other\n", &*other_key);
    let mut mixed = by_good.clone();
    mixed.extend_from_slice(signature_part(&by_other_elsewhere));
    match keyring.verify_clearsigned(&mixed) {
        Err(SignatureError::Bad { fingerprint, .. }) => {
            assert_eq!(fingerprint, fpr(&other_key.primary_key))
        }
        other => panic!("expected Bad, got {other:?}"),
    }
    // ... while the same foreign signature by a key we don't have is ignored.
    let keyring = Keyring::from_bytes(&good_key.to_public_key().to_bytes().unwrap()).unwrap();
    keyring.verify_clearsigned(&mixed).unwrap();
}
