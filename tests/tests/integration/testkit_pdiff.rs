//! The test kit's PDiffs against the real apt-get with PDiffs on: a host
//! that already has the indices fetches `Packages.diff/Index` and the
//! patch(es), not the whole `Packages`, and ends with the new package
//! visible. Both layouts: Debian's merged one (one patch per update) and the
//! chained one (apt fetches and merges every patch since its state).

use testkit::{AptEnv, PackageSpec, PdiffLayout, Repo, Upstream};

const PACKAGES_DIR: &str = "/dists/stable/main/binary-amd64/";

/// Requests for the whole Packages index (any compression, plain or by-hash).
fn full_packages_requests(up: &Upstream) -> Vec<String> {
    up.request_log()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.starts_with(PACKAGES_DIR) && !p.contains(".diff/"))
        .collect()
}

fn not_found(up: &Upstream) -> Vec<String> {
    up.request_log()
        .into_iter()
        .filter(|r| r.status == Some(404))
        .map(|r| r.path)
        .collect()
}

/// Publishes a second after the last one: the upstream's `Last-Modified`
/// has whole seconds, and apt must not get a 304 for a new InRelease.
fn publish(repo: &mut Repo) {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    repo.publish().unwrap();
}

fn apt_with_pdiffs(up: &Upstream) -> AptEnv {
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&up.url(), "stable", &["main"]).unwrap();
    // What the lead will make the default: apt's own PDiffs and languages.
    apt.option("Acquire::PDiffs", "true").unwrap();
    apt.languages("en").unwrap();
    apt
}

fn check_layout(layout: PdiffLayout, by_hash: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path().join("repo"))
        .by_hash(by_hash)
        .translations(true)
        .pdiffs(true)
        .pdiff_layout(layout)
        .generated_packages(30, 200)
        .build()
        .unwrap();
    let dir = repo.suite_dir("stable");
    // The first publish has nothing to patch from.
    assert!(!dir.join("main/binary-amd64/Packages.diff").exists());
    let up = Upstream::serve(repo.root()).unwrap();
    let apt = apt_with_pdiffs(&up);
    apt.update().unwrap().ok_clean().unwrap();

    // One change: one patch, found through the Index listed in the Release.
    repo.add(PackageSpec::new("newpkg", "1.0")).unwrap();
    publish(&mut repo);
    let release = std::fs::read_to_string(dir.join("Release")).unwrap();
    assert!(
        release.contains(" main/binary-amd64/Packages.diff/Index\n"),
        "{release}"
    );
    assert!(
        release.contains(" main/i18n/Translation-en.diff/Index\n"),
        "{release}"
    );
    assert!(
        !release.contains("Packages.diff/T-"),
        "patches are not in the Release"
    );
    up.reset_counts();
    let out = apt.update().unwrap();
    println!("{}", out.all());
    out.ok_clean().unwrap();
    let index_requests = if by_hash {
        up.requests_matching("*/binary-amd64/Packages.diff/by-hash/SHA256/*")
    } else {
        up.requests(&format!("{PACKAGES_DIR}Packages.diff/Index"))
    };
    assert_eq!(index_requests, 1, "{:?}", up.request_log());
    assert_eq!(
        up.requests_matching("*/binary-amd64/Packages.diff/*.gz"),
        1,
        "{:?}",
        up.request_log()
    );
    // The Translation too, by its own diff Index and patch.
    assert_eq!(
        up.requests_matching("*/i18n/Translation-en.diff/*.gz"),
        1,
        "{:?}",
        up.request_log()
    );
    assert!(
        full_packages_requests(&up).is_empty(),
        "{:?}",
        up.request_log()
    );
    assert!(not_found(&up).is_empty(), "{:?}", not_found(&up));
    apt.install_download_only(&["newpkg"])
        .unwrap()
        .ok_clean()
        .unwrap();

    // Three more generations while the host does not update: merged, one
    // patch leads straight there; chained, apt fetches all three.
    for i in 0..3 {
        repo.add(PackageSpec::new(&format!("later{i}"), "1.0"))
            .unwrap();
        publish(&mut repo);
    }
    up.reset_counts();
    let out = apt.update().unwrap();
    println!("{}", out.all());
    out.ok_clean().unwrap();
    let patches = up.requests_matching("*/binary-amd64/Packages.diff/*.gz");
    match layout {
        PdiffLayout::Merged => assert_eq!(patches, 1, "{:?}", up.request_log()),
        PdiffLayout::Chained => assert_eq!(patches, 3, "{:?}", up.request_log()),
    }
    assert!(
        full_packages_requests(&up).is_empty(),
        "{:?}",
        up.request_log()
    );
    assert!(not_found(&up).is_empty(), "{:?}", not_found(&up));
    apt.install_download_only(&["later2"])
        .unwrap()
        .ok_clean()
        .unwrap();
}

#[test]
fn apt_patches_its_lists_merged_layout_by_hash() {
    check_layout(PdiffLayout::Merged, true);
}

#[test]
fn apt_patches_its_lists_chained_layout_plain_paths() {
    check_layout(PdiffLayout::Chained, false);
}

#[test]
fn old_patches_are_pruned_after_keep_generations() {
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::builder(tmp.path().join("repo"))
        .pdiffs(true)
        .pdiff_keep(2)
        .generated_packages(3, 100)
        .build()
        .unwrap();
    for i in 0..5 {
        repo.add(PackageSpec::new(&format!("p{i}"), "1.0")).unwrap();
        repo.publish().unwrap();
    }
    let diff = repo
        .suite_dir("stable")
        .join("main/binary-amd64/Packages.diff");
    let mut names: Vec<String> = std::fs::read_dir(&diff)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().any(|n| n == "Index"), "{names:?}");
    let index = aptindex::DiffIndex::parse(&std::fs::read(diff.join("Index")).unwrap()).unwrap();
    assert_eq!(index.patches.len(), 2);
    assert_eq!(index.precedence, aptindex::pdiff::Precedence::Merged);
    // An unchanged publish keeps the Index as it was.
    let before = std::fs::read(diff.join("Index")).unwrap();
    repo.publish().unwrap();
    assert_eq!(std::fs::read(diff.join("Index")).unwrap(), before);
}
