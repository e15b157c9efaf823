//! apt-mirror when its disk fills up mid-run (RELIABILITY.md): the run
//! fails with exit status 1 and an error that says so, the snapshot that was
//! current stays current and complete, the unfinished snapshot and its pool
//! files are removed (the space comes back), and the next run, once the
//! upstream fits again, succeeds. The disk is a 1 MiB tmpfs mounted for the
//! test (`testkit::tmpfs`: root only; elsewhere the test says so and passes
//! without running).

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use testkit::{PackageSpec, Repo, Upstream};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

fn used_bytes(dir: &Path) -> u64 {
    let out = Command::new("du").arg("-sb").arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn disk_full_mid_run_keeps_the_current_snapshot_and_frees_the_space() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = testkit::tmpfs::Tmpfs::mount(&tmp.path().join("disk"), "1m") else {
        eprintln!("disk_full: cannot mount a tmpfs here (not root?): not run");
        return;
    };
    let mut repo = Repo::builder(tmp.path().join("upstream"))
        .generated_packages(3, 20_000)
        .build()
        .unwrap();
    let up = Upstream::serve(repo.root()).unwrap();
    repo.key()
        .write_public(&tmp.path().join("key.gpg"))
        .unwrap();
    let dir = disk.path().join("mirror");
    let config = tmp.path().join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "dir = \"{}\"\nmax_conns = 4\n[http]\nconnect_timeout = 2\nread_timeout = 2\nretries = 0\n\
             [mirror.m]\nurl = \"{}/\"\nsuites = [\"stable\"]\nsections = [\"main\"]\n\
             architectures = [\"amd64\"]\nkeyring = \"key.gpg\"\n",
            dir.display(),
            up.url()
        ),
    )
    .unwrap();
    assert_eq!(testkit::mirror::run(&config, &[]), 0);
    let target = std::fs::read_link(dir.join("m")).unwrap();
    let before = entries(&dir);
    let used_before = used_bytes(&dir);
    let deb = repo.package("pkg0001").unwrap().pool_path.clone();
    let sha = repo.package("pkg0001").unwrap().sha256().to_string();

    // The upstream grows past the disk: 20 packages of 100 kB.
    for i in 0..20 {
        repo.add(PackageSpec::new(&format!("big{i:02}"), "1.0").size(100_000))
            .unwrap();
    }
    repo.publish().unwrap();
    assert_eq!(testkit::mirror::run(&config, &[]), 1);
    assert_eq!(std::fs::read_link(dir.join("m")).unwrap(), target);
    let data = std::fs::read(dir.join("m").join(&deb)).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&data)), sha);
    // What the failed run wrote is gone (the summary aside).
    let after: Vec<String> = entries(&dir)
        .into_iter()
        .filter(|n| n != "apt-mirror-summary.json")
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|n| n != "apt-mirror-summary.json")
        .collect();
    assert_eq!(after, before);
    assert!(
        used_bytes(&dir) <= used_before + 64 * 1024,
        "space not given back: {} → {}",
        used_before,
        used_bytes(&dir)
    );
    if let Ok(data) = std::fs::read(dir.join("apt-mirror-summary.json")) {
        let s: serde_json::Value = serde_json::from_slice(&data).unwrap();
        let err = s["mirrors"]["m"]["error"].as_str().unwrap_or_default();
        assert!(
            err.to_ascii_lowercase().contains("space"),
            "the error does not say the disk is full: {err}"
        );
    }

    // Once the upstream fits again, the next run publishes.
    for i in 0..20 {
        repo.remove(&format!("big{i:02}"));
    }
    repo.replace(PackageSpec::new("pkg0001", "2.0").size(20_000));
    repo.publish().unwrap();
    assert_eq!(testkit::mirror::run(&config, &[]), 0);
    assert_ne!(std::fs::read_link(dir.join("m")).unwrap(), target);
    drop(disk);
}
