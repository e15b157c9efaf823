//! `apt-mirror`: verified, atomic, incremental mirrors of APT repositories,
//! compatible with go-apt-mirror's configuration and directory layout.
//!
//! A run ([`run`]) reads the configuration ([`config`]), takes the lock of
//! the mirror root ([`lock`]), and updates each selected mirror
//! ([`mirror`]) concurrently: it plans what to fetch ([`plan`]), downloads
//! through one shared client ([`fetch`]) while reporting [`progress`], builds
//! and publishes a new snapshot ([`snapshot`], sharing unchanged pool files
//! with the previous ones: [`pool`]), then prints one line per
//! mirror and writes a JSON run [`summary`].

#![warn(missing_docs)]

pub mod config;
pub mod fetch;
pub mod info;
pub mod lock;
pub mod logging;
pub mod mirror;
pub mod plan;
pub mod pool;
pub mod progress;
pub mod snapshot;
pub mod summary;

#[cfg(test)]
mod modes_tests;

use config::{Config, MirrorConfig};
use std::path::PathBuf;
use std::sync::Arc;
pub use tokio_util::sync::CancellationToken;

/// Command-line arguments.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "apt-mirror",
    version,
    about = "Verified, atomic, incremental APT repository mirrors"
)]
pub struct Args {
    /// Configuration file.
    #[arg(short = 'f', long = "config", value_name = "CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Validate the configuration (and read the keyrings), then exit.
    #[arg(long)]
    pub check_config: bool,
    /// Mirrors to update (default: every mirror in the configuration).
    #[arg(value_name = "MIRROR_ID")]
    pub mirrors: Vec<String>,
}

/// The whole command line: [`Args`] plus the logging flags (kept apart so
/// that code building an [`Args`] need not know about logging).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "apt-mirror",
    version,
    about = "Verified, atomic, incremental APT repository mirrors"
)]
struct CommandLine {
    #[command(flatten)]
    args: Args,
    #[command(flatten)]
    log: logging::LogArgs,
}

/// Exit statuses.
pub mod exit {
    /// Every selected mirror is up to date.
    pub const OK: u8 = 0;
    /// At least one mirror failed to update (or the run was interrupted).
    pub const FAILED: u8 = 1;
    /// The configuration or the command line is invalid (nothing was touched).
    pub const CONFIG: u8 = 2;
    /// Another apt-mirror holds the lock of the mirror root (EX_TEMPFAIL).
    pub const LOCKED: u8 = 75;
}

/// The whole program, as `main` runs it: parses `argv` (program name
/// first), starts a runtime, installs signal handlers and logging, runs, and
/// returns the exit status. SIGUSR1 reopens the log file.
///
/// Nothing here may die of a broken output: the Rust runtime sets SIGPIPE to
/// "ignore" before `main` (we keep it so), so writes to a dead pipe fail with
/// `EPIPE`; our own output ignores such errors and log lines are dropped and
/// counted (`runtime::logging`).
pub fn main_from_args<I, T>(argv: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let CommandLine { args, log } = match <CommandLine as clap::Parser>::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::CONFIG
            } else {
                exit::OK
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            logging::errln!("apt-mirror: cannot start the runtime: {e}");
            return exit::FAILED;
        }
    };
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        install_signal_handlers(cancel.clone());
        main_with_logging(&args, &log, cancel).await
    })
}

/// Sets up logging from the configuration's `[log]` and the logging flags,
/// then [`run`]s; the log is flushed (for at most a second) before returning.
pub async fn main_with_logging(
    args: &Args,
    flags: &logging::LogArgs,
    cancel: CancellationToken,
) -> u8 {
    // A configuration that does not load is reported by `run_with_cancel`.
    let log = Config::load(&args.config)
        .map(|c| c.log)
        .unwrap_or_default();
    let _guard = match logging::settings(&log, flags).and_then(|s| logging::init(&s)) {
        Ok(guard) => guard,
        Err(e) => {
            logging::errln!("apt-mirror: {}: {e}", args.config.display());
            return exit::CONFIG;
        }
    };
    run_with_cancel(args, cancel).await
}

