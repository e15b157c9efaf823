//! The cacher's logging settings: the `[log]` table (`filename`, `level`,
//! `format`), overridden by the command line, turned into
//! [`runtime::logging::Settings`]. The logger itself (a bounded queue and a
//! writer thread that never blocks or kills the server) is shared with
//! apt-mirror and lives in the `runtime` crate (`runtime::logging`).

use crate::config::LogConfig;
pub use runtime::logging::{Format, Level, LogGuard, Overrides, Settings};

/// Environment variable with `tracing` filter directives that replace the
/// level, e.g. `APT_CACHER_LOG=info,apt_cacher::download=debug`.
pub const FILTER_ENV: &str = "APT_CACHER_LOG";

/// The logger settings from `[log]` and the command line (which wins):
/// `runtime::logging::settings`. The error names the key.
pub fn settings(log: &LogConfig, overrides: &Overrides) -> anyhow::Result<Settings> {
    Ok(runtime::logging::settings(
        log.table(),
        overrides,
        FILTER_ENV,
    )?)
}

/// Installs the process-wide logger. Call once, at start; keep the guard
/// until exit (dropping it flushes the log for at most a second). A log
/// file that cannot be opened is named with `key`, the setting that chose
/// it (`log.filename` or `--log-file`), and what to do
/// ([`crate::writable`]).
pub fn init(settings: &Settings, key: &'static str) -> anyhow::Result<LogGuard> {
    runtime::logging::init(settings).map_err(|e| crate::writable::log_error(e, key))
}

/// Log lines dropped so far because the destination failed (a dead pipe
/// reader, a full disk) or could not keep up. Shown in `/metrics`.
pub fn dropped_lines() -> u64 {
    runtime::logging::dropped_lines()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_wins_over_the_file() {
        let log = LogConfig {
            filename: Some("/var/log/x.log".into()),
            level: Some("warning".into()),
            format: Some("json".into()),
        };
        let s = settings(&log, &Overrides::default()).unwrap();
        assert_eq!(
            (s.level, s.format, s.filename.as_deref()),
            (Level::Warn, Format::Json, Some("/var/log/x.log".as_ref()))
        );
        let o = Overrides {
            level: Some(Level::Debug),
            format: Some(Format::Logfmt),
            file: Some("-".into()),
        };
        let s = settings(&log, &o).unwrap();
        assert_eq!(
            (s.level, s.format, s.filename),
            (Level::Debug, Format::Logfmt, None)
        );
    }

    #[test]
    fn bad_names_name_the_key() {
        let log = LogConfig {
            level: Some("loud".into()),
            ..LogConfig::default()
        };
        let e = settings(&log, &Overrides::default()).unwrap_err();
        assert!(format!("{e:#}").contains("log.level"), "{e:#}");
    }
}
