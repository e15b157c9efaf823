//! The files `cargo deb` packs from `apt-cacher/debian/` cannot rot: the
//! default configuration (`/etc/apt-cacher.toml`) passes the binary's
//! `--check-config`, every `#key = value` line in it is the key's real
//! default (uncommenting them all changes nothing), it names every key the
//! parser knows; the `--help` text shipped in `/usr/share/doc/apt-cacher`
//! is the binary's own; and the units cargo-deb finds in `debian/` are the
//! ones in `contrib/systemd/`.

use apt_cacher::config::{Config, LogConfig};
use apt_cacher::logging::{settings, Overrides};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_apt-cacher");

fn debian() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("debian")
}

fn shipped_config() -> String {
    std::fs::read_to_string(debian().join("apt-cacher.toml")).unwrap()
}

/// `text` with every line `#key = value` (a documented default) uncommented,
/// and how many there were.
fn with_defaults_uncommented(text: &str) -> (String, usize) {
    let mut count = 0;
    let lines: Vec<&str> = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if rest.starts_with(|c: char| c.is_ascii_lowercase())
                    && rest.split_once(" = ").is_some_and(|(k, _)| {
                        k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    }) =>
            {
                count += 1;
                rest
            }
            _ => l,
        })
        .collect();
    (lines.join("\n") + "\n", count)
}

#[test]
fn shipped_config_passes_check_config() {
    let out = Command::new(BIN)
        .arg("-f")
        .arg(debian().join("apt-cacher.toml"))
        .arg("--check-config")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "configuration OK (0 mappings)\n");
}

#[test]
fn commented_values_are_the_defaults() {
    let text = shipped_config();
    let (uncommented, count) = with_defaults_uncommented(&text);
    assert_eq!(count, 21, "documented defaults:\n{uncommented}");
    let mut as_shipped = Config::parse("apt-cacher.toml", &text).unwrap();
    let mut all_set = Config::parse("apt-cacher.toml (uncommented)", &uncommented)
        .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    // [log] keeps what the file says: compare what the logger makes of it.
    let logger = |log: &LogConfig| settings(log, &Overrides::default()).unwrap();
    assert_eq!(logger(&all_set.log), logger(&as_shipped.log));
    all_set.log = LogConfig::default();
    as_shipped.log = LogConfig::default();
    assert_eq!(format!("{all_set:?}"), format!("{as_shipped:?}"));
    // The directories the unit may write (ReadWritePaths=).
    assert_eq!(as_shipped.meta_dir, Path::new("/var/cache/apt-cacher/meta"));
    assert_eq!(
        as_shipped.cache_dir,
        Path::new("/var/cache/apt-cacher/cache")
    );
    assert!(as_shipped.mappings.is_empty());
}

#[test]
fn every_key_is_documented() {
    let text = shipped_config();
    let mentioned = |key: &str| {
        text.lines().any(|l| {
            l.trim_start_matches('#')
                .trim_start()
                .split_once(" = ")
                .is_some_and(|(k, _)| k == key)
        })
    };
    for key in [
        "listen_address",
        "check_interval",
        "cache_period",
        "meta_dir",
        "cache_dir",
        "cache_capacity",
        "max_conns",
        "max_clients",
        "generation_grace",
        "revalidate_interval",
        "retention",
        "connect_allow",
        "status_allow",
        "filename",
        "level",
        "format",
        "connect",
        "idle_read",
        "overall",
        "header_read",
        "client_idle",
        "shutdown_grace",
    ] {
        assert!(mentioned(key), "{key} is not in debian/apt-cacher.toml");
    }
    for table in ["[log]", "[timeouts]", "[mapping]"] {
        assert!(text.lines().any(|l| l == table), "{table} missing");
    }
    // The test of the package appends a mapping: [mapping] comes last.
    let last_table = text.lines().rfind(|l| l.starts_with('['));
    assert_eq!(last_table, Some("[mapping]"));
    for (n, line) in text.lines().enumerate() {
        assert!(
            !line.contains("debian.org") && !line.contains("ubuntu.com"),
            "line {}: a real archive host: {line}",
            n + 1
        );
    }
}

#[test]
fn shipped_help_is_the_binary_help() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(debian().join("apt-cacher.help")).unwrap();
    assert_eq!(
        shipped,
        String::from_utf8_lossy(&out.stdout),
        "debian/apt-cacher.help is stale; regenerate it with\n  \
         cargo run -q --bin apt-cacher -- --help > apt-cacher/debian/apt-cacher.help"
    );
}

#[test]
fn units_in_debian_are_links_to_contrib() {
    for (name, target) in [
        ("apt-cacher.service", "apt-cacher.service"),
        ("apt-cacher.socket", "apt-cacher.socket"),
        // cargo-deb installs <package>.sysusers as sysusers.d/<package>.conf.
        ("apt-cacher.sysusers", "apt-cacher.sysusers.conf"),
    ] {
        let link = std::fs::read_link(debian().join(name)).unwrap();
        assert_eq!(
            link,
            Path::new("../../contrib/systemd").join(target),
            "{name}"
        );
        assert!(debian().join(name).is_file(), "{name} -> {link:?} dangles");
    }
}
