//! A key that takes one string or an array of strings (apt-cacher's
//! `listen_address`, apt-mirror's `keyring`).
//!
//! serde's `#[serde(untagged)]` would say only "data did not match any
//! variant of untagged enum" for anything else; this type says what it
//! expects, and a wrong element of the array is reported as that element
//! (its own span, so its own line).

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use std::fmt;

/// One string (a list of one) or an array of strings, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OneOrMany, D::Error> {
        d.deserialize_any(OneOrManyVisitor)
    }
}

struct OneOrManyVisitor;

impl<'de> Visitor<'de> for OneOrManyVisitor {
    type Value = OneOrMany;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
        Ok(OneOrMany(vec![v.to_string()]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            out.push(s);
        }
        Ok(OneOrMany(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_many_and_what_is_expected() {
        let one: OneOrMany = serde_json::from_str("\"a\"").unwrap();
        assert_eq!(one.0, ["a"]);
        let many: OneOrMany = serde_json::from_str("[\"a\", \"b\"]").unwrap();
        assert_eq!(many.0, ["a", "b"]);
        let e = serde_json::from_str::<OneOrMany>("3").unwrap_err();
        assert!(
            e.to_string()
                .contains("expected a string or an array of strings"),
            "{e}"
        );
        let e = serde_json::from_str::<OneOrMany>("[\"a\", 3]").unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
    }
}
