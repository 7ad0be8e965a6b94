//! Why a bundle was not loaded: the one error type of loading, from the
//! header check to the last rule's decoding.

use std::fmt;

use crate::{FORMAT_VERSION, OLDEST_FORMAT_VERSION};

/// Why a bundle was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The bytes are not a bundle (wrong magic).
    NotABundle,
    /// A bundle of a format this runtime does not read.
    UnsupportedVersion(u32),
    /// The checksum does not match: the bundle was changed or cut.
    Checksum,
    /// A signature was required and is missing or does not verify.
    Signature(String),
    /// The bundle's content is malformed.
    Corrupt(String),
    /// A coded field holds a byte that is no code of its kind (see
    /// [`crate::vocab`]).
    UnknownCode { what: &'static str, byte: u8 },
    /// The bundle could not be read.
    Io(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotABundle => f.write_str("not a writ bundle (bad magic bytes)"),
            LoadError::UnsupportedVersion(v) => write!(
                f,
                "bundle format {v} is not supported by this runtime (it reads formats {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}); recompile with a matching writ"
            ),
            LoadError::Checksum => f.write_str(
                "bundle checksum mismatch: the file was modified or truncated; recompile it",
            ),
            LoadError::Signature(why) => write!(f, "bundle signature check failed: {why}"),
            LoadError::Corrupt(why) => write!(f, "corrupt bundle: {why}"),
            LoadError::UnknownCode { what, byte } => {
                write!(f, "corrupt bundle: unknown {what} {byte}")
            }
            LoadError::Io(why) => write!(f, "cannot read bundle: {why}"),
        }
    }
}

impl std::error::Error for LoadError {}
