//! Criterion benchmarks: extracting file entries from a Debian-shaped
//! 63,000-paragraph `Packages` file, the generic deb822 parser on the same
//! bytes, and SHA-256 over them for comparison.
//! Run with `cargo bench -p aptindex --bench parse`.

#[path = "support/packages_gen.rs"]
#[allow(dead_code)]
mod packages_gen;

use aptindex::checksum::{HashKind, Hasher};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let text = packages_gen::packages(63_000);
    let data = text.as_bytes();
    let mut g = c.benchmark_group("packages-63000");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("packages_entries", |b| {
        b.iter(|| {
            aptindex::index::packages_entries(data)
                .map(|e| e.len())
                .unwrap_or(0)
        })
    });
    g.bench_function("deb822_paragraphs", |b| {
        b.iter(|| aptindex::deb822::paragraphs(data).count())
    });
    g.bench_function("sha256", |b| {
        b.iter(|| {
            let mut h = Hasher::new(&[HashKind::Sha256]);
            h.update(data);
            h.finish()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
