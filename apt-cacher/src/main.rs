//! The `apt-cacher` binary: parses the command line, reads the
//! configuration (or builds the embedded default from this machine's apt
//! sources when no config file exists), sets up logging and runs the
//! cacher until SIGINT or SIGTERM.

use anyhow::Context;
use apt_cacher::{config, defaults, Config};
use clap::Parser;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// A verifying, never-inconsistent caching proxy for APT.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Configuration file (go-apt-cacher's format works unchanged).
    #[arg(short = 'f', long = "config")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
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
            note.push_str(&format!("  {} = {}\n", m.prefix, m.url));
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
            eprintln!("apt-cacher: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (config, note) = load(&args)?;
    if args.check_config {
        println!("configuration OK ({} mappings)", config.mappings.len());
        return Ok(());
    }
    apt_cacher::logging::init(&config.log)?;
    if let Some(note) = note {
        println!("{note}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // File reads and syncs run on blocking threads; a bounded pool bounds memory.
        .max_blocking_threads(64)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!("shutting down");
            token.cancel();
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            std::process::exit(1);
        });
        apt_cacher::run(config, shutdown).await
    })
}
