//! Where the logger's settings come from: the `[log]` table of a
//! configuration file ([`LogConfig`], cybozu-go/well's keys, used by both
//! go-apt-cacher and go-apt-mirror), overridden by the command line
//! ([`Overrides`]) and by a `tracing` filter in an environment variable.

use super::names::{Format, Level, NameError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[log]` as both binaries' configuration files have it (cybozu-go/well's
/// `LogConfig`): the names are checked when the logger is set up
/// ([`settings`]) or earlier by the binary's config check.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log file; standard error when absent.
    pub filename: Option<PathBuf>,
    /// `critical`, `error`, `warning`, `info` or `debug` ([`super::LEVEL_NAMES`]).
    pub level: Option<String>,
    /// `plain`, `logfmt` or `json`.
    pub format: Option<String>,
}

impl LogConfig {
    /// The table as [`settings`] reads it.
    pub fn table(&self) -> LogTable<'_> {
        LogTable {
            filename: self.filename.as_deref(),
            level: self.level.as_deref(),
            format: self.format.as_deref(),
        }
    }
}

/// What [`super::init`] sets up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The least severe level logged.
    pub level: Level,
    /// The line format.
    pub format: Format,
    /// The log file (appended to, created if missing); standard error when `None`.
    pub filename: Option<PathBuf>,
    /// `tracing` filter directives (e.g. from an environment variable) that
    /// replace `level` when set, e.g. `info,apt_cacher::download=debug`.
    pub directives: Option<String>,
}

/// Command-line overrides of the `[log]` table: where given, they win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--log-level`.
    pub level: Option<Level>,
    /// `--log-format`.
    pub format: Option<Format>,
    /// `--log-file` (`-` is standard error).
    pub file: Option<PathBuf>,
}

/// The `[log]` table of a configuration file, as written (cybozu-go/well's
/// keys, used by both go-apt-cacher and go-apt-mirror).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogTable<'a> {
    /// `filename`: the log file; standard error when absent.
    pub filename: Option<&'a Path>,
    /// `level`: a [`Level`] name.
    pub level: Option<&'a str>,
    /// `format`: a [`Format`] name.
    pub format: Option<&'a str>,
}

/// A bad value in the `[log]` table, naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key \"log.{key}\": {error}")]
pub struct KeyError {
    /// The key, without the `log.` prefix.
    pub key: &'static str,
    /// What is wrong with its value.
    pub error: NameError,
}

/// The logger settings from a `[log]` table and the command line (which
/// wins); `filter_env` names the environment variable whose `tracing`
/// directives, when set and not empty, replace the level.
pub fn settings(
    table: LogTable<'_>,
    overrides: &Overrides,
    filter_env: &str,
) -> Result<Settings, KeyError> {
    let level = match (overrides.level, table.level) {
        (Some(l), _) => l,
        (None, Some(name)) => name.parse().map_err(|error| KeyError {
            key: "level",
            error,
        })?,
        (None, None) => Level::default(),
    };
    let format = match (overrides.format, table.format) {
        (Some(f), _) => f,
        (None, Some(name)) => name.parse().map_err(|error| KeyError {
            key: "format",
            error,
        })?,
        (None, None) => Format::default(),
    };
    let filename = match &overrides.file {
        Some(f) if f.as_os_str() == "-" => None,
        Some(f) => Some(f.clone()),
        None => table.filename.map(Path::to_path_buf),
    };
    Ok(Settings {
        level,
        format,
        filename,
        directives: std::env::var(filter_env).ok().filter(|d| !d.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_table_and_command_line() {
        let table = LogTable {
            filename: Some(Path::new("/var/log/x.log")),
            level: Some("warning"),
            format: Some("json"),
        };
        let s = settings(table, &Overrides::default(), "APTINDEX_TEST_UNSET_LOG").unwrap();
        assert_eq!(
            (s.level, s.format, s.filename.as_deref(), s.directives),
            (
                Level::Warn,
                Format::Json,
                Some(Path::new("/var/log/x.log")),
                None
            )
        );
        let o = Overrides {
            level: Some(Level::Debug),
            format: Some(Format::Logfmt),
            file: Some("-".into()),
        };
        let s = settings(table, &o, "APTINDEX_TEST_UNSET_LOG").unwrap();
        assert_eq!(
            (s.level, s.format, s.filename),
            (Level::Debug, Format::Logfmt, None)
        );
        let s = settings(LogTable::default(), &Overrides::default(), "X_UNSET").unwrap();
        assert_eq!(s, Settings::default());
        let bad = LogTable {
            format: Some("text"),
            ..LogTable::default()
        };
        let e = settings(bad, &Overrides::default(), "X_UNSET").unwrap_err();
        assert_eq!(e.key, "format");
        let e = e.to_string();
        assert!(
            e.starts_with("key \"log.format\": ") && e.contains("\"text\""),
            "{e}"
        );
    }
}
