//! `contrib/systemd/apt-mirror.service` and `apt-mirror.timer` pass
//! `systemd-analyze verify` (with `ExecStart=` pointed at the built binary);
//! systemd reports unknown keys and bad values as warnings with exit status
//! 0, so the test fails on any message about the units.

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 2] = ["apt-mirror.service", "apt-mirror.timer"];

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/systemd")
}

#[test]
fn units_verify_cleanly() {
    let tool = "/usr/bin/systemd-analyze";
    assert!(
        Path::new(tool).exists(),
        "needs systemd-analyze (Debian package systemd)"
    );
    let dir = tempfile::tempdir().unwrap();
    for unit in UNITS {
        let text = std::fs::read_to_string(contrib().join(unit)).unwrap();
        let text = text.replace("/usr/bin/apt-mirror", env!("CARGO_BIN_EXE_apt-mirror"));
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let out = Command::new(tool)
        .arg("verify")
        .arg("--man=no")
        .args(UNITS.iter().map(|u| dir.path().join(u)))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let about_us: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains(&*dir.path().to_string_lossy()) || UNITS.iter().any(|u| l.contains(u))
        })
        .collect();
    assert!(
        out.status.success() && about_us.is_empty(),
        "systemd-analyze verify: {about_us:#?}"
    );
    let service = std::fs::read_to_string(contrib().join("apt-mirror.service")).unwrap();
    for want in [
        "Type=oneshot",
        "User=apt-mirror",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/spool/apt-mirror",
        // Published files stay readable by nginx's workers (www-data).
        "UMask=0022",
    ] {
        assert!(service.lines().any(|l| l == want), "{want} missing");
    }
}
