//! Upstream failover (issue 12): a mapping with several upstream URLs
//! (`url = [A, B]`) over two fake upstreams serving the same signed
//! repository. The first answers 503 for everything, or is a closed port:
//! real `apt-get update` and `install` through the cacher succeed, served
//! from the second and verified. The failure is remembered for the failing
//! upstream only: within `cache_period` its request count stays while the
//! other serves; after it, the first upstream (healthy again) is used
//! again. A corrupted file from the second (the first failing) is refused
//! by verification and not cached.

use std::path::Path;
use std::time::Duration;
use testkit::{AptEnv, PackageSpec, Repo, Times, Upstream};

const PKGS: [&str; 2] = ["hello", "libfoo1"];

fn repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .package(PackageSpec::new("hello", "2.10-3").size(50_000))
        .package(PackageSpec::new("libfoo1", "1:1.2-1").size(3000))
        .build()
        .unwrap()
}

/// A cacher whose one mapping `debian` lists `urls` in order.
async fn cacher(dir: &Path, urls: &[String], extra: &str) -> apt_cacher::Running {
    let list = urls
        .iter()
        .map(|u| format!("{u:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    testkit::cacher::start_with_mapping(dir, &format!("{{ url = [{list}] }}"), extra).await
}

fn check_debs(apt: &AptEnv, repo: &Repo, names: &[&str]) {
    for name in names {
        let p = repo.package(name).unwrap();
        let local = apt.archives_dir().join(p.deb_file_name());
        let data = std::fs::read(&local).unwrap_or_else(|e| panic!("{}: {e}", local.display()));
        assert_eq!(testkit::Checksums::of(&data).sha256, p.sha256(), "{name}");
    }
}

fn failovers(c: &apt_cacher::Running) -> u64 {
    c.app
        .metrics
        .counters()
        .failovers
        .get("debian")
        .copied()
        .unwrap_or(0)
}

/// A 127.0.0.1 port nothing listens on (connect refused).
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// `apt-get update` and `install` through the cacher with `first` failing,
/// `second` serving: both succeed, every .deb verified, from `second`.
async fn apt_through_failover(first: String, fail: Option<&Upstream>) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let second = Upstream::serve(repo.root()).unwrap();
    let c = cacher(
        &tmp.path().join("cacher"),
        &[first, second.url()],
        "cache_period = 60",
    )
    .await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    apt.install_download_only_async(&PKGS)
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    check_debs(&apt, &repo, &PKGS);
    assert_eq!(
        second.requests_matching("*.deb"),
        2,
        "{:?}",
        second.request_log()
    );
    assert!(second.requests_matching("*InRelease") >= 1);
    if let Some(first) = fail {
        // Asked once, remembered failing: every later request went
        // straight to the second upstream.
        assert_eq!(first.requests_total(), 1, "{:?}", first.request_log());
    }
    assert!(failovers(&c) >= 1, "{:?}", c.app.metrics.counters());
    let status = c.app.downloads.upstream().upstream_states("debian");
    assert_eq!(status.len(), 2);
    assert!(status[0].failing.is_some(), "{status:?}");
    assert_eq!(status[1].failing, None);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_through_a_first_upstream_answering_503() {
    let tmp = tempfile::tempdir().unwrap();
    let dead = Upstream::serve(tmp.path()).unwrap();
    dead.fail_status("*", 503, Times::Always);
    apt_through_failover(dead.url(), Some(&dead)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_through_a_first_upstream_refusing_connections() {
    apt_through_failover(closed_port_url(), None).await;
}

/// GET `url`: the status and the whole body (an error when the cacher
/// aborted it).
async fn get(url: &str) -> (u16, reqwest::Result<bytes::Bytes>) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upstream_is_remembered_for_cache_period_then_used_again() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let a = Upstream::serve(repo.root()).unwrap();
    let b = Upstream::serve(repo.root()).unwrap();
    a.fail_status("*", 503, Times::Always);
    let c = cacher(
        &tmp.path().join("cacher"),
        &[a.url(), b.url()],
        "cache_period = 2\ncheck_interval = 600",
    )
    .await;
    let base = format!("http://{}/debian", c.addr);
    let (status, body) = get(&format!("{base}/dists/stable/InRelease")).await;
    assert_eq!(status, 200);
    assert!(body.is_ok());
    assert_eq!(a.requests_total(), 1, "{:?}", a.request_log());
    assert_eq!(b.requests("/dists/stable/InRelease"), 1);

    // Within cache_period: A is not asked again (its index and pool
    // requests go straight to B).
    let hello = repo.package("hello").unwrap();
    let (status, body) = get(&format!("{base}/{}", hello.pool_path)).await;
    assert_eq!(status, 200);
    assert_eq!(
        testkit::Checksums::of(&body.unwrap()).sha256,
        hello.sha256()
    );
    assert_eq!(a.requests_total(), 1, "{:?}", a.request_log());
    assert_eq!(b.requests_matching("*.deb"), 1);
    assert!(
        b.requests_matching("*Packages*") >= 1,
        "{:?}",
        b.request_log()
    );
    let failovers_then = failovers(&c);
    assert_eq!(failovers_then, 1);

    // A healthy again; after cache_period it is asked first again.
    a.clear_faults();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let libfoo = repo.package("libfoo1").unwrap();
    let (status, body) = get(&format!("{base}/{}", libfoo.pool_path)).await;
    assert_eq!(status, 200);
    assert_eq!(
        testkit::Checksums::of(&body.unwrap()).sha256,
        libfoo.sha256()
    );
    assert_eq!(a.requests_matching("*.deb"), 1, "{:?}", a.request_log());
    assert_eq!(b.requests_matching("*.deb"), 1, "{:?}", b.request_log());
    assert_eq!(failovers(&c), failovers_then);
    let status = c.app.downloads.upstream().upstream_states("debian");
    assert!(status.iter().all(|s| s.failing.is_none()), "{status:?}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_file_from_the_fallback_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let a = Upstream::serve(repo.root()).unwrap();
    let b = Upstream::serve(repo.root()).unwrap();
    a.fail_status("*", 503, Times::Always);
    b.corrupt("*.deb", Times::Always);
    let c = cacher(
        &tmp.path().join("cacher"),
        &[a.url(), b.url()],
        "cache_period = 60",
    )
    .await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    let out = apt.install_download_only_async(&["hello"]).await.unwrap();
    assert!(!out.success(), "{}", out.all());
    assert!(
        !apt.archives_dir()
            .join(repo.package("hello").unwrap().deb_file_name())
            .exists(),
        "a corrupted .deb reached apt's archives"
    );
    // Not cached: asked for again, it is fetched again (and refused again).
    let before = b.requests_matching("*.deb");
    assert!(before >= 1);
    let hello = repo.package("hello").unwrap();
    let (status, body) = get(&format!("http://{}/debian/{}", c.addr, hello.pool_path)).await;
    assert!(
        status == 502 || body.is_err(),
        "status {status}, body {:?}",
        body.map(|b| b.len())
    );
    assert_eq!(b.requests_matching("*.deb"), before + 1);
    assert!(c.app.metrics.counters().verification_failures >= 1);
    assert_eq!(a.requests_matching("*.deb"), 0, "{:?}", a.request_log());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_is_part_of_the_mapping_for_proxies_and_redirects() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let a = Upstream::serve(repo.root()).unwrap();
    let b = Upstream::serve(repo.root()).unwrap();
    // The first upstream sends its Release to the second (a fallback's
    // host is an allowed redirect target, like an alias's).
    a.redirect(
        "/dists/stable/InRelease",
        &format!("{}/dists/stable/InRelease", b.url()),
        Times::Always,
    );
    let c = cacher(&tmp.path().join("cacher"), &[a.url(), b.url()], "").await;
    let (status, body) = get(&format!("http://{}/debian/dists/stable/InRelease", c.addr)).await;
    assert_eq!(status, 200, "{:?}", body.map(|b| b.len()));
    assert_eq!(b.requests("/dists/stable/InRelease"), 1);
    assert_eq!(failovers(&c), 0, "a redirect is no failover");

    // A proxy request naming the fallback's URL is the mapping's: served
    // from the same cache, asked of the first upstream (healthy).
    let hello = repo.package("hello").unwrap();
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://{}", c.addr)).unwrap())
        .build()
        .unwrap();
    let resp = client
        .get(format!("{}/{}", b.url(), hello.pool_path))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.bytes().await.unwrap();
    assert_eq!(testkit::Checksums::of(&body).sha256, hello.sha256());
    assert_eq!(a.requests_matching("*.deb"), 1, "{:?}", a.request_log());
    assert_eq!(b.requests_matching("*.deb"), 0, "{:?}", b.request_log());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_timeout_fails_over_once_then_the_upstream_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let hole = testkit::Blackhole::new().unwrap();
    let b = Upstream::serve(repo.root()).unwrap();
    let c = cacher(
        &tmp.path().join("cacher"),
        &[hole.url(), b.url()],
        "cache_period = 60\n[timeouts]\nconnect = 1",
    )
    .await;
    let base = format!("http://{}/debian", c.addr);
    let (status, _) = get(&format!("{base}/dists/stable/InRelease")).await;
    assert_eq!(status, 200);
    let hello = repo.package("hello").unwrap();
    let (status, body) = get(&format!("{base}/{}", hello.pool_path)).await;
    assert_eq!(status, 200);
    assert_eq!(
        testkit::Checksums::of(&body.unwrap()).sha256,
        hello.sha256()
    );
    // One request to the black hole (the InRelease), none after it.
    let counters = c.app.metrics.counters();
    let hole_key = format!("127.0.0.1:{}", hole.addr().port());
    assert_eq!(counters.upstream[&hole_key].requests, 1, "{counters:?}");
    assert_eq!(counters.upstream[&hole_key].errors, 1, "{counters:?}");
    assert_eq!(failovers(&c), 1);
    let status = c.app.downloads.upstream().upstream_states("debian");
    assert!(
        status[0]
            .failing
            .as_deref()
            .is_some_and(|w| w.contains("connect timeout")),
        "{status:?}"
    );
    c.stop().await;
}
