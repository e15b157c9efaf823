//! PDiffs for generated repositories, as Debian's archive publishes them.
//!
//! With [`crate::RepoBuilder::pdiffs`] on, every publish after the first
//! that changes a `Packages`, `Sources` or `Translation-*` index writes
//! `<index>.diff/<patch>.gz` (a gzipped ed script made by the real
//! `diff --ed old new`) and rewrites `<index>.diff/Index` with
//! `SHA1-`/`SHA256-Current`, `-History`, `-Patches` and `-Download`, keeping
//! the patches of the last [`crate::repo::RepoConfig::pdiff_keep`]
//! generations, as dak's `generate-index-diffs` does. The Index is listed in
//! the Release (with by-hash copies when the repository has by-hash, as
//! Debian does); the patches are not.
//!
//! Two layouts: [`PdiffLayout::Merged`] (Debian today: `X-Patch-Precedence:
//! merged`, each patch `T-<new>-F-<old>` leads straight from an old
//! generation to the current one, apt fetches one) and
//! [`PdiffLayout::Chained`] (each patch leads to the next generation, apt
//! fetches and merges them all). Patch names are dak's time stamps
//! (`2026-12-06-0130.12`), one second apart at least.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use super::{write_atomic, Checksums};

/// How patches relate to generations; see the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PdiffLayout {
    /// Debian's layout: each patch goes from an old generation straight to the current one.
    #[default]
    Merged,
    /// Each patch goes from one generation to the next.
    Chained,
}

/// One generation of an index: its time stamp and uncompressed bytes.
#[derive(Debug, Clone)]
struct Generation {
    stamp: String,
    content: Vec<u8>,
}

/// A patch as listed in the Index.
#[derive(Debug)]
struct PatchFile {
    name: String,
    /// The index it applies to.
    history: Checksums,
    /// The uncompressed ed script.
    patch: Checksums,
    /// The `.gz` file.
    download: Checksums,
}

/// What the repository remembers between publishes to make patches.
#[derive(Debug, Default)]
pub(crate) struct PdiffState {
    /// Generations per index (key: suite + path), oldest first.
    indices: HashMap<String, Vec<Generation>>,
    /// Seconds since the epoch of the last stamp handed out.
    last_stamp: Option<i64>,
    /// The stamp of the publish under way.
    stamp: String,
}

/// True for the indices Debian publishes PDiffs for.
pub(crate) fn wants_pdiff(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "Packages" || name == "Sources" || name.starts_with("Translation-")
}

impl PdiffState {
    /// Starts a publish at `date`: the stamp of patches made now.
    pub(crate) fn begin_publish(&mut self, date: SystemTime) {
        let dt: chrono::DateTime<chrono::Utc> = date.into();
        let mut secs = dt.timestamp();
        if let Some(last) = self.last_stamp {
            secs = secs.max(last + 1);
        }
        self.last_stamp = Some(secs);
        let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or(dt);
        self.stamp = dt.format("%Y-%m-%d-%H%M.%S").to_string();
    }

    /// Records `content` as the current generation of the index at `path`
    /// (relative to the suite directory `dir`), writes the patches and returns
    /// the text of `<path>.diff/Index`, or `None` while there is no older
    /// generation to patch from.
    pub(crate) fn update(
        &mut self,
        dir: &Path,
        suite: &str,
        path: &str,
        content: &[u8],
        layout: PdiffLayout,
        keep: usize,
    ) -> Result<Option<Vec<u8>>> {
        let gens = self.indices.entry(format!("{suite}\0{path}")).or_default();
        if gens.last().is_none_or(|g| g.content != content) {
            gens.push(Generation {
                stamp: self.stamp.clone(),
                content: content.to_vec(),
            });
        }
        let excess = gens.len().saturating_sub(keep.saturating_add(1));
        gens.drain(..excess);
        let diff_dir = dir.join(format!("{path}.diff"));
        let patches = match gens.split_last() {
            Some((current, older)) if !older.is_empty() => {
                make_patches(&diff_dir, current, older, layout)?
            }
            _ => return Ok(None),
        };
        remove_unlisted(&diff_dir, &patches)?;
        let current = Checksums::of(content);
        Ok(Some(index_text(&current, &patches, layout).into_bytes()))
    }
}

fn make_patches(
    diff_dir: &Path,
    current: &Generation,
    older: &[Generation],
    layout: PdiffLayout,
) -> Result<Vec<PatchFile>> {
    let mut out = Vec::new();
    for (i, from) in older.iter().enumerate() {
        let (name, to) = match layout {
            PdiffLayout::Merged => (format!("T-{}-F-{}", current.stamp, from.stamp), current),
            PdiffLayout::Chained => {
                let to = older.get(i + 1).unwrap_or(current);
                (to.stamp.clone(), to)
            }
        };
        let script = ed_script(&from.content, &to.content)?;
        let gz = gzip(&script)?;
        let file = diff_dir.join(format!("{name}.gz"));
        if !file.is_file() {
            write_atomic(&file, &gz)?;
        }
        out.push(PatchFile {
            name,
            history: Checksums::of(&from.content),
            patch: Checksums::of(&script),
            download: Checksums::of(&gz),
        });
    }
    Ok(out)
}

