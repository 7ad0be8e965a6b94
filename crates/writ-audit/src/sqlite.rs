//! The SQLite sink.
//!
//! A new log holds one row per batch in table `audit_batch`: the batch's
//! canonical lines as a JSON array (`[` line `,\n` line … `]`, each line
//! exactly as a JSON Lines log would hold it), and for queries that need
//! not read them, the first and last sequence number, the least and the
//! greatest time, and the counts of records, allows and denials. View `audit` shows one row per
//! record, with the columns of the older layout, through SQLite's JSON
//! functions. One row per batch rather than per record: an SQLite row
//! cost `writ serve` about 2 µs of server CPU per decision (a tenth of a
//! decision), a batch row a few hundredths of that per record.
//!
//! Logs made before 2026-12-06 hold one row per record in table `audit`;
//! they are continued, read and verified in that layout, each row's
//! canonical line rebuilt from its columns (so a changed column fails its
//! hash like a changed JSON Lines line).
//!
//! Either way verifying reads the lines in storage order and checks the
//! chain; the counts and bounds of a batch row are never trusted by it.

use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use writ_runtime::Effect;

use super::canonical::{Head, hex, hex_into, unhex, write_body};
use super::verify::{Pruned, Verifier, VerifyReport, parse_line};
use super::{AuditError, BackgroundSync, Batch, ChainHead, Sink};

/// The batch layout: the table and the per-record view.
const BATCH_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS audit_batch (
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    min_ms INTEGER NOT NULL,
    max_ms INTEGER NOT NULL,
    records_n INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    denied INTEGER NOT NULL,
    records TEXT NOT NULL,
    written_ms INTEGER
);
CREATE VIEW IF NOT EXISTS audit AS SELECT
    json_extract(r.value, '$.seq') AS seq,
    json_extract(r.value, '$.id') AS id,
    CAST(round((julianday(json_extract(r.value, '$.time')) - 2440587.5) * 86400000.0) AS INTEGER) AS time_ms,
    json_extract(r.value, '$.trace_id') AS trace_id,
    json_extract(r.value, '$.agent') AS agent,
    json_extract(r.value, '$.chain') AS chain,
    json_extract(r.value, '$.action') AS action,
    json_extract(r.value, '$.target') AS target,
    json_extract(r.value, '$.context') AS context,
    json_extract(r.value, '$.decision') AS decision,
    json_extract(r.value, '$.rule') AS rule,
    json_extract(r.value, '$.reason') AS reason,
    json_extract(r.value, '$.risk') AS risk,
    json_extract(r.value, '$.retry_after_s') AS retry_after_s,
    json_extract(r.value, '$.revision') AS revision,
    json_extract(r.value, '$.prev') AS prev,
    json_extract(r.value, '$.hash') AS hash
FROM audit_batch AS b, json_each(b.records) AS r;";

const INSERT_BATCH: &str = "INSERT INTO audit_batch \
    (first_seq, last_seq, min_ms, max_ms, records_n, allowed, denied, records, written_ms) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Where a pruned log starts: one row per prune, the newest last. Made
/// by the first prune.
const ANCHOR_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS audit_anchor (
    through_seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    pruned_records INTEGER NOT NULL,
    pruned_at_ms INTEGER NOT NULL,
    cutoff_ms INTEGER NOT NULL
)";

/// How a log's records are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// One row per batch (`audit_batch`), new logs.
    Batches,
    /// One row per record (table `audit`), logs made before 2026-12-06.
    Rows,
}

/// The layout of an open database; `None` when it holds no log yet.
fn layout(conn: &Connection) -> rusqlite::Result<Option<Layout>> {
    let kind: Option<String> = conn
        .query_row(
            "SELECT type FROM sqlite_master WHERE name = 'audit'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match kind.as_deref() {
        Some("table") => Some(Layout::Rows),
        Some(_) => Some(Layout::Batches),
        None => None,
    })
}

/// The lock a log's writer holds: on `<log>-writer`, created if missing
/// and left in place (as SQLite leaves `-wal` and `-shm`).
fn writer_lock(path: &Path) -> Result<std::fs::File, AuditError> {
    let mut name = path.as_os_str().to_owned();
    name.push("-writer");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|source| AuditError::Io {
            path: lock_path.clone(),
            source,
        })?;
    super::error::lock_writer(&file, path)?;
    Ok(file)
}

