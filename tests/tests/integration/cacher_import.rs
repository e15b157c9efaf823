//! Issue 12, "Import": `apt-cacher import DIR...` (the library call behind
//! the subcommand) puts into the cache only the files whose size and digest
//! match an entry of a current index read from `meta_dir` (no network):
//! one matching `.deb`, one corrupted `.deb` with the right name and one
//! unknown file give imported 1, skipped 1, unknown 1. The cacher, started
//! again with the upstream gone, serves the imported package to the real
//! apt-get, verified, from the cache; a file imported while it runs is
//! adopted when first asked for.

use apt_cacher::import::{import, FileOutcome, ImportReport};
use apt_cacher::metrics::Outcome;
use std::path::{Path, PathBuf};
use testkit::{AptEnv, PackageSpec, Repo, Upstream};

fn config(dir: &Path, listen: &str, upstream: &str) -> apt_cacher::Config {
    let text = testkit::cacher::config_text(dir, listen, upstream, "");
    apt_cacher::Config::parse("test.toml", &text).unwrap()
}

async fn run_import(config: &apt_cacher::Config, dirs: &[PathBuf]) -> ImportReport {
    let (config, dirs) = (config.clone(), dirs.to_vec());
    tokio::task::spawn_blocking(move || import(&config, &dirs))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_takes_only_files_a_current_index_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repo::builder(tmp.path().join("repo"))
        .package(PackageSpec::new("hello", "2.10-3").size(50_000))
        .package(PackageSpec::new("libfoo1", "1.2-1").size(3000))
        .package(PackageSpec::new("tool", "1.0").size(4000))
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    let url = up.url();
    let cdir = tmp.path().join("cacher");
    let c = testkit::cacher::start(&cdir, &url, "").await;
    let mut apt = AptEnv::new().unwrap();
    apt.add_source(&format!("http://{}/debian", c.addr), "stable", &["main"])
        .unwrap();
    apt.update_async().await.unwrap().ok_clean().unwrap();
    let addr = c.addr;
    c.stop().await;
    drop(up); // the upstream is gone from here on

    let deb = |name: &str| repo.root().join(&repo.package(name).unwrap().pool_path);
    let file_name = |name: &str| repo.package(name).unwrap().deb_file_name();
    let archives = tmp.path().join("archives");
    std::fs::create_dir_all(archives.join("partial")).unwrap();
    std::fs::copy(deb("hello"), archives.join(file_name("hello"))).unwrap();
    let mut bad = std::fs::read(deb("libfoo1")).unwrap();
    bad[100] ^= 0x55;
    std::fs::write(archives.join("partial").join(file_name("libfoo1")), &bad).unwrap();
    std::fs::write(archives.join("lock"), b"").unwrap();
    // A symbolic link out of the tree is not followed.
    std::os::unix::fs::symlink(deb("tool"), archives.join(file_name("tool"))).unwrap();

    // The same address again, for the client's sources.
    let cfg = config(&cdir, &addr.to_string(), &url);
    let report = run_import(&cfg, std::slice::from_ref(&archives)).await;
    assert_eq!(
        (report.imported, report.skipped, report.unknown),
        (1, 1, 1),
        "{report:?}"
    );
    assert_eq!(report.imported_bytes, repo.package("hello").unwrap().size());
    assert_eq!(
        report.summary(),
        "imported 1 (50000 bytes), skipped 1, unknown 1"
    );
    let skipped = report
        .files
        .iter()
        .find_map(|(_, o)| match o {
            FileOutcome::Skipped { reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        skipped.to_lowercase().contains("sha256 mismatch"),
        "{skipped}"
    );
    // Nothing partial left behind; a second import finds it cached.
    let tmp_files = std::fs::read_dir(cdir.join("cache/.tmp")).unwrap().count();
    assert_eq!(tmp_files, 0);
    let again = run_import(&cfg, std::slice::from_ref(&archives)).await;
    assert_eq!((again.imported, again.skipped, again.unknown), (0, 2, 1));
    // A DIR that cannot be read fails the import.
    let missing = tmp.path().join("missing");
    assert!(import(&cfg, &[missing]).is_err());

    // The cacher again, upstream gone: hello is served from the cache.
    let c = apt_cacher::start(cfg.clone(), apt_cacher::CancellationToken::new())
        .await
        .unwrap();
    apt.install_download_only_async(&["hello"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    let got = std::fs::read(apt.archives_dir().join(file_name("hello"))).unwrap();
    assert_eq!(
        testkit::Checksums::of(&got).sha256,
        repo.package("hello").unwrap().sha256()
    );
    assert_eq!(c.app.metrics.counters().requests_of(Outcome::Hit), 1);

    // Imported while the cacher runs: adopted when asked for.
    let more = tmp.path().join("more");
    std::fs::create_dir_all(&more).unwrap();
    std::fs::copy(deb("libfoo1"), more.join(file_name("libfoo1"))).unwrap();
    let report = run_import(&cfg, &[more]).await;
    assert_eq!((report.imported, report.skipped, report.unknown), (1, 0, 0));
    apt.install_download_only_async(&["libfoo1"])
        .await
        .unwrap()
        .ok_clean()
        .unwrap();
    let got = std::fs::read(apt.archives_dir().join(file_name("libfoo1"))).unwrap();
    assert_eq!(
        testkit::Checksums::of(&got).sha256,
        repo.package("libfoo1").unwrap().sha256()
    );
    let counters = c.app.metrics.counters();
    assert_eq!(counters.requests_of(Outcome::Hit), 2);
    assert_eq!(counters.requests_of(Outcome::Miss), 0);
    c.stop().await;
}
