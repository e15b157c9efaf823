//! In-crate end-to-end tests: a tiny in-process upstream (files in memory,
//! request counters, slow streaming, replaceable content) and the cacher
//! started on 127.0.0.1:0, exercised with reqwest.

use crate::config::{parse_upstream_url, Config, LogConfig, Mapping, Timeouts};
use aptindex::checksum::{Checksums, HashKind};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod modes;

#[derive(Default)]
struct UpstreamState {
    files: HashMap<String, Bytes>,
    counts: HashMap<String, usize>,
    /// Delay between 64 KiB chunks.
    chunk_delay: Option<Duration>,
    /// A `Content-Length` to announce instead of the true one (a lying or
    /// truncating upstream); `None`: none at all (chunked).
    announced: HashMap<String, Option<usize>>,
}

#[derive(Clone, Default)]
struct FakeUpstream(Arc<Mutex<UpstreamState>>);

impl FakeUpstream {
    fn put(&self, path: &str, data: impl Into<Bytes>) {
        self.0
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), data.into());
    }
    fn count(&self, path: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .counts
            .get(path)
            .copied()
            .unwrap_or(0)
    }
    fn set_delay(&self, d: Option<Duration>) {
        self.0.lock().unwrap().chunk_delay = d;
    }

    async fn start(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let me = me.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let (data, delay, announced) = {
                                    let mut st = me.0.lock().unwrap();
                                    *st.counts.entry(path.clone()).or_default() += 1;
                                    (
                                        st.files.get(&path).cloned(),
                                        st.chunk_delay,
                                        st.announced.get(&path).copied(),
                                    )
                                };
                                let resp = match data {
                                    None => hyper::Response::builder()
                                        .status(404)
                                        .body(
                                            http_body_util::Full::new(Bytes::new())
                                                .map_err(|n| match n {})
                                                .boxed(),
                                        )
                                        .unwrap(),
                                    Some(d) => {
                                        let len = d.len();
                                        let chunks: Vec<Bytes> = (0..len)
                                            .step_by(65536)
                                            .map(|i| d.slice(i..(i + 65536).min(len)))
                                            .collect();
                                        let stream = futures_util::stream::iter(chunks).then(
                                            move |c| async move {
                                                if let Some(d) = delay {
                                                    tokio::time::sleep(d).await;
                                                }
                                                Ok::<_, std::io::Error>(Frame::data(c))
                                            },
                                        );
                                        let mut b = hyper::Response::builder();
                                        match announced {
                                            None => b = b.header("content-length", len),
                                            Some(Some(n)) => b = b.header("content-length", n),
                                            Some(None) => {}
                                        }
                                        b.body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
                                    }
                                };
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        addr
    }
}

use futures_util::StreamExt;

fn config(dir: &std::path::Path, upstream: SocketAddr) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        check_interval: Duration::from_secs(600),
        cache_period: Duration::from_secs(3),
        meta_dir: dir.join("meta"),
        cache_dir: dir.join("cache"),
        cache_capacity: 1 << 30,
        max_conns: 10,
        max_clients: crate::config::DEFAULT_MAX_CLIENTS,
        log: LogConfig::default(),
        mappings: vec![Mapping {
            prefix: "m".into(),
            url: parse_upstream_url(&format!("http://{upstream}/repo")).unwrap(),
            aliases: vec![],
        }],
        connect_allow: vec![],
        generation_grace: Duration::from_secs(600),
        timeouts: Timeouts::default(),
        status_allow: None,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(url: &str) -> Result<(u16, Bytes), String> {
    let r = client().get(url).send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r.bytes().await.map_err(|e| format!("body: {e}"))?;
    Ok((status, body))
}

fn sha256_hex(data: &[u8]) -> String {
    Checksums::of_bytes(data).hex(HashKind::Sha256).unwrap()
}

