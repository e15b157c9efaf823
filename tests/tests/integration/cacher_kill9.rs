//! A real `kill -9` of a running apt-cacher process in the middle of a
//! download, then a restart on the same directories: nothing partial is
//! visible as cached, the temporary file is cleaned up, what was cached
//! before the kill is served again without asking the upstream, and the real
//! apt completes its update and downloads.
//!
//! The cacher runs in a child process: this test executable re-runs itself
//! with [`CHILD_ENV`] set, and the [`child_process_entry`] "test" then runs
//! `apt_cacher::run` until it is killed.

use apt_cacher::{CancellationToken, Config};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::{AptEnv, PackageSpec, Repo, Times, Upstream};

/// Environment variable that turns this test executable into apt-cacher;
/// holds the path of the configuration file.
const CHILD_ENV: &str = "APT_CACHER_TEST_CHILD_CONFIG";

/// Not a test: when this executable is re-run with [`CHILD_ENV`], this runs
/// the cacher in that separate process, which the parent can `kill -9`.
#[test]
fn child_process_entry() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let config = Config::load(Path::new(&path)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(apt_cacher::run(config, CancellationToken::new()))
        .unwrap();
    std::process::exit(0);
}

/// Starts the cacher in a child process and waits until it accepts connections.
fn spawn_cacher(config: &Path, addr: SocketAddr) -> Child {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cacher_kill9::child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the cacher never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn sha256_of(path: &Path) -> String {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    testkit::Checksums::of(&data).sha256
}

#[test]
fn kill_9_mid_download_then_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .package(PackageSpec::new("hello", "2.10-3").size(50_000))
        .package(PackageSpec::new("big", "1.0").size(4 << 20))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let cache_dir = tmp.path().join("cache"); // as testkit::cacher::config_text lays it out
    let addr: SocketAddr = format!("127.0.0.1:{}", testkit::free_port())
        .parse()
        .unwrap();
    let config = tmp.path().join("apt-cacher.toml");
    std::fs::write(
        &config,
        testkit::cacher::config_text(tmp.path(), &addr.to_string(), &up.url(), ""),
    )
    .unwrap();

    // A first client fills the cache with the metadata and `hello`.
    let mut child = spawn_cacher(&config, addr);
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{addr}/debian"), "stable", &["main"])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["hello"])
        .unwrap()
        .ok_clean()
        .unwrap();
    // Pool files are committed (synced, renamed) just after the client is served.
    let visible = || -> Vec<PathBuf> {
        files_under(&cache_dir)
            .into_iter()
            .filter(|p| !p.starts_with(cache_dir.join(".tmp")))
            .collect()
    };
    let t = Instant::now();
    while visible().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "hello was not cached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cached_before = visible().len();

    // `big` trickles in at 256 KiB/s; kill -9 the cacher about a second in.
    let big = repo.package("big").unwrap().clone();
    up.throttle("*/big_*", 256 << 10, Times::Always);
    let request = format!(
        "GET /debian/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        big.pool_path
    );
    let fetch = std::thread::spawn(move || {
        // The server dies mid-body: whatever arrived is less than the whole file.
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received);
        assert!(
            received.len() < 4 << 20,
            "a complete body of {} bytes",
            received.len()
        );
    });
    let t = Instant::now();
    while up.requests(&format!("/{}", big.pool_path)) == 0 {
        assert!(t.elapsed() < Duration::from_secs(20), "big never requested");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1000));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    fetch.join().unwrap();

    // Nothing of `big` is visible as cached.
    let visible = visible();
    assert_eq!(visible.len(), cached_before, "{visible:?}");
    assert!(
        !visible.iter().any(|p| p.to_string_lossy().contains("big_")),
        "{visible:?}"
    );

    // Restart on the same directories: leftovers gone, the cache still serves.
    up.clear_faults();
    up.reset_counts();
    let mut child = spawn_cacher(&config, addr);
    assert!(
        files_under(&cache_dir.join(".tmp")).is_empty(),
        "temporary leftovers were not removed at start"
    );
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{addr}/debian"), "stable", &["main"])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["hello", "big"])
        .unwrap()
        .ok_clean()
        .unwrap();
    for name in ["hello", "big"] {
        let p = repo.package(name).unwrap();
        assert_eq!(
            sha256_of(&apt.archives_dir().join(p.deb_file_name())),
            p.sha256(),
            "{name}"
        );
    }
    let hello = repo.package("hello").unwrap();
    assert_eq!(
        up.requests(&format!("/{}", hello.pool_path)),
        0,
        "hello was fetched again after the restart: {:?}",
        up.request_log()
    );
    assert_eq!(up.requests(&format!("/{}", big.pool_path)), 1);
    child.kill().unwrap();
    child.wait().unwrap();
}
