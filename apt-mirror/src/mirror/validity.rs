//! Whether a Release may still be published: its `Valid-Until`.
//!
//! apt refuses a Release whose `Valid-Until` has passed ("Release file
//! expired"), so a mirror that published one would break every client
//! until upstream signs a new one. apt-mirror therefore refuses it too
//! (the current snapshot is kept) unless the mirror sets
//! `check_valid_until = false` (apt's own name for the same switch), and
//! warns while less than [`WARN_BEFORE`] is left. A `Valid-Until` that does
//! not parse is refused as apt does.

use aptindex::release::Release;
use std::time::{Duration, SystemTime};

/// How long before `Valid-Until` a run starts warning.
pub(crate) const WARN_BEFORE: Duration = Duration::from_secs(24 * 3600);

/// A Release's validity at some time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Validity {
    /// No `Valid-Until`, or more than [`WARN_BEFORE`] left.
    Valid,
    /// Valid, but less than [`WARN_BEFORE`] left.
    Expiring {
        /// `Valid-Until`, as written.
        valid_until: String,
        /// Time left.
        left: Duration,
    },
    /// Not valid any more (or unreadable).
    Invalid(Invalid),
}

/// Why a Release is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// `Valid-Until` has passed.
    #[error("Release expired: Valid-Until {valid_until} is {} ago", hours(*.ago))]
    Expired {
        /// `Valid-Until`, as written.
        valid_until: String,
        /// How long ago.
        ago: Duration,
    },
    /// `Valid-Until` is not a date.
    #[error("Valid-Until {valid_until:?} is not a date")]
    Unreadable {
        /// `Valid-Until`, as written.
        valid_until: String,
    },
}

/// A duration in hours, one decimal (`"3.5 hours"`).
fn hours(d: Duration) -> String {
    format!("{:.1} hours", d.as_secs_f64() / 3600.0)
}

/// The validity of `release` at `now`.
pub(crate) fn judge(release: &Release, now: SystemTime) -> Validity {
    let Some(written) = &release.valid_until else {
        return Validity::Valid;
    };
    let Some(until) = release.valid_until_time() else {
        return Validity::Invalid(Invalid::Unreadable {
            valid_until: written.clone(),
        });
    };
    match until.duration_since(now) {
        Err(passed) => Validity::Invalid(Invalid::Expired {
            valid_until: written.clone(),
            ago: passed.duration(),
        }),
        Ok(left) if left < WARN_BEFORE => Validity::Expiring {
            valid_until: written.clone(),
            left,
        },
        Ok(_) => Validity::Valid,
    }
}

/// The warning for a Release with `left` before `valid_until`.
pub(crate) fn expiring_message(valid_until: &str, left: Duration) -> String {
    format!(
        "Release expires soon: Valid-Until {valid_until} is in {}",
        hours(left)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(valid_until: Option<&str>) -> Release {
        let mut text = String::from("Suite: stable\nDate: Sat, 10 Jun 2023 08:50:41 UTC\n");
        if let Some(v) = valid_until {
            text.push_str(&format!("Valid-Until: {v}\n"));
        }
        text.push_str(
            "SHA256:\n 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1 main/x\n",
        );
        Release::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn judged_against_now() {
        let until = "Sat, 17 Jun 2023 08:50:41 UTC";
        let t = release(Some(until)).valid_until_time().unwrap();
        let r = release(Some(until));
        assert_eq!(judge(&release(None), t), Validity::Valid);
        assert_eq!(
            judge(&r, t - Duration::from_secs(2 * 24 * 3600)),
            Validity::Valid
        );
        assert_eq!(
            judge(&r, t - Duration::from_secs(12 * 3600)),
            Validity::Expiring {
                valid_until: until.into(),
                left: Duration::from_secs(12 * 3600)
            }
        );
        let expired = judge(&r, t + Duration::from_secs(3600));
        assert_eq!(
            expired,
            Validity::Invalid(Invalid::Expired {
                valid_until: until.into(),
                ago: Duration::from_secs(3600)
            })
        );
        let Validity::Invalid(e) = expired else {
            unreachable!()
        };
        assert_eq!(
            e.to_string(),
            "Release expired: Valid-Until Sat, 17 Jun 2023 08:50:41 UTC is 1.0 hours ago"
        );
        assert!(matches!(
            judge(&release(Some("next week")), t),
            Validity::Invalid(Invalid::Unreadable { .. })
        ));
        assert_eq!(
            expiring_message(until, Duration::from_secs(5400)),
            "Release expires soon: Valid-Until Sat, 17 Jun 2023 08:50:41 UTC is in 1.5 hours"
        );
    }
}
