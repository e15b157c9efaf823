//! Upstream faults: corruption, a change during the run, transient and
//! permanent stalls, hanging connects, and one failing mirror among several.

use super::*;

#[test]
fn corrupted_file_keeps_the_current_snapshot() {
    let bed = Bed::new(|b| b.generated_packages(5, 1000));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let target = bed.link_target();
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0001", "2.0"));
        repo.publish().unwrap();
    }
    bed.up.corrupt("/pool/*pkg0001*", Times::Always);
    assert_eq!(bed.run(), 1);
    assert_eq!(bed.link_target(), target);
    assert_eq!(bed.snapshot_dirs().len(), 1, "unfinished snapshot removed");
    let s = bed.summary();
    assert_eq!(s["mirrors"]["m"]["result"], "failed");
    let err = s["mirrors"]["m"]["error"].as_str().unwrap().to_string();
    assert!(err.contains("pkg0001") && err.contains("mismatch"), "{err}");
    // The old tree is still complete.
    assert!(bed
        .mirrored("pool/main/p/pkg0001/pkg0001_1.0_amd64.deb")
        .is_file());

    bed.up.clear_faults();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
}

#[test]
fn corrupted_index_keeps_the_current_snapshot() {
    let bed = Bed::new(|b| b.generated_packages(3, 500));
    bed.standard_config();
    bed.up.corrupt("*/Packages*", Times::Always);
    assert_eq!(bed.run(), 1);
    assert!(!bed.dir().join("m").exists());
    assert!(bed.snapshot_dirs().is_empty());
}

#[test]
fn upstream_change_during_the_run_is_detected() {
    let bed = Bed::new(|b| b.generated_packages(5, 1000));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let target = bed.link_target();
    {
        let mut repo = bed.repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0002", "2.0"));
        repo.publish().unwrap();
    }
    // While the pool is being fetched, the upstream publishes again.
    let repo = bed.repo.clone();
    bed.up.on_request("/pool/*", 1, move || {
        let mut repo = repo.lock().unwrap();
        repo.replace(PackageSpec::new("pkg0004", "3.0"));
        repo.publish().unwrap();
    });
    assert_eq!(bed.run(), 1);
    assert!(bed.up.hooks_done());
    assert_eq!(bed.link_target(), target);
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("changed upstream"), "{err}");
    // Next run, with a stable upstream, succeeds.
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
}

#[test]
fn transient_faults_are_retried() {
    let bed = Bed::new(|b| b.generated_packages(4, 3000));
    bed.standard_config();
    bed.up.fail_status("/pool/*pkg0000*", 503, Times::Once);
    bed.up.truncate("/pool/*pkg0001*", 100, Times::Once);
    bed.up.stall("/pool/*pkg0002*", Times::Once);
    bed.up
        .fail_status("/dists/stable/InRelease", 500, Times::Once);
    let t = Instant::now();
    assert_eq!(bed.run(), 0);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    bed.assert_complete();
    assert_eq!(bed.up.requests_matching("/pool/*pkg0002*"), 2);
}

#[test]
fn permanent_stall_fails_without_hanging() {
    let bed = Bed::new(|b| b.generated_packages(2, 1000));
    bed.standard_config();
    bed.up.stall("/pool/*pkg0001*", Times::Always);
    let t = Instant::now();
    assert_eq!(bed.run(), 1);
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("read timeout"), "{err}");
}

/// An upstream whose connects hang (accept queue full, SYNs dropped): each
/// attempt ends at `connect_timeout` (2 s; not at the shorter read timeout),
/// three attempts (`retries = 2`) and the backoff between them, then the run
/// fails naming the connect timeout and publishes nothing.
#[test]
fn hanging_connect_fails_after_the_connect_timeouts() {
    let hole = testkit::Blackhole::new().unwrap();
    let bed = Bed::new(|b| b.generated_packages(1, 100));
    bed.standard_config();
    let text = std::fs::read_to_string(bed.config_path()).unwrap();
    std::fs::write(bed.config_path(), text.replace(&bed.up.url(), &hole.url())).unwrap();
    // connect_timeout × (retries + 1) + retry_delay × (1 + 2), as configured.
    let expected = Duration::from_secs(2) * 3 + Duration::from_millis(150);
    let t = Instant::now();
    assert_eq!(bed.run(), 1);
    let took = t.elapsed();
    eprintln!("hanging connect: failed after {took:?} (expected {expected:?})");
    assert!(
        took >= expected - Duration::from_millis(100) && took < expected + Duration::from_secs(3),
        "{took:?}"
    );
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("connect timeout"), "{err}");
    assert!(bed.snapshot_dirs().is_empty(), "{:?}", bed.snapshot_dirs());
    assert!(std::fs::symlink_metadata(bed.dir().join("m")).is_err());
    assert_eq!(bed.up.requests_total(), 0);
}

#[test]
fn one_failing_mirror_does_not_stop_the_others() {
    let bed = Bed::new(|b| b.generated_packages(3, 500));
    let text = format!(
        r#"dir = "{dir}"
[mirror.m]
url = "{url}"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
keyring = "key.gpg"
[mirror.broken]
url = "{url}/nothing-here"
suites = ["stable"]
sections = ["main"]
architectures = ["amd64"]
"#,
        dir = bed.dir().display(),
        url = bed.up.url()
    );
    std::fs::write(bed.config_path(), text).unwrap();
    assert_eq!(bed.run(), 1);
    bed.assert_complete();
    let s = bed.summary();
    assert_eq!(s["ok"], false);
    assert_eq!(s["mirrors"]["m"]["result"], "updated");
    assert_eq!(s["mirrors"]["broken"]["result"], "failed");
    assert!(s["mirrors"]["broken"]["last_success"].is_null());
    assert!(!bed.dir().join("broken").exists());
    // Only "m" selected: succeeds, and the summary keeps "broken"'s last entry.
    assert_eq!(run_args(&bed.config_path(), &["m"]), 0);
    let s = bed.summary();
    assert_eq!(s["ok"], true);
    assert_eq!(s["mirrors"]["m"]["result"], "unchanged");
    assert_eq!(s["mirrors"]["broken"]["result"], "failed");
}
