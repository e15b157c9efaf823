//! Progress of one mirror's downloads: shared counters (files and bytes,
//! done and planned) and a reporter that shows them — a progress bar with
//! rate and ETA when standard error is a terminal, otherwise (under cron or
//! systemd) a log line at a fixed interval so long runs are never silent.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters updated by downloads, read by the reporter.
#[derive(Debug, Default)]
pub struct Progress {
    files_total: AtomicU64,
    files_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
}

impl Progress {
    /// Fresh counters.
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }
    /// Plans `files` more files of `bytes` bytes.
    pub fn add_planned(&self, files: u64, bytes: u64) {
        self.files_total.fetch_add(files, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }
    /// Counts bytes received.
    pub fn add_bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }
    /// Counts a finished file.
    pub fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }
    fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed),
            self.bytes_done.load(Ordering::Relaxed),
            self.bytes_total.load(Ordering::Relaxed),
        )
    }
}

/// A running reporter; stops when dropped or [`Reporter::finish`]ed.
#[derive(Debug)]
pub struct Reporter {
    task: tokio::task::JoinHandle<()>,
}

impl Reporter {
    /// Starts reporting `progress` of mirror `id`: a bar on a terminal,
    /// otherwise a log line every `interval`.
    pub fn start(id: &str, progress: Arc<Progress>, interval: Duration) -> Reporter {
        let id = id.to_string();
        let task = if std::io::stderr().is_terminal() {
            tokio::spawn(bar(id, progress))
        } else {
            tokio::spawn(log_lines(id, progress, interval))
        };
        Reporter { task }
    }

    /// Stops reporting.
    pub fn finish(self) {
        self.task.abort();
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One set of bars for the whole process, so that mirrors updated at the
/// same time each get their own line.
fn bars() -> &'static indicatif::MultiProgress {
    static BARS: std::sync::OnceLock<indicatif::MultiProgress> = std::sync::OnceLock::new();
    BARS.get_or_init(indicatif::MultiProgress::new)
}

async fn bar(id: String, progress: Arc<Progress>) {
    let bar = bars().add(indicatif::ProgressBar::new(0));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(id);
    let _clear = ClearOnDrop(bar.clone());
    loop {
        let (fd, ft, bd, bt) = progress.snapshot();
        bar.set_length(bt.max(bd));
        bar.set_position(bd);
        bar.set_message(format!("{fd}/{ft} files"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct ClearOnDrop(indicatif::ProgressBar);
impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

async fn log_lines(id: String, progress: Arc<Progress>, interval: Duration) {
    let start = Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        let (fd, ft, bd, bt) = progress.snapshot();
        let secs = start.elapsed().as_secs_f64().max(0.001);
        let rate = bd as f64 / secs;
        let eta = if rate > 0.0 && bt > bd {
            format!("{:.0}s", (bt - bd) as f64 / rate)
        } else {
            "-".to_string()
        };
        tracing::info!(
            mirror = %id,
            files_done = fd,
            files_total = ft,
            bytes_done = bd,
            bytes_total = bt,
            rate_bytes_per_sec = rate as u64,
            eta = %eta,
            "download progress"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn without_a_terminal_progress_is_logged_at_each_interval() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let p = Progress::new();
                p.add_planned(10, 1000);
                p.add_bytes(250);
                p.file_done();
                let r = tokio::spawn(log_lines("deb".into(), p, Duration::from_millis(50)));
                tokio::time::sleep(Duration::from_millis(180)).await;
                r.abort();
            });
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("download progress"))
            .collect();
        assert!(lines.len() >= 2, "{text}");
        assert!(
            lines[0].contains("mirror=deb")
                && lines[0].contains("files_done=1")
                && lines[0].contains("bytes_total=1000"),
            "{text}"
        );
    }
}
