//! deb822 control files: paragraphs of `Field: value` lines, with
//! continuation lines, separated by blank lines. [`paragraphs`] parses a byte
//! buffer without copying; [`ParagraphReader`] streams paragraphs out of any
//! [`std::io::BufRead`] without holding the whole file. Field names are
//! matched case-insensitively; CRLF line ends are tolerated; `#` comment lines
//! are skipped; errors carry the line number.

use std::io::BufRead;

/// A parse error, with the 1-based line it was found on.
#[derive(Debug, thiserror::Error)]
pub enum Deb822Error {
    /// A line that is neither a field, a continuation, a comment nor blank.
    #[error("line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Reading failed.
    #[error("line {line}: read error: {source}")]
    Io {
        /// 1-based line number reached.
        line: usize,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// One field of a paragraph, borrowing from the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field name as written.
    pub name: &'a str,
    /// Raw value: the text after the colon (leading white space trimmed)
    /// including any continuation lines with their leading white space and
    /// line ends, trailing white space of the whole value trimmed.
    pub raw: &'a str,
    /// 1-based line number of the field's first line.
    pub line: usize,
}

impl<'a> Field<'a> {
    /// The value as lines: first line, then each continuation line with its
    /// leading single space/tab removed and a lone `.` turned into an empty line.
    /// Comment lines (starting with `#`) between continuation lines are skipped.
    pub fn lines(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.numbered_lines().map(|(_, l)| l)
    }

    /// Like [`Field::lines`], each line paired with its 1-based line number.
    pub fn numbered_lines(&self) -> impl Iterator<Item = (usize, &'a str)> + 'a {
        let raw = self.raw;
        let first = self.line;
        raw.split('\n').enumerate().filter_map(move |(i, l)| {
            let l = l.strip_suffix('\r').unwrap_or(l);
            if i == 0 {
                Some((first, l.trim_end()))
            } else if l.starts_with('#') {
                None
            } else {
                let l = l.strip_prefix([' ', '\t']).unwrap_or(l).trim_end();
                Some((first + i, if l == "." { "" } else { l }))
            }
        })
    }
}

/// A paragraph: fields in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph<'a> {
    /// The fields, in order.
    pub fields: Vec<Field<'a>>,
    /// 1-based line number of the first field.
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The field named `name` (ASCII case-insensitive), if present.
    pub fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The raw value of field `name` (see [`Field::raw`]).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.field(name).map(|f| f.raw)
    }
}

/// Iterates over the paragraphs of a buffer. Invalid UTF-8 is an error.
///
/// After the first error the iterator ends.
pub fn paragraphs(data: &[u8]) -> Paragraphs<'_> {
    Paragraphs {
        data,
        pos: 0,
        line: 0,
    }
}

/// Iterator returned by [`paragraphs`].
#[derive(Debug)]
pub struct Paragraphs<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
}

/// The line starting at `pos`: (end of its content without `\r\n`, start of the next line).
#[inline]
pub(crate) fn line_at(data: &[u8], pos: usize) -> (usize, usize) {
    let rest = data.get(pos..).unwrap_or_default();
    let (mut end, next) = match memchr::memchr(b'\n', rest) {
        Some(i) => (pos + i, pos + i + 1),
        None => (data.len(), data.len()),
    };
    if end > pos && data.get(end - 1) == Some(&b'\r') {
        end -= 1;
    }
    (end, next)
}

/// True for a line of only spaces and tabs (or nothing): a paragraph separator.
#[inline]
pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| b == b' ' || b == b'\t')
}

/// Splits a field line into (end of name, start of value) offsets.
#[inline]
pub(crate) fn split_field_line(line: &[u8]) -> Result<(usize, usize), &'static str> {
    // Names are short: a plain loop beats a vectorised search here.
    let mut white = false;
    let mut colon = 0;
    loop {
        match line.get(colon) {
            None => return Err("expected `Field: value`"),
            Some(b':') => break,
            Some(b' ' | b'\t') => white = true,
            Some(_) => {}
        }
        colon += 1;
    }
    if colon == 0 {
        return Err("empty field name");
    }
    if white {
        return Err("white space in field name");
    }
    let mut v = colon + 1;
    while matches!(line.get(v), Some(b' ' | b'\t')) {
        v += 1;
    }
    Ok((colon, v))
}

/// Counts the line breaks in `data`.
fn count_lines(data: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', data).count()
}

