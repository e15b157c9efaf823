//! The full mirror and cacher flows through the shared tree machinery
//! (`aptindex::tree`): one generated, signed repository behind the
//! testkit's fake upstream is mirrored by apt-mirror and fetched through
//! apt-cacher by the real `apt-get`. Both published trees must hold the
//! same Release files and index bytes, every file verified against that
//! Release, each tree behind its symlink complete, and
//! `aptindex::tree::generations::select` over each program's directory
//! agreeing with what the program kept. Then the upstream moves on while
//! one index is corrupted: neither program swaps; once the fault is
//! cleared both move to the new tree and the new version installs through
//! the cacher and from the mirror directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aptindex::checksum::{Checksums, HashKind};
use aptindex::release::Release;
use aptindex::tree::generations::{select, Selection};
use testkit::{AptEnv, Compression, PackageSpec, Repo, Times, Upstream};

/// The mirror ID of the test configuration.
const ID: &str = "m";
/// The suite both programs carry.
const SUITE_DIR: &str = "dists/stable";

/// Every file under `dir` (a symlink to a file read through; symlinked
/// directories, such as a snapshot's `pool`, not followed), by path
/// relative to `dir`.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let e = e.unwrap();
            let ty = e.file_type().unwrap();
            let p = e.path();
            if ty.is_dir() {
                walk(root, &p, out);
            } else if ty.is_file() || (ty.is_symlink() && p.is_file()) {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Checks every file of a suite tree against the Release in it: the
/// Release files themselves agree with each other, every index is the file
/// its Release entry describes, every by-hash file one that this Release or
/// an `earlier` one lists (by-hash names of the previous indices stay for
/// clients in the middle of an update). Returns the Release.
fn verify_suite_tree(
    what: &str,
    files: &BTreeMap<String, Vec<u8>>,
    earlier: &[&Release],
) -> Release {
    let in_release = files
        .get("InRelease")
        .unwrap_or_else(|| panic!("{what}: no InRelease in {:?}", files.keys()));
    let release = Release::parse_any(in_release).unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Some(plain) = files.get("Release") {
        let plain = Release::parse_any(plain).unwrap();
        assert_eq!(
            plain.entries, release.entries,
            "{what}: Release ≠ InRelease"
        );
    }
    let mut indices = 0;
    for (path, data) in files {
        if ["InRelease", "Release", "Release.gpg"].contains(&path.as_str()) {
            continue;
        }
        let actual = Checksums::of_bytes(data);
        if let Some((dir, by_hash)) = path.split_once("/by-hash/") {
            let (kind, hex) = by_hash
                .split_once('/')
                .and_then(|(k, h)| Some((HashKind::from_by_hash_name(k)?, h)))
                .unwrap_or_else(|| panic!("{what}: {path}: no by-hash name"));
            let listed = std::iter::once(&release)
                .chain(earlier.iter().copied())
                .flat_map(|r| r.entries.iter())
                .filter(|(p, _)| p.starts_with(&format!("{dir}/")))
                .any(|(_, c)| c.hex(kind).as_deref() == Some(hex));
            assert!(listed, "{what}: {path} is no by-hash name of a Release");
            assert_eq!(actual.hex(kind).as_deref(), Some(hex), "{what}: {path}");
        } else {
            let expected = release
                .entries
                .get(path)
                .unwrap_or_else(|| panic!("{what}: {path} is not in the Release"));
            expected
                .verify(path, &actual)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        indices += 1;
    }
    assert!(indices > 0, "{what}: no index in {:?}", files.keys());
    release
}

/// The test bed: the repository, its upstream, the mirror's root and config.
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
            .compressions(&[Compression::Xz, Compression::Gz])
            .package(PackageSpec::new("hello", "1.0").size(4000))
            .package(PackageSpec::new("libfoo1", "1:1.2-1").size(2000))
            .build()
            .unwrap();
        let up = Upstream::serve(repo.root()).unwrap();
        repo.key()
            .write_public(&tmp.path().join("key.gpg"))
            .unwrap();
        let config = format!(
            r#"dir = "{dir}"
max_conns = 4
[http]
connect_timeout = 2
read_timeout = 2
retries = 1
retry_delay = 0.05
[mirror.{ID}]
url = "{url}/"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg"
"#,
            dir = tmp.path().join("mirror").display(),
            url = up.url(),
        );
        std::fs::write(tmp.path().join("mirror.toml"), config).unwrap();
        Bed { tmp, repo, up }
    }

    fn mirror_root(&self) -> PathBuf {
        self.tmp.path().join("mirror")
    }

    /// One apt-mirror run (on its own runtime, off this test's one).
    async fn mirror(&self) -> u8 {
        let config = self.tmp.path().join("mirror.toml");
        tokio::task::spawn_blocking(move || testkit::mirror::run(&config, &[]))
            .await
            .unwrap()
    }

    fn mirror_link(&self) -> PathBuf {
        std::fs::read_link(self.mirror_root().join(ID)).unwrap()
    }

    /// The mirror's current suite tree, after checking that its symlink
    /// points at a complete snapshot and that `select` over the root agrees
    /// with what apt-mirror kept (its default `keep = 1`).
    fn mirror_suite(&self) -> BTreeMap<String, Vec<u8>> {
        let root = self.mirror_root();
        let store = apt_mirror::snapshot::Store::new(&root, ID);
        let current = store.current().unwrap().expect("a published snapshot");
        assert_eq!(
            self.mirror_link(),
            Path::new(&current.name).join(ID),
            "the symlink names the current snapshot's tree"
        );
        assert!(current.tree.is_dir(), "{}", current.tree.display());
        assert!(current.read_info().is_some(), "{}: info.json", current.name);
        let names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&format!(".{ID}.")))
            .filter(|n| !apt_mirror::pool::is_generation_name(ID, n))
            .collect();
        let complete =
            |n: &str| root.join(n).join("info.json").is_file() && root.join(n).join(ID).is_dir();
        let Selection { kept, doomed } = select(names, Some(&current.name), 1, complete);
        let program: Vec<String> = store.kept(1).unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(kept, program, "select vs apt-mirror's kept snapshots");
        assert!(doomed.is_empty(), "apt-mirror left garbage: {doomed:?}");
        files_under(&current.tree.join(SUITE_DIR))
    }
}

