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

mod lookup;
mod patches;

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
