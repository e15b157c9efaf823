//! Requests the cacher answers without a download: 404s that are no
//! failure, negative caching, methods, `status_allow` over IPv4-mapped
//! clients, and CONNECT refused unless allowed.

use super::*;

#[tokio::test]
async fn not_found_is_no_recent_failure() {
    let up = Up::new();
    let deb = vec![7u8; 1000];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    up.put("/repo/pool/main/a/a_1_amd64.deb", vec![8u8; 1000]);
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let base = format!("http://{}/m", cacher.addr);
    for f in ["Release", "main/binary-amd64/Packages.gz"] {
        let (s, _) = get(&format!("{base}/dists/stable/{f}")).await.unwrap();
        assert_eq!(s, 200);
    }
    // A verification failure, then many requests for files that do not exist.
    let _ = get(&format!("{base}/pool/main/a/a_1_amd64.deb")).await;
    for i in 0..(apt_cacher::metrics::RECENT_FAILURES + 5) {
        let (s, _) = get(&format!("{base}/pool/missing-{i}.deb")).await.unwrap();
        assert_eq!(s, 404);
    }
    let (s, _) = get(&format!("{base}/dists/nosuch/InRelease"))
        .await
        .unwrap();
    assert_eq!(s, 404);
    let failures = cacher.app.metrics.recent_failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].url.ends_with("a_1_amd64.deb"), "{failures:?}");
    // The 404s are still counted as upstream errors.
    let errors: u64 = cacher
        .app
        .metrics
        .counters()
        .upstream
        .values()
        .map(|h| h.errors)
        .sum();
    assert!(
        errors > apt_cacher::metrics::RECENT_FAILURES as u64 + 5,
        "{errors} upstream errors"
    );
    cacher.stop().await;
}

#[tokio::test]
async fn status_allow_matches_ipv4_mapped_clients_and_nets() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "127.0.0.1:9".parse().unwrap());
    cfg.status_allow = Some(
        ["10.0.0.0/8", "::ffff:192.168.0.0/112", "::1"]
            .iter()
            .map(|n| apt_cacher::config::parse_network(n).unwrap())
            .collect(),
    );
    let cacher = start(cfg).await;
    let allowed = |a: &str| cacher.app.status_allowed(a.parse().unwrap());
    // A dual-stack socket sees IPv4 clients as ::ffff:a.b.c.d.
    assert!(allowed("10.1.2.3"));
    assert!(allowed("::ffff:10.1.2.3"));
    assert!(allowed("192.168.7.8"));
    assert!(allowed("::ffff:192.168.7.8"));
    assert!(allowed("::1"));
    assert!(!allowed("11.0.0.1"));
    assert!(!allowed("::ffff:11.0.0.1"));
    assert!(!allowed("192.169.0.1"));
    assert!(!allowed("127.0.0.1"));
    cacher.stop().await;
}

#[tokio::test]
async fn negative_caching_and_methods() {
    let up = Up::new();
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let url = format!("http://{}/m/pool/missing.deb", cacher.addr);
    for _ in 0..3 {
        assert_eq!(get(&url).await.unwrap().0, 404);
    }
    assert_eq!(up.count("/repo/pool/missing.deb"), 1);
    assert_eq!(
        get(&format!("http://{}/nope/x", cacher.addr))
            .await
            .unwrap()
            .0,
        404
    );
    let r = client().post(&url).send().await.unwrap();
    assert_eq!(r.status(), 501);
    cacher.stop().await;
}

#[tokio::test]
async fn connect_is_refused_unless_allowed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Up::new();
    up.put("/hello", Bytes::from_static(b"hi"));
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.connect_allow = vec![addr.to_string()];
    let cacher = start(cfg).await;
    for (target, allowed) in [(addr.to_string(), true), ("127.0.0.1:1".to_string(), false)] {
        let mut s = tokio::net::TcpStream::connect(cacher.addr).await.unwrap();
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        if !allowed {
            assert!(head.starts_with("HTTP/1.1 403"), "{head}");
            continue;
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        // Through the tunnel, a plain request to the upstream.
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        assert!(
            String::from_utf8_lossy(&all).ends_with("hi"),
            "{}",
            String::from_utf8_lossy(&all)
        );
    }
    cacher.stop().await;
}
