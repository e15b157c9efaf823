//! Generates a `Packages` file shaped like Debian's `main/binary-amd64`
//! (bookworm: about 63,000 paragraphs, about 50 MB once the long
//! descriptions are included), deterministically. Shared by the criterion
//! bench and the `aptindex-bench` example.

use std::fmt::Write as _;

/// A small deterministic PRNG (xorshift64*), so runs are comparable.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
    fn hex(&mut self, out: &mut String, bytes: usize) {
        for _ in 0..bytes {
            write!(out, "{:02x}", self.next() as u8).unwrap();
        }
    }
}

const SYLLABLES: [&str; 16] = [
    "lib", "gtk", "py", "ruby", "perl", "x", "font", "gnome", "kde", "node", "golang", "qt",
    "data", "dev", "tools", "core",
];
const WORDS: [&str; 24] = [
    "the",
    "library",
    "provides",
    "support",
    "for",
    "files",
    "and",
    "a",
    "package",
    "contains",
    "shared",
    "development",
    "headers",
    "documentation",
    "this",
    "is",
    "used",
    "by",
    "applications",
    "with",
    "network",
    "graphical",
    "interface",
    "module",
];
const SECTIONS: [&str; 8] = [
    "libs", "devel", "utils", "python", "net", "doc", "x11", "admin",
];

/// One paragraph, appended to `out`.
pub fn paragraph(rng: &mut Rng, i: usize, out: &mut String) {
    let name = format!(
        "{}{}-{}{}",
        rng.pick(&SYLLABLES),
        rng.pick(&SYLLABLES),
        i,
        rng.pick(&["", "-dev", "-doc", "1"])
    );
    let source = name
        .trim_end_matches("-dev")
        .trim_end_matches("-doc")
        .to_string();
    let version = format!(
        "{}.{}.{}-{}",
        rng.range(0, 20),
        rng.range(0, 30),
        rng.range(0, 100),
        rng.range(1, 5)
    );
    let section = rng.pick(&SECTIONS);
    writeln!(out, "Package: {name}").unwrap();
    writeln!(out, "Source: {source}").unwrap();
    writeln!(out, "Version: {version}").unwrap();
    writeln!(out, "Installed-Size: {}", rng.range(10, 50_000)).unwrap();
    writeln!(
        out,
        "Maintainer: Debian {} Maintainers <pkg-{}@lists.example.org>",
        rng.pick(&SYLLABLES),
        rng.pick(&SYLLABLES)
    )
    .unwrap();
    out.push_str("Architecture: amd64\n");
    if rng.range(0, 4) == 0 {
        writeln!(out, "Multi-Arch: same").unwrap();
    }
    out.push_str("Depends: ");
    for d in 0..rng.range(2, 9) {
        if d > 0 {
            out.push_str(", ");
        }
        write!(
            out,
            "{}{} (>= {}.{})",
            rng.pick(&SYLLABLES),
            rng.pick(&SYLLABLES),
            rng.range(0, 9),
            rng.range(0, 20)
        )
        .unwrap();
    }
    out.push('\n');
    write!(
        out,
        "Description: {} {} {}",
        rng.pick(&WORDS),
        rng.pick(&WORDS),
        rng.pick(&WORDS)
    )
    .unwrap();
    for l in 0..rng.range(0, 4) {
        if l == 2 {
            out.push_str("\n .");
        }
        out.push_str("\n ");
        for w in 0..10 {
            if w > 0 {
                out.push(' ');
            }
            out.push_str(rng.pick(&WORDS));
        }
    }
    out.push('\n');
    writeln!(out, "Homepage: https://{}.example.org/", source).unwrap();
    out.push_str("Description-md5: ");
    rng.hex(out, 16);
    out.push('\n');
    writeln!(
        out,
        "Tag: devel::library, implemented-in::c, role::{},\n suite::{}",
        rng.pick(&WORDS),
        rng.pick(&SYLLABLES)
    )
    .unwrap();
    writeln!(out, "Section: {section}").unwrap();
    out.push_str("Priority: optional\n");
    let first = source.chars().next().unwrap_or('x');
    writeln!(
        out,
        "Filename: pool/main/{first}/{source}/{name}_{version}_amd64.deb"
    )
    .unwrap();
    writeln!(out, "Size: {}", rng.range(1000, 5_000_000)).unwrap();
    out.push_str("MD5sum: ");
    rng.hex(out, 16);
    out.push_str("\nSHA256: ");
    rng.hex(out, 32);
    out.push_str("\n\n");
}

/// A whole `Packages` file of `count` paragraphs.
pub fn packages(count: usize) -> String {
    let mut rng = Rng::new(0x5eed);
    let mut out = String::with_capacity(count * 820);
    for i in 0..count {
        paragraph(&mut rng, i, &mut out);
    }
    out
}