impl<'a> Paragraphs<'a> {
    fn fail(&mut self, line: usize, reason: &str) -> Deb822Error {
        self.pos = self.data.len();
        Deb822Error::Syntax {
            line,
            reason: reason.to_string(),
        }
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, Deb822Error>;
    fn next(&mut self) -> Option<Self::Item> {
        let data = self.data;
        // (name start, name end, value start, value end, line)
        let mut spans: Vec<(usize, usize, usize, usize, usize)> = Vec::new();
        let mut par: Option<(usize, usize)> = None; // (start offset, first line)
        let mut par_end = 0;
        while self.pos < data.len() {
            let start = self.pos;
            let (end, next) = line_at(data, start);
            self.pos = next;
            self.line += 1;
            let line = &data[start..end];
            if is_blank(line) {
                if spans.is_empty() {
                    continue;
                }
                break;
            }
            match line[0] {
                b'#' => continue,
                b' ' | b'\t' => match spans.last_mut() {
                    Some(f) => f.3 = end,
                    None => {
                        return Some(Err(
                            self.fail(self.line, "continuation line outside a field")
                        ))
                    }
                },
                _ => match split_field_line(line) {
                    Ok((name_end, value_start)) => {
                        spans.push((start, start + name_end, start + value_start, end, self.line))
                    }
                    Err(reason) => return Some(Err(self.fail(self.line, reason))),
                },
            }
            if par.is_none() {
                par = Some((start, self.line));
            }
            par_end = end;
        }
        let (par_start, first_line) = par?;
        let bytes = &data[par_start..par_end];
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = first_line + count_lines(&bytes[..e.valid_up_to()]);
                return Some(Err(self.fail(line, "invalid UTF-8")));
            }
        };
        let mut fields = Vec::with_capacity(spans.len());
        for (ns, ne, vs, mut ve, line) in spans {
            while ve > vs && matches!(data[ve - 1], b' ' | b'\t' | b'\r' | b'\n') {
                ve -= 1;
            }
            // All offsets sit next to ASCII bytes, so they are char boundaries.
            let (Some(name), Some(raw)) = (
                text.get(ns - par_start..ne - par_start),
                text.get(vs - par_start..ve - par_start),
            ) else {
                return Some(Err(self.fail(line, "internal error: field boundary")));
            };
            fields.push(Field { name, raw, line });
        }
        Some(Ok(Paragraph {
            fields,
            line: first_line,
        }))
    }
}

/// An owned paragraph, as produced by [`ParagraphReader`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedParagraph {
    /// The paragraph's text: its lines from the first field line to the
    /// last line before the separating blank line (comment lines before the
    /// first field are dropped; later ones are kept and skipped when parsed).
    text: String,
    /// 1-based line number of the paragraph's first line in the stream.
    pub line: usize,
}

impl OwnedParagraph {
    /// Borrows this paragraph as a parsed [`Paragraph`]; line numbers are
    /// those of the stream it was read from.
    pub fn parse(&self) -> Result<Paragraph<'_>, Deb822Error> {
        let mut it = Paragraphs {
            data: self.text.as_bytes(),
            pos: 0,
            line: self.line.saturating_sub(1),
        };
        it.next().unwrap_or_else(|| {
            Ok(Paragraph {
                fields: Vec::new(),
                line: self.line,
            })
        })
    }

    /// The paragraph's text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Streams paragraphs from a reader, holding one paragraph at a time.
/// A single paragraph larger than the cap given to [`ParagraphReader::with_limit`]
/// (default 64 MiB) is an error. After an error the reader yields no more paragraphs.
#[derive(Debug)]
pub struct ParagraphReader<R> {
    inner: R,
    line: usize,
    limit: usize,
    failed: bool,
}

impl<R: BufRead> ParagraphReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, 64 << 20)
    }

    /// Wraps a reader, with a cap on one paragraph's size in bytes.
    pub fn with_limit(inner: R, limit: usize) -> Self {
        ParagraphReader {
            inner,
            line: 0,
            limit,
            failed: false,
        }
    }

    /// The next paragraph, or `None` at the end (and after an error).
    pub fn next_paragraph(&mut self) -> Result<Option<OwnedParagraph>, Deb822Error> {
        if self.failed {
            return Ok(None);
        }
        let r = self.read_paragraph();
        self.failed = r.is_err();
        r
    }

    /// Number of lines read so far.
    pub fn line(&self) -> usize {
        self.line
    }

    fn read_paragraph(&mut self) -> Result<Option<OwnedParagraph>, Deb822Error> {
        use std::io::Read;
        let mut buf: Vec<u8> = Vec::new();
        let mut first_line = 0;
        loop {
            let before = buf.len();
            let room = (self.limit.saturating_sub(before) as u64).saturating_add(1);
            let n = (&mut self.inner)
                .take(room)
                .read_until(b'\n', &mut buf)
                .map_err(|source| Deb822Error::Io {
                    line: self.line + 1,
                    source,
                })?;
            if n == 0 {
                break;
            }
            self.line += 1;
            if buf.len() > self.limit {
                return Err(Deb822Error::Syntax {
                    line: self.line,
                    reason: format!("paragraph larger than {} bytes", self.limit),
                });
            }
            let (end, _) = line_at(&buf, before);
            let line = &buf[before..end];
            if is_blank(line) {
                buf.truncate(before);
                if first_line == 0 {
                    continue;
                }
                break;
            }
            if first_line == 0 {
                if line[0] == b'#' {
                    buf.truncate(before);
                    continue;
                }
                first_line = self.line;
            }
        }
        if first_line == 0 {
            return Ok(None);
        }
        match String::from_utf8(buf) {
            Ok(text) => Ok(Some(OwnedParagraph {
                text,
                line: first_line,
            })),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let line = first_line + count_lines(&e.as_bytes()[..valid]);
                Err(Deb822Error::Syntax {
                    line,
                    reason: "invalid UTF-8".to_string(),
                })
            }
        }
    }
}

