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
//! With `pgp` 0.21 (see `tests/signature.rs` and `tests/signature_gpgv.rs`,
//! which checks that the real `gpgv` accepts the result):
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

use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{PublicKey, PublicSubkey, Signature, SignatureType, SubpacketData};
use pgp::types::{Fingerprint, KeyDetails, KeyId, Tag};

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

/// One transferable public key (certificate), with validity worked out once
/// at load time.
struct Cert {
    /// Upper-case hex fingerprint of the primary key.
    fingerprint: String,
    /// First user id.
    user_id: Option<String>,
    /// Why the whole certificate is unusable (no valid self-signature).
    invalid: Option<String>,
    /// Primary key first, then the subkeys.
    components: Vec<Component>,
}

/// The key material of a primary key or a subkey.
enum Material {
    Primary(PublicKey),
    Sub(PublicSubkey),
}

/// A primary key or subkey, and what its self-signatures say about it.
struct Component {
    material: Material,
    fingerprint: Fingerprint,
    key_id: KeyId,
    /// Upper-case hex fingerprint.
    hex: String,
    /// `Err(reason)` when this key may not make data signatures.
    can_sign: Result<(), String>,
    /// Expiry (Unix seconds) of this key, if any.
    expires: Option<u64>,
    /// Set when a valid revocation signature exists.
    revoked: Option<String>,
}

impl Component {
    fn verify(&self, sig: &Signature, data: &[u8]) -> pgp::errors::Result<()> {
        match &self.material {
            Material::Primary(k) => sig.verify(k, data),
            Material::Sub(k) => sig.verify(k, data),
        }
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs(),
        Err(_) => 0,
    }
}

/// Formats Unix seconds as an RFC 3339 UTC date for error messages.
fn fmt_time(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("@{secs}"))
}

fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

fn created_secs(sig: &Signature) -> Option<u64> {
    sig.created().map(|t| u64::from(t.as_secs()))
}

/// Expiry (Unix seconds) from a self-signature's key expiration subpacket.
fn expiry_from(sig: &Signature, key_created: u64) -> Option<u64> {
    sig.key_expiration_time()
        .map(|d| u64::from(d.as_secs()))
        .filter(|&d| d != 0)
        .map(|d| key_created + d)
}

fn revocation_reason(sig: &Signature) -> String {
    let when = created_secs(sig)
        .map(|t| format!(" on {}", fmt_time(t)))
        .unwrap_or_default();
    match sig.revocation_reason_string() {
        Some(r) if !r.is_empty() => {
            format!("revoked{when} ({})", String::from_utf8_lossy(r))
        }
        _ => format!("revoked{when}"),
    }
}

/// Picks the newest of several valid self-signatures.
fn newest<'a>(sigs: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    sigs.max_by_key(|s| created_secs(s).unwrap_or(0))
}

impl Cert {
    fn from_signed(key: SignedPublicKey) -> Cert {
        let primary = key.primary_key;
        let fingerprint = primary.fingerprint();
        let hex = format!("{fingerprint:X}");
        let user_id = key
            .details
            .users
            .first()
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned());
        let primary_created = u64::from(primary.created_at().as_secs());

        // Revocation of the whole key.
        let revoked = key
            .details
            .revocation_signatures
            .iter()
            .find(|s| {
                s.typ() == Some(SignatureType::KeyRevocation) && s.verify_key(&primary).is_ok()
            })
            .map(revocation_reason);

        // Valid self-signatures: direct key signatures and user id certifications.
        let direct = key
            .details
            .direct_signatures
            .iter()
            .filter(|s| s.typ() == Some(SignatureType::Key) && s.verify_key(&primary).is_ok());
        let certifications = key.details.users.iter().flat_map(|u| {
            let primary = &primary;
            u.signatures.iter().filter(move |s| {
                s.is_certification()
                    && s.typ() != Some(SignatureType::CertRevocation)
                    && s.verify_certification(primary, Tag::UserId, &u.id).is_ok()
            })
        });
        let self_sig = newest(direct.chain(certifications));

