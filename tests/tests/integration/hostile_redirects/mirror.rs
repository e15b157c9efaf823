//! apt-mirror against redirecting upstreams: a pool file redirected to
//! another port fails the run (the old snapshot stays, the target is never
//! asked); redirected within the upstream, or to a `redirect_hosts` entry,
//! it is followed without a `Referer` and the run succeeds.

use std::path::PathBuf;
use testkit::{PackageSpec, Repo, Times, Upstream};

/// A signed generated repository, its upstream, a mirror root.
struct Bed {
    tmp: tempfile::TempDir,
    repo: Repo,
    up: Upstream,
}

impl Bed {
    fn new() -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::builder(tmp.path().join("upstream"))
            .generated_packages(3, 500)
            .build()
            .unwrap();
        let up = Upstream::serve(repo.root()).unwrap();
        repo.key()
            .write_public(&tmp.path().join("key.gpg"))
            .unwrap();
        Bed { tmp, repo, up }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("mirror")
    }

    /// Runs apt-mirror for mirror `m` with `extra` in its table.
    fn run(&self, extra: &str) -> u8 {
        let config = self.tmp.path().join("mirror.toml");
        let text = format!(
            "dir = \"{}\"\n[http]\nconnect_timeout = 2\nread_timeout = 2\nretries = 1\nretry_delay = 0.05\n[mirror.m]\nurl = \"{}/\"\nsuites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"key.gpg\"\n{extra}\n",
            self.dir().display(),
            self.up.url(),
        );
        std::fs::write(&config, text).unwrap();
        testkit::mirror::run(&config, &[])
    }

    fn link_target(&self) -> PathBuf {
        std::fs::read_link(self.dir().join("m")).unwrap()
    }

    fn error(&self) -> String {
        let data = std::fs::read(self.dir().join("apt-mirror-summary.json")).unwrap();
        let s: serde_json::Value = serde_json::from_slice(&data).unwrap();
        s["mirrors"]["m"]["error"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Publishes pkg0001 2.0; its pool path and bytes.
    fn new_version(&mut self) -> (String, Vec<u8>) {
        self.repo.replace(PackageSpec::new("pkg0001", "2.0"));
        self.repo.publish().unwrap();
        let p = self
            .repo
            .packages()
            .iter()
            .find(|p| p.name() == "pkg0001")
            .unwrap();
        let path = p.pool_path.clone();
        let data = std::fs::read(self.repo.root().join(&path)).unwrap();
        (path, data)
    }
}

#[test]
fn mirror_refuses_a_redirect_to_another_port_and_follows_one_within() {
    let mut bed = Bed::new();
    assert_eq!(bed.run(""), 0);
    let target = bed.link_target();
    let (path, data) = bed.new_version();
    let other = Upstream::serve(bed.repo.root()).unwrap();
    let location = format!("{}/{path}", other.url());
    bed.up
        .redirect(&format!("/{path}"), &location, Times::Always);

    assert_eq!(bed.run(""), 1);
    assert_eq!(bed.link_target(), target, "the old snapshot stays");
    assert_eq!(other.requests_total(), 0, "{:?}", other.request_log());
    let err = bed.error();
    assert!(
        err.contains("redirect refused") && err.contains(&location),
        "{err}"
    );

    // Within the upstream, to another path: followed, verified, published.
    bed.up.clear_faults();
    std::fs::create_dir_all(bed.repo.root().join("moved")).unwrap();
    std::fs::write(bed.repo.root().join("moved/pkg.deb"), &data).unwrap();
    bed.up
        .redirect(&format!("/{path}"), "/moved/pkg.deb", Times::Always);
    assert_eq!(bed.run(""), 0, "{}", bed.error());
    assert_ne!(bed.link_target(), target);
    assert_eq!(
        std::fs::read(bed.dir().join("m").join(&path)).unwrap(),
        data
    );
    let log = bed.up.request_log();
    let hop = log.iter().find(|r| r.path == "/moved/pkg.deb").unwrap();
    assert_eq!(hop.referer, None, "a Referer reached the redirect target");
    assert_eq!(other.requests_total(), 0);
}

#[test]
fn mirror_follows_redirect_hosts_and_verifies_what_they_bring() {
    let mut bed = Bed::new();
    assert_eq!(bed.run(""), 0);
    let target = bed.link_target();
    let (path, data) = bed.new_version();
    let cdn = tempfile::tempdir().unwrap();
    let other = Upstream::serve(cdn.path()).unwrap();
    let allow = format!("redirect_hosts = [\"127.0.0.1:{}\"]", other.port());
    bed.up.redirect(
        &format!("/{path}"),
        &format!("{}/cdn/pkg.deb", other.url()),
        Times::Always,
    );
    // The allowed host serves corrupt bytes: verification refuses them.
    let mut bad = data.clone();
    bad[10] ^= 1;
    other.put("/cdn/pkg.deb", &bad).unwrap();
    assert_eq!(bed.run(&allow), 1);
    assert_eq!(bed.link_target(), target);
    assert!(bed.error().contains("mismatch"), "{}", bed.error());
    // The right bytes: published.
    other.put("/cdn/pkg.deb", &data).unwrap();
    assert_eq!(bed.run(&allow), 0, "{}", bed.error());
    assert_eq!(
        std::fs::read(bed.dir().join("m").join(&path)).unwrap(),
        data
    );
    assert!(other.requests_total() >= 2);
    assert!(other.request_log().iter().all(|r| r.referer.is_none()));
}