impl<R: BufRead> Iterator for ParagraphReader<R> {
    type Item = Result<OwnedParagraph, Deb822Error>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_paragraph().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"# leading comment\nPackage: foo\nDescription: short\n long line\n .\n\tafter tab\nsize:  12  \n\n  \t \nPackage: bar\r\nVersion: 1\r\n\r\n# trailing comment\n";

    #[test]
    fn parses_fields_continuations_and_separators() {
        let pars: Vec<_> = paragraphs(SAMPLE).collect::<Result<_, _>>().unwrap();
        assert_eq!(pars.len(), 2);
        let p = &pars[0];
        assert_eq!(p.line, 2);
        assert_eq!(p.get("package"), Some("foo"));
        assert_eq!(p.get("SIZE"), Some("12"));
        let d = p.field("Description").unwrap();
        assert_eq!(d.line, 3);
        assert_eq!(
            d.lines().collect::<Vec<_>>(),
            ["short", "long line", "", "after tab"]
        );
        let nums: Vec<_> = d.numbered_lines().map(|(n, _)| n).collect();
        assert_eq!(nums, [3, 4, 5, 6]);
        assert_eq!(pars[1].get("Version"), Some("1"));
        assert_eq!(pars[1].line, 10);
    }

    #[test]
    fn empty_first_line_and_comment_inside_value() {
        let data = b"SHA256:\n a 1 x\n# note\n b 2 y\n";
        let p = paragraphs(data).next().unwrap().unwrap();
        let f = p.field("sha256").unwrap();
        assert_eq!(
            f.numbered_lines().collect::<Vec<_>>(),
            [(1, ""), (2, "a 1 x"), (4, "b 2 y")]
        );
    }

    #[test]
    fn errors_carry_line_numbers() {
        let cases: [(&[u8], usize); 5] = [
            (b" continuation first\n", 1),
            (b"A: b\nno colon here\n", 2),
            (b"A: b\n\n# c\n cont\n", 4),
            (b"A: b\nB: \xff\n", 2),
            (b"Bad name: x\n", 1),
        ];
        for (data, line) in cases {
            let err = paragraphs(data)
                .find_map(Result::err)
                .expect("error expected");
            match err {
                Deb822Error::Syntax { line: l, .. } => {
                    assert_eq!(l, line, "{:?}", String::from_utf8_lossy(data))
                }
                e => panic!("unexpected {e}"),
            }
            let mut r = ParagraphReader::new(data);
            let err = std::iter::from_fn(|| match r.next_paragraph() {
                Ok(Some(p)) => Some(p.parse().err()),
                Ok(None) => None,
                Err(e) => Some(Some(e)),
            })
            .flatten()
            .next()
            .expect("reader error expected");
            match err {
                Deb822Error::Syntax { line: l, .. } => assert_eq!(l, line),
                e => panic!("unexpected {e}"),
            }
        }
    }

    #[test]
    fn reader_matches_buffer_parser() {
        let mut r = ParagraphReader::new(SAMPLE);
        let mut owned = Vec::new();
        while let Some(p) = r.next_paragraph().unwrap() {
            owned.push(p);
        }
        let from_reader: Vec<_> = owned.iter().map(|p| p.parse().unwrap()).collect();
        let from_buffer: Vec<_> = paragraphs(SAMPLE).collect::<Result<_, _>>().unwrap();
        assert_eq!(from_reader, from_buffer);
    }

    #[test]
    fn reader_enforces_paragraph_limit() {
        let data = format!("A: {}\n", "x".repeat(1000));
        let mut r = ParagraphReader::with_limit(data.as_bytes(), 100);
        assert!(matches!(
            r.next_paragraph(),
            Err(Deb822Error::Syntax { line: 1, .. })
        ));
        assert!(r.next_paragraph().unwrap().is_none());
    }

    #[test]
    fn no_final_newline_and_empty_input() {
        assert_eq!(paragraphs(b"").count(), 0);
        assert_eq!(paragraphs(b"\n \n#x\n").count(), 0);
        let p = paragraphs(b"A: b").next().unwrap().unwrap();
        assert_eq!(p.get("a"), Some("b"));
    }
}
