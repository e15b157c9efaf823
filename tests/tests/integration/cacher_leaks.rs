//! No leaks in apt-cacher: after a warm-up, a baseline of open file
//! descriptors, alive tokio tasks and RSS; then 10,000 requests over
//! keep-alive and fresh connections — cache hits, cold misses, upstream
//! 404s, metadata, clients that disconnect mid-body (from the cache and
//! from downloads in flight) and an upstream that stalls (idle_read = 1 s);
//! then, once quiet, descriptors and tasks are back to the baseline (give or
//! take the cacher's pooled upstream keep-alive connections) and RSS has
//! grown by less than 30 MiB. Prints the figures. It runs alone in a child
//! process of the test binary: descriptors and RSS are the whole process's.
//!
//! The cacher runs in this test's runtime (its tasks are the runtime's);
//! the upstream runs on its own runtime, and the one that stalls is a plain
//! thread server here: it sends a header, then nothing, and closes each
//! connection as soon as the cacher gives up on it.

use futures_util::StreamExt;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{PackageSpec, Repo, Times, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const COLD: usize = 300;
const COLD_BIG: usize = 20;
const STALLS: usize = 30;
const MAX_CONNS: usize = 10;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// What the open descriptors are, by kind (`socket`, `anon_inode:[eventpoll]`, a file...).
fn fd_kinds() -> std::collections::BTreeMap<String, usize> {
    let mut kinds = std::collections::BTreeMap::new();
    for e in std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        let target =
            std::fs::read_link(e.path()).map_or_else(|_| "?".into(), |t| t.display().to_string());
        let kind = match target.split_once(':') {
            Some((k, _)) if k == "socket" || k == "pipe" => k.to_string(),
            _ => target,
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn repo(dir: &Path) -> Repo {
    let mut b = Repo::builder(dir)
        .package(PackageSpec::new("hit", "1").size(4000))
        .package(PackageSpec::new("big", "1").size(1 << 20));
    for i in 0..COLD {
        b = b.package(PackageSpec::new(&format!("cold{i}"), "1").size(2000));
    }
    for i in 0..COLD_BIG {
        b = b.package(PackageSpec::new(&format!("coldbig{i}"), "1").size(512 << 10));
    }
    for i in 0..STALLS {
        b = b.package(PackageSpec::new(&format!("stall{i}"), "1").size(10_000));
    }
    b.build().unwrap()
}

/// One kind of request of the mix.
#[derive(Clone, Debug)]
enum Req {
    /// GET over the keep-alive client; expect 200 and this many bytes.
    KeepAlive(String, usize),
    /// GET over a new connection; expect this status.
    Fresh(String, u16),
    /// Read a little of the body, then hang up.
    MidBody(String),
    /// GET of a file whose upstream stalls: expect an error or a short body.
    Stalled(String),
}

async fn run(
    req: Req,
    addr: SocketAddr,
    kept: &reqwest::Client,
    fresh: &reqwest::Client,
) -> Result<(), String> {
    let url = |p: &str| format!("http://{addr}{p}");
    match req {
        Req::KeepAlive(p, len) => {
            let r = kept
                .get(url(&p))
                .send()
                .await
                .map_err(|e| format!("{p}: {e}"))?;
            let status = r.status().as_u16();
            let body = r.bytes().await.map_err(|e| format!("{p}: {e}"))?;
            if status != 200 || body.len() != len {
                return Err(format!("{p}: {status}, {} bytes", body.len()));
            }
        }
        Req::Fresh(p, want) => {
            let r = fresh
                .get(url(&p))
                .send()
                .await
                .map_err(|e| format!("{p}: {e}"))?;
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            if status != want {
                return Err(format!("{p}: {status}, expected {want}"));
            }
        }
        Req::MidBody(p) => {
            let mut s = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let req = format!("GET {p} HTTP/1.1\r\nHost: t\r\n\r\n");
            s.write_all(req.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 16 * 1024];
            let mut got = 0;
            while got < 16 * 1024 {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            // Dropped here: the client hangs up mid-body.
        }
        Req::Stalled(p) => {
            if let Ok(r) = kept.get(url(&p)).send().await {
                if r.status() == 200 && r.bytes().await.is_ok() {
                    return Err(format!("{p}: a stalled download completed"));
                }
            }
        }
    }
    Ok(())
}

/// Runs `reqs` with 16 at a time; returns the failures.
async fn run_all(reqs: Vec<Req>, addr: SocketAddr) -> Vec<String> {
    let kept = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let results: Vec<_> = futures_util::stream::iter(reqs)
        .map(|r| run(r, addr, &kept, &fresh))
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().filter_map(Result::err).collect()
}

/// The 10,000 requests (`scale` 1) or a few of each kind (warm-up).
fn mix(repo: &Repo, warm_up: bool) -> Vec<Req> {
    let pool = |name: &str| format!("/debian/{}", repo.package(name).unwrap().pool_path);
    let stalled = |name: &str| format!("/stall/{}", repo.package(name).unwrap().pool_path);
    let n = |full: usize, warm: usize| if warm_up { warm } else { full };
    let mut reqs = Vec::new();
    for _ in 0..n(5000, 20) {
        reqs.push(Req::KeepAlive(pool("hit"), 4000));
    }
    for i in 0..n(2500, 10) {
        reqs.push(Req::Fresh(pool("hit"), 200));
        if i % 5 == 0 {
            reqs.push(Req::Fresh(format!("/debian/pool/main/n/nope{i}.deb"), 404));
        }
    }
    for i in 0..n(160, 2) {
        let p = if i % 2 == 0 { "InRelease" } else { "Release" };
        reqs.push(Req::Fresh(format!("/debian/dists/stable/{p}"), 200));
    }
    for _ in 0..n(1500, 5) {
        reqs.push(Req::MidBody(pool("big")));
    }
    if !warm_up {
        for i in 0..COLD {
            reqs.push(Req::KeepAlive(pool(&format!("cold{i}")), 2000));
        }
        for i in 0..COLD_BIG {
            reqs.push(Req::MidBody(pool(&format!("coldbig{i}"))));
        }
        for i in 0..STALLS {
            reqs.push(Req::Stalled(stalled(&format!("stall{i}"))));
        }
    } else {
        reqs.push(Req::KeepAlive(pool("big"), 1 << 20));
        reqs.push(Req::Stalled(stalled("stall0")));
    }
    // Interleave the kinds.
    let len = reqs.len();
    let mut mixed = Vec::with_capacity(len);
    let stride = 7919; // prime: visits every index once
    for i in 0..len {
        mixed.push(reqs[(i * stride) % len].clone());
    }
    mixed
}

/// Waits (at most 15 s) until `ok` holds.
async fn settle(mut ok: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while !ok() {
        if t.elapsed() > Duration::from_secs(15) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// An upstream on 127.0.0.1 (port 0) that answers every request with a
/// `200` header for 10,000 bytes and then sends nothing, holding each
/// connection (one thread each, 60 s at most) until the peer closes it.
/// Returns its address and the number of connections it holds open.
fn stalling_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let count = open.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let count = count.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n");
                // Until the cacher hangs up (EOF) or 60 s pass.
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                drop(conn);
                count.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

/// This test's path in the test binary: it runs alone in a child process
/// ([`crate::common::run_alone`]), since it counts the descriptors and RSS
/// of its whole process, which other tests of the binary would change.
const ALONE: &str = "cacher_leaks::ten_thousand_requests_leak_no_fds_tasks_or_memory";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_leak_no_fds_tasks_or_memory() {
    if !crate::common::is_alone(ALONE) {
        return crate::common::run_alone(ALONE);
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    up.throttle("*coldbig*", 2 << 20, Times::Always);
    let (stall_addr, stalled_open) = stalling_upstream();
    let dir = tmp.path().join("cacher");
    let text = testkit::cacher::config_text(
        &dir,
        "127.0.0.1:0",
        &up.url(),
        &format!("max_conns = {MAX_CONNS}\n[timeouts]\nidle_read = 1\nclient_idle = 5\n"),
    ) + &format!("stall = \"http://{stall_addr}\"\n");
    let config = apt_cacher::Config::parse("leaks.toml", &text).unwrap();
    let c = apt_cacher::start(config, apt_cacher::CancellationToken::new())
        .await
        .unwrap();
    let addr = c.addr;
    let no_stalled = || stalled_open.load(Ordering::SeqCst) == 0;

    // Warm-up: every kind of request once or a few times.
    let failures = run_all(mix(&repo, true), addr).await;
    assert!(failures.is_empty(), "warm-up: {failures:?}");
    let quiet = settle(|| c.app.downloads.in_flight() == 0 && no_stalled()).await;
    assert!(quiet, "warm-up downloads did not end");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (fds0, tasks0, rss0) = (open_fds(), alive_tasks(), rss_bytes());
    let kinds0 = fd_kinds();

    // The run.
    let reqs = mix(&repo, false);
    let count = reqs.len();
    assert!(count >= 10_000, "{count} requests");
    let t = Instant::now();
    let failures = run_all(reqs, addr).await;
    let took = t.elapsed();
    let (fds_peak, tasks_peak) = (open_fds(), alive_tasks());
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );

    // Quiescence: downloads done, client connections closed.
    let quiet = settle(|| c.app.downloads.in_flight() == 0 && no_stalled()).await;
    assert!(quiet, "downloads still in flight");
    // Pooled keep-alive connections to the upstream: one descriptor here
    // for the cacher's end, one for the in-process upstream's end, and one
    // client task each; at most `max_conns` of them.
    let (fd_slack, task_slack) = (2 * MAX_CONNS, MAX_CONNS);
    let back =
        settle(|| open_fds() <= fds0 + fd_slack && alive_tasks() <= tasks0 + task_slack).await;
    let (fds1, tasks1, rss1) = (open_fds(), alive_tasks(), rss_bytes());
    eprintln!(
        "{count} requests in {took:.1?}; fds {fds0} -> peak {fds_peak} -> {fds1}; \
         tasks {tasks0} -> peak {tasks_peak} -> {tasks1}; RSS {:.1} MiB -> {:.1} MiB (+{:.1} MiB)",
        rss0 as f64 / 1048576.0,
        rss1 as f64 / 1048576.0,
        (rss1 as f64 - rss0 as f64) / 1048576.0
    );
    eprintln!(
        "descriptors before: {kinds0:?}\n            after: {:?}",
        fd_kinds()
    );
    assert!(
        back,
        "not back to baseline: fds {fds0} -> {fds1} (slack {fd_slack}), tasks {tasks0} -> {tasks1} (slack {task_slack})"
    );
    assert!(
        rss1 < rss0 + (30 << 20),
        "RSS grew by {} MiB",
        (rss1 - rss0) >> 20
    );
    // Every cold download was kept; the stalled ones were not.
    c.stop().await;
}
