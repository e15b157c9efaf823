//! Unit tests of apt-cacher's configuration loading (go-apt-cacher's example
//! file, defaults, every rejected value with its location): kept apart from
//! `config.rs` so that file holds only the loader.

use super::*;

/// go-apt-cacher's example configuration, verbatim but for the host names (placeholders).
const GO_EXAMPLE: &str = r#"# listen_address is the listening address.
# Default is ":3142".
listen_address = ":3142"

# Interval to check updates for Release/InRelease files.
# Default: 600 seconds
check_interval = 600

# Cache period for bad HTTP response statuses.
# Default: 3 seconds
cache_period = 3

# Directory for meta data files.
# The directory owner must be the same as the process owner of go-apt-cacher.
meta_dir = "/var/spool/go-apt-cacher/meta"

# Directory for non-meta data files.
# This directory must be different from meta_dir.
# The directory owner must be the same as the process owner of go-apt-cacher.
cache_dir = "/var/spool/go-apt-cacher/cache"

# Capacity for cache_dir.
# Default: 1 GiB
cache_capacity = 1

# Maximum concurrent connections for an upstream server.
# Setting this 0 disables limit on the number of connections.
# Default: 10
max_conns = 10

# log specifies logging configurations.
# Details at https://godoc.org/github.com/cybozu-go/well#LogConfig
[log]
filename = "/var/log/go-apt-cacher.log"
level = "info"
format = "plain"

# mapping declares which prefix maps to a Debian repository URL.
# prefix must match this regexp: ^[a-z0-9._-]+$
[mapping]
ubuntu = "http://archive.example.org/ubuntu"
security = "http://security.example.org/ubuntu"
"#;

#[test]
fn go_apt_cacher_example_parses_unchanged() {
    let c = Config::parse("go.toml", GO_EXAMPLE).unwrap();
    // Every address, IPv6 and IPv4, as Go listens.
    assert_eq!(c.listen, [ListenAddr::Any(3142)]);
    assert_eq!(c.check_interval, Duration::from_secs(600));
    assert_eq!(c.cache_period, Duration::from_secs(3));
    assert_eq!(c.meta_dir, PathBuf::from("/var/spool/go-apt-cacher/meta"));
    assert_eq!(c.cache_capacity, 1 << 30);
    assert_eq!(c.max_conns, 10);
    assert_eq!(c.log.level.as_deref(), Some("info"));
    let prefixes: Vec<_> = c.mappings.iter().map(|m| m.prefix.as_str()).collect();
    assert_eq!(prefixes, ["ubuntu", "security"]);
    assert_eq!(
        c.mappings[0].url.as_str(),
        "http://archive.example.org/ubuntu"
    );
}

fn parse_err(text: &str) -> ConfigError {
    Config::parse("t.toml", text).unwrap_err()
}

const DIRS: &str = "meta_dir = \"/m\"\ncache_dir = \"/c\"\n";

