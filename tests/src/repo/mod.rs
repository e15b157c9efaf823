//! Generated APT repositories on disk.
//!
//! [`RepoBuilder`] describes a repository (suites, components, architectures, packages,
//! compressions, by-hash, sources, translations, signing) and [`RepoBuilder::build`] writes it
//! under a root directory: pool files, `Packages`/`Sources`/`Translation-en` indices in the chosen
//! compressions, a `Release` listing them with MD5Sum/SHA1/SHA256 (and SHA512 if asked), and
//! `InRelease` + `Release.gpg` signed by a [`TestKey`]. A suite ending in `/` (`"./"`,
//! `"flat/"`) is a flat repository: `Packages` and `Release` sit directly in that directory and
//! `Filename` fields are relative to the repository root.
//!
//! The returned [`Repo`] can be changed afterwards ("the upstream changed"): add, replace or
//! remove packages, then [`Repo::publish`] rewrites the indices and signed metadata. Old
//! `by-hash` files are kept, as on a real archive. Files are replaced by rename, so a server
//! that has a file open keeps sending the old bytes.
//!
//! Hostile or unusual content for negative tests: [`PackageSpec::filename`] (any `Filename`,
//! e.g. `../../etc/x.deb`), [`PackageSpec::field`], and [`Repo::resign`] after editing
//! `Release` by hand.
//!
//! Generation does not use `aptindex`: hashes and compressions come straight from the crates.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::keys::TestKey;
use pdiff::{wants_pdiff, PdiffLayout, PdiffState};
use std::sync::Mutex;

mod builder;
mod files;
mod indices;
pub mod pdiff;
mod write;

pub use builder::RepoBuilder;
pub use files::{release_date, write_atomic};

/// A compression in which indices are published (the uncompressed file is controlled by
/// [`RepoBuilder::uncompressed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `.gz` (flate2)
    Gz,
    /// `.xz` (liblzma)
    Xz,
    /// `.bz2` (bzip2)
    Bz2,
    /// `.zst` (zstd)
    Zst,
    /// `.lzma` (legacy lzma-alone format, liblzma)
    Lzma,
}

impl Compression {
    /// File name extension including the dot, e.g. `".xz"`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gz => ".gz",
            Compression::Xz => ".xz",
            Compression::Bz2 => ".bz2",
            Compression::Zst => ".zst",
            Compression::Lzma => ".lzma",
        }
    }

    /// Compresses `data`.
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>> {
        let out = match self {
            Compression::Gz => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                e.write_all(data)?;
                e.finish()?
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data)?;
                e.finish()?
            }
            Compression::Lzma => {
                let opts = liblzma::stream::LzmaOptions::new_preset(1)?;
                let stream = liblzma::stream::Stream::new_lzma_encoder(&opts)?;
                let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
                e.write_all(data)?;
                e.finish()?
            }
            Compression::Bz2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(1));
                e.write_all(data)?;
                e.finish()?
            }
            Compression::Zst => zstd::encode_all(data, 3)?,
        };
        Ok(out)
    }
}

/// The checksums of one file, as lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksums {
    /// Size in bytes.
    pub size: u64,
    /// MD5 (hex).
    pub md5: String,
    /// SHA-1 (hex).
    pub sha1: String,
    /// SHA-256 (hex).
    pub sha256: String,
    /// SHA-512 (hex).
    pub sha512: String,
}

impl Checksums {
    /// Computes all checksums of `data`.
    pub fn of(data: &[u8]) -> Checksums {
        Checksums {
            size: data.len() as u64,
            md5: hex::encode(Md5::digest(data)),
            sha1: hex::encode(Sha1::digest(data)),
            sha256: hex::encode(Sha256::digest(data)),
            sha512: hex::encode(Sha512::digest(data)),
        }
    }
}

/// What a generated binary package should look like. Build with [`PackageSpec::new`] and the
/// chained setters; defaults: architecture `amd64`, component `main`, 1024 bytes of
/// deterministic content, present in every suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageSpec {
    /// Package name.
    pub name: String,
    /// Version string.
    pub version: String,
    /// Architecture (`amd64`, `all`, ...).
    pub arch: String,
    /// Component (`main`, ...); ignored by flat suites except for the pool path.
    pub component: String,
    /// Suite the package belongs to; `None` means every suite of the repository.
    pub suite: Option<String>,
    /// Size of the generated `.deb`.
    pub size: usize,
    /// Seed of the deterministic content; change it to "rebuild" the package with other bytes.
    pub seed: u64,
    /// Explicit content, overriding `size`/`seed`.
    pub content: Option<Vec<u8>>,
    /// `Filename` to publish instead of the pool path (may be hostile, e.g. `../../x.deb`:
    /// then it is listed but no file is written).
    pub filename: Option<String>,
    /// Extra control fields (e.g. `Depends`), written after the standard ones.
    pub fields: Vec<(String, String)>,
}

