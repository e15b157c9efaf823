//! End-to-end tests of apt-mirror against in-process upstreams (testkit):
//! full mirror, incremental update, unchanged upstream, faults (corruption,
//! change mid-run, stalls, 5xx), kill -9 and rerun, lock contention, flat
//! repositories, by-hash fallback, path traversal and bad signatures.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::{PackageSpec, Repo, TestKey, Times, Upstream};

/// A test bed: a generated upstream repository, its server, a mirror root.
struct Bed {
    tmp: tempfile::TempDir,
    repo: Arc<Mutex<Repo>>,
    up: Upstream,
}

impl Bed {
    fn new(build: impl FnOnce(testkit::RepoBuilder) -> testkit::RepoBuilder) -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let repo = build(Repo::builder(tmp.path().join("upstream")))
            .build()
            .unwrap();
        let up = Upstream::serve(repo.root()).unwrap();
        repo.key()
            .write_public(&tmp.path().join("key.gpg"))
            .unwrap();
        Bed {
            tmp,
            repo: Arc::new(Mutex::new(repo)),
            up,
        }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("mirror")
    }

    fn config_path(&self) -> PathBuf {
        self.tmp.path().join("mirror.toml")
    }

    /// Writes a config with one mirror `m`; `mirror_extra` is appended to its table.
    fn config(&self, suites: &str, mirror_extra: &str) {
        let text = format!(
            r#"dir = "{dir}"
max_conns = 4
[http]
connect_timeout = 2
read_timeout = 1
retries = 2
retry_delay = 0.05
[mirror.m]
url = "{url}/"
suites = {suites}
{mirror_extra}
"#,
            dir = self.dir().display(),
            url = self.up.url(),
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// The usual config: suite stable, main, amd64, signed.
    fn standard_config(&self) {
        self.config(
            r#"["stable"]"#,
            r#"sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg""#,
        );
    }

    fn run(&self) -> u8 {
        run_args(&self.config_path(), &[])
    }

    fn link_target(&self) -> PathBuf {
        std::fs::read_link(self.dir().join("m")).unwrap()
    }

    /// The `.m.*` entries of the mirror root other than pool generations.
    fn snapshot_dirs(&self) -> Vec<String> {
        self.entries(".m.")
            .into_iter()
            .filter(|n| !n.starts_with(".m.pool-"))
            .collect()
    }

    /// The shared pool generations (`.m.pool-*`).
    fn pool_generations(&self) -> Vec<String> {
        self.entries(".m.pool-")
    }

    fn entries(&self, prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix))
            .collect();
        v.sort();
        v
    }

    fn summary(&self) -> serde_json::Value {
        let data = std::fs::read(self.dir().join("apt-mirror-summary.json")).unwrap();
        serde_json::from_slice(&data).unwrap()
    }

    fn mirrored(&self, path: &str) -> PathBuf {
        self.dir().join("m").join(path)
    }

    /// The files of the current snapshot's `info.json`.
    fn current_info(&self) -> serde_json::Map<String, serde_json::Value> {
        let dir = self.dir().join(self.link_target());
        let info: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.parent().unwrap().join("info.json")).unwrap(),
        )
        .unwrap();
        info["files"].as_object().unwrap().clone()
    }

    /// Checks that the shared pool generations hold exactly the files that the
    /// complete snapshots' `info.json` name under their `pool` symlinks, and
    /// that every snapshot's `pool` is a relative symlink into one.
    fn assert_pool_exact(&self) {
        let mut named = std::collections::BTreeSet::new();
        for snap in self.snapshot_dirs() {
            let dir = self.dir().join(&snap);
            let Ok(data) = std::fs::read(dir.join("info.json")) else {
                continue;
            };
            let link = std::fs::read_link(dir.join("m/pool")).unwrap();
            let link = link.to_string_lossy().to_string();
            let generation = link
                .strip_prefix("../../")
                .and_then(|l| l.strip_suffix("/pool"))
                .unwrap_or_else(|| panic!("{snap}: pool -> {link}"));
            let info: serde_json::Value = serde_json::from_slice(&data).unwrap();
            for path in info["files"].as_object().unwrap().keys() {
                if path.starts_with("pool/") {
                    named.insert(format!("{generation}/{path}"));
                }
            }
        }
        let mut held = std::collections::BTreeSet::new();
        for generation in self.pool_generations() {
            for f in files_under(&self.dir().join(&generation)) {
                held.insert(format!("{generation}/{f}"));
            }
        }
        assert_eq!(held, named, "pool files held vs named by kept snapshots");
    }

    /// Checks every published package and the suite's Release files are in the mirror,
    /// byte-identical to upstream.
    fn assert_complete(&self) {
        let repo = self.repo.lock().unwrap();
        assert!(!repo.packages().is_empty());
        for p in repo.packages() {
            let got = std::fs::read(self.mirrored(&p.pool_path))
                .unwrap_or_else(|e| panic!("{}: {e}", p.pool_path));
            assert_eq!(
                got,
                std::fs::read(repo.root().join(&p.pool_path)).unwrap(),
                "{}",
                p.pool_path
            );
        }
        for suite in &repo.config().suites {
            let d = repo.suite_url_path(suite);
            let rel = if d.is_empty() {
                "InRelease".to_string()
            } else {
                format!("{d}/InRelease")
            };
            assert_eq!(
                std::fs::read(self.mirrored(&rel)).unwrap(),
                std::fs::read(repo.root().join(&rel)).unwrap()
            );
        }
    }
}

