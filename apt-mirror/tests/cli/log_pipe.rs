//! The real `apt-mirror` binary finishes its run and exits with its normal
//! status when its standard output and error are pipes whose readers died
//! (EPIPE on every write) or when its log file is on a full disk
//! (`/dev/full`: ENOSPC). The upstream is a tiny server started here on
//! 127.0.0.1, serving an unsigned repository with one empty index.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serves `files` (path → body) over HTTP/1.1, 404 for anything else, until
/// the test process ends. Returns the base URL.
fn upstream(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let files = files.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&got);
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let (status, body) = match files.get(path) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", Vec::new()),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if method != "HEAD" {
                    let _ = conn.write_all(&body);
                }
            });
        }
    });
    url
}

/// An unsigned repository at `/debian`: suite `stable`, `main`, `amd64`,
/// one empty Packages index.
fn repository() -> HashMap<String, Vec<u8>> {
    let release = "Origin: test\nSuite: stable\nCodename: stable\n\
        Date: Fri, 27 Nov 2026 10:00:00 UTC\nArchitectures: amd64\nComponents: main\n\
        SHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages\n";
    HashMap::from([
        (
            "/debian/dists/stable/Release".to_string(),
            release.as_bytes().to_vec(),
        ),
        (
            "/debian/dists/stable/main/binary-amd64/Packages".to_string(),
            Vec::new(),
        ),
    ])
}

/// Writes mirror.toml in `dir` (mirror root `dir/mirror`) and returns its path.
fn config(dir: &Path, url: &str, log: &str) -> PathBuf {
    let root = dir.join("mirror");
    std::fs::create_dir_all(&root).unwrap();
    let path = dir.join("mirror.toml");
    let text = format!(
        "dir = \"{}\"\n\n[log]\n{log}\n\n[mirror.test]\nurl = \"{url}/debian\"\nsuites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\n",
        root.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A pipe whose read end is already closed: every write to it gets EPIPE.
fn dead_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// A pipe that is full and whose reader (returned, keep it) never reads:
/// every write to it blocks.
fn stuck_pipe() -> (std::io::PipeReader, Stdio) {
    use std::os::fd::AsRawFd;
    let (reader, mut writer) = std::io::pipe().unwrap();
    let fd = writer.as_raw_fd();
    // SAFETY: fcntl(2) flag changes on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
        while writer.write(&[b'x'; 4096]).is_ok() {}
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags), 0);
    }
    (reader, writer.into())
}

/// Runs apt-mirror with `args`, standard output and error on dead pipes.
fn run_dead(args: &[&str]) -> ExitStatus {
    run_with(args, dead_pipe(), dead_pipe())
}

fn run_with(args: &[&str], stdout: Stdio, stderr: Stdio) -> ExitStatus {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apt-mirror"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .env_remove("APT_MIRROR_LOG")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("apt-mirror did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_status(status: ExitStatus, code: i32) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), None, "killed by a signal: {status:?}");
    assert_eq!(status.code(), Some(code), "{status:?}");
}

#[test]
fn a_run_with_dead_stdout_and_stderr_completes() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), &upstream(repository()), "level = \"info\"");
    let status = run_dead(&["--config", conf.to_str().unwrap(), "--log-level", "debug"]);
    assert_status(status, 0);
    let root = dir.path().join("mirror");
    assert!(root.join("test").exists(), "the snapshot was published");
    assert!(root.join("apt-mirror-summary.json").exists());
}

#[test]
fn stuck_stdout_and_stderr_readers_do_not_hang_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), &upstream(repository()), "level = \"debug\"");
    let (_out_reader, stdout) = stuck_pipe();
    let (_err_reader, stderr) = stuck_pipe();
    let t = Instant::now();
    let status = run_with(&["--config", conf.to_str().unwrap()], stdout, stderr);
    assert_status(status, 0);
    // The summary line gives up after a second, the exit flush after another.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(dir.path().join("mirror/test").exists());
}

#[test]
fn a_failing_run_with_dead_pipes_keeps_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), &upstream(HashMap::new()), "format = \"logfmt\"");
    let status = run_dead(&["--config", conf.to_str().unwrap()]);
    assert_status(status, 1);
}

#[test]
fn a_log_file_on_a_full_disk_does_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(
        dir.path(),
        &upstream(repository()),
        "filename = \"/dev/full\"\nformat = \"json\"\nlevel = \"debug\"",
    );
    let status = run_dead(&["--config", conf.to_str().unwrap()]);
    assert_status(status, 0);
    assert!(dir.path().join("mirror/test").exists());
}

#[test]
fn check_config_with_dead_pipes_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), "http://127.0.0.1:9", "");
    assert_status(
        run_dead(&["--config", conf.to_str().unwrap(), "--check-config"]),
        0,
    );
}

#[test]
fn the_log_file_flag_overrides_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mirror.log");
    let conf = config(
        dir.path(),
        &upstream(repository()),
        "filename = \"/dev/full\"",
    );
    let status = run_dead(&[
        "--config",
        conf.to_str().unwrap(),
        "--log-file",
        log.to_str().unwrap(),
        "--log-format",
        "json",
    ]);
    assert_status(status, 0);
    // The exit flush wrote every line; each is a JSON object.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.is_empty());
    for line in text.lines() {
        assert!(
            line.starts_with("{\"timestamp\":\"20") && line.ends_with('}'),
            "{line}"
        );
        assert!(line.contains("\"level\":"), "{line}");
    }
}

#[test]
fn bad_log_names_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), "http://127.0.0.1:9", "level = \"loud\"");
    let out = Command::new(env!("CARGO_BIN_EXE_apt-mirror"))
        .args(["--config", conf.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("log.level") && err.contains("loud"), "{err}");
}
