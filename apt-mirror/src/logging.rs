//! Logging set-up from the `[log]` table (go-apt-mirror's keys: `filename`,
//! `level`, `format`): tracing to standard error or a file, as plain text,
//! logfmt-like `key=value` text, or JSON Lines. A failing log destination
//! never stops the program: tracing drops lines it cannot write.

use crate::config::LogConfig;
use tracing_subscriber::filter::LevelFilter;

/// Maps go-apt-mirror level names to a tracing filter.
pub fn level_filter(level: Option<&str>) -> LevelFilter {
    match level.unwrap_or("info") {
        "critical" | "error" => LevelFilter::ERROR,
        "warning" | "warn" => LevelFilter::WARN,
        "debug" => LevelFilter::DEBUG,
        _ => LevelFilter::INFO,
    }
}

/// Installs the global logger described by `log` (once per process; later
/// calls do nothing). Returns an error naming the log file if it cannot be opened.
pub fn init(log: &LogConfig) -> Result<(), String> {
    let level = level_filter(log.level.as_deref());
    let json = log.format.as_deref() == Some("json");
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false);
    let result = match &log.filename {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let writer = std::sync::Mutex::new(file);
            if json {
                builder.json().with_writer(writer).try_init()
            } else {
                builder.with_writer(writer).try_init()
            }
        }
        None => {
            if json {
                builder.json().with_writer(std::io::stderr).try_init()
            } else {
                builder.with_writer(std::io::stderr).try_init()
            }
        }
    };
    // Already installed (tests, repeated calls): keep the first.
    let _ = result;
    Ok(())
}