fn run_args(config: &Path, ids: &[&str]) -> u8 {
    testkit::mirror::run(config, ids)
}

fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

#[test]
fn full_then_incremental_then_unchanged() {
    let bed = Bed::new(|b| {
        b.by_hash(true)
            .translations(true)
            .sources(true)
            .generated_packages(20, 2000)
            .package(PackageSpec::new("common", "1.0").arch("all"))
    });
    bed.standard_config();

    // Full mirror.
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    let target = bed.link_target();
    assert!(target.is_relative(), "{target:?}");
    assert!(target.to_string_lossy().starts_with(".m.") && target.ends_with("m"));
    assert!(bed
        .dir()
        .join(target.parent().unwrap())
        .join("info.json")
        .is_file());
    assert_eq!(
        bed.up.requests_matching("*/source/*"),
        0,
        "Sources fetched without mirror_source"
    );
    assert!(!bed
        .mirrored("pool/main")
        .join("p/pkg0000")
        .read_dir()
        .unwrap()
        .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".dsc") }));
    // by-hash directories for the indices.
    let bh = bed.mirrored("dists/stable/main/binary-amd64/by-hash/SHA256");
    assert!(
        bh.read_dir().unwrap().count() >= 2,
        "by-hash files in {bh:?}"
    );
    let s = bed.summary();
    assert_eq!(s["mirrors"]["m"]["result"], "updated");
    assert!(s["mirrors"]["m"]["files_downloaded"].as_u64().unwrap() >= 21);
    assert!(
        bed.up.max_in_flight() <= 4,
        "max_conns exceeded: {}",
        bed.up.max_in_flight()
    );

    // Unchanged upstream: only the three Release files are fetched, fast.
    bed.up.reset_counts();
    let t = Instant::now();
    assert_eq!(bed.run(), 0);
    let unchanged = t.elapsed();
    assert_eq!(bed.up.requests_total(), 3, "{:?}", bed.up.request_log());
    assert!(
        unchanged < Duration::from_secs(1),
        "unchanged run took {unchanged:?}"
    );
    assert_eq!(bed.summary()["mirrors"]["m"]["result"], "unchanged");
    assert_eq!(bed.link_target(), target);

    // The upstream changes: one package rebuilt, one new, one removed.
    let old_unchanged = bed.mirrored(
        &bed.repo
            .lock()
            .unwrap()
            .package("pkg0005")
            .unwrap()
            .pool_path
            .clone(),
    );
    let old_inode = inode(&old_unchanged);
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0003", "2.0").size(2000));
        repo.add(PackageSpec::new("newpkg", "1.0")).unwrap();
        repo.remove("pkg0007");
        repo.publish().unwrap();
    }
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(
        bed.up.requests_matching("/pool/*"),
        2,
        "{:?}",
        bed.up.request_log()
    );
    assert_eq!(bed.up.requests_matching("/pool/*pkg0003_2.0*"), 1);
    assert_eq!(bed.up.requests_matching("/pool/*newpkg*"), 1);
    // Unchanged files are hard links to the previous snapshot's.
    assert_eq!(inode(&old_unchanged), old_inode);
    let s = bed.summary();
    // 21 packages - 1 rebuilt - 1 removed = 19 pool files reused.
    assert!(
        s["mirrors"]["m"]["files_reused"].as_u64().unwrap() >= 19,
        "{s}"
    );
    // The previous snapshot is kept (keep = 1) and intact.
    let dirs = bed.snapshot_dirs();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert!(bed.dir().join(&target).join("pool/main/p/pkg0007").is_dir());
    // Files dropped upstream stay one more generation (clients mid-update).
    assert!(bed.mirrored("pool/main/p/pkg0007").is_dir());
    assert!(bed
        .mirrored("pool/main/p/pkg0003/pkg0003_1.0_amd64.deb")
        .is_file());
    // The previous generation's by-hash files were carried over.
    let n = bh.read_dir().unwrap().count();
    assert!(n >= 4, "by-hash now has {n} files");

    // One more update: the oldest snapshot goes.
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0004", "2.0"));
        repo.publish().unwrap();
    }
    assert_eq!(bed.run(), 0);
    let dirs2 = bed.snapshot_dirs();
    assert_eq!(dirs2.len(), 2, "{dirs2:?}");
    assert!(!dirs2.contains(&dirs[0]));
    // The new snapshot no longer names the files dropped two updates ago...
    let current = bed.current_info();
    let dropped = "pool/main/p/pkg0007/pkg0007_1.0_amd64.deb";
    assert!(!current.contains_key(dropped));
    assert!(!current.contains_key("pool/main/p/pkg0003/pkg0003_1.0_amd64.deb"));
    assert!(current.contains_key("pool/main/p/pkg0004/pkg0004_1.0_amd64.deb"));
    assert!(bed
        .mirrored("pool/main/p/pkg0004/pkg0004_1.0_amd64.deb")
        .is_file());
    // ...but the previous snapshot, which clients may still use, does, and
    // the pool shared by both holds exactly what they name.
    assert!(bed.dir().join(&dirs2[0]).join("m").join(dropped).is_file());
    assert_eq!(bed.pool_generations().len(), 1);
    bed.assert_pool_exact();
    // An unchanged file is still the same inode: never copied or re-linked.
    assert_eq!(inode(&old_unchanged), old_inode);

    // Once no kept snapshot names them, they are removed from the pool.
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0006", "2.0"));
        repo.publish().unwrap();
    }
    assert_eq!(bed.run(), 0);
    assert!(!bed.mirrored("pool/main/p/pkg0007").exists());
    assert!(!bed
        .mirrored("pool/main/p/pkg0003/pkg0003_1.0_amd64.deb")
        .exists());
    assert_eq!(bed.snapshot_dirs().len(), 2);
    assert_eq!(bed.pool_generations().len(), 1);
    bed.assert_pool_exact();
    bed.assert_complete();
}

