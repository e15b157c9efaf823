//! Logging for the `apt-cacher` and `apt-mirror` binaries (cargo feature
//! `logging`): `tracing` events formatted as plain text, logfmt or JSON Lines,
//! written to standard error or a file by a writer that never blocks the
//! program and never kills it.
//!
//! The design, in one paragraph: the `tracing` subscriber formats each event
//! into one line and puts it into a bounded in-memory queue
//! ([`QUEUE_LINES`] lines, [`QUEUE_BYTES`] bytes); it never waits. One
//! dedicated thread takes the lines out and writes them. When the queue is
//! full (the destination is slow or stuck) or a write fails (`EPIPE`: the
//! reader of the pipe died; `ENOSPC`: the disk is full; any other error) the
//! line is dropped and counted ([`dropped_lines`]), and the next line is tried
//! again, so logging resumes by itself once the destination recovers. Nothing
//! here prints, panics or exits on a log error. [`reopen`] (the binaries call
//! it on `SIGUSR1`) makes the thread open the log file again by name, for
//! logrotate's `create` mode; on standard error it does nothing. At exit,
//! dropping the [`LogGuard`] gives the thread a bounded time ([`EXIT_FLUSH`])
//! to write what is queued, so a stuck pipe cannot hang the exit.
//! [`print_out`] and [`print_err`] are the same promise for a program's own
//! output (summaries, fatal errors): errors ignored, at most a second's wait.
//!
//! A note on `SIGPIPE`: the Rust runtime sets it to "ignore" before `main`,
//! so a write to a dead pipe returns `EPIPE` instead of killing the process;
//! this module relies on that (and only ever sees the error).

mod args;
mod format;
mod names;
mod print;
mod queue;
mod settings;

pub use args::LogArgs;
pub use names::{Format, Level, NameError, LEVEL_NAMES};
pub use print::{print_err, print_out, PRINT_TIMEOUT};
pub use settings::{settings, KeyError, LogConfig, LogTable, Overrides, Settings};

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use format::{Logfmt, LogfmtFields, PlainFields, UtcTime};
use queue::{open_append, Queue, QueueWriter, Sink};
use tracing_subscriber::filter::EnvFilter;

/// Lines the queue holds at most; more are dropped (and counted).
pub const QUEUE_LINES: usize = 1024;
/// Bytes the queue holds at most; more are dropped (and counted).
pub const QUEUE_BYTES: usize = 1 << 20;
/// How long [`LogGuard`]'s drop waits for queued lines to be written.
pub const EXIT_FLUSH: Duration = Duration::from_secs(1);

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file cannot be opened.
    #[error("log file {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The filter directives do not parse.
    #[error("log filter {directives:?}: {message}")]
    Filter {
        /// The directives given.
        directives: String,
        /// The parser's complaint.
        message: String,
    },
    /// The writer thread cannot be started.
    #[error("starting the log writer thread: {0}")]
    Thread(io::Error),
    /// A global logger is already installed in this process.
    #[error("a logger is already installed")]
    AlreadyInstalled,
}

/// Installs the process-wide logger described by `settings` and starts its
/// writer thread. Keep the returned guard alive until exit: dropping it
/// flushes (for at most [`EXIT_FLUSH`]).
pub fn init(settings: &Settings) -> Result<LogGuard, LogError> {
    let filter = match &settings.directives {
        Some(d) => EnvFilter::try_new(d).map_err(|e| LogError::Filter {
            directives: d.clone(),
            message: e.to_string(),
        })?,
        None => EnvFilter::new(settings.level.directive()),
    };
    let sink = match &settings.filename {
        Some(path) => Sink::File {
            file: open_append(path).map_err(|source| LogError::Open {
                path: path.clone(),
                source,
            })?,
            path: path.clone(),
        },
        None => Sink::Stderr,
    };
    if GLOBAL.get().is_some() {
        return Err(LogError::AlreadyInstalled);
    }
    let queue = Queue::start(sink, QUEUE_LINES, QUEUE_BYTES).map_err(LogError::Thread)?;
    let writer = QueueWriter(queue.clone());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .log_internal_errors(false)
        .with_timer(UtcTime);
    let installed = match settings.format {
        Format::Plain => builder.fmt_fields(PlainFields).try_init(),
        Format::Logfmt => builder
            .fmt_fields(LogfmtFields)
            .event_format(Logfmt)
            .try_init(),
        Format::Json => builder.json().flatten_event(true).try_init(),
    };
    if installed.is_err() {
        return Err(LogError::AlreadyInstalled);
    }
    // Only the winner of `try_init` gets here, so this cannot be taken.
    let _ = GLOBAL.set(queue.clone());
    Ok(LogGuard { queue })
}

/// Log lines dropped so far by the process-wide logger because the queue was
/// full or the destination failed; 0 before [`init`].
pub fn dropped_lines() -> u64 {
    GLOBAL.get().map_or(0, |q| q.dropped())
}

/// Asks the writer thread to open the log file again by its name (after
/// logrotate renamed it away). Does nothing when logging goes to standard
/// error or before [`init`]. Never blocks.
pub fn reopen() {
    if let Some(q) = GLOBAL.get() {
        q.request_reopen();
    }
}

/// Waits at most `timeout` for the process-wide logger's queued lines to be
/// written; true if everything queued was written (or dropped).
pub fn flush(timeout: Duration) -> bool {
    GLOBAL.get().is_none_or(|q| q.flush(timeout))
}

/// Keeps logging set up; dropping it flushes the queue for at most
/// [`EXIT_FLUSH`] (the writer thread itself lives until the process exits).
#[derive(Debug)]
#[must_use = "dropping the guard flushes the log; keep it until exit"]
pub struct LogGuard {
    queue: Arc<Queue>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.queue.flush(EXIT_FLUSH);
    }
}

static GLOBAL: OnceLock<Arc<Queue>> = OnceLock::new();
