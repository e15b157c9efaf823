//! Helpers shared by the tests that run the real `apt-cacher` binary: find
//! the address it serves on (it binds port 0 and says where in its
//! `apt-cacher serving address=…` log line, so no port is guessed), start it
//! on a socket the test holds (as systemd passes one), signal it, and wait
//! for its exit with a bound.
// Each test file uses only some of these.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_apt-cacher");

/// The address in the first `apt-cacher serving` line of a log (plain,
/// logfmt or JSON), if there is one yet.
pub fn serving_address(log: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|l| l.contains("apt-cacher serving"))?;
    let (_, rest) = line
        .split_once("address=")
        .or_else(|| line.split_once("\"address\":"))?;
    let value = rest.trim_start_matches('"');
    let end = value
        .find(|c: char| c == '"' || c == ',' || c == '}' || c.is_whitespace())
        .unwrap_or(value.len());
    value.get(..end)?.parse().ok()
}

/// Waits (at most 30 s) until the log file `log` names the address the
/// cacher serves on; panics if the cacher exits first.
pub fn wait_serving(log: &Path, child: &mut Child) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = serving_address(&text) {
            return addr;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("apt-cacher exited ({status}) before serving:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "no `apt-cacher serving` line in {}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A command that runs `program` with `listener` passed the way systemd
/// passes a socket: descriptor 3, `LISTEN_FDS=1`, `LISTEN_PID` = its pid (a
/// shell sets it, then execs). Add the program's arguments with `.arg()`.
pub fn on_socket(program: &str, listener: &TcpListener) -> Command {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\"")
        .arg("sh")
        .arg(program);
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl).
    unsafe {
        cmd.pre_exec(move || {
            let rc = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Sends `sig` to `child`.
pub fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).expect("a pid fits in i32");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill {pid}");
}

/// Waits at most `limit` for `child` to exit; kills it and panics after.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waitpid") {
            return status;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("apt-cacher did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn serving_address_in_every_format() {
    let plain = "2026-11-27T10:00:00.000Z  INFO apt_cacher: apt-cacher serving \
                 address=127.0.0.1:41234 socket=\"bound\" cached_files=0\n";
    let logfmt = "time=2026-11-27T10:00:00.000Z level=info msg=\"apt-cacher serving\" \
                  address=127.0.0.1:41234 socket=bound\n";
    let json = "{\"timestamp\":\"x\",\"level\":\"INFO\",\"message\":\"apt-cacher serving\",\
                \"address\":\"127.0.0.1:41234\",\"socket\":\"bound\"}\n";
    let want: SocketAddr = "127.0.0.1:41234".parse().unwrap();
    for log in [plain, logfmt, json] {
        assert_eq!(
            serving_address(&format!("other line\n{log}")),
            Some(want),
            "{log}"
        );
    }
    assert_eq!(serving_address("apt-cacher starting\n"), None);
}
