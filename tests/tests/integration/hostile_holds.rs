//! What already holds in apt-cacher's request parsing against hostile
//! clients (RELIABILITY.md): path traversal in every spelling is refused
//! and nothing is fetched; the cacher is no open proxy (an absolute-form
//! request or a CONNECT to a host no mapping names never reaches it);
//! ambiguous request framing (Content-Length with Transfer-Encoding, two
//! different lengths, a Transfer-Encoding that is not chunked, obs-fold,
//! a space before the colon) is refused or ends the connection, so no
//! request can be smuggled behind another; oversized headers (one huge
//! header, thousands of small ones) get an error or a close, and the cacher
//! serves the next client as before.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use testkit::{PackageSpec, Repo, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .package(PackageSpec::new("alpha", "1.0").size(20_000))
        .build()
        .unwrap()
}

/// Sends `raw` on a new connection and reads until the cacher closes it
/// (or 5 s pass); returns what came back, lossily as text.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A write may fail once the cacher has refused and closed: that is fine.
    let _ = s.write_all(raw).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The statuses of the responses in `text`, in order.
fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// The status of a plain GET of `target` on its own connection.
async fn status_of(addr: SocketAddr, target: &str) -> Vec<u16> {
    let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    statuses(&exchange(addr, req.as_bytes()).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_and_open_proxy_are_refused_and_nothing_is_fetched() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    // A second server that no mapping names: a proxy request must never reach it.
    let other_dir = tmp.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    std::fs::write(other_dir.join("secret"), b"secret").unwrap();
    let other = Upstream::serve(&other_dir).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let pool = repo.package("alpha").unwrap().pool_path.clone();

    let traversals = [
        "/debian/../../../../etc/passwd".to_string(),
        "/debian/pool/../../../../etc/passwd".to_string(),
        "/debian/%2e%2e/%2e%2e/%2e%2e/etc/passwd".to_string(),
        "/debian/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd".to_string(),
        "/debian/pool/..%2f..%2f..%2fetc%2fpasswd".to_string(),
        "/debian//etc/passwd".to_string(),
        "/debian/./dists/../../etc/passwd".to_string(),
        "/../debian/dists/stable/InRelease".to_string(),
        format!("/debian/{pool}/../../../../etc/passwd"),
        format!("{}/../../etc/passwd", up.url()),
        format!("{}/%2e%2e/%2e%2e/etc/passwd", up.url()),
    ];
    for target in &traversals {
        let got = status_of(c.addr, target).await;
        assert!(
            got.len() == 1 && (400..500).contains(&got[0]),
            "{target}: {got:?}"
        );
    }
    assert_eq!(up.requests_total(), 0, "{:?}", up.request_log());

    // Open proxy: absolute-form requests and CONNECT to hosts no mapping names.
    let proxied = [
        format!("{}/secret", other.url()),
        "http://deb.example.org/debian/dists/stable/InRelease".to_string(),
        format!("http://127.0.0.1:{}/secret", other.port()),
        format!("http://localhost:{}/secret", other.port()),
    ];
    for target in &proxied {
        let got = status_of(c.addr, target).await;
        assert!(
            got.len() == 1 && (400..500).contains(&got[0]),
            "{target}: {got:?}"
        );
    }
    let connect = format!(
        "CONNECT 127.0.0.1:{p} HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n\r\n",
        p = other.port()
    );
    let got = statuses(&exchange(c.addr, connect.as_bytes()).await);
    assert!(
        got.len() == 1 && (400..500).contains(&got[0]),
        "CONNECT: {got:?}"
    );
    assert_eq!(other.requests_total(), 0, "{:?}", other.request_log());
    assert_eq!(other.connections_total(), 0);
    assert_eq!(up.requests_total(), 0, "{:?}", up.request_log());
    assert_eq!(c.app.store.usage().0, 0);

    // The real file is still served.
    assert_eq!(status_of(c.addr, &format!("/debian/{pool}")).await, [200]);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_cannot_smuggle_a_request() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let pool = repo.package("alpha").unwrap().pool_path.clone();
    let hidden = "GET /debian/pool/smuggled.deb HTTP/1.1\r\nHost: t\r\n\r\n";
    let get = format!("GET /debian/{pool} HTTP/1.1\r\nHost: t\r\n");

    // Content-Length and Transfer-Encoding together: chunked wins (the
    // hidden request is then after the body), and the connection is closed
    // after the response, so the hidden request is never read.
    let cl_te =
        format!("{get}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}");
    let te_cl =
        format!("{get}Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n{hidden}");
    // The same pair where the length covers the hidden request.
    let cl_te_long = format!(
        "{get}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}",
        5 + hidden.len()
    );
    for (what, raw) in [
        ("CL+TE", &cl_te),
        ("TE+CL", &te_cl),
        ("CL+TE long", &cl_te_long),
    ] {
        let got = statuses(&exchange(c.addr, raw.as_bytes()).await);
        assert!(got.len() <= 1, "{what}: two responses: {got:?}");
    }

    // Refused outright: 400, one response, then the connection closes.
    let refused = [
        (
            "two different Content-Length",
            format!("{get}Content-Length: 0\r\nContent-Length: 60\r\n\r\n{hidden}"),
        ),
        (
            "Transfer-Encoding not chunked",
            format!("{get}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{hidden}"),
        ),
        (
            "Transfer-Encoding xchunked",
            format!("{get}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{hidden}"),
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            format!(
                "GET /debian/{pool} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"
            ),
        ),
        (
            "obs-fold",
            format!("{get}X-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n{hidden}"),
        ),
        (
            "space before the colon",
            format!("{get}Content-Length : 60\r\n\r\n{hidden}"),
        ),
        (
            "negative Content-Length",
            format!("{get}Content-Length: -1\r\n\r\n{hidden}"),
        ),
        (
            "Content-Length with a sign",
            format!("{get}Content-Length: +5\r\n\r\n{hidden}"),
        ),
    ];
    for (what, raw) in &refused {
        let got = statuses(&exchange(c.addr, raw.as_bytes()).await);
        assert_eq!(got, [400], "{what}");
    }

    assert_eq!(
        up.requests_matching("*smuggled*"),
        0,
        "{:?}",
        up.request_log()
    );
    // Still serving.
    assert_eq!(status_of(c.addr, &format!("/debian/{pool}")).await, [200]);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused_and_the_cacher_carries_on() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let pool = repo.package("alpha").unwrap().pool_path.clone();
    let get = format!("GET /debian/{pool} HTTP/1.1\r\nHost: t\r\n");

    let huge_value = format!("{get}X-Big: {}\r\n\r\n", "a".repeat(1 << 20));
    let many = format!("{get}{}\r\n", "X-Many: b\r\n".repeat(5_000));
    let long_target = format!(
        "GET /debian/pool/{}.deb HTTP/1.1\r\nHost: t\r\n\r\n",
        "c".repeat(1 << 20)
    );
    for (what, raw) in [
        ("a 1 MiB header", &huge_value),
        ("5000 headers", &many),
        ("a 1 MiB request target", &long_target),
    ] {
        let got = statuses(&exchange(c.addr, raw.as_bytes()).await);
        // An error status (431, 414 or 400) or a close without one; never a file.
        assert!(
            got.iter().all(|s| (400..500).contains(s)) && got.len() <= 1,
            "{what}: {got:?}"
        );
    }
    assert_eq!(up.requests_total(), 0, "{:?}", up.request_log());
    assert_eq!(status_of(c.addr, &format!("/debian/{pool}")).await, [200]);
    c.stop().await;
}