/// Whether the batch table has its `written_ms` column.
fn has_written_ms(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('audit_batch') WHERE name = 'written_ms'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// The latest prune's anchor, if the log was ever pruned.
fn anchor(conn: &Connection) -> rusqlite::Result<Option<Pruned>> {
    let exists: bool = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_anchor'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !exists {
        return Ok(None);
    }
    conn.query_row(
        "SELECT through_seq, hash, pruned_at_ms, \
         (SELECT COALESCE(SUM(pruned_records), 0) FROM audit_anchor) \
         FROM audit_anchor ORDER BY rowid DESC LIMIT 1",
        [],
        // A column of the wrong type reads as 0 or empty: the verifier
        // then reports the anchor as malformed, which it is.
        |r| {
            let count = |i: usize| {
                r.get::<_, i64>(i)
                    .ok()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0)
            };
            Ok(Pruned {
                through_seq: count(0),
                hash: r.get(1).unwrap_or_default(),
                at_ms: r.get(2).unwrap_or(0),
                records: count(3),
            })
        },
    )
    .optional()
}

/// Where the chain of a log with no records stands: after its last
/// prune's anchor, or at the start. `None`: the anchor is malformed.
fn anchor_head(conn: &Connection) -> rusqlite::Result<Option<ChainHead>> {
    Ok(match anchor(conn)? {
        None => Some(ChainHead::GENESIS),
        Some(a) => unhex(a.hash.as_bytes()).map(|hash| ChainHead {
            seq: a.through_seq,
            hash,
        }),
    })
}

/// The records of a batch row, each line as written. `None`: the text is
/// not a batch's array.
fn batch_lines(records: &str) -> Option<Vec<&str>> {
    let inner = records.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    // A line never holds a raw newline (JSON escapes it): every newline
    // follows the comma that ends a line but the last.
    let mut lines: Vec<&str> = inner.split('\n').collect();
    if let Some((_, before)) = lines.split_last_mut() {
        for line in before {
            *line = line.strip_suffix(',')?;
        }
    }
    Some(lines)
}

/// A record's row in the per-record layout of older logs (table `audit`:
/// these columns, no index beyond the rowid in logs made since 2026-12-05).
const INSERT: &str = "INSERT INTO audit (seq, id, time_ms, trace_id, agent, chain, action, \
    target, context, decision, rule, reason, risk, retry_after_s, revision, prev, hash) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

const SELECT_FIELDS: &str = "SELECT seq, id, time_ms, trace_id, agent, chain, action, target, \
    context, decision, rule, reason, risk, retry_after_s, revision, prev, hash FROM audit";

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
    /// The writer's lock, on `<log>-writer` beside the database (not on
    /// the database: SQLite's own locks there must not be disturbed).
    _lock: std::fs::File,
    path: PathBuf,
    head: ChainHead,
    layout: Layout,
    /// A batch row's `records`, reused.
    text: String,
    /// The writer's automatic checkpoint, in pages, when the syncing
    /// thread checkpoints too.
    wal_pages: u32,
}

