//! The real `apt-cacher` binary's lifecycle: SIGTERM lets a download in
//! flight finish (correct bytes for the client, exit status 0, no temporary
//! files left), the grace time bounds a stalled one, a second SIGTERM exits
//! at once; systemd socket activation (the real `systemd-socket-activate`),
//! a restart on a socket held open across processes refuses no client, and
//! `READY=1` / `STOPPING=1` reach `NOTIFY_SOCKET` (systemd `Type=notify`).
//!
//! The upstream is a tiny HTTP server on 127.0.0.1 in this test process.
//! The cacher binds port 0 and the test reads the address from its log, or
//! it is given a socket the test holds: no port is guessed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{on_socket, signal, wait_exit, wait_serving, BIN};

/// The body of `/pool/<name>` on the test upstream: `len` bytes of a pattern.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

const SLOW_LEN: usize = 1 << 20;
const SMALL_LEN: usize = 1000;

/// A tiny upstream: `/pool/slow.deb` sends 1 MiB in 64 KiB pieces over
/// about 0.8 s, `/pool/stall.deb` sends half of its body and then nothing,
/// `/pool/small.deb` answers at once; anything else is 404.
struct TestUpstream {
    addr: SocketAddr,
    /// Set when a body has begun to flow.
    started: Arc<AtomicBool>,
}

impl TestUpstream {
    fn start() -> TestUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let flag = flag.clone();
                thread::spawn(move || serve_one(stream, &flag));
            }
        });
        TestUpstream { addr, started }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn wait_started(&self) {
        let t = Instant::now();
        while !self.started.load(Ordering::SeqCst) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "upstream never asked"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

fn serve_one(mut stream: TcpStream, started: &AtomicBool) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    let (len, piece, pause, stall) = match path.as_str() {
        "/pool/slow.deb" => (SLOW_LEN, 64 * 1024, Duration::from_millis(50), false),
        "/pool/stall.deb" => (SLOW_LEN, SLOW_LEN / 2, Duration::ZERO, true),
        "/pool/small.deb" => (SMALL_LEN, SMALL_LEN, Duration::ZERO, false),
        _ => {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            return;
        }
    };
    let data = body(len);
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    for chunk in data.chunks(piece) {
        if stream.write_all(chunk).is_err() {
            return;
        }
        started.store(true, Ordering::SeqCst);
        if stall {
            thread::sleep(Duration::from_secs(120));
            return;
        }
        thread::sleep(pause);
    }
}

/// One GET over a fresh connection (`Connection: close`): status and body.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            std::io::Error::other(format!("no response header ({} bytes)", all.len()))
        })?;
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, all[split + 4..].to_vec()))
}

/// Writes the cacher's config under `dir` (listening on `listen`); returns
/// its path.
fn write_config(dir: &Path, listen: &str, upstream: &str, grace: u64) -> PathBuf {
    let conf = dir.join("apt-cacher.toml");
    std::fs::write(
        &conf,
        format!(
            "listen_address = \"{listen}\"\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\n\
             [timeouts]\nshutdown_grace = {grace}\n[mapping]\ndebian = \"{upstream}\"\n",
            dir.join("meta").display(),
            dir.join("cache").display()
        ),
    )
    .unwrap();
    conf
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    Stdio::from(std::fs::File::create(dir.join(name)).unwrap())
}

/// Starts the cacher (configured for port 0) and waits until it says
/// where it serves.
fn start_cacher(dir: &Path, conf: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .arg("-f")
        .arg(conf)
        .stdout(log_file(dir, "stdout.log"))
        .stderr(log_file(dir, "stderr.log"))
        .spawn()
        .expect("starting apt-cacher");
    let addr = wait_serving(&dir.join("stderr.log"), &mut child);
    (child, addr)
}

/// Files in `dir` (recursively), as paths relative to it.
fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
}

