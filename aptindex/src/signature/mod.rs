//! OpenPGP signatures on InRelease and Release.gpg: keyrings (binary `.gpg`
//! with many keys and subkeys, or ASCII-armoured `.asc`), verification that
//! reports which key signed, and clear errors for bad, unknown-key and
//! expired signatures.
//!
//! The cryptography is done by the pure-Rust [`pgp`] crate (rpgp). This
//! module adds what apt and `gpgv` add around it:
//!
//! * **Splitting a clearsigned InRelease** the way apt's
//!   `SplitClearSignedFile` does: the file must start with
//!   `-----BEGIN PGP SIGNED MESSAGE-----`; armor header lines must not start
//!   with a dash; message lines starting with a dash must be dash-escaped
//!   (`- `); after the signature blocks only blank lines may follow. The
//!   signed text returned is what apt hands to its parser: each line with its
//!   line ending, trailing spaces and tabs removed (OpenPGP does not sign
//!   them), the `- ` escape removed, lines joined by `\n`, **without** a final
//!   newline (the last line break belongs to the armor).
//! * **Key validity**: a key is only used through valid self-signatures. For
//!   the primary key, the newest valid self-signature (user id certification
//!   or direct key signature) gives its key flags and expiry; for a subkey,
//!   its newest valid binding signature, and a signing subkey also needs a
//!   valid back-signature. A signature by a key not flagged for signing, or
//!   by a key without a valid self-signature, is [`SignatureError::Bad`].
//! * **Time**: a signature is [`SignatureError::Expired`] when the (sub)key or
//!   its primary key is revoked (any valid revocation signature), when the key
//!   had expired when the signature was made, when the key has expired at
//!   verification time (what `gpgv` reports as `EXPKEYSIG`, which apt
//!   rejects), or when the signature itself has expired. The `*_at` methods
//!   take the verification time explicitly (for tests, and for checking old
//!   files); the plain ones use the clock. As apt passes
//!   `--ignore-time-conflict` to gpgv, a signature made "before" its key was
//!   created, or in the future, is not rejected.
//! * **Several signatures** (Debian signs with two archive keys): the result
//!   is good if at least one signature by a key in the keyring verifies and
//!   no signature by a key in the keyring fails to match the data (a
//!   mismatch is [`SignatureError::Bad`] even next to a good signature, as
//!   apt fails on "at least one invalid signature"). Signatures by keys not
//!   in the keyring are ignored, and so are signatures by known keys that are
//!   expired, revoked or not usable for signing, as long as another signature
//!   is good (this is what lets an archive rotate keys). With no good
//!   signature: a mismatch or unusable key gives [`SignatureError::Bad`],
//!   else an expired one [`SignatureError::Expired`], else
//!   [`SignatureError::UnknownKey`] listing the issuers.
//! * Detached signatures may be armoured or binary (apt itself only accepts
//!   armoured `Release.gpg` files).
//! * Signatures using MD5 or SHA-1 as digest are rejected as weak (apt does
//!   the same).
//!
//! Not checked: third-party revocation keys (designated revokers),
//! revocation reasons (every revocation counts as hard), key usage by
//! algorithm for keys without key-flags subpackets (they are treated as
//! signing-capable, like GnuPG), and notations / critical unknown subpackets.
//!
//! # Making keys and signatures for tests
//!
//! With `pgp` 0.21 (see `aptindex/tests/formats/signature.rs` and
//! `aptindex/tests/formats/signature_gpgv.rs`, which checks that the real `gpgv` accepts the result):
//!
//! ```no_run
//! use pgp::composed::{ArmorOptions, CleartextSignedMessage, DetachedSignature,
//!     KeyType, SecretKeyParamsBuilder};
//! use pgp::crypto::hash::HashAlgorithm;
//! use pgp::ser::Serialize;
//! use pgp::types::Password;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // ed25519 "legacy" (EdDSA) v4 key: understood by GnuPG 2.2 (KeyType::Ed25519 is not).
//! let mut params = SecretKeyParamsBuilder::default();
//! params.key_type(KeyType::Ed25519Legacy).can_certify(true).can_sign(true)
//!     .primary_user_id("Test Archive <archive@example.invalid>".into());
//! let key = params.build()?.generate(rand::thread_rng())?;
//! let keyring_gpg: Vec<u8> = key.to_public_key().to_bytes()?;            // binary
//! let keyring_asc = key.to_public_key().to_armored_string(ArmorOptions::default())?;
//! let release = "Origin: Test\nSuite: stable\n";
//! let inrelease = CleartextSignedMessage::sign(rand::thread_rng(), release, &*key,
//!     &Password::empty())?.to_armored_string(ArmorOptions::default())?;
//! let release_gpg = DetachedSignature::sign_binary_data(rand::thread_rng(), &*key,
//!     &Password::empty(), HashAlgorithm::Sha256, release.as_bytes())?
//!     .to_armored_string(ArmorOptions::default())?;
//! # Ok(()) }
//! ```

