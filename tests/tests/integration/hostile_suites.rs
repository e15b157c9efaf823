//! Issue 13, item 3: made-up suite names. A client asking for the Release
//! of thousands of random suites (`/<prefix>/dists/<random>/InRelease`)
//! must leave no permanent state: a suite exists (in memory, on disk, on
//! the status page, in the refresh loop) only once upstream served a valid
//! Release for it; upstream failures of unknown names are remembered in a
//! small bounded table; names longer than `MAX_SUITE_DIR` or with odd
//! characters are refused before upstream is asked. A cached pool hit after
//! such a flood is one lookup by path (the unit test
//! `generation::pool_map::tests::lookups_do_not_walk_generations` counts the
//! maps looked into), and a suite upstream starts serving later is picked
//! up once the remembered failure expires.

use apt_cacher::generation::{SuiteCounts, MAX_SUITE_DIR};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use testkit::{PackageSpec, Repo, Upstream};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .package(PackageSpec::new("alpha", "1.0").size(2_000))
        .build()
        .unwrap()
}

/// Every path under `dir` (directories and files), relative to it.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p);
            }
        }
    }
    out
}

/// GETs every URL of `urls` (16 at a time); their statuses, in order.
async fn statuses(urls: Vec<String>) -> Vec<u16> {
    let c = client();
    futures_util::stream::iter(urls)
        .map(|u| {
            let c = c.clone();
            async move { c.get(&u).send().await.unwrap().status().as_u16() }
        })
        .buffered(16)
        .collect()
        .await
}

async fn get(url: &str) -> (u16, bytes::Bytes) {
    let r = client().get(url).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap())
}

/// The suites on `/~/status.json`.
async fn status_suites(base: &str) -> Vec<String> {
    let (s, body) = get(&format!("{base}/~/status.json")).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["suite"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_suite_names_leave_no_state() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let cdir = tmp.path().join("cacher");
    let c = testkit::cacher::start(&cdir, &up.url(), "cache_period = 600").await;
    let base = format!("http://{}", c.addr);
    let pool = repo.package("alpha").unwrap().pool_path.clone();
    assert_eq!(
        get(&format!("{base}/debian/dists/stable/InRelease"))
            .await
            .0,
        200
    );
    assert_eq!(get(&format!("{base}/debian/{pool}")).await.0, 200);
    // Kept just after its last byte went out.
    for _ in 0..500 {
        if c.app.store.usage().0 >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = (tree(&cdir), status_suites(&base).await, up.requests_total());
    assert_eq!(before.1, ["dists/stable"]);

    // 1,500 valid-looking names upstream answers 404 for, 300 names too
    // long, 200 with characters no suite has.
    let mut urls: Vec<String> = (0..1500)
        .map(|i| format!("{base}/debian/dists/made-up-{i}/InRelease"))
        .collect();
    let long = "x".repeat(MAX_SUITE_DIR);
    urls.extend((0..300).map(|i| format!("{base}/debian/dists/{long}{i}/Release")));
    urls.extend((0..200).map(|i| format!("{base}/debian/dists/a%20b{i}/InRelease")));
    let got = statuses(urls).await;
    assert!(got[..1500].iter().all(|s| *s == 404), "{:?}", &got[..5]);
    assert!(
        got[1500..].iter().all(|s| *s == 400),
        "{:?}",
        &got[1500..1505]
    );
    // Only the valid-looking names were asked upstream, once each.
    assert_eq!(up.requests_total() - before.2, 1500);

    // Asked again: answered from the remembered failures (those still in
    // the bounded table), not upstream.
    let again: Vec<String> = (1400..1500)
        .map(|i| format!("{base}/debian/dists/made-up-{i}/InRelease"))
        .collect();
    assert!(statuses(again).await.iter().all(|s| *s == 404));
    assert_eq!(up.requests_total() - before.2, 1500);

    // No state left but the bounded table: one known suite, nothing in
    // flight, no new directory, the status page unchanged.
    let counts = c.app.gens.suite_counts();
    assert_eq!(
        counts,
        SuiteCounts {
            known: 1,
            pending: 0,
            remembered: apt_cacher::generation::MAX_REMEMBERED,
        }
    );
    assert_eq!(tree(&cdir), before.0);
    assert_eq!(status_suites(&base).await, before.1);
    // The real suite and its pool file are served as before.
    assert_eq!(
        get(&format!("{base}/debian/dists/stable/InRelease"))
            .await
            .0,
        200
    );
    assert_eq!(get(&format!("{base}/debian/{pool}")).await.0, 200);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_hits_after_many_unknown_names_need_no_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let base = format!("http://{}", c.addr);
    let pool = repo.package("alpha").unwrap().pool_path.clone();
    assert_eq!(
        get(&format!("{base}/debian/dists/stable/InRelease"))
            .await
            .0,
        200
    );
    let (s, deb) = get(&format!("{base}/debian/{pool}")).await;
    assert_eq!(s, 200);
    let urls: Vec<String> = (0..5000)
        .map(|i| format!("{base}/debian/dists/n{i}/Release"))
        .collect();
    assert!(statuses(urls).await.iter().all(|s| *s == 404));
    // Still one suite: the lookup of a pool file's checksums is one map
    // keyed by path (no walk at all, let alone over 5,000 suites), and
    // the file is a hit, upstream not asked.
    assert_eq!(c.app.gens.suite_counts().known, 1);
    assert!(c.app.gens.expected(0, &pool).is_some());
    let asked = up.requests(&format!("/{pool}"));
    assert_eq!(get(&format!("{base}/debian/{pool}")).await, (200, deb));
    assert_eq!(up.requests(&format!("/{pool}")), asked);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_upstream_serves_later_is_picked_up() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "cache_period = 1").await;
    let base = format!("http://{}", c.addr);
    let later = format!("{base}/debian/dists/later/InRelease");
    assert_eq!(get(&later).await.0, 404);
    assert_eq!(c.app.gens.suite_counts().remembered, 1);
    // Upstream publishes the suite: within cache_period the failure is
    // still remembered (upstream not asked again) ...
    let inrelease = std::fs::read(repo.root().join("dists/stable/InRelease")).unwrap();
    up.put("/dists/later/InRelease", &inrelease).unwrap();
    assert_eq!(get(&later).await.0, 404);
    assert_eq!(up.requests("/dists/later/InRelease"), 1);
    // ... then it expires and the new suite is served and known.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, body) = get(&later).await;
    assert_eq!((s, body.as_ref()), (200, inrelease.as_slice()));
    assert_eq!(up.requests("/dists/later/InRelease"), 2);
    assert!(status_suites(&base)
        .await
        .contains(&"dists/later".to_string()));
    let counts = c.app.gens.suite_counts();
    assert_eq!((counts.known, counts.pending, counts.remembered), (1, 0, 0));
    c.stop().await;
}
