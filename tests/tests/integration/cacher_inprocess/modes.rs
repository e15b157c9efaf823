//! The modes of what apt-cacher keeps (cached pool files, metadata
//! generations, their directories), checked in child processes run under
//! umask 022, 027 and 077: 0644 and 0755 minus the umask, as apt-mirror
//! publishes ([`aptindex::fsmode`]); a cached file kept `0600` by an older
//! version gets that mode when the cache is opened.

use super::*;
use aptindex::fsmode::{self, UMASK_CHILD_ENV};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every file and directory under `root` but `.tmp` (and symlinks), with
/// whether it is a directory.
fn entries(root: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if e.file_name() == ".tmp" || t.is_symlink() {
                continue;
            }
            if t.is_dir() {
                pending.push(e.path());
            }
            out.push((e.path(), t.is_dir()));
        }
    }
    out
}

/// Run by [`cached_modes_follow_the_umask`] under a set umask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by cached_modes_follow_the_umask in a child process with a set umask"]
async fn cached_modes_child() {
    let umask = std::env::var(UMASK_CHILD_ENV)
        .ok()
        .and_then(|u| u32::from_str_radix(&u, 8).ok())
        .unwrap_or_else(fsmode::umask);
    assert_eq!(fsmode::umask(), umask);
    let (file, dir) = (0o644 & !umask, 0o755 & !umask);
    let up = Up::new();
    let deb = vec![7u8; 3000];
    for (p, d) in repo(&deb, 1) {
        up.put(&p, d);
    }
    let addr = up.addr();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), addr);
    let cacher = start(cfg.clone()).await;
    let base = format!("http://{}/m", cacher.addr);
    for path in [
        "dists/stable/Release",
        "dists/stable/main/binary-amd64/Packages",
        "dists/stable/main/binary-amd64/Packages.gz",
        "pool/main/a/a_1_amd64.deb",
    ] {
        let (status, _) = get(&format!("{base}/{path}")).await.unwrap();
        assert_eq!(status, 200, "{path}");
    }
    wait_cached(&cacher, 1).await;
    cacher.stop().await;

    let (mut files, mut dirs) = (Vec::new(), 0);
    for root in [&cfg.cache_dir, &cfg.meta_dir] {
        assert_eq!(mode(root), dir, "{}", root.display());
        for (p, is_dir) in entries(root) {
            if is_dir {
                assert_eq!(mode(&p), dir, "{}", p.display());
                dirs += 1;
            } else {
                assert_eq!(mode(&p), file, "{:o}: {}", mode(&p), p.display());
                files.push(p);
            }
        }
    }
    // The .deb, Release, Packages and Packages.gz at least.
    assert!(files.len() >= 4 && dirs >= 4, "{files:?}");

    // A file an older version cached 0600 gets the cache's mode at start.
    let deb_file = entries(&cfg.cache_dir)
        .into_iter()
        .find(|(p, d)| !d && p.to_string_lossy().contains("a_1_amd64.deb"))
        .map(|(p, _)| p)
        .expect("the cached .deb");
    let private = if file == 0o600 { 0o400 } else { 0o600 };
    std::fs::set_permissions(&deb_file, std::fs::Permissions::from_mode(private)).unwrap();
    let cacher = start(cfg.clone()).await;
    assert_eq!(mode(&deb_file), file);
    let (status, body) = get(&format!(
        "http://{}/m/pool/main/a/a_1_amd64.deb",
        cacher.addr
    ))
    .await
    .unwrap();
    assert_eq!((status, body.as_ref()), (200, deb.as_slice()));
    assert_eq!(up.count("/repo/pool/main/a/a_1_amd64.deb"), 1);
    cacher.stop().await;
}

#[test]
fn cached_modes_follow_the_umask() {
    for umask in [0o022, 0o027, 0o077] {
        let out =
            fsmode::rerun_test_under_umask(umask, "cacher_inprocess::modes::cached_modes_child")
                .unwrap();
        assert!(
            fsmode::ran_one_test(&out),
            "umask {umask:03o}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
