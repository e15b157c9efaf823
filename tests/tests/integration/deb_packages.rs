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

#[test]
fn build_install_run_and_purge_both_packages() {
    if !can_run() {
        return;
    }
    let started = Instant::now();
    // Never on a machine where this would destroy an operator's set-up.
    for p in PACKAGES {
        assert!(
            !dpkg_knows(p),
            "refusing to run: package {p} is known to dpkg here (dpkg --purge {p} first)"
        );
    }
    for path in STATE_DIRS
        .iter()
        .map(|(d, _)| *d)
        .chain(CONFFILES.iter().map(|(f, _)| *f))
    {
        assert!(
            fs::symlink_metadata(path).is_err(),
            "refusing to run: {path} exists (its package's purge would remove it)"
        );
    }

    // Build. The first build may be cold; the second shares its dependencies.
    let mut debs = Vec::new();
    for p in PACKAGES {
        let (deb, took) = cargo_deb(p);
        eprintln!(
            "cargo deb -p {p}: {:.1} s, {} ({} bytes)",
            took.as_secs_f64(),
            deb.display(),
            file_size(&deb)
        );
        let dbgsym = deb.with_file_name(
            deb.file_name()
                .and_then(|n| n.to_str())
                .expect("a .deb file name")
                .replacen(p, &format!("{p}-dbgsym"), 1)
                .replace(".deb", ".ddeb"),
        );
        if dbgsym.exists() {
            eprintln!(
                "  debug symbols: {} ({} bytes)",
                dbgsym.display(),
                file_size(&dbgsym)
            );
        }
        debs.push(deb);
    }

    let guard = PurgeOnDrop;
    run(Command::new("dpkg").arg("-i").args(&debs));

    // What dpkg installed.
    let ws = workspace();
    for (package, files) in FILES {
        let listed = run(Command::new("dpkg").args(["-L", package]));
        eprintln!("dpkg -L {package}:\n{listed}");
        let mut got: Vec<&str> = listed
            .lines()
            .filter(|l| !Path::new(l).is_dir() || Path::new(l).is_symlink())
            .collect();
        got.sort_unstable();
        assert_eq!(got, files, "dpkg -L {package}, directories left out");
        for dir in listed.lines().filter(|l| Path::new(l).is_dir()) {
            assert!(
                files.iter().any(|f| f.starts_with(&format!("{dir}/"))) || dir == "/.",
                "{package} owns the empty directory {dir}"
            );
        }
        let bin = format!("/usr/bin/{package}");
        assert_stripped(&bin);
        eprintln!("{bin}: {} bytes (stripped)", file_size(Path::new(&bin)));
        let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", package]));
        let (conffile, source) = CONFFILES
            .iter()
            .find(|(_, s)| s.starts_with(package))
            .expect("a conffile per package");
        assert!(
            conffiles
                .lines()
                .any(|l| l.trim().starts_with(&format!("{conffile} "))),
            "{conffile} is not a conffile of {package}: {conffiles:?}"
        );
        assert_eq!(
            fs::read(conffile).unwrap(),
            fs::read(ws.join(source)).unwrap()
        );
        assert_eq!(
            fs::read(format!("/usr/lib/sysusers.d/{package}.conf")).unwrap(),
            fs::read(ws.join(format!("contrib/systemd/{package}.sysusers.conf"))).unwrap(),
        );
        for unit in files
            .iter()
            .filter(|f| f.starts_with("/usr/lib/systemd/system/"))
        {
            let name = Path::new(unit).file_name().expect("a unit file name");
            assert_eq!(
                fs::read(unit).unwrap(),
                fs::read(ws.join("contrib/systemd").join(name)).unwrap(),
                "{unit} differs from contrib/systemd"
            );
        }
        let help = run(Command::new(&bin).arg("--help"));
        assert_eq!(
            fs::read_to_string(format!("/usr/share/doc/{package}/{package}.help")).unwrap(),
            help
        );
    }
    // The service users (system accounts) and their directories.
    for (dir, user) in STATE_DIRS {
        let (uid, gid, _, shell) =
            passwd(user).unwrap_or_else(|| panic!("no user {user} after dpkg -i"));
        assert!(uid < 1000, "{user} is not a system user: uid {uid}");
        assert_eq!(shell, "/usr/sbin/nologin");
        let m = fs::metadata(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(m.is_dir());
        assert_eq!(
            (m.uid(), m.gid()),
            (uid, gid),
            "{dir} is not owned by {user}"
        );
        assert_eq!(m.mode() & 0o7777, 0o755, "{dir}");
    }

    // An upstream both services use, and a scratch directory they can read.
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let repo = Repo::builder(tmp.path().join("upstream"))
        .by_hash(true)
        .generated_packages(4, 2000)
        .package(PackageSpec::new("tool", "1.0").size(30_000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let want_tool = fs::read(repo.root().join(&repo.package("tool").unwrap().pool_path)).unwrap();

    // apt-cacher as its user, with the installed configuration plus only a
    // port of its own and one mapping.
    let installed = fs::read_to_string("/etc/apt-cacher.toml").unwrap();
    let config = tmp.path().join("apt-cacher.toml");
    fs::write(
        &config,
        format!(
            "listen_address = \"127.0.0.1:0\"\n{installed}test = \"{}\"\n",
            up.url()
        ),
    )
    .unwrap();
    let log_path = tmp.path().join("apt-cacher.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut cacher = KillOnDrop(
        as_user("apt-cacher", "/usr/bin/apt-cacher")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let addr = wait_serving(&log_path, &mut cacher.0);
    let mut apt = AptEnv::with_key(repo.key()).unwrap();
    apt.add_source(&format!("http://{addr}/test"), "stable", &["main"])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool", "pkg0001"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(
        fs::read(apt.archives_dir().join("tool_1.0_amd64.deb")).unwrap(),
        want_tool
    );
    let (cacher_uid, ..) = passwd("apt-cacher").expect("the user apt-cacher");
    // The cacher keeps a download just after its last byte went out: wait
    // (up to 10 s, however busy the machine) until it is renamed into the
    // cache and no temporary file is left to vanish under the checks below.
    let t = Instant::now();
    let settled = |cached: &[PathBuf]| {
        cached
            .iter()
            .any(|p| p.to_string_lossy().contains("tool_1.0_amd64.deb"))
            && !cached
                .iter()
                .any(|p| p.parent().and_then(Path::file_name) == Some(".tmp".as_ref()))
    };
    let mut cached = walk(Path::new("/var/cache/apt-cacher"));
    while t.elapsed() < Duration::from_secs(10) && !settled(&cached) {
        std::thread::sleep(Duration::from_millis(50));
        cached = walk(Path::new("/var/cache/apt-cacher"));
    }
    assert!(
        cached
            .iter()
            .any(|p| p.to_string_lossy().contains("tool_1.0_amd64.deb")),
        "tool is not in the cache: {cached:#?}"
    );
    for p in &cached {
        let m = fs::symlink_metadata(p).unwrap();
        assert_eq!(
            m.uid(),
            cacher_uid,
            "{} not owned by apt-cacher",
            p.display()
        );
    }
    run(Command::new("kill").args(["-TERM", &cacher.0.id().to_string()]));
    let status = wait_exit(&mut cacher.0, Duration::from_secs(30), "apt-cacher");
    assert!(
        status.success(),
        "apt-cacher after SIGTERM: {status}\n{}",
        fs::read_to_string(&log_path).unwrap_or_default()
    );

    // apt-mirror as its user, with the installed configuration plus one mirror.
    let key = tmp.path().join("key.gpg");
    repo.key().write_public(&key).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let installed = fs::read_to_string("/etc/apt/mirror.toml").unwrap();
    let config = tmp.path().join("mirror.toml");
    fs::write(
        &config,
        format!(
            "{installed}\n[mirror.test]\nurl = \"{}\"\nsuites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"{}\"\n",
            up.url(),
            key.display()
        ),
    )
    .unwrap();
    let mirror_started = Instant::now();
    // Its output goes to a file: a pipe nobody reads could fill and stall it.
    let mirror_log = tmp.path().join("apt-mirror.log");
    let log = fs::File::create(&mirror_log).unwrap();
    let mut mirror = KillOnDrop(
        as_user("apt-mirror", "/usr/bin/apt-mirror")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let status = wait_exit(&mut mirror.0, Duration::from_secs(120), "apt-mirror");
    let mirror_out = fs::read_to_string(&mirror_log).unwrap_or_default();
    assert!(status.success(), "apt-mirror: {status}\n{mirror_out}");
    eprintln!(
        "apt-mirror run as apt-mirror: {:.1} s",
        mirror_started.elapsed().as_secs_f64()
    );
    let (mirror_uid, ..) = passwd("apt-mirror").expect("the user apt-mirror");
    let spool = walk(Path::new("/var/spool/apt-mirror"));
    for p in &spool {
        let m = fs::symlink_metadata(p).unwrap();
        assert_eq!(
            m.uid(),
            mirror_uid,
            "{} not owned by apt-mirror",
            p.display()
        );
    }
    // Served as Debian runs nginx: workers as www-data.
    let server = Nginx::serve(Path::new("/var/spool/apt-mirror")).unwrap();
    let mut apt = AptEnv::with_key(repo.key()).unwrap();
    apt.add_source(&format!("{}/test", server.url()), "stable", &["main"])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool"])
        .unwrap()
        .ok_clean()
        .unwrap();
    assert_eq!(
        fs::read(apt.archives_dir().join("tool_1.0_amd64.deb")).unwrap(),
        want_tool
    );
    drop(server);

    // Purge: nothing left but the system users.
    let listed: Vec<String> = PACKAGES
        .iter()
        .flat_map(|p| {
            run(Command::new("dpkg").args(["-L", p]))
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let out = guard.purge();
    assert!(
        out.status.success(),
        "dpkg --purge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in PACKAGES {
        assert!(!dpkg_knows(p), "dpkg still knows {p} after --purge");
        let doc = format!("/usr/share/doc/{p}");
        assert!(!Path::new(&doc).exists(), "{doc} left after purge");
    }
    for path in &listed {
        let p = Path::new(path);
        if !p.is_dir() || p.is_symlink() {
            assert!(fs::symlink_metadata(p).is_err(), "{path} left after purge");
        }
    }
    for path in STATE_DIRS
        .iter()
        .map(|(d, _)| *d)
        .chain(CONFFILES.iter().map(|(f, _)| *f))
    {
        assert!(
            fs::symlink_metadata(path).is_err(),
            "{path} left after purge"
        );
    }
    for dir in [
        "/etc/systemd/system",
        "/var/lib/systemd/deb-systemd-helper-enabled",
        "/var/lib/systemd/deb-systemd-helper-masked",
    ] {
        if Path::new(dir).is_dir() {
            let left: Vec<PathBuf> = walk(Path::new(dir))
                .into_iter()
                .filter(|p| {
                    let s = p.to_string_lossy();
                    PACKAGES.iter().any(|name| s.contains(name))
                })
                .collect();
            assert!(left.is_empty(), "left after purge: {left:#?}");
        }
    }
    for user in PACKAGES {
        if passwd(user).is_some() {
            eprintln!("the system user {user} stays after purge (Debian practice)");
        }
    }
    eprintln!(
        "deb_packages: {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}
