//! An apt-cacher for end-to-end tests: its configuration text for one
//! mapping `debian` → an upstream URL (or any mapping value: a URL list, a
//! keyring), with its directories under a test's temporary directory, and
//! an in-process start on `127.0.0.1:0`.

use std::path::Path;

/// The configuration text of a test cacher: `meta_dir` and `cache_dir` under
/// `dir`, listening on `listen`, one mapping `debian` → `upstream_url`, and
/// `extra` lines (e.g. `"check_interval = 0"`) before the mapping table.
pub fn config_text(dir: &Path, listen: &str, upstream_url: &str, extra: &str) -> String {
    config_text_with(
        dir,
        &format!("{listen:?}"),
        &format!("{upstream_url:?}"),
        extra,
    )
}

/// [`config_text`] with TOML values for `listen_address` (`"\"[::1]:0\""`,
/// an array...) and for the mapping `debian` (`"\"http://...\""`, or a table
/// such as `"{ url = [\"http://a/d\", \"http://b/d\"] }"`).
pub fn config_text_with(dir: &Path, listen: &str, mapping: &str, extra: &str) -> String {
    format!(
        "listen_address = {listen}\nmeta_dir = \"{}\"\ncache_dir = \"{}\"\n{extra}\n[mapping]\ndebian = {mapping}\n",
        dir.join("meta").display(),
        dir.join("cache").display()
    )
}

/// Starts a cacher in this process (see [`config_text`]) on a free port of
/// 127.0.0.1; its address is `Running::addr`. Panics on failure: tests only.
pub async fn start(dir: &Path, upstream_url: &str, extra: &str) -> apt_cacher::Running {
    start_text(&config_text(dir, "127.0.0.1:0", upstream_url, extra)).await
}

/// Like [`start`], listening on `listen`, a TOML value: `"\"[::1]:0\""`,
/// `"\":0\""` (every address) or an array such as
/// `"[\"127.0.0.1:0\", \"[::1]:0\"]"`. Its addresses are `Running::addrs`.
pub async fn start_listening(
    dir: &Path,
    listen: &str,
    upstream_url: &str,
    extra: &str,
) -> apt_cacher::Running {
    start_text(&config_text_with(
        dir,
        listen,
        &format!("{upstream_url:?}"),
        extra,
    ))
    .await
}

/// Like [`start`], with the TOML value `mapping` for the mapping `debian`
/// (see [`config_text_with`]).
pub async fn start_with_mapping(dir: &Path, mapping: &str, extra: &str) -> apt_cacher::Running {
    start_text(&config_text_with(dir, "\"127.0.0.1:0\"", mapping, extra)).await
}

/// Starts a cacher in this process from configuration `text`.
async fn start_text(text: &str) -> apt_cacher::Running {
    let config = apt_cacher::Config::parse("test.toml", text).expect("test cacher config");
    apt_cacher::start(config, apt_cacher::CancellationToken::new())
        .await
        .expect("starting the test cacher")
}