#[test]
fn unknown_key_names_key_and_line() {
    let e = parse_err(&format!("{DIRS}\nlisten_adress = \":1\"\n"));
    assert_eq!(e.key, "listen_adress", "{e}");
    assert_eq!(e.line, 4, "{e}");
    assert!(
        e.to_string()
            .starts_with("t.toml:4: listen_adress: unknown field"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_line() {
    let e = parse_err(&format!("{DIRS}check_interval = \"soon\"\n"));
    assert_eq!(e.line, 3, "{e}");
    assert_eq!(e.key, "check_interval", "{e}");
}

#[test]
fn validation_errors() {
    let e = parse_err("meta_dir = \"/m\"\ncache_dir = \"rel\"\n");
    assert_eq!((e.key.as_str(), e.line), ("cache_dir", 2), "{e}");
    let e = parse_err("meta_dir = \"/m\"\ncache_dir = \"/m/\"\n");
    assert_eq!(e.key, "cache_dir", "{e}");
    let e = parse_err(&format!("{DIRS}[mapping]\nBad = \"http://x/\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("mapping.Bad", 4), "{e}");
    let e = parse_err(&format!("{DIRS}[mapping]\n\"..\" = \"http://x/\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("mapping...", 4), "{e}");
    let e = parse_err(&format!("{DIRS}[mapping]\nok = \"ftp://x/\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("mapping.ok", 4), "{e}");
    let e = parse_err(&format!("{DIRS}[log]\nlevel = \"loud\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("log.level", 4), "{e}");
    let e = parse_err(&format!("{DIRS}listen_address = \"nope\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("listen_address", 3), "{e}");
    let e = parse_err("cache_dir = \"/c\"\n");
    assert_eq!(e.key, "meta_dir", "{e}");
    let e = parse_err(&format!("{DIRS}connect_allow = [\"nohost\"]\n"));
    assert_eq!(e.key, "connect_allow", "{e}");
}

#[test]
fn durations_are_bounded() {
    let huge = "9223372036854775807";
    for key in [
        "connect",
        "idle_read",
        "overall",
        "header_read",
        "client_idle",
        "shutdown_grace",
    ] {
        let e = parse_err(&format!("{DIRS}[timeouts]\n# a comment\n{key} = {huge}\n"));
        assert_eq!(
            (e.key.as_str(), e.line),
            (format!("timeouts.{key}").as_str(), 5),
            "{e}"
        );
        assert!(e.to_string().contains("at most 604800"), "{e}");
        let e = parse_err(&format!("{DIRS}[timeouts]\n{key} = 0\n"));
        assert_eq!(e.key, format!("timeouts.{key}"), "{e}");
        // Seven days is still accepted.
        Config::parse("t.toml", &format!("{DIRS}[timeouts]\n{key} = 604800\n")).unwrap();
    }
    for key in ["check_interval", "cache_period", "generation_grace"] {
        let e = parse_err(&format!("{DIRS}{key} = {huge}\n"));
        assert_eq!((e.key.as_str(), e.line), (key, 3), "{e}");
        let e = parse_err(&format!("{DIRS}{key} = 604801\n"));
        assert_eq!(e.key, key, "{e}");
    }
}

#[test]
fn max_clients_is_bounded() {
    let c = Config::parse("t.toml", DIRS).unwrap();
    assert_eq!(c.max_clients, DEFAULT_MAX_CLIENTS);
    let c = Config::parse("t.toml", &format!("{DIRS}max_clients = 2\n")).unwrap();
    assert_eq!(c.max_clients, 2);
    for bad in ["0", "99999999999"] {
        let e = parse_err(&format!("{DIRS}max_clients = {bad}\n"));
        assert_eq!((e.key.as_str(), e.line), ("max_clients", 3), "{e}");
    }
}

#[test]
fn max_clients_per_host_and_idle_reap() {
    let c = Config::parse("t.toml", DIRS).unwrap();
    assert_eq!(c.max_clients_per_host, DEFAULT_MAX_CLIENTS_PER_HOST);
    assert_eq!(c.timeouts.idle_reap, Duration::from_secs(5));
    let c = Config::parse(
        "t.toml",
        &format!("{DIRS}max_clients_per_host = 8\n[timeouts]\nidle_reap = 2\n"),
    )
    .unwrap();
    assert_eq!(c.max_clients_per_host, 8);
    assert_eq!(c.timeouts.idle_reap, Duration::from_secs(2));
    for bad in ["0", "99999999999"] {
        let e = parse_err(&format!("{DIRS}max_clients_per_host = {bad}\n"));
        assert_eq!((e.key.as_str(), e.line), ("max_clients_per_host", 3), "{e}");
    }
    let e = parse_err(&format!("{DIRS}[timeouts]\nidle_reap = 0\n"));
    assert_eq!((e.key.as_str(), e.line), ("timeouts.idle_reap", 4), "{e}");
}

#[test]
fn table_mapping_with_aliases_and_new_keys() {
    let c = Config::parse(
            "t.toml",
            &format!(
                "{DIRS}connect_allow = [\"example.org:443\"]\ngeneration_grace = 5\n[timeouts]\nconnect = 3\n\
                 [mapping]\ndebian = {{ url = \"https://deb.example/debian/\", aliases = [\"http://m.example/debian\"] }}\n"
            ),
        )
        .unwrap();
    assert_eq!(c.mappings[0].url.as_str(), "https://deb.example/debian");
    assert_eq!(c.mappings[0].aliases[0].as_str(), "http://m.example/debian");
    assert_eq!(c.connect_allow, ["example.org:443"]);
    assert_eq!(c.timeouts.connect, Duration::from_secs(3));
    assert_eq!(c.generation_grace, Duration::from_secs(5));
}

#[test]
fn status_allow_networks() {
    let c = Config::parse("t.toml", DIRS).unwrap();
    assert_eq!(c.status_allow, None);
    let c = Config::parse(
        "t.toml",
        &format!("{DIRS}status_allow = [\"127.0.0.0/8\", \"::1/128\", \"10.1.2.3\"]\n"),
    )
    .unwrap();
    let nets: Vec<String> = c
        .status_allow
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["127.0.0.0/8", "::1/128", "10.1.2.3/32"]);
    // IPv4-mapped nets are compared as the IPv4 nets they map.
    let c = Config::parse(
            "t.toml",
            &format!("{DIRS}status_allow = [\"::ffff:10.0.0.0/104\", \"::ffff:10.1.2.3\", \"::ffff:0:0/96\"]\n"),
        )
        .unwrap();
    let nets: Vec<String> = c
        .status_allow
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["10.0.0.0/8", "10.1.2.3/32", "0.0.0.0/0"]);
    for bad in ["\"10.0.0.0/33\"", "\"nonsense\"", "\"10.0.0.1/8\""] {
        let e = parse_err(&format!("{DIRS}status_allow = [\"::1/128\",\n  {bad}]\n"));
        assert_eq!((e.key.as_str(), e.line), ("status_allow", 4), "{e}");
    }
    let e = parse_err(&format!("{DIRS}status_allow = \"10.0.0.0/8\"\n"));
    assert_eq!((e.key.as_str(), e.line), ("status_allow", 3), "{e}");
}

#[test]
fn listen_address_one_or_many() {
    let c = Config::parse("t.toml", DIRS).unwrap();
    assert_eq!(c.listen, [ListenAddr::Any(3142)]);
    let c = Config::parse("t.toml", &format!("{DIRS}listen_address = \"[::1]:80\"\n")).unwrap();
    assert_eq!(c.listen, [ListenAddr::At("[::1]:80".parse().unwrap())]);
    let c = Config::parse(
        "t.toml",
        &format!("{DIRS}listen_address = [\"127.0.0.1:3142\", '[::1]:3142', \":0\"]\n"),
    )
    .unwrap();
    assert_eq!(
        c.listen,
        [
            ListenAddr::At("127.0.0.1:3142".parse().unwrap()),
            ListenAddr::At("[::1]:3142".parse().unwrap()),
            ListenAddr::Any(0),
        ]
    );
    // A bad entry of a multi-line array: its own line.
    let e = parse_err(&format!(
        "{DIRS}listen_address = [\n  \":3142\",\n  \"localhost:3142\",\n]\n"
    ));
    assert_eq!((e.key.as_str(), e.line), ("listen_address", 5), "{e}");
    assert!(
        e.to_string()
            .starts_with("t.toml:5: listen_address: \"localhost:3142\" is not an address"),
        "{e}"
    );
    let e = parse_err(&format!("{DIRS}listen_address = []\n"));
    assert_eq!((e.key.as_str(), e.line), ("listen_address", 3), "{e}");
    let e = parse_err(&format!("{DIRS}listen_address = 3142\n"));
    assert_eq!((e.key.as_str(), e.line), ("listen_address", 3), "{e}");
    let e = parse_err(&format!("{DIRS}listen_address = [3142]\n"));
    assert_eq!((e.key.as_str(), e.line), ("listen_address", 3), "{e}");
}

#[test]
fn garbage_never_panics() {
    for text in [
        "[",
        "mapping = 3",
        "[mapping]\nx = 1",
        "\u{0}",
        "cache_capacity = -1",
        "[timeouts]\nfoo=1",
    ] {
        let _ = Config::parse("t", text);
    }
}

#[test]
fn mapping_redirect_hosts() {
    let c = Config::parse(
        "t.toml",
        &format!(
            "{DIRS}[mapping]\ndebian = {{ url = \"http://deb.example.org/debian\", redirect_hosts = [\"cdn.example.org\", \"127.0.0.1:8080\"] }}\nplain = \"http://other.example.org/x\"\n"
        ),
    )
    .unwrap();
    assert_eq!(
        c.mappings[0].redirect_hosts,
        [
            RedirectHost::parse("cdn.example.org").unwrap(),
            RedirectHost::parse("127.0.0.1:8080").unwrap()
        ]
    );
    assert!(c.mappings[1].redirect_hosts.is_empty());
    let e = parse_err(&format!(
        "{DIRS}[mapping]\ndebian = {{ url = \"http://deb.example.org/debian\", redirect_hosts = [\"http://cdn.example.org/\"] }}\n"
    ));
    assert_eq!(
        (e.key.as_str(), e.line),
        ("mapping.debian.redirect_hosts", 4),
        "{e}"
    );
    assert!(e.to_string().contains("host or host:port"), "{e}");
}
