//! Reading the OpenPGP containers the way apt and gpg do: apt's line
//! splitting, ASCII-armoured blocks, clearsigned InRelease files, detached
//! signatures (armoured or binary) and keyring files. Only syntax: no key
//! or signature is judged here.

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::Signature;

use super::SignatureError;

/// An ASCII-armoured part that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ArmorError {
    /// Strict mode: text that is not a blank line between blocks.
    #[error("unexpected text outside the {what} blocks (line {line} of the block part)")]
    TextOutside {
        /// The kind of block ("signature", "PGP PUBLIC KEY").
        what: &'static str,
        /// 1-based line in the block part.
        line: usize,
    },
    /// A line starting with a dash inside a block.
    #[error("unexpected line starting with a dash inside the {what} block")]
    DashInside {
        /// The kind of block.
        what: &'static str,
    },
    /// A block without its end line.
    #[error("{what} block is not closed")]
    NotClosed {
        /// The kind of block.
        what: &'static str,
    },
}

/// A keyring file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum KeyringError {
    /// The OpenPGP packets do not parse.
    #[error("{0}")]
    Pgp(#[from] pgp::errors::Error),
    /// The armour is not well formed.
    #[error(transparent)]
    Armor(#[from] ArmorError),
    /// Text without any public key block.
    #[error("neither binary OpenPGP data nor an armoured PGP PUBLIC KEY BLOCK")]
    NoKeyBlock,
}

/// Skips leading ASCII whitespace.
fn trim_start(data: &[u8]) -> &[u8] {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data.get(start..).unwrap_or_default()
}

/// Splits bytes into lines the way apt's `LineBuffer` reads them: line ending
/// and trailing spaces/tabs removed.
fn apt_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    data.split(|&b| b == b'\n').map(|line| {
        let end = line
            .iter()
            .rposition(|b| !matches!(b, b'\r' | b'\n'))
            .map_or(0, |p| p + 1);
        let line = line.get(..end).unwrap_or_default();
        let end = line
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(0, |p| p + 1);
        line.get(..end).unwrap_or_default()
    })
}

const BEGIN_SIGNED: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &[u8] = b"-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &[u8] = b"-----END PGP SIGNATURE-----";
const BEGIN_PUBKEY: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
const END_PUBKEY: &[u8] = b"-----END PGP PUBLIC KEY BLOCK-----";

/// Collects ASCII-armoured blocks (`begin` … `end` lines, inclusive) from
/// lines. Inside a block, no line other than `end` may start with a dash.
/// Outside blocks, when `strict`, only blank lines are allowed (otherwise
/// other text is skipped).
fn armored_blocks<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    begin: &[u8],
    end: &[u8],
    what: &'static str,
    strict: bool,
) -> Result<Vec<Vec<u8>>, ArmorError> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for (n, line) in lines.enumerate() {
        match current.as_mut() {
            None => {
                if line == begin {
                    current = Some(line.to_vec());
                } else if strict && !line.is_empty() {
                    return Err(ArmorError::TextOutside { what, line: n + 1 });
                }
            }
            Some(block) => {
                block.push(b'\n');
                block.extend_from_slice(line);
                if line == end {
                    blocks.extend(current.take());
                } else if line.starts_with(b"-") {
                    return Err(ArmorError::DashInside { what });
                }
            }
        }
    }
    if current.is_some() {
        return Err(ArmorError::NotClosed { what });
    }
    Ok(blocks)
}

/// Parses the signature packets of one armoured block or of binary data.
fn parse_signatures(data: &[u8], out: &mut Vec<Signature>) -> Result<(), SignatureError> {
    let (iter, _headers) = DetachedSignature::from_reader_many(data)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    for sig in iter {
        let sig = sig.map_err(|e| SignatureError::Malformed(e.to_string()))?;
        out.push(sig.signature);
    }
    Ok(())
}