#[test]
fn corrupted_file_keeps_the_current_snapshot() {
    let bed = Bed::new(|b| b.generated_packages(5, 1000));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let target = bed.link_target();
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0001", "2.0"));
        repo.publish().unwrap();
    }
    bed.up.corrupt("/pool/*pkg0001*", Times::Always);
    assert_eq!(bed.run(), 1);
    assert_eq!(bed.link_target(), target);
    assert_eq!(bed.snapshot_dirs().len(), 1, "unfinished snapshot removed");
    let s = bed.summary();
    assert_eq!(s["mirrors"]["m"]["result"], "failed");
    let err = s["mirrors"]["m"]["error"].as_str().unwrap().to_string();
    assert!(err.contains("pkg0001") && err.contains("mismatch"), "{err}");
    // The old tree is still complete.
    assert!(bed
        .mirrored("pool/main/p/pkg0001/pkg0001_1.0_amd64.deb")
        .is_file());

    bed.up.clear_faults();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
}

#[test]
fn corrupted_index_keeps_the_current_snapshot() {
    let bed = Bed::new(|b| b.generated_packages(3, 500));
    bed.standard_config();
    bed.up.corrupt("*/Packages*", Times::Always);
    assert_eq!(bed.run(), 1);
    assert!(!bed.dir().join("m").exists());
    assert!(bed.snapshot_dirs().is_empty());
}

#[test]
fn upstream_change_during_the_run_is_detected() {
    let bed = Bed::new(|b| b.generated_packages(5, 1000));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let target = bed.link_target();
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0002", "2.0"));
        repo.publish().unwrap();
    }
    // While the pool is being fetched, the upstream publishes again.
    let repo = bed.repo.clone();
    bed.up.on_request("/pool/*", 1, move || {
        let mut repo = repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0004", "3.0"));
        repo.publish().unwrap();
    });
    assert_eq!(bed.run(), 1);
    assert!(bed.up.hooks_done());
    assert_eq!(bed.link_target(), target);
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("changed upstream"), "{err}");
    // Next run, with a stable upstream, succeeds.
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
}

#[test]
fn transient_faults_are_retried() {
    let bed = Bed::new(|b| b.generated_packages(4, 3000));
    bed.standard_config();
    bed.up.fail_status("/pool/*pkg0000*", 503, Times::Once);
    bed.up.truncate("/pool/*pkg0001*", 100, Times::Once);
    bed.up.stall("/pool/*pkg0002*", Times::Once);
    bed.up
        .fail_status("/dists/stable/InRelease", 500, Times::Once);
    let t = Instant::now();
    assert_eq!(bed.run(), 0);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    bed.assert_complete();
    assert_eq!(bed.up.requests_matching("/pool/*pkg0002*"), 2);
}

#[test]
fn permanent_stall_fails_without_hanging() {
    let bed = Bed::new(|b| b.generated_packages(2, 1000));
    bed.standard_config();
    bed.up.stall("/pool/*pkg0001*", Times::Always);
    let t = Instant::now();
    assert_eq!(bed.run(), 1);
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("read timeout"), "{err}");
}

/// An upstream whose connects hang (accept queue full, SYNs dropped): each
/// attempt ends at `connect_timeout` (2 s; not at the shorter read timeout),
/// three attempts (`retries = 2`) and the backoff between them, then the run
/// fails naming the connect timeout and publishes nothing.
#[test]
fn hanging_connect_fails_after_the_connect_timeouts() {
    let hole = testkit::Blackhole::new().unwrap();
    let bed = Bed::new(|b| b.generated_packages(1, 100));
    bed.standard_config();
    let text = std::fs::read_to_string(bed.config_path()).unwrap();
    std::fs::write(bed.config_path(), text.replace(&bed.up.url(), &hole.url())).unwrap();
    // connect_timeout × (retries + 1) + retry_delay × (1 + 2), as configured.
    let expected = Duration::from_secs(2) * 3 + Duration::from_millis(150);
    let t = Instant::now();
    assert_eq!(bed.run(), 1);
    let took = t.elapsed();
    eprintln!("hanging connect: failed after {took:?} (expected {expected:?})");
    assert!(
        took >= expected - Duration::from_millis(100) && took < expected + Duration::from_secs(3),
        "{took:?}"
    );
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("connect timeout"), "{err}");
    assert!(bed.snapshot_dirs().is_empty(), "{:?}", bed.snapshot_dirs());
    assert!(std::fs::symlink_metadata(bed.dir().join("m")).is_err());
    assert_eq!(bed.up.requests_total(), 0);
}

