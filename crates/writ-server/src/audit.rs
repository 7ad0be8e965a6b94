//! Every decision the server makes goes to the audit log (writ's
//! hash-chained log, SQLite or JSON Lines), with its trace id; the admin
//! audit query reads the SQLite log back, newest first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use writ_audit::{AuditLog, AuditOptions, Format};
use writ_runtime::{Decision, Request};

use crate::error::ApiError;

/// The server's audit log.
#[derive(Debug)]
pub struct Audit {
    log: AuditLog,
    path: PathBuf,
    sqlite: bool,
}

/// What the admin audit query asks for.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub limit: usize,
    pub decision: Option<String>,
    pub agent: Option<String>,
    pub action: Option<String>,
    /// Unix milliseconds, inclusive.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// The audit query's answer to a JSON Lines log.
fn not_queryable(path: &Path) -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "audit_not_queryable",
        format!(
            "the audit log {} is JSON Lines; the audit query reads an SQLite log (--audit-path ending in .db)",
            path.display()
        ),
    )
}

/// What the audit log holds, counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub allowed: u64,
    pub denied: u64,
}

/// One record, as the audit query returns it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    pub time_ms: i64,
    pub trace_id: Option<String>,
    pub agent: String,
    pub action: String,
    pub target: Option<String>,
    pub decision: String,
    pub rule: Option<String>,
    pub reason: Option<String>,
    pub context: String,
}

impl Audit {
    /// Opens (appending to) the log at `path`: SQLite for `.db`,
    /// `.sqlite` and `.sqlite3`, JSON Lines otherwise.
    ///
    /// # Errors
    /// When the log cannot be opened.
    pub fn open(path: &Path) -> Result<Audit, String> {
        let format = Format::for_writing(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let sqlite = format == Format::Sqlite;
        let log = AuditLog::open(path, AuditOptions::default())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Audit {
            log,
            path: path.to_owned(),
            sqlite,
        })
    }

    /// Records a decision.
    pub fn record(&self, req: &Request, d: &Decision<'_>, revision: &Arc<str>) {
        self.log.record_decision(req, d, revision, d.time_ms);
    }

    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.log.dropped()
    }

    /// Writes what is queued.
    ///
    /// # Errors
    /// The writer's failure.
    pub fn flush(&self) -> Result<(), String> {
        self.log.flush().map_err(|e| e.to_string())
    }

    /// Records matching `q`, newest first.
    ///
    /// # Errors
    /// [`ApiError`] 501 `audit_not_queryable` when the log is JSON Lines;
    /// 500 when it cannot be read.
    pub fn query(&self, q: &Query) -> Result<Vec<Entry>, ApiError> {
        if !self.sqlite {
            return Err(not_queryable(&self.path));
        }
        self.query_sqlite(q).map_err(ApiError::internal)
    }

    /// How many records the log holds, allowed and denied, counted by
    /// SQLite (the records are not read into memory).
    ///
    /// # Errors
    /// As [`Audit::query`].
    pub fn counts(&self) -> Result<Counts, ApiError> {
        if !self.sqlite {
            return Err(not_queryable(&self.path));
        }
        self.count_sqlite().map_err(ApiError::internal)
    }

    /// The SQLite log, read-only, with everything queued written first.
    fn read_only(&self) -> Result<Connection, String> {
        self.flush()?;
        Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    fn count_sqlite(&self) -> Result<Counts, String> {
        let db = self.read_only()?;
        db.query_row(
            "SELECT COUNT(*), COALESCE(SUM(decision = 'allow'), 0), COALESCE(SUM(decision = 'deny'), 0) FROM audit",
            [],
            |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                Ok(Counts {
                    total: n(0)?,
                    allowed: n(1)?,
                    denied: n(2)?,
                })
            },
        )
        .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    fn query_sqlite(&self, q: &Query) -> Result<Vec<Entry>, String> {
        let db = self.read_only()?;
        let mut sql = String::from(
            "SELECT id, time_ms, trace_id, agent, action, target, decision, rule, reason, context FROM audit WHERE 1 = 1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(d) = &q.decision {
            sql.push_str(" AND decision = ?");
            args.push(d.clone().into());
        }
        if let Some(a) = &q.agent {
            sql.push_str(" AND agent = ?");
            args.push(a.clone().into());
        }
        if let Some(a) = &q.action {
            sql.push_str(" AND action = ?");
            args.push(a.clone().into());
        }
        if let Some(f) = q.from_ms {
            sql.push_str(" AND time_ms >= ?");
            args.push(f.into());
        }
        if let Some(t) = q.to_ms {
            sql.push_str(" AND time_ms <= ?");
            args.push(t.into());
        }
        // Rows go in in chain order: the rowid walks back from the newest
        // (`seq` has no index).
        sql.push_str(" ORDER BY rowid DESC LIMIT ?");
        args.push(i64::try_from(q.limit).unwrap_or(i64::MAX).into());
        let mut st = db.prepare(&sql).map_err(|e| e.to_string())?;
        let rows = st
            .query_map(params_from_iter(args), |r| {
                Ok(Entry {
                    id: r.get(0)?,
                    time_ms: r.get(1)?,
                    trace_id: r.get(2)?,
                    agent: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    decision: r.get(6)?,
                    rule: r.get(7)?,
                    reason: r.get(8)?,
                    context: r.get(9)?,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }
}
