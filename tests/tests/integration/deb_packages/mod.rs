//! The Debian packages an operator installs, end to end on this machine:
//! `cargo deb` builds `apt-cacher` and `apt-mirror` (a release build in the
//! workspace's own target directory), `dpkg -i` installs both, and the test
//! checks what `dpkg -L` lists, that the unit and sysusers files are
//! `contrib/systemd/`'s byte for byte, that the binaries are stripped, and
//! that the service users own their directories. Then each binary runs as its
//! service user with the installed configuration: the real apt-get installs
//! a package through the cacher, and a mirror run's output, served by real
//! nginx (workers as www-data, as Debian runs it), feeds the real apt-get.
//! `dpkg --purge` then has to leave nothing behind but the two system
//! users, which stay as Debian practice has it.
//!
//! It installs into the real system, so it needs root (as CI runs it) and
//! refuses to run where the packages or their directories already exist.
//! Without root, or without cargo-deb (`cargo install --locked cargo-deb`),
//! it is skipped with a loud message, except under `CI=true`, where a
//! missing cargo-deb fails. A guard purges both packages even when the test
//! fails midway.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::{AptEnv, Nginx, PackageSpec, Repo, Upstream};

mod lifecycle;

/// The packages, their binaries, and the service user of each.
const PACKAGES: [&str; 2] = ["apt-cacher", "apt-mirror"];

/// Directories the maintainer scripts create, with their owner; purge removes them.
const STATE_DIRS: [(&str, &str); 3] = [
    ("/var/cache/apt-cacher", "apt-cacher"),
    ("/var/log/apt-cacher", "apt-cacher"),
    ("/var/spool/apt-mirror", "apt-mirror"),
];

/// The conffiles, with the file in the repository each one is.
const CONFFILES: [(&str, &str); 2] = [
    ("/etc/apt-cacher.toml", "apt-cacher/debian/apt-cacher.toml"),
    ("/etc/apt/mirror.toml", "apt-mirror/debian/mirror.toml"),
];

/// Everything `dpkg -L` lists but directories, per package.
const FILES: [(&str, &[&str]); 2] = [
    (
        "apt-cacher",
        &[
            "/etc/apt-cacher.toml",
            "/usr/bin/apt-cacher",
            "/usr/lib/systemd/system/apt-cacher.service",
            "/usr/lib/systemd/system/apt-cacher.socket",
            "/usr/lib/sysusers.d/apt-cacher.conf",
            "/usr/share/doc/apt-cacher/README.md",
            "/usr/share/doc/apt-cacher/apt-cacher.help",
            "/usr/share/doc/apt-cacher/copyright",
        ],
    ),
    (
        "apt-mirror",
        &[
            "/etc/apt/mirror.toml",
            "/usr/bin/apt-mirror",
            "/usr/lib/systemd/system/apt-mirror.service",
            "/usr/lib/systemd/system/apt-mirror.timer",
            "/usr/lib/sysusers.d/apt-mirror.conf",
            "/usr/share/doc/apt-mirror/README.md",
            "/usr/share/doc/apt-mirror/apt-mirror.help",
            "/usr/share/doc/apt-mirror/copyright",
        ],
    ),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Runs `cmd` to its end; panics with its output unless it succeeded.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// True when the test can run here; otherwise says loudly why not.
fn can_run() -> bool {
    let uid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1);
    if uid != 0 {
        eprintln!("\n*** deb_packages SKIPPED: needs root (it installs and purges packages) ***\n");
        return false;
    }
    let cargo_deb = output(Command::new(env!("CARGO")).args(["deb", "--version"]));
    if !cargo_deb.status.success() {
        let why = "cargo-deb is not installed (cargo install --locked cargo-deb)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "deb_packages: {why}; .ci/run installs it"
        );
        eprintln!("\n*** deb_packages SKIPPED: {why} ***\n");
        return false;
    }
    true
}

/// Whether dpkg knows `package` at all (installed, or its conffiles remain).
fn dpkg_knows(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .status
        .success()
}

/// Purges both packages when dropped (also when the test fails midway).
struct PurgeOnDrop;

impl PurgeOnDrop {
    fn purge(&self) -> Output {
        output(Command::new("dpkg").arg("--purge").args(PACKAGES))
    }
}

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let out = self.purge();
        if !out.status.success() {
            eprintln!(
                "deb_packages: dpkg --purge failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A child process killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits at most `limit` for `child` to exit.
fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `cargo deb -p package`: the path of the .deb and how long it took.
///
/// The release build takes minutes on every core, and this test shares one
/// test binary (`integration`) with tests that measure time (timeouts,
/// stalls, grace periods): it runs under `nice -n 19`, so that those tests
/// keep the CPU they need while it builds.
fn cargo_deb(package: &str) -> (PathBuf, Duration) {
    let started = Instant::now();
    let stdout = run(Command::new("nice").current_dir(workspace()).args([
        "-n",
        "19",
        env!("CARGO"),
        "deb",
        "-p",
        package,
    ]));
    let took = started.elapsed();
    let deb = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("cargo deb -p {package} named no .deb:\n{stdout}"));
    (workspace().join(deb), took)
}

/// `getent passwd user`: (uid, gid, home, shell).
fn passwd(user: &str) -> Option<(u32, u32, String, String)> {
    let out = output(Command::new("getent").args(["passwd", user]));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let f: Vec<&str> = line.split(':').collect();
    if !out.status.success() || f.len() != 7 {
        return None;
    }
    Some((
        f[2].parse().ok()?,
        f[3].parse().ok()?,
        f[5].to_string(),
        f[6].to_string(),
    ))
}

/// Asserts that `binary` carries no symbol table and no debug sections.
fn assert_stripped(binary: &str) {
    let sections = run(Command::new("readelf").args(["-S", "-W", binary]));
    let bad: Vec<&str> = sections
        .lines()
        // `.debug_gdb_scripts` is loaded (the pretty-printers' path), not debug info.
        .filter(|l| {
            (l.contains(" .debug_") && !l.contains(" .debug_gdb_scripts "))
                || l.contains(" .symtab ")
        })
        .collect();
    assert!(bad.is_empty(), "{binary} is not stripped: {bad:#?}");
}

/// Every entry under `dir` (recursively), with `dir` itself.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        i += 1;
        if p.is_dir() && !p.is_symlink() {
            for e in fs::read_dir(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())) {
                out.push(e.expect("a directory entry").path());
            }
        }
    }
    out
}

/// The `serving` line's address in apt-cacher's log, waiting at most 30 s.
fn wait_serving(log: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("apt-cacher serving")) {
            let rest = line.split_once("address=").map(|(_, r)| r).unwrap_or("");
            let addr: String = rest
                .trim_start_matches('"')
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            assert!(!addr.is_empty(), "no address in {line}");
            return addr;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("apt-cacher exited ({status}) before serving:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "apt-cacher did not start:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `program args` as the system user `user` (its uid, gid and groups).
fn as_user(user: &str, program: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={user}"))
        .arg(format!("--regid={user}"))
        .arg("--init-groups")
        .arg("--")
        .arg(program);
    cmd
}

fn file_size(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}
