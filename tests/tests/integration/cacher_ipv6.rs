//! IPv6 and several listening addresses, end to end. The real apt reaches a
//! cacher at `[::1]` in prefix and proxy mode; a cacher fetches from an
//! upstream on `[::1]` (prefix mode, and proxy mode where the request's
//! host `[::1]:port` must match the mapping); a `":PORT"` cacher answers on
//! 127.0.0.1 and on ::1 and sees its IPv4 clients as plain IPv4; a list of
//! two addresses listens on both, with one `max_clients` budget, and stops
//! on both. Everything stays on the loopback addresses; on a host without
//! ::1 the tests say so and skip.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use testkit::cacher::{start as cacher, start_listening};
use testkit::rawhttp::read_response;
use testkit::{AptEnv, PackageSpec, Repo, Upstream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// True when this host can bind ::1; otherwise prints why the test skips.
fn has_ipv6() -> bool {
    let ok = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ok {
        eprintln!("SKIPPED: this host has no IPv6 loopback address (::1)");
    }
    ok
}

fn repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .package(PackageSpec::new("hello", "2.10-3").size(50_000))
        .package(PackageSpec::new("libfoo1", "1:1.2-1").size(3000))
        .build()
        .unwrap()
}

const PKGS: [&str; 2] = ["hello", "libfoo1"];

/// `apt-get update` and the download of [`PKGS`], both clean, and the
/// downloaded files are the repository's.
async fn install(apt: &AptEnv, repo: &Repo) {
    apt.update_async().await.unwrap().ok_clean().unwrap();
    apt.install_download_only_async(&PKGS)
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    for name in PKGS {
        let p = repo.package(name).unwrap();
        let local = apt.archives_dir().join(p.deb_file_name());
        let data = std::fs::read(&local).unwrap_or_else(|e| panic!("{}: {e}", local.display()));
        assert_eq!(testkit::Checksums::of(&data).sha256, p.sha256(), "{name}");
    }
}

/// One GET, without any proxy from the environment: status and body.
async fn get(url: &str) -> (u16, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_reaches_the_cacher_at_ipv6_loopback_in_both_modes() {
    if !has_ipv6() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = start_listening(&tmp.path().join("cacher"), "\"[::1]:0\"", &up.url(), "").await;
    assert_eq!(c.addr.ip(), IpAddr::from(Ipv6Addr::LOCALHOST));
    // c.addr displays as [::1]:PORT, as a URL wants it.
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    install(&apt, &repo).await;
    assert_eq!(up.requests_matching("*.deb"), 2, "{:?}", up.request_log());

    let mut apt2 = AptEnv::new().unwrap();
    apt2.add_source(&up.url(), "stable", &["main"]).unwrap();
    apt2.proxy(&format!("http://{}/", c.addr)).unwrap();
    install(&apt2, &repo).await;
    // Same cache entries: no new upstream download.
    assert_eq!(up.requests_matching("*.deb"), 2, "{:?}", up.request_log());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_on_ipv6_loopback_in_both_modes() {
    if !has_ipv6() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve_at(repo.root(), "[::1]:0".parse().unwrap()).unwrap();
    let up_url = up.url();
    assert!(up_url.starts_with("http://[::1]:"), "{up_url}");
    let c = cacher(&tmp.path().join("cacher"), &up_url, "").await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    install(&apt, &repo).await;
    assert_eq!(up.requests_matching("*.deb"), 2, "{:?}", up.request_log());

    // Proxy mode: apt asks the cacher for http://[::1]:PORT/...; that host
    // and port are the mapping's, so the same cache entries serve it.
    let mut apt2 = AptEnv::new().unwrap();
    apt2.add_source(&up_url, "stable", &["main"]).unwrap();
    apt2.proxy(&format!("http://{}/", c.addr)).unwrap();
    install(&apt2, &repo).await;
    assert_eq!(up.requests_matching("*.deb"), 2, "{:?}", up.request_log());

    // The upstream's counters are kept under its bracketed host and port.
    let (status, metrics) = get(&format!("http://{}/~/metrics", c.addr)).await;
    assert_eq!(status, 200);
    let label = format!("host=\"[::1]:{}\"", up.port());
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("apt_cacher_upstream_requests_total") && l.contains(&label)),
        "{label} in\n{metrics}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_address_answers_on_ipv4_and_ipv6() {
    if !has_ipv6() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    // Only ::1 may read the status pages: an IPv4 client is refused, and
    // named as the plain IPv4 address it is (not ::ffff:127.0.0.1).
    let c = start_listening(
        &tmp.path().join("cacher"),
        "\":0\"",
        &up.url(),
        "status_allow = [\"::1\"]",
    )
    .await;
    assert_eq!(
        c.addr.ip(),
        IpAddr::from(Ipv6Addr::UNSPECIFIED),
        "one dual-stack socket"
    );
    assert_eq!(c.addrs, [c.addr]);
    let port = c.addr.port();
    for host in ["127.0.0.1", "[::1]"] {
        let (status, _) = get(&format!(
            "http://{host}:{port}/debian/dists/stable/InRelease"
        ))
        .await;
        assert_eq!(status, 200, "{host}");
    }
    let (status, body) = get(&format!("http://[::1]:{port}/~/status.json")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&format!("http://127.0.0.1:{port}/~/status.json")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.starts_with("127.0.0.1 may not read the status pages"),
        "{body}"
    );
    c.stop().await;
}

/// Sends a keep-alive GET for the InRelease on `s`.
async fn send_get(s: &mut TcpStream) {
    s.write_all(b"GET /debian/dists/stable/InRelease HTTP/1.1\r\nHost: cacher\r\n\r\n")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_addresses_share_one_client_budget_and_stop_together() {
    if !has_ipv6() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = start_listening(
        &tmp.path().join("cacher"),
        "[\"127.0.0.1:0\", \"[::1]:0\"]",
        &up.url(),
        "max_clients = 1",
    )
    .await;
    let addrs: Vec<SocketAddr> = c.addrs.clone();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6(), "{addrs:?}");
    assert_eq!(c.addr, addrs[0]);
    for a in &addrs {
        let (status, _) = get(&format!("http://{a}/debian/dists/stable/InRelease")).await;
        assert_eq!(status, 200, "{a}");
    }
    // One connection on the IPv4 socket holds the only place...
    let mut first = TcpStream::connect(addrs[0]).await.unwrap();
    send_get(&mut first).await;
    assert_eq!(read_response(&mut first).await.0, 200);
    // ...so a client of the IPv6 socket waits in the backlog...
    let mut second = TcpStream::connect(addrs[1]).await.unwrap();
    send_get(&mut second).await;
    let early = tokio::time::timeout(Duration::from_millis(500), read_response(&mut second)).await;
    assert!(early.is_err(), "answered beyond max_clients = 1");
    // ...until the first one closes.
    drop(first);
    let (status, _) = tokio::time::timeout(Duration::from_secs(10), read_response(&mut second))
        .await
        .expect("answered once the first client left");
    assert_eq!(status, 200);
    drop(second);
    c.stop().await;
    for a in &addrs {
        let e = TcpStream::connect(a)
            .await
            .expect_err("still listening after stop");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{a}: {e}");
    }
}
