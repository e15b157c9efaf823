//! End-to-end tests of apt-mirror against in-process upstreams (testkit):
//! full mirror, incremental update, unchanged upstream, faults (corruption,
//! change mid-run, stalls, 5xx), kill -9 and rerun, lock contention, flat
//! repositories, by-hash fallback, path traversal and bad signatures.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::{PackageSpec, Repo, TestKey, Times, Upstream};

mod basic;
mod faults;
mod hostile;
mod pool;
mod process;
mod signatures;

/// A test bed: a generated upstream repository, its server, a mirror root.
struct Bed {
    tmp: tempfile::TempDir,
    repo: Arc<Mutex<Repo>>,
    up: Upstream,
}

impl Bed {
    fn new(build: impl FnOnce(testkit::RepoBuilder) -> testkit::RepoBuilder) -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let repo = build(Repo::builder(tmp.path().join("upstream")))
            .build()
            .unwrap();
        let up = Upstream::serve(repo.root()).unwrap();
        repo.key()
            .write_public(&tmp.path().join("key.gpg"))
            .unwrap();
        Bed {
            tmp,
            repo: Arc::new(Mutex::new(repo)),
            up,
        }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("mirror")
    }

    fn config_path(&self) -> PathBuf {
        self.tmp.path().join("mirror.toml")
    }

    /// Writes a config with one mirror `m`; `mirror_extra` is appended to its table.
    fn config(&self, suites: &str, mirror_extra: &str) {
        let text = format!(
            r#"dir = "{dir}"
max_conns = 4
[http]
connect_timeout = 2
read_timeout = 1
retries = 2
retry_delay = 0.05
[mirror.m]
url = "{url}/"
suites = {suites}
{mirror_extra}
"#,
            dir = self.dir().display(),
            url = self.up.url(),
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// The usual config: suite stable, main, amd64, signed.
    fn standard_config(&self) {
        self.config(
            r#"["stable"]"#,
            r#"sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg""#,
        );
    }

    fn run(&self) -> u8 {
        run_args(&self.config_path(), &[])
    }

    fn link_target(&self) -> PathBuf {
        std::fs::read_link(self.dir().join("m")).unwrap()
    }

    /// The `.m.*` entries of the mirror root other than pool generations.
    fn snapshot_dirs(&self) -> Vec<String> {
        self.entries(".m.")
            .into_iter()
            .filter(|n| !n.starts_with(".m.pool-"))
            .collect()
    }

    /// The shared pool generations (`.m.pool-*`).
    fn pool_generations(&self) -> Vec<String> {
        self.entries(".m.pool-")
    }

    fn entries(&self, prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix))
            .collect();
        v.sort();
        v
    }

    fn summary(&self) -> serde_json::Value {
        let data = std::fs::read(self.dir().join("apt-mirror-summary.json")).unwrap();
        serde_json::from_slice(&data).unwrap()
    }

    fn mirrored(&self, path: &str) -> PathBuf {
        self.dir().join("m").join(path)
    }

    /// The files of the current snapshot's `info.json`.
    fn current_info(&self) -> serde_json::Map<String, serde_json::Value> {
        let dir = self.dir().join(self.link_target());
        let info: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.parent().unwrap().join("info.json")).unwrap(),
        )
        .unwrap();
        info["files"].as_object().unwrap().clone()
    }

    /// Checks that the shared pool generations hold exactly the files that the
    /// complete snapshots' `info.json` name under their `pool` symlinks, and
    /// that every snapshot's `pool` is a relative symlink into one.
    fn assert_pool_exact(&self) {
        let mut named = std::collections::BTreeSet::new();
        for snap in self.snapshot_dirs() {
            let dir = self.dir().join(&snap);
            let Ok(data) = std::fs::read(dir.join("info.json")) else {
                continue;
            };
            let link = std::fs::read_link(dir.join("m/pool")).unwrap();
            let link = link.to_string_lossy().to_string();
            let generation = link
                .strip_prefix("../../")
                .and_then(|l| l.strip_suffix("/pool"))
                .unwrap_or_else(|| panic!("{snap}: pool -> {link}"));
            let info: serde_json::Value = serde_json::from_slice(&data).unwrap();
            for path in info["files"].as_object().unwrap().keys() {
                if path.starts_with("pool/") {
                    named.insert(format!("{generation}/{path}"));
                }
            }
        }
        let mut held = std::collections::BTreeSet::new();
        for generation in self.pool_generations() {
            for f in files_under(&self.dir().join(&generation)) {
                held.insert(format!("{generation}/{f}"));
            }
        }
        assert_eq!(held, named, "pool files held vs named by kept snapshots");
    }

    /// Checks every published package and the suite's Release files are in the mirror,
    /// byte-identical to upstream.
    fn assert_complete(&self) {
        let repo = self.repo.lock().unwrap();
        assert!(!repo.packages().is_empty());
        for p in repo.packages() {
            let got = std::fs::read(self.mirrored(&p.pool_path))
                .unwrap_or_else(|e| panic!("{}: {e}", p.pool_path));
            assert_eq!(
                got,
                std::fs::read(repo.root().join(&p.pool_path)).unwrap(),
                "{}",
                p.pool_path
            );
        }
        for suite in &repo.config().suites {
            let d = repo.suite_url_path(suite);
            let rel = if d.is_empty() {
                "InRelease".to_string()
            } else {
                format!("{d}/InRelease")
            };
            assert_eq!(
                std::fs::read(self.mirrored(&rel)).unwrap(),
                std::fs::read(repo.root().join(&rel)).unwrap()
            );
        }
    }
}

fn run_args(config: &Path, ids: &[&str]) -> u8 {
    testkit::mirror::run(config, ids)
}

fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

/// Environment variable that turns this test executable into apt-mirror
/// (see [`child_process_entry`]); holds the arguments separated by `\x1f`.
const CHILD_ENV: &str = "APT_MIRROR_TEST_CHILD_ARGS";

/// A command that runs apt-mirror with `args` in a child process.
fn apt_mirror_command(args: &[&std::ffi::OsStr]) -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--exact",
        "mirror_e2e::process::child_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(
        CHILD_ENV,
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join("\x1f"),
    );
    cmd
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().to_string());
            }
        }
    }
    out.sort();
    out
}
