//! The modes of what apt-mirror publishes (snapshot directories, files,
//! `info.json`, the pool generation, the summary), checked in child
//! processes run under umask 022, 027 and 077: a web server whose workers
//! run as another user must be able to read a mirror made under the usual
//! umask ([`aptindex::fsmode`]). And a snapshot published `0600` by an older
//! version is given those modes again ([`Store::heal_modes`]).

use crate::pool;
use crate::snapshot::{Info, Store, INFO_JSON};
use aptindex::fsmode::{self, UMASK_CHILD_ENV};
use aptindex::tree::atomic::write_file as write_atomic;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The umask [`fsmode::rerun_test_under_umask`] set, else the process's.
fn child_umask() -> u32 {
    std::env::var(UMASK_CHILD_ENV)
        .ok()
        .and_then(|u| u32::from_str_radix(&u, 8).ok())
        .unwrap_or_else(fsmode::umask)
}

/// Run by [`published_modes_follow_the_umask`] under a set umask.
#[test]
#[ignore = "run by published_modes_follow_the_umask in a child process with a set umask"]
fn published_modes_child() {
    let umask = child_umask();
    assert_eq!(fsmode::umask(), umask);
    let (file, dir) = (0o644 & !umask, 0o755 & !umask);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("mirror");
    let _lock = crate::lock::RunLock::acquire(&root).unwrap();
    let store = Store::new(&root, "deb");
    let snap = store.begin().unwrap();
    write_atomic(&snap.tree.join("dists/stable/InRelease"), b"signed").unwrap();
    // A pool generation, as a run makes it, with a downloaded file.
    let generation = pool::generation_name("deb", &snap.name);
    let generation_dir = root.join(&generation);
    fsmode::create_dir(&generation_dir).unwrap();
    let shared = BTreeSet::from(["pool".to_string()]);
    pool::link_shared(&snap.tree, &generation_dir, &generation, &shared).unwrap();
    write_atomic(&generation_dir.join("pool/main/a/a.deb"), b"deb").unwrap();
    store.publish(&snap, &Info::default()).unwrap();
    let now = chrono::Utc::now();
    crate::summary::write(&root, now, now, &[]).unwrap();

    for d in [
        root.clone(),
        snap.dir.clone(),
        snap.tree.join("dists/stable"),
        generation_dir.join("pool/main/a"),
    ] {
        assert_eq!(mode(&d), dir, "{}", d.display());
    }
    for f in [
        snap.tree.join("dists/stable/InRelease"),
        root.join("deb/pool/main/a/a.deb"),
        snap.dir.join(INFO_JSON),
        crate::summary::path(&root),
    ] {
        assert_eq!(mode(&f), file, "{}", f.display());
    }

    // An older version published it all 0600 (0400 where 0600 is the
    // published mode): the first run restores the modes, info.json last; a
    // second pass has nothing to do.
    let (private_file, private_dir) = if file == 0o600 {
        (0o400, 0o500)
    } else {
        (0o600, 0o700)
    };
    let mut private = 0;
    for top in [&snap.dir, &generation_dir] {
        let mut pending = vec![top.to_path_buf()];
        while let Some(d) = pending.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let t = e.file_type().unwrap();
                if t.is_dir() {
                    pending.push(e.path());
                } else if t.is_file() {
                    std::fs::set_permissions(
                        e.path(),
                        std::fs::Permissions::from_mode(private_file),
                    )
                    .unwrap();
                    private += 1;
                }
            }
        }
    }
    assert_eq!(private, 3);
    std::fs::set_permissions(&snap.tree, std::fs::Permissions::from_mode(private_dir)).unwrap();
    let current = store.current().unwrap().unwrap();
    assert_eq!(store.heal_modes(&current).unwrap(), 4);
    assert_eq!(mode(&snap.tree), dir);
    assert_eq!(mode(&root.join("deb/pool/main/a/a.deb")), file);
    assert_eq!(mode(&snap.tree.join("dists/stable/InRelease")), file);
    assert_eq!(mode(&snap.dir.join(INFO_JSON)), file);
    assert_eq!(store.heal_modes(&current).unwrap(), 0);
}

#[test]
fn published_modes_follow_the_umask() {
    for umask in [0o022, 0o027, 0o077] {
        let out =
            fsmode::rerun_test_under_umask(umask, "modes_tests::published_modes_child").unwrap();
        assert!(
            fsmode::ran_one_test(&out),
            "umask {umask:03o}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