#[test]
fn lock_contention_exits_at_once() {
    let bed = Bed::new(|b| b.generated_packages(1, 100));
    bed.standard_config();
    let _held = apt_mirror::lock::RunLock::acquire(&bed.dir()).unwrap();
    let t = Instant::now();
    assert_eq!(bed.run(), apt_mirror::exit::LOCKED);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(bed.up.requests_total(), 0);
}

#[test]
fn unknown_mirror_id_touches_nothing() {
    let bed = Bed::new(|b| b.generated_packages(1, 100));
    bed.standard_config();
    assert_eq!(
        run_args(&bed.config_path(), &["nope"]),
        apt_mirror::exit::CONFIG
    );
    assert!(!bed.dir().exists());
    assert_eq!(bed.up.requests_total(), 0);
    assert_eq!(run_args(&bed.config_path(), &["m"]), 0);
}

#[test]
fn flat_repository() {
    let bed = Bed::new(|b| b.suite("flat/").generated_packages(3, 700));
    bed.config(r#"["flat/"]"#, r#"keyring = "key.gpg""#);
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert!(bed.mirrored("flat/Packages.gz").is_file());
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    assert_eq!(bed.up.requests_total(), 3);
}

#[test]
fn by_hash_first_with_fallback_to_plain_paths() {
    let bed = Bed::new(|b| b.by_hash(true).sha512(true).generated_packages(2, 500));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert!(bed.up.requests_matching("*/by-hash/SHA512/*") > 0);
    assert_eq!(
        bed.up
            .requests_matching("/dists/stable/main/binary-amd64/Packages.xz"),
        0
    );

    // by-hash missing upstream: fall back to the plain paths.
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0001", "2.0"));
        repo.publish().unwrap();
    }
    bed.up.fail_status("*/by-hash/*", 404, Times::Always);
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert!(
        bed.up
            .requests_matching("/dists/stable/main/binary-amd64/Packages*")
            > 0
    );
    // The mirror publishes its own by-hash files anyway.
    assert!(bed
        .mirrored("dists/stable/main/binary-amd64/by-hash/SHA256")
        .is_dir());
}

#[test]
fn bad_signature_is_refused() {
    let bed = Bed::new(|b| b.key(TestKey::shared_other()).generated_packages(2, 100));
    // Trust the shared key, not the one that signed.
    TestKey::shared()
        .write_public(&bed.tmp.path().join("key.gpg"))
        .unwrap();
    bed.standard_config();
    assert_eq!(bed.run(), 1);
    assert!(!bed.dir().join("m").exists());
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("InRelease"), "{err}");
    assert_eq!(bed.up.requests_matching("/pool/*"), 0);
}

#[test]
fn release_tampered_against_inrelease_is_not_published() {
    // As apt: a good InRelease decides; the tampered Release (its
    // Release.gpg fails) is a warning, and neither is published.
    let bed = Bed::new(|b| b.generated_packages(2, 100));
    bed.standard_config();
    let release = bed.repo.lock().unwrap().root().join("dists/stable/Release");
    let text = std::fs::read(&release).unwrap();
    let s = String::from_utf8(text)
        .unwrap()
        .replacen("Testkit", "Evil", 1);
    std::fs::write(&release, s).unwrap();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert!(bed.mirrored("dists/stable/InRelease").is_file());
    assert!(!bed.mirrored("dists/stable/Release").exists());
    assert!(!bed.mirrored("dists/stable/Release.gpg").exists());
    let warnings = bed.summary()["mirrors"]["m"]["warnings"].to_string();
    for name in ["Release", "Release.gpg"] {
        let url = format!("{}/dists/stable/{name}: ", bed.up.url());
        assert!(warnings.contains(&url), "{warnings}");
    }
}

#[test]
fn release_tampered_without_inrelease_is_refused() {
    let bed = Bed::new(|b| b.generated_packages(2, 100));
    bed.standard_config();
    let dir = bed.repo.lock().unwrap().root().join("dists/stable");
    std::fs::remove_file(dir.join("InRelease")).unwrap();
    let text = std::fs::read(dir.join("Release")).unwrap();
    let s = String::from_utf8(text)
        .unwrap()
        .replacen("Testkit", "Evil", 1);
    std::fs::write(dir.join("Release"), s).unwrap();
    assert_eq!(bed.run(), 1);
    assert!(!bed.dir().join("m").exists());
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("Release.gpg"), "{err}");
    assert!(err.contains("BAD signature"), "{err}");
}

