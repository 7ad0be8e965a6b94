//! Why a bundle was not loaded: the one error type of loading, from the
//! header check to the last rule's decoding.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    Signature(SignatureError),
    /// The bundle's content is malformed. The text says what and where,
    /// for the person who has to recompile it; callers branch on the
    /// variant, never on the text.
    Corrupt(String),
    /// A coded field holds a byte that is no code of its kind (see
    /// [`crate::vocab`]).
    UnknownCode { what: &'static str, byte: u8 },
    /// The bundle file could not be read.
    Io(IoError),
}

/// Why a signature check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The bundle carries no signature.
    Unsigned,
    /// The signature field is shorter than a signature.
    CutOff,
    /// The public key is not a valid Ed25519 key.
    BadKey,
    /// The signature does not verify with this public key.
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureError::Unsigned => {
                "the bundle is not signed; compile it with `writ compile --sign KEY`"
            }
            SignatureError::CutOff => "the signature is cut off",
            SignatureError::BadKey => "the public key is not a valid Ed25519 key",
            SignatureError::Mismatch => "the signature does not match this public key",
        })
    }
}

/// A bundle file that could not be read: the path and the I/O error
/// (kept whole, so its kind is not lost). Two are equal when their paths
/// and error kinds are.
#[derive(Clone, Debug)]
pub struct IoError {
    path: PathBuf,
    error: Arc<std::io::Error>,
}

impl IoError {
    #[must_use]
    pub fn new(path: &Path, error: std::io::Error) -> IoError {
        IoError {
            path: path.to_path_buf(),
            error: Arc::new(error),
        }
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    #[must_use]
    pub fn kind(&self) -> std::io::ErrorKind {
        self.error.kind()
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &IoError) -> bool {
        self.path == other.path && self.kind() == other.kind()
    }
}

impl Eq for IoError {}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotABundle => f.write_str("not a writ bundle (bad magic bytes)"),
            LoadError::UnsupportedVersion(v) if OLDEST_FORMAT_VERSION == FORMAT_VERSION => write!(
                f,
                "bundle format {v} is not supported by this runtime (it reads format {FORMAT_VERSION} only); recompile with a matching writ"
            ),
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

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io(e) => Some(&*e.error),
            _ => None,
        }
    }
}
