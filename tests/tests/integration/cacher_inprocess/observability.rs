//! What the cacher tells about itself: one access line per request,
//! written when the response ends (bytes actually sent, complete or not),
//! the reserved `/~/` pages in origin-form and absolute-form, and the
//! counters and current generations behind the status page.

use super::*;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};

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

    let up = Up::new();
    let deb = vec![7u8; 10_000];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    let big: Bytes = vec![1u8; 4 << 20].into();
    up.put("/repo/pool/big.deb", big.clone());
    let addr = up.addr();
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
    use apt_cacher::metrics::Outcome;
    let up = Up::new();
    let deb1 = vec![1u8; 1000];
    for (p, d) in repo(&deb1, 1) {
        up.put(&p, d);
    }
    up.put("/repo/README", "hello");
    let slow: Bytes = vec![9u8; 1 << 20].into();
    up.put("/repo/pool/slow.deb", slow.clone());
    let addr = up.addr();
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