impl SqliteSink {
    /// Opens (or creates) a log; an existing log's chain is continued from
    /// its last record, in its own layout.
    ///
    /// # Errors
    /// [`AuditError::Sqlite`] when the database cannot be opened or set up;
    /// [`AuditError::Corrupt`] when the last record is malformed.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteSink, AuditError> {
        let path = path.as_ref().to_path_buf();
        let lock = writer_lock(&path)?;
        let conn = Connection::open(&path).map_err(sql(&path))?;
        // A new database's page size (an existing one keeps its own):
        // fewer, larger pages for a batch's commit to write.
        conn.pragma_update(None, "page_size", 16384)
            .map_err(sql(&path))?;
        // WAL with synchronous=NORMAL: each batch's commit survives the
        // process being killed; `sync` checkpoints, which syncs the WAL,
        // for the power-loss promise of `flush`.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql(&path))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql(&path))?;
        let layout = match layout(&conn).map_err(sql(&path))? {
            Some(l) => l,
            None => {
                conn.execute_batch(BATCH_SCHEMA).map_err(sql(&path))?;
                Layout::Batches
            }
        };
        if layout == Layout::Batches && !has_written_ms(&conn).map_err(sql(&path))? {
            // A batch log from before retention: its older batches have
            // no write time (pruning goes by their greatest record time).
            conn.execute_batch("ALTER TABLE audit_batch ADD COLUMN written_ms INTEGER")
                .map_err(sql(&path))?;
        }
        let corrupt = |why: &str| AuditError::Corrupt {
            path: path.clone(),
            why: format!("{why}; run `writ audit verify` on it and start a new log"),
        };
        let head = match layout {
            Layout::Rows => {
                let last: Option<(i64, String)> = conn
                    .query_row(
                        "SELECT seq, hash FROM audit ORDER BY rowid DESC LIMIT 1",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(sql(&path))?;
                match last {
                    None => anchor_head(&conn)
                        .map_err(sql(&path))?
                        .ok_or_else(|| corrupt("the prune anchor's hash is malformed"))?,
                    Some((seq, hash)) => ChainHead {
                        seq: u64::try_from(seq).unwrap_or(0),
                        hash: unhex(hash.as_bytes())
                            .ok_or_else(|| corrupt("the last row's hash is malformed"))?,
                    },
                }
            }
            Layout::Batches => {
                let last: Option<String> = conn
                    .query_row(
                        "SELECT records FROM audit_batch ORDER BY rowid DESC LIMIT 1",
                        [],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql(&path))?;
                match last {
                    None => anchor_head(&conn)
                        .map_err(sql(&path))?
                        .ok_or_else(|| corrupt("the prune anchor's hash is malformed"))?,
                    Some(records) => {
                        let line = batch_lines(&records)
                            .and_then(|lines| lines.last().copied())
                            .ok_or_else(|| corrupt("the last batch holds no records"))?;
                        let info = parse_line(line.as_bytes()).map_err(|why| {
                            corrupt(&format!("the last record is malformed ({why})"))
                        })?;
                        ChainHead {
                            seq: info.seq,
                            hash: info.hash,
                        }
                    }
                }
            }
        };
        Ok(SqliteSink {
            conn,
            _lock: lock,
            path,
            head,
            layout,
            text: String::new(),
            wal_pages: WAL_PAGES,
        })
    }

    /// How many pages the WAL may grow to before the writer checkpoints
    /// on its own, when the log checkpoints on its syncing thread
    /// (default [`WAL_PAGES`]; SQLite's pages, 16 KiB in a new log). The
    /// WAL file stays about this large between checkpoints.
    #[must_use]
    pub fn with_wal_pages(mut self, pages: u32) -> SqliteSink {
        self.wal_pages = pages.max(1);
        self
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
        if batch.is_empty() {
            return Ok(());
        }
        if self.layout == Layout::Batches {
            // One statement: SQLite commits it on its own.
            return self.insert_batch(batch).map_err(to_io);
        }
        // BEGIN and COMMIT as prepared statements (a `Transaction` parses
        // both again for every batch); a failed batch is rolled back.
        self.conn
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(to_io)?;
        let written = self.insert_rows(batch).and_then(|()| {
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
        make_durable(&self.conn).map(drop)
    }

    /// Checkpoints through a second connection, on the log's syncing
    /// thread, so that copying the WAL into the database (and its two
    /// fsyncs) no longer holds up the writer. The writer's own automatic
    /// checkpoint stays, at [`SqliteSink::with_wal_pages`] pages: the WAL
    /// is reused from its start only after a checkpoint that caught up
    /// with every frame, which one running beside the writer seldom does.
    /// `None` (the writer then checkpoints itself, as before) when the
    /// second connection cannot be opened or set up.
    fn background_sync(&mut self) -> Option<BackgroundSync> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        // The checkpoint syncs by its own connection's setting (NORMAL
        // syncs the WAL and the database), whatever SQLite's build default.
        conn.pragma_update(None, "synchronous", "NORMAL").ok()?;
        self.conn
            .pragma_update(None, "wal_autocheckpoint", self.wal_pages)
            .ok()?;
        Some(Box::new(move || make_durable(&conn).map(drop)))
    }
}

/// How many pages of WAL the writer lets grow before it checkpoints
/// itself, when the syncing thread checkpoints too (16 KiB pages: 64 MiB).
pub const WAL_PAGES: u32 = 4096;

/// How [`make_durable`] made the log durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durable {
    /// The checkpoint reached the WAL's last frame. Every checkpoint that
    /// copies anything syncs the WAL first, and one that copies nothing
    /// found every frame copied by an earlier one, which did; the WAL is
    /// only reused from its start after a checkpoint that caught up and
    /// synced the database. Either way each committed frame is on disk,
    /// in the WAL or in the database.
    Checkpointed,
    /// Another checkpoint was running, or a reader kept part of the WAL
    /// from the database: the WAL file was synced instead.
    WalSynced,
}