/// A hand-made unsigned repository whose Packages names `filename`.
fn handmade_repo(root: &Path, filename: &str) {
    use aptindex::checksum::{Checksums, HashKind};
    let deb = b"not really a deb";
    let sums = Checksums::of_bytes(deb);
    let packages = format!(
        "Package: evil\nVersion: 1\nArchitecture: amd64\nFilename: {filename}\nSize: {}\nSHA256: {}\n\n",
        deb.len(),
        sums.hex(HashKind::Sha256).unwrap()
    );
    let dir = root.join("dists/s/main/binary-amd64");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Packages"), &packages).unwrap();
    let p = Checksums::of_bytes(packages.as_bytes());
    let release = format!(
        "Suite: s\nCodename: s\nComponents: main\nArchitectures: amd64\nSHA256:\n {} {} main/binary-amd64/Packages\n",
        p.hex(HashKind::Sha256).unwrap(),
        packages.len()
    );
    std::fs::write(root.join("dists/s/Release"), release).unwrap();
    std::fs::create_dir_all(root.join("pool")).unwrap();
    std::fs::write(root.join("pool/evil.deb"), deb).unwrap();
}

#[test]
fn path_traversal_entries_are_rejected() {
    for filename in [
        "../../outside.deb",
        "/etc/evil.deb",
        "pool/../../../outside.deb",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("upstream");
        handmade_repo(&root, filename);
        let up = Upstream::serve(&root).unwrap();
        let dir = tmp.path().join("a/b/mirror");
        let config = tmp.path().join("mirror.toml");
        std::fs::write(
            &config,
            format!(
                "dir = \"{}\"\n[mirror.m]\nurl = \"{}\"\nsuites = [\"s\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\n",
                dir.display(),
                up.url()
            ),
        )
        .unwrap();
        assert_eq!(run_args(&config, &[]), 1, "{filename}");
        assert!(!dir.join("m").exists());
        assert!(!tmp.path().join("a/outside.deb").exists());
        assert!(!tmp.path().join("outside.deb").exists());
        assert_eq!(up.requests_matching("*evil*"), 0);
        assert_eq!(up.requests_matching("*outside*"), 0);
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("apt-mirror-summary.json")).unwrap())
                .unwrap();
        let err = summary["mirrors"]["m"]["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(err.contains("unsafe"), "{err}");
    }
    // The same hand-made repository with a sane path mirrors fine (unsigned: warning only).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("upstream");
    handmade_repo(&root, "pool/evil.deb");
    let up = Upstream::serve(&root).unwrap();
    let config = tmp.path().join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "dir = \"{}\"\n[mirror.m]\nurl = \"{}\"\nsuites = [\"s\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\n",
            tmp.path().join("mirror").display(),
            up.url()
        ),
    )
    .unwrap();
    assert_eq!(run_args(&config, &[]), 0);
    assert!(tmp.path().join("mirror/m/pool/evil.deb").is_file());
}

/// Environment variable that turns this test executable into apt-mirror
/// (see [`child_process_entry`]); holds the arguments separated by `\x1f`.
const CHILD_ENV: &str = "APT_MIRROR_TEST_CHILD_ARGS";

/// Not a test: when this executable is re-run with [`CHILD_ENV`], this
/// "test" runs apt-mirror's `main` in that separate process (which the parent
/// can kill -9) and exits with its status.
#[test]
fn child_process_entry() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let argv =
        std::iter::once("apt-mirror".to_string()).chain(args.split('\x1f').map(str::to_string));
    std::process::exit(i32::from(apt_mirror::main_from_args(argv)));
}

/// A command that runs apt-mirror with `args` in a child process.
fn apt_mirror_command(args: &[&std::ffi::OsStr]) -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--exact",
        "mirror_e2e::child_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(
        CHILD_ENV,
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join("\x1f"),
    );
    cmd
}

