//! The real binary accepts on every socket it is given: systemd passes as
//! many as the socket unit has `ListenStream=` lines (`LISTEN_FDS=N`,
//! descriptors 3, 4, …), and a `listen_address` array binds each address.
//! A client of either socket gets its answer (the cacher's own status page:
//! no upstream is needed), and SIGTERM ends the process cleanly.

use crate::common::{signal, wait_exit, wait_serving, BIN};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// ::1 when this host has it (a dual-stack test), otherwise 127.0.0.1.
fn second_host() -> &'static str {
    if TcpListener::bind("[::1]:0").is_ok() {
        "[::1]"
    } else {
        eprintln!("this host has no ::1: the second socket is on 127.0.0.1 too");
        "127.0.0.1"
    }
}

/// The status of `GET /~/status.json` on a fresh connection to `addr`.
fn status_of(addr: SocketAddr) -> std::io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET /~/status.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let head = String::from_utf8_lossy(&all);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {head}")))
}

fn write_config(dir: &Path, listen: &str) -> PathBuf {
    let conf = dir.join("apt-cacher.toml");
    std::fs::write(
        &conf,
        format!(
            "listen_address = {listen}\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\n\
             [mapping]\ndebian = \"http://127.0.0.1:9/debian\"\n",
            dir.join("meta").display(),
            dir.join("cache").display()
        ),
    )
    .unwrap();
    conf
}

/// Starts `BIN -f conf` with `listeners` passed as systemd passes them:
/// descriptors 3, 4, …, `LISTEN_FDS`, `LISTEN_PID` (a shell sets it, then
/// execs).
fn start_on_sockets(dir: &Path, conf: &Path, listeners: &[&TcpListener]) -> Child {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fds: Vec<i32> = listeners.iter().map(|l| l.as_raw_fd()).collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "LISTEN_PID=$$ LISTEN_FDS={} exec \"$@\"",
            fds.len()
        ))
        .arg("sh")
        .arg(BIN)
        .arg("-f")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr.log")).unwrap(),
        ));
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl,
    // dup2) on a vector allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // First out of the way (a descriptor may already be 3 or 4),
            // then into place; dup2 clears close-on-exec.
            let mut high = [0i32; 8];
            for (i, &fd) in fds.iter().enumerate() {
                let Some(slot) = high.get_mut(i) else {
                    return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
                };
                *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100);
                if *slot < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, &h) in high.iter().take(fds.len()).enumerate() {
                if libc::dup2(h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().expect("starting apt-cacher on passed sockets")
}

#[test]
fn socket_activation_accepts_on_every_passed_socket() {
    let dir = tempfile::tempdir().unwrap();
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind(format!("{}:0", second_host())).unwrap();
    let addrs = [a.local_addr().unwrap(), b.local_addr().unwrap()];
    // The config names a port this test holds: a cacher that bound instead
    // of taking the sockets would not start.
    let conf = write_config(dir.path(), &format!("\"{}\"", addrs[0]));
    let mut child = start_on_sockets(dir.path(), &conf, &[&a, &b]);
    let first = wait_serving(&dir.path().join("stderr.log"), &mut child);
    assert_eq!(first, addrs[0]);
    for addr in addrs {
        for _ in 0..3 {
            assert_eq!(status_of(addr).unwrap(), 200, "{addr}");
        }
    }
    signal(&child, libc::SIGTERM);
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(exit.success(), "exit status {exit}\n{log}");
    assert!(log.contains("socket activation"), "{log}");
    assert!(
        log.contains(&format!("{},{}", addrs[0], addrs[1])),
        "both addresses in the serving line: {log}"
    );
}

#[test]
fn a_list_of_addresses_binds_each() {
    let dir = tempfile::tempdir().unwrap();
    let second = second_host();
    let conf = write_config(dir.path(), &format!("[\"127.0.0.1:0\", \"{second}:0\"]"));
    let mut child = Command::new(BIN)
        .arg("-f")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let first = wait_serving(&dir.path().join("stderr.log"), &mut child);
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    // `all_addresses` lists both, in order.
    let all: Vec<SocketAddr> = log
        .lines()
        .find(|l| l.contains("apt-cacher serving"))
        .and_then(|l| l.split_once("all_addresses="))
        .map(|(_, rest)| {
            rest.trim_start_matches('"')
                .split(['"', ' ', ','])
                .map_while(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(all.len(), 2, "{log}");
    assert_eq!(all[0], first);
    for addr in &all {
        assert_eq!(status_of(*addr).unwrap(), 200, "{addr}");
    }
    signal(&child, libc::SIGTERM);
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    assert!(exit.success(), "exit status {exit}");
    for addr in &all {
        assert!(status_of(*addr).is_err(), "{addr} still answers after exit");
    }
}
