//! Hostile indices (issue #13, items 2 and 5), end to end.
//!
//! A `Packages.xz` of a few KiB that decompresses to tens of MiB of tiny
//! paragraphs (a scaled-down bomb, with `max_index_entries` set low) is
//! quarantined: apt-cacher keeps serving the last good generation, keeps
//! nothing of the bomb in `meta_dir`, and a restart parses nothing again;
//! an index saved before (by an older version) that is over the cap is
//! quarantined at start, once. apt-mirror fails the run with an error
//! naming the index and the cap, and keeps the old snapshot. One bad entry
//! (unsafe `Filename`, overflowing `Size`) is skipped and counted: the
//! cacher still verifies the other files of that index, the mirror still
//! mirrors them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::{Compression, PackageSpec, Repo, Upstream};

const SUITE: &str = "stable";
const PACKAGES_XZ: &str = "main/binary-amd64/Packages.xz";
const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn repo(dir: &Path) -> Repo {
    Repo::builder(dir)
        .compressions(&[Compression::Xz])
        .uncompressed(false)
        .by_hash(false)
        .package(PackageSpec::new("alpha", "1.0").size(3000))
        .package(PackageSpec::new("beta", "1.0").size(3000))
        .build()
        .unwrap()
}

/// Replaces index `rel` of the suite by `data`, updates every Release
/// entry of it and signs the Release again.
fn replace_index(repo: &Repo, rel: &str, data: &[u8]) {
    let dir = repo.suite_dir(SUITE);
    std::fs::write(dir.join(rel), data).unwrap();
    let sums = testkit::Checksums::of(data);
    let release = std::fs::read_to_string(dir.join("Release")).unwrap();
    let mut out = String::new();
    for line in release.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with(' ') && words.len() == 3 && words[2] == rel {
            let hex = match words[0].len() {
                32 => &sums.md5,
                40 => &sums.sha1,
                64 => &sums.sha256,
                _ => &sums.sha512,
            };
            out.push_str(&format!(" {hex} {} {rel}\n", sums.size));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(dir.join("Release"), out).unwrap();
    repo.resign(SUITE).unwrap();
}

/// 24 MiB of one tiny paragraph repeated, xz-compressed (a few KiB).
fn bomb() -> Vec<u8> {
    let par = format!("Filename: pool/main/b/b.deb\nSize: 1\nSHA256: {ZEROS}\n\n");
    let text = par.repeat((24 << 20) / par.len());
    let packed = Compression::Xz.compress(text.as_bytes()).unwrap();
    assert!(packed.len() < 100 << 10, "{}", packed.len());
    packed
}

/// The suite's `Packages` text with `extra` paragraphs appended.
fn packages_with(repo: &Repo, extra: &[String]) -> Vec<u8> {
    let packed = std::fs::read(repo.suite_dir(SUITE).join(PACKAGES_XZ)).unwrap();
    let mut text =
        aptindex::compress::decompress(aptindex::Compression::Xz, &packed, 1 << 30).unwrap();
    for p in extra {
        text.extend_from_slice(b"\n");
        text.extend_from_slice(p.as_bytes());
    }
    Compression::Xz.compress(&text).unwrap()
}

/// Two bad paragraphs: a traversal `Filename` and an overflowing `Size`.
fn bad_paragraphs() -> Vec<String> {
    vec![
        format!("Package: evil\nFilename: ../../../etc/evil.deb\nSize: 1\nSHA256: {ZEROS}\n"),
        format!(
            "Package: big\nFilename: pool/main/b/big.deb\nSize: 99999999999999999999999\nSHA256: {ZEROS}\n"
        ),
    ]
}

async fn get(url: &str) -> (u16, Vec<u8>) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    // A download that fails verification is cut off: no complete body.
    let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (status, body)
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
        if ft.is_dir() {
            out.extend(files_under(&p));
        } else if ft.is_file() {
            out.push(p);
        }
    }
    out
}

