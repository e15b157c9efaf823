//! The files `cargo deb` packs from `apt-mirror/debian/` cannot rot: the
//! default configuration (`/etc/apt/mirror.toml`) passes the binary's
//! `--check-config`, every `#key = value` line in it is the key's real
//! default (uncommenting them all changes nothing), its example mirror
//! parses, it names every key the parser knows; the `--help` text shipped
//! in `/usr/share/doc/apt-mirror` is the binary's own; and the units
//! cargo-deb finds in `debian/` are the ones in `contrib/systemd/`.

use apt_mirror::config::{Config, LogConfig};
use apt_mirror::logging::{settings, LogArgs};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_apt-mirror");

fn debian() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("debian")
}

fn shipped_config() -> String {
    std::fs::read_to_string(debian().join("mirror.toml")).unwrap()
}

/// `text` with every line that starts with `prefix` followed by
/// `key = value` uncommented, and how many there were.
fn uncomment(text: &str, prefix: &str) -> (String, usize) {
    let mut count = 0;
    let lines: Vec<&str> = text
        .lines()
        .map(|l| match l.strip_prefix(prefix) {
            Some(rest)
                if rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[')
                    && (rest.starts_with('[')
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        })) =>
            {
                count += 1;
                rest
            }
            _ => l,
        })
        .collect();
    (lines.join("\n") + "\n", count)
}

fn parse(text: &str) -> Config {
    Config::parse(Path::new("/etc/apt/mirror.toml"), text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn shipped_config_passes_check_config() {
    let out = Command::new(BIN)
        .arg("-f")
        .arg(debian().join("mirror.toml"))
        .arg("--check-config")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.ends_with("mirror.toml: OK (0 mirrors)\n"),
        "{stdout}"
    );
}

#[test]
fn commented_values_are_the_defaults() {
    let text = shipped_config();
    let (uncommented, count) = uncomment(&text, "#");
    assert_eq!(count, 9, "documented defaults:\n{uncommented}");
    let mut as_shipped = parse(&text);
    let mut all_set = parse(&uncommented);
    // [log] keeps what the file says: compare what the logger makes of it.
    let logger = |log: &LogConfig| settings(log, &LogArgs::default()).unwrap();
    assert_eq!(logger(&all_set.log), logger(&as_shipped.log));
    all_set.log = LogConfig::default();
    as_shipped.log = LogConfig::default();
    assert_eq!(format!("{all_set:?}"), format!("{as_shipped:?}"));
    // The directory the unit may write (ReadWritePaths=).
    assert_eq!(as_shipped.dir, Path::new("/var/spool/apt-mirror"));
    assert!(as_shipped.mirrors.is_empty());
}

#[test]
fn example_mirror_parses() {
    let (with_example, count) = uncomment(&shipped_config(), "# ");
    assert_eq!(count, 12, "example lines:\n{with_example}");
    let config = parse(&with_example);
    let m = &config.mirrors["debian"];
    assert_eq!(m.url.as_str(), "http://deb.example.org/debian");
    assert_eq!(m.keep, 1);
    assert!(m.contents);
    assert!(!m.mirror_source);
    assert!(m.check_valid_until);
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
        "dir",
        "max_conns",
        "progress_interval",
        "filename",
        "level",
        "format",
        "connect_timeout",
        "read_timeout",
        "download_timeout",
        "retries",
        "retry_delay",
        "url",
        "suites",
        "sections",
        "architectures",
        "mirror_source",
        "keyring",
        "languages",
        "contents",
        "keep",
    ] {
        assert!(mentioned(key), "{key} is not in debian/mirror.toml");
    }
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
    let shipped = std::fs::read_to_string(debian().join("apt-mirror.help")).unwrap();
    assert_eq!(
        shipped,
        String::from_utf8_lossy(&out.stdout),
        "debian/apt-mirror.help is stale; regenerate it with\n  \
         cargo run -q --bin apt-mirror -- --help > apt-mirror/debian/apt-mirror.help"
    );
}

#[test]
fn units_in_debian_are_links_to_contrib() {
    for (name, target) in [
        ("apt-mirror.service", "apt-mirror.service"),
        ("apt-mirror.timer", "apt-mirror.timer"),
        // cargo-deb installs <package>.sysusers as sysusers.d/<package>.conf.
        ("apt-mirror.sysusers", "apt-mirror.sysusers.conf"),
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