/// Mirrors `n` packages of `size` bytes, changes them all upstream, slows the
/// pool down, and starts a second run in a child process; returns once that
/// run has asked for `pool_requests` pool files, with the child and the
/// snapshot that was current before it.
fn start_interrupted_update(
    n: usize,
    size: usize,
    pool_requests: usize,
) -> (Bed, std::process::Child, std::path::PathBuf) {
    let bed = Bed::new(|b| b.generated_packages(n, size));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let target = bed.link_target();
    {
        let mut repo = bed.repo.lock().unwrap();
        for i in 0..n {
            repo.replace(PackageSpec::new(&format!("pkg{i:04}"), "2.0").size(size));
        }
        repo.publish().unwrap();
    }
    bed.up
        .delay("/pool/*", Duration::from_millis(300), Times::Always);
    bed.up.reset_counts();
    let child = apt_mirror_command(&["-f".as_ref(), bed.config_path().as_os_str()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while bed.up.requests_matching("/pool/*") < pool_requests {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the child never reached the pool"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (bed, child, target)
}

#[test]
fn kill_9_mid_run_then_rerun() {
    let (bed, mut child, target) = start_interrupted_update(30, 5000, 6);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Killed: the current snapshot is untouched, an unfinished one is left over.
    assert_eq!(bed.link_target(), target);
    let leftovers = bed.snapshot_dirs();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");

    bed.up.clear_faults();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    let old = target.parent().unwrap().to_string_lossy().to_string();
    let unfinished: Vec<&String> = leftovers.iter().filter(|d| **d != old).collect();
    assert_eq!(unfinished.len(), 1);
    let after = bed.snapshot_dirs();
    assert_eq!(after.len(), 2, "current + one previous: {after:?}");
    assert!(after.contains(&old), "{after:?}");
    assert!(
        !after.contains(unfinished[0]),
        "leftover not removed: {after:?}"
    );
}

#[test]
fn kill_9_leftovers_in_the_shared_pool_are_removed() {
    let (bed, mut child, target) = start_interrupted_update(30, 5000, 10);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(bed.link_target(), target);
    // The killed run had added verified files to the shared pool (never a
    // partial one: those are in its own snapshot directory).
    let generation = bed.dir().join(&bed.pool_generations()[0]);
    let added = |version: &str| {
        files_under(&generation)
            .into_iter()
            .filter(|f| f.contains(&format!("_{version}_")))
            .count()
    };
    assert!(added("2.0") > 0, "{:?}", files_under(&generation));
    assert!(!files_under(&generation).iter().any(|f| f.contains(".part")));

    // Meanwhile the upstream moves on: what the killed run fetched is not needed.
    {
        let mut repo = bed.repo.lock().unwrap();
        for i in 0..30 {
            repo.replace(PackageSpec::new(&format!("pkg{i:04}"), "3.0").size(5000));
        }
        repo.publish().unwrap();
    }
    bed.up.clear_faults();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(added("2.0"), 0, "leftovers of the killed run kept");
    assert_eq!(added("3.0"), 30);
    assert_eq!(bed.snapshot_dirs().len(), 2, "{:?}", bed.snapshot_dirs());
    assert_eq!(bed.pool_generations().len(), 1);
    bed.assert_pool_exact();
}

#[test]
fn rebuilt_package_under_the_same_name_starts_a_new_pool_generation() {
    let bed = Bed::new(|b| b.generated_packages(5, 1000));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let first = bed.link_target();
    assert_eq!(bed.pool_generations().len(), 1);
    let rebuilt = "pool/main/p/pkg0002/pkg0002_1.0_amd64.deb";
    let unchanged = "pool/main/p/pkg0001/pkg0001_1.0_amd64.deb";
    let old_bytes = std::fs::read(bed.mirrored(rebuilt)).unwrap();
    let unchanged_inode = inode(&bed.mirrored(unchanged));
    // Same file name, other bytes (Debian forbids it; other repositories do it).
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0002", "1.0").seed(7).size(1200));
        repo.publish().unwrap();
    }
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_ne!(std::fs::read(bed.mirrored(rebuilt)).unwrap(), old_bytes);
    // Only the rebuilt file was downloaded; the others are hard links.
    assert_eq!(
        bed.up.requests_matching("/pool/*"),
        1,
        "{:?}",
        bed.up.request_log()
    );
    assert_eq!(inode(&bed.mirrored(unchanged)), unchanged_inode);
    // The previous snapshot, which clients may still use, keeps the old bytes.
    assert_eq!(
        std::fs::read(bed.dir().join(&first).join(rebuilt)).unwrap(),
        old_bytes
    );
    let generations = bed.pool_generations();
    assert_eq!(generations.len(), 2, "{generations:?}");
    bed.assert_pool_exact();

    // Next update: the first snapshot falls out of `keep`, its generation goes.
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0004", "2.0"));
        repo.publish().unwrap();
    }
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(bed.up.requests_matching("/pool/*"), 1);
    assert_eq!(bed.pool_generations(), generations[1..]);
    assert_eq!(inode(&bed.mirrored(unchanged)), unchanged_inode);
    bed.assert_pool_exact();
}

#[test]
fn pool_file_removed_behind_our_back_is_placed_again() {
    let bed = Bed::new(|b| b.generated_packages(4, 800));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let lost = "pool/main/p/pkg0001/pkg0001_1.0_amd64.deb";
    std::fs::remove_file(bed.mirrored(lost)).unwrap();
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0003", "2.0"));
        repo.publish().unwrap();
    }
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(bed.up.requests_matching("/pool/*pkg0001*"), 1);
    assert_eq!(bed.up.requests_matching("/pool/*"), 2);
    bed.assert_pool_exact();
}

#[test]
fn mirror_written_by_the_previous_version_is_migrated() {
    let bed = Bed::new(|b| b.generated_packages(6, 1500));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    // The previous version's layout: every snapshot a full tree, no shared pool.
    let first = bed.link_target();
    let tree = bed.dir().join(&first);
    let generation = bed.dir().join(&bed.pool_generations()[0]);
    std::fs::remove_file(tree.join("pool")).unwrap();
    std::fs::rename(generation.join("pool"), tree.join("pool")).unwrap();
    std::fs::remove_dir(&generation).unwrap();
    let unchanged = "pool/main/p/pkg0001/pkg0001_1.0_amd64.deb";
    let unchanged_inode = inode(&tree.join(unchanged));
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0004", "2.0"));
        repo.publish().unwrap();
    }
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    // Reused without download or copy: hard links into the new shared pool.
    assert_eq!(bed.up.requests_matching("/pool/*"), 1);
    assert_eq!(inode(&bed.mirrored(unchanged)), unchanged_inode);
    assert_eq!(bed.pool_generations().len(), 1);
    assert!(std::fs::symlink_metadata(bed.mirrored("pool"))
        .unwrap()
        .file_type()
        .is_symlink());
    // The old full tree is kept (keep = 1), complete.
    assert!(std::fs::symlink_metadata(tree.join("pool"))
        .unwrap()
        .is_dir());
    assert!(tree.join(unchanged).is_file());

    // The next update removes it; the pool holds exactly what is named.
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0005", "2.0"));
        repo.publish().unwrap();
    }
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert!(!bed.dir().join(first.parent().unwrap()).exists());
    assert_eq!(bed.snapshot_dirs().len(), 2);
    bed.assert_pool_exact();
}

