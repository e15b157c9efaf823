//! The full key of a position in a TOML file (`mapping.debian.aliases`,
//! `mirror.m.keep`), and serde's type names told as a user writes values.
//!
//! toml reports a type error by the span of the offending value (or key)
//! and a serde message; the message names the value, not where it is. The
//! line alone is not enough inside an inline table, a multi-line array or
//! a dotted key, so the file is parsed once more (only when there is an
//! error) into a span-preserving document, and the innermost key whose key
//! or value holds the error's position is the key the error is about.

use toml_edit::{ImDocument, Item, Table, Value};

/// The components of the innermost key of `text` whose key or value holds
/// byte `offset` (`["mirror", "m", "keep"]`); `None` when the text does not
/// parse or the offset is in no key's key or value (a comment, a header of
/// an empty table).
pub fn key_path_at(text: &str, offset: usize) -> Option<Vec<String>> {
    let doc = ImDocument::parse(text).ok()?;
    let mut path = Vec::new();
    in_table(doc.as_table(), offset, &mut path).then_some(path)
}

fn holds(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

/// Looks in `table`'s keys; pushes the key found (and those below it).
fn in_table(table: &Table, offset: usize, path: &mut Vec<String>) -> bool {
    for (name, item) in table.iter() {
        path.push(name.to_string());
        let in_key = holds(table.key(name).and_then(|k| k.span()), offset);
        if in_key || in_item(item, offset, path) {
            return true;
        }
        path.pop();
    }
    false
}

/// Looks in `item`; true when the offset is in it (its keys pushed).
fn in_item(item: &Item, offset: usize, path: &mut Vec<String>) -> bool {
    match item {
        Item::None => false,
        // A `[table]`'s keys live anywhere in the file: always look in them.
        Item::Table(t) => in_table(t, offset, path) || holds(t.span(), offset),
        Item::ArrayOfTables(a) => a.iter().any(|t| in_table(t, offset, path)),
        Item::Value(v) => in_value(v, offset, path),
    }
}

fn in_value(value: &Value, offset: usize, path: &mut Vec<String>) -> bool {
    if !holds(value.span(), offset) {
        return false;
    }
    match value {
        Value::InlineTable(t) => {
            for (name, v) in t.iter() {
                path.push(name.to_string());
                let in_key = holds(t.key(name).and_then(|k| k.span()), offset);
                if in_key || in_value(v, offset, path) {
                    return true;
                }
                path.pop();
            }
        }
        Value::Array(a) => {
            // An element belongs to the array's key.
            for v in a.iter() {
                if in_value(v, offset, path) {
                    return true;
                }
            }
        }
        _ => {}
    }
    true
}

/// serde's message with its type names told as a TOML user writes values:
/// "expected u64" becomes "expected a whole number (0 or more)", "expected
/// a sequence" "expected an array", and so on.
pub fn explain(message: &str) -> String {
    const WORDS: [(&str, &str); 12] = [
        ("expected u8", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false (a boolean)"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ];
    let mut out = message.trim().to_string();
    for (serde, user) in WORDS {
        if let Some(at) = out.find(serde) {
            let end = at + serde.len();
            // Only the whole word (`u8` is not the start of `u64`).
            let whole = out[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            if whole {
                out.replace_range(at..end, user);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> Option<String> {
        let offset = text.find(needle).unwrap();
        key_path_at(text, offset).map(|p| p.join("."))
    }

    #[test]
    fn finds_keys_in_tables_inline_tables_and_arrays() {
        let text = "a = 1\n[mapping]\ndebian = { url = \"u\", extra = 3 }\n\
                    [mirror.m]\nkeep = 1.5\nsuites = [\n  \"x\",\n  4,\n]\nd.e = true\n";
        assert_eq!(at(text, "1\n").as_deref(), Some("a"));
        assert_eq!(at(text, "3 }").as_deref(), Some("mapping.debian.extra"));
        assert_eq!(at(text, "extra").as_deref(), Some("mapping.debian.extra"));
        assert_eq!(at(text, "{").as_deref(), Some("mapping.debian"));
        assert_eq!(at(text, "1.5").as_deref(), Some("mirror.m.keep"));
        assert_eq!(at(text, "4,").as_deref(), Some("mirror.m.suites"));
        assert_eq!(at(text, "true").as_deref(), Some("mirror.m.d.e"));
        assert_eq!(key_path_at("[", 0), None);
    }

    #[test]
    fn explains_serde_types() {
        assert_eq!(
            explain("invalid type: floating point `1.5`, expected i64"),
            "invalid type: floating point `1.5`, expected a whole number"
        );
        assert_eq!(
            explain("invalid type: string \"10\", expected u64\n"),
            "invalid type: string \"10\", expected a whole number (0 or more)"
        );
        assert_eq!(
            explain("invalid type: string \"yes\", expected a boolean"),
            "invalid type: string \"yes\", expected true or false (a boolean)"
        );
        assert_eq!(explain("expected a string"), "expected a string");
    }
}
