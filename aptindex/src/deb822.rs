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
    pub fn lines(&self) -> impl Iterator<Item = &'a str> + 'a {
        let raw = self.raw;
        raw.split('\n').enumerate().map(|(i, l)| {
            let l = l.strip_suffix('\r').unwrap_or(l);
            if i == 0 {
                l.trim_end()
            } else {
                let l = l.strip_prefix([' ', '\t']).unwrap_or(l).trim_end();
                if l == "." {
                    ""
                } else {
                    l
                }
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
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The raw value of field `name` (see [`Field::raw`]).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.field(name).map(|f| f.raw)
    }
}

/// Iterates over the paragraphs of a buffer. Invalid UTF-8 is an error.
pub fn paragraphs(data: &[u8]) -> Paragraphs<'_> {
    todo!()
}

/// Iterator returned by [`paragraphs`].
#[derive(Debug)]
pub struct Paragraphs<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, Deb822Error>;
    fn next(&mut self) -> Option<Self::Item> {
        todo!()
    }
}

/// An owned paragraph, as produced by [`ParagraphReader`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedParagraph {
    /// The paragraph's text (its lines, comment lines removed).
    text: String,
    /// 1-based line number of the paragraph's first line in the stream.
    pub line: usize,
}

impl OwnedParagraph {
    /// Borrows this paragraph as a parsed [`Paragraph`].
    pub fn parse(&self) -> Result<Paragraph<'_>, Deb822Error> {
        todo!()
    }
}

/// Streams paragraphs from a reader, holding one paragraph at a time.
/// A single paragraph larger than the cap given to [`ParagraphReader::with_limit`]
/// (default 64 MiB) is an error.
#[derive(Debug)]
pub struct ParagraphReader<R> {
    inner: R,
    line: usize,
    limit: usize,
}

impl<R: BufRead> ParagraphReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, 64 << 20)
    }

    /// Wraps a reader, with a cap on one paragraph's size in bytes.
    pub fn with_limit(inner: R, limit: usize) -> Self {
        ParagraphReader { inner, line: 0, limit }
    }

    /// The next paragraph, or `None` at the end.
    pub fn next_paragraph(&mut self) -> Result<Option<OwnedParagraph>, Deb822Error> {
        todo!()
    }
}
