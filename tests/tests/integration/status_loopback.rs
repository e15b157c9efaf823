//! Issue #13 item 9: the status pages show mapping URLs, upstream hosts
//! and failed URLs, so by default only loopback may read them (127.0.0.0/8
//! and ::1); `status_allow` replaces that default with its own list, and
//! then loopback is refused unless listed. Every other client gets a bare
//! 403. 127.0.0.2 is loopback too, so the default is also checked on the
//! decision itself with addresses no test can connect from.

use std::net::{IpAddr, SocketAddr};
use testkit::rawhttp::connect_from;
use testkit::{Repo, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAGES: [&str; 4] = ["/~/status", "/~/status.json", "/~/metrics", "/~/other"];

/// GET `path` from `from` (connection closed after): status and body.
async fn get_from(from: &str, to: SocketAddr, path: &str) -> (u16, String) {
    let from: IpAddr = from.parse().unwrap();
    let mut s = connect_from(from, to).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.unwrap();
    let all = String::from_utf8_lossy(&all).into_owned();
    let status = all.split(' ').nth(1).unwrap().parse().unwrap();
    let body = all.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_pages_are_loopback_only_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo")).build().unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    for from in ["127.0.0.1", "127.0.0.2"] {
        let (status, body) = get_from(from, c.addr, "/~/status.json").await;
        assert_eq!(status, 200, "{from}");
        assert!(body.contains(&up.url()), "{body}");
        assert_eq!(get_from(from, c.addr, "/~/metrics").await.0, 200);
    }
    for refused in ["192.0.2.7", "10.1.2.3", "::ffff:192.0.2.7", "2001:db8::1"] {
        assert!(!c.app.status_allowed(refused.parse().unwrap()), "{refused}");
    }
    for allowed in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
        assert!(c.app.status_allowed(allowed.parse().unwrap()), "{allowed}");
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_status_allow_replaces_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo")).build().unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(
        &tmp.path().join("cacher"),
        &up.url(),
        "status_allow = [\"127.0.0.2/32\"]",
    )
    .await;
    assert_eq!(get_from("127.0.0.2", c.addr, "/~/status").await.0, 200);
    for page in PAGES {
        let (status, body) = get_from("127.0.0.1", c.addr, page).await;
        assert_eq!(status, 403, "{page}");
        // No detail of the cacher: neither upstream nor mapping.
        assert!(
            !body.contains(&up.url()) && !body.contains("debian"),
            "{body}"
        );
    }
    // The cache itself still serves everyone.
    let (status, _) = get_from("127.0.0.1", c.addr, "/debian/dists/stable/InRelease").await;
    assert_eq!(status, 200);
    c.stop().await;
}
