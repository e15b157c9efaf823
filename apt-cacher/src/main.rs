//! The `apt-cacher` binary: parses the command line, reads the
//! configuration (or builds the embedded default from this machine's apt
//! sources when no config file exists), sets up logging and runs the
//! cacher until SIGINT or SIGTERM; SIGUSR1 reopens the log file.
//!
//! Nothing here may die of a broken output: the Rust runtime sets SIGPIPE to
//! "ignore" before `main` (we keep it so), so a write to a dead pipe is an
//! `EPIPE` error, and every write to standard output or error below goes
//! through `runtime::logging::print_out`/`print_err`, which ignore errors
//! (`println!` would panic on them) and give a stuck reader at most a
//! second. Log lines go through `runtime::logging`, which drops and counts
//! what it cannot write.

use anyhow::Context;
use apt_cacher::{config, defaults, Config};
use clap::Parser;
use runtime::logging::LogArgs;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A verifying, never-inconsistent caching proxy for APT.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Configuration file (go-apt-cacher's format works unchanged).
    #[arg(short = 'f', long = "config", global = true)]
    config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Put package files found in DIRs into the cache: only those whose
    /// digest matches an entry of a current index (no network)
    Import {
        /// Directories to walk (e.g. /var/cache/apt/archives)
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// One line per file looked at
        #[arg(short, long)]
        verbose: bool,
    },
}

/// `apt-cacher import`: the report on standard output; an error (a DIR
/// that cannot be read) fails the command.
fn import(config: &Config, dirs: &[PathBuf], verbose: bool) -> anyhow::Result<()> {
    use apt_cacher::import::FileOutcome;
    let report = apt_cacher::import::import(config, dirs)?;
    let mut out = String::new();
    for (file, outcome) in report.files.iter().filter(|_| verbose) {
        let line = match outcome {
            FileOutcome::Imported { keys } => {
                format!("imported {} as {}", file.display(), keys.join(", "))
            }
            FileOutcome::Skipped { reason } => format!("skipped {}: {reason}", file.display()),
            FileOutcome::Unknown => format!("unknown {}", file.display()),
        };
        out.push_str(&line);
        out.push('\n');
    }
    for p in &report.problems {
        out.push_str(&format!("warning: {p}\n"));
    }
    out.push_str(&report.summary());
    out.push('\n');
    runtime::logging::print_out(out);
    Ok(())
}

fn load(args: &Args) -> anyhow::Result<(Config, Option<String>)> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    if args.config.is_none() && !path.exists() {
        let dir = defaults::user_cache_dir();
        let (config, sources) = defaults::default_config(std::path::Path::new("/etc/apt"), &dir);
        let mut note = format!(
            "No {} found: using the embedded default.\nCache directory: {}\nMappings (from this machine's apt sources):\n",
            config::DEFAULT_PATH,
            dir.display()
        );
        for m in &config.mappings {
            // Release signatures: the Signed-By keyring files of its sources.
            let keyrings: Vec<String> =
                m.keyrings.iter().map(|k| k.display().to_string()).collect();
            let signed = if keyrings.is_empty() {
                "unsigned: no Signed-By keyring file".to_string()
            } else {
                format!("keyring {}", keyrings.join(", "))
            };
            note.push_str(&format!("  {} = {} ({signed})\n", m.prefix, m.url));
        }
        note.push_str(&defaults::client_lines(&config, &sources));
        return Ok((config, Some(note)));
    }
    Ok((Config::load(&path)?, None))
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Never panics nor hangs on a dead or stuck standard error.
            runtime::logging::print_err(format!("apt-cacher: {e:#}\n"));
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (config, note) = load(&args)?;
    if let Some(Command::Import { dirs, verbose }) = &args.command {
        return import(&config, dirs, *verbose);
    }
    if args.check_config {
        runtime::logging::print_out(format!(
            "configuration OK ({} mappings)\n",
            config.mappings.len()
        ));
        return Ok(());
    }
    let settings = apt_cacher::logging::settings(&config.log, &args.log.overrides())?;
    // Dropped at the end of this function: flushes the log for at most 1 s.
    let log_key = if args.log.log_file.is_some() {
        "--log-file"
    } else {
        "log.filename"
    };
    let _log = apt_cacher::logging::init(&settings, log_key)?;
    if let Some(note) = note {
        runtime::logging::print_out(format!("{note}\n"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // File reads and syncs run on blocking threads; a bounded pool bounds memory.
        .max_blocking_threads(64)
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async {
        // Registered before `run` (and so before READY=1): from here on no
        // signal gets its default action (SIGUSR1's would end the process).
        let signals = runtime::signals::Signals::register()?;
        let shutdown = CancellationToken::new();
        signals.spawn(
            shutdown.clone(),
            || tracing::info!("shutting down"),
            || {
                tracing::warn!("second signal: exiting at once");
                1
            },
        );
        apt_cacher::run(config, shutdown).await
    });
    // Blocking tasks still running (a file read, an fsync) are not waited for
    // without limit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    result
}

/// How long blocking tasks may take to finish after the server has stopped.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);