#[test]
fn sigterm_lets_the_download_in_flight_finish_and_exits_0() {
    let up = TestUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "127.0.0.1:0", &up.url(), 20);
    let (mut child, addr) = start_cacher(dir.path(), &conf);

    let client = thread::spawn(move || get(addr, "/debian/pool/slow.deb"));
    up.wait_started();
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    signal(&child, libc::SIGTERM);
    let (status, got) = client.join().unwrap().expect("the client's response");
    let exit = wait_exit(&mut child, Duration::from_secs(20));
    let took = t.elapsed();
    let log = log_of(dir.path());
    assert_eq!(status, 200, "{log}");
    assert!(
        got == body(SLOW_LEN),
        "the client got {} bytes, not the file",
        got.len()
    );
    assert!(exit.success(), "exit status {exit}\n{log}");
    assert!(
        took < Duration::from_secs(10),
        "stop took {took:?}, not bounded by the download"
    );
    assert_eq!(
        files_in(&dir.path().join("cache/.tmp")),
        Vec::<String>::new()
    );
    assert_eq!(
        files_in(&dir.path().join("meta/.tmp")),
        Vec::<String>::new()
    );
    let cached = files_in(&dir.path().join("cache"));
    assert!(
        cached.iter().any(|f| f.starts_with("debian/pool/slow.deb")),
        "the finished download is kept: {cached:?}"
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens after the exit"
    );
    eprintln!("SIGTERM with a download in flight: exit 0 after {took:?}");
}

#[test]
fn grace_time_bounds_a_stalled_download_and_leaves_no_temp_files() {
    let up = TestUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "127.0.0.1:0", &up.url(), 1);
    let (mut child, addr) = start_cacher(dir.path(), &conf);

    let client = thread::spawn(move || get(addr, "/debian/pool/stall.deb"));
    up.wait_started();
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        files_in(&dir.path().join("cache/.tmp")).len(),
        1,
        "the download's temporary file"
    );
    let t = Instant::now();
    signal(&child, libc::SIGTERM);
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    let took = t.elapsed();
    let log = log_of(dir.path());
    assert!(exit.success(), "exit status {exit}\n{log}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "stop took {took:?}, grace is 1 s"
    );
    // The client never gets a complete response.
    if let Ok((_, got)) = client.join().unwrap() {
        assert!(got.len() < SLOW_LEN, "incomplete body");
    }
    assert_eq!(
        files_in(&dir.path().join("cache/.tmp")),
        Vec::<String>::new()
    );
    let cached = files_in(&dir.path().join("cache"));
    assert!(
        !cached.iter().any(|f| f.contains("stall")),
        "nothing cached: {cached:?}"
    );
    eprintln!("SIGTERM with a stalled download, grace 1 s: exit 0 after {took:?}");
}

#[test]
fn second_sigterm_exits_at_once() {
    let up = TestUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "127.0.0.1:0", &up.url(), 60);
    let (mut child, addr) = start_cacher(dir.path(), &conf);

    let _client = thread::spawn(move || get(addr, "/debian/pool/stall.deb"));
    up.wait_started();
    signal(&child, libc::SIGTERM);
    thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting for the stalled download"
    );
    let t = Instant::now();
    signal(&child, libc::SIGTERM);
    let exit = wait_exit(&mut child, Duration::from_secs(3));
    assert!(!exit.success(), "a forced stop is not a clean exit: {exit}");
    eprintln!("second SIGTERM: exit {exit} after {:?}", t.elapsed());
}

