//! Keep N generations and collect the rest: of the published trees of one
//! kind (named so that they sort by age), the current one and the `keep`
//! newest complete ones before it stay (clients in the middle of an update
//! may still read them); everything else of that kind (older trees, trees
//! of failed or killed runs, stray temporary names) is garbage.

use super::TreeError;
use std::path::Path;

/// What [`select`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The current tree and the `keep` newest complete ones before it,
    /// newest first.
    pub kept: Vec<String>,
    /// Every other name.
    pub doomed: Vec<String>,
}

/// Splits `names` (entries of one kind, sorting by age; the current one may
/// be among them) into kept and doomed: `current` is kept, then, newest
/// first, up to `keep` names older than it for which `is_complete` holds.
/// Newer names than the current one are an unfinished or failed run's.
pub fn select(
    mut names: Vec<String>,
    current: Option<&str>,
    keep: usize,
    is_complete: impl Fn(&str) -> bool,
) -> Selection {
    names.sort();
    names.dedup();
    let mut kept: Vec<String> = current.iter().map(|c| c.to_string()).collect();
    let mut doomed = Vec::new();
    let mut previous = 0;
    for name in names.into_iter().rev() {
        if Some(name.as_str()) == current {
            continue;
        }
        let is_previous = current.is_some_and(|c| name.as_str() < c) && is_complete(&name);
        if is_previous && previous < keep {
            previous += 1;
            kept.push(name);
        } else {
            doomed.push(name);
        }
    }
    Selection { kept, doomed }
}

/// Removes the entry `path` of a tree root: a directory with everything in
/// it, or a file or symlink. An entry already gone is not an error.
pub fn remove(path: &Path) -> Result<(), TreeError> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.map_err(TreeError::io(path))?,
    };
    let result = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TreeError::io(path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keeps_current_and_n_complete_before_it() {
        let all = names(&["g1", "g2", "g3", "g4", "g5", "g6"]);
        // g3 is incomplete (a failed run), g6 newer than current (unfinished).
        let s = select(all.clone(), Some("g5"), 2, |n| n != "g3");
        assert_eq!(s.kept, names(&["g5", "g4", "g2"]));
        assert_eq!(s.doomed, names(&["g6", "g3", "g1"]));
        let s = select(all.clone(), Some("g5"), 0, |_| true);
        assert_eq!(s.kept, names(&["g5"]));
        assert_eq!(s.doomed.len(), 5);
        // No current tree: nothing counts as previous.
        let s = select(all, None, 3, |_| true);
        assert!(s.kept.is_empty());
        assert_eq!(s.doomed.len(), 6);
    }

    #[test]
    fn gc_keeps_n_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        for g in ["gen-1", "gen-2", "gen-3", "gen-4"] {
            std::fs::create_dir_all(dir.path().join(g).join("sub")).unwrap();
            std::fs::write(dir.path().join(g).join("sub/f"), g).unwrap();
        }
        std::os::unix::fs::symlink("nowhere", dir.path().join("gen-0.tmp")).unwrap();
        let listed: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let s = select(listed, Some("gen-4"), 1, |n| dir.path().join(n).is_dir());
        for d in &s.doomed {
            remove(&dir.path().join(d)).unwrap();
        }
        remove(&dir.path().join("never-there")).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, names(&["gen-3", "gen-4"]));
    }
}
