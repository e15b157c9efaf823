//! apt-cacher's timeouts, with short values in the test config: a client
//! trickling its request header (slowloris) is cut off after `header_read`;
//! an idle keep-alive connection after `client_idle` (not `header_read`); a
//! client that stops reading its response after `client_idle`; an upstream
//! that stalls before or after its headers, or drips for longer than
//! `overall`, ends in an error for the client within the limit plus a margin
//! (pool files and metadata alike), and nothing is cached. A `CONNECT`
//! tunnel is not cut by `header_read`, only after `client_idle` of silence.
//! An upstream whose connects hang ([`testkit::Blackhole`]) is a gateway
//! error after `connect` (twice: one retry), remembered for `cache_period`.
//!
//! Bounds are loose on purpose (a loaded 2-core machine): a lower bound
//! allows [`SLACK`] when the server's clock may start before the test's, an
//! upper bound allows [`MARGIN`]; the point is "closed by the timer, not
//! early and not never".

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::{Blackhole, PackageSpec, Repo, Times, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_READ: u64 = 1;
const CLIENT_IDLE: u64 = 2;
const IDLE_READ: u64 = 1;
const OVERALL: u64 = 3;
/// Scheduling slack on a busy 2-core machine, for upper bounds.
const MARGIN: Duration = Duration::from_millis(1500);
/// For lower bounds: the server's timer may start a moment before the
/// test's clock (at accept, or when it sent the last byte).
const SLACK: Duration = Duration::from_millis(50);

fn extra() -> String {
    format!(
        "[timeouts]\nheader_read = {HEADER_READ}\nclient_idle = {CLIENT_IDLE}\n\
         idle_read = {IDLE_READ}\noverall = {OVERALL}\n"
    )
}

fn repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .package(PackageSpec::new("stall-body", "1").size(100_000))
        .package(PackageSpec::new("stall-head", "1").size(100_000))
        .package(PackageSpec::new("drip", "1").size(1 << 20))
        .package(PackageSpec::new("big", "1").size(16 << 20))
        .build()
        .unwrap()
}

/// Waits until the server closes `s` (EOF or reset), reading and counting
/// what arrives; returns the bytes read.
async fn until_closed(s: &mut TcpStream) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return n,
            Ok(k) => n += k,
        }
    }
}

/// Asserts `low - SLACK <= took < high`.
fn within(what: &str, took: Duration, low: Duration, high: Duration) {
    let low = low.saturating_sub(SLACK);
    eprintln!("{what}: {took:?} (expected {low:?}..{high:?})");
    assert!(
        took >= low && took < high,
        "{what}: {took:?}, expected {low:?}..{high:?}"
    );
}

/// Whether the server's end of the connection `server` ← `client` is still
/// established, from `/proc/net/tcp` (this process holds both ends). Once
/// the server closes it, it is in FIN_WAIT1 or gone, even while the client
/// has not read what is queued for it.
fn server_end_established(server: SocketAddr, client: SocketAddr) -> bool {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(a) => format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(a.ip().octets()),
            a.port()
        ),
        SocketAddr::V6(_) => panic!("IPv4 only: {a}"),
    };
    let (local, remote) = (hex(server), hex(client));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // sl local_address rem_address st …; 01 is ESTABLISHED.
        f.len() > 3 && f[1] == local && f[2] == remote && f[3] == "01"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_timeouts_slowloris_idle_and_stalled_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), &extra()).await;
    let addr = c.addr;
    let header_read = Duration::from_secs(HEADER_READ);
    let client_idle = Duration::from_secs(CLIENT_IDLE);

    // Slowloris: a byte of the request line every 100 ms.
    let slowloris = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let t = Instant::now();
        s.write_all(b"GET /debian/").await.unwrap();
        let (mut r, mut w) = s.into_split();
        let trickle = tokio::spawn(async move {
            while w.write_all(b"a").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut buf = [0u8; 1024];
        let _ = r.read(&mut buf).await;
        trickle.abort();
        t.elapsed()
    });

    // Idle from the start: closed after client_idle, not header_read.
    let idle = tokio::spawn(async move {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        until_closed(&mut s).await;
        t.elapsed()
    });

    // Idle after a complete request on a keep-alive connection.
    let kept = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /nosuchmapping/x HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let status = testkit::rawhttp::read_response(&mut s).await.0;
        let t = Instant::now();
        until_closed(&mut s).await;
        (status, t.elapsed())
    });

    // A client that asks for 16 MiB and never reads (small receive window):
    // the server's writes block once the buffers are full, and it closes
    // the connection client_idle later.
    let big = repo.package("big").unwrap().clone();
    let stalled_reader = tokio::spawn(async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let t = Instant::now();
        let mut s = socket.connect(addr).await.unwrap();
        let me = s.local_addr().unwrap();
        let req = format!("GET /debian/{} HTTP/1.1\r\nHost: t\r\n\r\n", big.pool_path);
        s.write_all(req.as_bytes()).await.unwrap();
        let limit = client_idle + MARGIN + Duration::from_secs(5);
        while server_end_established(addr, me) {
            assert!(t.elapsed() < limit, "the stalled reader was not cut off");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = t.elapsed();
        (took, until_closed(&mut s).await)
    });

    let took = slowloris.await.unwrap();
    within(
        "slowloris closed after",
        took,
        header_read,
        header_read + MARGIN,
    );
    let took = idle.await.unwrap();
    within(
        "idle connection closed after",
        took,
        client_idle,
        client_idle + MARGIN,
    );
    let (status, took) = kept.await.unwrap();
    assert_eq!(status, 404);
    within(
        "idle keep-alive closed after",
        took,
        client_idle,
        client_idle + MARGIN,
    );
    let (took, got) = stalled_reader.await.unwrap();
    within(
        "a client that stopped reading cut off after",
        took,
        client_idle,
        client_idle + MARGIN,
    );
    eprintln!(
        "a client that stopped reading got {got} of {} bytes before the cut",
        16 << 20
    );
    assert!(got < 16 << 20, "the stalled reader was not cut off");
    c.stop().await;
}

