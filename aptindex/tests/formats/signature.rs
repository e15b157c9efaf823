//! Signature verification: the real Debian InRelease with the Debian archive
//! keyring, and keys and signatures made by the test itself with `pgp`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aptindex::signature::{Keyring, SignatureError};
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey, SubkeyParamsBuilder, SubpacketConfig,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{KeyFlags, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Tag, Timestamp};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(testdata(rel)).unwrap()
}

/// 2026-11-26 00:00 UTC: a day after the fixture InRelease was signed.
fn fixture_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_651_200)
}

fn debian_keyring() -> Keyring {
    Keyring::from_files(&[testdata("debian/debian-archive-keyring.gpg")]).unwrap()
}

/// Fingerprints as printed by `gpgv` / `gpg --with-colons --show-keys`.
const BOOKWORM_SUBKEY: &str = "4CB50190207B4758A3F73A796ED0E7B82643E131";
const BOOKWORM_PRIMARY: &str = "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8";
const TRIXIE_SUBKEY: &str = "B8E5F13176D2A7A75220028078DBA3BC47EF2265";

/// The signed text as apt's `SplitClearSignedFile` extracts it, done the
/// simple way for this well-formed file (no dash-escapes, no trailing blanks).
fn naive_signed_text(inrelease: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(inrelease).unwrap();
    let start = text.find("\n\n").unwrap() + 2;
    let end = text.find("\n-----BEGIN PGP SIGNATURE-----").unwrap();
    text.as_bytes()[start..end].to_vec()
}

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

/// Already-serialised packets, for `pgp::armor::write`.
struct RawBytes(Vec<u8>);

impl Serialize for RawBytes {
    fn to_writer<W: std::io::Write>(&self, w: &mut W) -> pgp::errors::Result<()> {
        w.write_all(&self.0)?;
        Ok(())
    }
    fn write_len(&self) -> usize {
        self.0.len()
    }
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

// ---------------------------------------------------------------------------
// Self-made keys.

const UID: &str = "Test Archive <archive@example.invalid>";

/// An ed25519 primary key (certify + sign) with, optionally, a signing subkey.
fn make_key(with_subkey: bool) -> SignedSecretKey {
    make_key_at(with_subkey, Timestamp::now())
}

fn make_key_at(with_subkey: bool, created: Timestamp) -> SignedSecretKey {
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .created_at(created)
        .primary_user_id(UID.into());
    if with_subkey {
        let mut sub = SubkeyParamsBuilder::default();
        sub.key_type(KeyType::Ed25519Legacy)
            .can_sign(true)
            .created_at(created);
        params.subkeys(vec![sub.build().unwrap()]);
    }
    params
        .build()
        .unwrap()
        .generate(rand::thread_rng())
        .unwrap()
}

fn fpr(k: &impl KeyDetails) -> String {
    format!("{:X}", k.fingerprint())
}

const RELEASE: &str = "Origin: Test\nLabel: Test\nSuite: stable\nCodename: test\nDate: Thu, 26 Nov 2026 00:00:00 UTC\nSHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages\n";

fn clearsign(text: &str, key: &impl pgp::types::SigningKey) -> Vec<u8> {
    CleartextSignedMessage::sign(rand::thread_rng(), text, key, &Password::empty())
        .unwrap()
        .to_armored_string(ArmorOptions::default())
        .unwrap()
        .into_bytes()
}

fn detach_sign(data: &[u8], key: &impl pgp::types::SigningKey) -> DetachedSignature {
    DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        key,
        &Password::empty(),
        HashAlgorithm::Sha256,
        data,
    )
    .unwrap()
}

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

/// Re-certifies the user id with a key expiration time, replacing the
/// original self-signature.
fn with_expiry(key: &SignedSecretKey, expires_after: Duration) -> SignedPublicKey {
    let mut public = key.to_public_key();
    let mut flags = KeyFlags::default();
    flags.set_certify(true);
    flags.set_sign(true);
    let mut config = SignatureConfig::v4(
        SignatureType::CertPositive,
        key.algorithm(),
        HashAlgorithm::Sha256,
    );
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now())).unwrap(),
        Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint())).unwrap(),
        Subpacket::regular(SubpacketData::KeyFlags(flags)).unwrap(),
        Subpacket::regular(SubpacketData::KeyExpirationTime(
            pgp::types::Duration::try_from(expires_after).unwrap(),
        ))
        .unwrap(),
    ];
    let user = &mut public.details.users[0];
    let sig = config
        .sign_certification(
            &key.primary_key,
            key.primary_key.public_key(),
            &Password::empty(),
            Tag::UserId,
            &user.id,
        )
        .unwrap();
    user.signatures = vec![sig];
    public
}

fn now_secs() -> u32 {
    Timestamp::now().as_secs()
}

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
