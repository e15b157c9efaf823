//! What one mirror's update reports: how it ended and what it did, for
//! the summary lines and `apt-mirror-summary.json`.

/// How a mirror's update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new snapshot was published.
    Updated,
    /// Upstream had not changed; nothing was downloaded.
    Unchanged,
    /// The update failed; the current snapshot is untouched.
    Failed,
}

/// The result of one mirror's update.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MirrorReport {
    /// The mirror ID.
    pub id: String,
    /// How it ended.
    pub result: Outcome,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Files downloaded (the Release files, fetched every run, not counted).
    pub files_downloaded: u64,
    /// Files hard-linked from the previous snapshot.
    pub files_reused: u64,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Wall time, in seconds.
    pub duration_secs: f64,
    /// The published snapshot directory (current one when unchanged or failed).
    pub snapshot: Option<String>,
    /// Index entries skipped as bad (unsafe path, bad size or digest):
    /// their files are not mirrored (each index also gets a warning).
    pub entries_skipped: u64,
    /// What was wrong but did not stop the update (e.g. a `Release.gpg`
    /// that does not verify next to a good `InRelease`), each naming its URL.
    pub warnings: Vec<String>,
}

impl MirrorReport {
    /// One human-readable summary line.
    pub fn line(&self) -> String {
        let result = match (&self.result, &self.error) {
            (Outcome::Failed, Some(e)) => format!("FAILED: {e}"),
            (Outcome::Failed, None) => "FAILED".to_string(),
            (Outcome::Updated, _) => "updated".to_string(),
            (Outcome::Unchanged, _) => "unchanged".to_string(),
        };
        format!(
            "mirror {}: {} files downloaded, {} reused, {} bytes, {:.2} s: {}",
            self.id,
            self.files_downloaded,
            self.files_reused,
            self.bytes_downloaded,
            self.duration_secs,
            result
        )
    }
}
