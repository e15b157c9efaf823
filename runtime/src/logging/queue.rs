//! The bounded line queue and its one writer thread: producers never wait;
//! a full queue or a failing destination (dead pipe, full disk) drops and
//! counts lines; the file is reopened by name on request (logrotate).

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

pub(super) fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Where the writer thread writes.
pub(super) enum Sink {
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
pub(super) struct Queue {
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
    pub(super) fn start(sink: Sink, max_lines: usize, max_bytes: usize) -> io::Result<Arc<Queue>> {
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

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues a line, or drops and counts it if the queue is full. Never waits
    /// for the writer.
    pub(super) fn push(&self, line: Vec<u8>) {
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

    pub(super) fn request_reopen(&self) {
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
    pub(super) fn flush(&self, timeout: Duration) -> bool {
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
pub(super) struct QueueWriter(pub(super) Arc<Queue>);

/// One event's line on its way to the queue.
pub(super) struct LineWriter {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A destination shared with the test: collects what was written.
    #[derive(Clone, Default)]
    pub(crate) struct Collect(Arc<Mutex<Vec<u8>>>);
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
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }
    impl<'a> MakeWriter<'a> for Collect {
        type Writer = Collect;
        fn make_writer(&'a self) -> Collect {
            self.clone()
        }
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