#[test]
fn check_config_and_exit_codes_in_a_child_process() {
    let bed = Bed::new(|b| b.generated_packages(1, 100));
    bed.standard_config();
    let out = apt_mirror_command(&[
        "--check-config".as_ref(),
        "-f".as_ref(),
        bed.config_path().as_os_str(),
    ])
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!bed.dir().exists());
    // A bad key: the error names the file, the line and the key.
    std::fs::write(
        bed.config_path(),
        "dir = \"/x\"\n[mirror.m]\nurl = \"http://h/\"\nsuits = []\n",
    )
    .unwrap();
    let out = apt_mirror_command(&[
        "--check-config".as_ref(),
        "-f".as_ref(),
        bed.config_path().as_os_str(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mirror.toml:4:") && err.contains("suits"),
        "{err}"
    );
    // A real run prints one summary line per mirror.
    bed.standard_config();
    let out = apt_mirror_command(&["-f".as_ref(), bed.config_path().as_os_str()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("mirror m: 4 files downloaded, 0 reused") && stdout.contains("updated"),
        "{stdout}"
    );
}

#[test]
fn one_failing_mirror_does_not_stop_the_others() {
    let bed = Bed::new(|b| b.generated_packages(3, 500));
    let text = format!(
        r#"dir = "{dir}"
[mirror.m]
url = "{url}"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg"
[mirror.broken]
url = "{url}/nothing-here"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
"#,
        dir = bed.dir().display(),
        url = bed.up.url()
    );
    std::fs::write(bed.config_path(), text).unwrap();
    assert_eq!(bed.run(), 1);
    bed.assert_complete();
    let s = bed.summary();
    assert_eq!(s["ok"], false);
    assert_eq!(s["mirrors"]["m"]["result"], "updated");
    assert_eq!(s["mirrors"]["broken"]["result"], "failed");
    assert!(s["mirrors"]["broken"]["last_success"].is_null());
    assert!(!bed.dir().join("broken").exists());
    // Only "m" selected: succeeds, and the summary keeps "broken"'s last entry.
    assert_eq!(run_args(&bed.config_path(), &["m"]), 0);
    let s = bed.summary();
    assert_eq!(s["ok"], true);
    assert_eq!(s["mirrors"]["m"]["result"], "unchanged");
    assert_eq!(s["mirrors"]["broken"]["result"], "failed");
}

#[test]
fn sigterm_mid_run_keeps_the_current_snapshot_and_cleans_up() {
    let (bed, mut child, target) = start_interrupted_update(20, 2000, 4);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t = Instant::now();
    let code = child.wait().unwrap().code();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?} to stop",
        t.elapsed()
    );
    assert_eq!(code, Some(1));
    assert_eq!(bed.link_target(), target);
    assert_eq!(
        bed.snapshot_dirs().len(),
        1,
        "unfinished snapshot removed: {:?}",
        bed.snapshot_dirs()
    );
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("interrupted"), "{err}");
}

/// Publishes a change but leaves the previous Release + Release.gpg in place,
/// so that Release and InRelease (both validly signed) disagree.
fn make_release_and_inrelease_disagree(bed: &Bed) -> Vec<u8> {
    let mut repo = bed.repo.lock().unwrap();
    let dir = repo.root().join("dists/stable");
    let release = std::fs::read(dir.join("Release")).unwrap();
    let gpg = std::fs::read(dir.join("Release.gpg")).unwrap();
    repo.add(PackageSpec::new("extra", "1.0")).unwrap();
    repo.publish().unwrap();
    std::fs::write(dir.join("Release"), &release).unwrap();
    std::fs::write(dir.join("Release.gpg"), gpg).unwrap();
    release
}

