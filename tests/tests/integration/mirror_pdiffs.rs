//! PDiffs through apt-mirror: the mirror keeps every selected
//! `*.diff/Index` (verified against the Release, with by-hash links) and the
//! patches it lists (each verified against the Index), so the real apt with
//! PDiffs on updates from the mirror with the Index and one patch, no 404
//! and no whole Packages. A patch the new Index no longer lists stays one
//! more snapshot (like a pool file dropped upstream), then goes. A patch
//! that fails verification fails the run
//! (the previous snapshot stays published: no Index whose patch does not
//! match it is ever served); a patch missing upstream is only a warning.

use std::path::{Path, PathBuf};

use testkit::{AptEnv, PackageSpec, Repo, Times, Upstream};

const PACKAGES_DIFF: &str = "dists/stable/main/binary-amd64/Packages.diff";

fn run_mirror(config: &Path) -> u8 {
    testkit::mirror::run(config, &[])
}

struct Bed {
    tmp: tempfile::TempDir,
    repo: Repo,
    up: Upstream,
}

impl Bed {
    fn new() -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::builder(tmp.path().join("upstream"))
            .by_hash(true)
            .translations(true)
            .pdiffs(true)
            .generated_packages(30, 200)
            .build()
            .unwrap();
        let up = Upstream::serve(repo.root()).unwrap();
        repo.key()
            .write_public(&tmp.path().join("key.gpg"))
            .unwrap();
        let config = format!(
            r#"dir = "{}"
max_conns = 4
[http]
retries = 0
[mirror.deb]
url = "{}/"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
languages = ["en"]
keyring = "key.gpg"
"#,
            tmp.path().join("mirror").display(),
            up.url()
        );
        std::fs::write(tmp.path().join("mirror.toml"), config).unwrap();
        Bed { tmp, repo, up }
    }

    fn run(&self) -> u8 {
        run_mirror(&self.tmp.path().join("mirror.toml"))
    }

    fn mirror_dir(&self) -> PathBuf {
        self.tmp.path().join("mirror")
    }

    /// The published tree (`<dir>/deb`).
    fn tree(&self) -> PathBuf {
        self.mirror_dir().join("deb")
    }

    fn snapshot(&self) -> PathBuf {
        std::fs::read_link(self.tree()).unwrap()
    }

    fn error(&self) -> String {
        let data = std::fs::read(self.mirror_dir().join("apt-mirror-summary.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
        v["mirrors"]["deb"]["error"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Patch file names in a `.diff` directory (without the Index and by-hash).
    fn patches(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".gz"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn publish_with(&mut self, name: &str) {
        self.repo.add(PackageSpec::new(name, "1.0")).unwrap();
        // Whole-second Last-Modified: a new InRelease must not look unchanged.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        self.repo.publish().unwrap();
    }
}

fn not_found(up: &Upstream) -> Vec<String> {
    up.request_log()
        .into_iter()
        .filter(|r| r.status == Some(404))
        .map(|r| r.path)
        .collect()
}

#[test]
fn apt_updates_from_the_mirror_with_pdiffs() {
    let mut bed = Bed::new();
    assert_eq!(bed.run(), 0, "{}", bed.error());
    // The mirror served by a plain file server that counts requests.
    let served = Upstream::serve(bed.mirror_dir()).unwrap();
    let mut apt = AptEnv::with_key(bed.repo.key()).unwrap();
    apt.add_source(&format!("{}/deb", served.url()), "stable", &["main"])
        .unwrap();
    apt.option("Acquire::PDiffs", "true").unwrap();
    apt.languages("en").unwrap();
    apt.update().unwrap().ok_clean().unwrap();

    bed.publish_with("newpkg");
    assert_eq!(bed.run(), 0, "{}", bed.error());
    let tree = bed.tree();
    let upstream_diff = bed
        .repo
        .suite_dir("stable")
        .join("main/binary-amd64/Packages.diff");
    // Index and patches as upstream has them, the Index by hash too.
    let index = std::fs::read(tree.join(PACKAGES_DIFF).join("Index")).unwrap();
    assert_eq!(index, std::fs::read(upstream_diff.join("Index")).unwrap());
    let sha = aptindex::Checksums::of_bytes(&index)
        .hex(aptindex::HashKind::Sha256)
        .unwrap();
    assert!(tree
        .join(PACKAGES_DIFF)
        .join("by-hash/SHA256")
        .join(&sha)
        .is_file());
    let patches = Bed::patches(&tree.join(PACKAGES_DIFF));
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches, Bed::patches(&upstream_diff));
    assert!(!Bed::patches(&tree.join("dists/stable/main/i18n/Translation-en.diff")).is_empty());

    served.reset_counts();
    let out = apt.update().unwrap();
    println!("{}", out.all());
    out.ok_clean().unwrap();
    assert!(not_found(&served).is_empty(), "{:?}", not_found(&served));
    assert_eq!(
        served.requests_matching("*/binary-amd64/Packages.diff/by-hash/SHA256/*"),
        1,
        "{:?}",
        served.request_log()
    );
    assert_eq!(
        served.requests(&format!("/deb/{PACKAGES_DIFF}/{}", patches[0])),
        1,
        "{:?}",
        served.request_log()
    );
    let full: Vec<String> = served
        .request_log()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.starts_with("/deb/dists/stable/main/binary-amd64/") && !p.contains(".diff/"))
        .collect();
    assert!(full.is_empty(), "whole Packages fetched: {full:?}");
    apt.install_download_only(&["newpkg"])
        .unwrap()
        .ok_clean()
        .unwrap();

    // Two more generations: the new Index lists three merged patches, all
    // in the new snapshot. The one the previous Index listed stays one more
    // snapshot, like a pool file dropped upstream (a client that read the
    // previous InRelease still finds the old Index by hash, and its patch),
    // and is gone after the next run.
    bed.publish_with("later0");
    bed.publish_with("later1");
    assert_eq!(bed.run(), 0, "{}", bed.error());
    let listed = Bed::patches(&upstream_diff);
    assert_eq!(listed.len(), 3, "{listed:?}");
    let mut expected = listed.clone();
    expected.push(patches[0].clone());
    expected.sort();
    assert_eq!(Bed::patches(&tree.join(PACKAGES_DIFF)), expected);
    served.reset_counts();
    apt.update().unwrap().ok_clean().unwrap();
    assert!(not_found(&served).is_empty(), "{:?}", not_found(&served));
    assert_eq!(
        served.requests_matching("*/binary-amd64/Packages.diff/*.gz"),
        1
    );
    apt.install_download_only(&["later1"])
        .unwrap()
        .ok_clean()
        .unwrap();

    bed.publish_with("later2");
    assert_eq!(bed.run(), 0, "{}", bed.error());
    let now = Bed::patches(&tree.join(PACKAGES_DIFF));
    assert!(!now.contains(&patches[0]), "{now:?}");
    let listed = Bed::patches(&upstream_diff);
    assert!(listed.iter().all(|p| now.contains(p)), "{now:?} {listed:?}");
}

#[test]
fn a_corrupt_patch_fails_the_run_and_a_missing_one_is_a_warning() {
    let mut bed = Bed::new();
    assert_eq!(bed.run(), 0, "{}", bed.error());
    bed.publish_with("newpkg");

    // Corrupted in transit (same size, other bytes): the run fails, naming
    // the patch, and the previous snapshot stays.
    let before = bed.snapshot();
    bed.up
        .corrupt("*/binary-amd64/Packages.diff/*.gz", Times::Always);
    assert_ne!(bed.run(), 0);
    let error = bed.error();
    assert!(error.contains("Packages.diff/T-"), "{error}");
    assert_eq!(bed.snapshot(), before);
    assert!(!bed.tree().join(PACKAGES_DIFF).exists());

    // Missing upstream: published without it (apt falls back to the whole index).
    bed.up.clear_faults();
    bed.up
        .fail_status("*/binary-amd64/Packages.diff/*.gz", 404, Times::Always);
    assert_eq!(bed.run(), 0, "{}", bed.error());
    assert!(bed.tree().join(PACKAGES_DIFF).join("Index").is_file());
    assert!(Bed::patches(&bed.tree().join(PACKAGES_DIFF)).is_empty());
    assert!(!Bed::patches(
        &bed.tree()
            .join("dists/stable/main/i18n/Translation-en.diff")
    )
    .is_empty());

    // Once upstream serves it, the next change brings the patches in.
    bed.up.clear_faults();
    bed.publish_with("later");
    assert_eq!(bed.run(), 0, "{}", bed.error());
    assert_eq!(Bed::patches(&bed.tree().join(PACKAGES_DIFF)).len(), 2);
}
