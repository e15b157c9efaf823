//! An unchanged go-apt-cacher configuration under the shipped systemd unit.
//! Every place it writes (`meta_dir`, `cache_dir`, the log file's
//! directory) lies in the unit's `ReadWritePaths=` plus those of the drop-in
//! `apt-cacher.service.d/go-apt-cacher.conf` (and not in the unit's alone:
//! that is why the drop-in exists), and the drop-in passes `systemd-analyze
//! verify` with the units. When a place is read-only anyway, the real
//! binary stops at start with an error that names the key, the path and
//! the remedy: `meta_dir` on a read-only bind mount in a private mount
//! namespace (`unshare --mount`, as root), or a directory of mode 0555 when
//! not root; and the same for the log file's directory.

use crate::common::{wait_exit, BIN};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The paths of go-apt-cacher's example configuration (its mappings with
/// placeholder hosts).
const GO_CONFIG: &str = r#"listen_address = ":3142"
check_interval = 600
cache_period = 3
meta_dir = "/var/spool/go-apt-cacher/meta"
cache_dir = "/var/spool/go-apt-cacher/cache"
cache_capacity = 1
max_conns = 10

[log]
filename = "/var/log/go-apt-cacher.log"
level = "info"
format = "plain"

[mapping]
ubuntu = "http://archive.example.org/ubuntu"
security = "http://security.example.org/ubuntu"
"#;

/// The text a read-only place's error ends with.
const READ_ONLY_HINT: &str = "read-only file system: under the shipped systemd unit add the path to ReadWritePaths= (see apt-cacher/README.md, Migrating)";

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/systemd")
}

const DROP_IN: &str = "apt-cacher.service.d/go-apt-cacher.conf";

/// The `ReadWritePaths=` of a unit file's text, in order (an empty
/// assignment clears the list, as systemd reads it; a leading `-` only
/// means "ignore if missing").
fn read_write_paths(text: &str, mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    for line in text.lines().map(str::trim) {
        let Some(value) = line.strip_prefix("ReadWritePaths=") else {
            continue;
        };
        if value.trim().is_empty() {
            paths.clear();
        }
        paths.extend(
            value
                .split_whitespace()
                .map(|p| PathBuf::from(p.trim_start_matches(['-', '+']))),
        );
    }
    paths
}

/// The places a configuration writes: `meta_dir`, `cache_dir` and the log
/// file's directory (the file is created, and re-created after rotation).
fn written_places(config: &apt_cacher::Config) -> Vec<(&'static str, PathBuf)> {
    let mut places = vec![
        ("meta_dir", config.meta_dir.clone()),
        ("cache_dir", config.cache_dir.clone()),
    ];
    if let Some(dir) = config.log.filename.as_deref().and_then(Path::parent) {
        places.push(("log.filename", dir.to_path_buf()));
    }
    places
}

fn covered(path: &Path, writable: &[PathBuf]) -> bool {
    writable.iter().any(|w| path.starts_with(w))
}

#[test]
fn go_config_paths_are_writable_under_the_unit_with_the_drop_in() {
    let config = apt_cacher::Config::parse("go-apt-cacher.toml", GO_CONFIG).unwrap();
    let unit = std::fs::read_to_string(contrib().join("apt-cacher.service")).unwrap();
    let drop_in = std::fs::read_to_string(contrib().join(DROP_IN)).unwrap();
    let unit_only = read_write_paths(&unit, Vec::new());
    assert!(!unit_only.is_empty(), "the unit has ReadWritePaths=");
    let with_drop_in = read_write_paths(&drop_in, unit_only.clone());
    for (key, path) in written_places(&config) {
        assert!(
            covered(&path, &with_drop_in),
            "{key} {} is not in ReadWritePaths= {with_drop_in:?}",
            path.display()
        );
    }
    // The unit alone leaves them read-only: the drop-in is what is needed.
    assert!(written_places(&config)
        .iter()
        .all(|(_, p)| !covered(p, &unit_only)));
    // The drop-in only adds to the unit's list.
    assert!(unit_only.iter().all(|p| with_drop_in.contains(p)));
}

