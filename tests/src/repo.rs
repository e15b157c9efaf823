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
use crate::pdiff::{wants_pdiff, PdiffLayout, PdiffState};
use std::sync::Mutex;

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
    /// indices on every publish after the first (see [`crate::pdiff`]).
    pub pdiffs: bool,
    /// How the patches relate to generations (default: merged, as Debian).
    pub pdiff_layout: PdiffLayout,
    /// Generations a client may be behind and still patch (default 8).
    pub pdiff_keep: usize,
}

/// Builder of a [`Repo`]. Defaults: suite `stable`, component `main`, architecture `amd64`,
/// compressions `.gz` and `.xz` plus uncompressed, no by-hash, no SHA512, no sources, no
/// translations, signed by [`TestKey::shared`].
#[derive(Clone, Debug)]
pub struct RepoBuilder {
    root: PathBuf,
    config: RepoConfig,
    key: TestKey,
    packages: Vec<PackageSpec>,
}

impl RepoBuilder {
    /// Replaces the suites (default `["stable"]`). A suite ending in `/` is flat.
    pub fn suites(mut self, suites: &[&str]) -> Self {
        self.config.suites = suites.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Shorthand for a single suite.
    pub fn suite(self, suite: &str) -> Self {
        self.suites(&[suite])
    }
    /// Replaces the components (default `["main"]`).
    pub fn components(mut self, components: &[&str]) -> Self {
        self.config.components = components.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Replaces the architectures (default `["amd64"]`).
    pub fn architectures(mut self, archs: &[&str]) -> Self {
        self.config.architectures = archs.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Replaces the compressed variants written (default `[Gz, Xz]`).
    pub fn compressions(mut self, c: &[Compression]) -> Self {
        self.config.compressions = c.to_vec();
        self
    }
    /// Whether uncompressed indices are written (default true). They are listed in Release
    /// either way, as on Debian's archive.
    pub fn uncompressed(mut self, yes: bool) -> Self {
        self.config.uncompressed = yes;
        self
    }
    /// `Acquire-By-Hash: yes` with by-hash copies (default false).
    pub fn by_hash(mut self, yes: bool) -> Self {
        self.config.by_hash = yes;
        self
    }
    /// Adds the SHA512 list (default false).
    pub fn sha512(mut self, yes: bool) -> Self {
        self.config.sha512 = yes;
        self
    }
    /// Writes Sources indices and source files (default false).
    pub fn sources(mut self, yes: bool) -> Self {
        self.config.sources = yes;
        self
    }
    /// Writes i18n Translation-en and Index (default false).
    pub fn translations(mut self, yes: bool) -> Self {
        self.config.translations = yes;
        self
    }
    /// Languages of the Translation files when translations are on (default `["en"]`).
    pub fn languages(mut self, langs: &[&str]) -> Self {
        self.config.languages = langs.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Writes `<component>/Contents-<arch>` indices (default false).
    pub fn contents(mut self, yes: bool) -> Self {
        self.config.contents = yes;
        self
    }
    /// Sets `Valid-Until` to Date + `d`.
    pub fn valid_until(mut self, d: Duration) -> Self {
        self.config.valid_until = Some(d);
        self
    }
    /// Fixes `Date` (default: the time of each publish).
    pub fn date(mut self, t: SystemTime) -> Self {
        self.config.date = Some(t);
        self
    }
    /// Whether InRelease and Release.gpg are written (default true).
    pub fn signed(mut self, yes: bool) -> Self {
        self.config.signed = yes;
        self
    }
    /// Publishes PDiffs from the second publish on (default false); see [`crate::pdiff`].
    pub fn pdiffs(mut self, yes: bool) -> Self {
        self.config.pdiffs = yes;
        self
    }
    /// The PDiff layout (default [`PdiffLayout::Merged`], as Debian).
    pub fn pdiff_layout(mut self, layout: PdiffLayout) -> Self {
        self.config.pdiff_layout = layout;
        self
    }
    /// How many old generations keep a patch (default 8).
    pub fn pdiff_keep(mut self, generations: usize) -> Self {
        self.config.pdiff_keep = generations;
        self
    }
    /// Signs with this key instead of [`TestKey::shared`].
    pub fn key(mut self, key: &TestKey) -> Self {
        self.key = key.clone();
        self
    }
    /// Adds a package.
    pub fn package(mut self, spec: PackageSpec) -> Self {
        self.packages.push(spec);
        self
    }
    /// Adds `count` packages `pkg0000`, `pkg0001`, ... version `1.0`, of `size` bytes each.
    pub fn generated_packages(mut self, count: usize, size: usize) -> Self {
        for i in 0..count {
            self.packages
                .push(PackageSpec::new(&format!("pkg{i:04}"), "1.0").size(size));
        }
        self
    }
    /// Writes the repository and returns it.
    pub fn build(self) -> Result<Repo> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("creating {}", self.root.display()))?;
        let mut repo = Repo {
            root: self.root,
            config: self.config,
            key: self.key,
            specs: Vec::new(),
            published: Vec::new(),
            indices: BTreeMap::new(),
            pdiff: Mutex::new(PdiffState::default()),
        };
        for spec in self.packages {
            repo.add(spec)?;
        }
        repo.publish()?;
        Ok(repo)
    }
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

    fn write_suite(&self, suite: &str, date: SystemTime) -> Result<Vec<IndexFile>> {
        let dir = self.suite_dir(suite);
        let flat = suite.ends_with('/');
        // (path relative to suite dir, uncompressed content)
        let mut plain: Vec<(String, Vec<u8>)> = Vec::new();
        if flat {
            let pkgs: Vec<&Package> = self.in_suite(suite).collect();
            plain.push(("Packages".to_string(), packages_index(&pkgs)));
            if self.config.sources {
                plain.push(("Sources".to_string(), self.sources_index(&pkgs)?));
            }
        } else {
            for comp in &self.config.components {
                for arch in &self.config.architectures {
                    let pkgs: Vec<&Package> = self
                        .in_suite(suite)
                        .filter(|p| &p.spec.component == comp)
                        .filter(|p| &p.spec.arch == arch || p.spec.arch == "all")
                        .collect();
                    plain.push((
                        format!("{comp}/binary-{arch}/Packages"),
                        packages_index(&pkgs),
                    ));
                }
                if self.config.sources {
                    let pkgs: Vec<&Package> = self
                        .in_suite(suite)
                        .filter(|p| &p.spec.component == comp)
                        .collect();
                    plain.push((format!("{comp}/source/Sources"), self.sources_index(&pkgs)?));
                }
                if self.config.translations {
                    let pkgs: Vec<&Package> = self
                        .in_suite(suite)
                        .filter(|p| &p.spec.component == comp)
                        .collect();
                    for lang in &self.config.languages {
                        plain.push((
                            format!("{comp}/i18n/Translation-{lang}"),
                            translation_index(&pkgs, lang),
                        ));
                    }
                }
                if self.config.contents {
                    for arch in &self.config.architectures {
                        let pkgs: Vec<&Package> = self
                            .in_suite(suite)
                            .filter(|p| &p.spec.component == comp)
                            .filter(|p| &p.spec.arch == arch || p.spec.arch == "all")
                            .collect();
                        plain.push((format!("{comp}/Contents-{arch}"), contents_index(&pkgs)));
                    }
                }
            }
        }
        let mut files: Vec<IndexFile> = Vec::new();
        let mut translation_files: Vec<IndexFile> = Vec::new();
        for (path, data) in &plain {
            // apt finds an index by its uncompressed name, so Release always lists it (as
            // Debian does), even when the file itself is not published.
            let mut variants: Vec<(String, Vec<u8>, bool)> =
                vec![(path.clone(), data.clone(), self.config.uncompressed)];
            for c in &self.config.compressions {
                variants.push((format!("{path}{}", c.extension()), c.compress(data)?, true));
            }
            for (vpath, vdata, present) in variants {
                if present {
                    self.write_index(&dir, &vpath, &vdata, flat)?;
                } else {
                    remove_if_exists(&dir.join(&vpath))?;
                }
                let f = IndexFile {
                    path: vpath.clone(),
                    checksums: Checksums::of(&vdata),
                    present,
                };
                if present && path.contains("/i18n/") {
                    translation_files.push(f.clone());
                }
                files.push(f);
            }
        }
        if self.config.pdiffs {
            for (path, data) in plain.iter().filter(|(p, _)| wants_pdiff(p)) {
                let index = self.pdiff_state()?.update(
                    &dir,
                    suite,
                    path,
                    data,
                    self.config.pdiff_layout,
                    self.config.pdiff_keep,
                )?;
                if let Some(text) = index {
                    let ipath = format!("{path}.diff/Index");
                    self.write_index(&dir, &ipath, &text, flat)?;
                    files.push(IndexFile {
                        path: ipath,
                        checksums: Checksums::of(&text),
                        present: true,
                    });
                }
            }
        }
        // i18n/Index: SHA1 list of the translation files of each component.
        if self.config.translations && !flat {
            for comp in &self.config.components {
                let prefix = format!("{comp}/i18n/");
                let mut text = String::from("SHA1:\n");
                for f in translation_files
                    .iter()
                    .filter(|f| f.path.starts_with(&prefix))
                {
                    let name = &f.path[prefix.len()..];
                    let _ = writeln!(
                        text,
                        " {} {:>8} {}",
                        f.checksums.sha1, f.checksums.size, name
                    );
                }
                let path = format!("{prefix}Index");
                write_atomic(&dir.join(&path), text.as_bytes())?;
                files.push(IndexFile {
                    path,
                    checksums: Checksums::of(text.as_bytes()),
                    present: true,
                });
            }
        }
        let release = self.release_text(suite, date, &files);
        write_atomic(&dir.join("Release"), release.as_bytes())?;
        if self.config.signed {
            write_atomic(
                &dir.join("InRelease"),
                &self.key.clearsign(release.as_bytes())?,
            )?;
            write_atomic(
                &dir.join("Release.gpg"),
                &self.key.detach_sign(release.as_bytes())?,
            )?;
        } else {
            remove_if_exists(&dir.join("InRelease"))?;
            remove_if_exists(&dir.join("Release.gpg"))?;
        }
        Ok(files)
    }

    fn write_index(&self, dir: &Path, path: &str, data: &[u8], flat: bool) -> Result<()> {
        write_atomic(&dir.join(path), data)?;
        if self.config.by_hash && !flat {
            let parent = match path.rfind('/') {
                Some(i) => dir.join(&path[..i]),
                None => dir.to_path_buf(),
            };
            let sums = Checksums::of(data);
            let mut algos = vec![
                ("MD5Sum", sums.md5),
                ("SHA1", sums.sha1),
                ("SHA256", sums.sha256),
            ];
            if self.config.sha512 {
                algos.push(("SHA512", sums.sha512));
            }
            for (algo, hash) in algos {
                let p = parent.join("by-hash").join(algo).join(hash);
                if !p.exists() {
                    write_atomic(&p, data)?;
                }
            }
        }
        Ok(())
    }

    fn release_text(&self, suite: &str, date: SystemTime, files: &[IndexFile]) -> String {
        let flat = suite.ends_with('/');
        let mut t = String::new();
        let _ = writeln!(t, "Origin: {}", self.config.origin);
        let _ = writeln!(t, "Label: {}", self.config.origin);
        if !flat {
            let _ = writeln!(t, "Suite: {suite}");
            let _ = writeln!(t, "Codename: {suite}");
        } else if suite_rel_dir(suite).is_some() {
            // apt compares a flat `deb URI sub/` line's dist with Suite/Codename.
            let _ = writeln!(t, "Suite: {suite}");
        }
        let _ = writeln!(t, "Date: {}", release_date(date));
        if let Some(v) = self.config.valid_until {
            let _ = writeln!(t, "Valid-Until: {}", release_date(date + v));
        }
        if !flat {
            let _ = writeln!(t, "Architectures: {}", self.config.architectures.join(" "));
            let _ = writeln!(t, "Components: {}", self.config.components.join(" "));
            if self.config.by_hash {
                let _ = writeln!(t, "Acquire-By-Hash: yes");
            }
        }
        let _ = writeln!(t, "Description: testkit generated repository");
        type Pick = fn(&Checksums) -> &str;
        let mut lists: Vec<(&str, Pick)> = vec![
            ("MD5Sum", |c| &c.md5),
            ("SHA1", |c| &c.sha1),
            ("SHA256", |c| &c.sha256),
        ];
        if self.config.sha512 {
            lists.push(("SHA512", |c| &c.sha512));
        }
        for (name, pick) in lists {
            let _ = writeln!(t, "{name}:");
            for f in files {
                let _ = writeln!(
                    t,
                    " {} {:>16} {}",
                    pick(&f.checksums),
                    f.checksums.size,
                    f.path
                );
            }
        }
        t
    }

    fn sources_index(&self, pkgs: &[&Package]) -> Result<Vec<u8>> {
        let mut out = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for p in pkgs {
            let s = &p.spec;
            if !seen.insert((s.name.clone(), s.version.clone())) {
                continue;
            }
            let dir = format!("pool/{}/{}/{}", s.component, pool_prefix(&s.name), s.name);
            let upstream_version = version_without_epoch(&s.version);
            let tar_name = format!("{}_{}.tar.xz", s.name, upstream_version);
            let tar = Compression::Xz.compress(&deterministic_bytes(
                format!("src\0{}\0{}\0{}", s.name, s.version, s.seed).as_bytes(),
                512,
            ))?;
            let tar_sums = Checksums::of(&tar);
            let dsc_name = format!("{}_{}.dsc", s.name, upstream_version);
            let dsc = format!(
                "Format: 3.0 (native)\nSource: {n}\nBinary: {n}\nArchitecture: any\nVersion: {v}\n\
                 Maintainer: Testkit <testkit@testkit.invalid>\nStandards-Version: 4.6.2\n\
                 Checksums-Sha256:\n {h} {sz} {t}\nFiles:\n {m} {sz} {t}\n",
                n = s.name,
                v = s.version,
                h = tar_sums.sha256,
                m = tar_sums.md5,
                sz = tar_sums.size,
                t = tar_name
            );
            let dsc_sums = Checksums::of(dsc.as_bytes());
            write_atomic(&self.root.join(&dir).join(&tar_name), &tar)?;
            write_atomic(&self.root.join(&dir).join(&dsc_name), dsc.as_bytes())?;
            let _ = write!(
                out,
                "Package: {n}\nBinary: {n}\nVersion: {v}\nMaintainer: Testkit <testkit@testkit.invalid>\n\
                 Architecture: any\nFormat: 3.0 (native)\nDirectory: {dir}\nPriority: optional\nSection: misc\n"
            , n = s.name, v = s.version);
            let _ = writeln!(out, "Files:");
            for (sums, name) in [(&dsc_sums, &dsc_name), (&tar_sums, &tar_name)] {
                let _ = writeln!(out, " {} {} {}", sums.md5, sums.size, name);
            }
            let _ = writeln!(out, "Checksums-Sha1:");
            for (sums, name) in [(&dsc_sums, &dsc_name), (&tar_sums, &tar_name)] {
                let _ = writeln!(out, " {} {} {}", sums.sha1, sums.size, name);
            }
            let _ = writeln!(out, "Checksums-Sha256:");
            for (sums, name) in [(&dsc_sums, &dsc_name), (&tar_sums, &tar_name)] {
                let _ = writeln!(out, " {} {} {}", sums.sha256, sums.size, name);
            }
            out.push('\n');
        }
        Ok(out.into_bytes())
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

fn description(name: &str) -> (String, String) {
    let short = format!("testkit package {name}");
    let long = format!("{short}\n Generated by the testkit for end-to-end tests.\n");
    (short, long)
}

fn packages_index(pkgs: &[&Package]) -> Vec<u8> {
    let mut out = String::new();
    for p in pkgs {
        let s = &p.spec;
        let (_, long) = description(&s.name);
        let _ = write!(
            out,
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: Testkit <testkit@testkit.invalid>\n\
             Installed-Size: {}\nPriority: optional\nSection: misc\nFilename: {}\nSize: {}\n\
             MD5sum: {}\nSHA1: {}\nSHA256: {}\nDescription: {}Description-md5: {}\n",
            s.name,
            s.version,
            s.arch,
            p.checksums.size.div_ceil(1024),
            p.pool_path,
            p.checksums.size,
            p.checksums.md5,
            p.checksums.sha1,
            p.checksums.sha256,
            long,
            hex::encode(Md5::digest(long.as_bytes())),
        );
        for (name, value) in &s.fields {
            let _ = writeln!(out, "{name}: {value}");
        }
        out.push('\n');
    }
    out.into_bytes()
}

fn contents_index(pkgs: &[&Package]) -> Vec<u8> {
    let mut lines: Vec<String> = pkgs
        .iter()
        .map(|p| format!("usr/share/doc/{n}/README    misc/{n}\n", n = p.spec.name))
        .collect();
    lines.sort();
    lines.dedup();
    lines.concat().into_bytes()
}

fn translation_index(pkgs: &[&Package], lang: &str) -> Vec<u8> {
    let mut out = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in pkgs {
        if !seen.insert(p.spec.name.clone()) {
            continue;
        }
        let (_, long) = description(&p.spec.name);
        let _ = write!(
            out,
            "Package: {}\nDescription-md5: {}\nDescription-{}: {}\n",
            p.spec.name,
            hex::encode(Md5::digest(long.as_bytes())),
            lang,
            long
        );
    }
    out.into_bytes()
}

/// Formats a time as a Release `Date` (`Sat, 27 Nov 2026 08:00:00 UTC`).
pub fn release_date(t: SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Utc> = t.into();
    dt.format("%a, %d %b %Y %H:%M:%S UTC").to_string()
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Writes `data` to `path` through a temporary file (`.<name>.testkit-tmp`, mode 0644) and a
/// rename, creating parent directories: a reader sees the old or the new file, never a part.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let parent = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".testkit-tmp");
    let tmp = parent.join(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_lists_every_index_and_by_hash_copies_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::builder(tmp.path())
            .by_hash(true)
            .sha512(true)
            .uncompressed(false)
            .compressions(&[Compression::Gz, Compression::Zst])
            .sources(true)
            .package(PackageSpec::new("hello", "1:2.0-1"))
            .build()
            .unwrap();
        let dir = repo.suite_dir("stable");
        let release = std::fs::read_to_string(dir.join("Release")).unwrap();
        assert!(release.contains("Acquire-By-Hash: yes\n"));
        for f in repo.index_files("stable") {
            for (algo, hash) in [
                ("MD5Sum", &f.checksums.md5),
                ("SHA256", &f.checksums.sha256),
                ("SHA512", &f.checksums.sha512),
            ] {
                let line = format!(" {} {:>16} {}\n", hash, f.checksums.size, f.path);
                assert!(release.contains(&line), "{algo} {line:?}");
            }
            let on_disk = dir.join(&f.path);
            assert_eq!(on_disk.is_file(), f.present, "{}", f.path);
            if f.present {
                let parent = Path::new(&f.path).parent().unwrap();
                let by_hash = dir
                    .join(parent)
                    .join("by-hash/SHA512")
                    .join(&f.checksums.sha512);
                assert_eq!(
                    std::fs::read(by_hash).unwrap(),
                    std::fs::read(on_disk).unwrap()
                );
            }
        }
        let p = repo.package("hello").unwrap();
        assert_eq!(p.pool_path, "pool/main/h/hello/hello_2.0-1_amd64.deb");
        assert_eq!(p.deb_file_name(), "hello_1%3a2.0-1_amd64.deb");
        let data = std::fs::read(repo.root().join(&p.pool_path)).unwrap();
        assert_eq!(Checksums::of(&data), p.checksums);
        assert!(repo
            .root()
            .join("pool/main/h/hello/hello_2.0-1.dsc")
            .is_file());
    }

    #[test]
    fn republish_keeps_old_by_hash_files_and_changes_content_on_new_seed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut repo = Repo::builder(tmp.path())
            .by_hash(true)
            .package(PackageSpec::new("a", "1"))
            .build()
            .unwrap();
        let old = repo.index_files("stable").to_vec();
        let old_sha = repo.package("a").unwrap().sha256().to_string();
        repo.replace(PackageSpec::new("a", "1").seed(1));
        repo.publish().unwrap();
        assert_ne!(repo.package("a").unwrap().sha256(), old_sha);
        let dir = repo.suite_dir("stable");
        for f in old.iter().filter(|f| f.present) {
            let parent = Path::new(&f.path).parent().unwrap();
            assert!(dir
                .join(parent)
                .join("by-hash/SHA256")
                .join(&f.checksums.sha256)
                .is_file());
        }
        assert_eq!(repo.remove("a"), 1);
        repo.publish().unwrap();
        assert!(repo.packages().is_empty());
    }

    #[test]
    fn deterministic_content() {
        let a = deterministic_bytes(b"x", 100);
        assert_eq!(a, deterministic_bytes(b"x", 100));
        assert_ne!(a, deterministic_bytes(b"y", 100));
        assert!(a.starts_with(b"!<arch>\n"));
        assert_eq!(deterministic_bytes(b"x", 3).len(), 3);
        for c in [
            Compression::Gz,
            Compression::Xz,
            Compression::Bz2,
            Compression::Zst,
            Compression::Lzma,
        ] {
            assert!(!c.compress(&a).unwrap().is_empty());
        }
    }
}