/// Cancels `cancel` on the first SIGINT or SIGTERM; exits at once on the
/// second. SIGUSR1 reopens the log file (logrotate's `create` mode).
/// `runtime::signals` does the work.
pub fn install_signal_handlers(cancel: CancellationToken) {
    match runtime::signals::Signals::register() {
        Ok(signals) => signals.spawn(
            cancel,
            || tracing::warn!("signal received: stopping; current snapshots are kept"),
            || {
                logging::errln!("apt-mirror: second signal, exiting now");
                130
            },
        ),
        Err(e) => tracing::warn!(error = %e, "cannot install signal handlers"),
    }
}

/// Runs apt-mirror as the command line asks; returns the exit status
/// (see [`exit`]). Logging is whatever the caller installed.
pub async fn run(args: &Args) -> u8 {
    run_with_cancel(args, CancellationToken::new()).await
}

/// [`run`], stopping early (current snapshots untouched, non-zero status)
/// when `cancel` is cancelled.
pub async fn run_with_cancel(args: &Args, cancel: CancellationToken) -> u8 {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            logging::errln!("apt-mirror: {e}");
            return exit::CONFIG;
        }
    };
    let mut selected: Vec<&MirrorConfig> = Vec::new();
    if args.mirrors.is_empty() {
        selected.extend(config.mirrors.values());
    } else {
        for id in &args.mirrors {
            match config.mirrors.get(id) {
                Some(m) if !selected.iter().any(|s| s.id == *id) => selected.push(m),
                Some(_) => {}
                None => {
                    logging::errln!(
                        "apt-mirror: unknown mirror ID {id:?}: {} defines {:?}",
                        args.config.display(),
                        config.mirrors.keys().collect::<Vec<_>>()
                    );
                    return exit::CONFIG;
                }
            }
        }
    }
    if args.check_config {
        for m in &selected {
            if !m.keyring.is_empty() {
                if let Err(e) = aptindex::signature::Keyring::from_files(&m.keyring) {
                    logging::errln!(
                        "apt-mirror: {}: mirror {:?}, key \"keyring\": {e}",
                        args.config.display(),
                        m.id
                    );
                    return exit::CONFIG;
                }
            }
        }
        logging::outln!(
            "{}: OK ({} mirrors)",
            args.config.display(),
            config.mirrors.len()
        );
        return exit::OK;
    }
    for m in &selected {
        if m.keyring.is_empty() {
            tracing::warn!(mirror = %m.id, "no keyring configured: signatures are NOT checked");
        }
    }

    let _lock = match lock::RunLock::acquire(&config.dir) {
        Ok(l) => l,
        Err(e @ lock::LockError::Busy { .. }) => {
            logging::errln!("apt-mirror: {e}");
            return exit::LOCKED;
        }
        Err(e) => {
            logging::errln!("apt-mirror: {e}");
            return exit::FAILED;
        }
    };
    let mut redirects = runtime::http::RedirectRules::default();
    for m in config.mirrors.values() {
        redirects.add(&m.id, &[&m.url], &m.redirect_hosts);
    }
    let fetcher = match fetch::Fetcher::new(
        config.http.clone(),
        config.max_conns,
        redirects,
        cancel.clone(),
    ) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            logging::errln!("apt-mirror: {e}");
            return exit::FAILED;
        }
    };
    let ctx = mirror::Context {
        root: config.dir.clone(),
        fetcher,
        parallel: if config.max_conns == 0 {
            64
        } else {
            config.max_conns
        },
        progress_interval: config.progress_interval,
        cancel,
    };
    let start = chrono::Utc::now();
    let reports =
        futures_util::future::join_all(selected.iter().map(|m| mirror::update(&ctx, m))).await;
    let end = chrono::Utc::now();
    for r in &reports {
        logging::outln!("{}", r.line());
        if r.result == mirror::Outcome::Failed {
            tracing::error!(mirror = %r.id, error = r.error.as_deref().unwrap_or(""), "mirror not updated");
        }
    }
    if let Err(e) = summary::write(&config.dir, start, end, &reports) {
        tracing::warn!(error = %e, "cannot write the run summary");
    }
    if reports.iter().all(|r| r.result != mirror::Outcome::Failed) {
        exit::OK
    } else {
        exit::FAILED
    }
}
