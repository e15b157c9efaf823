//! One `[mapping]` entry as written: go-apt-cacher's URL string, or our
//! table `{ url = "..." | ["...", ...], aliases = [...], redirect_hosts =
//! [...], keyring = "..." | [...], local = "..." }`.
//!
//! serde's `#[serde(untagged)]` would answer anything else (an unknown
//! sub-key, a number, a misspelt `url`) with "data did not match any variant
//! of untagged enum"; this visitor says what a mapping takes, and a table's
//! own errors (unknown field, wrong type of `aliases`) come through with
//! their key and span.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use std::fmt;

/// A mapping's value before validation.
pub(super) enum RawMapping {
    /// `prefix = "http://..."`.
    Url(String),
    /// `prefix = { url = "http://...", aliases = [...], redirect_hosts = [...] }`.
    Table(RawMappingTable),
}

/// The table form of a mapping.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMappingTable {
    /// The upstream URL, or several URLs of one archive (tried in order).
    pub(super) url: runtime::config::OneOrMany,
    /// Other URLs of the same repository.
    #[serde(default)]
    pub(super) aliases: Vec<String>,
    /// Hosts upstream may redirect to besides the URL's and aliases' own.
    #[serde(default)]
    pub(super) redirect_hosts: Vec<String>,
    /// OpenPGP keyrings a Release must verify against (relative to the
    /// config file's directory).
    #[serde(default)]
    pub(super) keyring: Option<runtime::config::OneOrMany>,
    /// A local apt-mirror snapshot of the same archive to serve files from.
    #[serde(default)]
    pub(super) local: Option<String>,
}

impl<'de> Deserialize<'de> for RawMapping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawMapping, D::Error> {
        d.deserialize_any(MappingVisitor)
    }
}

struct MappingVisitor;

impl<'de> Visitor<'de> for MappingVisitor {
    type Value = RawMapping;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an upstream URL string or a table { url = \"...\", aliases = [\"...\"] }")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawMapping, E> {
        Ok(RawMapping::Url(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawMapping, A::Error> {
        RawMappingTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            .map(RawMapping::Table)
    }
}