/// Files in the cache other than its temporary directory.
fn cached(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with(".tmp") {
                    stack.push(p);
                }
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// GET over a fresh connection; status (0 when no header came) and body
/// length, and how long until the connection ended.
async fn fetch(addr: SocketAddr, path: &str) -> (u16, usize, Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all).await;
    let took = t.elapsed();
    let Some(split) = all.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, 0, took);
    };
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, all.len() - split - 4, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_stalls_end_in_errors_within_the_limits_and_nothing_is_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let dir = tmp.path().join("cacher");
    let c = testkit::cacher::start(&dir, &up.url(), &extra()).await;
    let idle_read = Duration::from_secs(IDLE_READ);
    let overall = Duration::from_secs(OVERALL);

    // Headers, then no byte of the body.
    up.stall("*stall-body_*", Times::Always);
    // No headers at all.
    up.delay("*stall-head_*", Duration::from_secs(60), Times::Always);
    // A steady drip that would take 16 s: cut by `overall`.
    up.throttle("*drip_*", 64 * 1024, Times::Always);
    let path = |name: &str| format!("/debian/{}", repo.package(name).unwrap().pool_path);
    let size = |name: &str| repo.package(name).unwrap().size() as usize;

    let (p1, p2, p3) = (path("stall-body"), path("stall-head"), path("drip"));
    let (a, b, d) = tokio::join!(fetch(c.addr, &p1), fetch(c.addr, &p2), fetch(c.addr, &p3));
    let (status, len, took) = a;
    assert!(
        len < size("stall-body"),
        "stalled body: status {status}, {len} bytes"
    );
    within(
        "upstream stalled mid-body: client aborted after",
        took,
        idle_read,
        idle_read + MARGIN,
    );
    let (status, _, took) = b;
    assert_eq!(status, 504, "upstream sent no headers");
    within(
        "upstream sent no headers: 504 after",
        took,
        idle_read,
        idle_read + MARGIN,
    );
    let (status, len, took) = d;
    assert!(
        len < size("drip"),
        "dripping body: status {status}, {len} bytes"
    );
    within(
        "upstream dripping: client aborted after",
        took,
        overall,
        overall + MARGIN,
    );

    // Metadata: a stalled InRelease (and Release) is a gateway error, in time.
    up.stall("*Release", Times::Always);
    let (status, _, took) = fetch(c.addr, "/debian/dists/stable/InRelease").await;
    assert!(status >= 500, "stalled InRelease: status {status}");
    within(
        "upstream stalled on InRelease: 5xx after",
        took,
        idle_read,
        2 * idle_read + MARGIN,
    );

    // Failed downloads leave nothing, cached or temporary.
    nothing_left(&c, &dir).await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tunnel_outlives_header_read_and_closes_when_silent() {
    // An echo server as the tunnel's target.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let extra = format!("connect_allow = [\"{target}\"]\n{}", extra());
    let c = testkit::cacher::start(&tmp.path().join("cacher"), "http://127.0.0.1:9", &extra).await;
    let mut s = TcpStream::connect(c.addr).await.unwrap();
    let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    assert_eq!(testkit::rawhttp::read_response(&mut s).await.0, 200);
    let mut buf = [0u8; 4];
    s.write_all(b"ping").await.unwrap();
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    // Quiet for longer than header_read: a tunnel is not a request header.
    tokio::time::sleep(Duration::from_millis(HEADER_READ * 1000 + 500)).await;
    s.write_all(b"pong").await.unwrap();
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
    // Silent in both directions: closed after client_idle.
    let t = Instant::now();
    until_closed(&mut s).await;
    let client_idle = Duration::from_secs(CLIENT_IDLE);
    within(
        "silent CONNECT tunnel closed after",
        t.elapsed(),
        client_idle,
        client_idle + MARGIN,
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_connect_is_a_gateway_error_after_the_connect_timeout() {
    const CONNECT: u64 = 1;
    let hole = Blackhole::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cacher");
    let extra = format!("cache_period = 30\n[timeouts]\nconnect = {CONNECT}\n");
    let c = testkit::cacher::start(&dir, &hole.url(), &extra).await;
    let connect = Duration::from_secs(CONNECT);
    let path = "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb";

    // A failed connection is retried once: two connect timeouts.
    let (status, _, took) = fetch(c.addr, path).await;
    assert!(
        status == 504 || status == 502,
        "hanging connect: status {status}"
    );
    eprintln!("hanging connect: status {status}");
    within(
        "upstream connect hangs: 5xx after",
        took,
        2 * connect,
        2 * connect + MARGIN,
    );

    // Within cache_period the failure is answered from memory.
    let (status2, _, took) = fetch(c.addr, path).await;
    assert_eq!(status2, status, "negative cache answer");
    eprintln!("the same request again, from the negative cache: {took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");

    nothing_left(&c, &dir).await;
    c.stop().await;
}

/// Once the downloads in flight have ended (within 5 s), failed downloads
/// have left nothing under `dir/cache`: no cached file, no temporary file.
async fn nothing_left(c: &apt_cacher::Running, dir: &Path) {
    let t = Instant::now();
    while c.app.downloads.in_flight() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "downloads still in flight"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let files = cached(&dir.join("cache"));
    assert!(files.is_empty(), "cached after failures: {files:?}");
    let temps: Vec<_> = std::fs::read_dir(dir.join("cache/.tmp")).unwrap().collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}