/// The cacher's suite directory: `meta_dir/<prefix>/<suite dir, escaped>`.
fn cacher_suite_dir(cacher_dir: &Path) -> PathBuf {
    cacher_dir
        .join("meta/debian")
        .join(SUITE_DIR.replace('/', "%2F"))
}

/// The cacher's current generation of the suite, after checking that the
/// `current` symlink names the generation the cacher serves, that it is
/// complete, and that `select` over the suite directory keeps every
/// generation the cacher left on disk (the current one first). Returns the
/// generation's name and files.
fn cacher_suite(c: &apt_cacher::Running, cacher_dir: &Path) -> (String, BTreeMap<String, Vec<u8>>) {
    let dir = cacher_suite_dir(cacher_dir);
    let serving = c.app.gens.current_generations();
    let serving = serving
        .iter()
        .find(|g| g.mapping == "debian" && g.suite == SUITE_DIR)
        .unwrap_or_else(|| panic!("no generation of {SUITE_DIR}: {serving:?}"));
    let link = std::fs::read_link(dir.join("current")).unwrap();
    let current = format!("gen-{}", serving.generation);
    assert_eq!(
        link,
        Path::new(&current),
        "current symlink vs served generation"
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    let complete = |n: &str| dir.join(n).join("InRelease").is_file();
    assert!(complete(&current), "{current} is incomplete");
    let on_disk = names.len();
    let Selection { kept, doomed } = select(names, Some(&current), on_disk, complete);
    assert_eq!(kept.first(), Some(&current));
    assert!(
        doomed.is_empty(),
        "the cacher left incomplete or newer trees: {doomed:?}"
    );
    let mut files = files_under(&dir.join(&current));
    // The cacher's own pool-map sidecars (generation/pool_store.rs) are no
    // part of the published tree: each describes an index the tree holds.
    let sidecars: Vec<String> = files
        .keys()
        .filter(|k| k.starts_with(".pool/"))
        .cloned()
        .collect();
    for k in sidecars {
        let index = k
            .strip_prefix(".pool/")
            .and_then(|r| r.strip_suffix(".map"))
            .unwrap_or_else(|| panic!("{k}: not a sidecar name"));
        assert!(files.contains_key(index), "{k}: no such index in {current}");
        files.remove(&k);
    }
    (current, files)
}

/// Both trees verified, and identical where both carry a file.
fn assert_same_trees(
    mirror: &BTreeMap<String, Vec<u8>>,
    cacher: &BTreeMap<String, Vec<u8>>,
    earlier: &[&Release],
) -> Release {
    let rm = verify_suite_tree("mirror", mirror, earlier);
    let rc = verify_suite_tree("cacher", cacher, earlier);
    assert_eq!(
        rm.entries, rc.entries,
        "the two trees hold different Releases"
    );
    let mut shared = 0;
    for (path, data) in cacher {
        let theirs = mirror
            .get(path)
            .unwrap_or_else(|| panic!("the cacher holds {path}, the mirror does not"));
        assert!(theirs == data, "{path} differs between mirror and cacher");
        shared += 1;
    }
    assert!(
        shared >= 2,
        "InRelease and at least one index: {:?}",
        cacher.keys()
    );
    rm
}

fn packages_index(release: &Release) -> String {
    release
        .entries
        .get("main/binary-amd64/Packages.xz")
        .and_then(|c| c.hex(HashKind::Sha256))
        .expect("Packages.xz in the Release")
}

async fn install_hello(apt: &AptEnv, version: &str) {
    apt.install_download_only_async(&["hello"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    let name = format!("hello_{version}_");
    let debs = apt.downloaded_archives().unwrap();
    assert!(
        debs.iter().any(|p| p.to_string_lossy().contains(&name)),
        "no {name}: {debs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_and_cacher_publish_the_same_verified_trees() {
    let mut bed = Bed::new();
    let cacher_dir = bed.tmp.path().join("cacher");
    let c = testkit::cacher::start(
        &cacher_dir,
        &bed.up.url(),
        "check_interval = 0\ncache_period = 0",
    )
    .await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.prefer_compression("xz").unwrap();

    // 1. Both flows over the same upstream: the same verified trees.
    assert_eq!(bed.mirror().await, apt_mirror::exit::OK);
    apt.update_async().await.unwrap().ok_clean().unwrap();
    let mirror_v1 = bed.mirror_suite();
    let (gen_v1, cacher_v1) = cacher_suite(&c, &cacher_dir);
    let release_v1 = assert_same_trees(&mirror_v1, &cacher_v1, &[]);
    let link_v1 = bed.mirror_link();
    install_hello(&apt, "1.0").await;

    // 2. Upstream moves on, and its one index that both programs fetch
    // (Packages.xz, by its plain and by-hash names) is corrupted between the
    // Release request and the index request: neither program swaps.
    bed.repo
        .replace(PackageSpec::new("hello", "2.0").size(4000));
    bed.repo.publish().unwrap();
    let xz = bed
        .repo
        .index_files("stable")
        .iter()
        .find(|f| f.path == "main/binary-amd64/Packages.xz")
        .expect("Packages.xz published")
        .checksums
        .clone();
    let corrupted = [
        "*/binary-amd64/Packages.xz".to_string(),
        format!("*/binary-amd64/by-hash/*/{}", xz.sha256),
        format!("*/binary-amd64/by-hash/*/{}", xz.sha1),
        format!("*/binary-amd64/by-hash/*/{}", xz.md5),
    ];
    let hits = |up: &Upstream| -> usize { corrupted.iter().map(|p| up.requests_matching(p)).sum() };
    for pattern in &corrupted {
        bed.up.corrupt(pattern, Times::Always);
    }
    let before = hits(&bed.up);
    assert_eq!(
        bed.mirror().await,
        apt_mirror::exit::FAILED,
        "corrupt index accepted"
    );
    assert!(
        hits(&bed.up) > before,
        "the mirror never asked for the index"
    );
    assert_eq!(
        bed.mirror_link(),
        link_v1,
        "the mirror swapped to a bad tree"
    );
    assert_eq!(bed.mirror_suite(), mirror_v1);

    let before = hits(&bed.up);
    let out = apt.update_async().await.unwrap();
    assert!(!out.hash_sum_mismatch(), "{}", out.all());
    let (gen_now, cacher_now) = cacher_suite(&c, &cacher_dir);
    assert!(
        hits(&bed.up) > before,
        "the cacher never asked for the index"
    );
    assert_eq!(gen_now, gen_v1, "the cacher swapped to a bad tree");
    assert_eq!(cacher_now, cacher_v1);
    let served = reqwest::get(format!("http://{}/debian/{SUITE_DIR}/InRelease", c.addr))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert!(
        served.bytes().await.unwrap().as_ref() == cacher_v1["InRelease"].as_slice(),
        "the cacher no longer serves the old generation's InRelease"
    );

    // 3. Fault cleared: both move to the new tree, and the new version installs.
    bed.up.clear_faults();
    assert_eq!(bed.mirror().await, apt_mirror::exit::OK);
    apt.update_async().await.unwrap().ok_clean().unwrap();
    let mirror_v2 = bed.mirror_suite();
    let (gen_v2, cacher_v2) = cacher_suite(&c, &cacher_dir);
    assert_ne!(gen_v2, gen_v1);
    assert_ne!(bed.mirror_link(), link_v1);
    let release_v2 = assert_same_trees(&mirror_v2, &cacher_v2, &[&release_v1]);
    assert_ne!(packages_index(&release_v2), packages_index(&release_v1));
    install_hello(&apt, "2.0").await;

    // From the mirror directory, served as nginx would (symlinks followed).
    let served_mirror = Upstream::serve(bed.mirror_root()).unwrap();
    let mut apt_m = AptEnv::new().unwrap();
    apt_m
        .add_source(
            &format!("{}/{ID}", served_mirror.url()),
            "stable",
            &["main"],
        )
        .unwrap();
    apt_m.update_async().await.unwrap().ok_clean().unwrap();
    install_hello(&apt_m, "2.0").await;
    let hello = bed.repo.package("hello").unwrap();
    let got = std::fs::read(apt_m.archives_dir().join(hello.deb_file_name())).unwrap();
    assert_eq!(testkit::Checksums::of(&got).sha256, hello.sha256());
    c.stop().await;
}
