//! A throw-away OpenPGP signing key for test repositories.
//!
//! [`TestKey`] wraps an Ed25519 key made with the `pgp` crate. It produces what an APT
//! repository needs: the public key (binary for a `.gpg` keyring file, armoured for `.asc`,
//! both usable with `signed-by=`), a clear-signed `InRelease` and an armoured detached
//! `Release.gpg`. Key generation is fast, and [`TestKey::shared`] caches one key per process
//! so that many tests can sign with the same key without generating it again.
//! [`TestKey::clearsign_expired`] and [`TestKey::detach_sign_expired`] make signatures that
//! expired an hour ago (made two hours ago, valid for one), which apt refuses.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use pgp::composed::SubpacketConfig;
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, DetachedSignature, KeyType, SecretKeyParamsBuilder,
    SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Timestamp};

/// The hashed subpackets of a signature made two hours ago that expired
/// after one, by `key`.
fn expired_subpackets(key: &SignedSecretKey) -> Result<Vec<Subpacket>> {
    let made = Timestamp::from_secs(Timestamp::now().as_secs().saturating_sub(7200));
    Ok(vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(made))?,
        Subpacket::regular(SubpacketData::SignatureExpirationTime(
            pgp::types::Duration::from_secs(3600),
        ))?,
        Subpacket::regular(SubpacketData::IssuerFingerprint(
            key.primary_key.fingerprint(),
        ))?,
    ])
}

/// An OpenPGP key pair (Ed25519, primary key signs) used to sign test repositories.
#[derive(Clone, Debug)]
pub struct TestKey {
    secret: SignedSecretKey,
    public: SignedPublicKey,
}

impl TestKey {
    /// Generates a new key with the given user id, e.g. `"Test Repo <repo@test>"`.
    pub fn generate(user_id: &str) -> Result<TestKey> {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(user_id.into());
        let params = params
            .build()
            .map_err(|e| anyhow!("building OpenPGP key parameters for {user_id:?}: {e}"))?;
        let secret = params
            .generate(rand::thread_rng())
            .with_context(|| format!("generating OpenPGP key for {user_id:?}"))?;
        let public = SignedPublicKey::from(secret.clone());
        Ok(TestKey { secret, public })
    }

    /// The process-wide default key (`Testkit Repository <repo@testkit.invalid>`), generated once.
    pub fn shared() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| {
            TestKey::generate("Testkit Repository <repo@testkit.invalid>")
                .unwrap_or_else(|e| panic!("testkit: cannot generate the shared key: {e:#}"))
        })
    }

    /// A second process-wide key, different from [`TestKey::shared`]: sign with it to test
    /// that a repository signed by an untrusted key is refused.
    pub fn shared_other() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| {
            TestKey::generate("Testkit Impostor <impostor@testkit.invalid>")
                .unwrap_or_else(|e| panic!("testkit: cannot generate the second key: {e:#}"))
        })
    }

    /// The key's fingerprint in upper-case hex (as `gpg --with-colons` shows it).
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.public.fingerprint().as_bytes())
    }

    /// The public key, ASCII-armoured (content of a `.asc` keyring file).
    pub fn public_armored(&self) -> String {
        self.public
            .to_armored_string(ArmorOptions::default())
            .unwrap_or_else(|e| panic!("testkit: armouring a public key failed: {e}"))
    }

    /// The public key as binary OpenPGP packets (content of a `.gpg` keyring file).
    pub fn public_binary(&self) -> Vec<u8> {
        self.public
            .to_bytes()
            .unwrap_or_else(|e| panic!("testkit: serializing a public key failed: {e}"))
    }

    /// Writes the public key to `path`: binary if the name ends in `.gpg`, armoured otherwise.
    pub fn write_public(&self, path: &Path) -> Result<()> {
        let bytes = if path.extension().is_some_and(|e| e == "gpg") {
            self.public_binary()
        } else {
            self.public_armored().into_bytes()
        };
        std::fs::write(path, bytes).with_context(|| format!("writing key to {}", path.display()))
    }

    /// Clear-signs `data` (an `InRelease` file from `Release` content). `data` must be UTF-8.
    pub fn clearsign(&self, data: &[u8]) -> Result<Vec<u8>> {
        let text = std::str::from_utf8(data).context("clear-signing: text is not UTF-8")?;
        let msg = CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &self.secret.primary_key,
            &Password::empty(),
        )
        .context("clear-signing")?;
        msg.to_armored_bytes(ArmorOptions::default())
            .context("armouring a clear-signed message")
    }

    /// Like [`TestKey::clearsign`], with a signature that expired an hour ago.
    pub fn clearsign_expired(&self, data: &[u8]) -> Result<Vec<u8>> {
        let text = std::str::from_utf8(data).context("clear-signing: text is not UTF-8")?;
        let key = &self.secret.primary_key;
        let mut config = SignatureConfig::from_key(rand::thread_rng(), key, SignatureType::Text)
            .context("signature config")?;
        config.hashed_subpackets = expired_subpackets(&self.secret)?;
        config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
            key.legacy_key_id(),
        ))?];
        let msg = CleartextSignedMessage::new(text, config, key, &Password::empty())
            .context("clear-signing (expired)")?;
        msg.to_armored_bytes(ArmorOptions::default())
            .context("armouring a clear-signed message")
    }

    /// Like [`TestKey::detach_sign`], with a signature that expired an hour ago.
    pub fn detach_sign_expired(&self, data: &[u8]) -> Result<Vec<u8>> {
        let sig = DetachedSignature::sign_binary_data_with_subpackets(
            rand::thread_rng(),
            &self.secret.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
            SubpacketConfig::UserDefined {
                hashed: expired_subpackets(&self.secret)?,
                unhashed: Vec::new(),
            },
        )
        .context("detach-signing (expired)")?;
        sig.to_armored_bytes(ArmorOptions::default())
            .context("armouring a detached signature")
    }

    /// An armoured detached signature of `data` (a `Release.gpg` file).
    pub fn detach_sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.secret.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .context("detach-signing")?;
        sig.to_armored_bytes(ArmorOptions::default())
            .context("armouring a detached signature")
    }
}
