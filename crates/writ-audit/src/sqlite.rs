//! The SQLite sink: one row per record in table `audit`, one transaction
//! per batch. Verifying rebuilds each row's canonical line from its
//! columns, so a changed column fails its hash like a changed JSONL line.

use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::canonical::{Head, hex_into, unhex, write_body};
use super::verify::{Verifier, VerifyReport};
use super::{AuditError, Batch, ChainHead, Sink};

/// The table. No index beyond the rowid: rows go in in chain order, so
/// "newest first" is a backward walk of the rowid. The two secondary
/// indexes that logs made before 2026-12-06 have (on agent and time; they
/// keep them) cost about 3 µs of a `writ serve` decision's 17–22 µs of
/// server CPU. A filtered query walks back until it has its rows.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    trace_id TEXT,
    agent TEXT NOT NULL,
    chain TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    context TEXT NOT NULL,
    decision TEXT NOT NULL,
    rule TEXT,
    reason TEXT,
    risk TEXT,
    retry_after_s INTEGER,
    revision TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);";

const INSERT: &str = "INSERT INTO audit (seq, id, time_ms, trace_id, agent, chain, action, \
    target, context, decision, rule, reason, risk, retry_after_s, revision, prev, hash) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

const SELECT: &str = "SELECT seq, id, time_ms, trace_id, agent, chain, action, target, \
    context, decision, rule, reason, risk, retry_after_s, revision, prev, hash \
    FROM audit ORDER BY rowid";

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> AuditError + '_ {
    move |source| AuditError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// A write's SQLite error as the [`Sink`]'s `io::Error`: the
/// `rusqlite::Error` stays inside (`io::Error::get_ref` downcasts to it).
fn to_io(e: rusqlite::Error) -> io::Error {
    io::Error::other(e)
}

/// Writes records into an SQLite database (WAL mode).
#[derive(Debug)]
pub struct SqliteSink {
    conn: Connection,
    path: PathBuf,
    head: ChainHead,
}

impl SqliteSink {
    /// Opens (or creates) a database and its `audit` table; an existing
    /// table's chain is continued from its last row.
    ///
    /// # Errors
    /// [`AuditError::Sqlite`] when the database cannot be opened or set up;
    /// [`AuditError::Corrupt`] when the last row's hash is malformed.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteSink, AuditError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(sql(&path))?;
        // WAL with synchronous=NORMAL: each batch's commit survives the
        // process being killed; `sync` checkpoints, which syncs the WAL,
        // for the power-loss promise of `flush`.
        // A new database's page size (an existing one keeps its own).
        conn.pragma_update(None, "page_size", 16384)
            .map_err(sql(&path))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql(&path))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql(&path))?;
        conn.execute_batch(SCHEMA).map_err(sql(&path))?;
        let last: Option<(i64, String)> = conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY rowid DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql(&path))?;
        let head = match last {
            None => ChainHead::GENESIS,
            Some((seq, hash)) => ChainHead {
                seq: u64::try_from(seq).unwrap_or(0),
                hash: unhex(hash.as_bytes()).ok_or_else(|| {
                    AuditError::Corrupt {
                        path: path.clone(),
                        why: "the last row's hash is malformed; run `writ audit verify` on it and start a new log".to_owned(),
                    }
                })?,
            },
        };
        Ok(SqliteSink { conn, path, head })
    }

    /// The database this sink writes to.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for SqliteSink {
    fn head(&mut self) -> io::Result<ChainHead> {
        Ok(self.head)
    }

    fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
        // BEGIN and COMMIT as prepared statements (a `Transaction` parses
        // both again for every batch); a failed batch is rolled back.
        self.conn
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(to_io)?;
        let written = self.insert(batch).and_then(|()| {
            self.conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
        });
        if let Err(e) = written {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            return Err(to_io(e));
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(to_io)
    }
}

impl SqliteSink {
    /// Inserts a batch's rows (inside the batch's transaction).
    fn insert(&mut self, batch: &Batch) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(INSERT)?;
        let mut id = String::new();
        let (mut prev, mut hash) = ([0u8; 64], [0u8; 64]);
        for r in batch.records() {
            id.clear();
            {
                use std::fmt::Write as _;
                let _ = write!(id, "{}", r.id());
            }
            stmt.execute(params![
                i64::try_from(r.seq()).unwrap_or(i64::MAX),
                id,
                r.time_ms(),
                r.trace_id(),
                r.agent(),
                r.chain_json(),
                r.action(),
                r.target(),
                r.context_json(),
                r.decision().as_str(),
                r.rule(),
                r.reason(),
                r.risk().map(writ_runtime::Risk::as_str),
                r.retry_after_s()
                    .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
                r.revision(),
                hex_into(r.prev(), &mut prev),
                hex_into(r.hash(), &mut hash),
            ])?;
        }
        Ok(())
    }
}