mod armor;
mod cert;
mod check;

use std::time::SystemTime;

use pgp::packet::Signature;

use armor::{detached_signatures, parse_keys, split_clearsigned};
use cert::{unix_secs, Cert, Component};
use check::{check, issuer_names, Failure};

/// A set of public keys that signatures are checked against.
pub struct Keyring {
    certs: Vec<Cert>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field(
                "keys",
                &self
                    .certs
                    .iter()
                    .map(|c| c.fingerprint.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Which key made a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Upper-case hex fingerprint of the (sub)key that signed.
    pub fingerprint: String,
    /// Upper-case hex fingerprint of the primary key.
    pub primary_fingerprint: String,
    /// The primary key's first user id, if any.
    pub user_id: Option<String>,
}

/// Signature checking failed.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The keyring could not be read.
    #[error("keyring: {0}")]
    Keyring(String),
    /// The signature could not be parsed.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// No key in the keyring issued any of the signatures.
    #[error("no signature by a key in the keyring (signature issuers: {issuers})")]
    UnknownKey {
        /// Issuer key ids / fingerprints seen.
        issuers: String,
    },
    /// A signature by a known key does not match the data.
    #[error("BAD signature by {fingerprint}: {reason}")]
    Bad {
        /// The key.
        fingerprint: String,
        /// Why.
        reason: String,
    },
    /// The signing key, or the signature, has expired or was revoked.
    #[error("signature by {fingerprint} is not valid now: {reason}")]
    Expired {
        /// The key.
        fingerprint: String,
        /// Why.
        reason: String,
    },
}

impl Keyring {
    /// Reads keys from bytes: binary packets or ASCII armour, one or many keys.
    ///
    /// Empty input gives an empty keyring.
    pub fn from_bytes(data: &[u8]) -> Result<Keyring, SignatureError> {
        let keys = parse_keys(data).map_err(|e| SignatureError::Keyring(e.to_string()))?;
        Ok(Keyring {
            certs: keys.into_iter().map(Cert::from_signed).collect(),
        })
    }

    /// Reads and merges several keyring files; errors name the file.
    pub fn from_files<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Keyring, SignatureError> {
        let mut certs = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let data = std::fs::read(path).map_err(|e| {
                SignatureError::Keyring(format!("{}: cannot read: {e}", path.display()))
            })?;
            let keys = parse_keys(&data)
                .map_err(|e| SignatureError::Keyring(format!("{}: {e}", path.display())))?;
            certs.extend(keys.into_iter().map(Cert::from_signed));
        }
        Ok(Keyring { certs })
    }