/// `diff --ed old new` (diffutils), as dak makes its patches.
pub fn ed_script(old: &[u8], new: &[u8]) -> Result<Vec<u8>> {
    let tmp = tempfile::Builder::new()
        .prefix("testkit-pdiff-")
        .tempdir()
        .context("pdiff temp dir")?;
    let (a, b) = (tmp.path().join("old"), tmp.path().join("new"));
    std::fs::write(&a, old).context("writing old index for diff")?;
    std::fs::write(&b, new).context("writing new index for diff")?;
    let out = std::process::Command::new("diff")
        .arg("--ed")
        .arg(&a)
        .arg(&b)
        .output()
        .context("running diff --ed (diffutils)")?;
    // 0: same, 1: different, anything else: trouble.
    match out.status.code() {
        Some(0 | 1) => Ok(out.stdout),
        _ => bail!(
            "diff --ed failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
    e.write_all(data)?;
    Ok(e.finish()?)
}

/// Removes patch files no longer listed (as dak prunes old patches).
fn remove_unlisted(diff_dir: &Path, patches: &[PatchFile]) -> Result<()> {
    let entries =
        std::fs::read_dir(diff_dir).with_context(|| format!("listing {}", diff_dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", diff_dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".gz") else {
            continue;
        };
        if !patches.iter().any(|p| p.name == stem) {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn index_text(current: &Checksums, patches: &[PatchFile], layout: PdiffLayout) -> String {
    type Pick = fn(&Checksums) -> &str;
    let kinds: [(&str, Pick); 2] = [("SHA1", |c| &c.sha1), ("SHA256", |c| &c.sha256)];
    let mut t = String::new();
    for (kind, pick) in kinds {
        let _ = writeln!(t, "{kind}-Current: {} {}", pick(current), current.size);
    }
    for (kind, pick) in kinds {
        let _ = writeln!(t, "{kind}-History:");
        for p in patches {
            let _ = writeln!(t, " {} {:>7} {}", pick(&p.history), p.history.size, p.name);
        }
    }
    for (kind, pick) in kinds {
        let _ = writeln!(t, "{kind}-Patches:");
        for p in patches {
            let _ = writeln!(t, " {} {:>7} {}", pick(&p.patch), p.patch.size, p.name);
        }
    }
    for (kind, pick) in kinds {
        let _ = writeln!(t, "{kind}-Download:");
        for p in patches {
            let _ = writeln!(
                t,
                " {} {:>7} {}.gz",
                pick(&p.download),
                p.download.size,
                p.name
            );
        }
    }
    if layout == PdiffLayout::Merged {
        t.push_str("X-Patch-Precedence: merged\n");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed_script_comes_from_diff() {
        let s = ed_script(b"a\nb\nc\n", b"a\nB\nc\nd\n").unwrap();
        let s = String::from_utf8(s).unwrap();
        assert!(s.contains("3a\nd\n.\n"), "{s}");
        assert!(s.contains("2c\nB\n.\n"), "{s}");
        assert!(ed_script(b"x\n", b"x\n").unwrap().is_empty());
    }

    #[test]
    fn generations_make_merged_and_chained_patches() {
        let tmp = tempfile::tempdir().unwrap();
        for layout in [PdiffLayout::Merged, PdiffLayout::Chained] {
            let dir = tmp.path().join(format!("{layout:?}"));
            let mut st = PdiffState::default();
            let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
            st.begin_publish(t0);
            assert!(st
                .update(&dir, "s", "P/Packages", b"1\n", layout, 2)
                .unwrap()
                .is_none());
            for (i, body) in [&b"1\n2\n"[..], b"1\n2\n3\n", b"0\n2\n3\n"]
                .iter()
                .enumerate()
            {
                st.begin_publish(t0); // same date: stamps still differ
                let text = st
                    .update(&dir, "s", "P/Packages", body, layout, 2)
                    .unwrap()
                    .unwrap();
                let text = String::from_utf8(text).unwrap();
                let index = aptindex::DiffIndex::parse(text.as_bytes()).unwrap();
                assert_eq!(index.patches.len(), (i + 1).min(2), "{text}");
                assert_eq!(index.current.size, body.len() as u64);
                let files = std::fs::read_dir(dir.join("P/Packages.diff"))
                    .unwrap()
                    .count();
                assert_eq!(files, index.patches.len(), "{text}");
                for p in &index.patches {
                    assert!(p.is_complete());
                    let gz =
                        std::fs::read(dir.join("P/Packages.diff").join(p.download_name())).unwrap();
                    let sums = aptindex::Checksums::of_bytes(&gz);
                    p.download.as_ref().unwrap().verify(&p.name, &sums).unwrap();
                }
                assert_eq!(
                    text.contains("X-Patch-Precedence: merged"),
                    layout == PdiffLayout::Merged
                );
            }
        }
    }
}
