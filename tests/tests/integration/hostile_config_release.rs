//! Issue #13 item 11: apt-mirror refuses a Release whose `Valid-Until` has
//! passed (apt's clients would fail with "Release file expired"): the run
//! fails with an error naming the suite, the URL and the date, and the
//! current snapshot stays; `check_valid_until = false` publishes it with a
//! warning; less than a day left is a warning. (Item 10, the configuration
//! errors, is unit-tested in both binaries' `config/tests_type_errors.rs`.)

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use testkit::{Repo, Upstream};

/// A generated upstream, its server and a mirror root with a config.
struct Bed {
    tmp: tempfile::TempDir,
    repo: Repo,
    up: Upstream,
}

impl Bed {
    fn new() -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::builder(tmp.path().join("upstream"))
            .generated_packages(2, 300)
            .build()
            .unwrap();
        let up = Upstream::serve(repo.root()).unwrap();
        let bed = Bed { tmp, repo, up };
        bed.configure("");
        bed
    }

    /// Writes the config, with `extra` lines in the mirror's table.
    fn configure(&self, extra: &str) {
        let config = format!(
            "dir = \"{}\"\nmax_conns = 4\n[http]\nretries = 0\n[mirror.m]\nurl = \"{}/\"\n\
             suites = [\"stable\"]\nsections = [\"main\"]\narchitectures = [\"amd64\"]\n{extra}",
            self.dir().display(),
            self.up.url()
        );
        std::fs::write(self.tmp.path().join("mirror.toml"), config).unwrap();
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("mirror")
    }

    fn run(&self) -> u8 {
        testkit::mirror::run(&self.tmp.path().join("mirror.toml"), &[])
    }

    /// Publishes the upstream again with `Date` = now - `age` and
    /// `Valid-Until` = `Date` + `valid`.
    fn republish(&mut self, age: Duration, valid: Duration) {
        let config = self.repo.config_mut();
        config.date = Some(SystemTime::now() - age);
        config.valid_until = Some(valid);
        self.repo.publish().unwrap();
    }

    /// The `Valid-Until` value upstream's InRelease carries.
    fn valid_until(&self) -> String {
        let text =
            std::fs::read_to_string(self.repo.suite_dir("stable").join("InRelease")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("Valid-Until: "))
            .unwrap()
            .to_string()
    }

    /// This mirror's entry of the run summary.
    fn summary(&self) -> serde_json::Value {
        let data = std::fs::read(self.dir().join("apt-mirror-summary.json")).unwrap();
        let all: serde_json::Value = serde_json::from_slice(&data).unwrap();
        all["mirrors"]["m"].clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.summary()["warnings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn current(&self) -> PathBuf {
        std::fs::read_link(self.dir().join("m")).unwrap()
    }

    fn mirrored_in_release(&self) -> Vec<u8> {
        std::fs::read(self.dir().join("m/dists/stable/InRelease")).unwrap()
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

#[test]
fn expired_release_is_refused_and_the_snapshot_kept_unless_allowed() {
    let mut bed = Bed::new();
    assert_eq!(bed.run(), 0, "{}", bed.summary());
    let before = bed.current();
    let published = bed.mirrored_in_release();

    // Signed three days ago, valid for one: expired two days ago.
    bed.republish(3 * DAY, DAY);
    let until = bed.valid_until();
    assert_ne!(bed.run(), 0, "an expired Release was accepted");
    let error = bed.summary()["error"].as_str().unwrap_or("").to_string();
    let url = format!("{}/dists/stable/InRelease", bed.up.url());
    assert!(error.starts_with(&url), "{error}");
    assert!(error.contains("suite \"stable\""), "{error}");
    assert!(
        error.contains(&format!("Release expired: Valid-Until {until}")),
        "{error}"
    );
    assert!(error.contains("the current snapshot is kept"), "{error}");
    assert_eq!(bed.current(), before);
    assert_eq!(bed.mirrored_in_release(), published);

    // Allowed for this mirror: published, with a warning.
    bed.configure("check_valid_until = false\n");
    assert_eq!(bed.run(), 0, "{}", bed.summary());
    assert_eq!(bed.summary()["result"], "updated");
    assert_ne!(bed.current(), before);
    assert!(
        bed.warnings().iter().any(|w| w.starts_with(&url)
            && w.contains("Release expired")
            && w.contains("published because check_valid_until = false")),
        "{:?}",
        bed.warnings()
    );
}

#[test]
fn release_expiring_within_a_day_is_published_with_a_warning() {
    let mut bed = Bed::new();
    bed.republish(Duration::ZERO, Duration::from_secs(12 * 3600));
    let until = bed.valid_until();
    assert_eq!(bed.run(), 0, "{}", bed.summary());
    assert_eq!(bed.summary()["result"], "updated");
    let url = format!("{}/dists/stable/InRelease", bed.up.url());
    assert!(
        bed.warnings().iter().any(|w| w.starts_with(&url)
            && w.contains(&format!("Release expires soon: Valid-Until {until} is in"))),
        "{:?}",
        bed.warnings()
    );
    // Two days left: no warning.
    bed.republish(Duration::ZERO, 2 * DAY);
    assert_eq!(bed.run(), 0, "{}", bed.summary());
    assert!(
        !bed.warnings().iter().any(|w| w.contains("expires soon")),
        "{:?}",
        bed.warnings()
    );
}
