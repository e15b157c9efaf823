//! Benchmark driver used by `bench/aptindex.sh`:
//!
//! - `aptindex-bench gen <file> [paragraphs]` writes a Debian-shaped
//!   `Packages` file (63,000 paragraphs by default);
//! - `aptindex-bench parse <file>` streams it and extracts its file entries,
//!   handing each to a consumer; `parse-collect` keeps them all in a Vec;
//!   `parse-buffer <file> [runs]` reads it whole first, then parses it
//!   `runs` times and reports the best (`APTINDEX_BENCH_GENERIC=1`: time the
//!   generic deb822 parser instead);
//! - `aptindex-bench verify <file> <sha256>` hashes it (SHA-256 only) while
//!   streaming and verifies the digest.
//!
//! Each command does its job once, so that the script can time it exactly
//! like `sha256sum`, and prints its own internal timing to stderr.

#[path = "../benches/support/packages_gen.rs"]
#[allow(dead_code)]
mod packages_gen;

use aptindex::checksum::{Checksums, HashKind, Hasher};
use aptindex::index::IndexKind;
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("aptindex-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .ok_or_else(|| "usage: aptindex-bench gen|parse|verify <file> [...]".to_string())
    };
    match arg(0)?.as_str() {
        "gen" => {
            let count = match args.get(2) {
                Some(n) => n
                    .parse()
                    .map_err(|e| format!("paragraph count {n:?}: {e}"))?,
                None => 63_000,
            };
            let text = packages_gen::packages(count);
            std::fs::write(arg(1)?, &text).map_err(|e| format!("{}: {e}", args[1]))?;
            eprintln!("wrote {} paragraphs, {} bytes", count, text.len());
        }
        "parse" | "parse-collect" => {
            // Streams the file through a 1 MiB buffer, as a mirror would; each
            // entry is built in full (path, size, digests). `parse` hands each
            // to a consumer that tallies it and lets it go; `parse-collect`
            // keeps them all in a Vec.
            let collect = args[0] == "parse-collect";
            let path = arg(1)?;
            let start = Instant::now();
            let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            let bytes = file.metadata().map_err(|e| format!("{path}: {e}"))?.len();
            let reader = std::io::BufReader::with_capacity(1 << 20, file);
            // Reserve as `packages_entries` does (about one entry per 640 bytes).
            let mut entries = Vec::with_capacity(if collect { bytes as usize / 640 } else { 0 });
            let (mut count, mut total) = (0usize, 0u64);
            aptindex::index::for_each_entry(IndexKind::Packages, "", reader, |e| {
                count += 1;
                total += e.checksums.size;
                if collect {
                    entries.push(e);
                }
            })
            .map_err(|e| format!("{path}: {e}"))?;
            let t = start.elapsed().as_secs_f64();
            eprintln!(
                "{}: {count} entries ({total} bytes of packages) from {bytes} bytes in {:.1} ms ({:.0} MB/s)",
                args[0],
                t * 1e3,
                bytes as f64 / t / 1e6
            );
            println!("{count}");
        }
        "parse-buffer" => {
            // Reads the whole file, then parses the buffer [runs] times (best time reported).
            let start = Instant::now();
            let data = std::fs::read(arg(1)?).map_err(|e| format!("{}: {e}", args[1]))?;
            let read = start.elapsed();
            let runs: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
            let mut parse = std::time::Duration::MAX;
            let mut entries = Vec::new();
            // APTINDEX_BENCH_GENERIC=1: time the generic deb822 parser instead (for comparison).
            let generic = std::env::var_os("APTINDEX_BENCH_GENERIC").is_some();
            for _ in 0..runs {
                let t = Instant::now();
                entries = if generic {
                    vec![
                        ();
                        aptindex::deb822::paragraphs(&data)
                            .filter(|p| p.is_ok())
                            .count()
                    ]
                } else {
                    let e = aptindex::index::packages_entries(&data)
                        .map_err(|e| format!("{}: {e}", args[1]))?;
                    vec![(); e.len()]
                };
                parse = parse.min(t.elapsed());
            }
            eprintln!(
                "parse-buffer: {} entries from {} bytes; read {:.1} ms, parse {:.1} ms ({:.0} MB/s)",
                entries.len(),
                data.len(),
                read.as_secs_f64() * 1e3,
                parse.as_secs_f64() * 1e3,
                data.len() as f64 / parse.as_secs_f64() / 1e6
            );
            println!("{}", entries.len());
        }
        "verify" => {
            let path = arg(1)?;
            let mut expected = Checksums::default();
            expected
                .set_hex(HashKind::Sha256, &arg(2)?)
                .map_err(|e| e.to_string())?;
            let start = Instant::now();
            let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            expected.size = file.metadata().map_err(|e| format!("{path}: {e}"))?.len();
            let mut hasher = Hasher::for_expected(&expected);
            hasher
                .update_reader(file)
                .map_err(|e| format!("{path}: {e}"))?;
            let actual = hasher.finish();
            expected.verify(&path, &actual).map_err(|e| e.to_string())?;
            let t = start.elapsed().as_secs_f64();
            eprintln!(
                "verify: {} bytes OK in {:.1} ms ({:.0} MB/s)",
                actual.size,
                t * 1e3,
                actual.size as f64 / t / 1e6
            );
            println!("OK");
        }
        other => return Err(format!("unknown command {other:?}")),
    }
    Ok(())
}