/// Makes durable everything committed to `conn`'s database before the
/// call: a passive checkpoint (which waits for no reader or writer), and
/// when that did not reach the WAL's last frame — a reader's snapshot
/// holds frames back, or another connection was checkpointing — an fsync
/// of the WAL itself, whose committed frames SQLite recovers after a
/// crash (what `synchronous=FULL` does on every commit).
///
/// The WAL is found where SQLite put it: beside the database's path as
/// SQLite resolved it (through symbolic links), not as the caller spelled
/// it.
///
/// # Errors
/// Any SQLite error but busy; the WAL missing (it cannot be, while a
/// connection is open) or its fsync failing.
fn make_durable(conn: &Connection) -> io::Result<Durable> {
    let row = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    match row {
        // Not busy, and the checkpoint reached the last frame (see
        // `Durable::Checkpointed`). In a database not in WAL mode both
        // are -1: each commit was synced.
        Ok((0, log, done)) if done >= log => return Ok(Durable::Checkpointed),
        Ok(_) => {}
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
        Err(e) => return Err(to_io(e)),
    }
    let Some(db) = conn.path().filter(|p| !p.is_empty()) else {
        return Err(io::Error::other(
            "the audit database has no file name: its WAL cannot be synced",
        ));
    };
    let mut wal = std::ffi::OsString::from(db);
    wal.push("-wal");
    // Opened for writing (no create, no truncate): some systems sync only
    // a handle that may write.
    std::fs::OpenOptions::new()
        .append(true)
        .open(PathBuf::from(wal))?
        .sync_data()?;
    Ok(Durable::WalSynced)
}

impl SqliteSink {
    /// Inserts a batch as one row.
    fn insert_batch(&mut self, batch: &Batch) -> rusqlite::Result<()> {
        // The batch's text is its lines, each ending in a newline (built
        // of text only; a batch that is not is refused, not dropped).
        let lines = std::str::from_utf8(batch.bytes()).map_err(rusqlite::Error::Utf8Error)?;
        self.text.clear();
        self.text.reserve(lines.len() + batch.len() + 2);
        self.text.push('[');
        for (i, line) in lines.split_terminator('\n').enumerate() {
            if i > 0 {
                self.text.push_str(",\n");
            }
            self.text.push_str(line);
        }
        self.text.push(']');
        // A record's time is its decision's clock, which a request's `at`
        // sets: the times of a batch are in no order, so its bounds are
        // the least and the greatest.
        let (mut first_seq, mut last_seq) = (None, 0);
        let (mut min_ms, mut max_ms) = (i64::MAX, i64::MIN);
        let (mut allowed, mut denied) = (0i64, 0i64);
        for r in batch.records() {
            first_seq.get_or_insert(r.seq());
            last_seq = r.seq();
            min_ms = min_ms.min(r.time_ms());
            max_ms = max_ms.max(r.time_ms());
            match r.decision() {
                Effect::Allow => allowed += 1,
                Effect::Deny => denied += 1,
                Effect::Approve => {}
            }
        }
        let seq = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        self.conn.prepare_cached(INSERT_BATCH)?.execute(params![
            seq(first_seq.unwrap_or(0)),
            seq(last_seq),
            min_ms,
            max_ms,
            i64::try_from(batch.len()).unwrap_or(i64::MAX),
            allowed,
            denied,
            self.text,
            super::now_ms(),
        ])?;
        Ok(())
    }

