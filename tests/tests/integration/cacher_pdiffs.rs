//! apt-cacher with PDiffs and pool files no loaded index lists, with the
//! real apt at its defaults (PDiffs on, by-hash as the repository says,
//! default languages): patches are served verified against the diff Index
//! of the client's generation, a corrupted patch is never served as good
//! nor kept, a pool file asked for before any index was loaded is verified
//! against the index the cacher loads for it, and only a file no index
//! names is downloaded unverified, and counted.
//!
//! The PDiffs of tests (1) and (2) are made here by hand (`diff --ed`
//! between the old and the new uncompressed `Packages`, gzipped, with a
//! `Packages.diff/Index` in dak's merged layout listed in the re-signed
//! Release); those of (7) by the test kit (`RepoBuilder::pdiffs`), in both
//! of its layouts.

use std::path::Path;
use std::process::Command;
use testkit::{AptEnv, Checksums, Compression, PackageSpec, Repo, Times, Upstream};

const PACKAGES: &str = "main/binary-amd64/Packages";
/// The patch's name (dak's merged layout: `T-<to>-F-<from>`).
const PATCH: &str = "T-2026-01-02-0000.00-F-2026-01-01-0000.00";

/// A repository large enough that apt prefers a small patch to the whole
/// index (its `Acquire::PDiffs::SizeLimit`), with translations (apt's
/// default languages ask for them).
fn repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .by_hash(true)
        .translations(true)
        .compressions(&[Compression::Xz, Compression::Gz])
        .generated_packages(150, 300)
        .package(PackageSpec::new("hello", "2.10-3").size(20_000))
        .build()
        .unwrap()
}

/// apt with its defaults where this test kit's differ: PDiffs on, default languages.
fn apt_defaults(apt: &mut AptEnv) {
    apt.option("Acquire::PDiffs", "true").unwrap();
    apt.option("Acquire::Languages", "environment,en").unwrap();
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// GET `url`: status and body (`None` when the body broke off).
async fn get(url: &str) -> (u16, Option<bytes::Bytes>) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.ok())
}

/// The value of the sample line `name` in a Prometheus text.
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

/// The unverified-download count as `/~/metrics` and `/~/status.json` show it
/// (asserted equal).
async fn unverified(c: &apt_cacher::Running) -> u64 {
    let (status, body) = get(&format!("http://{}/~/metrics", c.addr)).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body.unwrap().to_vec()).unwrap();
    let from_metrics = sample(&text, "apt_cacher_unverified_downloads_total");
    let (status, body) = get(&format!("http://{}/~/status.json", c.addr)).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
    let from_status = json["counters"]["unverified_downloads"].as_u64().unwrap();
    assert_eq!(from_metrics, from_status);
    assert_eq!(from_metrics, c.app.metrics.counters().unverified_downloads);
    from_metrics
}

/// Publishes `repo` after `change`, with a PDiff from the previous
/// `main/binary-amd64/Packages` to the new one (listed in the re-signed
/// Release, with by-hash copies of the diff Index).
fn publish_with_pdiff(repo: &mut Repo, change: impl FnOnce(&mut Repo)) {
    let dir = repo.suite_dir("stable");
    let old = std::fs::read(dir.join(PACKAGES)).unwrap();
    change(repo);
    repo.publish().unwrap();
    let new = std::fs::read(dir.join(PACKAGES)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("old"), &old).unwrap();
    std::fs::write(tmp.path().join("new"), &new).unwrap();
    let out = Command::new("diff")
        .arg("--ed")
        .arg(tmp.path().join("old"))
        .arg(tmp.path().join("new"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "diff: the indices differ");
    let ed = out.stdout;
    let gz = Compression::Gz.compress(&ed).unwrap();
    let (o, n, e, g) = (
        Checksums::of(&old),
        Checksums::of(&new),
        Checksums::of(&ed),
        Checksums::of(&gz),
    );
    let index = format!(
        "SHA256-Current: {} {}\nSHA256-History:\n {} {} {PATCH}\nSHA256-Patches:\n {} {} {PATCH}\n\
         SHA256-Download:\n {} {} {PATCH}.gz\nX-Patch-Precedence: merged\n",
        n.sha256, n.size, o.sha256, o.size, e.sha256, e.size, g.sha256, g.size
    );
    let diff_dir = dir.join(format!("{PACKAGES}.diff"));
    std::fs::create_dir_all(&diff_dir).unwrap();
    std::fs::write(diff_dir.join(format!("{PATCH}.gz")), &gz).unwrap();
    std::fs::write(diff_dir.join("Index"), &index).unwrap();
    let ic = Checksums::of(index.as_bytes());
    for (algo, hex) in [
        ("MD5Sum", &ic.md5),
        ("SHA1", &ic.sha1),
        ("SHA256", &ic.sha256),
    ] {
        let p = diff_dir.join("by-hash").join(algo).join(hex);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &index).unwrap();
    }
    // The diff Index joins each checksum list of the Release.
    let release = std::fs::read_to_string(dir.join("Release")).unwrap();
    let mut text = String::new();
    for line in release.lines() {
        text.push_str(line);
        text.push('\n');
        let hex = match line {
            "MD5Sum:" => &ic.md5,
            "SHA1:" => &ic.sha1,
            "SHA256:" => &ic.sha256,
            _ => continue,
        };
        text.push_str(&format!(" {hex} {:>16} {PACKAGES}.diff/Index\n", ic.size));
    }
    std::fs::write(dir.join("Release"), text).unwrap();
    repo.resign("stable").unwrap();
}

/// Files named like the patch anywhere under `dir`.
fn patches_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            // Not through the `current` symlink: each file once.
            if e.file_type().is_ok_and(|t| t.is_symlink()) {
                continue;
            }
            if p.is_dir() {
                todo.push(p);
            } else if e.file_name().to_string_lossy().starts_with("T-") {
                out.push(p);
            }
        }
    }
    out
}

fn check_deb(apt: &AptEnv, repo: &Repo, name: &str) {
    let p = repo.package(name).unwrap();
    let local = apt.archives_dir().join(p.deb_file_name());
    let data = std::fs::read(&local).unwrap_or_else(|e| panic!("{}: {e}", local.display()));
    assert_eq!(Checksums::of(&data).sha256, p.sha256(), "{name}");
}

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
