//! Consistent metadata generations through apt-cacher: an upstream that
//! changes its repository between a client's InRelease and Packages
//! requests never makes the real apt report "Hash Sum mismatch"; a client
//! that was served the previous Release keeps getting the matching indices
//! during the grace period; and on a cold cache, where the previous index
//! may exist nowhere, apt fails that one fetch but never mismatches.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use testkit::cacher::start as cacher;
use testkit::{AptEnv, Compression, PackageSpec, Repo, Upstream};

/// A repository (hello 1.0 and 20 others, Packages.xz) served by an
/// upstream, a cacher in front of it that re-checks upstream on every
/// update (`check_interval = 0`), and an apt pointed at the cacher.
struct Setup {
    _tmp: tempfile::TempDir,
    repo: Arc<Mutex<Repo>>,
    up: Upstream,
    c: apt_cacher::Running,
    apt: AptEnv,
}

async fn setup(by_hash: bool) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .by_hash(by_hash)
        .compressions(&[Compression::Xz])
        .package(PackageSpec::new("hello", "1.0").size(20_000))
        .generated_packages(20, 1000)
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let repo = Arc::new(Mutex::new(repo));
    let c = cacher(
        &tmp.path().join("cacher"),
        &up.url(),
        "check_interval = 0\ncache_period = 0",
    )
    .await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    Setup {
        _tmp: tmp,
        repo,
        up,
        c,
        apt,
    }
}

/// `apt-get install --download-only hello` must succeed and fetch `version`;
/// every archive apt has downloaded so far.
async fn install_hello(apt: &AptEnv, version: &str) -> Vec<std::path::PathBuf> {
    apt.install_download_only_async(&["hello"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    let debs = apt.downloaded_archives().unwrap();
    let name = format!("hello_{version}_");
    assert!(
        debs.iter().any(|p| p.to_string_lossy().contains(&name)),
        "no {name}: {debs:?}"
    );
    debs
}

async fn rounds(by_hash: bool) {
    let Setup {
        _tmp,
        repo,
        up,
        c,
        apt,
    } = setup(by_hash).await;
    // The cacher has served this suite before (warm).
    apt.update_async().await.unwrap().ok_clean().unwrap();

    let mut mismatches = 0;
    let mut failures = Vec::new();
    for round in 2..22 {
        let r = repo.clone();
        up.on_request("*/InRelease", 1, move || {
            let mut r = r.lock().unwrap();
            r.replace(PackageSpec::new("hello", &format!("{round}.0")).size(20_000));
            r.publish().unwrap();
        });
        let out = apt.update_async().await.unwrap();
        if out.hash_sum_mismatch() {
            mismatches += 1;
        }
        if !out.clean() {
            failures.push(format!("round {round}:\n{}", out.all()));
        }
        // Whatever apt now believes, the package it picks downloads and verifies.
        let out = apt.install_download_only_async(&["hello"]).await.unwrap();
        if !out.clean() {
            failures.push(format!("round {round} install:\n{}", out.all()));
        }
    }
    assert_eq!(mismatches, 0, "{failures:#?}");
    assert!(failures.is_empty(), "{failures:#?}");
    // The cacher did move on with the upstream (each hook ran, between two
    // of the cacher's upstream requests).
    apt.update_async().await.unwrap().ok_clean().unwrap();
    assert!(up.hooks_done());
    let debs = install_hello(&apt, "21.0").await;
    // apt followed the upstream: a new version in at least every other round
    // (when the upstream moves twice while the cacher reads it, it skips one).
    assert!(debs.len() >= 10, "{debs:?}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_changing_mid_update_20_rounds_without_by_hash() {
    rounds(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_changing_mid_update_20_rounds_with_by_hash() {
    rounds(true).await;
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> bytes::Bytes {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.bytes().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_served_the_old_release_gets_the_old_indices_during_grace() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path().join("repo"))
        .compressions(&[Compression::Xz])
        .by_hash(true)
        .package(PackageSpec::new("hello", "1.0"))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = cacher(
        &tmp.path().join("cacher"),
        &up.url(),
        "check_interval = 0\ncache_period = 0",
    )
    .await;
    let base = format!("http://{}/debian/dists/stable", c.addr);
    let packages = "main/binary-amd64/Packages.xz";
    let old = repo
        .index_files("stable")
        .iter()
        .find(|f| f.path == packages)
        .unwrap()
        .checksums
        .clone();

    let a = client_from("127.0.0.2");
    get(&a, &format!("{base}/InRelease")).await;

    // Upstream moves on; another client's update makes the cacher swap generations.
    repo.replace(PackageSpec::new("hello", "2.0"));
    repo.publish().unwrap();
    let new = repo
        .index_files("stable")
        .iter()
        .find(|f| f.path == packages)
        .unwrap()
        .checksums
        .clone();
    assert_ne!(old.sha256, new.sha256);
    let b = client_from("127.0.0.3");
    let rel_b = get(&b, &format!("{base}/InRelease")).await;
    assert!(String::from_utf8_lossy(&rel_b).contains(&new.sha256.clone()));

    // A, served the old Release a moment ago, gets the old Packages; B and a newcomer get the new one.
    let pa = get(&a, &format!("{base}/{packages}")).await;
    assert_eq!(
        testkit::Checksums::of(&pa).sha256,
        old.sha256,
        "client A got the wrong generation"
    );
    let pb = get(&b, &format!("{base}/{packages}")).await;
    assert_eq!(testkit::Checksums::of(&pb).sha256, new.sha256);
    let pc = get(&client_from("127.0.0.4"), &format!("{base}/{packages}")).await;
    assert_eq!(testkit::Checksums::of(&pc).sha256, new.sha256);
    // The old index stays reachable by its by-hash path for anyone.
    let by_hash = format!("{base}/main/binary-amd64/by-hash/SHA256/{}", old.sha256);
    let ph = get(&client_from("127.0.0.5"), &by_hash).await;
    assert_eq!(testkit::Checksums::of(&ph).sha256, old.sha256);
    c.stop().await;
}

/// A cold cache (the suite never served before), and the upstream changes
/// right after the cacher's first InRelease request. With by-hash the old
/// index is still upstream under its hash, and the update is clean. Without
/// by-hash the old index exists nowhere any more: apt fails to fetch it
/// (the cacher answers 502 rather than hand out bytes that do not match the
/// Release it served), never with "Hash Sum mismatch", and the next update
/// is clean and brings the new version.
async fn cold_rounds(by_hash: bool) {
    for round in 0..3 {
        let Setup {
            _tmp,
            repo,
            up,
            c,
            apt,
        } = setup(by_hash).await;
        let r = repo.clone();
        up.on_request("*/InRelease", 1, move || {
            let mut r = r.lock().unwrap();
            r.replace(PackageSpec::new("hello", "2.0").size(20_000));
            r.publish().unwrap();
        });
        let out = apt.update_async().await.unwrap();
        assert!(
            !out.hash_sum_mismatch(),
            "round {round}, by-hash {by_hash}: {}",
            out.all()
        );
        assert!(up.hooks_done());
        if by_hash {
            assert!(out.clean(), "round {round}: {}", out.all());
        }
        apt.update_async().await.unwrap().ok_clean().unwrap();
        install_hello(&apt, "2.0").await;
        c.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_cache_upstream_changing_mid_update_without_by_hash() {
    cold_rounds(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_cache_upstream_changing_mid_update_with_by_hash() {
    cold_rounds(true).await;
}
