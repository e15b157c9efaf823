//! Files no loaded index lists: a pool file is verified by the index loaded
//! for it, a file no index names is downloaded unverified and counted, a
//! failing index is not retried on every request, sources/all/flat indices
//! are looked up, and the previous generation's files are verified.

use super::*;

/// (3) A pool file asked for when only the InRelease was: the cacher loads
/// the index that lists it and verifies against it; corrupted upstream bytes
/// are refused and not kept; mended, they are served and cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_file_before_any_index_is_verified_by_the_index_loaded_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let base = format!("http://{}/debian", c.addr);
    let (status, _) = get(&format!("{base}/dists/stable/InRelease")).await;
    assert_eq!(status, 200);
    let hello = repo.package("hello").unwrap();
    let url = format!("{base}/pool/main/h/hello/{}", hello.deb_file_name());
    let good = std::fs::read(
        repo.root()
            .join("pool/main/h/hello")
            .join(hello.deb_file_name()),
    )
    .unwrap();

    up.corrupt("*hello_*.deb", Times::Always);
    // Several at once: one index fetch, one pool download, all refused.
    let tries: Vec<_> = (0..4)
        .map(|_| tokio::spawn(get_owned(url.clone())))
        .collect();
    for t in tries {
        let (status, body) = t.await.unwrap();
        assert!(
            status != 200 || body.is_none(),
            "corrupted bytes served as complete ({status})"
        );
    }
    assert_eq!(
        up.requests_matching("*binary-amd64/*Packages*")
            + up.requests_matching("*binary-amd64/by-hash/*"),
        1,
        "{:?}",
        up.request_log()
    );
    assert!(c.app.metrics.counters().verification_failures >= 1);
    let cached = c.app.store.usage().0;
    assert_eq!(cached, 0, "nothing cached");

    up.clear_faults();
    let before = up.requests_matching("*hello_*.deb");
    let (status, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().as_ref(), good.as_slice());
    assert_eq!(up.requests_matching("*hello_*.deb"), before + 1);
    // Now cached, verified: the next one is a hit.
    let (status, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().as_ref(), good.as_slice());
    assert_eq!(up.requests_matching("*hello_*.deb"), before + 1);
    assert_eq!(unverified(&c).await, 0);
    c.stop().await;
}

async fn get_owned(url: String) -> (u16, Option<bytes::Bytes>) {
    get(&url).await
}

/// (4) A pool file no index of any served suite names is downloaded
/// unverified (after the indices that would list it were loaded and did
/// not), and counted on `/~/metrics` and `/~/status.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_no_index_names_is_downloaded_unverified_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let extra = "pool/main/e/extra/extra_1.0_amd64.deb";
    let bytes = testkit::repo::deterministic_bytes(b"extra", 3000);
    let p = repo.root().join(extra);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, &bytes).unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let base = format!("http://{}/debian", c.addr);
    let (status, _) = get(&format!("{base}/dists/stable/InRelease")).await;
    assert_eq!(status, 200);
    assert_eq!(unverified(&c).await, 0);

    let (status, body) = get(&format!("{base}/{extra}")).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().as_ref(), bytes.as_slice());
    // The index that would list it was loaded first.
    assert_eq!(
        up.requests_matching("*binary-amd64/*Packages*")
            + up.requests_matching("*binary-amd64/by-hash/*"),
        1,
        "{:?}",
        up.request_log()
    );
    assert_eq!(unverified(&c).await, 1);
    // Again: from the cache, no new download, the index not fetched again.
    let (status, body) = get(&format!("{base}/{extra}")).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().as_ref(), bytes.as_slice());
    assert_eq!(up.requests_matching("*extra_1.0_amd64.deb"), 1);
    assert_eq!(
        up.requests_matching("*binary-amd64/*Packages*")
            + up.requests_matching("*binary-amd64/by-hash/*"),
        1
    );
    assert_eq!(unverified(&c).await, 1);
    c.stop().await;
}

/// (5) The index that should list a pool file fails to load (its bytes do
/// not verify): the file is passed through, not cached, and the index is
/// not tried again on every request (`cache_period`); once upstream is
/// mended, the index loads and the file is verified and cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_index_is_not_retried_on_every_request_and_nothing_unverified_is_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "cache_period = 1").await;
    let base = format!("http://{}/debian", c.addr);
    let (status, _) = get(&format!("{base}/dists/stable/InRelease")).await;
    assert_eq!(status, 200);
    let hello = repo.package("hello").unwrap();
    let url = format!("{base}/pool/main/h/hello/{}", hello.deb_file_name());
    let good = std::fs::read(
        repo.root()
            .join("pool/main/h/hello")
            .join(hello.deb_file_name()),
    )
    .unwrap();
    let index_requests = || {
        up.requests_matching("*binary-amd64/*Packages*")
            + up.requests_matching("*binary-amd64/by-hash/*")
    };

    up.corrupt("*binary-amd64/*", Times::Always);
    for _ in 0..3 {
        let (status, body) = get(&url).await;
        assert_eq!(status, 200);
        assert_eq!(body.unwrap().as_ref(), good.as_slice());
    }
    assert_eq!(index_requests(), 1, "{:?}", up.request_log());
    assert_eq!(c.app.store.usage().0, 0, "nothing cached");
    assert_eq!(unverified(&c).await, 3);

    up.clear_faults();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().as_ref(), good.as_slice());
    assert_eq!(index_requests(), 2, "{:?}", up.request_log());
    assert_eq!(unverified(&c).await, 3);
    // Committed to the cache just after the response (bounded wait).
    for _ in 0..100 {
        if c.app.store.usage().0 == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(c.app.store.usage().0, 1, "cached, verified");
    let before = up.requests_matching("*hello_*.deb");
    let (status, _) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(up.requests_matching("*hello_*.deb"), before);
    c.stop().await;
}