/// One row, as stored.
struct Row {
    seq: i64,
    id: String,
    time_ms: i64,
    trace_id: Option<String>,
    agent: String,
    chain: String,
    action: String,
    target: Option<String>,
    context: String,
    decision: String,
    rule: Option<String>,
    reason: Option<String>,
    risk: Option<String>,
    retry_after_s: Option<i64>,
    revision: String,
    prev: String,
    hash: String,
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        seq: r.get(0)?,
        id: r.get(1)?,
        time_ms: r.get(2)?,
        trace_id: r.get(3)?,
        agent: r.get(4)?,
        chain: r.get(5)?,
        action: r.get(6)?,
        target: r.get(7)?,
        context: r.get(8)?,
        decision: r.get(9)?,
        rule: r.get(10)?,
        reason: r.get(11)?,
        risk: r.get(12)?,
        retry_after_s: r.get(13)?,
        revision: r.get(14)?,
        prev: r.get(15)?,
        hash: r.get(16)?,
    })
}

/// Rebuilds a row's canonical line: the body from the columns (which
/// the verifier hashes), then the stored hash.
fn row_line(row: &Row) -> String {
    let head = Head {
        seq: u64::try_from(row.seq).unwrap_or(0),
        id: row.id.as_bytes(),
        time_ms: row.time_ms,
        trace_id: row.trace_id.as_deref().map(str::as_bytes),
        agent: row.agent.as_bytes(),
        action: row.action.as_bytes(),
        target: row.target.as_deref().map(str::as_bytes),
        decision: &row.decision,
        rule: row.rule.as_deref().map(str::as_bytes),
        reason: row.reason.as_deref().map(str::as_bytes),
        risk: row.risk.as_deref(),
        retry_after_s: row.retry_after_s.and_then(|s| u64::try_from(s).ok()),
        revision: row.revision.as_bytes(),
        prev: row.prev.as_bytes(),
    };
    let mut line = Vec::new();
    write_body(
        &mut line,
        &head,
        |out| out.extend_from_slice(row.chain.as_bytes()),
        |out| out.extend_from_slice(row.context.as_bytes()),
    );
    // The stored hash as it is (the verifier compares it).
    line.extend_from_slice(b",\"hash\":\"");
    line.extend_from_slice(row.hash.as_bytes());
    line.extend_from_slice(b"\"}");
    // Built of text only.
    String::from_utf8(line).unwrap_or_default()
}

/// Every record of an SQLite log as its canonical JSON line, in storage
/// order (what `writ audit query` and `--export jsonl` read).
///
/// # Errors
/// [`AuditError::Sqlite`] when the database cannot be read.
pub fn read_sqlite(path: impl AsRef<Path>) -> Result<Vec<String>, AuditError> {
    let path = path.as_ref();
    let conn = open_read_only(path)?;
    let mut stmt = conn.prepare(SELECT).map_err(sql(path))?;
    let rows = stmt.query_map([], read_row).map_err(sql(path))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row_line(&row.map_err(sql(path))?));
    }
    Ok(out)
}

/// Verifies an SQLite log, row by row in insertion order.
///
/// # Errors
/// [`AuditError::Sqlite`] when the database or its `audit` table cannot be
/// read. Tampering is not an error: it is in the report.
pub fn verify_sqlite(path: impl AsRef<Path>) -> Result<VerifyReport, AuditError> {
    let path = path.as_ref();
    let conn = open_read_only(path)?;
    let mut stmt = conn.prepare(SELECT).map_err(sql(path))?;
    let mut rows = stmt.query([]).map_err(sql(path))?;
    let mut verifier = Verifier::new("row");
    let mut n = 0u64;
    while let Some(r) = rows.next().map_err(sql(path))? {
        n += 1;
        match read_row(r) {
            Ok(row) => verifier.record(n, row_line(&row).as_bytes()),
            // A column of the wrong type: not a record as written.
            Err(_) => verifier.record(n, b"(a column of the wrong type)"),
        }
    }
    Ok(verifier.finish())
}

fn open_read_only(path: &Path) -> Result<Connection, AuditError> {
    Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(path))
}
