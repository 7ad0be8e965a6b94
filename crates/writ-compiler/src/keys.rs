//! Key files as `writ keygen` writes them: a 32-byte Ed25519 key (secret in
//! `NAME`, public in `NAME.pub`) as 64 hex digits and a newline. The one
//! reader and writer of that form, for the CLI and the Python package.

use std::path::{Path, PathBuf};

/// Why a key file cannot be used.
#[derive(Debug)]
pub enum KeyError {
    /// The file cannot be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not 64 hex digits.
    NotAKey { path: PathBuf },
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Read { path, source } => {
                write!(f, "cannot read key `{}`: {source}", path.display())
            }
            KeyError::NotAKey { path } => write!(
                f,
                "`{}` is not a writ key (64 hex digits, as written by `writ keygen`)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Read { source, .. } => Some(source),
            KeyError::NotAKey { .. } => None,
        }
    }
}

/// A key as the text of a key file (64 lowercase hex digits, no newline).
#[must_use]
pub fn to_hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key from the text of a key file (surrounding white space ignored);
/// `None` when the text is not 64 hex digits.
#[must_use]
pub fn parse(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        let pair = t.get(i * 2..i * 2 + 2)?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Reads a key file.
///
/// # Errors
/// When the file cannot be read or does not hold a key.
pub fn read(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).ok_or_else(|| KeyError::NotAKey {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_junk_is_refused() {
        let key: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7 % 256).unwrap());
        let text = to_hex(&key);
        assert_eq!(text.len(), 64);
        assert_eq!(parse(&format!("{text}\n")), Some(key));
        assert_eq!(parse(&text.to_uppercase()), Some(key));
        assert_eq!(parse(&text[..62]), None);
        assert_eq!(parse(&format!("{}zz", &text[..62])), None);
        assert_eq!(parse(""), None);
        let missing = read(Path::new("/nonexistent/writ-key"));
        assert!(matches!(missing, Err(KeyError::Read { .. })));
    }
}
