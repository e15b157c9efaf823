//! Tests of publishing and collecting snapshots on disk.

use super::*;
use crate::info::{FileInfo, Info};
use crate::pool;
use aptindex::checksum::Checksums;
use aptindex::tree::atomic::write_file as write_atomic;

fn sums(size: u64, b: u8) -> Checksums {
    Checksums {
        size,
        md5: Some([b; 16]),
        sha256: Some([b; 32]),
        ..Default::default()
    }
}

#[test]
fn publish_swaps_symlink_and_cleanup_keeps_previous() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("unrelated"), b"x").unwrap();
    std::fs::create_dir(root.path().join(".other.2020")).unwrap();
    let store = Store::new(root.path(), "deb");
    assert!(store.current().unwrap().is_none());

    let mut names = Vec::new();
    for i in 0..4u8 {
        let s = store.begin().unwrap();
        std::fs::write(s.tree.join("f"), [i]).unwrap();
        let mut info = Info {
            format: 1,
            id: "deb".into(),
            ..Default::default()
        };
        info.files
            .insert("f".into(), FileInfo::from_checksums(&sums(1, i)));
        store.publish(&s, &info).unwrap();
        assert_eq!(std::fs::read(root.path().join("deb/f")).unwrap(), [i]);
        assert_eq!(store.current().unwrap().unwrap().name, s.name);
        let back = s.read_info().unwrap();
        assert_eq!(back.files["f"].to_checksums(), sums(1, i));
        names.push(s.name);
    }
    let link = std::fs::read_link(root.path().join("deb")).unwrap();
    assert_eq!(link, PathBuf::from(&names[3]).join("deb"));

    // A failed run's leftovers: an unfinished snapshot, a stray temp symlink.
    let failed = store.begin().unwrap();
    std::fs::write(failed.tree.join(".part-x"), b"partial").unwrap();
    std::os::unix::fs::symlink("nowhere", root.path().join(".deb.symlink-tmp")).unwrap();

    let removed = store.cleanup(1, &[]).unwrap();
    assert_eq!(removed.len(), 4, "{removed:?}");
    assert!(root.path().join(&names[3]).is_dir());
    assert!(root.path().join(&names[2]).is_dir());
    assert!(!root.path().join(&names[1]).exists());
    assert!(!root.path().join(&names[0]).exists());
    assert!(!failed.dir.exists());
    assert!(root.path().join("unrelated").exists());
    assert!(root.path().join(".other.2020").exists());

    assert_eq!(store.cleanup(0, &[]).unwrap(), vec![names[2].clone()]);
    assert!(root.path().join("deb/f").exists());
}

/// Publishes a snapshot whose `pool` links into `generation` and whose
/// info.json names `files` (written into the generation).
fn publish_pooled(store: &Store, root: &Path, generation: &str, files: &[&str]) -> Snapshot {
    let s = store.begin().unwrap();
    let shared: std::collections::BTreeSet<String> = ["pool".to_string()].into();
    pool::link_shared(&s.tree, &root.join(generation), generation, &shared).unwrap();
    let mut info = Info::default();
    for f in files {
        let path = root.join(generation).join(f);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, f.as_bytes()).unwrap();
        let sums = Checksums::of_bytes(f.as_bytes());
        info.files
            .insert(f.to_string(), FileInfo::from_checksums(&sums));
    }
    store.publish(&s, &info).unwrap();
    s
}

#[test]
fn cleanup_removes_only_pool_files_no_kept_snapshot_names() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(root.path(), "deb");
    let g = ".deb.pool-1";
    let first = publish_pooled(&store, root.path(), g, &["pool/a/1", "pool/b/1"]);
    let second = publish_pooled(&store, root.path(), g, &["pool/a/1", "pool/c/1"]);
    // A killed run: it journaled and added pool/d/1 and pool/a/1 (already named).
    let killed = store.begin().unwrap();
    std::fs::create_dir_all(root.path().join(g).join("pool/d")).unwrap();
    std::fs::write(root.path().join(g).join("pool/d/1"), b"partial run").unwrap();
    let journal = pool::Journal {
        pool: g.into(),
        paths: vec!["pool/d/1".into(), "pool/a/1".into()],
    };
    write_atomic(
        &killed.dir.join(pool::JOURNAL),
        &serde_json::to_vec(&journal).unwrap(),
    )
    .unwrap();
    // keep = 1: both published snapshots stay; the killed run's file goes.
    assert_eq!(store.cleanup(1, &[]).unwrap(), vec![killed.name.clone()]);
    let gen = root.path().join(g);
    assert!(!gen.join("pool/d").exists());
    for f in ["pool/a/1", "pool/b/1", "pool/c/1"] {
        assert!(gen.join(f).is_file(), "{f}");
    }
    // keep = 0: the first snapshot goes, with pool/b/1 that only it named.
    assert_eq!(store.cleanup(0, &[]).unwrap(), vec![first.name.clone()]);
    assert!(!gen.join("pool/b").exists());
    assert!(gen.join("pool/a/1").is_file() && gen.join("pool/c/1").is_file());
    assert_eq!(
        std::fs::read(root.path().join("deb/pool/c/1")).unwrap(),
        b"pool/c/1"
    );

    // A kept snapshot whose info.json is unreadable protects its generation.
    let third = publish_pooled(&store, root.path(), g, &["pool/e/1"]);
    std::fs::write(second.dir.join(INFO_JSON), b"not json").unwrap();
    std::fs::write(third.dir.join(INFO_JSON), b"not json").unwrap();
    let fourth = publish_pooled(&store, root.path(), ".deb.pool-2", &["pool/f/1"]);
    // keep = 1: `third` (unreadable) is kept, `second` goes; nothing is
    // removed from `g`, which `third` links to.
    assert_eq!(store.cleanup(1, &[]).unwrap(), vec![second.name.clone()]);
    for f in ["pool/a/1", "pool/c/1", "pool/e/1"] {
        assert!(gen.join(f).is_file(), "{f}");
    }
    // keep = 0: `g` is no longer linked to by any kept snapshot: removed whole.
    let removed = store.cleanup(0, &[]).unwrap();
    assert_eq!(removed, vec![third.name.clone(), g.to_string()]);
    assert!(!gen.exists());
    assert_eq!(store.current().unwrap().unwrap().name, fourth.name);
    assert_eq!(
        std::fs::read(root.path().join("deb/pool/f/1")).unwrap(),
        b"pool/f/1"
    );
}

#[test]
fn foreign_link_is_left_alone() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("deb")).unwrap();
    let store = Store::new(root.path(), "deb");
    assert!(matches!(
        store.current(),
        Err(SnapshotError::Foreign { .. })
    ));
    std::fs::remove_dir(root.path().join("deb")).unwrap();
    std::os::unix::fs::symlink("/etc", root.path().join("deb")).unwrap();
    assert!(matches!(
        store.current(),
        Err(SnapshotError::Foreign { .. })
    ));
    assert!(matches!(
        store.cleanup(1, &[]),
        Err(SnapshotError::Foreign { .. })
    ));
}
