//! Unit tests of issue #13 item 10 for apt-mirror: every value of the
//! wrong type is reported with the file, the line, the mirror and key (or
//! the full key outside a mirror) and what was expected; and the
//! `check_valid_until` key of item 11.

use super::*;

const HEAD: &str = "dir = \"/m\"\n[mirror.deb]\nurl = \"http://deb.example.org/debian\"\nsuites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\n";

fn message(text: &str) -> String {
    match Config::parse(Path::new("/etc/apt/mirror.toml"), text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

/// `HEAD` + `rest` (which starts on line 7) fails at `line`, naming the
/// mirror "deb", `key` and `expected`.
fn assert_mirror_error(rest: &str, line: usize, key: &str, expected: &str) {
    let msg = message(&format!("{HEAD}{rest}"));
    assert!(
        msg.starts_with(&format!(
            "/etc/apt/mirror.toml:{line}: mirror \"deb\", key \"{key}\": "
        )),
        "{msg}"
    );
    assert!(msg.contains(expected), "{msg} (wanted {expected:?})");
    assert!(!msg.contains("untagged"), "{msg}");
    assert!(!msg.contains(" u64") && !msg.contains(" i64"), "{msg}");
}

/// A top-level error at `line` naming `key`.
fn assert_top_error(text: &str, line: usize, key: &str, expected: &str) {
    let msg = message(text);
    assert!(
        msg.starts_with(&format!("/etc/apt/mirror.toml:{line}: key \"{key}\": ")),
        "{msg}"
    );
    assert!(msg.contains(expected), "{msg} (wanted {expected:?})");
    assert!(!msg.contains(" f64") && !msg.contains(" i64"), "{msg}");
}

#[test]
fn the_issues_cases_name_the_key() {
    assert_mirror_error(
        "mirror_source = \"yes\"\n",
        7,
        "mirror_source",
        "invalid type: string \"yes\", expected true or false (a boolean)",
    );
    assert_mirror_error(
        "keep = 1.5\n",
        7,
        "keep",
        "invalid type: floating point `1.5`, expected a whole number",
    );
    assert_top_error(
        "dir = \"/m\"\nmax_conns = \"10\"\n",
        2,
        "max_conns",
        "invalid type: string \"10\", expected a whole number",
    );
}

#[test]
fn every_value_kind_names_the_key() {
    assert_mirror_error("contents = 1\n", 7, "contents", "expected true or false");
    assert_mirror_error(
        "check_valid_until = \"no\"\n",
        7,
        "check_valid_until",
        "expected true or false",
    );
    assert_mirror_error("languages = \"en\"\n", 7, "languages", "expected an array");
    assert_mirror_error(
        "keyring = 3\n",
        7,
        "keyring",
        "expected a string or an array of strings",
    );
    assert_mirror_error(
        "keyring = [\n  \"a.gpg\",\n  3,\n]\n",
        9,
        "keyring",
        "expected a string",
    );
    assert_mirror_error("keep = \"two\"\n", 7, "keep", "expected a whole number");
    assert_mirror_error(
        "sectoin = [\"x\"]\n",
        7,
        "sectoin",
        "unknown field `sectoin`",
    );
    assert_top_error(
        "dir = \"/m\"\n[http]\nretries = 1.5\n",
        3,
        "http.retries",
        "expected a whole number",
    );
    assert_top_error(
        "dir = \"/m\"\n[http]\nread_timeout = \"5\"\n",
        3,
        "http.read_timeout",
        "expected a number",
    );
    assert_top_error("dir = 3\n", 1, "dir", "expected a string");
    assert_top_error(
        "dir = \"/m\"\n[log]\nlevel = 1\n",
        3,
        "log.level",
        "expected a string",
    );
}

#[test]
fn check_valid_until_defaults_on() {
    let c = Config::parse(Path::new("/etc/apt/mirror.toml"), HEAD).unwrap();
    assert!(c.mirrors["deb"].check_valid_until);
    let c = Config::parse(
        Path::new("/etc/apt/mirror.toml"),
        &format!("{HEAD}check_valid_until = false\n"),
    )
    .unwrap();
    assert!(!c.mirrors["deb"].check_valid_until);
}