impl PackageSpec {
    /// A package `name` at `version` with the defaults above.
    pub fn new(name: &str, version: &str) -> PackageSpec {
        PackageSpec {
            name: name.to_string(),
            version: version.to_string(),
            arch: "amd64".to_string(),
            component: "main".to_string(),
            suite: None,
            size: 1024,
            seed: 0,
            content: None,
            filename: None,
            fields: Vec::new(),
        }
    }
    /// Sets the architecture.
    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.to_string();
        self
    }
    /// Sets the component.
    pub fn component(mut self, component: &str) -> Self {
        self.component = component.to_string();
        self
    }
    /// Restricts the package to one suite.
    pub fn suite(mut self, suite: &str) -> Self {
        self.suite = Some(suite.to_string());
        self
    }
    /// Sets the size of the generated `.deb`.
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }
    /// Sets the content seed (same name/version/arch/seed/size = same bytes).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Uses exactly these bytes as the `.deb` content.
    pub fn content(mut self, bytes: Vec<u8>) -> Self {
        self.content = Some(bytes);
        self
    }

    /// Publishes this `Filename` instead of the pool path; a path escaping the repository
    /// (`..`, absolute) is listed but not written.
    pub fn filename(mut self, path: &str) -> Self {
        self.filename = Some(path.to_string());
        self
    }
    /// Adds a control field to the Packages stanza (e.g. `("Depends", "libfoo1")`).
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.fields.push((name.to_string(), value.to_string()));
        self
    }
    /// Shorthand for `.field("Depends", deps)`.
    pub fn depends(self, deps: &str) -> Self {
        self.field("Depends", deps)
    }

    fn bytes(&self) -> Vec<u8> {
        if let Some(c) = &self.content {
            return c.clone();
        }
        let tag = format!(
            "{}\0{}\0{}\0{}",
            self.name, self.version, self.arch, self.seed
        );
        deterministic_bytes(tag.as_bytes(), self.size)
    }
}

/// `len` pseudo-random bytes derived from `tag` (a seeded `StdRng`), starting with an
/// `ar` magic so the file looks like a `.deb` to a casual reader.
pub fn deterministic_bytes(tag: &[u8], len: usize) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let seed: [u8; 32] = Sha256::digest(tag).into();
    let mut rng = rand::rngs::StdRng::from_seed(seed);
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    let magic = b"!<arch>\n";
    let n = magic.len().min(len);
    out[..n].copy_from_slice(&magic[..n]);
    out
}

/// A package as published: where its file is and its checksums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// The spec it was generated from.
    pub spec: PackageSpec,
    /// Path of the `.deb` relative to the repository root (the `Filename` field).
    pub pool_path: String,
    /// Checksums of the `.deb`.
    pub checksums: Checksums,
}

impl Package {
    /// Package name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
    /// Version.
    pub fn version(&self) -> &str {
        &self.spec.version
    }
    /// SHA-256 of the `.deb` (hex).
    pub fn sha256(&self) -> &str {
        &self.checksums.sha256
    }
    /// Size of the `.deb`.
    pub fn size(&self) -> u64 {
        self.checksums.size
    }
    /// The file name apt saves it under (`name_version_arch.deb`, `:` escaped as `%3a`).
    pub fn deb_file_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.spec.name,
            self.spec.version.replace(':', "%3a"),
            self.spec.arch
        )
    }
}

/// One index file listed in a Release file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    /// Path relative to the suite directory (`main/binary-amd64/Packages.xz`, or
    /// `Packages.gz` in a flat suite).
    pub path: String,
    /// Checksums of the file.
    pub checksums: Checksums,
    /// Whether the file exists on disk: an uncompressed index is always listed in Release
    /// (apt needs that entry) but only written when [`RepoBuilder::uncompressed`] is true.
    pub present: bool,
}

