//! The real `apt-cacher` binary survives any failure of its log destination:
//! a standard error pipe whose reader died (EPIPE), a full disk (`/dev/full`:
//! ENOSPC). It keeps answering every request and exits with status 0 on
//! SIGTERM. And SIGUSR1 reopens a log file that logrotate renamed away.
//! Everything runs on 127.0.0.1; the upstream is a tiny server started here.
//! The cacher binds port 0 and the test reads the address from its log (or,
//! logging to `/dev/full`, it is given a socket the test holds).

use crate::common;

use crate::common::{on_socket, serving_address, signal, wait_serving, BIN};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// An upstream answering every request with 404, forever (a detached thread).
fn upstream_404() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    url
}

/// Writes a config file in `dir` (listening on port 0) and returns its path.
fn config(dir: &Path, upstream: &str, log: &str) -> std::path::PathBuf {
    let path = dir.join("apt-cacher.toml");
    let text = format!(
        "listen_address = \"127.0.0.1:0\"\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\n\n[log]\n{log}\n\n[mapping]\ndebian = \"{upstream}\"\n",
        dir.join("meta").display(),
        dir.join("cache").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The cacher process; killed if a test fails before it exited.
struct Cacher(Child);

impl std::ops::Deref for Cacher {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Cacher {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Cacher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cacher(config: &Path, extra: &[&str], stderr: Stdio) -> Cacher {
    cacher_with(Command::new(BIN), config, extra, stderr)
}

/// [`cacher`] run by `cmd` (the binary itself, or a shell passing it a socket).
fn cacher_with(mut cmd: Command, config: &Path, extra: &[&str], stderr: Stdio) -> Cacher {
    let child = cmd
        .arg("--config")
        .arg(config)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .env_remove("APT_CACHER_LOG")
        .spawn()
        .unwrap();
    Cacher(child)
}

/// One `GET`, `Connection: close`; the status code, or an error text.
fn get(port: u16, path: &str) -> Result<u16, String> {
    get_body(port, path).map(|(code, _)| code)
}

/// One `GET`, `Connection: close`; the status code and the whole response.
fn get_body(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
    let resp = String::from_utf8_lossy(&resp).to_string();
    let code = resp
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {:?}", resp.get(..12)))?;
    Ok((code, resp))
}

/// Waits until `/~/metrics` counts at least `n` dropped log lines (the
/// writer thread drops them a moment after the responses went out).
fn wait_dropped(port: u16, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dropped = dropped_lines(port);
        if dropped >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {dropped} dropped lines");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `apt_cacher_log_dropped_lines_total` counter of `/~/metrics`.
fn dropped_lines(port: u16) -> u64 {
    let (code, text) = get_body(port, "/~/metrics").unwrap();
    assert_eq!(code, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("apt_cacher_log_dropped_lines_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dropped-lines counter in /~/metrics:\n{text}"))
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    common::wait_exit(child, Duration::from_secs(30))
}

/// `n` requests to unknown prefixes (404 from the cacher itself) and a few
/// through the mapping (404 from the upstream): every one is answered.
fn hammer(port: u16, n: usize) {
    for i in 0..n {
        let path = if i % 100 == 0 {
            format!("/debian/pool/main/x/x_{i}.deb")
        } else {
            format!("/nosuchprefix/{i}")
        };
        match get(port, &path) {
            Ok(code) => assert!((400..600).contains(&code), "{path}: {code}"),
            Err(e) => panic!("request {i} ({path}) got no response: {e}"),
        }
    }
}

/// Reads the cacher's standard error up to its `apt-cacher serving` line;
/// the port it names.
fn read_serving_port(stderr: &mut impl BufRead) -> u16 {
    let mut line = String::new();
    loop {
        line.clear();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(n > 0, "apt-cacher's stderr ended before it served");
        if let Some(addr) = serving_address(&line) {
            return addr.port();
        }
    }
}

fn assert_clean_exit(status: ExitStatus) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), None, "killed by a signal: {status:?}");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn a_dead_stderr_reader_does_not_kill_the_cacher() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), &upstream_404(), "level = \"info\"");
    let mut child = cacher(&conf, &[], Stdio::piped());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let port = read_serving_port(&mut stderr);
    drop(stderr); // the reader dies: every later log write gets EPIPE
    hammer(port, 500);
    // Each access line met EPIPE: dropped and counted.
    wait_dropped(port, 500);
    signal(&child, libc::SIGTERM);
    assert_clean_exit(wait_exit(&mut child));
}

