//! The OpenPGP keyrings each mapping's Releases must verify against
//! (`keyring = ...` in its table, or the `Signed-By` of the host's apt
//! sources in the embedded default), read once at start. A file that
//! cannot be read, does not parse or holds no key stops the start with an
//! error naming the mapping, its `keyring` key and the file: a cacher that
//! silently served a mapping unsigned because its keyring was mistyped
//! would defeat the point of naming one.

use crate::config::Mapping;
use aptindex::signature::{Keyring, SignatureError};
use std::path::PathBuf;
use std::sync::Arc;

/// What is wrong with one keyring file.
#[derive(Debug, thiserror::Error)]
pub enum KeyringProblem {
    /// It cannot be read.
    #[error("cannot read: {0}")]
    Unreadable(#[source] std::io::Error),
    /// It is not an OpenPGP keyring (binary or armoured).
    #[error("{0}")]
    Unparsable(#[source] SignatureError),
    /// It parses but holds no key: every signature would be refused.
    #[error("holds no OpenPGP key")]
    Empty,
}

/// A keyring of a mapping could not be loaded (a start error).
#[derive(Debug, thiserror::Error)]
#[error("mapping.{prefix}.keyring: {}: {problem}", file.display())]
pub struct KeyringError {
    /// The mapping's prefix.
    pub prefix: String,
    /// The keyring file.
    pub file: PathBuf,
    /// Why.
    #[source]
    pub problem: KeyringProblem,
}

/// One keyring per mapping (`None`: the mapping names none and its suites
/// are served unsigned, as before keyrings existed).
#[derive(Debug, Clone, Default)]
pub struct Keyrings {
    by_mapping: Vec<Option<Arc<Keyring>>>,
}

impl Keyrings {
    /// Reads the keyring files of every mapping (their union per mapping).
    pub fn load(mappings: &[Mapping]) -> Result<Keyrings, KeyringError> {
        let mut by_mapping = Vec::with_capacity(mappings.len());
        for m in mappings {
            if m.keyrings.is_empty() {
                by_mapping.push(None);
                continue;
            }
            let error = |file: &PathBuf, problem| KeyringError {
                prefix: m.prefix.clone(),
                file: file.clone(),
                problem,
            };
            // Each file on its own first, so that an error names its file.
            for file in &m.keyrings {
                let data =
                    std::fs::read(file).map_err(|e| error(file, KeyringProblem::Unreadable(e)))?;
                let keyring = Keyring::from_bytes(&data)
                    .map_err(|e| error(file, KeyringProblem::Unparsable(e)))?;
                if keyring.is_empty() {
                    return Err(error(file, KeyringProblem::Empty));
                }
            }
            let all = Keyring::from_files(&m.keyrings).map_err(|e| {
                let first = m.keyrings.first().cloned().unwrap_or_default();
                error(&first, KeyringProblem::Unparsable(e))
            })?;
            tracing::info!(mapping = %m.prefix, keys = %all.fingerprints().join(","), files = m.keyrings.len(), "Release signatures are checked");
            by_mapping.push(Some(Arc::new(all)));
        }
        Ok(Keyrings { by_mapping })
    }

    /// The keyring of mapping `index`, if it has one.
    pub fn get(&self, index: usize) -> Option<&Arc<Keyring>> {
        self.by_mapping.get(index).and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_upstream_url;

    fn mapping(keyrings: Vec<PathBuf>) -> Mapping {
        Mapping {
            prefix: "debian".into(),
            url: parse_upstream_url("http://deb.example.org/debian").unwrap(),
            aliases: Vec::new(),
            redirect_hosts: Vec::new(),
            fallbacks: Vec::new(),
            keyrings,
            local: None,
        }
    }

    #[test]
    fn errors_name_the_mapping_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.gpg");
        let e = Keyrings::load(&[mapping(vec![missing.clone()])]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "mapping.debian.keyring: {}: cannot read",
                missing.display()
            )),
            "{text}"
        );
        let garbage = dir.path().join("garbage.gpg");
        std::fs::write(
            &garbage,
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nnot a key\n",
        )
        .unwrap();
        let e = Keyrings::load(&[mapping(vec![garbage.clone()])]).unwrap_err();
        assert!(matches!(e.problem, KeyringProblem::Unparsable(_)), "{e:?}");
        assert!(e.to_string().contains("garbage.gpg"), "{e}");
        let empty = dir.path().join("empty.gpg");
        std::fs::write(&empty, b"").unwrap();
        let e = Keyrings::load(&[mapping(vec![empty])]).unwrap_err();
        assert!(matches!(e.problem, KeyringProblem::Empty), "{e:?}");
    }

    #[test]
    fn no_keyring_is_unsigned_and_the_debian_keyring_loads() {
        let debian = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/debian/debian-archive-keyring.gpg");
        let k =
            Keyrings::load(&[mapping(Vec::new()), mapping(vec![debian.clone(), debian])]).unwrap();
        assert!(k.get(0).is_none());
        assert!(k.get(1).is_some_and(|k| !k.is_empty()));
        assert!(k.get(2).is_none());
    }
}
