//! PDiff patches through the cacher: apt updates with patches verified
//! against the diff Index, a corrupted patch is never served nor kept, and
//! the test kit's PDiffs in both layouts.

use super::*;

/// (1) apt updates through the cacher, the repository changes with a
/// PDiff, apt updates again with the diff Index and the patch through the
/// cacher, and installs the new package, verified. Then a fresh cacher
/// (nothing loaded) serves an apt whose lists are current: its update
/// fetches no index, and the pool file it installs is verified against the
/// index the cacher loads for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_updates_with_pdiffs_through_the_cacher_and_installs_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c =
        testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "check_interval = 0").await;
    let mut apt = AptEnv::new().unwrap();
    apt_defaults(&mut apt);
    // Proxy mode: the lists keep their names when the proxy changes below.
    apt.add_source(&up.url(), "stable", &["main"]).unwrap();
    apt.proxy(&format!("http://{}/", c.addr)).unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();

    publish_with_pdiff(&mut repo, |r| {
        r.add(PackageSpec::new("newpkg", "1.0").size(4000)).unwrap()
    });
    let out = apt.update_async().await.unwrap();
    println!("{}", out.all());
    let out = out.ok_clean().unwrap();
    assert!(!out.hash_sum_mismatch());
    // apt used the patch: its diff Index and the patch went through the cacher.
    assert!(out.all().contains(".pdiff"), "{}", out.all());
    assert_eq!(
        up.requests_matching(&format!("*/{PACKAGES}.diff/{PATCH}.gz")),
        1,
        "{:?}",
        up.request_log()
    );
    assert!(
        up.requests_matching(&format!("*/{PACKAGES}.diff/*")) >= 2,
        "{:?}",
        up.request_log()
    );
    // The patch is kept in the generation, as verified.
    let kept = patches_under(&tmp.path().join("cacher/meta"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    apt.install_download_only_async(&["newpkg"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    check_deb(&apt, &repo, "newpkg");
    assert_eq!(unverified(&c).await, 0);
    assert_eq!(c.app.metrics.counters().verification_failures, 0);
    c.stop().await;

    // A fresh cacher; apt's lists are current, so its update fetches no index.
    let c2 = testkit::cacher::start(&tmp.path().join("cacher2"), &up.url(), "").await;
    apt.proxy(&format!("http://{}/", c2.addr)).unwrap();
    up.reset_counts();
    let out = apt.update_async().await.unwrap().ok_clean().unwrap();
    assert_eq!(
        up.requests_matching("*Packages*"),
        0,
        "{}\n{:?}",
        out.all(),
        up.request_log()
    );
    apt.install_download_only_async(&["hello"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    check_deb(&apt, &repo, "hello");
    // The cacher loaded the index that lists it (one compression of it), verified.
    assert_eq!(
        up.requests_matching("*binary-amd64/*Packages*")
            + up.requests_matching("*binary-amd64/by-hash/*"),
        1,
        "{:?}",
        up.request_log()
    );
    assert_eq!(unverified(&c2).await, 0);
    c2.stop().await;
}

/// (2) A corrupted patch upstream: apt never sees a Hash Sum mismatch (the
/// cacher refuses the patch and apt fetches the whole index instead), the
/// patch is not kept, and a patch name the diff Index does not list is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_patch_is_never_served_as_good_nor_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let c =
        testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "check_interval = 0").await;
    let mut apt = AptEnv::new().unwrap();
    apt_defaults(&mut apt);
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();

    publish_with_pdiff(&mut repo, |r| {
        r.add(PackageSpec::new("newpkg", "1.0").size(4000)).unwrap()
    });
    up.corrupt("*.diff/T-*", Times::Always);
    let out = apt.update_async().await.unwrap();
    println!("{}", out.all());
    assert!(!out.hash_sum_mismatch(), "{}", out.all());
    assert!(out.success(), "{}", out.all());
    assert!(
        up.requests_matching(&format!("*/{PACKAGES}.diff/{PATCH}.gz")) >= 1,
        "{:?}",
        up.request_log()
    );
    assert!(patches_under(&tmp.path().join("cacher/meta")).is_empty());
    assert!(c.app.metrics.counters().verification_failures >= 1);
    // apt fell back to the whole index: the new package is there.
    apt.install_download_only_async(&["newpkg"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    check_deb(&apt, &repo, "newpkg");

    // Asked directly, the corrupted patch never arrives complete with a 200.
    let base = format!("http://{}/debian/dists/stable/{PACKAGES}.diff", c.addr);
    let (status, body) = get(&format!("{base}/{PATCH}.gz")).await;
    let gz = std::fs::read(
        repo.suite_dir("stable")
            .join(format!("{PACKAGES}.diff/{PATCH}.gz")),
    )
    .unwrap();
    assert!(
        status != 200 || body.as_deref().is_none_or(|b| b != gz.as_slice()),
        "{status}"
    );
    assert!(
        status != 200 || body.is_none(),
        "{status}: served as complete"
    );
    // Upstream mended: the patch verifies and is kept.
    up.clear_faults();
    let (status, body) = get(&format!("{base}/{PATCH}.gz")).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().as_ref(), gz.as_slice());
    assert_eq!(patches_under(&tmp.path().join("cacher/meta")).len(), 1);
    // A name the diff Index does not list: 404, upstream never asked.
    let before = up.requests_total();
    let (status, _) = get(&format!(
        "{base}/T-2026-01-03-0000.00-F-2026-01-02-0000.00.gz"
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(up.requests_total(), before, "{:?}", up.request_log());
    assert_eq!(unverified(&c).await, 0);
    c.stop().await;
}

/// (7) The test kit's own PDiffs (`RepoBuilder::pdiffs`), Debian's merged
/// layout and the chained one: an apt two publishes behind updates through
/// the cacher with the patches (each verified against the diff Index of its
/// generation), then installs both new packages, verified.
async fn kit_pdiffs(layout: testkit::PdiffLayout) {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path().join("repo"))
        .by_hash(true)
        .translations(true)
        .pdiffs(true)
        .pdiff_layout(layout)
        .generated_packages(150, 300)
        .package(PackageSpec::new("hello", "2.10-3").size(20_000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c =
        testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "check_interval = 0").await;
    let mut apt = AptEnv::new().unwrap();
    apt_defaults(&mut apt);
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    for name in ["newpkg1", "newpkg2"] {
        // One second apart at least: patch names are time stamps.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        repo.add(PackageSpec::new(name, "1.0").size(4000)).unwrap();
        repo.publish().unwrap();
    }
    let out = apt.update_async().await.unwrap();
    println!("{}", out.all());
    let out = out.ok_clean().unwrap();
    assert!(out.all().contains(".pdiff"), "{}", out.all());
    assert!(
        up.requests_matching("*Packages.diff/*") >= 2,
        "{:?}",
        up.request_log()
    );
    apt.install_download_only_async(&["newpkg1", "newpkg2"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    check_deb(&apt, &repo, "newpkg1");
    check_deb(&apt, &repo, "newpkg2");
    assert_eq!(c.app.metrics.counters().verification_failures, 0);
    assert_eq!(unverified(&c).await, 0);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_pdiffs_merged_layout_through_the_cacher() {
    kit_pdiffs(testkit::PdiffLayout::Merged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_pdiffs_chained_layout_through_the_cacher() {
    kit_pdiffs(testkit::PdiffLayout::Chained).await;
}
