//! Bounded output for a program's own lines (summaries, fatal errors):
//! [`print_out`] and [`print_err`] never panic on a closed pipe (as
//! `println!` does) and never hang on a reader that stopped reading.

use std::io::{self, Write};
use std::time::Duration;

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
