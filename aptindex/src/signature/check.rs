//! Judging one signature against one key of the keyring: data signature
//! type, digest strength, key usability, the cryptographic check, then
//! revocation and expiry at the verification time. The keyring combines
//! these per-key verdicts over all signatures of a file.

use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};

use super::cert::{created_secs, fmt_time, Cert, Component};
use super::{SignatureError, Signer};

/// How one signature failed against one key.
pub(super) enum Failure {
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
pub(super) fn issuer_names(sig: &Signature) -> Vec<String> {
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
pub(super) fn check(
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
        return Err(bad(reason.to_string()));
    }
    key.can_sign.map_err(|e| bad(e.to_string()))?;
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
