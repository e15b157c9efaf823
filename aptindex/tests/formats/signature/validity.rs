//! Key and signature validity: expired keys and signatures, revoked keys,
//! subkeys not for signing.

use super::*;

#[test]
fn expired_key_is_rejected() {
    const DAY: u64 = 86_400;
    // Created 10 days ago, expired after 1 day: expired before signing.
    let key = make_key_at(false, Timestamp::from_secs(now_secs() - 10 * DAY as u32));
    let public = with_expiry(&key, Duration::from_secs(DAY));
    let keyring = Keyring::from_bytes(&public.to_bytes().unwrap()).unwrap();
    let signed = clearsign(RELEASE, &*key);
    match keyring.verify_clearsigned(&signed) {
        Err(SignatureError::Expired {
            fingerprint,
            reason,
        }) => {
            assert_eq!(fingerprint, fpr(&key.primary_key));
            assert!(reason.contains("before the signature was made"), "{reason}");
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    // A tampered text is still reported as Bad, not Expired.
    let tampered = String::from_utf8(signed)
        .unwrap()
        .replace("Suite: stable", "Suite: stablE");
    assert!(matches!(
        keyring.verify_clearsigned(tampered.as_bytes()),
        Err(SignatureError::Bad { .. })
    ));

    // Valid for 20 days after its creation (10 days ago): good now, expired
    // in a month.
    let public = with_expiry(&key, Duration::from_secs(20 * DAY));
    let keyring = Keyring::from_bytes(&public.to_bytes().unwrap()).unwrap();
    let sig = detach_sign(RELEASE.as_bytes(), &*key).to_bytes().unwrap();
    keyring.verify_detached(RELEASE.as_bytes(), &sig).unwrap();
    let later = SystemTime::now() + Duration::from_secs(30 * DAY);
    match keyring.verify_detached_at(RELEASE.as_bytes(), &sig, later) {
        Err(SignatureError::Expired { reason, .. }) => {
            assert!(reason.contains("expired on"), "{reason}")
        }
        other => panic!("expected Expired, got {other:?}"),
    }
}

#[test]
fn expired_signature_is_rejected() {
    let key = make_key(false);
    let keyring = Keyring::from_bytes(&key.to_public_key().to_bytes().unwrap()).unwrap();
    let made = Timestamp::from_secs(now_secs() - 120);
    let sig = DetachedSignature::sign_binary_data_with_subpackets(
        rand::thread_rng(),
        &*key,
        &Password::empty(),
        HashAlgorithm::Sha256,
        RELEASE.as_bytes(),
        SubpacketConfig::UserDefined {
            hashed: vec![
                Subpacket::regular(SubpacketData::SignatureCreationTime(made)).unwrap(),
                Subpacket::regular(SubpacketData::SignatureExpirationTime(
                    pgp::types::Duration::from_secs(60),
                ))
                .unwrap(),
                Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint())).unwrap(),
            ],
            unhashed: vec![],
        },
    )
    .unwrap()
    .to_bytes()
    .unwrap();
    match keyring.verify_detached(RELEASE.as_bytes(), &sig) {
        Err(SignatureError::Expired { reason, .. }) => {
            assert!(reason.contains("signature expired"), "{reason}")
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    // It was fine at the time.
    let then = UNIX_EPOCH + Duration::from_secs(u64::from(made.as_secs()) + 30);
    keyring
        .verify_detached_at(RELEASE.as_bytes(), &sig, then)
        .unwrap();
}

#[test]
fn revoked_key_is_rejected() {
    let key = make_key(false);
    let mut public = key.to_public_key();
    let mut config = SignatureConfig::v4(
        SignatureType::KeyRevocation,
        key.algorithm(),
        HashAlgorithm::Sha256,
    );
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now())).unwrap(),
        Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint())).unwrap(),
    ];
    let rev = config
        .sign_key(
            &key.primary_key,
            &Password::empty(),
            key.primary_key.public_key(),
        )
        .unwrap();
    public.details.revocation_signatures.push(rev);
    let keyring = Keyring::from_bytes(&public.to_bytes().unwrap()).unwrap();
    match keyring.verify_clearsigned(&clearsign(RELEASE, &*key)) {
        Err(SignatureError::Expired { reason, .. }) => {
            assert!(reason.contains("revoked"), "{reason}")
        }
        other => panic!("expected Expired (revoked), got {other:?}"),
    }
}

#[test]
fn subkey_not_for_signing_is_bad() {
    let mut sub = SubkeyParamsBuilder::default();
    sub.key_type(KeyType::Ed25519Legacy)
        .can_sign(false)
        .can_authenticate(true);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(UID.into())
        .subkeys(vec![sub.build().unwrap()]);
    let key = params
        .build()
        .unwrap()
        .generate(rand::thread_rng())
        .unwrap();
    let keyring = Keyring::from_bytes(&key.to_public_key().to_bytes().unwrap()).unwrap();
    let signed = clearsign(RELEASE, &key.secret_subkeys[0].key);
    match keyring.verify_clearsigned(&signed) {
        Err(SignatureError::Bad { reason, .. }) => {
            assert!(reason.contains("not flagged for signing"), "{reason}")
        }
        other => panic!("expected Bad, got {other:?}"),
    }
}