/// A URL nothing listens on.
fn dead_url() -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/", dead.local_addr().unwrap())
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cacher_quarantines_a_bomb_index_and_keeps_the_last_good_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let up = Upstream::serve(repo.root()).unwrap();
    let dir = tmp.path().join("cacher");
    let extra = "check_interval = 0\ncache_period = 0\nmax_index_entries = 1000";
    let c = testkit::cacher::start(&dir, &up.url(), extra).await;
    let base = format!("http://{}/debian/dists/{SUITE}", c.addr);
    let good = std::fs::read(repo.suite_dir(SUITE).join(PACKAGES_XZ)).unwrap();
    assert_eq!(get(&format!("{base}/InRelease")).await.0, 200);
    assert_eq!(
        get(&format!("{base}/{PACKAGES_XZ}")).await,
        (200, good.clone())
    );
    let swaps = c.app.metrics.counters().generation_swaps;

    let bomb = bomb();
    replace_index(&repo, PACKAGES_XZ, &bomb);
    // The Release changed: the new generation needs the bomb, which is refused.
    get(&format!("{base}/InRelease")).await;
    let m = &c.app.metrics;
    wait_for("the quarantine", || m.counters().index_quarantines >= 1).await;
    assert_eq!(
        m.counters().generation_swaps,
        swaps,
        "no swap with the bomb"
    );
    assert_eq!(
        get(&format!("{base}/{PACKAGES_XZ}")).await,
        (200, good.clone())
    );
    let failures = c.app.metrics.recent_failures();
    assert!(
        failures.iter().any(|f| f.what.contains("max_index_entries")
            && f.what
                .contains("dists/stable/main/binary-amd64/Packages.xz")),
        "{failures:?}"
    );
    // The last good generation still protects its pool files.
    let alpha = repo.package("alpha").unwrap().pool_path.clone();
    assert_eq!(
        get(&format!("http://{}/debian/{alpha}", c.addr)).await.0,
        200
    );
    c.stop().await;
    drop(up);
    // Nothing of the bomb was kept.
    let meta = files_under(&dir.join("meta"));
    assert!(meta.iter().any(|p| p.ends_with(PACKAGES_XZ)), "{meta:?}");
    for p in &meta {
        assert_ne!(std::fs::read(p).unwrap(), bomb, "{}", p.display());
    }

    // A restart (upstream gone) parses nothing to quarantine.
    let dead = dead_url();
    let c = testkit::cacher::start(&dir, &dead, extra).await;
    let base = format!("http://{}/debian/dists/{SUITE}", c.addr);
    assert_eq!(
        get(&format!("{base}/{PACKAGES_XZ}")).await,
        (200, good.clone())
    );
    assert_eq!(c.app.metrics.counters().index_quarantines, 0);
    c.stop().await;

    // An index saved before that is over the cap now (as an older version
    // kept a bomb): quarantined at start, removed, so that the next start
    // does not parse it again.
    let capped = "check_interval = 0\ncache_period = 0\nmax_index_entries = 1";
    let c = testkit::cacher::start(&dir, &dead, capped).await;
    let base = format!("http://{}/debian/dists/{SUITE}", c.addr);
    assert_eq!(get(&format!("{base}/InRelease")).await.0, 200);
    assert_eq!(c.app.metrics.counters().index_quarantines, 1);
    assert!(!files_under(&dir.join("meta"))
        .iter()
        .any(|p| p.ends_with(PACKAGES_XZ)));
    c.stop().await;
    let c = testkit::cacher::start(&dir, &dead, capped).await;
    let base = format!("http://{}/debian/dists/{SUITE}", c.addr);
    assert_eq!(get(&format!("{base}/InRelease")).await.0, 200);
    assert_eq!(c.app.metrics.counters().index_quarantines, 0);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cacher_skips_bad_entries_and_still_verifies_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let packed = packages_with(&repo, &bad_paragraphs());
    replace_index(&repo, PACKAGES_XZ, &packed);
    // Upstream serves a corrupted alpha (same size, other bytes).
    let alpha = repo.package("alpha").unwrap().pool_path.clone();
    let mut bytes = std::fs::read(repo.root().join(&alpha)).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(repo.root().join(&alpha), &bytes).unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let c = testkit::cacher::start(&tmp.path().join("cacher"), &up.url(), "").await;
    let base = format!("http://{}/debian", c.addr);
    assert_eq!(get(&format!("{base}/dists/{SUITE}/InRelease")).await.0, 200);
    assert_eq!(
        get(&format!("{base}/dists/{SUITE}/{PACKAGES_XZ}")).await,
        (200, packed)
    );
    assert_eq!(c.app.metrics.counters().index_entries_skipped, 2);

    let (status, body) = get(&format!("{base}/{alpha}")).await;
    assert!(
        status != 200 || body != bytes,
        "corrupted bytes served as good"
    );
    assert!(c.app.metrics.counters().verification_failures >= 1);
    let beta = repo.package("beta").unwrap();
    let (status, body) = get(&format!("{base}/{}", beta.pool_path)).await;
    assert_eq!(status, 200);
    assert_eq!(body.len() as u64, beta.size());
    wait_for("beta cached", || c.app.store.usage().0 == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(c.app.store.usage().0, 1, "alpha is not cached");
    c.stop().await;
}

