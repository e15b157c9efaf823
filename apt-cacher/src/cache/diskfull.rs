//! A full file system under the cache: recognising `ENOSPC` / `EDQUOT`
//! among write errors, saying so (a warning naming the file and the
//! mapping, the `apt_cacher_disk_full_total` counter, the last occurrence
//! on the status page), and how much to evict before a download writes
//! again. Before this, a full disk cut responses short without a word.

use crate::metrics::Metrics;
use std::io;
use std::path::Path;

/// The least a download asks [`super::Storage::make_room`] to free: 1 MiB
/// (page-cache writes of a few chunks), so one eviction serves many writes.
pub const ROOM_MIN: u64 = 1 << 20;

/// How often one download evicts and writes again before it gives up.
pub const RETRIES: u32 = 16;

/// True when `e` says the file system (or the user's quota) is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// The I/O error under a staged file's error, if it is a full disk.
pub fn of_tree(e: &aptindex::tree::TreeError) -> Option<&io::Error> {
    match e {
        aptindex::tree::TreeError::Io { source, .. } if is_disk_full(source) => Some(source),
        _ => None,
    }
}

/// Logs and counts a full disk while writing `what` (mapping and path) to `path`.
pub fn record(metrics: &Metrics, what: &str, path: &Path, e: &io::Error) {
    tracing::warn!(what = %what, path = %path.display(), error = %e, "file system full while caching");
    metrics.disk_full(&path.display().to_string(), &format!("writing {what}: {e}"));
}

/// Logs and counts a full disk if one is among the causes of `e`, an
/// error while writing `what` under `path` (e.g. a metadata generation).
pub fn record_in(
    metrics: &Metrics,
    what: &str,
    path: &Path,
    e: &(dyn std::error::Error + 'static),
) {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>().filter(|io| is_disk_full(io)) {
            record(metrics, what, path, io);
            return;
        }
        cause = c.source();
    }
}

/// How many bytes to free so that a download of `length` bytes (if known),
/// `written` so far, can finish: what remains, at least [`ROOM_MIN`].
pub fn room_needed(length: Option<u64>, written: u64) -> u64 {
    length
        .map_or(0, |l| l.saturating_sub(written))
        .max(ROOM_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds() {
        assert!(is_disk_full(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_disk_full(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(is_disk_full(&io::Error::from(io::ErrorKind::StorageFull)));
        assert!(!is_disk_full(&io::Error::from_raw_os_error(libc::EIO)));
        assert!(!is_disk_full(&io::Error::from_raw_os_error(libc::EACCES)));
        assert!(!is_disk_full(&io::Error::other("no space")));
        let tree = aptindex::tree::TreeError::Io {
            path: "/c/.tmp/dl-1".into(),
            source: io::Error::from_raw_os_error(libc::ENOSPC),
        };
        assert!(of_tree(&tree).is_some());
        let other = aptindex::tree::TreeError::TooLarge {
            what: "x".into(),
            limit: 1,
        };
        assert!(of_tree(&other).is_none());
    }

    #[test]
    fn found_among_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("writing x")]
        struct Outer(#[source] io::Error);
        let m = Metrics::new();
        let full = Outer(io::Error::from_raw_os_error(libc::ENOSPC));
        record_in(&m, "m/dists/stable", Path::new("/meta/gen-2"), &full);
        assert_eq!(m.counters().disk_full, 1);
        let other = Outer(io::Error::from_raw_os_error(libc::EIO));
        record_in(&m, "m/dists/stable", Path::new("/meta/gen-2"), &other);
        assert_eq!(m.counters().disk_full, 1);
    }

    #[test]
    fn room() {
        assert_eq!(room_needed(None, 5), ROOM_MIN);
        assert_eq!(room_needed(Some(10 << 20), 1 << 20), 9 << 20);
        assert_eq!(room_needed(Some(10), 20), ROOM_MIN);
    }

    #[test]
    fn recorded() {
        let m = Metrics::new();
        record(
            &m,
            "m/pool/a.deb",
            Path::new("/c/.tmp/dl-1"),
            &io::Error::from_raw_os_error(libc::ENOSPC),
        );
        let c = m.counters();
        assert_eq!(c.disk_full, 1);
        let last = c.last_disk_full.unwrap();
        assert_eq!(last.url, "/c/.tmp/dl-1");
        assert!(last.what.contains("m/pool/a.deb"), "{}", last.what);
    }
}