        let invalid = if self_sig.is_none() {
            Some("key has no valid self-signature".to_string())
        } else {
            None
        };
        let (can_sign, expires) = match self_sig {
            None => (Err("key has no valid self-signature".to_string()), None),
            Some(sig) => {
                let can = if !has_key_flags(sig) || sig.key_flags().sign() {
                    Ok(())
                } else {
                    Err("primary key is not flagged for signing".to_string())
                };
                (can, expiry_from(sig, primary_created))
            }
        };

        let mut components = vec![Component {
            fingerprint: fingerprint.clone(),
            key_id: primary.legacy_key_id(),
            hex: hex.clone(),
            can_sign,
            expires,
            revoked,
            material: Material::Primary(primary.clone()),
        }];

        for sub in key.public_subkeys {
            let sub_fpr = sub.key.fingerprint();
            let sub_created = u64::from(sub.key.created_at().as_secs());
            let revoked = sub
                .signatures
                .iter()
                .find(|s| {
                    s.typ() == Some(SignatureType::SubkeyRevocation)
                        && s.verify_subkey_binding(&primary, &sub.key).is_ok()
                })
                .map(revocation_reason);
            let binding = newest(sub.signatures.iter().filter(|s| {
                s.typ() == Some(SignatureType::SubkeyBinding)
                    && s.verify_subkey_binding(&primary, &sub.key).is_ok()
            }));
            let (can_sign, expires) = match binding {
                None => (
                    Err("subkey has no valid binding signature".to_string()),
                    None,
                ),
                Some(sig) => {
                    let flagged = !has_key_flags(sig) || sig.key_flags().sign();
                    let backsig_ok = sig
                        .embedded_signature()
                        .is_some_and(|b| b.verify_primary_key_binding(&sub.key, &primary).is_ok());
                    let can = if !flagged {
                        Err("subkey is not flagged for signing".to_string())
                    } else if !backsig_ok {
                        Err("signing subkey has no valid back-signature".to_string())
                    } else {
                        Ok(())
                    };
                    (can, expiry_from(sig, sub_created))
                }
            };
            components.push(Component {
                key_id: sub.key.legacy_key_id(),
                hex: format!("{sub_fpr:X}"),
                fingerprint: sub_fpr,
                can_sign,
                expires,
                revoked,
                material: Material::Sub(sub.key),
            });
        }

        Cert {
            fingerprint: hex,
            user_id,
            invalid,
            components,
        }
    }
}

/// Skips leading ASCII whitespace.
fn trim_start(data: &[u8]) -> &[u8] {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data.get(start..).unwrap_or_default()
}

/// Splits bytes into lines the way apt's `LineBuffer` reads them: line ending
/// and trailing spaces/tabs removed.
fn apt_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    data.split(|&b| b == b'\n').map(|line| {
        let end = line
            .iter()
            .rposition(|b| !matches!(b, b'\r' | b'\n'))
            .map_or(0, |p| p + 1);
        let line = line.get(..end).unwrap_or_default();
        let end = line
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(0, |p| p + 1);
        line.get(..end).unwrap_or_default()
    })
}

const BEGIN_SIGNED: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &[u8] = b"-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &[u8] = b"-----END PGP SIGNATURE-----";
const BEGIN_PUBKEY: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
const END_PUBKEY: &[u8] = b"-----END PGP PUBLIC KEY BLOCK-----";

/// Collects ASCII-armoured blocks (`begin` … `end` lines, inclusive) from
/// lines. Inside a block, no line other than `end` may start with a dash.
/// Outside blocks, when `strict`, only blank lines are allowed (otherwise
/// other text is skipped).
fn armored_blocks<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    begin: &[u8],
    end: &[u8],
    what: &str,
    strict: bool,
) -> Result<Vec<Vec<u8>>, String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for (n, line) in lines.enumerate() {
        match current.as_mut() {
            None => {
                if line == begin {
                    current = Some(line.to_vec());
                } else if strict && !line.is_empty() {
                    return Err(format!(
                        "unexpected text outside the {what} blocks (line {} of the block part)",
                        n + 1
                    ));
                }
            }
            Some(block) => {
                block.push(b'\n');
                block.extend_from_slice(line);
                if line == end {
                    blocks.extend(current.take());
                } else if line.starts_with(b"-") {
                    return Err(format!(
                        "unexpected line starting with a dash inside the {what} block"
                    ));
                }
            }
        }
    }
    if current.is_some() {
        return Err(format!("{what} block is not closed"));
    }
    Ok(blocks)
}

