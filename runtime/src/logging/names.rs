//! The names of log levels and line formats, as go-apt-cacher and
//! go-apt-mirror spell them in `[log]` (cybozu-go/well's names): the one
//! list both binaries, their config checks and their `--log-*` flags use.

use std::str::FromStr;

/// The least severe level logged. Names are go-apt-cacher's (cybozu-go/well).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    /// `critical` or `error`.
    Error,
    /// `warning` or `warn`.
    Warn,
    /// `info` (the default).
    #[default]
    Info,
    /// `debug`.
    Debug,
}

impl Level {
    pub(super) fn directive(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

impl FromStr for Level {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        match s {
            "critical" | "error" => Ok(Level::Error),
            "warning" | "warn" => Ok(Level::Warn),
            "info" => Ok(Level::Info),
            "debug" => Ok(Level::Debug),
            _ => Err(NameError {
                value: s.to_string(),
                expected: "critical, error, warning, warn, info, debug",
            }),
        }
    }
}

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `plain`: `2026-11-27T10:00:00.123Z  INFO target: message key=value`.
    #[default]
    Plain,
    /// `logfmt`: `time=… level=info msg="…" key=value`, values quoted only when needed.
    Logfmt,
    /// `json`: JSON Lines, one object per line with `timestamp`, `level`,
    /// `message` and the event's fields at the top level.
    Json,
}

impl FromStr for Format {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        match s {
            "plain" => Ok(Format::Plain),
            "logfmt" => Ok(Format::Logfmt),
            "json" => Ok(Format::Json),
            _ => Err(NameError {
                value: s.to_string(),
                expected: "plain, logfmt, json",
            }),
        }
    }
}

/// An unknown level or format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {value:?}: expected one of {expected}")]
pub struct NameError {
    /// The name given.
    pub value: String,
    /// The names accepted.
    pub expected: &'static str,
}

/// Every level name [`Level`] accepts, in the order error messages list them.
pub const LEVEL_NAMES: &[&str] = &["critical", "error", "warning", "warn", "info", "debug"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!("critical".parse(), Ok(Level::Error));
        assert_eq!("warning".parse(), Ok(Level::Warn));
        assert_eq!("debug".parse(), Ok(Level::Debug));
        assert_eq!("logfmt".parse(), Ok(Format::Logfmt));
        let e = "loud".parse::<Level>().unwrap_err();
        assert!(e.to_string().contains("\"loud\""), "{e}");
        assert!("Info".parse::<Level>().is_err());
        assert!("text".parse::<Format>().is_err());
    }
}
