//! Every decision the server makes goes to the audit log (writ's
//! hash-chained log, SQLite or JSON Lines), with its trace id; the admin
//! audit query reads the SQLite log back, newest first.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::http::StatusCode;
use writ_audit::{AuditLog, AuditOptions, Format};
use writ_runtime::{Decision, Request};

use crate::error::ApiError;

/// The server's audit log.
#[derive(Debug)]
pub struct Audit {
    log: AuditLog,
    path: PathBuf,
    sqlite: bool,
    /// Records removed by retention, and prunes that failed.
    pruned: AtomicU64,
    prune_failures: AtomicU64,
}

/// How often the server prunes its audit log (and once at start).
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

const DAY_MS: i64 = 86_400_000;

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
    pub context: serde_json::Value,
}

impl Audit {
    /// Opens (appending to) the log at `path`: SQLite for `.db`,
    /// `.sqlite` and `.sqlite3`, JSON Lines otherwise.
    ///
    /// # Errors
    /// When the log cannot be opened.
    pub fn open(path: &Path, nice: u8) -> Result<Audit, String> {
        let format = Format::for_writing(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let sqlite = format == Format::Sqlite;
        let options = AuditOptions {
            nice,
            ..AuditOptions::default()
        };
        let log = AuditLog::open(path, options).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Audit {
            log,
            path: path.to_owned(),
            sqlite,
            pruned: AtomicU64::new(0),
            prune_failures: AtomicU64::new(0),
        })
    }

    /// Whether the log is SQLite (which can be queried and pruned).
    #[must_use]
    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    /// Removes the records written more than `days` days before
    /// `now_ms` (`writ_audit::prune_sqlite`: oldest batches first, the
    /// log kept verifiable by its anchor). `Ok(None)`: nothing to do
    /// (`days` is 0, or the log is JSON Lines, which is never pruned).
    /// Runs beside the writer, which waits for SQLite's lock for
    /// milliseconds at most.
    ///
    /// # Errors
    /// When the log cannot be pruned (counted in `/metrics`).
    pub fn prune(&self, days: u32, now_ms: i64) -> Result<Option<writ_audit::PruneReport>, String> {
        if days == 0 || !self.sqlite {
            return Ok(None);
        }
        let cutoff = now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
        match writ_audit::prune_sqlite(&self.path, cutoff) {
            Ok(report) => {
                self.pruned.fetch_add(report.records, Relaxed);
                Ok(Some(report))
            }
            Err(e) => {
                self.prune_failed();
                Err(e.to_string())
            }
        }
    }

    /// Counts a prune that failed before it reached the log.
    pub fn prune_failed(&self) {
        self.prune_failures.fetch_add(1, Relaxed);
    }

    /// The counters `/metrics` shows.
    #[must_use]
    pub fn counts_for_metrics(&self) -> crate::metrics::AuditCounts {
        crate::metrics::AuditCounts {
            dropped: self.log.dropped(),
            pruned: self.pruned.load(Relaxed),
            prune_failures: self.prune_failures.load(Relaxed),
        }
    }

    /// Records a decision whose reason (`d.reason_text(req)`) is `reason`.
    pub fn record(
        &self,
        req: &Request,
        d: &Decision<'_>,
        revision: &Arc<str>,
        reason: Option<&str>,
    ) {
        self.log
            .record_decision_with_reason(req, d, revision, d.time_ms, reason);
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

    /// How many records the log holds, allowed and denied (the records
    /// are not read).
    ///
    /// # Errors
    /// As [`Audit::query`].
    pub fn counts(&self) -> Result<Counts, ApiError> {
        if !self.sqlite {
            return Err(not_queryable(&self.path));
        }
        self.count_sqlite().map_err(ApiError::internal)
    }

    fn count_sqlite(&self) -> Result<Counts, String> {
        self.flush()?;
        let c = writ_audit::sqlite_counts(&self.path).map_err(|e| e.to_string())?;
        Ok(Counts {
            total: c.total,
            allowed: c.allowed,
            denied: c.denied,
        })
    }

    /// Walks the log back from its newest record, reading each line,
    /// until it has `limit` that match (batches wholly outside the time
    /// window are not read).
    fn query_sqlite(&self, q: &Query) -> Result<Vec<Entry>, String> {
        self.flush()?;
        let mut out = Vec::new();
        if q.limit == 0 {
            return Ok(out);
        }
        let (from, to) = (q.from_ms.unwrap_or(i64::MIN), q.to_ms.unwrap_or(i64::MAX));
        let window = (q.from_ms.is_some() || q.to_ms.is_some()).then_some((from, to));
        let wanted = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        writ_audit::sqlite_newest_first(&self.path, window, |line| {
            // A line that does not read is skipped (`writ audit verify`
            // names it).
            let Ok(r) = serde_json::from_str::<Line>(line) else {
                return ControlFlow::Continue(());
            };
            let Ok(time_ms) = r
                .time
                .parse::<jiff::Timestamp>()
                .map(|t| t.as_millisecond())
            else {
                return ControlFlow::Continue(());
            };
            if wanted(&q.decision, &r.decision)
                && wanted(&q.agent, &r.agent)
                && wanted(&q.action, &r.action)
                && (from..=to).contains(&time_ms)
            {
                out.push(Entry {
                    id: r.id,
                    time_ms,
                    trace_id: r.trace_id,
                    agent: r.agent,
                    action: r.action,
                    target: r.target,
                    decision: r.decision,
                    rule: r.rule,
                    reason: r.reason,
                    context: r.context,
                });
            }
            if out.len() >= q.limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// The fields of a record's canonical line the audit query answers with.
#[derive(serde::Deserialize)]
struct Line {
    id: String,
    time: String,
    trace_id: Option<String>,
    agent: String,
    action: String,
    target: Option<String>,
    decision: String,
    rule: Option<String>,
    reason: Option<String>,
    context: serde_json::Value,
}
