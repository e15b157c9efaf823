//! apt-mirror as a process: kill -9 and rerun, SIGTERM mid-run, lock
//! contention, unknown mirror ids, --check-config and exit codes (the child
//! processes re-run this binary's `child_process_entry`).

use super::*;

#[test]
fn lock_contention_exits_at_once() {
    let bed = Bed::new(|b| b.generated_packages(1, 100));
    bed.standard_config();
    let _held = apt_mirror::lock::RunLock::acquire(&bed.dir()).unwrap();
    let t = Instant::now();
    assert_eq!(bed.run(), apt_mirror::exit::LOCKED);
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(bed.up.requests_total(), 0);
}

#[test]
fn unknown_mirror_id_touches_nothing() {
    let bed = Bed::new(|b| b.generated_packages(1, 100));
    bed.standard_config();
    assert_eq!(
        run_args(&bed.config_path(), &["nope"]),
        apt_mirror::exit::CONFIG
    );
    assert!(!bed.dir().exists());
    assert_eq!(bed.up.requests_total(), 0);
    assert_eq!(run_args(&bed.config_path(), &["m"]), 0);
}

/// Not a test: when this executable is re-run with [`CHILD_ENV`], this
/// "test" runs apt-mirror's `main` in that separate process (which the parent
/// can kill -9) and exits with its status.
#[test]
fn child_process_entry() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let argv =
        std::iter::once("apt-mirror".to_string()).chain(args.split('\x1f').map(str::to_string));
    std::process::exit(i32::from(apt_mirror::main_from_args(argv)));
}

/// Mirrors `n` packages of `size` bytes, changes them all upstream, slows the
/// pool down, and starts a second run in a child process; returns once that
/// run has asked for `pool_requests` pool files, with the child and the
/// snapshot that was current before it.
fn start_interrupted_update(
    n: usize,
    size: usize,
    pool_requests: usize,
) -> (Bed, std::process::Child, std::path::PathBuf) {
    let bed = Bed::new(|b| b.generated_packages(n, size));
    bed.standard_config();
    assert_eq!(bed.run(), 0);
    let target = bed.link_target();
    {
        let mut repo = bed.repo.lock().unwrap();
        for i in 0..n {
            repo.replace(PackageSpec::new(&format!("pkg{i:04}"), "2.0").size(size));
        }
        repo.publish().unwrap();
    }
    bed.up
        .delay("/pool/*", Duration::from_millis(300), Times::Always);
    bed.up.reset_counts();
    let child = apt_mirror_command(&["-f".as_ref(), bed.config_path().as_os_str()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while bed.up.requests_matching("/pool/*") < pool_requests {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the child never reached the pool"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (bed, child, target)
}

#[test]
fn kill_9_mid_run_then_rerun() {
    let (bed, mut child, target) = start_interrupted_update(30, 5000, 6);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Killed: the current snapshot is untouched, an unfinished one is left over.
    assert_eq!(bed.link_target(), target);
    let leftovers = bed.snapshot_dirs();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");

    bed.up.clear_faults();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    let old = target.parent().unwrap().to_string_lossy().to_string();
    let unfinished: Vec<&String> = leftovers.iter().filter(|d| **d != old).collect();
    assert_eq!(unfinished.len(), 1);
    let after = bed.snapshot_dirs();
    assert_eq!(after.len(), 2, "current + one previous: {after:?}");
    assert!(after.contains(&old), "{after:?}");
    assert!(
        !after.contains(unfinished[0]),
        "leftover not removed: {after:?}"
    );
}

#[test]
fn kill_9_leftovers_in_the_shared_pool_are_removed() {
    let (bed, mut child, target) = start_interrupted_update(30, 5000, 10);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(bed.link_target(), target);
    // The killed run had added verified files to the shared pool (never a
    // partial one: those are in its own snapshot directory).
    let generation = bed.dir().join(&bed.pool_generations()[0]);
    let added = |version: &str| {
        files_under(&generation)
            .into_iter()
            .filter(|f| f.contains(&format!("_{version}_")))
            .count()
    };
    assert!(added("2.0") > 0, "{:?}", files_under(&generation));
    assert!(!files_under(&generation).iter().any(|f| f.contains(".part")));

    // Meanwhile the upstream moves on: what the killed run fetched is not needed.
    {
        let mut repo = bed.repo.lock().unwrap();
        for i in 0..30 {
            repo.replace(PackageSpec::new(&format!("pkg{i:04}"), "3.0").size(5000));
        }
        repo.publish().unwrap();
    }
    bed.up.clear_faults();
    assert_eq!(bed.run(), 0);
    bed.assert_complete();
    assert_eq!(added("2.0"), 0, "leftovers of the killed run kept");
    assert_eq!(added("3.0"), 30);
    assert_eq!(bed.snapshot_dirs().len(), 2, "{:?}", bed.snapshot_dirs());
    assert_eq!(bed.pool_generations().len(), 1);
    bed.assert_pool_exact();
}

#[test]
fn check_config_and_exit_codes_in_a_child_process() {
    let bed = Bed::new(|b| b.generated_packages(1, 100));
    bed.standard_config();
    let out = apt_mirror_command(&[
        "--check-config".as_ref(),
        "-f".as_ref(),
        bed.config_path().as_os_str(),
    ])
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!bed.dir().exists());
    // A bad key: the error names the file, the line and the key.
    std::fs::write(
        bed.config_path(),
        "dir = \"/x\"\n[mirror.m]\nurl = \"http://h/\"\nsuits = []\n",
    )
    .unwrap();
    let out = apt_mirror_command(&[
        "--check-config".as_ref(),
        "-f".as_ref(),
        bed.config_path().as_os_str(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mirror.toml:4:") && err.contains("suits"),
        "{err}"
    );
    // A real run prints one summary line per mirror.
    bed.standard_config();
    let out = apt_mirror_command(&["-f".as_ref(), bed.config_path().as_os_str()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("mirror m: 4 files downloaded, 0 reused") && stdout.contains("updated"),
        "{stdout}"
    );
}

#[test]
fn sigterm_mid_run_keeps_the_current_snapshot_and_cleans_up() {
    let (bed, mut child, target) = start_interrupted_update(20, 2000, 4);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t = Instant::now();
    let code = child.wait().unwrap().code();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?} to stop",
        t.elapsed()
    );
    assert_eq!(code, Some(1));
    assert_eq!(bed.link_target(), target);
    assert_eq!(
        bed.snapshot_dirs().len(),
        1,
        "unfinished snapshot removed: {:?}",
        bed.snapshot_dirs()
    );
    let err = bed.summary()["mirrors"]["m"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("interrupted"), "{err}");
}
