//! A real headless browser and OCR, to check that a page renders with its
//! key figures visible: [`screenshot`] runs Debian's `chromium` headless
//! (no sandbox, no background networking, a fresh profile) to a PNG, and
//! [`ocr`] reads the text back with `tesseract`. Missing programs are
//! errors that name the Debian package to install.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The first of `candidates` that exists, or one found in `PATH`.
fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() && p.is_file() {
            return Some(p.to_path_buf());
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        candidates
            .iter()
            .filter(|c| !c.starts_with('/'))
            .map(|c| dir.join(c))
            .find(|p| p.is_file())
    })
}

/// Runs `cmd` to completion within `limit`; its output. The program runs
/// in a process group of its own with its output going to files (so a
/// chatty program never blocks on a full pipe, and helpers it leaves behind
/// hold no pipe of ours open); when it finishes, or `limit` passes, the
/// whole group is killed, so nothing it started outlives the call.
fn run_bounded(mut cmd: Command, limit: Duration) -> Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    let what = format!("{cmd:?}");
    let dir = tempfile::tempdir().context("output directory")?;
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let create = |p: &Path| File::create(p).with_context(|| format!("creating {}", p.display()));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The leader's pid is the group's id; the group outlives the leader
    // while any member lives, so the id is not reused meanwhile.
    kill_group(child.id());
    let status = match status {
        Some(status) => status,
        None => {
            // SIGKILL was sent: the leader is gone in a moment.
            let t = Instant::now();
            while child.try_wait()?.is_none() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
            bail!(
                "{what} did not finish within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&read_head(&err_path))
            );
        }
    };
    Ok(std::process::Output {
        status,
        stdout: read_head(&out_path),
        stderr: read_head(&err_path),
    })
}

/// Sends SIGKILL to every process of the group `pgid` (none left is fine).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The first 4 MiB of a file (empty if it cannot be read).
fn read_head(path: &Path) -> Vec<u8> {
    let mut data = Vec::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(4 << 20).read_to_end(&mut data);
    }
    data
}

/// Width and height of a PNG, from its header; an error if it is not a PNG.
pub fn png_size(data: &[u8]) -> Result<(u32, u32)> {
    const MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
    if data.len() < 24 || !data.starts_with(MAGIC) || data.get(12..16) != Some(b"IHDR") {
        bail!("not a PNG image ({} bytes)", data.len());
    }
    let be = |r: std::ops::Range<usize>| -> Result<u32> {
        let b: [u8; 4] = data
            .get(r)
            .and_then(|s| s.try_into().ok())
            .context("short PNG header")?;
        Ok(u32::from_be_bytes(b))
    };
    Ok((be(16..20)?, be(20..24)?))
}

/// Renders `url` in headless chromium at `width`×`height` into the PNG
/// file `png`. Blocking (call it from `spawn_blocking` in async tests
/// whose runtime serves `url`).
pub fn screenshot(url: &str, png: &Path, width: u32, height: u32) -> Result<()> {
    let Some(chromium) = find_program(&["/usr/bin/chromium", "chromium", "chromium-browser"])
    else {
        bail!("chromium not found: install the Debian package `chromium` (apt-get install -y chromium)");
    };
    let profile = tempfile::tempdir().context("profile directory")?;
    if let Some(dir) = png.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(png);
    let mut cmd = Command::new(&chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--no-proxy-server",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--window-size={width},{height}"))
    .arg(format!("--screenshot={}", png.display()))
    .arg(url)
    .env("HOME", profile.path());
    let out = run_bounded(cmd, Duration::from_secs(90))?;
    if !png.is_file() {
        bail!(
            "chromium wrote no screenshot (exit {:?}); stderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The text `tesseract` reads in the image `png`.
pub fn ocr(png: &Path) -> Result<String> {
    let Some(tesseract) = find_program(&["/usr/bin/tesseract", "tesseract"]) else {
        bail!("tesseract not found: install the Debian package `tesseract-ocr` (apt-get install -y tesseract-ocr)");
    };
    let mut cmd = Command::new(tesseract);
    cmd.arg(png).arg("-").env("OMP_THREAD_LIMIT", "1");
    let out = run_bounded(cmd, Duration::from_secs(120))?;
    if !out.status.success() {
        bail!(
            "tesseract failed on {} (exit {:?}): {}",
            png.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatty_output_does_not_block() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "head -c 300000 /dev/zero; echo done >&2"]);
        let out = run_bounded(cmd, Duration::from_secs(20)).unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout.len(), 300_000);
        assert_eq!(out.stderr, b"done\n");
    }

    #[test]
    fn a_hung_program_and_its_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut cmd = Command::new("sh");
        // A child that keeps our output open, then a parent that hangs.
        cmd.arg("-c")
            .arg("sleep 60 & echo $! > \"$0\"; sleep 60")
            .arg(&pid_file);
        let t = Instant::now();
        let e = run_bounded(cmd, Duration::from_secs(1)).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(e.to_string().contains("did not finish"), "{e}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let t = Instant::now();
        // Gone, or a zombie waiting for init to reap it.
        while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
            assert!(t.elapsed() < Duration::from_secs(5), "the child lives on");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn png_header() {
        let mut d = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        d.extend_from_slice(&1280u32.to_be_bytes());
        d.extend_from_slice(&1600u32.to_be_bytes());
        assert_eq!(png_size(&d).unwrap(), (1280, 1600));
        assert!(png_size(b"GIF89a").is_err());
    }
}
