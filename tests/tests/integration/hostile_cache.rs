//! apt-cacher's cache storage against a hostile upstream and a full disk
//! (issue #13, items 6 and 7): an endless body for a pool file no index
//! lists is cut at `max_unverified_size` (the client's response ends in
//! error, nothing is cached, verified files stay); a captive portal's HTML
//! answered for a `.deb` is refused, never cached, and the real file is
//! served once the portal is gone; unverified files live in their own
//! budget and lifetime and never evict a verified one; with the cache on a
//! full file system (a 4 MiB tmpfs mounted by the test) a file larger than
//! the free space still reaches the client complete and verified, after
//! eviction, with the full disk counted, shown, and no temporary leftover.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use testkit::upstream::{Fault, Times};
use testkit::{PackageSpec, Repo, Upstream};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Status and body (`Err`: the body broke off).
async fn get(url: &str) -> (u16, Result<bytes::Bytes, String>) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.map_err(|e| e.to_string()))
}

/// A repository with `hello` (verified) and, unlisted, the pool files `extra`.
fn repo(dir: &Path, packages: &[(&str, usize)], extra: &[(&str, usize)]) -> Repo {
    let mut b = Repo::builder(dir);
    for (name, size) in packages {
        b = b.package(PackageSpec::new(name, "1.0").size(*size));
    }
    let repo = b.build().unwrap();
    for (path, size) in extra {
        let p = repo.root().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            testkit::repo::deterministic_bytes(path.as_bytes(), *size),
        )
        .unwrap();
    }
    repo
}

fn pool_bytes(repo: &Repo, name: &str) -> (String, Vec<u8>) {
    let p = repo.package(name).unwrap().pool_path.clone();
    let data = std::fs::read(repo.root().join(&p)).unwrap();
    (p, data)
}

/// Waits (bounded) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

