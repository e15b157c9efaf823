//! The real `apt-get`, run in an isolated temporary directory.
//!
//! [`AptEnv`] gives `apt-get` its own state, cache, lists, sources.list, keyring and empty
//! configuration directories through an `APT_CONFIG` file, so the machine's own apt setup is
//! neither read nor touched. Otherwise apt keeps its own defaults, as on a real host: PDiffs
//! on, by-hash as the Release says, apt's default languages. A test that switches one of them
//! off does so with [`AptEnv::option`] and says why. A test writes the `deb` lines ([`AptEnv::add_source`] or
//! [`AptEnv::set_sources`]), optionally a proxy ([`AptEnv::proxy`]) or a CA
//! ([`AptEnv::https_ca`]), then runs [`AptEnv::update`], [`AptEnv::install_download_only`] or
//! [`AptEnv::download`] and inspects the [`AptOutput`] and the downloaded `.deb` files.
//!
//! The blocking methods suit plain `#[test]`s; the `*_async` variants run the same command
//! on tokio's blocking pool, for tests whose server (a cacher) runs on the test's own runtime.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::keys::TestKey;

/// The outcome of one `apt-get` run.
#[derive(Clone, Debug)]
pub struct AptOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl AptOutput {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// Exit status 0 and no `Err:`, `E:` or `W:` line.
    pub fn clean(&self) -> bool {
        self.success() && self.errors().is_empty() && self.warnings().is_empty()
    }
    /// Whether apt reported a hash or size mismatch of a downloaded file.
    pub fn hash_sum_mismatch(&self) -> bool {
        let all = self.all();
        all.contains("Hash Sum mismatch")
            || all.contains("Hashes of expected file")
            || all.contains("File has unexpected size")
    }
    /// Lines starting with `Err:` or `E:`.
    pub fn errors(&self) -> Vec<String> {
        self.lines_with(&["Err:", "E:"])
    }
    /// Lines starting with `W:`.
    pub fn warnings(&self) -> Vec<String> {
        self.lines_with(&["W:"])
    }
    /// stdout followed by stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    /// `Ok(self)` if the run succeeded, otherwise an error carrying the whole output.
    pub fn ok(self) -> Result<AptOutput> {
        if self.success() {
            Ok(self)
        } else {
            anyhow::bail!("{} failed ({:?}):\n{}", self.command, self.code, self.all())
        }
    }
    /// Like [`AptOutput::ok`], but also fails on any `Err:`/`E:`/`W:` line.
    pub fn ok_clean(self) -> Result<AptOutput> {
        if self.clean() {
            Ok(self)
        } else {
            anyhow::bail!(
                "{} not clean ({:?}):\n{}",
                self.command,
                self.code,
                self.all()
            )
        }
    }
    fn lines_with(&self, prefixes: &[&str]) -> Vec<String> {
        self.all()
            .lines()
            .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
            .map(str::to_string)
            .collect()
    }
}

/// An isolated apt environment in a temporary directory (removed on drop).
#[derive(Debug)]
pub struct AptEnv {
    dir: tempfile::TempDir,
    key_path: PathBuf,
    sources: Vec<String>,
    options: Vec<(String, String)>,
}

impl AptEnv {
    /// A fresh environment trusting [`TestKey::shared`] (for `signed-by=`).
    pub fn new() -> Result<AptEnv> {
        Self::with_key(TestKey::shared())
    }