#[test]
fn a_stuck_stderr_reader_does_not_stall_the_cacher() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), &upstream_404(), "level = \"debug\"");
    // The reader stays alive but, once it has the address, never reads
    // again: when the pipe buffer is full, the writer thread is stuck in
    // write(2) and the queue fills up.
    let mut child = cacher(&conf, &[], Stdio::piped());
    let mut stuck_reader = BufReader::new(child.stderr.take().unwrap());
    let port = read_serving_port(&mut stuck_reader);
    let t = Instant::now();
    hammer(port, 2000);
    let took = t.elapsed();
    wait_dropped(port, 1);
    signal(&child, libc::SIGTERM);
    let t = Instant::now();
    assert_clean_exit(wait_exit(&mut child));
    // The exit flush gives up after a second instead of hanging.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(
        took < Duration::from_secs(60),
        "2000 requests took {took:?}"
    );
    drop(stuck_reader);
}

#[test]
fn a_full_disk_does_not_stop_the_cacher() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(
        dir.path(),
        &upstream_404(),
        "filename = \"/dev/full\"\nformat = \"json\"",
    );
    // Its log says nothing (ENOSPC), so the cacher is given a socket.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cmd = on_socket(BIN, &listener);
    let mut child = cacher_with(cmd, &conf, &["--log-level", "debug"], Stdio::null());
    hammer(port, 300);
    // Each line met ENOSPC: dropped and counted.
    wait_dropped(port, 300);
    signal(&child, libc::SIGTERM);
    assert_clean_exit(wait_exit(&mut child));
}

/// Polls `path` until it contains `needle`.
fn wait_for_text(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never got {needle:?}; it has:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigusr1_reopens_the_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cacher.log");
    let conf = config(dir.path(), &upstream_404(), "level = \"info\"");
    // The command line overrides [log]: file and format.
    let mut child = cacher(
        &conf,
        &[
            "--log-file",
            log.to_str().unwrap(),
            "--log-format",
            "logfmt",
        ],
        Stdio::null(),
    );
    let port = wait_serving(&log, &mut child).port();
    assert_eq!(get(port, "/nosuchprefix/before"), Ok(404));
    wait_for_text(&log, "/nosuchprefix/before");

    let rotated = dir.path().join("cacher.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(&child, libc::SIGUSR1);
    wait_for_text(&log, "reopened");
    assert_eq!(get(port, "/nosuchprefix/after"), Ok(404));
    let text = wait_for_text(&log, "/nosuchprefix/after");
    let access = text
        .lines()
        .find(|l| l.contains("/nosuchprefix/after"))
        .unwrap();
    assert!(access.starts_with("time=20"), "{access}");
    assert!(access.contains(" level=info msg=request "), "{access}");
    assert!(access.contains(" status=404"), "{access}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("/nosuchprefix/before"), "{old}");
    assert!(!old.contains("/nosuchprefix/after"), "{old}");

    signal(&child, libc::SIGTERM);
    assert_clean_exit(wait_exit(&mut child));
    // The exit flush wrote the last lines.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("shutting down"), "{text}");
}

/// A request path whose percent-encoded newline is followed by what looks
/// like a log line cannot forge a line of the cacher's plain log: every line
/// the log has is one the cacher began.
#[test]
fn a_request_path_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cacher.log");
    let conf = config(dir.path(), &upstream_404(), "level = \"debug\"");
    let mut child = cacher(
        &conf,
        &["--log-file", log.to_str().unwrap(), "--log-format", "plain"],
        Stdio::null(),
    );
    let port = wait_serving(&log, &mut child).port();
    let forged = "%0A1999-01-01T00:00:00.000Z%20ERROR%20forged:%20pwned.deb";
    for path in [
        format!("/debian/pool/a{forged}"),
        format!("/nosuchprefix/a{forged}"),
        format!("/debian/pool/a%0D{forged}%09.deb"),
    ] {
        let code = get(port, &path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!((400..500).contains(&code), "{path}: {code}");
    }
    signal(&child, libc::SIGTERM);
    assert_clean_exit(wait_exit(&mut child));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("shutting down"), "{text}");
    for line in text.lines() {
        let stamp = line.get(..24).unwrap_or_default();
        assert!(
            stamp.starts_with("20") && stamp.ends_with('Z') && !line.contains('\r'),
            "a line the cacher did not begin: {line:?}\n{text}"
        );
    }
}

#[test]
fn bad_log_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), "http://127.0.0.1:9", "level = \"loud\"");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&conf)
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("log.level") && err.contains("loud"), "{err}");
    let conf = config(dir.path(), "http://127.0.0.1:9", "");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&conf)
        .args(["--check-config", "--log-format", "text"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--log-format") && err.contains("text"),
        "{err}"
    );
}

#[test]
fn check_config_with_stdout_closed_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), "http://127.0.0.1:9", "");
    // Pipes whose read ends are closed before the start: every write gets EPIPE.
    let (reader, out) = std::io::pipe().unwrap();
    drop(reader);
    let (reader, err) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&conf)
        .arg("--check-config")
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    assert_clean_exit(wait_exit(&mut child));
}
