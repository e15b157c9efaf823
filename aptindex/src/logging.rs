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

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Lines the queue holds at most; more are dropped (and counted).
pub const QUEUE_LINES: usize = 1024;
/// Bytes the queue holds at most; more are dropped (and counted).
pub const QUEUE_BYTES: usize = 1 << 20;
/// How long [`LogGuard`]'s drop waits for queued lines to be written.
pub const EXIT_FLUSH: Duration = Duration::from_secs(1);

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
    fn directive(self) -> &'static str {
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

/// What [`init`] sets up.
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

/// How long [`print_out`] and [`print_err`] wait for their write.
pub const PRINT_TIMEOUT: Duration = Duration::from_secs(1);

/// Writes `text` to standard output, the way `print!` would, except that it
/// never panics (write errors are ignored) and never hangs: a write that
/// takes longer than [`PRINT_TIMEOUT`] (a reader that stopped reading) is
/// left to finish, or not, in a helper thread.
pub fn print_out(text: String) {
    print_bounded(text, false);
}

/// [`print_out`] for standard error.
pub fn print_err(text: String) {
    print_bounded(text, true);
}

fn print_bounded(text: String, to_stderr: bool) {
    fn write(text: &str, to_stderr: bool) {
        // Errors are ignored on purpose: there is nowhere left to report them.
        let _ = if to_stderr {
            io::stderr().lock().write_all(text.as_bytes())
        } else {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        };
    }
    let (done, wait) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("print".into())
        .spawn(move || {
            write(&text, to_stderr);
            let _ = done.send(());
        });
    // Without a thread to spare (resources exhausted) the text is dropped
    // rather than risk a write that hangs.
    if spawned.is_ok() {
        let _ = wait.recv_timeout(PRINT_TIMEOUT);
    }
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

fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

// ---------------------------------------------------------------------------
// The queue and its writer thread.

/// Where the writer thread writes.
enum Sink {
    Stderr,
    File {
        path: PathBuf,
        file: File,
    },
    #[cfg(test)]
    Test(Box<dyn Write + Send>),
}

impl Sink {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            // `Stderr` is unbuffered: one line, one write.
            Sink::Stderr => io::stderr().lock().write_all(line),
            Sink::File { file, .. } => file.write_all(line),
            #[cfg(test)]
            Sink::Test(w) => w.write_all(line),
        }
    }

    fn reopen(&mut self) {
        if let Sink::File { path, file } = self {
            match open_append(path) {
                Ok(new) => {
                    *file = new;
                    // Goes to the new file, after the lines the writer
                    // thread has already taken out of the queue.
                    tracing::info!(file = %path.display(), "log file reopened");
                }
                // Keep writing to the old file; this line goes there too.
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "cannot reopen the log file")
                }
            }
        }
    }
}

struct State {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The writer thread is writing lines it took out of `lines`.
    busy: bool,
    reopen: bool,
}