/// Parses a detached signature file: binary packets, or one or more armoured
/// `PGP SIGNATURE` blocks.
pub(super) fn detached_signatures(signature: &[u8]) -> Result<Vec<Signature>, SignatureError> {
    let trimmed = trim_start(signature);
    let mut sigs = Vec::new();
    match trimmed.first() {
        None => return Err(SignatureError::Malformed("empty signature".to_string())),
        Some(b) if b & 0x80 != 0 => parse_signatures(trimmed, &mut sigs)?,
        Some(_) => {
            let blocks = armored_blocks(
                apt_lines(trimmed),
                BEGIN_SIGNATURE,
                END_SIGNATURE,
                "signature",
                true,
            )
            .map_err(|e| SignatureError::Malformed(e.to_string()))?;
            if blocks.is_empty() {
                return Err(SignatureError::Malformed(
                    "no PGP SIGNATURE block found".to_string(),
                ));
            }
            for block in blocks {
                parse_signatures(&block, &mut sigs)?;
            }
        }
    }
    Ok(sigs)
}

/// Splits a clearsigned message into the signed text (as apt sees it) and
/// its signatures.
pub(super) fn split_clearsigned(data: &[u8]) -> Result<(Vec<u8>, Vec<Signature>), SignatureError> {
    let malformed = |m: &str| SignatureError::Malformed(m.to_string());
    let mut lines = apt_lines(data);
    if lines.next() != Some(BEGIN_SIGNED) {
        return Err(malformed(
            "not a clearsigned message: first line is not -----BEGIN PGP SIGNED MESSAGE-----",
        ));
    }
    // Armor headers ("Hash: ..."), up to an empty line.
    loop {
        match lines.next() {
            None => return Err(malformed("clearsigned message ends in its armor headers")),
            Some([]) => break,
            Some(l) if l.starts_with(b"-") => {
                return Err(malformed(
                    "clearsigned message has an armor header line starting with a dash",
                ))
            }
            Some(_) => {}
        }
    }
    // The text, up to the first signature block.
    let mut text = Vec::with_capacity(data.len());
    let mut first = true;
    loop {
        let Some(line) = lines.next() else {
            return Err(malformed("clearsigned message has no signature block"));
        };
        if line == BEGIN_SIGNATURE {
            break;
        }
        let line = if line.starts_with(b"-") {
            line.strip_prefix(b"- ").ok_or_else(|| {
                malformed(
                    "clearsigned text has a line starting with a dash that is not dash-escaped",
                )
            })?
        } else {
            line
        };
        if !first {
            text.push(b'\n');
        }
        first = false;
        text.extend_from_slice(line);
    }
    let blocks = armored_blocks(
        std::iter::once(BEGIN_SIGNATURE).chain(lines),
        BEGIN_SIGNATURE,
        END_SIGNATURE,
        "signature",
        true,
    )
    .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let mut sigs = Vec::new();
    for block in blocks {
        parse_signatures(&block, &mut sigs)?;
    }
    Ok((text, sigs))
}

/// Parses the keys of one keyring file (binary or armoured).
pub(super) fn parse_keys(data: &[u8]) -> Result<Vec<SignedPublicKey>, KeyringError> {
    let trimmed = trim_start(data);
    let mut keys = Vec::new();
    let mut parse = |bytes: &[u8]| -> Result<(), KeyringError> {
        let (iter, _headers) = SignedPublicKey::from_reader_many(bytes)?;
        for key in iter {
            keys.push(key?);
        }
        Ok(())
    };
    match trimmed.first() {
        None => {}
        Some(b) if b & 0x80 != 0 => parse(trimmed)?,
        Some(_) => {
            // Text around the blocks (comments, other block types) is
            // ignored, as gpg does; only public key blocks are read.
            let blocks = armored_blocks(
                apt_lines(trimmed),
                BEGIN_PUBKEY,
                END_PUBKEY,
                "PGP PUBLIC KEY",
                false,
            )?;
            if blocks.is_empty() {
                return Err(KeyringError::NoKeyBlock);
            }
            for block in blocks {
                parse(&block)?;
            }
        }
    }
    Ok(keys)
}