/// A tiny repository: Release listing Packages (and Packages.gz), Packages listing one .deb.
fn repo(deb: &[u8], version: u32) -> Vec<(String, Bytes)> {
    let packages = format!(
        "Package: a\nVersion: {version}\nArchitecture: amd64\nFilename: pool/main/a/a_1_amd64.deb\nSize: {}\nSHA256: {}\n\n",
        deb.len(),
        sha256_hex(deb)
    );
    let gz =
        aptindex::compress::compress(aptindex::Compression::Gzip, packages.as_bytes()).unwrap();
    let release = format!(
        "Origin: test\nSuite: stable\nCodename: stable{version}\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n {} {} main/binary-amd64/Packages.gz\n",
        sha256_hex(packages.as_bytes()),
        packages.len(),
        sha256_hex(&gz),
        gz.len()
    );
    vec![
        ("/repo/dists/stable/Release".into(), Bytes::from(release)),
        (
            "/repo/dists/stable/main/binary-amd64/Packages".into(),
            Bytes::from(packages),
        ),
        (
            "/repo/dists/stable/main/binary-amd64/Packages.gz".into(),
            Bytes::from(gz),
        ),
        (
            "/repo/pool/main/a/a_1_amd64.deb".into(),
            Bytes::copy_from_slice(deb),
        ),
    ]
}

/// Waits (up to 5 s) until the cache holds `n` files: a download's file is
/// kept just after its last byte went out.
async fn wait_cached(cacher: &crate::Running, n: usize) {
    for _ in 0..500 {
        if cacher.app.store.usage().0 >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the cache holds {:?}, expected {n} files",
        cacher.app.store.usage()
    );
}

