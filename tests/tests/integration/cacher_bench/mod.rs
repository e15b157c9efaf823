//! Benchmarks of apt-cacher against its references, run side by side in
//! one process (`bench/cacher.sh` runs them; they are `#[ignore]`d in
//! normal test runs). The cacher under test is the release binary named by
//! `CACHER_BIN`; the reference upstream is nginx (`NGINX`, default
//! `/usr/sbin/nginx`) serving the same files. Everything listens on
//! 127.0.0.1. Sizes can be scaled down with environment variables (see
//! each benchmark).

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{AptEnv, Repo};

mod resources;
mod soak;
mod throughput;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{addr} never came up"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// CPU seconds (user + system, all threads) that process `pid` has used,
/// plus, with `children`, those of its live children (nginx's workers).
fn cpu_secs(pid: u32, children: bool) -> f64 {
    let ticks = |stat: &str| -> Option<(u32, f64)> {
        // Fields after the ")" that closes the command name: state is 3,
        // ppid 4, utime 14, stime 15 (1-based, as in proc(5)).
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid = f.get(1)?.parse().ok()?;
        let t: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((ppid, t / 100.0))
    };
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let me = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
        if let Some((ppid, t)) = ticks(&stat) {
            if me == Some(pid) || (children && ppid == pid) {
                total += t;
            }
        }
    }
    total
}

/// CPU seconds this test process has used so far.
fn own_cpu_secs() -> f64 {
    cpu_secs(std::process::id(), false)
}

/// A child process killed (by its own pid) when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first (nginx's master then stops its workers), then SIGKILL.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        std::thread::sleep(Duration::from_millis(100));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Nginx {
    p: Proc,
    addr: SocketAddr,
    log: PathBuf,
}

fn nginx(root: &Path, work: &Path) -> Nginx {
    std::fs::create_dir_all(work).unwrap();
    let port = free_port();
    let log = work.join("access.log");
    let conf = work.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes 2; pid {w}/nginx.pid; error_log {w}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log {log}; sendfile on; tcp_nopush on; keepalive_requests 100000;\n\
               client_body_temp_path {w}; proxy_temp_path {w}; fastcgi_temp_path {w}; uwsgi_temp_path {w}; scgi_temp_path {w};\n\
               server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
            w = work.display(),
            log = log.display(),
            root = root.display()
        ),
    )
    .unwrap();
    let bin = std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into());
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(work)
        .spawn()
        .expect("starting nginx");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    Nginx {
        p: Proc(child),
        addr,
        log,
    }
}

impl Nginx {
    fn requests_for(&self, path: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("GET {path} ")))
            .count()
    }
}

struct Cacher {
    p: Proc,
    addr: SocketAddr,
}

fn cacher(dir: &Path, upstream: SocketAddr) -> (Cacher, Duration) {
    let port = free_port();
    std::fs::create_dir_all(dir).unwrap();
    let conf = dir.join("cacher.toml");
    std::fs::write(
        &conf,
        format!(
            "listen_address = \"127.0.0.1:{port}\"\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\ncache_capacity = 100\nmax_conns = 0\n[log]\nlevel = \"warning\"\n[mapping]\ndebian = \"http://{upstream}\"\n",
            dir.join("meta").display(),
            dir.join("cache").display()
        ),
    )
    .unwrap();
    let bin =
        std::env::var("CACHER_BIN").unwrap_or_else(|_| "target-cacher/release/apt-cacher".into());
    let start = Instant::now();
    let child = Command::new(&bin)
        .arg("-f")
        .arg(&conf)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    (
        Cacher {
            p: Proc(child),
            addr,
        },
        start.elapsed(),
    )
}

impl Cacher {
    /// Peak resident set size (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.p.0.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn line(what: &str, reference: &str, ref_v: f64, ours: f64, unit: &str, target: &str) {
    let ratio = if ref_v > 0.0 { ours / ref_v } else { f64::NAN };
    println!("{what:<48} {reference:<14} {ref_v:>10.3} {unit:<5} | apt-cacher {ours:>10.3} {unit:<5} | ratio {ratio:>6.3} (target {target})");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(2000)
        .build()
        .unwrap()
}

/// GETs `url` and discards the body; returns (bytes, time to first byte).
async fn fetch(client: &reqwest::Client, url: &str) -> (u64, Duration) {
    let start = Instant::now();
    let mut r = client.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let mut n = 0;
    let mut ttfb = None;
    while let Some(c) = r.chunk().await.unwrap() {
        ttfb.get_or_insert(start.elapsed());
        n += c.len() as u64;
    }
    (n, ttfb.unwrap_or(start.elapsed()))
}

/// `clients` concurrent GETs of `url`; every 20th client also compares
/// every byte it receives with `expected` (a sample, so that the check does
/// not dominate the clients' CPU time). Returns the wall time and the
/// bytes received.
async fn concurrent(url: &str, clients: usize, expected: Arc<Vec<u8>>) -> (Duration, u64) {
    let c = client();
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (c, url, expected) = (c.clone(), url.to_string(), expected.clone());
            tokio::spawn(async move {
                if i % 20 != 0 {
                    return fetch(&c, &url).await.0;
                }
                let mut r = c.get(&url).send().await.unwrap();
                assert!(r.status().is_success(), "{url}: {}", r.status());
                let mut n = 0usize;
                while let Some(chunk) = r.chunk().await.unwrap() {
                    assert!(
                        expected.get(n..n + chunk.len()) == Some(&chunk[..]),
                        "client {i}: wrong bytes at offset {n}"
                    );
                    n += chunk.len();
                }
                assert_eq!(n, expected.len(), "client {i}: short body");
                n as u64
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (start.elapsed(), total)
}

fn write_big(path: &Path, mib: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    // MiB `i` holds bytes `(i * 7 + j * 13) % 251`: one period-251 pattern,
    // written from offset `i * 155 % 251` (155 * 13 = 7 mod 251), so this
    // debug-built test does no per-byte work for each MiB.
    let pattern: Vec<u8> = (0..(1 << 20) + 251).map(|j| (j * 13 % 251) as u8).collect();
    for i in 0..mib {
        let k = i * 155 % 251;
        f.write_all(&pattern[k..k + (1 << 20)]).unwrap();
    }
}
