//! [`RepoBuilder`]: the description of a test repository (suites,
//! components, architectures, compressions, optional files, packages, key)
//! before [`RepoBuilder::build`] writes it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use super::pdiff::{PdiffLayout, PdiffState};
use super::{Compression, PackageSpec, Repo, RepoConfig};
use crate::keys::TestKey;

/// Builder of a [`Repo`]. Defaults: suite `stable`, component `main`, architecture `amd64`,
/// compressions `.gz` and `.xz` plus uncompressed, no by-hash, no SHA512, no sources, no
/// translations, signed by [`TestKey::shared`].
#[derive(Clone, Debug)]
pub struct RepoBuilder {
    pub(super) root: PathBuf,
    pub(super) config: RepoConfig,
    pub(super) key: TestKey,
    pub(super) packages: Vec<PackageSpec>,
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
