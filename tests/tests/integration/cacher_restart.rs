//! Issue 12, "instant restart that forgets nothing": after a restart, every
//! cached pool file the current generation lists is a verified hit from
//! the first request, with 0 upstream requests, even with the upstream
//! gone. The pool maps are read back from the sidecars stored with the
//! indices (generation/pool_store.rs), not parsed again; a pool request
//! that arrives before the start-up load is done waits for it
//! (generation/startup.rs); a damaged sidecar falls back to parsing the
//! index and is written again.

use apt_cacher::generation::Generations;
use apt_cacher::metrics::Outcome;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::cacher::start as cacher;
use testkit::{AptEnv, PackageSpec, Repo, Upstream};

const PKGS: [&str; 3] = ["hello", "libfoo1", "data-all"];
/// A listed pool file whose name says nothing of the index that lists it
/// (not `.deb`): only the loaded generations know it.
const ODD: &str = "pool/main/o/odd/odd_1.0_amd64.bin";

fn repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .package(PackageSpec::new("hello", "2.10-3").size(50_000))
        .package(PackageSpec::new("libfoo1", "1:1.2-1").size(3000))
        .package(PackageSpec::new("data-all", "0.1").arch("all"))
        .package(PackageSpec::new("odd", "1.0").size(2000).filename(ODD))
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

/// The pool-map sidecars under `meta` (`gen-*/.pool/**.map`).
fn sidecars(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        // Not through the `current` symlink: each file once.
        if e.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        if p.is_dir() {
            out.extend(sidecars(&p));
        } else if p.extension().is_some_and(|x| x == "map")
            && p.components().any(|c| c.as_os_str() == ".pool")
        {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_upstream_gone_serves_verified_hits_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
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
    check_debs(&apt, &repo, &PKGS);
    let listen = c.addr;
    c.stop().await;
    // Each index that names pool files has its pool map beside it.
    let maps = sidecars(&dir.join("meta"));
    assert!(
        !maps.is_empty(),
        "no pool map stored under {}",
        dir.display()
    );

    // The upstream is gone (its port closed); the client keeps its lists
    // (no update) but not its downloaded archives.
    let url = up.url();
    drop(up);
    apt.clean().unwrap().ok().unwrap();
    let text = testkit::cacher::config_text(&dir, &listen.to_string(), &url, "");
    let config = apt_cacher::Config::parse("test.toml", &text).unwrap();
    let started = Instant::now();
    let c = apt_cacher::start(config, apt_cacher::CancellationToken::new())
        .await
        .unwrap();
    let listening = started.elapsed();
    // At once: the client's first request arrives well within 100 ms.
    apt.install_download_only_async(&PKGS)
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    let served = started.elapsed();
    check_debs(&apt, &repo, &PKGS);
    let counters = c.app.metrics.counters();
    assert!(
        counters.requests_of(Outcome::Hit) >= PKGS.len() as u64,
        "{counters:?}"
    );
    for o in [
        Outcome::Miss,
        Outcome::Pass,
        Outcome::Error,
        Outcome::Coalesced,
    ] {
        assert_eq!(counters.requests_of(o), 0, "{o:?}: {counters:?}");
    }
    // Nothing was asked upstream on behalf of a client: the only upstream
    // traffic is the background re-check of the suite's Release
    // (check_interval, at most its three files), which fails.
    assert_eq!(counters.bytes_from_upstream, 0, "{counters:?}");
    let upstream: u64 = counters.upstream.values().map(|h| h.requests).sum();
    assert!(upstream <= 3, "{counters:?}");
    let failures = c.app.metrics.recent_failures();
    assert!(
        failures.iter().all(|f| !f.url.contains("/pool/")),
        "{failures:?}"
    );
    assert_eq!(counters.unverified_downloads, 0, "{counters:?}");
    // Read back from the sidecars, not parsed again.
    let stats = c.app.gens.load_stats();
    assert!(stats.pool_maps_read >= 1, "{stats:?}");
    assert_eq!(stats.indices_parsed, 0, "{stats:?}");
    eprintln!(
        "restart: listener up after {} ms, {} debs served as verified hits {} ms after the start",
        listening.as_millis(),
        PKGS.len(),
        served.as_millis()
    );
    c.stop().await;
}

/// A pool request before the start-up load waits for it, then finds the
/// file listed; a damaged sidecar is parsed around and written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_lookup_before_the_load_waits_and_bad_sidecars_are_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let odd = repo.package("odd").unwrap().clone();
    let up = Upstream::serve(repo.root()).unwrap();
    let dir = tmp.path().join("cacher");
    let c = cacher(&dir, &up.url(), "").await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    c.stop().await;
    let url = up.url();
    drop(up);

    let maps = sidecars(&dir.join("meta"));
    assert!(!maps.is_empty());
    // Damage every sidecar: the start-up load parses the indices instead.
    for m in &maps {
        let mut data = std::fs::read(m).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(m, &data).unwrap();
    }
    let damaged: Vec<Vec<u8>> = maps.iter().map(|m| std::fs::read(m).unwrap()).collect();

    let text = testkit::cacher::config_text(&dir, "127.0.0.1:0", &url, "");
    let config = apt_cacher::Config::parse("test.toml", &text).unwrap();
    let metrics = Arc::new(apt_cacher::metrics::Metrics::new());
    let upstream = Arc::new(apt_cacher::upstream::Upstream::new(&config, metrics.clone()).unwrap());
    let downloads = Arc::new(apt_cacher::cache::InFlight::new(upstream, metrics));
    let router =
        apt_cacher::mapping::Router::new(config.mappings.clone(), config.connect_allow.clone());
    let gens = Arc::new(Generations::new(&config, router, downloads).unwrap());

    // The request comes first: it waits for the load.
    let lookup = {
        let gens = gens.clone();
        tokio::spawn(async move { gens.lookup(0, ODD).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !lookup.is_finished(),
        "answered before the cached generations were loaded"
    );
    gens.load_all().await;
    let found = tokio::time::timeout(Duration::from_secs(10), lookup)
        .await
        .unwrap()
        .unwrap();
    match found {
        apt_cacher::generation::pool_lookup::Lookup::Listed(cs) => {
            assert_eq!(cs.size, odd.size());
        }
        other => panic!("{ODD}: {other:?}"),
    }
    let stats = gens.load_stats();
    assert_eq!(stats.pool_maps_read, 0, "{stats:?}");
    assert!(stats.indices_parsed >= 1, "{stats:?}");
    // Written again: the next start reads them.
    for (m, old) in maps.iter().zip(&damaged) {
        assert_ne!(
            &std::fs::read(m).unwrap(),
            old,
            "{} not rewritten",
            m.display()
        );
    }
}