    /// Number of primary keys.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Upper-case hex fingerprints of the primary keys, in keyring order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs.iter().map(|c| c.fingerprint.clone()).collect()
    }

    /// Verifies a clearsigned InRelease; returns the signed text and the signer.
    ///
    /// The text is what apt parses (see the module documentation): dash
    /// escapes and trailing whitespace removed, `\n` line ends, no final
    /// newline.
    pub fn verify_clearsigned(&self, data: &[u8]) -> Result<(Vec<u8>, Signer), SignatureError> {
        self.verify_clearsigned_at(data, SystemTime::now())
    }

    /// As [`Keyring::verify_clearsigned`], judging expiry at time `at`
    /// instead of now.
    pub fn verify_clearsigned_at(
        &self,
        data: &[u8],
        at: SystemTime,
    ) -> Result<(Vec<u8>, Signer), SignatureError> {
        let (text, sigs) = split_clearsigned(data)?;
        let signer = self.verify_signatures(&sigs, &text, unix_secs(at))?;
        Ok((text, signer))
    }

    /// Verifies a detached signature (`Release.gpg`, armoured or binary) over `data`.
    pub fn verify_detached(&self, data: &[u8], signature: &[u8]) -> Result<Signer, SignatureError> {
        self.verify_detached_at(data, signature, SystemTime::now())
    }

    /// As [`Keyring::verify_detached`], judging expiry at time `at` instead
    /// of now.
    pub fn verify_detached_at(
        &self,
        data: &[u8],
        signature: &[u8],
        at: SystemTime,
    ) -> Result<Signer, SignatureError> {
        let sigs = detached_signatures(signature)?;
        self.verify_signatures(&sigs, data, unix_secs(at))
    }

    /// Keys in the keyring that one of the signature's issuer subpackets names.
    fn candidates<'a>(&'a self, sig: &Signature) -> Vec<(&'a Cert, &'a Component)> {
        let fprs = sig.issuer_fingerprint();
        let ids = sig.issuer_key_id();
        self.certs
            .iter()
            .flat_map(|c| c.components.iter().map(move |k| (c, k)))
            .filter(|(_, k)| {
                fprs.iter().any(|f| **f == k.fingerprint) || ids.iter().any(|i| **i == k.key_id)
            })
            .collect()
    }

    fn verify_signatures(
        &self,
        sigs: &[Signature],
        data: &[u8],
        now: u64,
    ) -> Result<Signer, SignatureError> {
        if sigs.is_empty() {
            return Err(SignatureError::Malformed(
                "no (supported) signature packets".to_string(),
            ));
        }
        let mut issuers: Vec<String> = Vec::new();
        let mut good: Option<Signer> = None;
        let mut mismatch: Option<SignatureError> = None;
        let mut bad: Option<SignatureError> = None;
        let mut expired: Option<SignatureError> = None;
        for sig in sigs {
            let candidates = self.candidates(sig);
            if candidates.is_empty() {
                issuers.extend(issuer_names(sig));
                continue;
            }
            // A signature is judged by its best candidate key (several keys
            // can share a 64-bit key id, or a key can be listed twice).
            let mut failures = Vec::new();
            let mut signer = None;
            for (cert, key) in candidates {
                match check(cert, key, sig, data, now) {
                    Ok(s) => {
                        signer = Some(s);
                        break;
                    }
                    Err(f) => failures.push(f),
                }
            }
            if let Some(s) = signer {
                good.get_or_insert(s);
                continue;
            }
            for f in failures {
                match f {
                    Failure::Mismatch(e) => mismatch.get_or_insert(e),
                    Failure::Unusable(e) => bad.get_or_insert(e),
                    Failure::Expired(e) => expired.get_or_insert(e),
                };
            }
        }
        // Like apt (gpgv exits 1, "At least one invalid signature was
        // encountered"), a signature by a known key that does not match the
        // data fails the whole file, even next to a good one.
        if let Some(e) = mismatch {
            return Err(e);
        }
        if let Some(s) = good {
            return Ok(s);
        }
        if let Some(e) = bad.or(expired) {
            return Err(e);
        }
        issuers.dedup();
        Err(SignatureError::UnknownKey {
            issuers: issuers.join(", "),
        })
    }
}
