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

mod debian;
mod own_keys;
mod validity;

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
