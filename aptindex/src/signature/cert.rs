//! What a keyring's certificates say about their keys, worked out once at
//! load time: which primary keys and subkeys have valid self-signatures,
//! may make data signatures, expire or are revoked. Kept apart from the
//! verification of signatures ([`super::check`]) because it is about keys
//! only.

use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::SignedPublicKey;
use pgp::packet::{PublicKey, PublicSubkey, Signature, SignatureType, SubpacketData};
use pgp::types::{Fingerprint, KeyDetails, KeyId, Tag};

/// Why a key may not make data signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Unusable {
    /// The primary key has no valid self-signature.
    #[error("key has no valid self-signature")]
    NoSelfSignature,
    /// The primary key's self-signature has key flags without "sign".
    #[error("primary key is not flagged for signing")]
    PrimaryNotForSigning,
    /// The subkey has no valid binding signature.
    #[error("subkey has no valid binding signature")]
    NoBinding,
    /// The subkey's binding signature has key flags without "sign".
    #[error("subkey is not flagged for signing")]
    SubkeyNotForSigning,
    /// The signing subkey's binding has no valid primary key binding
    /// (back-signature).
    #[error("signing subkey has no valid back-signature")]
    NoBackSignature,
}

/// One transferable public key (certificate), with validity worked out once
/// at load time.
pub(super) struct Cert {
    /// Upper-case hex fingerprint of the primary key.
    pub(super) fingerprint: String,
    /// First user id.
    pub(super) user_id: Option<String>,
    /// Why the whole certificate is unusable (no valid self-signature).
    pub(super) invalid: Option<Unusable>,
    /// Primary key first, then the subkeys.
    pub(super) components: Vec<Component>,
}

/// The key material of a primary key or a subkey.
pub(super) enum Material {
    Primary(PublicKey),
    Sub(PublicSubkey),
}

/// A primary key or subkey, and what its self-signatures say about it.
pub(super) struct Component {
    pub(super) material: Material,
    pub(super) fingerprint: Fingerprint,
    pub(super) key_id: KeyId,
    /// Upper-case hex fingerprint.
    pub(super) hex: String,
    /// `Err(reason)` when this key may not make data signatures.
    pub(super) can_sign: Result<(), Unusable>,
    /// Expiry (Unix seconds) of this key, if any.
    pub(super) expires: Option<u64>,
    /// Set when a valid revocation signature exists.
    pub(super) revoked: Option<String>,
}

impl Component {
    pub(super) fn verify(&self, sig: &Signature, data: &[u8]) -> pgp::errors::Result<()> {
        match &self.material {
            Material::Primary(k) => sig.verify(k, data),
            Material::Sub(k) => sig.verify(k, data),
        }
    }
}

pub(super) fn unix_secs(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs(),
        Err(_) => 0,
    }
}

/// Formats Unix seconds as an RFC 3339 UTC date for error messages.
pub(super) fn fmt_time(secs: u64) -> String {
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

pub(super) fn created_secs(sig: &Signature) -> Option<u64> {
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
    pub(super) fn from_signed(key: SignedPublicKey) -> Cert {
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
            Some(Unusable::NoSelfSignature)
        } else {
            None
        };
        let (can_sign, expires) = match self_sig {
            None => (Err(Unusable::NoSelfSignature), None),
            Some(sig) => {
                let can = if !has_key_flags(sig) || sig.key_flags().sign() {
                    Ok(())
                } else {
                    Err(Unusable::PrimaryNotForSigning)
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
                None => (Err(Unusable::NoBinding), None),
                Some(sig) => {
                    let flagged = !has_key_flags(sig) || sig.key_flags().sign();
                    let backsig_ok = sig
                        .embedded_signature()
                        .is_some_and(|b| b.verify_primary_key_binding(&sub.key, &primary).is_ok());
                    let can = if !flagged {
                        Err(Unusable::SubkeyNotForSigning)
                    } else if !backsig_ok {
                        Err(Unusable::NoBackSignature)
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
