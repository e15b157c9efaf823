//! Unit tests of apt-mirror's configuration loading (go-apt-mirror's sample
//! file, defaults, every rejected key with its location): kept apart from
//! `config.rs` so that file holds only the loader.

use super::*;

/// go-apt-mirror's sample mirror.toml, verbatim but for the host names (placeholders).
const GO_SAMPLE: &str = r#"# dir is the directory where mirrors are created.
dir = "/var/spool/go-apt-mirror"

# max_conns specifies the maximum concurrent connections to an
# upstream host.  Zero means no limit.
max_conns = 10

# log specifies logging configurations.
# Details at https://godoc.org/github.com/cybozu-go/well#LogConfig
[log]
#filename = "/path/to/file"
level = "info"
format = "plain"

# mirror.<name> define a mirror.
# <name> must match this regexp: ^[a-z0-9_]+$
[mirror.ubuntu]
url = "http://archive.example.org/ubuntu"
suites = ["xenial", "xenial-updates"]
sections = ["main", "restricted", "universe"]
mirror_source = true
architectures = ["amd64", "i386"]

[mirror.security]
url = "http://security.example.org/ubuntu"
suites = ["xenial-security"]
sections = ["main", "restricted", "universe"]
mirror_source = true
architectures = ["amd64", "i386"]
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/apt/mirror.toml"), text)
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn go_apt_mirror_sample_parses_unchanged() {
    let c = parse(GO_SAMPLE).unwrap();
    assert_eq!(c.dir, PathBuf::from("/var/spool/go-apt-mirror"));
    assert_eq!(c.max_conns, 10);
    assert_eq!(c.log.level.as_deref(), Some("info"));
    assert_eq!(c.mirrors.len(), 2);
    let u = &c.mirrors["ubuntu"];
    assert_eq!(u.url.as_str(), "http://archive.example.org/ubuntu");
    assert_eq!(u.suites, ["xenial", "xenial-updates"]);
    assert_eq!(u.sections, ["main", "restricted", "universe"]);
    assert_eq!(u.architectures, ["amd64", "i386", "all"]);
    assert!(u.mirror_source);
    assert!(u.keyring.is_empty());
    assert_eq!(u.languages, None);
    assert!(u.contents);
    assert_eq!(u.keep, 1);
    assert!(!u.is_flat());
}

#[test]
fn new_keys_and_flat() {
    let c = parse(
        r#"dir = "/m"
max_conns = 0
[http]
read_timeout = 0.5
retries = 1
[mirror.a-b_1]
url = "https://example.org/repo/"
suites = ["/"]
keyring = "keys/a.gpg"
languages = ["en"]
contents = false
keep = 3
[mirror.c]
url = "http://h/d"
suites = ["s"]
sections = ["main", "main/debian-installer"]
architectures = ["all"]
keyring = ["/k1.gpg", "/k2.asc"]
"#,
    )
    .unwrap();
    assert_eq!(c.max_conns, 0);
    assert_eq!(c.http.read_timeout, Duration::from_millis(500));
    assert_eq!(c.http.retries, 1);
    let a = &c.mirrors["a-b_1"];
    assert!(a.is_flat());
    assert_eq!(a.keyring, [PathBuf::from("/etc/apt/keys/a.gpg")]);
    assert_eq!(a.languages.as_deref(), Some(&["en".to_string()][..]));
    assert!(!a.contents);
    assert_eq!(a.keep, 3);
    let m = &c.mirrors["c"];
    assert_eq!(m.architectures, ["all"]);
    assert_eq!(m.keyring.len(), 2);
}

#[test]
fn unknown_key_names_mirror_key_and_line() {
    let e = err(
        "dir = \"/m\"\n[mirror.deb]\nurl = \"http://h/\"\nsuites = [\"s\"]\nsection = [\"main\"]\n",
    );
    assert!(e.contains("mirror.toml:5:"), "{e}");
    assert!(e.contains("\"deb\""), "{e}");
    assert!(e.contains("section"), "{e}");
    let e = err("dir = \"/m\"\nmaxconns = 3\n");
    assert!(e.contains(":2:") && e.contains("maxconns"), "{e}");
}

#[test]
fn validation_errors_name_mirror_key_and_line() {
    let e = err("dir = \"/m\"\n[mirror.x]\nurl = \"ftp://h/\"\nsuites=[\"s\"]\nsections=[\"main\"]\narchitectures=[\"amd64\"]\n");
    assert!(
        e.contains(":3:") && e.contains("\"x\"") && e.contains("\"url\""),
        "{e}"
    );
    let e = err("dir = \"/m\"\n[mirror.x]\nurl = \"http://h/\"\nsuites=[\"s\"]\narchitectures=[\"amd64\"]\n");
    assert!(e.contains("\"sections\""), "{e}");
    let e = err("dir = \"/m\"\n[mirror.x]\nurl = \"http://h/\"\nsuites=[\"s\", \"f/\"]\nsections=[\"main\"]\narchitectures=[\"amd64\"]\n");
    assert!(e.contains(":4:") && e.contains("mixes"), "{e}");
    let e = err("dir = \"/m\"\n[mirror.x]\nurl = \"http://h/\"\nsuites=[\"../s\"]\nsections=[\"main\"]\narchitectures=[\"amd64\"]\n");
    assert!(e.contains("invalid suite"), "{e}");
    let e = err("dir = \"/m\"\n\n[mirror.Bad]\nurl = \"http://h/\"\n");
    assert!(e.contains(":3:") && e.contains("ID"), "{e}");
    let e = err("dir = \"/m\"\nmax_conns = -1\n");
    assert!(e.contains(":2:") && e.contains("max_conns"), "{e}");
    let e = err("max_conns = 1\n");
    assert!(e.contains("\"dir\""), "{e}");
    let e = err("dir = \"/m\"\n[mirror.x]\nurl = \"http://h/\"\nsuites=[\"s\"]\nsections=[\"main\"]\narchitectures=[\"amd64\"]\nkeep = \"two\"\n");
    assert!(e.contains(":7:"), "{e}");
}

#[test]
fn garbage_does_not_panic() {
    for t in [
        "[",
        "dir = ",
        "\u{0}",
        "[mirror]\nx=1",
        "[mirror.a]\nkeyring = 3",
        "[[mirror.a]]",
    ] {
        let _ = parse(t);
    }
}

#[test]
fn redirect_hosts() {
    let base = "dir = \"/m\"\n[mirror.x]\nurl = \"http://h/\"\nsuites=[\"s\"]\nsections=[\"main\"]\narchitectures=[\"amd64\"]\n";
    assert!(parse(base).unwrap().mirrors["x"].redirect_hosts.is_empty());
    let c = parse(&format!(
        "{base}redirect_hosts = [\"cdn.example.org:81\"]\n"
    ))
    .unwrap();
    assert_eq!(
        c.mirrors["x"].redirect_hosts,
        [RedirectHost::parse("cdn.example.org:81").unwrap()]
    );
    let e = err(&format!("{base}redirect_hosts = [\"cdn.example.org/x\"]\n"));
    assert!(
        e.contains(":7:") && e.contains("\"x\"") && e.contains("redirect_hosts"),
        "{e}"
    );
}
