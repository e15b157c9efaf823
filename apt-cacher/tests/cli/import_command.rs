//! `apt-cacher import [-f FILE] DIR...` as a command: the report on
//! standard output and exit 0, a DIR that cannot be read named on standard
//! error with exit 1, and nothing of `meta_dir` created or changed. (What
//! gets imported is tested in-process, with real apt, in the integration
//! tests' `cacher_import`.)

use crate::common::BIN;
use std::process::Command;

#[test]
fn import_reports_and_fails_on_an_unreadable_dir() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.toml");
    std::fs::write(
        &conf,
        format!(
            "meta_dir = \"{}\"\ncache_dir = \"{}\"\n[mapping]\ndebian = \"http://deb.example.org/debian\"\n",
            dir.path().join("meta").display(),
            dir.path().join("cache").display()
        ),
    )
    .unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/a_1_amd64.deb"), b"x").unwrap();
    let out = Command::new(BIN)
        .args(["import", "--verbose", "-f"])
        .arg(&conf)
        .arg(&tree)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("unknown "), "{stdout}");
    assert!(
        stdout.ends_with("imported 0 (0 bytes), skipped 0, unknown 1\n"),
        "{stdout}"
    );
    assert!(!dir.path().join("meta").exists(), "meta_dir left alone");

    let out = Command::new(BIN)
        .arg("-f")
        .arg(&conf)
        .arg("import")
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("missing"),
        "{stderr}"
    );
}
