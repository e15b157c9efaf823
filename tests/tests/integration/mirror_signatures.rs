//! apt-mirror reads a suite's signatures the way apt does (`aptindex::trust`),
//! end to end: an upstream serving a stale `Release.gpg` next to a good
//! `InRelease` (as Debian's mirrors and CDNs do) is mirrored with a warning,
//! the snapshot never publishes a pair that does not verify, the next run
//! sees the same upstream as unchanged, and the real `apt-get` updates from
//! the mirror and installs; a bad `InRelease` falls back to a good
//! `Release` + `Release.gpg`, and with both bad nothing is published.

use std::path::PathBuf;

use aptindex::signature::Keyring;
use testkit::{AptEnv, PackageSpec, Repo, TestKey, Upstream};

/// A generated upstream, its server and a mirror root with a config.
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
            .generated_packages(3, 500)
            .package(PackageSpec::new("tool", "1.0").size(3000))
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
[mirror.m]
url = "{}/"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg"
"#,
            tmp.path().join("mirror").display(),
            up.url()
        );
        std::fs::write(tmp.path().join("mirror.toml"), config).unwrap();
        Bed { tmp, repo, up }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("mirror")
    }

    fn run(&self) -> u8 {
        testkit::mirror::run(&self.tmp.path().join("mirror.toml"), &[])
    }

    /// This mirror's entry of the run summary.
    fn summary(&self) -> serde_json::Value {
        let data = std::fs::read(self.dir().join("apt-mirror-summary.json")).unwrap();
        let all: serde_json::Value = serde_json::from_slice(&data).unwrap();
        all["mirrors"]["m"].clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.summary()["warnings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The current snapshot's `info.json`.
    fn info(&self) -> serde_json::Value {
        let tree = self
            .dir()
            .join(std::fs::read_link(self.dir().join("m")).unwrap());
        let data = std::fs::read(tree.parent().unwrap().join("info.json")).unwrap();
        serde_json::from_slice(&data).unwrap()
    }

    fn upstream_file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.repo.suite_dir("stable").join(name)).unwrap()
    }

    fn mirrored(&self, name: &str) -> PathBuf {
        self.dir().join("m/dists/stable").join(name)
    }

    fn keyring(&self) -> Keyring {
        Keyring::from_files(&[self.tmp.path().join("key.gpg")]).unwrap()
    }

    /// Every Release file the snapshot publishes verifies with the key:
    /// InRelease on its own, Release + Release.gpg as a pair, a Release
    /// without Release.gpg only as InRelease's text.
    fn assert_published_verify(&self) {
        let keyring = self.keyring();
        let read = |n: &str| std::fs::read(self.mirrored(n)).ok();
        let in_text = read("InRelease").map(|d| keyring.verify_clearsigned(&d).unwrap().0);
        match (read("Release"), read("Release.gpg")) {
            (Some(r), Some(g)) => {
                keyring.verify_detached(&r, &g).unwrap();
            }
            (Some(r), None) => {
                let t = in_text.expect("a Release without Release.gpg needs InRelease");
                let trim = |b: &[u8]| b.strip_suffix(b"\n").unwrap_or(b).to_vec();
                assert!(trim(&r) == trim(&t), "Release is not InRelease's text");
            }
            (None, Some(_)) => panic!("Release.gpg published without Release"),
            (None, None) => assert!(in_text.is_some(), "no Release file published"),
        }
    }
}

/// `apt-get update` from the mirror root (served by a testkit server, which
/// follows the snapshot and pool symlinks), then an install of `tool`.
fn apt_installs_tool(bed: &Bed, mirror: &Upstream) -> AptEnv {
    let mut apt = AptEnv::with_key(bed.repo.key()).unwrap();
    apt.add_source(&format!("{}/m", mirror.url()), "stable", &["main"])
        .unwrap();
    apt.update().unwrap().ok_clean().unwrap();
    apt.install_download_only(&["tool"])
        .unwrap()
        .ok_clean()
        .unwrap();
    let got = std::fs::read(apt.archives_dir().join("tool_1.0_amd64.deb")).unwrap();
    let want = std::fs::read(
        bed.repo
            .root()
            .join(&bed.repo.package("tool").unwrap().pool_path),
    )
    .unwrap();
    assert_eq!(got, want);
    apt
}

