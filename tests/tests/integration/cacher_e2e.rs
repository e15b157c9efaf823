//! End-to-end tests of apt-cacher with the real apt-get and generated,
//! signed repositories behind an in-process (fault-injecting) upstream:
//! prefix and proxy modes, .xz and .gz, with and without by-hash, flat
//! repositories, corrupted upstream bytes, coalescing, restart, negative
//! caching.

use std::path::Path;
use std::time::Duration;
use testkit::cacher::start as cacher;
use testkit::{AptEnv, Compression, PackageSpec, Repo, Times, Upstream};

fn repo(dir: &Path, by_hash: bool, compressions: &[Compression]) -> Repo {
    Repo::builder(dir)
        .by_hash(by_hash)
        .compressions(compressions)
        .package(PackageSpec::new("hello", "2.10-3").size(50_000))
        .package(PackageSpec::new("libfoo1", "1:1.2-1").size(3000))
        .package(PackageSpec::new("data-all", "0.1").arch("all"))
        .build()
        .unwrap()
}

fn check_debs(apt: &AptEnv, repo: &Repo, names: &[&str]) {
    for name in names {
        let p = repo.package(name).unwrap();
        let local = apt.archives_dir().join(p.deb_file_name());
        let data = std::fs::read(&local).unwrap_or_else(|e| panic!("{}: {e}", local.display()));
        assert_eq!(testkit::Checksums::of(&data).sha256, p.sha256(), "{name}");
    }
}

const PKGS: [&str; 3] = ["hello", "libfoo1", "data-all"];