#[test]
fn socket_activation_with_systemd_socket_activate() {
    let tool = Path::new("/usr/bin/systemd-socket-activate");
    assert!(
        tool.exists(),
        "needs systemd-socket-activate (Debian package systemd)"
    );
    let up = TestUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    // The config names a port this test holds: the cacher cannot bind it and
    // must use systemd's socket.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let held_addr = held.local_addr().unwrap().to_string();
    let conf = write_config(dir.path(), &held_addr, &up.url(), 5);
    // systemd-socket-activate refuses port 0, so a free port is tried; if
    // another process takes it first, the tool cannot bind and exits, and
    // another port is tried. Bound, it waits for the first connection
    // before it starts the cacher.
    let mut tries = 0;
    let (mut child, addr) = loop {
        tries += 1;
        assert!(tries <= 10, "systemd-socket-activate never bound a port");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut child = Command::new(tool)
            .arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .arg(BIN)
            .arg("-f")
            .arg(&conf)
            .stdout(log_file(dir.path(), "stdout.log"))
            .stderr(log_file(dir.path(), "stderr.log"))
            .spawn()
            .expect("systemd-socket-activate");
        let deadline = Instant::now() + Duration::from_secs(10);
        let listening = loop {
            if log_of(dir.path()).contains("Listening on") {
                break true;
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            assert!(Instant::now() < deadline, "{}", log_of(dir.path()));
            thread::sleep(Duration::from_millis(10));
        };
        if listening {
            break (child, SocketAddr::from(([127, 0, 0, 1], port)));
        }
        let _ = child.wait();
    };
    for _ in 0..3 {
        let (status, got) = get(addr, "/debian/pool/small.deb").expect("a response");
        assert_eq!(status, 200, "{}", log_of(dir.path()));
        assert!(got == body(SMALL_LEN));
    }
    signal(&child, libc::SIGTERM);
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    let log = log_of(dir.path());
    assert!(exit.success(), "exit status {exit}\n{log}");
    assert!(log.contains("socket activation"), "says so: {log}");
}

/// Starts the cacher on `listener` as systemd would (descriptor 3,
/// `LISTEN_FDS=1`, `LISTEN_PID`), logging to `log` in `dir`.
fn start_on_socket(dir: &Path, conf: &Path, listener: &TcpListener, log: &str) -> Child {
    on_socket(BIN, listener)
        .arg("-f")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(log_file(dir, log))
        .spawn()
        .expect("starting apt-cacher on a passed socket")
}

#[test]
fn restart_on_a_held_socket_refuses_no_client() {
    let up = TestUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    // The socket outlives both processes, as systemd's does.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The config names the held socket's own port: binding it fails, so a
    // cacher that ignored the passed socket would not start.
    let conf = write_config(dir.path(), &addr.to_string(), &up.url(), 5);
    let mut a = start_on_socket(dir.path(), &conf, &listener, "first.log");

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    // Four clients, each making one request per connection.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok) = (stop.clone(), ok.clone());
            thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match get(addr, "/debian/pool/small.deb") {
                        Ok((200, got)) if got == body(SMALL_LEN) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok((status, got)) => {
                            failures.push(format!("{status}, {} bytes", got.len()))
                        }
                        Err(e) => failures.push(e.to_string()),
                    }
                }
                failures
            })
        })
        .collect();
    let wait_ok = |n: usize| {
        let t = Instant::now();
        while ok.load(Ordering::SeqCst) < n {
            assert!(t.elapsed() < Duration::from_secs(10), "no progress");
            thread::sleep(Duration::from_millis(5));
        }
    };
    wait_ok(100);
    // Three restarts: each old process stops while the client keeps going.
    let mut served_before = Vec::new();
    for i in 0..3 {
        signal(&a, libc::SIGTERM);
        let exit = wait_exit(&mut a, Duration::from_secs(10));
        assert!(exit.success(), "exit status {exit}");
        served_before.push(ok.load(Ordering::SeqCst));
        a = start_on_socket(dir.path(), &conf, &listener, &format!("restart-{i}.log"));
        wait_ok(ok.load(Ordering::SeqCst) + 100);
    }
    stop.store(true, Ordering::SeqCst);
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    signal(&a, libc::SIGTERM);
    let exit = wait_exit(&mut a, Duration::from_secs(10));
    let total = ok.load(Ordering::SeqCst);
    eprintln!(
        "3 restarts on a held socket: {total} requests answered (at the restarts: {served_before:?}), {} failed",
        failures.len()
    );
    assert!(exit.success(), "{exit}");
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let log_a = std::fs::read_to_string(dir.path().join("first.log")).unwrap();
    assert!(log_a.contains("socket activation"), "{log_a}");
}

#[test]
fn tells_systemd_ready_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let up = TestUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_config(dir.path(), "127.0.0.1:0", &up.url(), 5);
    let socket_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&socket_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = Command::new(BIN)
        .arg("-f")
        .arg(&conf)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(log_file(dir.path(), "stdout.log"))
        .stderr(log_file(dir.path(), "stderr.log"))
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means listening.
    let addr = wait_serving(&dir.path().join("stderr.log"), &mut child);
    assert!(TcpStream::connect(addr).is_ok(), "READY=1 before listening");
    signal(&child, libc::SIGTERM);
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    assert!(exit.success(), "{exit}");
}