/// `systemd-analyze verify` of the units with `drop_in_text` as the
/// drop-in: its exit status and every message about our files.
fn verify_with_drop_in(drop_in_text: &str) -> (bool, Vec<String>) {
    let tool = "/usr/bin/systemd-analyze";
    assert!(
        Path::new(tool).exists(),
        "needs systemd-analyze (Debian package systemd)"
    );
    let dir = tempfile::tempdir().unwrap();
    for unit in ["apt-cacher.service", "apt-cacher.socket"] {
        let text = std::fs::read_to_string(contrib().join(unit)).unwrap();
        let text = text.replace("/usr/bin/apt-cacher", BIN);
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    std::fs::create_dir(dir.path().join("apt-cacher.service.d")).unwrap();
    std::fs::write(dir.path().join(DROP_IN), drop_in_text).unwrap();
    // The units' own directory is searched for drop-ins too.
    let out = Command::new(tool)
        .arg("verify")
        .arg("--man=no")
        .arg(dir.path().join("apt-cacher.service"))
        .arg(dir.path().join("apt-cacher.socket"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let about_us = text
        .lines()
        .filter(|l| l.contains(&*dir.path().to_string_lossy()) || l.contains("apt-cacher"))
        .map(str::to_string)
        .collect();
    (out.status.success(), about_us)
}

#[test]
fn the_drop_in_verifies_with_the_units() {
    let drop_in = std::fs::read_to_string(contrib().join(DROP_IN)).unwrap();
    let (ok, messages) = verify_with_drop_in(&drop_in);
    assert!(
        ok && messages.is_empty(),
        "systemd-analyze verify: {messages:#?}"
    );
    // A broken drop-in is reported: the drop-in is really read.
    let broken = drop_in.replace("ReadWritePaths=", "ReadWritePath=");
    assert_ne!(broken, drop_in);
    let (ok, messages) = verify_with_drop_in(&broken);
    assert!(
        !ok || messages.iter().any(|m| m.contains("go-apt-cacher.conf")),
        "not reported: {messages:#?}"
    );
}

/// How a place is made unwritable for the cacher.
enum Confinement {
    /// A read-only bind mount in a private mount namespace (root).
    ReadOnlyMount,
    /// Mode 0555 (not root; root would ignore it).
    Mode0555,
}

/// Runs the cacher with `conf` while `dir` is not writable for it; returns
/// how, its exit status and its standard error, or `None` (after saying
/// why) when this host cannot make `dir` read-only for it.
fn run_with_unwritable(
    dir: &Path,
    conf: &Path,
    work: &Path,
) -> Option<(Confinement, std::process::ExitStatus, String)> {
    // SAFETY: geteuid(2) has no preconditions and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let stderr_path = work.join("stderr.log");
    let stderr = Stdio::from(std::fs::File::create(&stderr_path).unwrap());
    let (how, mut cmd) = if root {
        let mut cmd = Command::new("unshare");
        // A private namespace: the mount is gone when the cacher exits.
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount -o bind,ro "$1" "$1" || { echo "MOUNT FAILED" >&2; exit 99; }; exec "$2" -f "$3""#)
            .arg("sh")
            .arg(dir)
            .arg(BIN)
            .arg(conf);
        (Confinement::ReadOnlyMount, cmd)
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("-f").arg(conf);
        (Confinement::Mode0555, cmd)
    };
    let mut child = match cmd.stdout(Stdio::null()).stderr(stderr).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED: cannot run unshare (Debian package util-linux): {e}");
            return None;
        }
    };
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    if matches!(how, Confinement::ReadOnlyMount)
        && (text.contains("MOUNT FAILED") || text.starts_with("unshare:"))
    {
        eprintln!("SKIPPED: this host does not allow a private read-only mount:\n{text}");
        return None;
    }
    Some((how, status, text))
}

/// Asserts that the cacher failed with an error naming `key`, `path` and the
/// remedy for how it was confined.
fn assert_names(key: &str, path: &Path, run: (Confinement, std::process::ExitStatus, String)) {
    let (how, status, text) = run;
    assert!(!status.success(), "started anyway: {status}\n{text}");
    let named = format!("{key} {:?}: ", path);
    assert!(text.contains(&named), "{named} not in:\n{text}");
    match how {
        Confinement::ReadOnlyMount => {
            assert!(text.contains("Read-only file system"), "{text}");
            assert!(text.trim_end().ends_with(READ_ONLY_HINT), "{text}");
        }
        Confinement::Mode0555 => {
            assert!(
                text.contains("permission denied: the user the cacher runs as must own it"),
                "{text}"
            );
        }
    }
    eprintln!("the error: {}", text.trim_end());
}

/// A configuration under `work` with `meta_dir`, `cache_dir` and the log
/// file at the given paths.
fn write_config(work: &Path, meta: &Path, cache: &Path, log: Option<&Path>) -> PathBuf {
    let conf = work.join("go-apt-cacher.toml");
    let mut text = format!(
        "listen_address = \"127.0.0.1:0\"\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\n",
        meta.display(),
        cache.display()
    );
    if let Some(log) = log {
        text.push_str(&format!("[log]\nfilename = \"{}\"\n", log.display()));
    }
    text.push_str("[mapping]\ndebian = \"http://127.0.0.1:9/debian\"\n");
    std::fs::write(&conf, text).unwrap();
    conf
}

#[test]
fn a_read_only_meta_dir_is_named_with_its_remedy() {
    let work = tempfile::tempdir().unwrap();
    // The Go layout: meta and cache under one spool directory, which exists.
    let spool = work.path().join("spool");
    let meta = spool.join("meta");
    std::fs::create_dir_all(&meta).unwrap();
    let conf = write_config(work.path(), &meta, &work.path().join("cache"), None);
    let Some(run) = run_with_unwritable(&meta, &conf, work.path()) else {
        return;
    };
    assert_names("meta_dir", &meta, run);
}

#[test]
fn a_read_only_log_directory_is_named_with_its_remedy() {
    let work = tempfile::tempdir().unwrap();
    let log_dir = work.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = log_dir.join("go-apt-cacher.log");
    let conf = write_config(
        work.path(),
        &work.path().join("meta"),
        &work.path().join("cache"),
        Some(&log),
    );
    let Some(run) = run_with_unwritable(&log_dir, &conf, work.path()) else {
        return;
    };
    assert_names("log.filename", &log, run);
}
