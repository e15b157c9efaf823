//! Steps 3 to 7 of an update: the new snapshot's tree, from the Release
//! files believed to the `info.json` that describes it. Each step is a
//! method of its own file; this one runs them in order and holds what they
//! share ([`Building`], in `building.rs`).

use super::building::{Building, Recorded};
use super::place::{link_file, newer_than};
use super::release::SuiteReleases;
use super::update::Update;
use super::{MirrorError, TMP_DIR};
use crate::plan::{self, IndexFile};
use crate::progress::{Progress, Reporter};
use crate::snapshot::{FileInfo, Info, ReuseIndex, Snapshot, Withheld};
use aptindex::checksum::Checksums;
use aptindex::trust::{Decision, ReleaseFile};
use std::collections::BTreeMap;

use std::time::Instant;

impl Update<'_> {
    /// Builds the tree of `new` (the Release files `releases`, believed as
    /// `parsed` says) and returns its `info.json`.
    pub(super) async fn build(
        &self,
        new: &Snapshot,
        releases: &[SuiteReleases],
        parsed: &[Decision],
        current: Option<&Snapshot>,
        current_info: Option<&Info>,
        fingerprint: String,
    ) -> Result<Info, MirrorError> {
        let reuse = match (current, current_info) {
            (Some(c), Some(i)) => ReuseIndex::new(&c.tree, i),
            (Some(c), None) => {
                tracing::warn!(mirror = %self.cfg.id, snapshot = %c.name, "current snapshot has no usable info.json: its files are hashed before reuse");
                ReuseIndex::unverified(&c.tree)
            }
            _ => ReuseIndex::default(),
        };
        let b = Building {
            new,
            current,
            current_info,
            reuse,
            progress: Progress::new(),
            tmp: new.dir.join(TMP_DIR),
            files: Recorded::default(),
            t0: Instant::now(),
        };
        let withheld = self.place_release_files(&b, releases, parsed)?;
        let _reporter =
            Reporter::start(&self.cfg.id, b.progress.clone(), self.ctx.progress_interval);
        let indices = super::indices::select_all(self.cfg, releases, parsed)?;
        let present = self.fetch_indices(&b, &indices).await?;
        tracing::debug!(mirror = %self.cfg.id, elapsed_ms = b.t0.elapsed().as_millis() as u64, "indices fetched");
        let carried = self.place_pool_files(&b, &indices, &present).await?;
        tracing::debug!(mirror = %self.cfg.id, elapsed_ms = b.t0.elapsed().as_millis() as u64, "pool files placed");
        let by_hash = self.link_by_hash(&b, &present)?;
        tracing::debug!(mirror = %self.cfg.id, elapsed_ms = b.t0.elapsed().as_millis() as u64, "by-hash and carried files linked");
        // The upstream must not have changed meanwhile.
        self.check_unchanged(releases).await?;
        Ok(Info {
            format: 1,
            id: self.cfg.id.clone(),
            created: chrono::Utc::now().to_rfc3339(),
            config: fingerprint,
            files: b.files.into_inner(),
            by_hash,
            carried,
            withheld,
        })
    }

    /// Writes the Release files, as fetched, that verified (or all, without
    /// a keyring); the others are only recorded (returned), so that the
    /// next run recognises an upstream still serving the same bytes.
    fn place_release_files(
        &self,
        b: &Building<'_>,
        releases: &[SuiteReleases],
        parsed: &[Decision],
    ) -> Result<BTreeMap<String, Withheld>, MirrorError> {
        let mut withheld = BTreeMap::new();
        for (r, decision) in releases.iter().zip(parsed) {
            for (file, data) in ReleaseFile::ALL.into_iter().zip(&r.files) {
                if let Some(data) = data {
                    let path = aptindex::path::join(&r.dir, file.name());
                    if !decision.publishes(file) {
                        let reason = decision
                            .warning(file)
                            .map(|w| w.problem.to_string())
                            .unwrap_or_else(|| "not verified".to_string());
                        withheld.insert(
                            path,
                            Withheld {
                                file: FileInfo::from_checksums(&Checksums::of_bytes(data)),
                                reason,
                            },
                        );
                        continue;
                    }
                    let dest = b.new.tree.join(&path);
                    aptindex::tree::atomic::write_file(&dest, data)?;
                    if let Some(cur) = b.current {
                        newer_than(&dest, &cur.tree.join(&path));
                    }
                    b.files.record(&path, &Checksums::of_bytes(data));
                }
            }
        }
        Ok(withheld)
    }

    /// by-hash links: this snapshot's indices, plus the previous
    /// snapshot's so that clients that read the old InRelease still find
    /// its indices. Returns this snapshot's own.
    fn link_by_hash(
        &self,
        b: &Building<'_>,
        present: &[IndexFile],
    ) -> Result<Vec<String>, MirrorError> {
        let new = b.new;
        let mut by_hash = Vec::new();
        for idx in present.iter().filter(|i| i.by_hash) {
            for kind in idx.checksums.kinds() {
                let Some(hex) = idx.checksums.hex(kind) else {
                    continue;
                };
                let bh = aptindex::path::by_hash_path(&idx.path, kind, &hex);
                link_file(&new.tree.join(idx.stored_path()), &new.tree.join(&bh))?;
                b.files.record(&bh, &idx.checksums);
                by_hash.push(bh);
            }
        }
        if let (Some(cur), Some(info)) = (b.current, b.current_info) {
            for bh in &info.by_hash {
                let dest = new.tree.join(bh);
                if dest.exists() || plan::safe_path("info.json", bh).is_err() {
                    continue;
                }
                if let Some(fi) = info.files.get(bh) {
                    if link_file(&cur.tree.join(bh), &dest).is_ok() {
                        b.files.record(bh, &fi.to_checksums());
                    }
                }
            }
        }
        Ok(by_hash)
    }
}