/// Settings of a repository; see [`RepoBuilder`] for their meaning and defaults.
#[derive(Clone, Debug)]
pub struct RepoConfig {
    /// Suites (`stable`, or flat `./`, `sub/`).
    pub suites: Vec<String>,
    /// Components of non-flat suites.
    pub components: Vec<String>,
    /// Architectures of non-flat suites (`all` packages appear in every architecture).
    pub architectures: Vec<String>,
    /// Compressed variants of every index.
    pub compressions: Vec<Compression>,
    /// Whether the uncompressed index files are written too (always listed in Release).
    pub uncompressed: bool,
    /// `Acquire-By-Hash: yes` and `by-hash/` copies (non-flat suites only).
    pub by_hash: bool,
    /// SHA512 list in Release (and by-hash/SHA512).
    pub sha512: bool,
    /// Sources indices with `.dsc` and `.tar.xz` files.
    pub sources: bool,
    /// `i18n/Translation-<lang>` for each of `languages`, and `i18n/Index`.
    pub translations: bool,
    /// Languages of the Translation files (default `["en"]`).
    pub languages: Vec<String>,
    /// `<component>/Contents-<arch>` indices.
    pub contents: bool,
    /// `Valid-Until` = Date + this.
    pub valid_until: Option<Duration>,
    /// Fixed `Date`; `None` = now at each publish.
    pub date: Option<SystemTime>,
    /// Whether InRelease and Release.gpg are written.
    pub signed: bool,
    /// `Origin` and `Label`.
    pub origin: String,
    /// PDiffs (`<index>.diff/Index` and patches) for Packages, Sources and Translation
    /// indices on every publish after the first (see [`pdiff`]).
    pub pdiffs: bool,
    /// How the patches relate to generations (default: merged, as Debian).
    pub pdiff_layout: PdiffLayout,
    /// Generations a client may be behind and still patch (default 8).
    pub pdiff_keep: usize,
}

/// A repository on disk. Change it with [`Repo::add`], [`Repo::replace`], [`Repo::remove`]
/// and make the change visible with [`Repo::publish`].
#[derive(Debug)]
pub struct Repo {
    root: PathBuf,
    config: RepoConfig,
    key: TestKey,
    specs: Vec<PackageSpec>,
    published: Vec<Package>,
    indices: BTreeMap<String, Vec<IndexFile>>,
    pdiff: Mutex<PdiffState>,
}

impl Repo {
    /// Starts describing a repository that will be written under `root`.
    pub fn builder(root: impl Into<PathBuf>) -> RepoBuilder {
        RepoBuilder {
            root: root.into(),
            config: RepoConfig {
                suites: vec!["stable".to_string()],
                components: vec!["main".to_string()],
                architectures: vec!["amd64".to_string()],
                compressions: vec![Compression::Gz, Compression::Xz],
                uncompressed: true,
                by_hash: false,
                sha512: false,
                sources: false,
                translations: false,
                languages: vec!["en".to_string()],
                contents: false,
                valid_until: None,
                date: None,
                signed: true,
                origin: "Testkit".to_string(),
                pdiffs: false,
                pdiff_layout: PdiffLayout::Merged,
                pdiff_keep: 8,
            },
            key: TestKey::shared().clone(),
            packages: Vec::new(),
        }
    }