async fn start(cfg: Config) -> crate::Running {
    crate::start(cfg, CancellationToken::new()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalescing_many_clients_one_upstream_request() {
    let up = FakeUpstream::default();
    let data: Bytes = (0..4u32 << 20)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    up.put("/repo/pool/big.deb", data.clone());
    up.set_delay(Some(Duration::from_millis(2)));
    let addr = up.start().await;
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
    let up = FakeUpstream::default();
    let data: Bytes = (0..16u32 << 20)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<u8>>()
        .into();
    up.put("/repo/pool/late.deb", data.clone());
    up.set_delay(Some(Duration::from_millis(1)));
    let addr = up.start().await;
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let url = format!("http://{}/m/pool/late.deb", cacher.addr);
    let sent_before = crate::sendfile::bytes_sent();
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
    assert!(crate::sendfile::bytes_sent() - sent_before >= 4 << 20);
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
    let up = FakeUpstream::default();
    let len = crate::mapped::MIN_MAPPED as usize * 2;
    let data: Bytes = (0..len)
        .map(|i| (i % 241) as u8)
        .collect::<Vec<u8>>()
        .into();
    up.put("/repo/pool/short.deb", data.slice(..len - 100_000));
    up.0.lock()
        .unwrap()
        .announced
        .insert("/repo/pool/short.deb".into(), Some(len));
    up.set_delay(Some(Duration::from_millis(1)));
    let addr = up.start().await;
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
    up.0.lock().unwrap().announced.clear();
    up.put("/repo/pool/short.deb", data.clone());
    up.set_delay(None);
    let body = get_200_within_10s(&url).await;
    assert!(body == data, "body differs");
    wait_cached(&cacher, 1).await;
    cacher.stop().await;
}

/// GETs `url` reading the body as it comes: (status, bytes received,
/// whether the body ended normally).
async fn get_streamed(url: &str) -> (u16, usize, bool) {
    let mut r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let mut n = 0;
    loop {
        match r.chunk().await {
            Ok(Some(c)) => n += c.len(),
            Ok(None) => return (status, n, true),
            Err(_) => return (status, n, false),
        }
    }
}

/// A verified file large enough to be mapped while it downloads, which
/// upstream sends chunked (no `Content-Length`) and short: nothing but the
/// expected size tells the download it is short. Clients are aborted,
/// nothing is cached, and the fixed file is fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_chunked_upstream_body_of_a_listed_file_is_never_complete_nor_cached() {
    let up = FakeUpstream::default();
    let size = crate::mapped::MIN_MAPPED as usize + 1000;
    let deb: Vec<u8> = (0..size).map(|i| (i % 233) as u8).collect();
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    let path = "/repo/pool/main/a/a_1_amd64.deb";
    up.put(path, deb[..size - 5000].to_vec());
    up.0.lock().unwrap().announced.insert(path.into(), None);
    let addr = up.start().await;
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
    up.0.lock().unwrap().announced.clear();
    up.put(path, deb.clone());
    let body = get_200_within_10s(&url).await;
    assert!(body == deb, "body differs");
    cacher.stop().await;
}

/// GETs `url` until it answers 200 (a remembered upstream failure expires
/// after `cache_period`), for at most 10 s; the body.
async fn get_200_within_10s(url: &str) -> Bytes {
    let t = std::time::Instant::now();
    loop {
        match get(url).await {
            Ok((200, body)) => return body,
            other => {
                assert!(t.elapsed() < Duration::from_secs(10), "{other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn get_owned(url: String) -> Result<(u16, Bytes), String> {
    get(&url).await
}

#[tokio::test]
async fn verified_pool_file_corruption_is_never_served_complete_nor_cached() {
    corrupted_pool_file(300_000).await;
}

/// The same with a file large enough to be memory-mapped while it downloads
/// (`mapped::map_download`): readers slice the map, and still never get the
/// last byte of a file that fails verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_mapped_download_corruption_is_never_served_complete_nor_cached() {
    corrupted_pool_file(crate::mapped::MIN_MAPPED as usize + 12_345).await;
}

async fn corrupted_pool_file(size: usize) {
    let up = FakeUpstream::default();
    let deb = vec![7u8; size];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    // Upstream serves a corrupted .deb of the right size (its last byte).
    let mut bad = deb.clone();
    bad[size - 1] = 8;
    up.put("/repo/pool/main/a/a_1_amd64.deb", bad);
    let addr = up.start().await;
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

#[tokio::test]
async fn generations_swap_only_when_consistent() {
    let up = FakeUpstream::default();
    let deb1 = vec![1u8; 1000];
    for (p, d) in repo(&deb1, 1) {
        up.put(&p, d);
    }
    let addr = up.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.check_interval = Duration::from_secs(0);
    cfg.cache_period = Duration::from_secs(0);
    let cacher = start(cfg.clone()).await;
    let base = format!("http://{}/m/dists/stable", cacher.addr);
    let (_, r1) = get(&format!("{base}/Release")).await.unwrap();
    let (_, p1) = get(&format!("{base}/main/binary-amd64/Packages"))
        .await
        .unwrap();
    assert!(r1.windows(7).any(|w| w == b"stable1"));

    // Upstream moves to version 2, but its Packages is caught mid-sync (still old):
    // the refresh fails, the old generation keeps being served.
    let deb2 = vec![2u8; 1000];
    let v2 = repo(&deb2, 2);
    up.put(&v2[0].0, v2[0].1.clone());
    let (_, r) = get(&format!("{base}/Release")).await.unwrap();
    assert_eq!(r, r1, "inconsistent upstream must not be swapped in");
    let (_, p) = get(&format!("{base}/main/binary-amd64/Packages"))
        .await
        .unwrap();
    assert_eq!(p, p1);

    // Upstream completes its sync: the new generation is swapped in whole.
    for (p, d) in &v2 {
        up.put(p, d.clone());
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // retry delay
    let (_, r2) = get(&format!("{base}/Release")).await.unwrap();
    assert!(r2.windows(7).any(|w| w == b"stable2"));
    let (_, p2) = get(&format!("{base}/main/binary-amd64/Packages"))
        .await
        .unwrap();
    assert_eq!(p2, v2[1].1);
    // The pool file is verified against the new index.
    let (s, d) = get(&format!(
        "http://{}/m/pool/main/a/a_1_amd64.deb",
        cacher.addr
    ))
    .await
    .unwrap();
    assert_eq!((s, d.as_ref()), (200, deb2.as_slice()));
    cacher.stop().await;

    // Restart: the generation and the cache survive; upstream gone still serves.
    let mut cfg2 = cfg;
    cfg2.check_interval = Duration::from_secs(600);
    cfg2.mappings[0].url = parse_upstream_url("http://127.0.0.1:9/repo").unwrap();
    let cacher = start(cfg2).await;
    let base = format!("http://{}/m/dists/stable", cacher.addr);
    let (s, r) = get(&format!("{base}/Release")).await.unwrap();
    assert_eq!((s, r), (200, r2));
    let (s, p) = get(&format!("{base}/main/binary-amd64/Packages"))
        .await
        .unwrap();
    assert_eq!((s, p), (200, v2[1].1.clone()));
    let (s, d) = get(&format!(
        "http://{}/m/pool/main/a/a_1_amd64.deb",
        cacher.addr
    ))
    .await
    .unwrap();
    assert_eq!((s, d.as_ref()), (200, deb2.as_slice()));
    cacher.stop().await;
}

#[tokio::test]
async fn not_found_is_no_recent_failure() {
    let up = FakeUpstream::default();
    let deb = vec![7u8; 1000];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    up.put("/repo/pool/main/a/a_1_amd64.deb", vec![8u8; 1000]);
    let addr = up.start().await;
    let dir = tempfile::tempdir().unwrap();
    let cacher = start(config(dir.path(), addr)).await;
    let base = format!("http://{}/m", cacher.addr);
    for f in ["Release", "main/binary-amd64/Packages.gz"] {
        let (s, _) = get(&format!("{base}/dists/stable/{f}")).await.unwrap();
        assert_eq!(s, 200);
    }
    // A verification failure, then many requests for files that do not exist.
    let _ = get(&format!("{base}/pool/main/a/a_1_amd64.deb")).await;
    for i in 0..(crate::metrics::RECENT_FAILURES + 5) {
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
        errors > crate::metrics::RECENT_FAILURES as u64 + 5,
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
            .map(|n| crate::config::parse_network(n).unwrap())
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
    let up = FakeUpstream::default();
    let addr = up.start().await;
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
async fn head_304_and_range_while_downloading() {
    let up = FakeUpstream::default();
    let data: Bytes = (0..1u32 << 20)
        .map(|i| (i % 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    up.put("/repo/pool/x.deb", data.clone());
    up.set_delay(Some(Duration::from_millis(20)));
    let addr = up.start().await;
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

#[tokio::test]
async fn rebuilt_pool_file_under_the_same_name_is_fetched_again() {
    let up = FakeUpstream::default();
    let deb1 = vec![1u8; 5000];
    for (p, d) in repo(&deb1, 1) {
        up.put(&p, d);
    }
    let addr = up.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.check_interval = Duration::from_secs(0);
    let cacher = start(cfg).await;
    let base = format!("http://{}/m", cacher.addr);
    let deb_url = format!("{base}/pool/main/a/a_1_amd64.deb");
    get(&format!("{base}/dists/stable/Release")).await.unwrap();
    get(&format!(
        "{base}/dists/stable/main/binary-amd64/Packages.gz"
    ))
    .await
    .unwrap();
    assert_eq!(get(&deb_url).await.unwrap().1, deb1);
    assert_eq!(get(&deb_url).await.unwrap().1, deb1);
    assert_eq!(up.count("/repo/pool/main/a/a_1_amd64.deb"), 1);
    // Same file name, new bytes, new indices.
    let deb2 = vec![2u8; 5000];
    for (p, d) in repo(&deb2, 1) {
        up.put(&p, d);
    }
    get(&format!("{base}/dists/stable/Release")).await.unwrap();
    assert_eq!(get(&deb_url).await.unwrap().1, deb2);
    assert_eq!(up.count("/repo/pool/main/a/a_1_amd64.deb"), 2);
    cacher.stop().await;
}

#[tokio::test]
async fn connect_is_refused_unless_allowed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = FakeUpstream::default();
    up.put("/hello", Bytes::from_static(b"hi"));
    let addr = up.start().await;
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

#[tokio::test]
async fn crash_leftovers_are_cleaned_and_state_stays_consistent() {
    let up = FakeUpstream::default();
    let deb = vec![9u8; 2000];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    let addr = up.start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), addr);
    let cacher = start(cfg.clone()).await;
    let base = format!("http://{}/m", cacher.addr);
    let (_, rel) = get(&format!("{base}/dists/stable/Release")).await.unwrap();
    get(&format!("{base}/dists/stable/main/binary-amd64/Packages"))
        .await
        .unwrap();
    get(&format!("{base}/pool/main/a/a_1_amd64.deb"))
        .await
        .unwrap();
    cacher.stop().await;
    // What a kill -9 in the middle of things can leave behind.
    let suite = dir.path().join("meta/m/dists%2Fstable");
    std::fs::create_dir_all(suite.join("gen-99/main")).unwrap();
    std::fs::write(suite.join("gen-99/Release"), b"half-written").unwrap();
    std::os::unix::fs::symlink("gen-99", suite.join("current.tmp")).unwrap();
    std::fs::write(dir.path().join("cache/.tmp/dl-partial"), b"partial").unwrap();
    std::fs::write(dir.path().join("meta/.tmp/idx-partial"), b"partial").unwrap();

    let cacher = start(cfg).await;
    let base = format!("http://{}/m", cacher.addr);
    assert!(!dir.path().join("cache/.tmp/dl-partial").exists());
    assert!(!dir.path().join("meta/.tmp/idx-partial").exists());
    let (s, r) = get(&format!("{base}/dists/stable/Release")).await.unwrap();
    assert_eq!((s, r), (200, rel));
    assert!(
        !suite.join("gen-99").exists(),
        "unreferenced generation left behind"
    );
    let (s, d) = get(&format!("{base}/pool/main/a/a_1_amd64.deb"))
        .await
        .unwrap();
    assert_eq!((s, d.as_ref()), (200, deb.as_slice()));
    assert_eq!(up.count("/repo/pool/main/a/a_1_amd64.deb"), 1);
    assert_eq!(up.count("/repo/dists/stable/main/binary-amd64/Packages"), 1);
    cacher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_generations_are_removed_after_grace_and_valid_until_is_renewed() {
    let up = FakeUpstream::default();
    let deb = vec![1u8; 100];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    let addr = up.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.check_interval = Duration::from_secs(0);
    cfg.cache_period = Duration::from_secs(0);
    cfg.generation_grace = Duration::from_secs(1);
    let cacher = start(cfg).await;
    let base = format!("http://{}/m/dists/stable", cacher.addr);
    get(&format!("{base}/Release")).await.unwrap();
    for (p, d) in repo(&[2u8; 100], 2) {
        up.put(&p, d);
    }
    get(&format!("{base}/Release")).await.unwrap();
    let suite = dir.path().join("meta/m/dists%2Fstable");
    let gens = || {
        std::fs::read_dir(&suite)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
            .count()
    };
    assert_eq!(
        gens(),
        2,
        "the previous generation is kept during the grace period"
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        gens(),
        1,
        "the dead generation is removed after the grace period"
    );
    cacher.stop().await;

    // A Release whose Valid-Until is near is re-checked even within check_interval.
    let up = FakeUpstream::default();
    let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
    up.put(
        "/repo/dists/s/Release",
        format!("Suite: s\nValid-Until: {soon}\nSHA256:\n"),
    );
    let addr = up.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.check_interval = Duration::from_secs(600);
    cfg.cache_period = Duration::from_secs(1);
    let cacher = start(cfg).await;
    let url = format!("http://{}/m/dists/s/Release", cacher.addr);
    get(&url).await.unwrap();
    get(&url).await.unwrap();
    assert_eq!(up.count("/repo/dists/s/Release"), 1, "re-checked too soon");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    get(&url).await.unwrap();
    assert_eq!(
        up.count("/repo/dists/s/Release"),
        2,
        "Valid-Until near: must be renewed"
    );
    cacher.stop().await;
}

/// A `tracing` writer into a shared buffer (the access-log lines of a test).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The access-log lines so far.
    fn access_lines(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter(|l| l.contains(" access: "))
            .map(str::to_string)
            .collect()
    }

    /// Waits (up to 5 s) until there are `n` access lines; returns them.
    async fn wait_lines(&self, n: usize) -> Vec<String> {
        for _ in 0..500 {
            let lines = self.access_lines();
            if lines.len() >= n {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} access lines, got {:#?}", self.access_lines());
    }
}

/// One access line per request, written when the response ends: result,
/// status, bytes actually sent, upstream status on misses, `complete=false`
/// for a client that went away mid-body; the reserved pages answer in
/// origin-form and to absolute-form (proxy) requests to the cacher itself.
/// (A current-thread runtime: the thread-local subscriber sees every task.)
#[tokio::test(flavor = "current_thread")]
async fn access_log_lines_and_reserved_pages() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let up = FakeUpstream::default();
    let deb = vec![7u8; 10_000];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    let big: Bytes = vec![1u8; 4 << 20].into();
    up.put("/repo/pool/big.deb", big.clone());
    let addr = up.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.cache_period = Duration::from_secs(60);
    let cacher = start(cfg).await;
    let base = format!("http://{}/m", cacher.addr);
    let mut n = 0;
    let mut check = |lines: &[String], path: &str, result: &str, status: u16| {
        let l = &lines[n];
        n += 1;
        assert!(l.contains(path), "{path}: {l}");
        assert!(l.contains(&format!(" result={result} ")), "{result}: {l}");
        assert!(l.contains(&format!(" status={status} ")), "{status}: {l}");
        assert!(
            l.contains(" client=127.0.0.1:") && l.contains(" ms="),
            "{l}"
        );
        l.clone()
    };
    get(&format!("{base}/dists/stable/Release")).await.unwrap();
    let packages = "dists/stable/main/binary-amd64/Packages";
    get(&format!("{base}/{packages}")).await.unwrap();
    let deb_url = format!("{base}/pool/main/a/a_1_amd64.deb");
    get(&deb_url).await.unwrap();
    // The file is kept just after its last byte went out: wait for that.
    wait_cached(&cacher, 1).await;
    get(&deb_url).await.unwrap();
    get(&format!("{base}/pool/none.deb")).await.unwrap();
    get(&format!("{base}/pool/none.deb")).await.unwrap();
    get(&format!("{base}/dists/stable/Release")).await.unwrap();
    get(&format!("http://{}/zz/x", cacher.addr)).await.unwrap();
    let (s, body) = get(&format!("http://{}/~/status.json", cacher.addr))
        .await
        .unwrap();
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["counters"]["requests"]["hit"], 2);
    assert_eq!(v["counters"]["requests"]["negative"], 1);
    // Absolute-form to the cacher itself, as apt configured with it as a proxy sends.
    let proxied = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://{}", cacher.addr)).unwrap())
        .build()
        .unwrap();
    let r = proxied
        .get(format!("http://127.0.0.1:{}/~/metrics", cacher.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("apt_cacher_requests_total{result=\"local\"} 1\n"));
    let r = proxied
        .get(format!("http://127.0.0.1:{}/~/nothing", cacher.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let lines = captured.wait_lines(11).await;
    check(&lines, "dists/stable/Release", "miss", 200);
    check(&lines, packages, "miss", 200);
    let l = check(&lines, "a_1_amd64.deb", "miss", 200);
    assert!(
        l.contains(" bytes=10000 ") && l.contains(" complete=true"),
        "{l}"
    );
    assert!(
        l.contains(" upstream_status=200 ") && l.contains(" upstream_ms="),
        "{l}"
    );
    let l = check(&lines, "a_1_amd64.deb", "hit", 200);
    assert!(
        l.contains(" bytes=10000 ") && !l.contains("upstream_status"),
        "{l}"
    );
    let l = check(&lines, "pool/none.deb", "miss", 404);
    assert!(l.contains(" upstream_status=404 "), "{l}");
    check(&lines, "pool/none.deb", "negative", 404);
    check(&lines, "dists/stable/Release", "hit", 200);
    check(&lines, "/zz/x", "refused", 404);
    check(&lines, "/~/status.json", "local", 200);
    check(&lines, "/~/metrics", "local", 200);
    check(&lines, "/~/nothing", "refused", 404);
    assert!(lines[1].contains(" mapping=m "), "{}", lines[1]);

    // A client that reads a little of a slow download and goes away.
    up.set_delay(Some(Duration::from_millis(20)));
    let r = client()
        .get(format!("{base}/pool/big.deb"))
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(stream);
    let lines = captured.wait_lines(12).await;
    let l = lines.last().unwrap().clone();
    assert!(
        l.contains("big.deb") && l.contains(" complete=false"),
        "{l}"
    );
    let bytes: u64 = l
        .split(" bytes=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|b| b.parse().ok())
        .unwrap();
    assert!(bytes > 0 && bytes < big.len() as u64, "{l}");
    cacher.stop().await;
}

/// Counters for the results the scripted integration test does not reach:
/// Release re-checked and unchanged (revalidated), a new Release (miss and
/// a generation swap), a joined download (coalesced), a file no index
/// lists (pass); and the current generations the status page shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_results_coalesced_and_pass_counters() {
    use crate::metrics::Outcome;
    let up = FakeUpstream::default();
    let deb1 = vec![1u8; 1000];
    for (p, d) in repo(&deb1, 1) {
        up.put(&p, d);
    }
    up.put("/repo/README", "hello");
    let slow: Bytes = vec![9u8; 1 << 20].into();
    up.put("/repo/pool/slow.deb", slow.clone());
    let addr = up.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), addr);
    cfg.check_interval = Duration::from_secs(0); // every Release request re-checks
    let cacher = start(cfg).await;
    let m = cacher.app.metrics.clone();
    let release = format!("http://{}/m/dists/stable/Release", cacher.addr);
    get(&release).await.unwrap();
    assert_eq!(m.counters().requests_of(Outcome::Miss), 1);
    get(&release).await.unwrap();
    assert_eq!(m.counters().requests_of(Outcome::Revalidated), 1);
    for (p, d) in repo(&vec![2u8; 1000], 2) {
        up.put(&p, d);
    }
    let (_, r2) = get(&release).await.unwrap();
    assert!(r2.windows(7).any(|w| w == b"stable2"));
    let c = m.counters();
    assert_eq!(
        (c.requests_of(Outcome::Miss), c.generation_swaps),
        (2, 2),
        "{c:?}"
    );
    let gens = cacher.app.gens.current_generations();
    assert_eq!(gens.len(), 1);
    assert_eq!(
        (gens[0].mapping.as_str(), gens[0].suite.as_str()),
        ("m", "dists/stable")
    );
    assert_eq!(
        (gens[0].generation, gens[0].indices, gens[0].listed),
        (2, 0, 2)
    );

    // Two clients of one slow download: one miss, one coalesced.
    up.set_delay(Some(Duration::from_millis(20)));
    let url = format!("http://{}/m/pool/slow.deb", cacher.addr);
    let first = tokio::spawn(get_owned(url.clone()));
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (s, body) = get(&url).await.unwrap();
    assert_eq!((s, body.len()), (200, slow.len()));
    assert_eq!(first.await.unwrap().unwrap().1.len(), slow.len());
    up.set_delay(None);
    let c = m.counters();
    assert_eq!(
        (
            c.requests_of(Outcome::Miss),
            c.requests_of(Outcome::Coalesced)
        ),
        (3, 1),
        "{c:?}"
    );
    assert_eq!(up.count("/repo/pool/slow.deb"), 1);

    // Not under pool/ and listed by no index: passed through, not cached.
    let (s, body) = get(&format!("http://{}/m/README", cacher.addr))
        .await
        .unwrap();
    assert_eq!((s, body.as_ref()), (200, b"hello".as_slice()));
    let c = m.counters();
    assert_eq!(c.requests_of(Outcome::Pass), 1);
    wait_cached(&cacher, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cacher.app.store.usage().0, 1, "only slow.deb is cached");
    cacher.stop().await;
}