fn tmp_files(cache_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache_dir.join(".tmp"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn verified_files(c: &apt_cacher::Running) -> usize {
    c.app.store.usage().0 - c.app.store.unverified_usage().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_unverified_body_is_cut_at_the_cap_and_nothing_is_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"), &[("hello", 20_000)], &[]);
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(
        &tmp.path().join("cacher"),
        &up.url(),
        "max_unverified_size = 2",
    )
    .await;
    let base = format!("http://{}/debian", c.addr);
    assert_eq!(get(&format!("{base}/dists/stable/InRelease")).await.0, 200);
    let (hello, good) = pool_bytes(&repo, "hello");
    let (status, body) = get(&format!("{base}/{hello}")).await;
    assert_eq!((status, body.unwrap().as_ref()), (200, good.as_slice()));
    until("hello is cached", || verified_files(&c) == 1).await;

    up.fault("*endless*", Fault::Endless, Times::Always);
    let (status, body) = get(&format!("{base}/pool/main/e/endless/endless_1.0_amd64.deb")).await;
    assert!(
        status != 200 || body.is_err(),
        "an endless body must not look complete: {status}, {:?}",
        body.map(|b| b.len())
    );
    // The download stopped (not merely the client), nothing was cached,
    // the verified file is untouched and no temporary file is left.
    until("the download has ended", || {
        c.app.downloads.in_flight() == 0
    })
    .await;
    assert_eq!(c.app.store.unverified_usage(), (0, 0));
    assert_eq!(verified_files(&c), 1);
    until("no temporary file is left", || {
        tmp_files(&c.app.config.cache_dir).is_empty()
    })
    .await;
    let failures = c.app.metrics.recent_failures();
    assert!(
        failures
            .iter()
            .any(|f| f.what.contains("max_unverified_size")),
        "{failures:?}"
    );
    let before = up.requests_matching("*hello_*.deb");
    let (status, body) = get(&format!("{base}/{hello}")).await;
    assert_eq!((status, body.unwrap().as_ref()), (200, good.as_slice()));
    assert_eq!(up.requests_matching("*hello_*.deb"), before, "still a hit");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captive_portal_page_for_a_deb_is_refused_and_never_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = "pool/main/e/extra/extra_1.0_amd64.deb";
    let repo = repo(
        &tmp.path().join("repo"),
        &[("hello", 20_000)],
        &[(extra, 30_000)],
    );
    let real = std::fs::read(repo.root().join(extra)).unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let base = format!("http://{}/debian", c.addr);
    assert_eq!(get(&format!("{base}/dists/stable/InRelease")).await.0, 200);

    // The portal answers for the one request; then it is gone.
    up.fault("*extra_*.deb", Fault::Html, Times::Once);
    let (status, body) = get(&format!("{base}/{extra}")).await;
    assert_eq!(status, 502, "{body:?}");
    assert_eq!(c.app.store.unverified_usage(), (0, 0));
    let (status, body) = get(&format!("{base}/{extra}")).await;
    assert_eq!((status, body.unwrap().as_ref()), (200, real.as_slice()));
    assert_eq!(up.requests_matching("*extra_*.deb"), 2);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_files_have_their_own_budget_and_lifetime_and_never_evict_verified_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let extras: Vec<String> = (0..5)
        .map(|i| format!("pool/main/u/u{i}/u{i}_1.0_amd64.deb"))
        .collect();
    let sized: Vec<(&str, usize)> = extras.iter().map(|p| (p.as_str(), 400_000)).collect();
    let repo = repo(
        &tmp.path().join("repo"),
        &[("hello", 20_000), ("world", 30_000)],
        &sized,
    );
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(
        &tmp.path().join("cacher"),
        &up.url(),
        "unverified_capacity = 1",
    )
    .await;
    let base = format!("http://{}/debian", c.addr);
    assert_eq!(get(&format!("{base}/dists/stable/InRelease")).await.0, 200);
    for name in ["hello", "world"] {
        let (p, good) = pool_bytes(&repo, name);
        let (status, body) = get(&format!("{base}/{p}")).await;
        assert_eq!((status, body.unwrap().as_ref()), (200, good.as_slice()));
    }
    until("the verified files are cached", || verified_files(&c) == 2).await;
    let evictions = c.app.metrics.counters().evictions;
    for (i, p) in extras.iter().enumerate() {
        let (status, body) = get(&format!("{base}/{p}")).await;
        assert_eq!((status, body.unwrap().len()), (200, 400_000));
        // Each is kept (then evicted among its own kind once over 1 MiB).
        let kept = c.app.config.cache_dir.join(format!("debian/{p}#u"));
        until("the unverified file is cached, the budget kept", || {
            kept.exists()
                && c.app.store.unverified_usage().0 == (i + 1).min(2)
                && c.app.metrics.counters().evictions == evictions + i.saturating_sub(1) as u64
        })
        .await;
        assert!(c.app.store.unverified_usage().1 <= 1 << 20);
    }
    assert_eq!(c.app.metrics.counters().evictions, evictions + 3);
    assert_eq!(verified_files(&c), 2, "no verified file was evicted");
    for name in ["hello", "world"] {
        let before = up.requests_matching(&format!("*{name}_*.deb"));
        let (p, good) = pool_bytes(&repo, name);
        let (status, body) = get(&format!("{base}/{p}")).await;
        assert_eq!((status, body.unwrap().as_ref()), (200, good.as_slice()));
        assert_eq!(up.requests_matching(&format!("*{name}_*.deb")), before);
    }

    // Lifetime: the newest unverified file, aged two days (the default
    // `unverified_ttl` is one), is fetched again, not served from the cache.
    let last = extras.last().unwrap();
    let cached = c.app.config.cache_dir.join(format!("debian/{last}#u"));
    let f = std::fs::File::options().write(true).open(&cached).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(2 * 24 * 3600))
        .unwrap();
    drop(f);
    let pattern = format!("*{last}");
    assert_eq!(up.requests_matching(&pattern), 1);
    let (status, _) = get(&format!("{base}/{last}")).await;
    assert_eq!(status, 200);
    assert_eq!(up.requests_matching(&pattern), 2, "expired: fetched again");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_full_disk_the_client_still_gets_the_complete_file_and_the_disk_full_is_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c", "d", "e"];
    let mut packages: Vec<(&str, usize)> = names.iter().map(|n| (*n, 700_000)).collect();
    packages.push(("big", 2_500_000));
    let repo = repo(&tmp.path().join("repo"), &packages, &[]);
    let cache_dir = tmp.path().join("cacher/cache");
    let Some(_tmpfs) = testkit::tmpfs::Tmpfs::mount(&cache_dir, "4m") else {
        return;
    };
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let base = format!("http://{}/debian", c.addr);
    assert_eq!(get(&format!("{base}/dists/stable/InRelease")).await.0, 200);
    // Fill the file system with cached files: 3.5 of its 4 MiB.
    for (i, n) in names.iter().enumerate() {
        let (p, good) = pool_bytes(&repo, n);
        let (status, body) = get(&format!("{base}/{p}")).await;
        assert_eq!((status, body.unwrap().as_ref()), (200, good.as_slice()));
        until("cached", || verified_files(&c) == i + 1).await;
    }
    assert_eq!(c.app.metrics.counters().disk_full, 0);

    // 2.5 MB do not fit in what is left: evicted to make room, completed.
    let (p, good) = pool_bytes(&repo, "big");
    let (status, body) = get(&format!("{base}/{p}")).await;
    assert_eq!(status, 200);
    let body = body.expect("the response must not break off on a full disk");
    assert!(
        body.as_ref() == good.as_slice(),
        "the complete verified file"
    );

    let counters = c.app.metrics.counters();
    assert!(counters.disk_full >= 1, "{counters:?}");
    assert!(counters.evictions >= 1, "{counters:?}");
    let last = counters.last_disk_full.clone().unwrap();
    assert!(last.url.contains(".tmp"), "{last:?}");
    assert!(last.what.contains("big_1.0"), "{last:?}");
    // Counted on /~/metrics, shown on /~/status.
    let (_, metrics) = get(&format!("http://{}/~/metrics", c.addr)).await;
    let metrics = String::from_utf8(metrics.unwrap().to_vec()).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("apt_cacher_disk_full_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    let (_, page) = get(&format!("http://{}/~/status", c.addr)).await;
    let page = String::from_utf8(page.unwrap().to_vec()).unwrap();
    assert!(page.contains("Disk full: "), "{page}");
    assert!(!page.contains("Disk full: never"), "{page}");
    // No temporary leftover once the download is committed.
    until("the download has ended", || {
        c.app.downloads.in_flight() == 0
    })
    .await;
    until("no temporary file is left", || {
        tmp_files(&cache_dir).is_empty()
    })
    .await;
    c.stop().await;
}