    /// The repository root (what an apt `deb` line's URI points at).
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The settings (change them with [`Repo::config_mut`], then publish).
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }
    /// Mutable settings, e.g. to switch by-hash or compressions between publishes.
    pub fn config_mut(&mut self) -> &mut RepoConfig {
        &mut self.config
    }
    /// The signing key.
    pub fn key(&self) -> &TestKey {
        &self.key
    }
    /// Signs future publishes with another key.
    pub fn set_key(&mut self, key: &TestKey) {
        self.key = key.clone();
    }
    /// Packages as of the last [`Repo::publish`].
    pub fn packages(&self) -> &[Package] {
        &self.published
    }
    /// The published package named `name` (first match).
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.published.iter().find(|p| p.spec.name == name)
    }
    /// Index files listed in the suite's Release at the last publish.
    pub fn index_files(&self, suite: &str) -> &[IndexFile] {
        self.indices.get(suite).map(Vec::as_slice).unwrap_or(&[])
    }
    /// Directory of a suite: `<root>/dists/<suite>` or, for a flat suite, `<root>/<suite>`.
    pub fn suite_dir(&self, suite: &str) -> PathBuf {
        suite_rel_dir(suite)
            .map(|d| self.root.join(d))
            .unwrap_or_else(|| self.root.clone())
    }
    /// URL path of a suite directory relative to the root, without leading or trailing slash
    /// (`dists/stable`, `flat`, or empty for `./`).
    pub fn suite_url_path(&self, suite: &str) -> String {
        suite_rel_dir(suite).unwrap_or_default()
    }

    /// Signs the suite's `Release` file as it is on disk again (InRelease + Release.gpg), for
    /// tests that edited `Release` by hand (hostile entries, wrong hashes, ...).
    pub fn resign(&self, suite: &str) -> Result<()> {
        let dir = self.suite_dir(suite);
        let release = std::fs::read(dir.join("Release"))
            .with_context(|| format!("reading {}", dir.join("Release").display()))?;
        write_atomic(&dir.join("InRelease"), &self.key.clearsign(&release)?)?;
        write_atomic(&dir.join("Release.gpg"), &self.key.detach_sign(&release)?)
    }

    /// Replaces the suite's `Release.gpg` with a signature by the repository key over other,
    /// older text, as a mirror or CDN serves it when its cached `Release.gpg` outlived the
    /// `Release` next to it: `gpgv` says BAD signature, `InRelease` and `Release` stay current.
    /// The next [`Repo::publish`] writes a good one again.
    pub fn stale_release_gpg(&self, suite: &str) -> Result<()> {
        let dir = self.suite_dir(suite);
        let mut older = std::fs::read(dir.join("Release"))
            .with_context(|| format!("reading {}", dir.join("Release").display()))?;
        older.extend_from_slice(b"X-Testkit-Older: this text is not the current Release\n");
        write_atomic(&dir.join("Release.gpg"), &self.key.detach_sign(&older)?)
    }

    /// Adds a package (listed and written to the pool at the next publish).
    pub fn add(&mut self, spec: PackageSpec) -> Result<()> {
        if self.specs.iter().any(|s| same_slot(s, &spec)) {
            bail!(
                "package {} {} {} already in the repository",
                spec.name,
                spec.version,
                spec.arch
            );
        }
        self.specs.push(spec);
        Ok(())
    }
    /// Replaces every package with the same name, architecture and suite by `spec`
    /// (a new version, or the same version with other bytes via another seed).
    pub fn replace(&mut self, spec: PackageSpec) {
        self.specs
            .retain(|s| !(s.name == spec.name && s.arch == spec.arch && s.suite == spec.suite));
        self.specs.push(spec);
    }
    /// Removes every package called `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.specs.len();
        self.specs.retain(|s| s.name != name);
        before - self.specs.len()
    }

    /// Writes pool files, indices, Release, InRelease and Release.gpg for every suite.
    pub fn publish(&mut self) -> Result<()> {
        let previous: HashMap<(&str, &str, &str, Option<&str>), &Package> = self
            .published
            .iter()
            .map(|p| {
                let s = &p.spec;
                ((&*s.name, &*s.version, &*s.arch, s.suite.as_deref()), p)
            })
            .collect();
        let mut published = Vec::new();
        for spec in &self.specs {
            // Unchanged packages whose file is still there are not generated again.
            let key = (
                &*spec.name,
                &*spec.version,
                &*spec.arch,
                spec.suite.as_deref(),
            );
            if let Some(old) = previous.get(&key) {
                if &old.spec == spec
                    && (!is_safe_relative(&old.pool_path)
                        || self.root.join(&old.pool_path).is_file())
                {
                    published.push((*old).clone());
                    continue;
                }
            }
            let data = spec.bytes();
            // udebs of `main/debian-installer` live in the pool of `main`.
            let (pool_comp, ext) = match spec.component.split_once('/') {
                Some((c, "debian-installer")) => (c, "udeb"),
                _ => (spec.component.as_str(), "deb"),
            };
            let pool_path = spec.filename.clone().unwrap_or_else(|| {
                format!(
                    "pool/{}/{}/{}/{}_{}_{}.{}",
                    pool_comp,
                    pool_prefix(&spec.name),
                    spec.name,
                    spec.name,
                    version_without_epoch(&spec.version),
                    spec.arch,
                    ext
                )
            });
            if is_safe_relative(&pool_path) {
                write_atomic(&self.root.join(&pool_path), &data)?;
            }
            published.push(Package {
                spec: spec.clone(),
                pool_path,
                checksums: Checksums::of(&data),
            });
        }
        self.published = published;
        let date = self.config.date.unwrap_or_else(SystemTime::now);
        self.pdiff_state()?.begin_publish(date);
        for suite in self.config.suites.clone() {
            let indices = self.write_suite(&suite, date)?;
            self.indices.insert(suite, indices);
        }
        Ok(())
    }

    fn pdiff_state(&self) -> Result<std::sync::MutexGuard<'_, PdiffState>> {
        self.pdiff
            .lock()
            .map_err(|_| anyhow::anyhow!("pdiff state poisoned"))
    }

    fn in_suite<'a>(&'a self, suite: &'a str) -> impl Iterator<Item = &'a Package> + 'a {
        self.published
            .iter()
            .filter(move |p| p.spec.suite.as_deref().is_none_or(|s| s == suite))
    }
}

fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn same_slot(a: &PackageSpec, b: &PackageSpec) -> bool {
    a.name == b.name && a.version == b.version && a.arch == b.arch && a.suite == b.suite
}

fn suite_rel_dir(suite: &str) -> Option<String> {
    if suite.ends_with('/') {
        let d = suite.trim_start_matches("./").trim_end_matches('/');
        if d.is_empty() || d == "." {
            None
        } else {
            Some(d.to_string())
        }
    } else {
        Some(format!("dists/{suite}"))
    }
}

fn version_without_epoch(v: &str) -> &str {
    match v.find(':') {
        Some(i) => &v[i + 1..],
        None => v,
    }
}

fn pool_prefix(name: &str) -> String {
    if name.starts_with("lib") && name.len() > 3 {
        name.chars().take(4).collect()
    } else {
        name.chars().take(1).collect()
    }
}

#[cfg(test)]
mod tests;
