//! The shared pool: rebuilt packages start a new pool generation, files
//! removed behind our back are placed again, and a mirror written by the
//! previous version is migrated.

use super::*;

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