/// Parses the signature packets of one armoured block or of binary data.
fn parse_signatures(data: &[u8], out: &mut Vec<Signature>) -> Result<(), SignatureError> {
    let (iter, _headers) = DetachedSignature::from_reader_many(data)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    for sig in iter {
        let sig = sig.map_err(|e| SignatureError::Malformed(e.to_string()))?;
        out.push(sig.signature);
    }
    Ok(())
}

/// Parses a detached signature file: binary packets, or one or more armoured
/// `PGP SIGNATURE` blocks.
fn detached_signatures(signature: &[u8]) -> Result<Vec<Signature>, SignatureError> {
    let trimmed = trim_start(signature);
    let mut sigs = Vec::new();
    match trimmed.first() {
        None => return Err(SignatureError::Malformed("empty signature".to_string())),
        Some(b) if b & 0x80 != 0 => parse_signatures(trimmed, &mut sigs)?,
        Some(_) => {
            let blocks = armored_blocks(
                apt_lines(trimmed),
                BEGIN_SIGNATURE,
                END_SIGNATURE,
                "signature",
                true,
            )
            .map_err(SignatureError::Malformed)?;
            if blocks.is_empty() {
                return Err(SignatureError::Malformed(
                    "no PGP SIGNATURE block found".to_string(),
                ));
            }
            for block in blocks {
                parse_signatures(&block, &mut sigs)?;
            }
        }
    }
    Ok(sigs)
}

/// Splits a clearsigned message into the signed text (as apt sees it) and
/// its signatures.
fn split_clearsigned(data: &[u8]) -> Result<(Vec<u8>, Vec<Signature>), SignatureError> {
    let malformed = |m: &str| SignatureError::Malformed(m.to_string());
    let mut lines = apt_lines(data);
    if lines.next() != Some(BEGIN_SIGNED) {
        return Err(malformed(
            "not a clearsigned message: first line is not -----BEGIN PGP SIGNED MESSAGE-----",
        ));
    }
    // Armor headers ("Hash: ..."), up to an empty line.
    loop {
        match lines.next() {
            None => return Err(malformed("clearsigned message ends in its armor headers")),
            Some([]) => break,
            Some(l) if l.starts_with(b"-") => {
                return Err(malformed(
                    "clearsigned message has an armor header line starting with a dash",
                ))
            }
            Some(_) => {}
        }
    }
    // The text, up to the first signature block.
    let mut text = Vec::with_capacity(data.len());
    let mut first = true;
    loop {
        let Some(line) = lines.next() else {
            return Err(malformed("clearsigned message has no signature block"));
        };
        if line == BEGIN_SIGNATURE {
            break;
        }
        let line = if line.starts_with(b"-") {
            line.strip_prefix(b"- ").ok_or_else(|| {
                malformed(
                    "clearsigned text has a line starting with a dash that is not dash-escaped",
                )
            })?
        } else {
            line
        };
        if !first {
            text.push(b'\n');
        }
        first = false;
        text.extend_from_slice(line);
    }
    let blocks = armored_blocks(
        std::iter::once(BEGIN_SIGNATURE).chain(lines),
        BEGIN_SIGNATURE,
        END_SIGNATURE,
        "signature",
        true,
    )
    .map_err(SignatureError::Malformed)?;
    let mut sigs = Vec::new();
    for block in blocks {
        parse_signatures(&block, &mut sigs)?;
    }
    Ok((text, sigs))
}

/// Parses the keys of one keyring file (binary or armoured).
fn parse_keys(data: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let trimmed = trim_start(data);
    let mut keys = Vec::new();
    let mut parse = |bytes: &[u8]| -> Result<(), String> {
        let (iter, _headers) =
            SignedPublicKey::from_reader_many(bytes).map_err(|e| e.to_string())?;
        for key in iter {
            keys.push(key.map_err(|e| e.to_string())?);
        }
        Ok(())
    };
    match trimmed.first() {
        None => {}
        Some(b) if b & 0x80 != 0 => parse(trimmed)?,
        Some(_) => {
            // Text around the blocks (comments, other block types) is
            // ignored, as gpg does; only public key blocks are read.
            let blocks = armored_blocks(
                apt_lines(trimmed),
                BEGIN_PUBKEY,
                END_PUBKEY,
                "PGP PUBLIC KEY",
                false,
            )?;
            if blocks.is_empty() {
                return Err(
                    "neither binary OpenPGP data nor an armoured PGP PUBLIC KEY BLOCK".to_string(),
                );
            }
            for block in blocks {
                parse(&block)?;
            }
        }
    }
    Ok(keys)
}

