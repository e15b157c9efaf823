//! The `Packages` scanner: one pass over a buffer of paragraphs that picks
//! out only the fields naming a file (`Filename`, `Size`, the hashes)
//! without building a paragraph, so that the millions of lines of a big
//! index cost no allocation per field. [`super::packages_entries`] runs it
//! over a whole file, the streaming readers over a growing buffer.

use super::*;

/// The `Packages` fields that name a file, by slot index.
const PKG_FILENAME: usize = 0;
const PKG_SIZE: usize = 1;
const PKG_FIELD_NAMES: [&str; 6] = ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"];
const PKG_HASHES: [HashKind; 4] = [
    HashKind::Md5,
    HashKind::Sha1,
    HashKind::Sha256,
    HashKind::Sha512,
];

/// The slot of a `Packages` field name we need, if it is one.
#[inline]
fn pkg_field_slot(name: &[u8]) -> Option<usize> {
    let candidates: &[usize] = match name.len() {
        4 => &[PKG_SIZE, 3],
        6 => &[2, 4, 5],
        8 => &[PKG_FILENAME],
        _ => return None,
    };
    candidates
        .iter()
        .copied()
        .find(|&i| name.eq_ignore_ascii_case(PKG_FIELD_NAMES[i].as_bytes()))
}

/// Value spans (start, end, line) of the needed fields of one paragraph.
#[derive(Default)]
struct PkgParagraph {
    /// Bit `i` set when slot `i` of `spans` holds a value.
    found: u8,
    spans: [(usize, usize, usize); 6],
    line: usize,
}

impl PkgParagraph {
    #[inline]
    fn slot(&self, i: usize) -> Option<(usize, usize, usize)> {
        (self.found & (1 << i) != 0).then(|| self.spans[i])
    }

    #[inline(always)]
    fn entry(&self, data: &[u8]) -> Result<FileEntry, IndexError> {
        let invalid = |line: usize, reason: String| IndexError::Invalid {
            line,
            kind: InvalidKind::Value,
            reason,
        };
        let Some((fs, fe, fline)) = self.slot(PKG_FILENAME) else {
            return Err(invalid(self.line, "paragraph has no Filename".to_string()));
        };
        let path = std::str::from_utf8(&data[fs..fe])
            .map_err(|_| invalid(fline, "Filename is not valid UTF-8".to_string()))?;
        if !is_safe_relative(path) {
            return Err(IndexError::Invalid {
                line: fline,
                kind: InvalidKind::UnsafePath,
                reason: format!("unsafe Filename {path:?}"),
            });
        }
        let Some((ss, se, sline)) = self.slot(PKG_SIZE) else {
            return Err(invalid(self.line, format!("{path}: paragraph has no Size")));
        };
        let size = parse_size(&data[ss..se]).ok_or_else(|| {
            invalid(
                sline,
                format!(
                    "{path}: bad Size {:?}",
                    String::from_utf8_lossy(&data[ss..se])
                ),
            )
        })?;
        let mut checksums = Checksums {
            size,
            ..Checksums::default()
        };
        for (i, kind) in PKG_HASHES.into_iter().enumerate() {
            if let Some((hs, he, hline)) = self.slot(2 + i) {
                checksums.set_hex_bytes(kind, &data[hs..he]).map_err(|e| {
                    invalid(hline, format!("{path}: {}: {e}", PKG_FIELD_NAMES[2 + i]))
                })?;
            }
        }
        Ok(FileEntry {
            path: path.to_string(),
            checksums,
        })
    }
}

/// A decimal size (digits only, no sign).
fn parse_size(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The single-pass `Packages` scanner. Walks `data` line by line following
/// the deb822 rules of [`crate::deb822`] (blank or white-space-only lines
/// separate paragraphs, `#` lines are comments, continuation lines start
/// with a space or tab, CRLF is tolerated), but only looks at the values of
/// the fields it needs. Calls `f` for each complete paragraph, with its
/// entry or why it has none ([`IndexError::Invalid`]); an error `f`
/// returns stops the scan.
///
/// Unless `eof`, a paragraph is complete only once its separating blank line
/// has been seen; the scan stops before the first incomplete one. Returns
/// (bytes consumed, line count reached), `line_base` being the number of
/// lines before `data`.
pub(super) fn scan_packages<
    F: FnMut(Result<Scanned, IndexError>) -> Result<(), IndexError> + ?Sized,
>(
    data: &[u8],
    eof: bool,
    line_base: usize,
    f: &mut F,
) -> Result<(usize, usize), IndexError> {
    let syntax = |line: usize, reason: &str| {
        IndexError::Deb822(crate::deb822::Deb822Error::Syntax {
            line,
            reason: reason.to_string(),
        })
    };
    let mut pos = 0;
    let mut line = line_base;
    let mut done = (0, line_base);
    let mut par = PkgParagraph::default();
    let mut in_par = false;
    // Slot of the field whose lines are being read, if it is one we need.
    let mut current: Option<usize> = None;
    // Line ends, found with SIMD a block at a time; lines are consumed in order.
    let mut newlines = memchr::memchr_iter(b'\n', data);
    loop {
        let (end, next, at_end) = match newlines.next() {
            Some(nl) => (nl, nl + 1, false),
            None if eof => (data.len(), data.len(), true),
            None => break,
        };
        if pos == end && at_end {
            // No more lines.
            if in_par {
                f(par.entry(data).map(|entry| Scanned {
                    line: par.line,
                    entry,
                }))?;
            }
            done = (data.len(), line);
            break;
        }
        line += 1;
        let start = pos;
        pos = next;
        let mut content_end = end;
        if content_end > start && data[content_end - 1] == b'\r' {
            content_end -= 1;
        }
        let l = &data[start..content_end];
        let separator = match l.first() {
            None => true,
            Some(b' ' | b'\t') => {
                if is_blank(l) {
                    true
                } else if !in_par {
                    return Err(syntax(line, "continuation line outside a field"));
                } else if let Some(slot) = current {
                    return Err(syntax(
                        line,
                        &format!("field {} must be a single line", PKG_FIELD_NAMES[slot]),
                    ));
                } else {
                    false
                }
            }
            Some(b'#') => false,
            Some(_) => {
                let (name_end, value_start) =
                    match l.iter().position(|&b| matches!(b, b':' | b' ' | b'\t')) {
                        // The common case, inline: `Name:` then the value.
                        Some(i) if i > 0 && l[i] == b':' => {
                            let mut v = i + 1;
                            while matches!(l.get(v), Some(b' ' | b'\t')) {
                                v += 1;
                            }
                            (i, v)
                        }
                        _ => split_field_line(l).map_err(|r| syntax(line, r))?,
                    };
                if !in_par {
                    in_par = true;
                    par.line = line;
                }
                current = pkg_field_slot(&l[..name_end]);
                if let Some(slot) = current {
                    if par.found & (1 << slot) == 0 {
                        par.found |= 1 << slot;
                        let mut ve = content_end;
                        while ve > start + value_start && matches!(data[ve - 1], b' ' | b'\t') {
                            ve -= 1;
                        }
                        par.spans[slot] = (start + value_start, ve, line);
                    }
                }
                false
            }
        };
        if separator {
            if in_par {
                f(par.entry(data).map(|entry| Scanned {
                    line: par.line,
                    entry,
                }))?;
                par.found = 0;
                in_par = false;
                current = None;
            }
            done = (pos, line);
        }
        if at_end {
            if in_par {
                f(par.entry(data).map(|entry| Scanned {
                    line: par.line,
                    entry,
                }))?;
            }
            done = (data.len(), line);
            break;
        }
    }
    Ok(done)
}
