//! Time arithmetic that cannot panic: deadlines from configured durations
//! ([`later`]) and HTTP dates from file times ([`http_date`]). A file's
//! mtime is outside data (anyone can `touch -d` it) and `httpdate` panics
//! on a time before 1970 or after 9999, so every HTTP date the cacher
//! writes goes through [`http_date`], which clamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// The last second `httpdate` can write: 9999-12-31T23:59:59Z.
const LAST_HTTP_SECOND: u64 = 253_402_300_799;

/// `from + after`, or a far-away instant when that would overflow (the
/// configuration bounds durations, so this is defence in depth).
pub fn later(from: Instant, after: Duration) -> Instant {
    from.checked_add(after)
        .or_else(|| from.checked_add(Duration::from_secs(365 * 86400)))
        .unwrap_or(from)
}

/// `t` clamped to what an HTTP date can express (1970-01-01 to 9999-12-31).
pub fn clamp_http(t: SystemTime) -> SystemTime {
    let last = UNIX_EPOCH + Duration::from_secs(LAST_HTTP_SECOND);
    t.clamp(UNIX_EPOCH, last)
}

/// `t` as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), clamped to the
/// range such a date can express.
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(clamp_http(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_clamped() {
        let before = UNIX_EPOCH - Duration::from_secs(100);
        assert_eq!(http_date(before), "Thu, 01 Jan 1970 00:00:00 GMT");
        let after = UNIX_EPOCH + Duration::from_secs(LAST_HTTP_SECOND + 86400 * 365);
        assert_eq!(http_date(after), "Fri, 31 Dec 9999 23:59:59 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now + Duration::from_secs(86400));
        assert_eq!(
            later(now, Duration::from_secs(2)),
            now + Duration::from_secs(2)
        );
    }
}
