//! Unit tests of issue #13 item 10 for apt-cacher: every value of the
//! wrong type is reported with the file, the line, the full key and what
//! was expected (serde's "data did not match any variant of untagged
//! enum" and bare "expected u64" never reach the user).

use super::*;

const DIRS: &str = "meta_dir = \"/m\"\ncache_dir = \"/c\"\n";

/// Parses `DIRS` + `rest` (so `rest` starts on line 3) and checks the error.
fn assert_error(rest: &str, line: usize, key: &str, expected: &str) {
    let text = format!("{DIRS}{rest}");
    let e = Config::parse("/etc/apt-cacher.toml", &text).unwrap_err();
    let msg = e.to_string();
    assert_eq!((e.key.as_str(), e.line), (key, line), "{msg}");
    assert!(
        msg.starts_with(&format!("/etc/apt-cacher.toml:{line}: {key}: ")),
        "{msg}"
    );
    assert!(msg.contains(expected), "{msg} (wanted {expected:?})");
    assert!(!msg.contains("untagged"), "{msg}");
    assert!(!msg.contains(" u64") && !msg.contains(" i64"), "{msg}");
}

#[test]
fn integer_given_as_string_names_the_key() {
    assert_error(
        "max_conns = \"10\"\n",
        3,
        "max_conns",
        "invalid type: string \"10\", expected a whole number (0 or more)",
    );
    assert_error(
        "[timeouts]\nconnect = \"5\"\n",
        4,
        "timeouts.connect",
        "expected a whole number",
    );
}

#[test]
fn float_for_integer_names_the_key() {
    assert_error(
        "cache_capacity = 1.5\n",
        3,
        "cache_capacity",
        "floating point `1.5`, expected a whole number",
    );
    assert_error(
        "max_clients = -1\n",
        3,
        "max_clients",
        "expected a whole number (0 or more)",
    );
}

#[test]
fn bool_and_string_mix_ups_name_the_key() {
    assert_error(
        "check_interval = true\n",
        3,
        "check_interval",
        "boolean `true`, expected a whole number",
    );
    assert_error("[log]\nlevel = 3\n", 4, "log.level", "expected a string");
    assert_error(
        "meta_dir2 = 1\n",
        3,
        "meta_dir2",
        "unknown field `meta_dir2`",
    );
}

#[test]
fn array_expected_names_the_key() {
    assert_error(
        "connect_allow = \"example.org:443\"\n",
        3,
        "connect_allow",
        "expected an array",
    );
    assert_error(
        "status_allow = [\n  \"::1\",\n  8,\n]\n",
        5,
        "status_allow",
        "expected a string",
    );
    assert_error(
        "listen_address = 3142\n",
        3,
        "listen_address",
        "expected a string or an array of strings",
    );
    assert_error(
        "listen_address = [\n  \":3142\",\n  3143,\n]\n",
        5,
        "listen_address",
        "expected a string",
    );
}

#[test]
fn mapping_errors_name_the_sub_key() {
    // The case: an unknown sub-key of an inline mapping table.
    assert_error(
        "[mapping]\ndebian = { url = \"http://deb.example.org/debian\", alias = [] }\n",
        4,
        "mapping.debian.alias",
        "unknown field `alias`, expected one of `url`, `aliases`, `redirect_hosts`",
    );
    // The same as a table of its own.
    assert_error(
        "[mapping.debian]\nurl = \"http://deb.example.org/debian\"\n\nalias = []\n",
        6,
        "mapping.debian.alias",
        "unknown field `alias`",
    );
    assert_error(
        "[mapping]\ndebian = 3\n",
        4,
        "mapping.debian",
        "expected an upstream URL string or a table { url = \"...\", aliases = [\"...\"] }",
    );
    assert_error(
        "[mapping]\ndebian = { url = \"http://deb.example.org/debian\", aliases = \"http://m.example.org/debian\" }\n",
        4,
        "mapping.debian.aliases",
        "expected an array",
    );
    assert_error(
        "[mapping]\ndebian = { aliases = [] }\n",
        4,
        "mapping.debian.url",
        "missing field `url`",
    );
    assert_error(
        "[mapping]\ndebian = { url = 5 }\n",
        4,
        "mapping.debian.url",
        "expected a string",
    );
}