/// (6) The lookup for a source file loads `Sources`, for an `_all` package
/// the `Packages` of the architectures until one lists it, and for a flat
/// repository its top-level `Packages`: each file verified, none unverified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_all_and_flat_repositories_are_looked_up_too() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .sources(true)
        .architectures(&["amd64", "arm64"])
        .package(PackageSpec::new("hello", "2.10-3").size(5000))
        .package(PackageSpec::new("data-all", "0.1").arch("all"))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let base = format!("http://{}/debian", c.addr);
    let (status, _) = get(&format!("{base}/dists/stable/InRelease")).await;
    assert_eq!(status, 200);

    let dsc = "pool/main/h/hello/hello_2.10-3.dsc";
    let (status, body) = get(&format!("{base}/{dsc}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body.unwrap().as_ref(),
        std::fs::read(repo.root().join(dsc)).unwrap()
    );
    assert_eq!(
        up.requests_matching("*main/source/*"),
        1,
        "{:?}",
        up.request_log()
    );
    assert_eq!(
        up.requests_matching("*binary-*"),
        0,
        "{:?}",
        up.request_log()
    );

    let all = repo.package("data-all").unwrap().pool_path.clone();
    let (status, body) = get(&format!("{base}/{all}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body.unwrap().as_ref(),
        std::fs::read(repo.root().join(&all)).unwrap()
    );
    // The first index that lists it ends the lookup: one of the two loaded.
    assert_eq!(
        up.requests_matching("*main/binary-*"),
        1,
        "{:?}",
        up.request_log()
    );
    assert_eq!(unverified(&c).await, 0);
    // A made-up `_all` name loads no further index: the one held decides
    // (every `binary-*` of the component alike lists the `_all` packages).
    let (status, _) = get(&format!("{base}/pool/main/z/zz/zz_1_all.deb")).await;
    assert_eq!(status, 404);
    assert_eq!(
        up.requests_matching("*main/binary-*"),
        1,
        "{:?}",
        up.request_log()
    );
    c.stop().await;

    // A flat repository (suite directory = the repository root).
    let flat = Repo::builder(tmp.path().join("flat"))
        .suites(&["./"])
        .package(PackageSpec::new("rootpkg", "1.0").suite("./"))
        .build()
        .unwrap();
    let up = Upstream::serve(flat.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher-flat"), &up.url(), "").await;
    let base = format!("http://{}/debian", c.addr);
    let (status, _) = get(&format!("{base}/InRelease")).await;
    assert_eq!(status, 200);
    let deb = flat.package("rootpkg").unwrap().pool_path.clone();
    up.corrupt(
        &format!("*{}", flat.package("rootpkg").unwrap().deb_file_name()),
        Times::Once,
    );
    let (status, body) = get(&format!("{base}/{deb}")).await;
    assert!(
        status != 200 || body.is_none(),
        "corrupted bytes served as complete"
    );
    let (status, body) = get(&format!("{base}/{deb}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body.unwrap().as_ref(),
        std::fs::read(flat.root().join(&deb)).unwrap()
    );
    assert_eq!(
        up.requests_matching("/Packages*"),
        1,
        "{:?}",
        up.request_log()
    );
    assert_eq!(unverified(&c).await, 0);
    c.stop().await;
}

/// A client of the previous generation (within its grace period) asks for a
/// pool file that the new indices dropped: it is verified against the
/// previous generation's index, never downloaded or cached unverified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_only_the_previous_generation_lists_is_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path().join("repo"))
        .package(PackageSpec::new("foo", "1.0").size(3000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c =
        testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "check_interval = 0").await;
    let base = format!("http://{}/debian", c.addr);
    // Generation N, with its Packages loaded (as `apt-get update` does).
    for p in [
        "dists/stable/InRelease",
        "dists/stable/main/binary-amd64/Packages",
    ] {
        let (status, _) = get(&format!("{base}/{p}")).await;
        assert_eq!(status, 200, "{p}");
    }
    let old = repo.package("foo").unwrap().pool_path.clone();
    let old_bytes = std::fs::read(repo.root().join(&old)).unwrap();
    // Upstream moves on: foo 1.1 replaces 1.0 (whose file it still serves,
    // as archives do for a while); the cacher swaps in generation N+1.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    repo.replace(PackageSpec::new("foo", "1.1").size(3000));
    repo.publish().unwrap();
    if !repo.root().join(&old).exists() {
        std::fs::write(repo.root().join(&old), &old_bytes).unwrap();
    }
    let (status, body) = get(&format!("{base}/dists/stable/InRelease")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body.unwrap().as_ref(),
        std::fs::read(repo.root().join("dists/stable/InRelease")).unwrap(),
        "the cacher did not move to the new generation"
    );
    // Corrupted upstream: refused (the old index's checksums apply).
    up.corrupt(
        &format!("*{}", old.rsplit('/').next().unwrap()),
        Times::Once,
    );
    let (status, body) = get(&format!("{base}/{old}")).await;
    assert!(
        status != 200 || body.is_none(),
        "corrupted bytes of a file the previous generation lists served as complete"
    );
    let (status, body) = get(&format!("{base}/{old}")).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().as_ref(), old_bytes.as_slice());
    assert_eq!(unverified(&c).await, 0);
    c.stop().await;
}
