//! The machine-readable run summary, `<dir>/apt-mirror-summary.json`: when
//! the last run started and ended, and per mirror its last result, counts,
//! bytes and the time of its last success, so monitoring can alert on a stale
//! mirror. Mirrors not selected in a run keep their previous entry.

use crate::mirror::{MirrorReport, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the summary in the mirror root (cannot clash with a mirror
/// ID, which has no `.`).
pub const FILE_NAME: &str = "apt-mirror-summary.json";

/// One mirror's entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MirrorSummary {
    /// `updated`, `unchanged` or `failed`.
    pub result: String,
    /// The error of a failed update.
    #[serde(default)]
    pub error: Option<String>,
    /// When this mirror's last update ended (RFC 3339).
    pub finished: String,
    /// When it last succeeded (updated or unchanged), if ever.
    #[serde(default)]
    pub last_success: Option<String>,
    /// Files downloaded.
    pub files_downloaded: u64,
    /// Files reused from the previous snapshot.
    pub files_reused: u64,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Duration, in seconds.
    pub duration_secs: f64,
    /// The snapshot now published.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Index entries skipped as bad (their files not mirrored).
    #[serde(default)]
    pub entries_skipped: u64,
    /// What was wrong but did not stop the update (each names its URL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunSummary {
    /// When the last run started.
    pub start: String,
    /// When it ended.
    pub end: String,
    /// True when every mirror of the last run succeeded.
    pub ok: bool,
    /// Per mirror, latest known.
    pub mirrors: BTreeMap<String, MirrorSummary>,
}

/// The summary's path under `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Merges this run's reports into the summary file (written atomically).
pub fn write(
    dir: &Path,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    reports: &[MirrorReport],
) -> Result<(), aptindex::tree::TreeError> {
    let file = path(dir);
    let mut summary: RunSummary = std::fs::read(&file)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    summary.start = start.to_rfc3339();
    summary.end = end.to_rfc3339();
    summary.ok = reports.iter().all(|r| r.result != Outcome::Failed);
    for r in reports {
        let previous_success = summary
            .mirrors
            .get(&r.id)
            .and_then(|m| m.last_success.clone());
        let ok = r.result != Outcome::Failed;
        summary.mirrors.insert(
            r.id.clone(),
            MirrorSummary {
                result: serde_json::to_value(r.result)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                error: r.error.clone(),
                finished: end.to_rfc3339(),
                last_success: if ok {
                    Some(end.to_rfc3339())
                } else {
                    previous_success
                },
                files_downloaded: r.files_downloaded,
                files_reused: r.files_reused,
                bytes_downloaded: r.bytes_downloaded,
                duration_secs: r.duration_secs,
                snapshot: r.snapshot.clone(),
                entries_skipped: r.entries_skipped,
                warnings: r.warnings.clone(),
            },
        );
    }
    let data = serde_json::to_vec_pretty(&summary).unwrap_or_default();
    aptindex::tree::atomic::write_file(&file, &data)
}