#[test]
fn stale_release_gpg_is_mirrored_with_a_warning_and_apt_installs() {
    let bed = Bed::new();
    bed.repo.stale_release_gpg("stable").unwrap();
    let gpg_url = format!("{}/dists/stable/Release.gpg", bed.up.url());

    assert_eq!(bed.run(), 0, "{}", bed.summary());
    assert_eq!(bed.summary()["result"], "updated");
    let warnings = bed.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with(&format!("{gpg_url}: BAD signature"))
                && w.ends_with("not published")),
        "{warnings:?}"
    );
    // InRelease as fetched; Release, the text it signs; no Release.gpg.
    assert_eq!(
        std::fs::read(bed.mirrored("InRelease")).unwrap(),
        bed.upstream_file("InRelease")
    );
    assert_eq!(
        std::fs::read(bed.mirrored("Release")).unwrap(),
        bed.upstream_file("Release")
    );
    assert!(!bed.mirrored("Release.gpg").exists());
    bed.assert_published_verify();
    let info = bed.info();
    assert!(info["files"].get("dists/stable/Release.gpg").is_none());
    assert!(
        info["withheld"]["dists/stable/Release.gpg"]["reason"]
            .as_str()
            .unwrap()
            .contains("BAD signature"),
        "{}",
        info["withheld"]
    );

    // The same upstream again: unchanged (what was fetched is compared, not
    // what was published), nothing but the Release files fetched.
    let before = std::fs::read_link(bed.dir().join("m")).unwrap();
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    assert_eq!(bed.summary()["result"], "unchanged");
    assert_eq!(std::fs::read_link(bed.dir().join("m")).unwrap(), before);
    assert_eq!(bed.up.requests_total(), 3, "{:?}", bed.up.request_log());
    assert!(
        bed.warnings()
            .iter()
            .any(|w| w.starts_with(&gpg_url) && w.contains("still not published")),
        "{:?}",
        bed.warnings()
    );

    // The real apt updates from the mirror and installs.
    let mirror = Upstream::serve(bed.dir()).unwrap();
    let apt = apt_installs_tool(&bed, &mirror);
    assert_eq!(mirror.requests("/m/dists/stable/Release.gpg"), 0);

    // Upstream serves a good Release.gpg again: published with its Release.
    bed.repo.resign("stable").unwrap();
    assert_eq!(bed.run(), 0);
    assert_eq!(bed.summary()["result"], "updated");
    assert!(bed.warnings().is_empty(), "{:?}", bed.warnings());
    assert_eq!(
        std::fs::read(bed.mirrored("Release.gpg")).unwrap(),
        bed.upstream_file("Release.gpg")
    );
    bed.assert_published_verify();
    assert!(bed.info().get("withheld").is_none());
    apt.update().unwrap().ok_clean().unwrap();
}

#[test]
fn bad_inrelease_falls_back_to_a_good_pair() {
    let bed = Bed::new();
    // InRelease signed by a key the mirror does not trust.
    let dir = bed.repo.suite_dir("stable");
    let release = std::fs::read(dir.join("Release")).unwrap();
    std::fs::write(
        dir.join("InRelease"),
        TestKey::shared_other().clearsign(&release).unwrap(),
    )
    .unwrap();

    assert_eq!(bed.run(), 0, "{}", bed.summary());
    let in_url = format!("{}/dists/stable/InRelease", bed.up.url());
    assert!(
        bed.warnings()
            .iter()
            .any(|w| w.starts_with(&format!("{in_url}: no signature by a key in the keyring"))),
        "{:?}",
        bed.warnings()
    );
    assert!(!bed.mirrored("InRelease").exists());
    assert_eq!(std::fs::read(bed.mirrored("Release")).unwrap(), release);
    bed.assert_published_verify();

    // apt finds no InRelease and uses Release + Release.gpg.
    let mirror = Upstream::serve(bed.dir()).unwrap();
    apt_installs_tool(&bed, &mirror);
    assert!(mirror.requests("/m/dists/stable/Release.gpg") >= 1);
}

#[test]
fn bad_inrelease_and_stale_release_gpg_publish_nothing() {
    let bed = Bed::new();
    let dir = bed.repo.suite_dir("stable");
    let release = std::fs::read(dir.join("Release")).unwrap();
    std::fs::write(
        dir.join("InRelease"),
        TestKey::shared_other().clearsign(&release).unwrap(),
    )
    .unwrap();
    bed.repo.stale_release_gpg("stable").unwrap();

    assert_eq!(bed.run(), 1);
    assert!(!bed.dir().join("m").exists());
    let err = bed.summary()["error"].as_str().unwrap().to_string();
    for name in ["InRelease", "Release.gpg"] {
        let url = format!("{}/dists/stable/{name}", bed.up.url());
        assert!(err.contains(&url), "{err}");
    }
    assert!(err.contains("BAD signature"), "{err}");
    assert_eq!(bed.up.requests_matching("/pool/*"), 0);
}