/// Prefix mode then proxy mode on the same cacher, for one repository flavour;
/// the second client is served entirely from the cache.
async fn both_modes(by_hash: bool, compressions: &[Compression], prefer: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"), by_hash, compressions);
    let up = Upstream::serve(repo.root()).unwrap();
    let c = cacher(&tmp.path().join("cacher"), &up.url(), "").await;

    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.prefer_compression(prefer).unwrap();
    let out = apt.update_async().await.unwrap();
    out.ok_clean().unwrap();
    apt.install_download_only_async(&PKGS)
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    check_debs(&apt, &repo, &PKGS);
    let debs = up.requests_matching("*.deb");
    assert_eq!(debs, 3, "{:?}", up.request_log());
    if by_hash {
        assert!(
            up.requests_matching("*/by-hash/*") >= 1,
            "{:?}",
            up.request_log()
        );
    }

    // Proxy mode: same cache entries, no new upstream .deb or index request.
    let indices_before = up.requests_matching("*Packages*");
    let mut apt2 = AptEnv::new().unwrap();
    apt2.add_source(&up.url(), "stable", &["main"]).unwrap();
    apt2.proxy(&format!("http://{}/", c.addr)).unwrap();
    apt2.prefer_compression(prefer).unwrap();
    apt2.update_async().await.unwrap().ok_clean().unwrap();
    apt2.install_download_only_async(&PKGS)
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    check_debs(&apt2, &repo, &PKGS);
    assert_eq!(up.requests_matching("*.deb"), 3, "{:?}", up.request_log());
    assert_eq!(
        up.requests_matching("*Packages*"),
        indices_before,
        "{:?}",
        up.request_log()
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_through_cacher_xz_without_by_hash() {
    both_modes(false, &[Compression::Xz], "xz").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_through_cacher_gz_with_by_hash() {
    both_modes(true, &[Compression::Gz], "gz").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_through_cacher_flat_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .suites(&["./"])
        .package(PackageSpec::new("rootpkg", "1.0").suite("./"))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = cacher(&tmp.path().join("cacher"), &up.url(), "").await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "./", &[])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    apt.install_download_only_async(&["rootpkg"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    check_debs(&apt, &repo, &["rootpkg"]);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_upstream_bytes_are_never_cached_nor_served_as_good() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"), false, &[Compression::Xz]);
    let up = Upstream::serve(repo.root()).unwrap();
    let c = cacher(&tmp.path().join("cacher"), &up.url(), "cache_period = 0").await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();

    up.corrupt("*.deb", Times::Always);
    let out = apt.install_download_only_async(&["hello"]).await.unwrap();
    assert!(!out.success(), "corrupted download accepted: {}", out.all());
    let hello = repo.package("hello").unwrap();
    assert!(!apt.archives_dir().join(hello.deb_file_name()).exists());
    // Nothing of it in the cache.
    let cached: Vec<_> = walk(&tmp.path().join("cacher/cache"))
        .into_iter()
        .filter(|p| !p.contains("/.tmp/"))
        .collect();
    assert!(cached.is_empty(), "{cached:?}");

    // Upstream healthy again: the right bytes, fetched again.
    up.clear_faults();
    let before = up.requests_matching("*.deb");
    apt.install_download_only_async(&["hello"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    check_debs(&apt, &repo, &["hello"]);
    assert_eq!(up.requests_matching("*.deb"), before + 1);
    c.stop().await;
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalescing_50_clients_one_cold_file_one_upstream_request() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .package(PackageSpec::new("big", "1.0").size(4 << 20))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    up.throttle("*.deb", 20_000_000, Times::Always);
    let c = cacher(&tmp.path().join("cacher"), &up.url(), "").await;
    let big = repo.package("big").unwrap();
    let url = format!("http://{}/debian/{}", c.addr, big.pool_path);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { client.get(&url).send().await?.bytes().await })
        })
        .collect();
    for t in tasks {
        let body = t.await.unwrap().unwrap();
        assert_eq!(testkit::Checksums::of(&body).sha256, big.sha256());
    }
    assert_eq!(
        up.requests(&format!("/{}", big.pool_path)),
        1,
        "{:?}",
        up.request_log()
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_cache_and_upstream_outage_is_survived() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"), false, &[Compression::Gz]);
    let up = Upstream::serve(repo.root()).unwrap();
    let dir = tmp.path().join("cacher");
    let c = cacher(&dir, &up.url(), "").await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    apt.install_download_only_async(&PKGS)
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    c.stop().await;

    // Restart with the upstream down: everything comes from the cache.
    let url = up.url();
    drop(up);
    let c = cacher(&dir, &url, "check_interval = 0").await;
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
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_caching_answers_from_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"), false, &[Compression::Gz]);
    let up = Upstream::serve(repo.root()).unwrap();
    let c = cacher(&tmp.path().join("cacher"), &up.url(), "cache_period = 3").await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}/debian/pool/main/n/nope/nope_1_amd64.deb", c.addr);
    for _ in 0..5 {
        assert_eq!(client.get(&url).send().await.unwrap().status(), 404);
    }
    assert_eq!(up.requests("/pool/main/n/nope/nope_1_amd64.deb"), 1);
    up.fail_status("*/Packages.gz", 503, Times::Always);
    let url = format!(
        "http://{}/debian/dists/stable/main/binary-amd64/Packages.gz",
        c.addr
    );
    // Not listed by a known Release yet (no InRelease fetched): passed through.
    for _ in 0..3 {
        assert_eq!(client.get(&url).send().await.unwrap().status(), 503);
    }
    assert_eq!(
        up.requests("/dists/stable/main/binary-amd64/Packages.gz"),
        1
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    up.clear_faults();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_conns_bounds_concurrent_upstream_requests_per_host() {
    let tmp = tempfile::tempdir().unwrap();
    let mut builder = Repo::builder(tmp.path().join("repo"));
    for i in 0..8 {
        builder = builder.package(PackageSpec::new(&format!("p{i}"), "1.0").size(200_000));
    }
    let repo = builder.build().unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    up.throttle("*.deb", 1_000_000, Times::Always);
    let c = cacher(&tmp.path().join("cacher"), &up.url(), "max_conns = 2").await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let tasks: Vec<_> = repo
        .packages()
        .iter()
        .map(|p| {
            let url = format!("http://{}/debian/{}", c.addr, p.pool_path);
            let (client, sha) = (client.clone(), p.sha256().to_string());
            tokio::spawn(async move {
                let body = client
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(testkit::Checksums::of(&body).sha256, sha);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(up.requests_matching("*.deb"), 8);
    assert!(
        up.max_in_flight() <= 2,
        "max in flight {}",
        up.max_in_flight()
    );
    c.stop().await;
}