/// Writes a mirror config (mirror `m` of the suite, `extra` in its table).
fn mirror_config(tmp: &Path, up: &Upstream, extra: &str) -> PathBuf {
    let path = tmp.join("mirror.toml");
    let text = format!(
        "dir = \"{}\"\n[http]\nconnect_timeout = 2\nread_timeout = 2\nretries = 0\n[mirror.m]\nurl = \"{}/\"\nsuites = [\"{SUITE}\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\nkeyring = \"key.gpg\"\n{extra}\n",
        tmp.join("mirror").display(),
        up.url()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn summary(tmp: &Path) -> serde_json::Value {
    let data = std::fs::read(tmp.join("mirror/apt-mirror-summary.json")).unwrap();
    serde_json::from_slice(&data).unwrap()
}

#[test]
fn mirror_refuses_a_bomb_index_and_skips_bad_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp.path().join("repo"));
    repo.key()
        .write_public(&tmp.path().join("key.gpg"))
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let config = mirror_config(tmp.path(), &up, "max_index_entries = 1000");
    assert_eq!(testkit::mirror::run(&config, &[]), 0);
    let link = tmp.path().join("mirror/m");
    let first = std::fs::read_link(&link).unwrap();

    // Made of the good index, before the bomb replaces it.
    let with_bad_entry = packages_with(&repo, &bad_paragraphs()[1..]);
    replace_index(&repo, PACKAGES_XZ, &bomb());
    assert_eq!(testkit::mirror::run(&config, &[]), 1);
    let s = summary(tmp.path());
    let err = s["mirrors"]["m"]["error"].as_str().unwrap().to_string();
    assert!(err.contains("max_index_entries"), "{err}");
    assert!(err.contains("Packages.xz"), "{err}");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        first,
        "old snapshot kept"
    );

    // One bad entry (an overflowing Size): skipped, counted, the rest mirrored.
    replace_index(&repo, PACKAGES_XZ, &with_bad_entry);
    assert_eq!(testkit::mirror::run(&config, &[]), 0);
    let s = summary(tmp.path());
    assert_eq!(s["mirrors"]["m"]["result"], "updated", "{s}");
    assert_eq!(s["mirrors"]["m"]["entries_skipped"], 1, "{s}");
    let warnings = s["mirrors"]["m"]["warnings"].to_string();
    assert!(warnings.contains("bad entries skipped"), "{warnings}");
    assert_ne!(std::fs::read_link(&link).unwrap(), first);
    for name in ["alpha", "beta"] {
        let p = repo.package(name).unwrap();
        let got = std::fs::read(link.join(&p.pool_path)).unwrap();
        assert_eq!(got.len() as u64, p.size(), "{name}");
    }
    assert!(!link.join("pool/main/b/big.deb").exists());
}