/// A bounded line queue shared by the formatters (producers) and the one
/// writer thread.
struct Queue {
    state: Mutex<State>,
    /// Signalled when there is work for the writer thread.
    work: Condvar,
    /// Signalled when the writer thread finished a batch.
    idle: Condvar,
    dropped: AtomicU64,
    max_lines: usize,
    max_bytes: usize,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Queue {
    fn start(sink: Sink, max_lines: usize, max_bytes: usize) -> io::Result<Arc<Queue>> {
        let queue = Arc::new(Queue {
            state: Mutex::new(State {
                lines: VecDeque::new(),
                bytes: 0,
                busy: false,
                reopen: false,
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
            dropped: AtomicU64::new(0),
            max_lines,
            max_bytes,
        });
        let q = queue.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || q.write_forever(sink))?;
        Ok(queue)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if it ever did, the queue is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues a line, or drops and counts it if the queue is full. Never waits
    /// for the writer.
    fn push(&self, line: Vec<u8>) {
        let mut st = self.lock();
        if st.lines.len() >= self.max_lines || st.bytes + line.len() > self.max_bytes {
            drop(st);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        st.bytes += line.len();
        st.lines.push_back(line);
        drop(st);
        self.work.notify_one();
    }

    fn request_reopen(&self) {
        self.lock().reopen = true;
        self.work.notify_one();
    }

    fn write_forever(&self, mut sink: Sink) {
        loop {
            let (batch, reopen) = {
                let mut st = self.lock();
                while st.lines.is_empty() && !st.reopen {
                    st = self.work.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                st.busy = true;
                st.bytes = 0;
                (
                    std::mem::take(&mut st.lines),
                    std::mem::replace(&mut st.reopen, false),
                )
            };
            if reopen {
                sink.reopen();
            }
            for line in batch {
                if sink.write_line(&line).is_err() {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.lock().busy = false;
            self.idle.notify_all();
        }
    }

    /// Waits at most `timeout` until the queue is empty and nothing is being
    /// written; true if it got there.
    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while !st.lines.is_empty() || st.busy {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .idle
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// The `MakeWriter` the subscriber formats into: each event's line is
/// collected, then queued when the writer is dropped.
#[derive(Clone)]
struct QueueWriter(Arc<Queue>);

/// One event's line on its way to the queue.
struct LineWriter {
    queue: Arc<Queue>,
    line: Vec<u8>,
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            queue: self.0.clone(),
            line: Vec::new(),
        }
    }
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.queue.push(std::mem::take(&mut self.line));
        }
    }
}

// ---------------------------------------------------------------------------
// Formats.

/// Timestamps in UTC, RFC 3339 with milliseconds: `2026-11-27T10:00:00.123Z`.
#[derive(Debug, Clone, Copy)]
struct UtcTime;

impl FormatTime for UtcTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write!(w, "{}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

/// Field formatting for the plain format: tracing-subscriber's layout
/// (`message key=value …`), except that control characters in messages and
/// values are escaped (`\n`, `\r`, `\t`, `\u{1b}`), so that no value (a
/// request path, an upstream's error text) can start a line of its own.
struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut w: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut v = PlainVisitor {
            out: Escaped(&mut w),
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

/// Writes `message` and ` key=value` through [`Escaped`].
struct PlainVisitor<'a> {
    out: Escaped<'a>,
    first: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let pad = if std::mem::replace(&mut self.first, false) {
            ""
        } else {
            " "
        };
        self.result = match name {
            "message" => write!(self.out, "{pad}{value}"),
            name => {
                let name = name.strip_prefix("r#").unwrap_or(name);
                write!(self.out, "{pad}{name}={value}")
            }
        };
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, format_args!("{value}"));
        } else {
            self.field(field, format_args!("{value:?}"));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

/// A `fmt::Write` that passes text through with control characters escaped
/// the way Rust's `Debug` escapes them (`\n`, `\r`, `\t`, `\u{7f}`).
struct Escaped<'a>(&'a mut dyn fmt::Write);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(char::is_control) {
            self.0.write_str(&rest[..at])?;
            let mut chars = rest[at..].chars();
            if let Some(c) = chars.next() {
                write!(self.0, "{}", c.escape_debug())?;
            }
            rest = chars.as_str();
        }
        self.0.write_str(rest)
    }
}

/// The logfmt line format: `time=… level=… msg=… key=value …` (span fields
/// last, outermost span first).
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        w.write_str("time=")?;
        UtcTime.format_time(&mut w)?;
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warn",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(w, " level={level}")?;
        let mut message = LogfmtVisitor::new(&mut w, Pick::Message);
        event.record(&mut message);
        message.result?;
        let mut fields = LogfmtVisitor::new(&mut w, Pick::Fields);
        event.record(&mut fields);
        fields.result?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>() {
                    if !f.fields.is_empty() {
                        write!(w, " {}", f.fields)?;
                    }
                }
            }
        }
        writeln!(w)
    }
}

/// Formats span fields as logfmt pairs, for [`Logfmt`].
struct LogfmtFields;

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut w: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut v = LogfmtVisitor::new(&mut w, Pick::Fields);
        v.first = true;
        fields.record(&mut v);
        v.result
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    /// Only the `message` field, as `msg=`.
    Message,
    /// Every other field.
    Fields,
}

/// Writes ` key=value` for the fields it is asked to pick.
struct LogfmtVisitor<'a> {
    out: &'a mut dyn fmt::Write,
    pick: Pick,
    /// No leading space before the first pair.
    first: bool,
    result: fmt::Result,
}

impl<'a> LogfmtVisitor<'a> {
    fn new(out: &'a mut dyn fmt::Write, pick: Pick) -> Self {
        LogfmtVisitor {
            out,
            pick,
            first: false,
            result: Ok(()),
        }
    }

    fn pair(&mut self, field: &Field, value: &str) {
        let name = field.name();
        let is_message = name == "message";
        // `log.*` fields carry the metadata of `log` crate records.
        if is_message != (self.pick == Pick::Message) || name.starts_with("log.") {
            return;
        }
        if self.result.is_err() {
            return;
        }
        let key = if is_message { "msg" } else { name };
        self.result = (|| {
            if !std::mem::replace(&mut self.first, false) {
                self.out.write_char(' ')?;
            }
            write_key(self.out, key)?;
            self.out.write_char('=')?;
            write_value(self.out, value)
        })();
    }
}

impl Visit for LogfmtVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.pair(field, &value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.pair(field, &format!("{value:?}"));
    }
}

/// A logfmt key: anything but letters, digits, `_`, `.`, `-` becomes `_`.
fn write_key(out: &mut dyn fmt::Write, key: &str) -> fmt::Result {
    if key.is_empty() {
        return out.write_char('_');
    }
    for c in key.chars() {
        let ok = c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        out.write_char(if ok { c } else { '_' })?;
    }
    Ok(())
}

