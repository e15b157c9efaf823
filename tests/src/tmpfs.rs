//! A small file system for a test about a full disk: a tmpfs of a given
//! size mounted on a directory for one test, unmounted when dropped. Only
//! root may mount: elsewhere the test says it is skipped (CI runs as root,
//! where a failed mount fails the test instead of passing it untested).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a directory, unmounted (lazily) when dropped.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `4m`) on `dir`
    /// (created); `None`, after saying so on stderr, when not running as
    /// root. Panics when root cannot mount.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        if out.status.success() {
            return Some(Tmpfs(dir.to_path_buf()));
        }
        let why = String::from_utf8_lossy(&out.stderr);
        assert!(
            !running_as_root(),
            "root cannot mount a tmpfs: {}",
            why.trim()
        );
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root): {}", why.trim());
        None
    }
}

impl Tmpfs {
    /// The directory it is mounted on.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// True when this process runs as root (`id -u` says 0).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