    /// A fresh environment whose `signed-by=` keyring holds `key`.
    pub fn with_key(key: &TestKey) -> Result<AptEnv> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-apt-")
            .tempdir()
            .context("apt temp dir")?;
        let root = dir.path();
        for d in [
            "etc/apt.conf.d",
            "etc/sources.list.d",
            "etc/preferences.d",
            "etc/trusted.gpg.d",
            "state/lists/partial",
            "cache/archives/partial",
            "dpkg",
            "log",
            "download",
        ] {
            std::fs::create_dir_all(root.join(d)).with_context(|| format!("creating {d}"))?;
        }
        std::fs::write(root.join("dpkg/status"), b"").context("dpkg/status")?;
        let key_path = root.join("etc/testkit-keyring.gpg");
        key.write_public(&key_path)?;
        let env = AptEnv {
            dir,
            key_path,
            sources: Vec::new(),
            options: Vec::new(),
        };
        env.write_config()?;
        Ok(env)
    }

    /// The environment's root directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    /// The keyring file used in `signed-by=`.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }
    /// Replaces the keyring with another key (e.g. to test a wrong signature).
    pub fn trust_key(&self, key: &TestKey) -> Result<()> {
        key.write_public(&self.key_path)
    }
    /// Where `apt-get install --download-only` puts `.deb` files.
    pub fn archives_dir(&self) -> PathBuf {
        self.root().join("cache/archives")
    }
    /// Where `apt-get download` puts `.deb` files.
    pub fn download_dir(&self) -> PathBuf {
        self.root().join("download")
    }
    /// Where `apt-get update` keeps the fetched indices.
    pub fn lists_dir(&self) -> PathBuf {
        self.root().join("state/lists")
    }

    /// Adds `deb [signed-by=KEY] URI SUITE COMPONENTS...` (for a flat suite such as `./`,
    /// pass no components).
    pub fn add_source(&mut self, uri: &str, suite: &str, components: &[&str]) -> Result<()> {
        let line = format!(
            "deb [signed-by={}] {} {} {}",
            self.key_path.display(),
            uri,
            suite,
            components.join(" ")
        );
        self.sources.push(line.trim_end().to_string());
        self.write_sources()
    }
    /// Adds a `deb-src [signed-by=KEY] ...` line.
    pub fn add_source_src(&mut self, uri: &str, suite: &str, components: &[&str]) -> Result<()> {
        let line = format!(
            "deb-src [signed-by={}] {} {} {}",
            self.key_path.display(),
            uri,
            suite,
            components.join(" ")
        );
        self.sources.push(line.trim_end().to_string());
        self.write_sources()
    }
    /// Replaces sources.list with exactly these lines (the test writes `signed-by=` itself,
    /// see [`AptEnv::key_path`]).
    pub fn set_sources(&mut self, lines: &[&str]) -> Result<()> {
        self.sources = lines.iter().map(|s| s.to_string()).collect();
        self.write_sources()
    }

    /// Sets an apt option (`-o NAME=VALUE` equivalent), replacing an earlier value; a list
    /// option (name ending in `::`) accumulates values instead.
    pub fn option(&mut self, name: &str, value: &str) -> Result<()> {
        if !name.ends_with("::") {
            self.options.retain(|(n, _)| n != name);
        }
        self.options.push((name.to_string(), value.to_string()));
        self.write_config()
    }
    /// Uses an HTTP proxy (`Acquire::http::Proxy`), e.g. `http://127.0.0.1:3142/`.
    pub fn proxy(&mut self, url: &str) -> Result<()> {
        self.option("Acquire::http::Proxy", url)
    }
    /// Uses an HTTPS proxy (`Acquire::https::Proxy`).
    pub fn https_proxy(&mut self, url: &str) -> Result<()> {
        self.option("Acquire::https::Proxy", url)
    }
    /// Trusts this CA certificate (PEM file) for https sources (`Acquire::https::CaInfo`).
    pub fn https_ca(&mut self, ca_pem_path: &Path) -> Result<()> {
        self.option("Acquire::https::CaInfo", &ca_pem_path.display().to_string())
    }
    /// Enables or disables by-hash downloads (`Acquire::By-Hash`; default: apt's own, which
    /// follows the Release file's `Acquire-By-Hash`).
    pub fn by_hash(&mut self, yes: bool) -> Result<()> {
        self.option("Acquire::By-Hash", if yes { "yes" } else { "no" })
    }
    /// Asks apt to fetch indices in this compression first (`gz`, `xz`, `bz2`, `zst`, `lzma`,
    /// `uncompressed`).
    pub fn prefer_compression(&mut self, ext: &str) -> Result<()> {
        self.option("Acquire::CompressionTypes::Order::", ext)
    }
    /// Languages of Translation files to fetch (default: apt's own, `environment,en`).
    pub fn languages(&mut self, langs: &str) -> Result<()> {
        self.option("Acquire::Languages", langs)
    }
    /// Architectures apt considers (default `amd64`; the first is the native one).
    pub fn architectures(&mut self, archs: &[&str]) -> Result<()> {
        self.options
            .retain(|(n, _)| n != "APT::Architectures::" && n != "APT::Architecture");
        if let Some(first) = archs.first() {
            self.options
                .push(("APT::Architecture".to_string(), first.to_string()));
        }
        for a in archs {
            self.options
                .push(("APT::Architectures::".to_string(), a.to_string()));
        }
        self.write_config()
    }
    /// Number of retries apt makes on a failed download (default here: 0).
    pub fn retries(&mut self, n: u32) -> Result<()> {
        self.option("Acquire::Retries", &n.to_string())
    }

    fn write_sources(&self) -> Result<()> {
        let mut text = self.sources.join("\n");
        text.push('\n');
        std::fs::write(self.root().join("etc/sources.list"), text).context("sources.list")
    }

    fn write_config(&self) -> Result<()> {
        let r = self.root().display().to_string();
        let mut items: Vec<(String, String)> = vec![
            ("Dir".into(), "/".into()),
            ("Dir::Etc".into(), format!("{r}/etc")),
            ("Dir::Etc::main".into(), format!("{r}/etc/apt.conf")),
            ("Dir::Etc::Parts".into(), format!("{r}/etc/apt.conf.d")),
            (
                "Dir::Etc::SourceList".into(),
                format!("{r}/etc/sources.list"),
            ),
            (
                "Dir::Etc::SourceParts".into(),
                format!("{r}/etc/sources.list.d"),
            ),
            (
                "Dir::Etc::Preferences".into(),
                format!("{r}/etc/preferences"),
            ),
            (
                "Dir::Etc::PreferencesParts".into(),
                format!("{r}/etc/preferences.d"),
            ),
            ("Dir::Etc::Trusted".into(), format!("{r}/etc/trusted.gpg")),
            (
                "Dir::Etc::TrustedParts".into(),
                format!("{r}/etc/trusted.gpg.d"),
            ),
            ("Dir::State".into(), format!("{r}/state")),
            ("Dir::State::Lists".into(), format!("{r}/state/lists")),
            ("Dir::State::status".into(), format!("{r}/dpkg/status")),
            (
                "Dir::State::extended_states".into(),
                format!("{r}/state/extended_states"),
            ),
            ("Dir::Cache".into(), format!("{r}/cache")),
            ("Dir::Cache::archives".into(), format!("{r}/cache/archives")),
            ("Dir::Log".into(), format!("{r}/log")),
            ("APT::Sandbox::User".into(), "root".into()),
            ("APT::Architecture".into(), "amd64".into()),
            ("APT::Architectures::".into(), "amd64".into()),
            ("APT::Get::Assume-Yes".into(), "true".into()),
            ("APT::Install-Recommends".into(), "false".into()),
            ("Acquire::Retries".into(), "0".into()),
            ("Acquire::http::Proxy".into(), "DIRECT".into()),
            ("Acquire::https::Proxy".into(), "DIRECT".into()),
            ("Acquire::http::Timeout".into(), "20".into()),
            ("Acquire::https::Timeout".into(), "20".into()),
            (
                "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled".into(),
                "false".into(),
            ),
            ("Dpkg::Use-Pty".into(), "false".into()),
            (
                "Binary::apt::APT::Keep-Downloaded-Packages".into(),
                "true".into(),
            ),
        ];
        // A test's option replaces the default of the same name (for a `Foo::` list: the
        // whole default list).
        items.retain(|(m, _)| !self.options.iter().any(|(n, _)| n == m));
        items.extend(self.options.iter().cloned());
        let mut text = String::new();
        for (n, v) in items {
            text.push_str(&format!("{n} \"{}\";\n", v.replace('"', "")));
        }
        std::fs::write(self.config_path(), text).context("writing apt config")
    }

    /// The `APT_CONFIG` file.
    pub fn config_path(&self) -> PathBuf {
        self.root().join("apt.conf")
    }

    fn command(&self, args: &[&str], cwd: &Path) -> Command {
        let mut c = Command::new("apt-get");
        c.args(args)
            .current_dir(cwd)
            .env("APT_CONFIG", self.config_path())
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("no_proxy")
            .env_remove("NO_PROXY");
        c
    }

    /// Runs `apt-get ARGS` in the environment (cwd: [`AptEnv::download_dir`]).
    pub fn run(&self, args: &[&str]) -> Result<AptOutput> {
        let cwd = self.download_dir();
        let out = self
            .command(args, &cwd)
            .output()
            .with_context(|| format!("running apt-get {}", args.join(" ")))?;
        Ok(AptOutput {
            command: format!("apt-get {}", args.join(" ")),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `apt-get update`. `Ok` means apt ran; check [`AptOutput::success`] for its verdict.
    pub fn update(&self) -> Result<AptOutput> {
        self.run(&["update"])
    }
    /// `apt-get install --download-only -y PKGS` (files land in [`AptEnv::archives_dir`]).
    pub fn install_download_only(&self, pkgs: &[&str]) -> Result<AptOutput> {
        let mut args = vec!["install", "--download-only", "-y"];
        args.extend_from_slice(pkgs);
        self.run(&args)
    }
    /// `apt-get download PKGS` (files land in [`AptEnv::download_dir`]).
    pub fn download(&self, pkgs: &[&str]) -> Result<AptOutput> {
        let mut args = vec!["download"];
        args.extend_from_slice(pkgs);
        self.run(&args)
    }
    /// `apt-get clean`: forgets downloaded archives so the next install fetches again.
    pub fn clean(&self) -> Result<AptOutput> {
        self.run(&["clean"])
    }

    /// [`AptEnv::update`] on tokio's blocking pool.
    pub async fn update_async(&self) -> Result<AptOutput> {
        self.run_async(vec!["update".into()]).await
    }
    /// [`AptEnv::install_download_only`] on tokio's blocking pool.
    pub async fn install_download_only_async(&self, pkgs: &[&str]) -> Result<AptOutput> {
        let mut args: Vec<String> = vec!["install".into(), "--download-only".into(), "-y".into()];
        args.extend(pkgs.iter().map(|s| s.to_string()));
        self.run_async(args).await
    }
    /// [`AptEnv::download`] on tokio's blocking pool.
    pub async fn download_async(&self, pkgs: &[&str]) -> Result<AptOutput> {
        let mut args: Vec<String> = vec!["download".into()];
        args.extend(pkgs.iter().map(|s| s.to_string()));
        self.run_async(args).await
    }
    /// [`AptEnv::run`] on tokio's blocking pool.
    pub async fn run_async(&self, args: Vec<String>) -> Result<AptOutput> {
        let cwd = self.download_dir();
        let mut cmd = self.command(&[], &cwd);
        cmd.args(&args);
        let command = format!("apt-get {}", args.join(" "));
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .context("apt-get task")?
            .with_context(|| format!("running {command}"))?;
        Ok(AptOutput {
            command,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `.deb` files in [`AptEnv::archives_dir`] (sorted paths).
    pub fn downloaded_archives(&self) -> Result<Vec<PathBuf>> {
        list_debs(&self.archives_dir())
    }
    /// `.deb` files in [`AptEnv::download_dir`] (sorted paths).
    pub fn downloaded_files(&self) -> Result<Vec<PathBuf>> {
        list_debs(&self.download_dir())
    }
}

fn list_debs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let p = e?.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "deb") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
