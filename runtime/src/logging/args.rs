//! The logging flags both binaries take on their command line
//! (`--log-level`, `--log-format`, `--log-file`), which override `[log]`.

use super::names::{Format, Level};
use super::settings::Overrides;
use std::path::PathBuf;

/// The logging flags of the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log level, overriding `[log] level`: critical, error, warning, info, debug.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<Level>,
    /// Log format, overriding `[log] format`: plain, logfmt, json.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<Format>,
    /// Log file, overriding `[log] filename` (`-`: standard error).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

impl LogArgs {
    /// The flags as overrides of the `[log]` table.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            level: self.log_level,
            format: self.log_format,
            file: self.log_file.clone(),
        }
    }
}
