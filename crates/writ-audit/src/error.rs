//! Why the audit log could not do what was asked: [`AuditError`], which
//! keeps the cause (the [`std::io::Error`] with its kind, the SQLite
//! error) as its [`std::error::Error::source`].

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Why the log could not do what was asked. Its `Display` is one
/// sentence naming the file and the cause; [`std::error::Error::source`]
/// returns the cause itself, typed (an [`io::Error`], or with feature
/// `sqlite` a [`rusqlite::Error`]), to downcast to.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuditError {
    /// Opening, reading, writing or cutting the log's file failed.
    Io { path: PathBuf, source: io::Error },
    /// Opening, setting up or reading the SQLite database failed.
    #[cfg(feature = "sqlite")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The log could not start: `what` failed (reading where the sink's
    /// chain stands, starting the writer or the syncing thread).
    Start {
        what: &'static str,
        source: io::Error,
    },
    /// An existing log cannot be continued (its last record is malformed).
    Corrupt { path: PathBuf, why: String },
    /// The writer stopped after an error; nothing is written any more.
    /// `source` is the sink's error when one stopped it (a panic or a bug
    /// has none); every later call returns the same one, shared.
    Stopped {
        why: &'static str,
        source: Option<Arc<io::Error>>,
    },
    /// The file holds no audit record at all (another file was named).
    NotALog { path: PathBuf, why: String },
    /// The file is an SQLite log, and this build has no SQLite support
    /// (the crate's feature `sqlite`).
    NoSqlite { path: PathBuf },
    /// Another writer (in this process or another) has the log open: a
    /// log is one chain, written by one writer at a time.
    InUse { path: PathBuf },
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::Io { path, source } => {
                write!(f, "audit log: {}: {source}", path.display())
            }
            #[cfg(feature = "sqlite")]
            AuditError::Sqlite { path, source } => {
                write!(f, "audit log: {}: {source}", path.display())
            }
            AuditError::Start { what, source } => write!(f, "audit log: {what}: {source}"),
            AuditError::Corrupt { path, why } => {
                write!(
                    f,
                    "audit log cannot be continued: {}: {why}",
                    path.display()
                )
            }
            AuditError::Stopped { why, source } => {
                write!(f, "audit log stopped: {why}")?;
                match source {
                    Some(e) => write!(f, ": {e}"),
                    None => Ok(()),
                }
            }
            AuditError::NotALog { path, why } => {
                write!(f, "not an audit log: {}: {why}", path.display())
            }
            AuditError::NoSqlite { path } => write!(
                f,
                "audit log: {}: an SQLite log, and this build reads and writes JSON Lines only (feature `sqlite`)",
                path.display()
            ),
            AuditError::InUse { path } => write!(
                f,
                "audit log: {}: another writer has it open; a log is one chain written by one process at a time, so give each writer (each `writ serve`, each engine) a log of its own",
                path.display()
            ),
        }
    }
}

impl std::error::Error for AuditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuditError::Io { source, .. } | AuditError::Start { source, .. } => Some(source),
            #[cfg(feature = "sqlite")]
            AuditError::Sqlite { source, .. } => Some(source),
            // The `io::Error` itself (not the `Arc`), so that it downcasts.
            AuditError::Stopped { source, .. } => source
                .as_deref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
            AuditError::Corrupt { .. }
            | AuditError::NotALog { .. }
            | AuditError::NoSqlite { .. }
            | AuditError::InUse { .. } => None,
        }
    }
}

/// Why the writer stopped, kept to be returned by every later `flush`,
/// `shutdown` and `error` (an [`io::Error`] cannot be cloned; the `Arc`
/// can).
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    why: &'static str,
    source: Option<Arc<io::Error>>,
}

impl Failure {
    /// The writer stopped for `why` (a panic, a bug), with no I/O cause.
    pub(crate) fn new(why: &'static str) -> Failure {
        Failure { why, source: None }
    }

    /// The writer stopped because the sink failed with `e`.
    pub(crate) fn io(why: &'static str, e: io::Error) -> Failure {
        Failure {
            why,
            source: Some(Arc::new(e)),
        }
    }

    pub(crate) fn error(&self) -> AuditError {
        AuditError::Stopped {
            why: self.why,
            source: self.source.clone(),
        }
    }
}

/// Takes the writer's lock on `file` (an advisory exclusive lock: `flock`
/// on Unix), which holds while the handle is open, so that a second
/// writer of the log at `path` is refused rather than forking its chain.
/// A file system without locks is let be.
pub(crate) fn lock_writer(file: &std::fs::File, path: &std::path::Path) -> Result<(), AuditError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(AuditError::InUse {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
        Err(std::fs::TryLockError::Error(source)) => Err(AuditError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}
