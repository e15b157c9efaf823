//! OpenPGP signatures on InRelease and Release.gpg: keyrings (binary `.gpg`
//! with many keys and subkeys, or ASCII-armoured `.asc`), verification that
//! reports which key signed, and clear errors for bad, unknown-key and
//! expired signatures.

/// A set of public keys that signatures are checked against.
pub struct Keyring {
    _private: (),
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").finish_non_exhaustive()
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
    pub fn from_bytes(data: &[u8]) -> Result<Keyring, SignatureError> {
        todo!()
    }

    /// Reads and merges several keyring files; errors name the file.
    pub fn from_files<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Keyring, SignatureError> {
        todo!()
    }

    /// Number of primary keys.
    pub fn len(&self) -> usize {
        todo!()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies a clearsigned InRelease; returns the signed text and the signer.
    pub fn verify_clearsigned(&self, data: &[u8]) -> Result<(Vec<u8>, Signer), SignatureError> {
        todo!()
    }

    /// Verifies a detached signature (`Release.gpg`, armoured or binary) over `data`.
    pub fn verify_detached(&self, data: &[u8], signature: &[u8]) -> Result<Signer, SignatureError> {
        todo!()
    }
}
