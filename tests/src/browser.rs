//! A real headless browser and OCR, to check that a page renders with its
//! key figures visible: [`screenshot`] runs Debian's `chromium` headless
//! (no sandbox, no background networking, a fresh profile) to a PNG, and
//! [`ocr`] reads the text back with `tesseract`. Missing programs are
//! errors that name the Debian package to install.

use anyhow::{bail, Context, Result};
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

/// Runs `cmd` to completion within `limit`, killing it after; its output.
fn run_bounded(mut cmd: Command, limit: Duration) -> Result<std::process::Output> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let started = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            return child
                .wait_with_output()
                .with_context(|| format!("reading the output of {what}"));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "{what} did not finish within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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
    fn png_header() {
        let mut d = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        d.extend_from_slice(&1280u32.to_be_bytes());
        d.extend_from_slice(&1600u32.to_be_bytes());
        assert_eq!(png_size(&d).unwrap(), (1280, 1600));
        assert!(png_size(b"GIF89a").is_err());
    }
}
