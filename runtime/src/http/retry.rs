//! When and after how long to try a request again: exponential backoff
//! from a base delay (doubling, at most 2⁶ times the base, never over
//! [`MAX_DELAY`]), for failures worth another attempt: network trouble,
//! timeouts, 5xx, 408 and 429.

use std::time::Duration;

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// How many times to retry and how long to wait first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The wait before the first retry.
    pub delay: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `tries` (0 for the first), or `None`
    /// when no retry is left.
    pub fn delay_before(&self, tries: u32) -> Option<Duration> {
        (tries < self.retries).then(|| self.delay.saturating_mul(1 << tries.min(6)).min(MAX_DELAY))
    }
}

/// True for statuses worth another attempt: 5xx, 408, 429.
pub fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            retries: 9,
            delay: Duration::from_secs(1),
        };
        assert_eq!(p.delay_before(0), Some(Duration::from_secs(1)));
        assert_eq!(p.delay_before(3), Some(Duration::from_secs(8)));
        assert_eq!(p.delay_before(8), Some(MAX_DELAY));
        assert_eq!(p.delay_before(9), None);
        assert!(retryable_status(503) && retryable_status(429) && retryable_status(408));
        assert!(!retryable_status(404) && !retryable_status(200));
    }
}
