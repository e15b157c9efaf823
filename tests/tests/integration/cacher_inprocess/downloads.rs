//! Downloads as clients see them: many clients of one download make one
//! upstream request, late readers get exact bytes from the memory map, a
//! body cut short (under its `Content-Length`, or chunked) is never
//! complete nor cached, and ranges, HEAD and 304 work while a file
//! downloads and once it is cached.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalescing_many_clients_one_upstream_request() {
    let up = Up::new();
    let data: Bytes = (0..4u32 << 20)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    up.put("/repo/pool/big.deb", data.clone());
    up.set_delay(Some(Duration::from_millis(2)));
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let url = format!("http://{}/m/pool/big.deb", cacher.addr);
    let tasks: Vec<_> = (0..50)
        .map(|_| tokio::spawn(get_owned(url.clone())))
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap().unwrap();
        assert_eq!(status, 200);
        assert!(body == data, "body differs");
    }
    assert_eq!(up.count("/repo/pool/big.deb"), 1);
    // Warm: served from the cache, still one upstream request; ranges work.
    let r = client()
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), data.slice(10..20));
    assert_eq!(up.count("/repo/pool/big.deb"), 1);
    cacher.stop().await;
}

/// A client that joined a large download and reads its body only after the
/// download finished gets the rest from the memory map (`mapped`): the
/// bytes are exact, whole and for a range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_readers_of_a_finished_download_get_exact_bytes() {
    let up = Up::new();
    let data: Bytes = (0..16u32 << 20)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<u8>>()
        .into();
    up.put("/repo/pool/late.deb", data.clone());
    up.set_delay(Some(Duration::from_millis(1)));
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let url = format!("http://{}/m/pool/late.deb", cacher.addr);
    let sent_before = apt_cacher::sendfile::bytes_sent();
    // Both requests get their headers while the download is in flight.
    let whole = client().get(&url).send().await.unwrap();
    let range = client()
        .get(&url)
        .header("range", "bytes=5000000-15999999")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (whole.status().as_u16(), range.status().as_u16()),
        (200, 206)
    );
    let t = std::time::Instant::now();
    while cacher.app.store.usage().0 < 1 {
        assert!(t.elapsed() < Duration::from_secs(30), "never cached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(whole.bytes().await.unwrap() == data, "whole body differs");
    assert!(
        range.bytes().await.unwrap() == data.slice(5_000_000..16_000_000),
        "range differs"
    );
    // Map slices went out with sendfile (at least the frames of one body).
    assert!(apt_cacher::sendfile::bytes_sent() - sent_before >= 4 << 20);
    assert_eq!(up.count("/repo/pool/late.deb"), 1);
    cacher.stop().await;
}

/// An upstream that announces more bytes than it sends (hyper's client
/// notices the early end): the clients that joined the memory-mapped
/// download get an aborted body, never a complete one, and nothing is
/// cached; once upstream is right, the file is fetched again and served
/// whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_upstream_body_is_never_complete_nor_cached() {
    let up = Up::new();
    let len = apt_cacher::mapped::MIN_MAPPED as usize * 2;
    let data: Bytes = (0..len)
        .map(|i| (i % 241) as u8)
        .collect::<Vec<u8>>()
        .into();
    // The whole file, its true length announced, the connection closed
    // 100,000 bytes before the end.
    up.put("/repo/pool/short.deb", &data);
    up.truncate(
        "/repo/pool/short.deb",
        (len - 100_000) as u64,
        Times::Always,
    );
    up.set_delay(Some(Duration::from_millis(1)));
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let url = format!("http://{}/m/pool/short.deb", cacher.addr);
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(get_owned(url.clone())))
        .collect();
    for t in tasks {
        match t.await.unwrap() {
            Err(_) => {}
            Ok((status, body)) => assert!(
                status != 200 || body.len() < len,
                "a short upstream body was served as complete ({status}, {} bytes)",
                body.len()
            ),
        }
    }
    assert_eq!(up.count("/repo/pool/short.deb"), 1);
    assert_eq!(cacher.app.store.usage().0, 0, "a short download was cached");
    // Upstream fixed (after the negative-cache period): fetched again, whole.
    up.clear_faults();
    up.put("/repo/pool/short.deb", data.clone());
    up.set_delay(None);
    let body = get_200_within_10s(&url).await;
    assert!(body == data, "body differs");
    wait_cached(&cacher, 1).await;
    cacher.stop().await;
}

/// A verified file large enough to be mapped while it downloads, which
/// upstream sends chunked (no `Content-Length`) and short: nothing but the
/// expected size tells the download it is short. Clients are aborted,
/// nothing is cached, and the fixed file is fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_chunked_upstream_body_of_a_listed_file_is_never_complete_nor_cached() {
    let up = Up::new();
    let size = apt_cacher::mapped::MIN_MAPPED as usize + 1000;
    let deb: Vec<u8> = (0..size).map(|i| (i % 233) as u8).collect();
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    let path = "/repo/pool/main/a/a_1_amd64.deb";
    up.put(path, &deb[..size - 5000]);
    up.chunked(path, Times::Always);
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let base = format!("http://{}/m", cacher.addr);
    for p in [
        "dists/stable/Release",
        "dists/stable/main/binary-amd64/Packages.gz",
    ] {
        assert_eq!(get(&format!("{base}/{p}")).await.unwrap().0, 200);
    }
    let url = format!("{base}/pool/main/a/a_1_amd64.deb");
    let (status, received, complete) = get_streamed(&url).await;
    assert!(
        !complete || status != 200,
        "short body served as complete ({received} bytes)"
    );
    assert!(received < size);
    assert_eq!(cacher.app.store.usage().0, 0, "a short download was cached");
    up.clear_faults();
    up.put(path, deb.clone());
    let body = get_200_within_10s(&url).await;
    assert!(body == deb, "body differs");
    cacher.stop().await;
}

#[tokio::test]
async fn head_304_and_range_while_downloading() {
    let up = Up::new();
    let data: Bytes = (0..1u32 << 20)
        .map(|i| (i % 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    up.put("/repo/pool/x.deb", data.clone());
    up.set_delay(Some(Duration::from_millis(20)));
    let addr = up.addr();
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let url = format!("http://{}/m/pool/x.deb", cacher.addr);
    // Start a slow cold download, and ask for a range of it while it runs.
    let first = tokio::spawn(get_owned(url.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = client()
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/1048576");
    assert_eq!(r.bytes().await.unwrap(), data.slice(100..200));
    assert!(first.await.unwrap().unwrap().1 == data);
    // (An unverified download's last byte may reach the client just before
    // it is cached: wait until it is, however busy the machine.)
    wait_cached(&cacher, 1).await;
    // HEAD on the cached file.
    let r = client().head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "1048576");
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.debian.binary-package"
    );
    let lm = r.headers()["last-modified"].to_str().unwrap().to_string();
    // If-Modified-Since → 304.
    let r = client()
        .get(&url)
        .header("if-modified-since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(up.count("/repo/pool/x.deb"), 1);
    cacher.stop().await;
}
