//! What to mirror: which indices of a suite's Release the configuration
//! selects (components, architectures plus `all`, Sources only with
//! `mirror_source`, Translations by `languages`, Contents by `contents`),
//! where to fetch each from (by-hash first, then the plain path), and the
//! set of pool files the indices name, with every path checked so that a
//! hostile or broken upstream cannot make us write outside the mirror.

use crate::config::MirrorConfig;
use aptindex::checksum::Checksums;
use aptindex::compress::Compression;
use aptindex::index::IndexKind;
use aptindex::release::Release;
use aptindex::tree::release_files::{entry_role, fetch_candidates, ByHash, EntryRole, Plain};
use std::collections::HashMap;

/// An index file of a suite to mirror.
#[derive(Debug, Clone)]
pub struct IndexFile {
    /// Path relative to the repository root.
    pub path: String,
    /// Expected size and hashes (from Release).
    pub checksums: Checksums,
    /// The same index in any compression (path without suffix): variants of
    /// one group are interchangeable.
    pub group: String,
    /// The kind, if the index names files to mirror.
    pub kind: Option<IndexKind>,
    /// The upstream publishes it under `by-hash/` too.
    pub by_hash: bool,
    /// An index of the other of two disagreeing Release files (see
    /// [`crate::mirror`]): kept only under `by-hash/`, never at its plain path.
    pub by_hash_only: bool,
}

impl IndexFile {
    /// Where the file is stored in the snapshot: its plain path, or for a
    /// [`IndexFile::by_hash_only`] index its by-hash path (strongest hash).
    pub fn stored_path(&self) -> String {
        if self.by_hash_only {
            if let Some(kind) = self.checksums.strongest() {
                if let Some(hex) = self.checksums.hex(kind) {
                    return aptindex::path::by_hash_path(&self.path, kind, &hex);
                }
            }
        }
        self.path.clone()
    }
}

/// Planning failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A path would escape the mirror root.
    #[error("{source_file}: unsafe path {path:?} rejected (absolute, '..', or otherwise escaping the mirror root)")]
    UnsafePath {
        /// The file that named it.
        source_file: String,
        /// The path.
        path: String,
    },
    /// Two indices describe one file differently.
    #[error("{source_file}: {conflict}")]
    Conflict {
        /// The index that disagrees.
        source_file: String,
        /// The disagreement.
        #[source]
        conflict: Conflict,
    },
}