impl Keyring {
    /// Reads keys from bytes: binary packets or ASCII armour, one or many keys.
    ///
    /// Empty input gives an empty keyring.
    pub fn from_bytes(data: &[u8]) -> Result<Keyring, SignatureError> {
        let keys = parse_keys(data).map_err(SignatureError::Keyring)?;
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

/// How one signature failed against one key.
enum Failure {
    /// The signature does not match the data (tampering or corruption):
    /// fatal even if another signature is good.
    Mismatch(SignatureError),
    /// The key may not make this signature (not signing-capable, no valid
    /// self-signature, weak digest, not a data signature).
    Unusable(SignatureError),
    /// Good signature, but expired or revoked key, or expired signature.
    Expired(SignatureError),
}

/// Issuer fingerprints (or else key ids) of a signature, for error messages.
fn issuer_names(sig: &Signature) -> Vec<String> {
    let mut names: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| format!("{f:X}"))
        .collect();
    if names.is_empty() {
        names = sig
            .issuer_key_id()
            .iter()
            .map(|i| hex::encode_upper(i.as_ref()))
            .collect();
    }
    if names.is_empty() {
        names.push("(no issuer)".to_string());
    }
    names
}

/// Checks one signature against one key of the keyring.
fn check(
    cert: &Cert,
    key: &Component,
    sig: &Signature,
    data: &[u8],
    now: u64,
) -> Result<Signer, Failure> {
    let error = |reason: String| SignatureError::Bad {
        fingerprint: key.hex.clone(),
        reason,
    };
    let bad = |reason: String| Failure::Unusable(error(reason));
    let expired = |reason: String| {
        Failure::Expired(SignatureError::Expired {
            fingerprint: key.hex.clone(),
            reason,
        })
    };
    match sig.typ() {
        Some(SignatureType::Binary | SignatureType::Text) => {}
        other => return Err(bad(format!("not a data signature (type {other:?})"))),
    }
    match sig.hash_alg() {
        Some(h @ (HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160)) => {
            return Err(bad(format!("weak digest algorithm {h:?}")))
        }
        Some(_) => {}
        None => return Err(bad("unknown signature version".to_string())),
    }
    if let Some(reason) = &cert.invalid {
        return Err(bad(reason.clone()));
    }
    key.can_sign.clone().map_err(bad)?;
    key.verify(sig, data).map_err(|e| {
        // rpgp's message spans lines (an assertion with both hash
        // prefixes): one line, after what it means.
        let detail = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Failure::Mismatch(error(format!(
            "the signature does not match the signed data ({detail})"
        )))
    })?;

    // The signature is cryptographically good; now the time checks.
    let Some(created) = created_secs(sig) else {
        return Err(bad("signature has no creation time".to_string()));
    };
    let primary = cert.components.first();
    for k in std::iter::once(key).chain(primary) {
        if let Some(r) = &k.revoked {
            return Err(expired(format!("key {} {r}", k.hex)));
        }
    }
    if let Some(d) = sig.signature_expiration_time() {
        let d = u64::from(d.as_secs());
        if d != 0 && created + d <= now {
            return Err(expired(format!(
                "signature expired on {}",
                fmt_time(created + d)
            )));
        }
    }
    for k in std::iter::once(key).chain(primary) {
        if let Some(exp) = k.expires {
            if exp <= created {
                return Err(expired(format!(
                    "key {} had expired on {}, before the signature was made on {}",
                    k.hex,
                    fmt_time(exp),
                    fmt_time(created)
                )));
            }
            if exp <= now {
                return Err(expired(format!(
                    "key {} expired on {}",
                    k.hex,
                    fmt_time(exp)
                )));
            }
        }
    }
    Ok(Signer {
        fingerprint: key.hex.clone(),
        primary_fingerprint: cert.fingerprint.clone(),
        user_id: cert.user_id.clone(),
    })
}