/// A logfmt value: bare when it is non-empty and has no space, `=`, `"`,
/// `\` or control character; otherwise quoted with `\"`, `\\`, `\n`, `\r`,
/// `\t` and `\u00XX` escapes.
fn write_value(out: &mut dyn fmt::Write, value: &str) -> fmt::Result {
    let bare = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '=' | '"' | '\\'));
    if bare {
        return out.write_str(value);
    }
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use tracing_subscriber::fmt::MakeWriter;

    /// A destination shared with the test: collects what was written.
    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<u8>>>);
    impl Write for Collect {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Collect {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }
    impl<'a> MakeWriter<'a> for Collect {
        type Writer = Collect;
        fn make_writer(&'a self) -> Collect {
            self.clone()
        }
    }

    /// Formats the events `f` emits with `format`, synchronously.
    fn capture(format: Format, f: impl FnOnce()) -> String {
        let out = Collect::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .with_timer(UtcTime)
            .with_max_level(tracing::Level::DEBUG);
        match format {
            Format::Plain => {
                tracing::subscriber::with_default(builder.fmt_fields(PlainFields).finish(), f)
            }
            Format::Logfmt => tracing::subscriber::with_default(
                builder
                    .fmt_fields(LogfmtFields)
                    .event_format(Logfmt)
                    .finish(),
                f,
            ),
            Format::Json => {
                tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), f)
            }
        }
        out.text()
    }

    fn quoted(v: &str) -> String {
        let mut s = String::new();
        write_value(&mut s, v).unwrap();
        s
    }

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

    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(quoted("127.0.0.1:5555"), "127.0.0.1:5555");
        assert_eq!(quoted("/ubuntu/dists/x"), "/ubuntu/dists/x");
        assert_eq!(quoted("ünïcode"), "ünïcode");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("two words"), "\"two words\"");
        assert_eq!(quoted("a=b"), "\"a=b\"");
        assert_eq!(quoted("say \"hi\""), r#""say \"hi\"""#);
        assert_eq!(quoted(r"C:\x"), r#""C:\\x""#);
        assert_eq!(quoted("l1\nl2\tx\r"), r#""l1\nl2\tx\r""#);
        assert_eq!(quoted("esc\u{1b}[31m"), r#""esc\u001b[31m""#);
    }

    #[test]
    fn logfmt_line() {
        let text = capture(Format::Logfmt, || {
            let span = tracing::info_span!("mirror", id = "ubuntu");
            let _e = span.enter();
            tracing::info!(
                client = %"127.0.0.1:5555",
                status = 200u16,
                ok = true,
                path = "a b",
                error = %"broken \"pipe\"",
                "request done"
            );
        });
        let line = text.strip_suffix('\n').unwrap();
        assert!(!line.contains('\n'), "{text}");
        let rest = line.strip_prefix("time=").unwrap();
        let (time, rest) = rest.split_once(' ').unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        assert!(time.ends_with('Z') && time.len() == 24, "{time}");
        assert_eq!(
            rest,
            r#"level=info msg="request done" client=127.0.0.1:5555 status=200 ok=true path="a b" error="broken \"pipe\"" id=ubuntu"#
        );
    }

    #[test]
    fn logfmt_levels_and_bare_message() {
        let text = capture(Format::Logfmt, || {
            tracing::warn!("stopping");
            tracing::error!(n = 1, "x");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with(" level=warn msg=stopping"), "{text}");
        assert!(lines[1].ends_with(" level=error msg=x n=1"), "{text}");
    }

    #[test]
    fn json_lines_are_valid_objects() {
        let text = capture(Format::Json, || {
            tracing::info!(client = %"127.0.0.1:1", status = 404u16, "line \"one\"\nwith newline");
            tracing::debug!(weird = "\u{0}\u{1b}", "two");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "line \"one\"\nwith newline");
        assert_eq!(v["client"], "127.0.0.1:1");
        assert_eq!(v["status"], 404);
        let ts = v["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["weird"], "\u{0}\u{1b}");
    }

    #[test]
    fn plain_has_time_level_message_fields() {
        let text = capture(Format::Plain, || tracing::info!(status = 200u16, "served"));
        assert!(text.contains("Z  INFO "), "{text}");
        assert!(text.ends_with("served status=200\n"), "{text}");
    }

    /// A value, a message or a span field that holds a newline followed by
    /// what looks like a log line must not become a line of its own.
    #[test]
    fn no_value_can_start_a_line() {
        let forged = "/debian/pool/a\n2026-11-27T00:00:00.000Z ERROR forged: pwned.deb";
        for format in [Format::Plain, Format::Logfmt, Format::Json] {
            let text = capture(format, || {
                let span = tracing::info_span!("request", client = %"1.2.3.4\r\nX");
                let _e = span.enter();
                tracing::warn!(path = %forged, what = forged, n = 1, "cannot fetch {forged}");
                tracing::info!(error = %"a\u{1b}[31m\u{7f}\tb", "done");
            });
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{format:?}: {text}");
            assert!(
                lines
                    .iter()
                    .all(|l| !l.contains('\r') && !l.contains('\u{1b}')),
                "{format:?}: {text}"
            );
            assert!(lines[0].contains("forged"), "{format:?}: {text}");
        }
        let plain = capture(Format::Plain, || {
            tracing::warn!(path = %"a\nb", what = "c\nd", "m\ne\u{7f}");
        });
        let want = concat!(r#"m\ne\u{7f} path=a\nb what="c\nd""#, "\n");
        assert!(plain.ends_with(want), "{plain}");
    }

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

    /// Fails every write (as a full disk does) while `failing` is set.
    struct Failing {
        failing: Arc<std::sync::atomic::AtomicBool>,
        out: Collect,
    }
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            self.out.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failed_writes_are_counted_and_writing_resumes() {
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let out = Collect::default();
        let sink = Sink::Test(Box::new(Failing {
            failing: failing.clone(),
            out: out.clone(),
        }));
        let q = Queue::start(sink, 16, 1 << 10).unwrap();
        for i in 0..5 {
            q.push(format!("lost {i}\n").into_bytes());
            assert!(q.flush(Duration::from_secs(5)));
        }
        assert_eq!(q.dropped(), 5);
        failing.store(false, Ordering::SeqCst);
        q.push(b"kept\n".to_vec());
        assert!(q.flush(Duration::from_secs(5)));
        assert_eq!(out.text(), "kept\n");
        assert_eq!(q.dropped(), 5);
    }

    /// Blocks each write until the test lets it go; tells when it started.
    struct Stuck {
        started: mpsc::Sender<()>,
        go: Arc<Mutex<mpsc::Receiver<()>>>,
        out: Collect,
    }
    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.started.send(());
            let _ = self.go.lock().unwrap().recv();
            self.out.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let (started_tx, started) = mpsc::channel();
        let (go, go_rx) = mpsc::channel();
        let out = Collect::default();
        let sink = Sink::Test(Box::new(Stuck {
            started: started_tx,
            go: Arc::new(Mutex::new(go_rx)),
            out: out.clone(),
        }));
        let q = Queue::start(sink, 8, 1 << 20).unwrap();
        q.push(b"first\n".to_vec());
        started.recv().unwrap(); // the writer is now stuck on "first"
        let t = Instant::now();
        for i in 0..20 {
            q.push(format!("{i}\n").into_bytes());
        }
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(q.dropped(), 12);
        // A stuck destination: flush gives up after its timeout.
        let t = Instant::now();
        assert!(!q.flush(Duration::from_millis(100)));
        assert!(t.elapsed() < Duration::from_secs(2));
        for _ in 0..9 {
            go.send(()).unwrap();
        }
        assert!(q.flush(Duration::from_secs(5)));
        assert_eq!(out.text(), "first\n0\n1\n2\n3\n4\n5\n6\n7\n");
    }

    #[test]
    fn the_byte_cap_bounds_the_queue() {
        let (started_tx, started) = mpsc::channel();
        let (go, go_rx) = mpsc::channel();
        let sink = Sink::Test(Box::new(Stuck {
            started: started_tx,
            go: Arc::new(Mutex::new(go_rx)),
            out: Collect::default(),
        }));
        let q = Queue::start(sink, 1000, 100).unwrap();
        q.push(b"x\n".to_vec());
        started.recv().unwrap();
        q.push(vec![b'a'; 60]);
        q.push(vec![b'b'; 60]); // 120 > 100: dropped
        q.push(vec![b'c'; 40]);
        q.push(vec![b'd'; 1]); // 101: dropped
        q.push(vec![b'e'; 1000]); // larger than the cap: dropped
        assert_eq!(q.dropped(), 3);
        drop(go);
    }

    #[test]
    fn file_sink_reopens_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let sink = Sink::File {
            file: open_append(&path).unwrap(),
            path: path.clone(),
        };
        let q = Queue::start(sink, 16, 1 << 10).unwrap();
        q.push(b"one\n".to_vec());
        assert!(q.flush(Duration::from_secs(5)));
        let rotated = dir.path().join("log.1");
        std::fs::rename(&path, &rotated).unwrap();
        q.push(b"two\n".to_vec()); // still the old (renamed) file
        assert!(q.flush(Duration::from_secs(5)));
        q.request_reopen();
        q.push(b"three\n".to_vec());
        assert!(q.flush(Duration::from_secs(5)));
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
    }
}
