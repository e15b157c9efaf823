//! Signals and graceful stop, the same in both binaries: the first SIGTERM
//! or SIGINT cancels a [`CancellationToken`] (the program stops what it is
//! doing cleanly); a second one exits at once, after giving the log a
//! bounded time to be written. SIGUSR1 reopens the log file (logrotate's
//! `create` mode). Once [`Signals::register`] returned, no signal gets its
//! default action (SIGUSR1's would end the process).

use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// How long the log may take to be written before an exit on a second signal.
pub const SECOND_SIGNAL_FLUSH: Duration = Duration::from_millis(500);

/// A signal handler could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("handling {signal}: {source}")]
pub struct SignalError {
    /// The signal's name, e.g. `SIGTERM`.
    pub signal: &'static str,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// The registered handlers of SIGTERM, SIGINT and SIGUSR1.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
    usr1: Signal,
}

impl Signals {
    /// Registers the handlers. Call inside a tokio runtime.
    pub fn register() -> Result<Signals, SignalError> {
        let register = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|source| SignalError {
                signal: name,
                source,
            })
        };
        Ok(Signals {
            term: register(SignalKind::terminate(), "SIGTERM")?,
            int: register(SignalKind::interrupt(), "SIGINT")?,
            usr1: register(SignalKind::user_defined1(), "SIGUSR1")?,
        })
    }

    /// Spawns the tasks that act on the signals: SIGUSR1 reopens the log;
    /// the first SIGTERM/SIGINT runs `first` (to log it) and cancels `stop`;
    /// the second runs `second` (to log or print it), flushes the log for
    /// at most [`SECOND_SIGNAL_FLUSH`] and exits with the status `second`
    /// returned.
    pub fn spawn(
        self,
        stop: CancellationToken,
        first: impl FnOnce() + Send + 'static,
        second: impl FnOnce() -> i32 + Send + 'static,
    ) {
        let Signals {
            mut term,
            mut int,
            mut usr1,
        } = self;
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                crate::logging::reopen();
            }
        });
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            first();
            stop.cancel();
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            let code = second();
            // `exit` skips destructors: write what is queued first (bounded).
            crate::logging::flush(SECOND_SIGNAL_FLUSH);
            std::process::exit(code);
        });
    }
}
