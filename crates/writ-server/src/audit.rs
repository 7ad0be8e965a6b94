//! Every decision the server makes goes to the audit log (writ's
//! hash-chained log, SQLite or JSON Lines), with its trace id; the admin
//! audit query reads the SQLite log back, newest first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, params_from_iter};
use writ_audit::{AuditLog, AuditOptions, Format};
use writ_runtime::{Decision, Request};

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
    /// When the log is not SQLite or cannot be read.
    pub fn query(&self, q: &Query) -> Result<Vec<Entry>, String> {
        if !self.sqlite {
            return Err(format!(
                "the audit log {} is JSON Lines; the audit query reads an SQLite log (--audit-path ending in .db)",
                self.path.display()
            ));
        }
        self.flush()?;
        let db = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
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
        sql.push_str(" ORDER BY seq DESC LIMIT ?");
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