#[test]
fn release_and_inrelease_disagreeing_are_both_kept_with_by_hash() {
    let bed = Bed::new(|b| b.by_hash(true).generated_packages(3, 500));
    bed.standard_config();
    let old_release = make_release_and_inrelease_disagree(&bed);
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(
        std::fs::read(bed.mirrored("dists/stable/Release")).unwrap(),
        old_release
    );
    // The older Release's Packages is served by hash.
    let text = String::from_utf8(old_release).unwrap();
    let sha = text
        .lines()
        .skip_while(|l| !l.starts_with("SHA256:"))
        .skip(1)
        .find(|l| l.ends_with("main/binary-amd64/Packages.gz"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(bed
        .mirrored(&format!(
            "dists/stable/main/binary-amd64/by-hash/SHA256/{sha}"
        ))
        .is_file());
}

#[test]
fn release_and_inrelease_disagreeing_without_by_hash_uses_inrelease() {
    // As apt does: the verified InRelease decides; the other (validly
    // signed) pair is a warning naming its URL and is not published.
    let bed = Bed::new(|b| b.generated_packages(3, 500));
    bed.standard_config();
    make_release_and_inrelease_disagree(&bed);
    assert_eq!(bed.run(), 0);
    let upstream = bed.repo.lock().unwrap().root().join("dists/stable");
    assert_eq!(
        std::fs::read(bed.mirrored("dists/stable/InRelease")).unwrap(),
        std::fs::read(upstream.join("InRelease")).unwrap()
    );
    assert!(!bed.mirrored("dists/stable/Release").exists());
    assert!(!bed.mirrored("dists/stable/Release.gpg").exists());
    let warnings = bed.summary()["mirrors"]["m"]["warnings"].to_string();
    assert!(
        warnings.contains("dists/stable/Release:") && warnings.contains("by-hash"),
        "{warnings}"
    );
    // The package only the new InRelease lists is mirrored.
    assert!(std::fs::read_dir(bed.mirrored("pool/main/e/extra"))
        .unwrap()
        .next()
        .is_some());
}

#[test]
fn snapshot_without_info_json_is_reused_after_hashing() {
    // E.g. a tree left by go-apt-mirror: same layout, no (compatible) info.json.
    let bed = Bed::new(|b| b.generated_packages(6, 1500));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let target = bed.dir().join(bed.link_target());
    std::fs::remove_file(target.parent().unwrap().join("info.json")).unwrap();
    // A damaged file of the old tree (same size) must not be reused.
    let damaged = target.join("pool/main/p/pkg0002/pkg0002_1.0_amd64.deb");
    let len = std::fs::metadata(&damaged).unwrap().len() as usize;
    std::fs::remove_file(&damaged).unwrap();
    std::fs::write(&damaged, vec![0u8; len]).unwrap();
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0004", "2.0"));
        repo.publish().unwrap();
    }
    bed.up.reset_counts();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(
        bed.up.requests_matching("/pool/*"),
        2,
        "{:?}",
        bed.up.request_log()
    );
    assert_eq!(bed.up.requests_matching("/pool/*pkg0002*"), 1);
    assert_eq!(bed.up.requests_matching("/pool/*pkg0004*"), 1);
}

#[test]
fn https_upstream_with_ssl_cert_file() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("upstream"))
        .generated_packages(2, 300)
        .build()
        .unwrap();
    let up = Upstream::serve_https(repo.root()).unwrap();
    repo.key()
        .write_public(&tmp.path().join("key.gpg"))
        .unwrap();
    let config = tmp.path().join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "dir = \"{}\"\n[http]\nretries = 0\n[mirror.m]\nurl = \"{}\"\nsuites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"key.gpg\"\n",
            tmp.path().join("mirror").display(),
            up.url()
        ),
    )
    .unwrap();
    // Without the test CA the upstream is refused...
    let out = apt_mirror_command(&["-f".as_ref(), config.as_os_str()])
        .env("SSL_CERT_FILE", tmp.path().join("no-such-ca.pem"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ...with it (SSL_CERT_FILE), the mirror is made.
    let out = apt_mirror_command(&["-f".as_ref(), config.as_os_str()])
        .env("SSL_CERT_FILE", up.ca_cert_path().unwrap())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in repo.packages() {
        assert!(tmp.path().join("mirror/m").join(&p.pool_path).is_file());
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn selection_follows_the_configuration() {
    let bed = Bed::new(|b| {
        b.components(&["main", "contrib"])
            .architectures(&["amd64", "i386"])
            .sources(true)
            .translations(true)
            .languages(&["en", "de"])
            .contents(true)
            .generated_packages(2, 300)
            .package(PackageSpec::new("only386", "1.0").arch("i386"))
            .package(PackageSpec::new("everywhere", "1.0").arch("all"))
            .package(PackageSpec::new("contribpkg", "1.0").component("contrib"))
    });
    bed.config(
        r#"["stable"]"#,
        r#"sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg"
mirror_source = true
languages = ["en"]
contents = false"#,
    );
    assert_eq!(bed.run(), 0);
    for pattern in [
        "*/binary-i386/*",
        "/dists/stable/contrib/*",
        "*Translation-de*",
        "*Contents*",
        "*only386*.deb",
        "*contribpkg*",
    ] {
        assert_eq!(
            bed.up.requests_matching(pattern),
            0,
            "{pattern}: {:?}",
            bed.up.request_log()
        );
    }
    assert!(
        bed.up
            .requests_matching("/dists/stable/main/source/Sources*")
            > 0
    );
    let files = files_under(&bed.mirrored(""));
    let has = |suffix: &str| files.iter().any(|f| f.ends_with(suffix));
    assert!(has(".dsc"), "{files:?}");
    assert!(has("main/i18n/Translation-en"), "{files:?}");
    assert!(has("everywhere_1.0_all.deb"), "{files:?}");
    assert!(has("pkg0001_1.0_amd64.deb"), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("Translation-de")
        || f.contains("Contents")
        || f.ends_with("i386.deb")));
}

#[test]
fn hostile_filename_from_testkit_is_rejected() {
    let bed = Bed::new(|b| {
        b.generated_packages(1, 100)
            .package(PackageSpec::new("evil", "1.0").filename("../../escaped.deb"))
    });
    bed.standard_config();
    assert_eq!(bed.run(), 1);
    assert!(!bed.dir().join("m").exists());
    assert!(bed.snapshot_dirs().is_empty());
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("escaped.deb"), "{err}");
}