    /// Inserts a batch's rows, one per record (older logs; inside the
    /// batch's transaction).
    fn insert_rows(&mut self, batch: &Batch) -> rusqlite::Result<()> {
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

/// A stored unit as a reader sees it: a record's line, or something
/// that is not one (a column of the wrong type, a batch that is not an
/// array of records).
enum Stored<'a> {
    Line(&'a str),
    Bad(&'static str),
}

/// Visits every record of an open log, in storage order or newest
/// first, until `f` breaks. `window` (Unix ms, inclusive) skips rows and
/// batches wholly outside it; a batch that overlaps it is visited whole.
fn visit(
    conn: &Connection,
    path: &Path,
    newest_first: bool,
    window: Option<(i64, i64)>,
    mut f: impl FnMut(Stored<'_>) -> ControlFlow<()>,
) -> Result<(), AuditError> {
    let order = if newest_first { "DESC" } else { "ASC" };
    let (from, to) = window.unwrap_or((i64::MIN, i64::MAX));
    match layout(conn).map_err(sql(path))? {
        None => Ok(()),
        Some(Layout::Rows) => {
            let mut stmt = conn
                .prepare(&format!(
                    "{SELECT_FIELDS} WHERE time_ms BETWEEN ?1 AND ?2 ORDER BY rowid {order}"
                ))
                .map_err(sql(path))?;
            let mut rows = stmt.query(params![from, to]).map_err(sql(path))?;
            while let Some(r) = rows.next().map_err(sql(path))? {
                let flow = match read_row(r) {
                    Ok(row) => f(Stored::Line(&row_line(&row))),
                    Err(_) => f(Stored::Bad("(a column of the wrong type)")),
                };
                if flow.is_break() {
                    break;
                }
            }
            Ok(())
        }
        Some(Layout::Batches) => {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT records FROM audit_batch WHERE max_ms >= ?1 AND min_ms <= ?2 \
                     ORDER BY rowid {order}"
                ))
                .map_err(sql(path))?;
            let mut rows = stmt.query(params![from, to]).map_err(sql(path))?;
            while let Some(r) = rows.next().map_err(sql(path))? {
                let records: Option<String> = r.get(0).ok();
                let flow = match records.as_deref().and_then(batch_lines) {
                    None => f(Stored::Bad("(a batch that is not an array of records)")),
                    Some(lines) if newest_first => {
                        lines.into_iter().rev().try_for_each(|l| f(Stored::Line(l)))
                    }
                    Some(lines) => lines.into_iter().try_for_each(|l| f(Stored::Line(l))),
                };
                if flow.is_break() {
                    break;
                }
            }
            Ok(())
        }
    }
}

/// Every record of an SQLite log as its canonical JSON line, in storage
/// order, all in memory ([`sqlite_in_order`] streams them).
///
/// # Errors
/// [`AuditError::Sqlite`] when the database cannot be read.
pub fn read_sqlite(path: impl AsRef<Path>) -> Result<Vec<String>, AuditError> {
    let mut out = Vec::new();
    sqlite_in_order(path, |l| {
        out.push(l.to_owned());
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// The records' lines of a log opened read-only, in the order asked,
/// until `f` breaks; a unit that holds no record is skipped.
fn each_line(
    path: &Path,
    newest_first: bool,
    window: Option<(i64, i64)>,
    mut f: impl FnMut(&str) -> ControlFlow<()>,
) -> Result<(), AuditError> {
    let conn = open_read_only(path)?;
    visit(&conn, path, newest_first, window, |s| match s {
        Stored::Line(l) => f(l),
        Stored::Bad(_) => ControlFlow::Continue(()),
    })
}

/// The records of an SQLite log in storage order, until `f` breaks:
/// each record's canonical JSON line, one at a time (a batch's lines are
/// held while it is read, never the whole log). A unit that holds no
/// record is skipped; `verify_sqlite` names it.
///
/// # Errors
/// [`AuditError::Sqlite`] when the database cannot be read.
pub fn sqlite_in_order(
    path: impl AsRef<Path>,
    f: impl FnMut(&str) -> ControlFlow<()>,
) -> Result<(), AuditError> {
    each_line(path.as_ref(), false, None, f)
}

/// The records of an SQLite log, newest first, until `f` breaks: each
/// record's canonical JSON line (a unit that holds none is skipped;
/// `verify_sqlite` names it). With `window` (Unix ms, inclusive), rows
/// and batches wholly outside it are not read; a batch that overlaps it
/// is visited whole, so `f` still filters by time.
///
/// # Errors
/// [`AuditError::Sqlite`] when the database cannot be read.
pub fn sqlite_newest_first(
    path: impl AsRef<Path>,
    window: Option<(i64, i64)>,
    f: impl FnMut(&str) -> ControlFlow<()>,
) -> Result<(), AuditError> {
    each_line(path.as_ref(), true, window, f)
}

/// How many records an SQLite log holds, and how many allowed and denied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SqliteCounts {
    pub total: u64,
    pub allowed: u64,
    pub denied: u64,
}

/// Counts an SQLite log's records without reading them: from the batch
/// rows' counts (which the writer wrote; `verify_sqlite` does not trust
/// them), or, in the per-record layout, by SQL.
///
/// # Errors
/// [`AuditError::Sqlite`] when the database cannot be read.
pub fn sqlite_counts(path: impl AsRef<Path>) -> Result<SqliteCounts, AuditError> {
    let path = path.as_ref();
    let conn = open_read_only(path)?;
    let query = match layout(&conn).map_err(sql(path))? {
        None => return Ok(SqliteCounts::default()),
        Some(Layout::Rows) => {
            "SELECT COUNT(*), COALESCE(SUM(decision = 'allow'), 0), \
             COALESCE(SUM(decision = 'deny'), 0) FROM audit"
        }
        Some(Layout::Batches) => {
            "SELECT COALESCE(SUM(records_n), 0), COALESCE(SUM(allowed), 0), \
             COALESCE(SUM(denied), 0) FROM audit_batch"
        }
    };
    conn.query_row(query, [], |r| {
        let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
        Ok(SqliteCounts {
            total: n(0)?,
            allowed: n(1)?,
            denied: n(2)?,
        })
    })
    .map_err(sql(path))
}

/// What [`prune_sqlite`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Records removed (as the batch rows count them).
    pub records: u64,
    /// Batch rows (or, in the older layout, record rows) removed.
    pub rows: u64,
    /// The anchor the log now starts after (`None`: never pruned).
    pub anchor: Option<Pruned>,
}

/// How many batches (or, in the older layout, rows) one prune
/// transaction removes: each holds SQLite's write lock briefly, so a
/// server's audit writer waits milliseconds at most.
const PRUNE_BATCHES: i64 = 64;
const PRUNE_ROWS: i64 = 16_384;

/// Removes an SQLite log's oldest records: every batch written before
/// `cutoff_ms` (Unix ms), up to the first that was not, and records the
/// last removed record's sequence number and hash as the log's
/// **anchor** (table `audit_anchor`), from which [`verify_sqlite`] then
/// checks the chain. Only a prefix is removed, so the log stays one
/// chain. A batch's age is when it was written; batches from before
/// retention existed have no write time and go by their latest record's
/// time (which a request's `at` sets). Logs in the older one-row-per-record
/// layout go by each record's time.
///
/// Runs in short transactions (a few dozen batches each), so a writer
/// appending to the same log meanwhile waits for SQLite's lock briefly
/// and is never refused. The file keeps its size: SQLite reuses the
/// freed pages for new records.
///
/// # Errors
/// [`AuditError::Sqlite`] when the database cannot be opened or changed;
/// [`AuditError::Corrupt`] when the last record to be removed cannot be
/// read (nothing is then removed from that point on). A file that holds
/// no log is an error, not an empty prune.
pub fn prune_sqlite(path: impl AsRef<Path>, cutoff_ms: i64) -> Result<PruneReport, AuditError> {
    let path = path.as_ref();
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(path))?;
    let Some(layout) = layout(&conn).map_err(sql(path))? else {
        return Err(AuditError::Corrupt {
            path: path.to_path_buf(),
            why: "it holds no audit log (no table `audit` or `audit_batch`)".to_owned(),
        });
    };
    let age = if layout == Layout::Batches && has_written_ms(&conn).map_err(sql(path))? {
        "COALESCE(written_ms, max_ms)"
    } else if layout == Layout::Batches {
        "max_ms"
    } else {
        "time_ms"
    };
    let mut report = PruneReport::default();
    loop {
        // IMMEDIATE: the write lock from the start, so what is read is
        // what is deleted.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(sql(path))?;
        let step = prune_step(&conn, path, layout, age, cutoff_ms);
        let step = match step {
            Ok(step) => {
                conn.execute_batch("COMMIT").map_err(sql(path))?;
                step
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        };
        report.records += step.records;
        report.rows += step.rows;
        if !step.more {
            break;
        }
    }
    report.anchor = anchor(&conn).map_err(sql(path))?;
    Ok(report)
}

/// What one prune transaction removed, and whether there may be more.
struct Step {
    records: u64,
    rows: u64,
    more: bool,
}

/// One prune transaction's work (inside it).
fn prune_step(
    conn: &Connection,
    path: &Path,
    layout: Layout,
    age: &str,
    cutoff_ms: i64,
) -> Result<Step, AuditError> {
    let (table, limit, count) = match layout {
        Layout::Batches => ("audit_batch", PRUNE_BATCHES, "records_n"),
        Layout::Rows => ("audit", PRUNE_ROWS, "1"),
    };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT rowid, {age}, {count} FROM {table} ORDER BY rowid LIMIT ?1"
        ))
        .map_err(sql(path))?;
    let mut rows = stmt.query([limit]).map_err(sql(path))?;
    let (mut last, mut taken, mut records, mut seen) = (None, 0u64, 0u64, 0i64);
    let mut stopped = false;
    while let Some(r) = rows.next().map_err(sql(path))? {
        seen += 1;
        let rowid: i64 = r.get(0).map_err(sql(path))?;
        // A time that is not a number is never old enough.
        let at: Option<i64> = r.get(1).ok();
        if at.is_none_or(|at| at >= cutoff_ms) {
            stopped = true;
            break;
        }
        last = Some(rowid);
        taken += 1;
        records += r
            .get::<_, i64>(2)
            .ok()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
    }
    drop(rows);
    drop(stmt);
    let Some(last) = last else {
        return Ok(Step {
            records: 0,
            rows: 0,
            more: false,
        });
    };
    let corrupt = |why: String| AuditError::Corrupt {
        path: path.to_path_buf(),
        why: format!("{why}; nothing from there on was pruned: run `writ audit verify` on it"),
    };
    let head = match layout {
        Layout::Batches => {
            let text: String = conn
                .query_row(
                    "SELECT records FROM audit_batch WHERE rowid = ?1",
                    [last],
                    |r| r.get(0),
                )
                .map_err(sql(path))?;
            let line = batch_lines(&text)
                .and_then(|lines| lines.last().copied())
                .ok_or_else(|| corrupt(format!("batch row {last} is not an array of records")))?;
            let info = parse_line(line.as_bytes()).map_err(|why| {
                corrupt(format!(
                    "the last record of batch row {last} is malformed ({why})"
                ))
            })?;
            (info.seq, hex(&info.hash))
        }
        Layout::Rows => {
            let (seq, hash): (i64, String) = conn
                .query_row(
                    "SELECT seq, hash FROM audit WHERE rowid = ?1",
                    [last],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sql(path))?;
            if unhex(hash.as_bytes()).is_none() {
                return Err(corrupt(format!("row {last}'s hash is malformed")));
            }
            (u64::try_from(seq).unwrap_or(0), hash)
        }
    };
    conn.execute_batch(ANCHOR_SCHEMA).map_err(sql(path))?;
    conn.execute(&format!("DELETE FROM {table} WHERE rowid <= ?1"), [last])
        .map_err(sql(path))?;
    conn.execute(
        "INSERT INTO audit_anchor (through_seq, hash, pruned_records, pruned_at_ms, cutoff_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            i64::try_from(head.0).unwrap_or(i64::MAX),
            head.1,
            i64::try_from(records).unwrap_or(i64::MAX),
            super::now_ms(),
            cutoff_ms,
        ],
    )
    .map_err(sql(path))?;
    Ok(Step {
        records,
        rows: taken,
        more: !stopped && seen == limit,
    })
}

