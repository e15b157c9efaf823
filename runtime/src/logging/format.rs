//! The three line formats: plain (tracing-subscriber's layout with control
//! characters escaped), logfmt and JSON Lines, and their UTC timestamps. No
//! value (a request path, an upstream's error text) can start a line.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Timestamps in UTC, RFC 3339 with milliseconds: `2026-11-27T10:00:00.123Z`.
#[derive(Debug, Clone, Copy)]
pub(super) struct UtcTime;

impl FormatTime for UtcTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write!(w, "{}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

/// Field formatting for the plain format: tracing-subscriber's layout
/// (`message key=value …`), except that control characters in messages and
/// values are escaped (`\n`, `\r`, `\t`, `\u{1b}`), so that no value (a
/// request path, an upstream's error text) can start a line of its own.
pub(super) struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut w: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut v = PlainVisitor {
            out: Escaped(&mut w),
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

/// Writes `message` and ` key=value` through [`Escaped`].
struct PlainVisitor<'a> {
    out: Escaped<'a>,
    first: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let pad = if std::mem::replace(&mut self.first, false) {
            ""
        } else {
            " "
        };
        self.result = match name {
            "message" => write!(self.out, "{pad}{value}"),
            name => {
                let name = name.strip_prefix("r#").unwrap_or(name);
                write!(self.out, "{pad}{name}={value}")
            }
        };
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, format_args!("{value}"));
        } else {
            self.field(field, format_args!("{value:?}"));
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

/// A `fmt::Write` that passes text through with control characters escaped
/// the way Rust's `Debug` escapes them (`\n`, `\r`, `\t`, `\u{7f}`).
struct Escaped<'a>(&'a mut dyn fmt::Write);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(char::is_control) {
            self.0.write_str(&rest[..at])?;
            let mut chars = rest[at..].chars();
            if let Some(c) = chars.next() {
                write!(self.0, "{}", c.escape_debug())?;
            }
            rest = chars.as_str();
        }
        self.0.write_str(rest)
    }
}

/// The logfmt line format: `time=… level=… msg=… key=value …` (span fields
/// last, outermost span first).
pub(super) struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        w.write_str("time=")?;
        UtcTime.format_time(&mut w)?;
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warn",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(w, " level={level}")?;
        let mut message = LogfmtVisitor::new(&mut w, Pick::Message);
        event.record(&mut message);
        message.result?;
        let mut fields = LogfmtVisitor::new(&mut w, Pick::Fields);
        event.record(&mut fields);
        fields.result?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>() {
                    if !f.fields.is_empty() {
                        write!(w, " {}", f.fields)?;
                    }
                }
            }
        }
        writeln!(w)
    }
}

/// Formats span fields as logfmt pairs, for [`Logfmt`].
pub(super) struct LogfmtFields;

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut w: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut v = LogfmtVisitor::new(&mut w, Pick::Fields);
        v.first = true;
        fields.record(&mut v);
        v.result
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    /// Only the `message` field, as `msg=`.
    Message,
    /// Every other field.
    Fields,
}

/// Writes ` key=value` for the fields it is asked to pick.
struct LogfmtVisitor<'a> {
    out: &'a mut dyn fmt::Write,
    pick: Pick,
    /// No leading space before the first pair.
    first: bool,
    result: fmt::Result,
}

impl<'a> LogfmtVisitor<'a> {
    fn new(out: &'a mut dyn fmt::Write, pick: Pick) -> Self {
        LogfmtVisitor {
            out,
            pick,
            first: false,
            result: Ok(()),
        }
    }

    fn pair(&mut self, field: &Field, value: &str) {
        let name = field.name();
        let is_message = name == "message";
        // `log.*` fields carry the metadata of `log` crate records.
        if is_message != (self.pick == Pick::Message) || name.starts_with("log.") {
            return;
        }
        if self.result.is_err() {
            return;
        }
        let key = if is_message { "msg" } else { name };
        self.result = (|| {
            if !std::mem::replace(&mut self.first, false) {
                self.out.write_char(' ')?;
            }
            write_key(self.out, key)?;
            self.out.write_char('=')?;
            write_value(self.out, value)
        })();
    }
}

impl Visit for LogfmtVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.pair(field, &value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.pair(field, &format!("{value:?}"));
    }
}

/// A logfmt key: anything but letters, digits, `_`, `.`, `-` becomes `_`.
fn write_key(out: &mut dyn fmt::Write, key: &str) -> fmt::Result {
    if key.is_empty() {
        return out.write_char('_');
    }
    for c in key.chars() {
        let ok = c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        out.write_char(if ok { c } else { '_' })?;
    }
    Ok(())
}

