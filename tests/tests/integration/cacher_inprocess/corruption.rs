//! A pool file whose bytes fail verification, small or memory-mapped while
//! it downloads: bytes flow while it downloads, but never the last one; the
//! response breaks off, nothing is cached, and once upstream is fixed the
//! right bytes come, then hits (also through the proxy form, which is no
//! open proxy).

use super::*;

#[tokio::test]
async fn verified_pool_file_corruption_is_never_served_complete_nor_cached() {
    corrupted_pool_file(300_000).await;
}

/// The same with a file large enough to be memory-mapped while it downloads
/// (`mapped::map_download`): readers slice the map, and still never get the
/// last byte of a file that fails verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_mapped_download_corruption_is_never_served_complete_nor_cached() {
    corrupted_pool_file(apt_cacher::mapped::MIN_MAPPED as usize + 12_345).await;
}

async fn corrupted_pool_file(size: usize) {
    let up = Up::new();
    let deb = vec![7u8; size];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    // Upstream serves a corrupted .deb of the right size (its last byte).
    let mut bad = deb.clone();
    bad[size - 1] = 8;
    up.put("/repo/pool/main/a/a_1_amd64.deb", bad);
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let base = format!("http://{}/m", cacher.addr);
    let (s, rel) = get(&format!("{base}/dists/stable/Release")).await.unwrap();
    assert_eq!(s, 200);
    assert!(rel.starts_with(b"Origin: test"));
    let (s, _) = get(&format!(
        "{base}/dists/stable/main/binary-amd64/Packages.gz"
    ))
    .await
    .unwrap();
    assert_eq!(s, 200);
    // The corrupted file, streamed slowly: bytes flow while it downloads
    // (all but the last, held back until the file verifies), then the
    // response breaks off; it never completes.
    up.set_delay(Some(Duration::from_millis(2)));
    let (status, received, complete) =
        get_streamed(&format!("{base}/pool/main/a/a_1_amd64.deb")).await;
    up.set_delay(None);
    assert_eq!(status, 200);
    assert!(!complete, "corrupted bytes served as a complete response");
    assert!(
        received > 0 && received < size,
        "{received} of {size} bytes before the abort"
    );
    // Not cached: once upstream is fixed, the right bytes come (a new upstream request).
    up.put("/repo/pool/main/a/a_1_amd64.deb", deb.clone());
    let (s, body) = get(&format!("{base}/pool/main/a/a_1_amd64.deb"))
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert!(body == deb);
    assert_eq!(up.count("/repo/pool/main/a/a_1_amd64.deb"), 2);
    // Now a hit, also through the proxy form.
    let proxy = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://{}", cacher.addr)).unwrap())
        .build()
        .unwrap();
    let body = proxy
        .get(format!("http://{addr}/repo/pool/main/a/a_1_amd64.deb"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(body == deb);
    assert_eq!(up.count("/repo/pool/main/a/a_1_amd64.deb"), 2);
    // Not an open proxy.
    let r = proxy.get("http://example.invalid/x").send().await.unwrap();
    assert_eq!(r.status(), 403);
    cacher.stop().await;
}