/// Verifies an SQLite log, record by record in storage order.
///
/// # Errors
/// [`AuditError::Sqlite`] when the database or its tables cannot be
/// read. Tampering is not an error: it is in the report.
pub fn verify_sqlite(path: impl AsRef<Path>) -> Result<VerifyReport, AuditError> {
    let path = path.as_ref();
    let conn = open_read_only(path)?;
    let unit = match layout(&conn).map_err(sql(path))? {
        Some(Layout::Rows) => "row",
        _ => "record",
    };
    let mut verifier = match anchor(&conn).map_err(sql(path))? {
        Some(a) => Verifier::after_anchor(unit, a),
        None => Verifier::new(unit),
    };
    let mut n = 0u64;
    visit(&conn, path, false, None, |s| {
        n += 1;
        match s {
            Stored::Line(l) => verifier.record(n, l.as_bytes()),
            Stored::Bad(what) => verifier.record(n, what.as_bytes()),
        }
        ControlFlow::Continue(())
    })?;
    Ok(verifier.finish())
}

fn open_read_only(path: &Path) -> Result<Connection, AuditError> {
    Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails by panicking")]
    use super::*;

    fn database(name: &str) -> (PathBuf, Connection) {
        let dir =
            std::env::temp_dir().join(format!("writ-audit-durable-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x TEXT);",
        )
        .unwrap();
        (path, conn)
    }

    fn insert(conn: &Connection, n: usize) {
        for _ in 0..n {
            conn.execute("INSERT INTO t VALUES (?1)", [&"x".repeat(500)])
                .unwrap();
        }
    }

    /// A reader holding a snapshot of `path` open (until its `COMMIT`).
    fn snapshot(path: &Path) -> Connection {
        let reader = Connection::open(path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        reader
    }

    fn frames(conn: &Connection) -> (i64, i64) {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })
        .unwrap()
    }

    #[test]
    fn a_checkpoint_that_reaches_the_last_frame_is_enough() {
        let (path, writer) = database("all");
        insert(&writer, 50);
        let other = Connection::open(&path).unwrap();
        assert_eq!(make_durable(&other).unwrap(), Durable::Checkpointed);
        let (log, done) = frames(&writer);
        assert!(
            log > 0 && done == log,
            "{log} frames, {done} in the database"
        );
    }

    #[test]
    fn when_a_reader_holds_frames_back_the_wal_itself_is_synced() {
        let (path, writer) = database("reader");
        insert(&writer, 10);
        let other = Connection::open(&path).unwrap();
        assert_eq!(make_durable(&other).unwrap(), Durable::Checkpointed);
        // A reader's snapshot, taken now, keeps later frames out of the
        // database until it ends.
        let reader = snapshot(&path);
        insert(&writer, 10);
        assert_eq!(make_durable(&other).unwrap(), Durable::WalSynced);
        let (log, done) = frames(&writer);
        assert!(done < log, "{log} frames, {done} in the database");
        reader.execute_batch("COMMIT").unwrap();
        assert_eq!(make_durable(&other).unwrap(), Durable::Checkpointed);
    }

    #[cfg(unix)]
    #[test]
    fn a_database_reached_through_a_symbolic_link_has_its_wal_synced() {
        let (path, writer) = database("link");
        let link = path.with_file_name("link.db");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        // SQLite keeps the WAL beside the link's target: there is no
        // `link.db-wal` to sync, and finding none is an error.
        let other = Connection::open(&link).unwrap();
        let _reader = snapshot(&link); // held to the end
        insert(&writer, 10);
        assert!(!link.with_file_name("link.db-wal").exists());
        assert_eq!(make_durable(&other).unwrap(), Durable::WalSynced);
    }
}