/// A logfmt value: bare when it is non-empty and has no space, `=`, `"`,
/// `\` or control character; otherwise quoted with `\"`, `\\`, `\n`, `\r`,
/// `\t` and `\u00XX` escapes.
fn write_value(out: &mut dyn fmt::Write, value: &str) -> fmt::Result {
    let bare = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '=' | '"' | '\\'));
    if bare {
        return out.write_str(value);
    }
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::super::queue::tests::Collect;
    use super::super::Format;
    use super::*;

    /// Formats the events `f` emits with `format`, synchronously.
    fn capture(format: Format, f: impl FnOnce()) -> String {
        let out = Collect::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .with_timer(UtcTime)
            .with_max_level(tracing::Level::DEBUG);
        match format {
            Format::Plain => {
                tracing::subscriber::with_default(builder.fmt_fields(PlainFields).finish(), f)
            }
            Format::Logfmt => tracing::subscriber::with_default(
                builder
                    .fmt_fields(LogfmtFields)
                    .event_format(Logfmt)
                    .finish(),
                f,
            ),
            Format::Json => {
                tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), f)
            }
        }
        out.text()
    }

    fn quoted(v: &str) -> String {
        let mut s = String::new();
        write_value(&mut s, v).unwrap();
        s
    }

    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(quoted("127.0.0.1:5555"), "127.0.0.1:5555");
        assert_eq!(quoted("/ubuntu/dists/x"), "/ubuntu/dists/x");
        assert_eq!(quoted("ünïcode"), "ünïcode");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("two words"), "\"two words\"");
        assert_eq!(quoted("a=b"), "\"a=b\"");
        assert_eq!(quoted("say \"hi\""), r#""say \"hi\"""#);
        assert_eq!(quoted(r"C:\x"), r#""C:\\x""#);
        assert_eq!(quoted("l1\nl2\tx\r"), r#""l1\nl2\tx\r""#);
        assert_eq!(quoted("esc\u{1b}[31m"), r#""esc\u001b[31m""#);
    }

    #[test]
    fn logfmt_line() {
        let text = capture(Format::Logfmt, || {
            let span = tracing::info_span!("mirror", id = "ubuntu");
            let _e = span.enter();
            tracing::info!(
                client = %"127.0.0.1:5555",
                status = 200u16,
                ok = true,
                path = "a b",
                error = %"broken \"pipe\"",
                "request done"
            );
        });
        let line = text.strip_suffix('\n').unwrap();
        assert!(!line.contains('\n'), "{text}");
        let rest = line.strip_prefix("time=").unwrap();
        let (time, rest) = rest.split_once(' ').unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        assert!(time.ends_with('Z') && time.len() == 24, "{time}");
        assert_eq!(
            rest,
            r#"level=info msg="request done" client=127.0.0.1:5555 status=200 ok=true path="a b" error="broken \"pipe\"" id=ubuntu"#
        );
    }

    #[test]
    fn logfmt_levels_and_bare_message() {
        let text = capture(Format::Logfmt, || {
            tracing::warn!("stopping");
            tracing::error!(n = 1, "x");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with(" level=warn msg=stopping"), "{text}");
        assert!(lines[1].ends_with(" level=error msg=x n=1"), "{text}");
    }

    #[test]
    fn json_lines_are_valid_objects() {
        let text = capture(Format::Json, || {
            tracing::info!(client = %"127.0.0.1:1", status = 404u16, "line \"one\"\nwith newline");
            tracing::debug!(weird = "\u{0}\u{1b}", "two");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "line \"one\"\nwith newline");
        assert_eq!(v["client"], "127.0.0.1:1");
        assert_eq!(v["status"], 404);
        let ts = v["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["weird"], "\u{0}\u{1b}");
    }

    #[test]
    fn plain_has_time_level_message_fields() {
        let text = capture(Format::Plain, || tracing::info!(status = 200u16, "served"));
        assert!(text.contains("Z  INFO "), "{text}");
        assert!(text.ends_with("served status=200\n"), "{text}");
    }

    /// A value, a message or a span field that holds a newline followed by
    /// what looks like a log line must not become a line of its own.
    #[test]
    fn no_value_can_start_a_line() {
        let forged = "/debian/pool/a\n2026-11-27T00:00:00.000Z ERROR forged: pwned.deb";
        for format in [Format::Plain, Format::Logfmt, Format::Json] {
            let text = capture(format, || {
                let span = tracing::info_span!("request", client = %"1.2.3.4\r\nX");
                let _e = span.enter();
                tracing::warn!(path = %forged, what = forged, n = 1, "cannot fetch {forged}");
                tracing::info!(error = %"a\u{1b}[31m\u{7f}\tb", "done");
            });
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{format:?}: {text}");
            assert!(
                lines
                    .iter()
                    .all(|l| !l.contains('\r') && !l.contains('\u{1b}')),
                "{format:?}: {text}"
            );
            assert!(lines[0].contains("forged"), "{format:?}: {text}");
        }
        let plain = capture(Format::Plain, || {
            tracing::warn!(path = %"a\nb", what = "c\nd", "m\ne\u{7f}");
        });
        let want = concat!(r#"m\ne\u{7f} path=a\nb what="c\nd""#, "\n");
        assert!(plain.ends_with(want), "{plain}");
    }
}
