//! A cache that cleans itself (issue 12): three generations with package
//! upgrades go through apt-cacher to the real apt; once `retention` has
//! passed, `cache_dir` holds exactly the pool files the kept generation
//! lists (byte for byte the upstream's), `meta_dir` only that generation,
//! and `status.json` reports as reclaimed exactly the bytes of the files
//! removed. Then no client asks any more: the suite is dropped from
//! `meta_dir` and every file it referenced goes too.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::cacher::start as cacher;
use testkit::{AptEnv, Compression, PackageSpec, Repo, Upstream};

const PKGS: [&str; 3] = ["hello", "libfoo1", "data-all"];

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn status(addr: std::net::SocketAddr) -> serde_json::Value {
    let body = client()
        .get(format!("http://{addr}/~/status.json"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// The files under `dir` (relative paths, `.tmp` left out) and their bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p != root.join(".tmp") {
                    walk(root, &p, out);
                }
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// What the cache should hold for `repo`'s current packages: storage
/// path without its content tag → upstream's bytes.
fn expected(repo: &Repo) -> BTreeMap<String, Vec<u8>> {
    PKGS.iter()
        .map(|n| {
            let p = repo.package(n).unwrap();
            (
                format!("debian/{}", p.pool_path),
                std::fs::read(repo.root().join(&p.pool_path)).unwrap(),
            )
        })
        .collect()
}

/// `cache_dir`'s files with the `#<tag>` of their names cut off.
fn cached(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .map(|(k, v)| (k.rsplit_once('#').map_or(k.clone(), |(p, _)| p.into()), v))
        .collect()
}

/// Polls until `done` holds (or 20 s pass), recording the largest
/// reclaimable figure seen meanwhile.
async fn wait_for(
    addr: std::net::SocketAddr,
    max_reclaimable: &mut u64,
    mut done: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let s = status(addr).await;
        let r = s["gauges"]["retention_reclaimable_bytes"]
            .as_u64()
            .unwrap_or(0);
        *max_reclaimable = (*max_reclaimable).max(r);
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A client asking for the suite's InRelease every 200 ms until the flag
/// is cleared.
fn keep_asking(addr: std::net::SocketAddr) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let asking = Arc::new(AtomicBool::new(true));
    let task = {
        let (asking, url) = (
            asking.clone(),
            format!("http://{addr}/debian/dists/stable/InRelease"),
        );
        tokio::spawn(async move {
            let client = client();
            while asking.load(Ordering::Relaxed) {
                let _ = client.get(&url).send().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    (asking, task)
}

const CONFIG: &str = "check_interval = 0\ncache_period = 0\ngeneration_grace = 1\nretention = 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_generations_then_only_the_kept_one_remains() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path().join("repo"))
        .compressions(&[Compression::Xz])
        .package(PackageSpec::new("hello", "1.0").size(30_000))
        .package(PackageSpec::new("libfoo1", "1.0").size(12_000))
        .package(PackageSpec::new("data-all", "0.1").arch("all").size(5_000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let dir = tmp.path().join("cacher");
    let c = cacher(&dir, &up.url(), CONFIG).await;
    // A client that keeps asking for the suite (as a fleet's daily
    // updates do), so that the suite itself is kept.
    let (asking, pinger) = keep_asking(c.addr);
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    // Sizes of every .deb the clients fetched, by path.
    let mut fetched: BTreeMap<String, u64> = BTreeMap::new();
    for round in 1..=3 {
        if round > 1 {
            for name in ["hello", "libfoo1"] {
                let size = if name == "hello" { 30_000 } else { 12_000 };
                repo.replace(PackageSpec::new(name, &format!("{round}.0")).size(size));
            }
            repo.publish().unwrap();
        }
        apt.update_async().await.unwrap().ok_clean().unwrap();
        apt.install_download_only_async(&PKGS)
            .await
            .unwrap()
            .ok_clean()
            .unwrap();
        for n in PKGS {
            let p = repo.package(n).unwrap();
            fetched.insert(format!("debian/{}", p.pool_path), p.size());
        }
    }
    let want = expected(&repo);
    let removed: u64 = fetched
        .iter()
        .filter(|(p, _)| !want.contains_key(*p))
        .map(|(_, s)| s)
        .sum();
    assert_eq!(fetched.len(), 7, "{fetched:?}");

    let cache_dir = dir.join("cache");
    let mut max_reclaimable = 0;
    let kept_only = wait_for(c.addr, &mut max_reclaimable, || cached(&cache_dir) == want).await;
    let have: Vec<String> = cached(&cache_dir).into_keys().collect();
    assert!(
        kept_only,
        "cache_dir holds {have:?}, want {:?}",
        want.keys()
    );
    // Byte for byte the upstream's files of the kept generation (compared above).
    let s = status(c.addr).await;
    assert_eq!(s["counters"]["retention_reclaimed_bytes"], removed, "{s:#}");
    assert_eq!(s["counters"]["retention_reclaimed_files"], 4);
    assert!(max_reclaimable > 0, "reclaimable bytes never shown");
    // meta_dir: the suite's current generation only (previous ones expired).
    let suite = dir.join("meta/debian/dists%2Fstable");
    let names = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut kept = None;
    let one_gen = wait_for(c.addr, &mut max_reclaimable, || {
        let n = names(&suite);
        let current = std::fs::read_link(suite.join("current")).ok();
        kept = current.clone();
        n.len() == 2 && current.is_some_and(|t| n.contains(&t.display().to_string()))
    })
    .await;
    assert!(one_gen, "meta_dir suite holds {:?}", names(&suite));
    assert_eq!(names(&dir.join("meta/debian")), ["dists%2Fstable"]);
    eprintln!(
        "retention figures: reclaimed {removed} bytes in 4 files, \
         reclaimable seen up to {max_reclaimable} bytes; kept {:?}, {} bytes",
        kept,
        want.values().map(|v| v.len()).sum::<usize>()
    );

    // No client asks any more: the suite is dropped, then what it referenced.
    asking.store(false, Ordering::Relaxed);
    pinger.await.unwrap();
    let all: u64 = fetched.values().sum();
    let dropped = wait_for(c.addr, &mut max_reclaimable, || {
        cached(&cache_dir).is_empty() && names(&dir.join("meta/debian")).is_empty()
    })
    .await;
    assert!(
        dropped,
        "cache {:?}, meta {:?}",
        cached(&cache_dir).keys(),
        names(&dir.join("meta/debian"))
    );
    let s = status(c.addr).await;
    assert_eq!(s["counters"]["retention_suites_dropped"], 1, "{s:#}");
    assert_eq!(s["counters"]["retention_reclaimed_bytes"], all, "{s:#}");
    assert_eq!(s["generations"].as_array().map(Vec::len), Some(0));
    // A client coming back finds the suite anew.
    apt.update_async().await.unwrap().ok_clean().unwrap();
    c.stop().await;
}

/// After a restart with the upstream gone, the sweeper waits for the
/// generations to load and then keeps every file the current one lists:
/// a restart never makes referenced files look unreferenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_the_upstream_gone_keeps_the_referenced_files() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .compressions(&[Compression::Xz])
        .package(PackageSpec::new("hello", "1.0").size(30_000))
        .package(PackageSpec::new("libfoo1", "1.0").size(12_000))
        .package(PackageSpec::new("data-all", "0.1").arch("all").size(5_000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let dir = tmp.path().join("cacher");
    let c = cacher(&dir, &up.url(), CONFIG).await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    apt.install_download_only_async(&PKGS)
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    let want = expected(&repo);
    let cache_dir = dir.join("cache");
    let mut max_reclaimable = 0;
    // The last file is renamed in as its download completes.
    let all_in = wait_for(c.addr, &mut max_reclaimable, || cached(&cache_dir) == want).await;
    let keys = |d: &Path| cached(d).into_keys().collect::<Vec<_>>();
    assert!(all_in, "{:?}", keys(&cache_dir));
    c.stop().await;
    let url = up.url();
    drop(up);

    let c = cacher(&dir, &url, CONFIG).await;
    let (asking, pinger) = keep_asking(c.addr);
    // Several retentions and sweeper periods.
    tokio::time::sleep(Duration::from_secs(3)).await;
    asking.store(false, Ordering::Relaxed);
    pinger.await.unwrap();
    assert!(
        cached(&cache_dir) == want,
        "referenced files removed: {:?}",
        keys(&cache_dir)
    );
    let s = status(c.addr).await;
    assert_eq!(s["counters"]["retention_reclaimed_bytes"], 0, "{s:#}");
    assert_eq!(s["gauges"]["retention_reclaimable_bytes"], 0, "{s:#}");
    assert_eq!(s["generations"].as_array().map(Vec::len), Some(1), "{s:#}");
    c.stop().await;
}
