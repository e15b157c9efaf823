//! `contrib/systemd/apt-cacher.service` and `apt-cacher.socket` pass
//! `systemd-analyze verify` (with `ExecStart=` pointed at the built binary),
//! keep the settings the operators' guide promises, and a deliberately
//! broken copy is caught (so a clean run means something here: systemd
//! reports unknown keys and bad values as warnings with exit status 0, so
//! the test fails on any message about the units, not only on the status).

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 2] = ["apt-cacher.service", "apt-cacher.socket"];

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/systemd")
}

/// Copies the units to a temporary directory with `ExecStart=` pointing at
/// the built binary; `edit` may change the service text.
fn copy_units(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for unit in UNITS {
        let text = std::fs::read_to_string(contrib().join(unit)).unwrap();
        let text = text.replace("/usr/bin/apt-cacher", env!("CARGO_BIN_EXE_apt-cacher"));
        let text = if unit.ends_with(".service") {
            edit(text)
        } else {
            text
        };
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    dir
}

/// Runs `systemd-analyze verify` on the units in `dir`: its exit status
/// and every message that names one of them.
fn verify(dir: &Path) -> (bool, Vec<String>) {
    let tool = "/usr/bin/systemd-analyze";
    assert!(
        Path::new(tool).exists(),
        "needs systemd-analyze (Debian package systemd)"
    );
    let out = Command::new(tool)
        .arg("verify")
        .arg("--man=no")
        .args(UNITS.iter().map(|u| dir.join(u)))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let about_us = text
        .lines()
        .filter(|l| l.contains(&*dir.to_string_lossy()) || UNITS.iter().any(|u| l.contains(u)))
        .map(str::to_string)
        .collect();
    (out.status.success(), about_us)
}

#[test]
fn units_verify_cleanly() {
    let dir = copy_units(|t| t);
    let (ok, messages) = verify(dir.path());
    assert!(
        ok && messages.is_empty(),
        "systemd-analyze verify: {messages:#?}"
    );
}

#[test]
fn a_broken_unit_is_caught() {
    for (from, to) in [
        ("Restart=always", "Restart=sometimes"),
        ("LimitNOFILE=65536", "LimitNOFILE=lots"),
        ("ProtectSystem=strict", "ProtectSytem=strict"),
        (env!("CARGO_BIN_EXE_apt-cacher"), "/nonexistent/apt-cacher"),
    ] {
        let dir = copy_units(|t| t.replace(from, to));
        let (ok, messages) = verify(dir.path());
        assert!(
            !ok || !messages.is_empty(),
            "{from} -> {to}: not reported by systemd-analyze"
        );
    }
}

#[test]
fn service_keeps_its_promises() {
    let text = std::fs::read_to_string(contrib().join("apt-cacher.service")).unwrap();
    let settings: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for want in [
        "Restart=always",
        "LimitNOFILE=65536",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/cache/apt-cacher /var/log/apt-cacher",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "User=apt-cacher",
        "Type=notify",
    ] {
        assert!(settings.contains(&want), "{want} missing");
    }
    assert!(
        text.contains("SIGPIPE"),
        "the comment on why Restart=always (SIGPIPE counts as a clean exit)"
    );
    let socket = std::fs::read_to_string(contrib().join("apt-cacher.socket")).unwrap();
    assert!(socket.lines().any(|l| l == "ListenStream=3142"));
    // One socket for IPv6 and IPv4 whatever net.ipv6.bindv6only says.
    assert!(socket.lines().any(|l| l == "BindIPv6Only=both"));
}
