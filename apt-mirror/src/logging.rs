//! Logging settings from the `[log]` table (go-apt-mirror's keys:
//! `filename`, `level`, `format`), overridden by `--log-level`,
//! `--log-format` and `--log-file`. The logger itself is shared with
//! apt-cacher (in the `runtime` crate, `runtime::logging`): lines go through a bounded queue to one
//! writer thread, and a failing destination (a dead pipe reader, a full disk)
//! only drops and counts lines: it never stops or kills the run.
//!
//! `outln!` and `errln!` print the run's own output (summary lines,
//! errors) to standard output or error, ignoring write errors (`println!`
//! panics on a closed pipe) and giving a stuck reader at most a second.

use crate::config::LogConfig;
pub use runtime::logging::{Format, Level, LogGuard, Settings};
use runtime::logging::{KeyError, LogError};

/// Environment variable with `tracing` filter directives that replace the
/// level, e.g. `APT_MIRROR_LOG=info,apt_mirror::fetch=debug`.
pub const FILTER_ENV: &str = "APT_MIRROR_LOG";

/// The logging flags of the command line (shared with apt-cacher).
pub use runtime::logging::LogArgs;

/// Why the logger could not be set up: a bad `[log]` value (the error names
/// the key) or a destination that cannot be opened or started.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A `[log]` key (or its command-line override) has a bad value.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The logger could not be installed (log file, filter, writer thread).
    #[error(transparent)]
    Init(#[from] LogError),
}

/// The logger settings from `[log]` and the command line (which wins):
/// `runtime::logging::settings`. The error names the key.
pub fn settings(log: &LogConfig, args: &LogArgs) -> Result<Settings, LoggingError> {
    Ok(runtime::logging::settings(
        log.table(),
        &args.overrides(),
        FILTER_ENV,
    )?)
}

/// Installs the process-wide logger; keep the guard until exit (dropping it
/// flushes the log for at most a second). `Ok(None)` when a logger is
/// already installed (tests, repeated calls): the first one stays.
pub fn init(settings: &Settings) -> Result<Option<LogGuard>, LoggingError> {
    match runtime::logging::init(settings) {
        Ok(guard) => Ok(Some(guard)),
        Err(LogError::AlreadyInstalled) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `println!` that never panics and never hangs (write errors are ignored;
/// a stuck reader is given a second): `runtime::logging::print_out`.
macro_rules! outln {
    ($($arg:tt)*) => {
        runtime::logging::print_out(format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics and never hangs: `runtime::logging::print_err`.
macro_rules! errln {
    ($($arg:tt)*) => {
        runtime::logging::print_err(format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_wins_over_the_file() {
        let log = LogConfig {
            filename: Some("/var/log/m.log".into()),
            level: Some("error".into()),
            format: Some("logfmt".into()),
        };
        let s = settings(&log, &LogArgs::default()).unwrap();
        assert_eq!(
            (s.level, s.format, s.filename.as_deref()),
            (
                Level::Error,
                Format::Logfmt,
                Some("/var/log/m.log".as_ref())
            )
        );
        let args = LogArgs {
            log_level: Some(Level::Debug),
            log_format: Some(Format::Json),
            log_file: Some("-".into()),
        };
        let s = settings(&log, &args).unwrap();
        assert_eq!(
            (s.level, s.format, s.filename),
            (Level::Debug, Format::Json, None)
        );
    }

    #[test]
    fn bad_names_name_the_key() {
        let log = LogConfig {
            format: Some("text".into()),
            ..LogConfig::default()
        };
        let e = settings(&log, &LogArgs::default()).unwrap_err().to_string();
        assert!(e.contains("log.format") && e.contains("text"), "{e}");
    }
}
