//! Latency and resource benchmarks: time to first byte on a cold miss, the
//! RSS of 1000 keep-alive clients, startup with 100k cached files.

use super::*;

/// Time to first byte of a cold miss, against the upstream's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_ttfb_cold_miss() {
    let files = 30;
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    for i in 0..files {
        write_big(&www.join(format!("pool/f{i}.deb")), 1);
    }
    let ng = nginx(&www, &tmp.path().join("nginx"));
    let (c, _) = cacher(&tmp.path().join("cacher"), ng.addr);
    let cl = client();
    let (mut up, mut ours) = (Vec::new(), Vec::new());
    for i in 0..files {
        up.push(
            fetch(&cl, &format!("http://{}/pool/f{i}.deb", ng.addr))
                .await
                .1,
        );
        ours.push(
            fetch(&cl, &format!("http://{}/debian/pool/f{i}.deb", c.addr))
                .await
                .1,
        );
    }
    up.sort();
    ours.sort();
    let (u, o) = (
        up[files / 2].as_secs_f64() * 1e3,
        ours[files / 2].as_secs_f64() * 1e3,
    );
    line(
        "cold-miss time to first byte (median)",
        "nginx",
        u,
        o,
        "ms",
        &format!("+{:.2} ms <= 10 ms", o - u),
    );
}

/// 1,000 concurrent keep-alive clients: peak RSS of the cacher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_1000_keepalive_clients_rss() {
    let clients = env_usize("BENCH_CONNS", 1000);
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    write_big(&www.join("pool/small.deb"), 1);
    let ng = nginx(&www, &tmp.path().join("nginx"));
    let (c, _) = cacher(&tmp.path().join("cacher"), ng.addr);
    let url = Arc::new(format!("http://{}/debian/pool/small.deb", c.addr));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                // One connection per client, kept alive for 5 requests.
                let cl = reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                for _ in 0..5 {
                    fetch(&cl, &url).await;
                }
                cl
            })
        })
        .collect();
    let mut keep = Vec::new();
    for t in tasks {
        keep.push(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    let rss = c.peak_rss_kib() as f64 / 1024.0;
    println!(
        "{clients} keep-alive clients x 5 requests of 1 MiB in {:.2} s",
        elapsed.as_secs_f64()
    );
    line("  peak RSS", "limit", 150.0, rss, "MiB", "<= 1.0");
    drop(keep);
}

/// Start-up with 100,000 cached files: time until the first request is answered.
#[test]
#[ignore]
fn bench_startup_with_100k_files() {
    let files = env_usize("BENCH_FILES", 100_000);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cacher/cache/debian/pool/main");
    for d in 0..(files / 1000).max(1) {
        let dir = cache.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..1000.min(files) {
            std::fs::write(dir.join(format!("p{f}_1.0_amd64.deb#u")), b"x").unwrap();
        }
    }
    let upstream: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (c, listening) = cacher(&tmp.path().join("cacher"), upstream);
    let url = "/debian/pool/main/d0/p0_1.0_amd64.deb";
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(c.addr).unwrap();
    write!(
        s,
        "GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut s, &mut resp).unwrap();
    let first = listening + t.elapsed();
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with("\r\n\r\nx"),
        "{resp}"
    );
    line(
        &format!("start-up with {files} cached files, first hit"),
        "limit",
        1.0,
        first.as_secs_f64(),
        "s",
        "<= 1.0",
    );
}
