//! Which format a log file is in: the one rule every reader and writer of
//! logs by path uses (`writ audit`, the Python binding), so that they
//! cannot disagree about a file.
//!
//! The rule: a file's content decides, never its name. A file that starts
//! with SQLite's 16-byte header (`SQLite format 3\0`) is an SQLite log;
//! any other file, an empty one included, is JSON Lines. Only a log that
//! does not exist yet (or is empty) has no content to go by: a log opened
//! for writing ([`AuditLog::open`]) is then SQLite when its name ends in
//! `.db`, `.sqlite` or `.sqlite3` (in any case), and JSON Lines otherwise.

use std::io::{self, Read as _};
use std::path::Path;

use crate::{AuditError, AuditLog, AuditOptions, JsonlSink, VerifyReport};

/// The format of an audit log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One canonical record per line ([`JsonlSink`]).
    Jsonl,
    /// An SQLite database: a row per batch in table `audit_batch` (and
    /// view `audit`, a row per record), or in logs made before
    /// 2026-12-06 a row per record in table `audit` (`SqliteSink`,
    /// feature `sqlite`).
    Sqlite,
}

impl Format {
    /// The first bytes of every SQLite database file.
    pub const SQLITE_MAGIC: &'static [u8; 16] = b"SQLite format 3\0";