/// How an index disagrees ([`PlanError::Conflict`]).
#[derive(Debug, thiserror::Error)]
pub enum Conflict {
    /// It names repository metadata as a pool file.
    #[error("{path:?} names repository metadata (Release, index or by-hash), not a pool file")]
    Metadata {
        /// The path.
        path: String,
    },
    /// Another index describes the file with other checksums.
    #[error(transparent)]
    Checksums(#[from] aptindex::ChecksumError),
}

/// Normalizes an upstream-supplied relative path (`./x` → `x`) and checks
/// that it stays inside the root.
pub fn safe_path(source_file: &str, path: &str) -> Result<String, PlanError> {
    let mut p = path;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    if aptindex::path::is_safe_relative(p) {
        Ok(p.to_string())
    } else {
        Err(PlanError::UnsafePath {
            source_file: source_file.to_string(),
            path: path.to_string(),
        })
    }
}

/// The language of a `Translation-<lang>[.ext]` file name.
fn translation_language(name: &str) -> Option<&str> {
    let lang = name.strip_prefix("Translation-")?;
    Some(Compression::from_path(lang).strip(lang))
}

/// True when Translation language `lang` is wanted.
pub fn language_wanted(cfg: &MirrorConfig, lang: &str) -> bool {
    match &cfg.languages {
        None => true,
        Some(list) => list
            .iter()
            .any(|l| l == lang || lang.split('_').next() == Some(l.as_str())),
    }
}

fn arch_wanted(cfg: &MirrorConfig, arch: &str) -> bool {
    cfg.architectures.iter().any(|a| a == arch)
}

fn has_installer_section(cfg: &MirrorConfig) -> bool {
    cfg.sections.iter().any(|s| s.ends_with("debian-installer"))
}

/// `Contents-<arch>`, `Contents-udeb-<arch>`, `Contents-source` (any compression).
fn contents_wanted(cfg: &MirrorConfig, name: &str) -> bool {
    let Some(rest) = name.strip_prefix("Contents-") else {
        return false;
    };
    if !cfg.contents {
        return false;
    }
    let rest = Compression::from_path(rest).strip(rest);
    if rest == "source" {
        cfg.mirror_source
    } else if let Some(arch) = rest.strip_prefix("udeb-") {
        has_installer_section(cfg) && arch_wanted(cfg, arch)
    } else {
        arch_wanted(cfg, rest)
    }
}

/// Whether the configuration selects the Release entry `rel` (relative to
/// the suite's directory).
pub fn wanted(cfg: &MirrorConfig, flat: bool, rel: &str) -> bool {
    // By-hash names and PDiff patches are never selected on their own; a
    // PDiff index goes with the index it patches (its patches are not in
    // the Release: crate::mirror places them from the Index).
    match entry_role(rel) {
        EntryRole::Index => {}
        EntryRole::DiffIndex { base } => return wanted(cfg, flat, base),
        EntryRole::ByHash | EntryRole::DiffPatch => return false,
    }
    let segments: Vec<&str> = rel.split('/').collect();
    let name = segments.last().copied().unwrap_or("");
    if flat {
        return if name.starts_with("Sources") {
            cfg.mirror_source
        } else if let Some(lang) = translation_language(name) {
            language_wanted(cfg, lang)
        } else if name.starts_with("Contents-") {
            cfg.contents
        } else {
            true
        };
    }
    // The longest configured section that `rel` is under.
    let section = cfg
        .sections
        .iter()
        .filter(|s| {
            rel.len() > s.len() && rel.starts_with(s.as_str()) && rel.as_bytes()[s.len()] == b'/'
        })
        .max_by_key(|s| s.len());
    let Some(section) = section else {
        // Suite-level files: only Contents.
        return segments.len() == 1 && contents_wanted(cfg, name);
    };
    let rest: Vec<&str> = rel[section.len() + 1..].split('/').collect();
    let first = rest.first().copied().unwrap_or("");
    if rest.len() == 1 {
        return contents_wanted(cfg, first);
    }
    if let Some(arch) = first.strip_prefix("binary-") {
        return arch_wanted(cfg, arch);
    }
    match first {
        "source" => cfg.mirror_source,
        "i18n" => match translation_language(name) {
            Some(lang) => language_wanted(cfg, lang),
            None => name == "Index" && cfg.languages.as_ref().is_none_or(|l| !l.is_empty()),
        },
        "dep11" => match name.strip_prefix("Components-") {
            Some(rest) => arch_wanted(cfg, rest.split('.').next().unwrap_or("")),
            None => true,
        },
        "cnf" => match name.strip_prefix("Commands-") {
            Some(rest) => arch_wanted(cfg, rest.split('.').next().unwrap_or("")),
            None => true,
        },
        _ => false,
    }
}

/// The indices of `release` (of `suite`) that `cfg` selects.
pub fn select_indices(
    cfg: &MirrorConfig,
    suite: &str,
    release: &Release,
) -> Result<Vec<IndexFile>, PlanError> {
    let flat = aptindex::release::is_flat(suite);
    let dir = aptindex::release::suite_dir(suite);
    let release_name = aptindex::path::join(&dir, "Release");
    let mut out = Vec::new();
    for (rel, sums) in &release.entries {
        if !wanted(cfg, flat, rel) {
            continue;
        }
        let rel = safe_path(&release_name, rel)?;
        let path = aptindex::path::join(&dir, &rel);
        let comp = Compression::from_path(&path);
        out.push(IndexFile {
            group: comp.strip(&path).to_string(),
            kind: IndexKind::from_path(&path),
            checksums: sums.clone(),
            by_hash: release.acquire_by_hash,
            by_hash_only: false,
            path,
        });
    }
    Ok(out)
}

/// Where to fetch an index from, in order: `by-hash/` by SHA512, SHA256,
/// SHA1 and MD5 (those known) when the upstream uses by-hash, then the plain
/// path (except for a by-hash-only index).
pub fn candidates(index: &IndexFile) -> Vec<String> {
    let by_hash = if index.by_hash {
        ByHash::Every
    } else {
        ByHash::Off
    };
    let plain = if index.by_hash_only {
        Plain::Skip
    } else {
        Plain::Include
    };
    fetch_candidates(&index.path, &index.checksums, by_hash, plain)
}

/// Files named by the indices, by path relative to the repository root.
#[derive(Debug, Default)]
pub struct PoolSet {
    /// The files.
    pub files: HashMap<String, Checksums>,
}

impl PoolSet {
    /// Adds a file named by index `source_file`; rejects unsafe paths and
    /// conflicting descriptions of one file.
    pub fn add(&mut self, source_file: &str, path: &str, sums: Checksums) -> Result<(), PlanError> {
        let path = safe_path(source_file, path)?;
        // A pool file must not take the place of repository metadata
        // (Translation files named by i18n/Index are the one index kind
        // that is listed this way).
        let name = path.rsplit('/').next().unwrap_or("");
        let metadata = match aptindex::path::classify(&path) {
            aptindex::PathKind::Other => false,
            aptindex::PathKind::Index => !name.starts_with("Translation-"),
            _ => true,
        };
        if metadata || path.split('/').any(|s| s == "by-hash") {
            return Err(PlanError::Conflict {
                source_file: source_file.to_string(),
                conflict: Conflict::Metadata { path },
            });
        }
        match self.files.get_mut(&path) {
            None => {
                self.files.insert(path, sums);
            }
            Some(existing) => existing
                .merge(&path, &sums)
                .map_err(|e| PlanError::Conflict {
                    source_file: source_file.to_string(),
                    conflict: e.into(),
                })?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cfg(extra: &str) -> MirrorConfig {
        let text = format!(
            "dir = \"/m\"\n[mirror.m]\nurl = \"http://h/\"\nsuites = [\"s\"]\nsections = [\"main\", \"contrib\", \"main/debian-installer\"]\narchitectures = [\"amd64\"]\n{extra}"
        );
        Config::parse(std::path::Path::new("t.toml"), &text)
            .unwrap()
            .mirrors["m"]
            .clone()
    }

    #[test]
    fn selection() {
        let c = cfg("");
        for yes in [
            "main/binary-amd64/Packages.xz",
            "main/binary-all/Packages",
            "main/binary-amd64/Release",
            "contrib/i18n/Translation-de.bz2",
            "main/i18n/Index",
            "main/Contents-amd64.gz",
            "main/Contents-all",
            "Contents-amd64.gz",
            "main/debian-installer/binary-amd64/Packages.gz",
            "main/Contents-udeb-amd64.gz",
            "main/dep11/Components-amd64.yml.gz",
            "main/dep11/icons-64x64.tar.gz",
            "main/cnf/Commands-amd64.xz",
            "main/binary-amd64/Packages.diff/Index",
            "main/i18n/Translation-de.diff/Index",
        ] {
            assert!(wanted(&c, false, yes), "{yes}");
        }
        for no in [
            "main/binary-i386/Packages.xz",
            "main/source/Sources.xz",
            "main/Contents-source.gz",
            "main/Contents-i386.gz",
            "non-free/binary-amd64/Packages",
            "main/binary-i386/Packages.diff/Index",
            "main/source/Sources.diff/Index",
            "main/binary-amd64/Packages.diff/Index.gz",
            "main/binary-amd64/Packages.diff/T-2026-12-06-0800.00-F-2026-12-05-0800.00.gz",
            "main/binary-amd64/Packages.diff/by-hash/SHA256/abc",
            "main/binary-amd64/by-hash/SHA256/abc",
            "main/dep11/Components-arm64.yml.gz",
            "main/installer-amd64/current/images/SHA256SUMS",
            "mainx/binary-amd64/Packages",
        ] {
            assert!(!wanted(&c, false, no), "{no}");
        }
        let c = cfg("mirror_source = true\nlanguages = [\"en\"]\ncontents = false\n");
        assert!(wanted(&c, false, "main/source/Sources.xz"));
        assert!(wanted(&c, false, "main/i18n/Translation-en.bz2"));
        assert!(wanted(&c, false, "main/i18n/Translation-en_GB.bz2"));
        assert!(!wanted(&c, false, "main/i18n/Translation-de.bz2"));
        assert!(!wanted(&c, false, "main/Contents-amd64.gz"));
        let c = cfg("languages = []\n");
        assert!(!wanted(&c, false, "main/i18n/Index"));
        // Without the installer section, its indices are not selected.
        let text = "dir = \"/m\"\n[mirror.m]\nurl = \"http://h/\"\nsuites = [\"s\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\n";
        let c = Config::parse(std::path::Path::new("t.toml"), text)
            .unwrap()
            .mirrors["m"]
            .clone();
        assert!(!wanted(
            &c,
            false,
            "main/debian-installer/binary-amd64/Packages.gz"
        ));
        assert!(!wanted(&c, false, "main/Contents-udeb-amd64.gz"));
    }

    #[test]
    fn flat_selection() {
        let text = "dir = \"/m\"\n[mirror.f]\nurl = \"http://h/\"\nsuites = [\"/\"]\n";
        let c = Config::parse(std::path::Path::new("t.toml"), text)
            .unwrap()
            .mirrors["f"]
            .clone();
        assert!(wanted(&c, true, "Packages.gz"));
        assert!(!wanted(&c, true, "Sources.gz"));
        assert!(wanted(&c, true, "Translation-de.bz2"));
        assert!(wanted(&c, true, "Packages.diff/Index"));
        assert!(!wanted(&c, true, "Sources.diff/Index"));
    }

    #[test]
    fn safe_paths() {
        assert_eq!(safe_path("P", "./pool/a.deb").unwrap(), "pool/a.deb");
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "pool/../../x",
            "",
            "pool//a",
            "a\\b",
        ] {
            assert!(safe_path("P", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pool_set_merges_and_rejects_conflicts() {
        let a = Checksums {
            size: 3,
            sha256: Some([1; 32]),
            ..Default::default()
        };
        let mut b = a.clone();
        b.md5 = Some([2; 16]);
        let mut set = PoolSet::default();
        set.add("P1", "pool/x", a.clone()).unwrap();
        set.add("P2", "./pool/x", b).unwrap();
        assert_eq!(set.files["pool/x"].md5, Some([2; 16]));
        let mut c = a;
        c.size = 4;
        assert!(set.add("P3", "pool/x", c).is_err());
        set.add(
            "P5",
            "dists/s/main/i18n/Translation-de.bz2",
            Checksums::default(),
        )
        .unwrap();
        for meta in [
            "dists/s/InRelease",
            "dists/s/main/binary-amd64/Packages.xz",
            "dists/s/main/binary-amd64/by-hash/SHA256/00",
        ] {
            assert!(set.add("P4", meta, Checksums::default()).is_err(), "{meta}");
        }
    }
}
