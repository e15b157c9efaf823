//! apt-cacher's own pages after a scripted sequence of requests: the exact
//! Prometheus counters at `/~/metrics`, the same figures in
//! `/~/status.json`, the HTML status page rendered by a real headless
//! browser (Debian's chromium) to a screenshot whose key figures OCR
//! (tesseract) reads back, and `status_allow` refusing other clients.

use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::cacher::start as cacher;
use testkit::{PackageSpec, Repo, Times, Upstream};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// GET `url`: status and body (`None` when the body broke off).
async fn get(url: &str) -> (u16, Option<bytes::Bytes>) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.ok())
}

async fn get_ok(url: &str) -> bytes::Bytes {
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{url}");
    body.unwrap_or_else(|| panic!("{url}: body broke off"))
}

/// The value of the sample line `name` (with its labels) in a Prometheus text.
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

/// Where the screenshot is kept for people to look at.
fn artifact(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cacher_status")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_status_json_and_page_after_a_scripted_sequence() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .package(PackageSpec::new("alpha", "1.0").size(20_000))
        .package(PackageSpec::new("beta", "2.0").size(30_000))
        .package(PackageSpec::new("gamma", "3.0").size(40_000))
        .package(PackageSpec::new("delta", "4.0").size(5_000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    // The script's second InRelease must be a hit: a re-check upstream
    // (`revalidate_interval`, 1 s by default; tested in cacher_fresh) would
    // make the counts depend on how fast this machine runs the script.
    let c = cacher(
        &tmp.path().join("cacher"),
        &up.url(),
        "cache_period = 60\nrevalidate_interval = 600",
    )
    .await;
    let base = format!("http://{}/debian", c.addr);
    let pool = |name: &str| format!("{base}/{}", repo.package(name).unwrap().pool_path);

    // 1 InRelease (miss: the first generation), 1 Packages.gz (miss).
    let inrelease = get_ok(&format!("{base}/dists/stable/InRelease")).await;
    let packages = get_ok(&format!(
        "{base}/dists/stable/main/binary-amd64/Packages.gz"
    ))
    .await;
    // 3 cold pool files (misses), then the same 3 again (hits) once kept.
    let debs = ["alpha", "beta", "gamma"];
    let mut deb_bytes = 0;
    for name in debs {
        deb_bytes += get_ok(&pool(name)).await.len() as u64;
    }
    // Each file is kept (renamed into the store) a moment after its
    // response ended; wait for all three, at most 10 s.
    let t = std::time::Instant::now();
    while c.app.store.usage().0 < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the 3 pool files were not kept: {} cached files",
            c.app.store.usage().0
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.app.store.usage().0, 3, "cached files");
    for name in debs {
        get_ok(&pool(name)).await;
    }
    // A 404 twice: a miss that upstream answered 404, then the negative cache.
    let missing = format!("{base}/pool/main/n/nothere/nothere_1_all.deb");
    assert_eq!(get(&missing).await.0, 404);
    assert_eq!(get(&missing).await.0, 404);
    // A pool file corrupted upstream: a miss that fails verification; never complete.
    up.corrupt("*delta*", Times::Once);
    let (status, body) = get(&pool("delta")).await;
    assert!(status != 200 || body.is_none(), "corrupt file served whole");
    // Refused: an unknown prefix.
    assert_eq!(get(&format!("http://{}/nosuch/x", c.addr)).await.0, 404);
    // InRelease again: a hit.
    get_ok(&format!("{base}/dists/stable/InRelease")).await;

    let upstream_host = format!("127.0.0.1:{}", up.port());
    let metrics = String::from_utf8(
        get_ok(&format!("http://{}/~/metrics", c.addr))
            .await
            .to_vec(),
    )
    .unwrap();
    println!("{metrics}");
    for (name, want) in [
        ("apt_cacher_requests_total{result=\"hit\"}", 4),
        ("apt_cacher_requests_total{result=\"miss\"}", 7),
        ("apt_cacher_requests_total{result=\"negative\"}", 1),
        ("apt_cacher_requests_total{result=\"refused\"}", 1),
        ("apt_cacher_requests_total{result=\"coalesced\"}", 0),
        ("apt_cacher_requests_total{result=\"revalidated\"}", 0),
        ("apt_cacher_requests_total{result=\"pass\"}", 0),
        ("apt_cacher_requests_total{result=\"error\"}", 0),
        ("apt_cacher_requests_total{result=\"local\"}", 0),
        (
            "apt_cacher_served_from_cache_bytes_total",
            deb_bytes + inrelease.len() as u64,
        ),
        (
            &format!("apt_cacher_upstream_requests_total{{host=\"{upstream_host}\"}}"),
            7,
        ),
        (
            &format!("apt_cacher_upstream_errors_total{{host=\"{upstream_host}\"}}"),
            1,
        ),
        ("apt_cacher_verification_failures_total", 1),
        ("apt_cacher_cache_bytes", deb_bytes),
        ("apt_cacher_cache_files", 3),
        ("apt_cacher_cache_capacity_bytes", 1 << 30),
        ("apt_cacher_evictions_total", 0),
        ("apt_cacher_generation_swaps_total", 1),
        ("apt_cacher_log_dropped_lines_total", 0),
    ] {
        assert_eq!(sample(&metrics, name), want, "{name}");
    }
    // From upstream: everything that was a miss, plus whatever part of the
    // corrupt file went out before verification failed (never all of it).
    let from_upstream = sample(&metrics, "apt_cacher_served_from_upstream_bytes_total");
    let base_bytes = inrelease.len() as u64 + packages.len() as u64 + deb_bytes;
    let delta = repo.package("delta").unwrap().size();
    assert!(
        (base_bytes..base_bytes + delta).contains(&from_upstream),
        "{from_upstream} not in {base_bytes}..{}",
        base_bytes + delta
    );

    // The same figures as JSON (one more request: the scrape above).
    let json: serde_json::Value =
        serde_json::from_slice(&get_ok(&format!("http://{}/~/status.json", c.addr)).await).unwrap();
    assert_eq!(json["requests_total"], 14, "{json:#}");
    assert_eq!(json["counters"]["requests"]["hit"], 4);
    assert_eq!(json["counters"]["requests"]["local"], 1);
    let ratio = json["hit_ratio"].as_f64().unwrap();
    assert!((ratio - 4.0 / 11.0).abs() < 1e-9, "{ratio}");
    assert_eq!(json["gauges"]["cache_files"], 3);
    assert_eq!(json["counters"]["verification_failures"], 1);
    assert_eq!(json["mappings"][0]["prefix"], "debian");
    let gens = json["generations"].as_array().unwrap();
    assert_eq!(gens.len(), 1, "{json:#}");
    assert_eq!(gens[0]["mapping"], "debian");
    assert_eq!(gens[0]["suite"], "dists/stable");
    assert_eq!(gens[0]["indices"], 1);
    assert!(gens[0]["release_date"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    let failures = json["recent_failures"].as_array().unwrap();
    // The verification failure; the upstream's 404 is not one (it is
    // counted as an upstream error, not listed).
    assert_eq!(failures.len(), 1, "{json:#}");
    assert!(
        failures[0]["url"].as_str().unwrap().contains("delta"),
        "{failures:?}"
    );

    // The page in a real browser; OCR must find the hit ratio and the
    // request count (14 before this request).
    let png = artifact("status.png");
    let url = format!("http://{}/~/status", c.addr);
    let shot = png.clone();
    let text = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        testkit::browser::screenshot(&url, &shot, 1280, 1600)?;
        testkit::browser::ocr(&shot)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{e:#}"));
    println!("screenshot: {}\nOCR text:\n{text}", png.display());
    let data = std::fs::read(&png).unwrap();
    assert!(data.len() > 10_000, "screenshot only {} bytes", data.len());
    assert_eq!(testkit::browser::png_size(&data).unwrap(), (1280, 1600));
    assert!(text.contains("36.4%"), "hit ratio not read in:\n{text}");
    assert!(
        text.split_whitespace().any(|w| w == "15"),
        "request count 15 not read in:\n{text}"
    );
    assert!(
        text.contains("Hit ratio") && text.contains("Bytes saved"),
        "{text}"
    );
    c.stop().await;
}

#[tokio::test]
async fn status_allow_refuses_other_networks() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo")).build().unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = cacher(
        &tmp.path().join("cacher"),
        &up.url(),
        "status_allow = [\"10.0.0.0/8\", \"::1/128\"]",
    )
    .await;
    for page in ["metrics", "status", "status.json"] {
        let (status, body) = get(&format!("http://{}/~/{page}", c.addr)).await;
        assert_eq!(status, 403, "{page}");
        let body = String::from_utf8_lossy(&body.unwrap()).into_owned();
        assert!(body.contains("status_allow"), "{body}");
    }
    // The cache itself still serves everyone.
    get_ok(&format!("http://{}/debian/dists/stable/InRelease", c.addr)).await;
    let counters = c.app.metrics.counters();
    assert_eq!(
        counters.requests_of(apt_cacher::metrics::Outcome::Refused),
        3
    );
    assert_eq!(counters.requests_of(apt_cacher::metrics::Outcome::Local), 0);
    c.stop().await;

    // Allowed: the loopback network.
    let c = cacher(
        &tmp.path().join("cacher2"),
        &up.url(),
        "status_allow = [\"127.0.0.0/8\"]",
    )
    .await;
    get_ok(&format!("http://{}/~/metrics", c.addr)).await;
    c.stop().await;
}