    /// The format of an existing log, by its first bytes: SQLite when it
    /// starts with [`Format::SQLITE_MAGIC`], JSON Lines otherwise (see the
    /// module's rule). Its name does not matter.
    ///
    /// # Errors
    /// [`AuditError::Io`] when the file cannot be opened or read.
    pub fn detect(path: impl AsRef<Path>) -> Result<Format, AuditError> {
        let path = path.as_ref();
        Format::of_content(path)
            .map(|f| f.unwrap_or(Format::Jsonl))
            .map_err(|source| AuditError::Io {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The format a log opened for writing has: an existing file's, by its
    /// content (as [`Format::detect`]), so that a log is continued in its
    /// own format whatever its name; for a file that is missing or empty,
    /// the name's extension decides (see the module's rule).
    ///
    /// # Errors
    /// [`AuditError::Io`] when the file exists but cannot be read.
    pub fn for_writing(path: impl AsRef<Path>) -> Result<Format, AuditError> {
        let path = path.as_ref();
        match Format::of_content(path) {
            Ok(Some(format)) => Ok(format),
            Ok(None) => Ok(Format::of_name(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Format::of_name(path)),
            Err(source) => Err(AuditError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The format a new log named `path` gets: SQLite for the extensions
    /// `db`, `sqlite` and `sqlite3` (any case), JSON Lines otherwise.
    #[must_use]
    pub fn of_name(path: impl AsRef<Path>) -> Format {
        let sqlite = path
            .as_ref()
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| {
                ["db", "sqlite", "sqlite3"]
                    .iter()
                    .any(|x| e.eq_ignore_ascii_case(x))
            });
        if sqlite {
            Format::Sqlite
        } else {
            Format::Jsonl
        }
    }

    /// The format by the file's first bytes; `None` for an empty file.
    fn of_content(path: &Path) -> io::Result<Option<Format>> {
        let mut magic = [0u8; 16];
        let mut file = std::fs::File::open(path)?;
        let mut read = 0;
        while let Some(rest) = magic.get_mut(read..).filter(|r| !r.is_empty()) {
            match file.read(rest) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(match read {
            0 => None,
            // All 16 bytes read: the buffer starts zeroed, and the
            // header's last byte is a zero.
            16 if &magic == Format::SQLITE_MAGIC => Some(Format::Sqlite),
            _ => Some(Format::Jsonl),
        })
    }
}

/// Verifies a log of either format, told by its content
/// ([`Format::detect`]): what `writ audit verify` and the Python binding's
/// `verify_audit` run.
///
/// # Errors
/// As [`Format::detect`], [`crate::verify_jsonl`] and `verify_sqlite`;
/// [`AuditError::NoSqlite`] for an SQLite log without feature `sqlite`.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, AuditError> {
    let path = path.as_ref();
    match Format::detect(path)? {
        Format::Jsonl => crate::verify_jsonl(path),
        #[cfg(feature = "sqlite")]
        Format::Sqlite => crate::verify_sqlite(path),
        #[cfg(not(feature = "sqlite"))]
        Format::Sqlite => Err(AuditError::NoSqlite {
            path: path.to_path_buf(),
        }),
    }
}

impl AuditLog {
    /// A log appending to `path` in its format ([`Format::for_writing`]:
    /// an existing log's own, else told by the name), created if missing
    /// and continued if not.
    ///
    /// # Errors
    /// As [`Format::for_writing`], [`JsonlSink::open`], `SqliteSink::open`
    /// and [`AuditLog::new`]; [`AuditError::NoSqlite`] for an SQLite log
    /// without feature `sqlite`.
    pub fn open(path: impl AsRef<Path>, options: AuditOptions) -> Result<AuditLog, AuditError> {
        let path = path.as_ref();
        match Format::for_writing(path)? {
            Format::Jsonl => AuditLog::new(JsonlSink::open(path)?, options),
            #[cfg(feature = "sqlite")]
            Format::Sqlite => AuditLog::new(crate::SqliteSink::open(path)?, options),
            #[cfg(not(feature = "sqlite"))]
            Format::Sqlite => Err(AuditError::NoSqlite {
                path: path.to_path_buf(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty directory for one test.
    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("writ-audit-format-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let made = std::fs::create_dir_all(&dir);
        assert!(made.is_ok(), "{made:?}");
        dir
    }

    fn write(path: &Path, bytes: &[u8]) {
        let written = std::fs::write(path, bytes);
        assert!(written.is_ok(), "{written:?}");
    }

    #[test]
    fn content_decides_whatever_the_name() {
        let dir = temp_dir("content");
        let sqlite = [&Format::SQLITE_MAGIC[..], b"rest of the page"].concat();
        for name in ["a.db", "a.jsonl", "a.SQLite3", "a"] {
            let path = dir.join(name);
            write(&path, &sqlite);
            assert_eq!(Format::detect(&path).ok(), Some(Format::Sqlite), "{name}");
            assert_eq!(
                Format::for_writing(&path).ok(),
                Some(Format::Sqlite),
                "{name}"
            );
            write(&path, b"{\"seq\":1}\n");
            assert_eq!(Format::detect(&path).ok(), Some(Format::Jsonl), "{name}");
            assert_eq!(
                Format::for_writing(&path).ok(),
                Some(Format::Jsonl),
                "{name}"
            );
            // The header cut short is not SQLite's.
            write(&path, &Format::SQLITE_MAGIC[..15]);
            assert_eq!(Format::detect(&path).ok(), Some(Format::Jsonl), "{name}");
        }
    }

    #[test]
    fn a_new_or_empty_log_is_told_by_its_name() {
        let dir = temp_dir("name");
        for (name, want) in [
            ("audit.db", Format::Sqlite),
            ("audit.DB", Format::Sqlite),
            ("audit.sqlite", Format::Sqlite),
            ("audit.sqlite3", Format::Sqlite),
            ("audit.jsonl", Format::Jsonl),
            ("audit.db.jsonl", Format::Jsonl),
            ("audit", Format::Jsonl),
        ] {
            let path = dir.join(name);
            assert_eq!(Format::for_writing(&path).ok(), Some(want), "{name}");
            write(&path, b"");
            assert_eq!(Format::for_writing(&path).ok(), Some(want), "{name}");
            // Read, an empty file holds no record: JSON Lines, whatever
            // the name.
            assert_eq!(Format::detect(&path).ok(), Some(Format::Jsonl), "{name}");
        }
    }

    #[test]
    fn a_missing_log_cannot_be_detected_and_keeps_its_io_error() {
        let path = temp_dir("missing").join("nothing.jsonl");
        let err = Format::detect(&path);
        let Err(err @ AuditError::Io { .. }) = err else {
            unreachable!("{err:?}")
        };
        let kind = std::error::Error::source(&err)
            .and_then(|c| c.downcast_ref::<io::Error>())
            .map(io::Error::kind);
        assert_eq!(kind, Some(io::ErrorKind::NotFound), "{err:?}");
        assert!(err.to_string().starts_with("audit log: "), "{err}");
        assert!(err.to_string().contains("nothing.jsonl"), "{err}");
        assert!(verify(&path).is_err());
    }
}
