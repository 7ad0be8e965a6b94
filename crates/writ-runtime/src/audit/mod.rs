//! The audit log: every decision recorded, hash-chained, off the hot path.
//!
//! The caller builds an owned [`AuditRecord`] after a decision and hands it
//! to [`AuditLog::record`], which gives it a [`DecisionId`] and moves it
//! into a bounded queue — no formatting, hashing, I/O or system call on
//! the calling thread. Two threads take it from there: a formatting
//! thread takes records off the queue in batches, masks configured context
//! keys, numbers each record and writes its canonical serialization and
//! most of its SHA-256 — everything that does not depend on the record
//! before it; a sealing thread then chains each record (the previous
//! record's hash, its own hash finished) and hands the batch to a
//! [`Sink`]: a JSON Lines file
//! ([`JsonlSink`]) or, with feature `audit-sqlite`, an SQLite database.
//! [`verify_jsonl`] (and `verify_sqlite`) check the chain and name the
//! records that were edited, deleted or reordered.
//!
//! ```
//! # fn main() -> Result<(), writ_runtime::audit::AuditError> {
//! use std::sync::Arc;
//! use writ_runtime::audit::{AuditLog, AuditRecord, verify_jsonl};
//! use writ_runtime::{Effect, Value};
//!
//! let path = std::env::temp_dir().join(format!("writ-audit-doc-{}.jsonl", std::process::id()));
//! let log = AuditLog::jsonl(&path)?;
//! let mut rec = AuditRecord::new("billing-agent", "tool:call", Effect::Allow, Arc::from("rev-1"));
//! rec.target = Some("refund".into());
//! rec.context.insert("api_key".into(), Value::String("sk-123".into())); // written as "***"
//! let id = log.record(rec);
//! log.shutdown()?; // or `log.flush()?` to keep logging
//! let report = verify_jsonl(&path)?;
//! assert!(report.is_intact() && report.records == 1, "{report} ({id})");
//! # std::fs::remove_file(&path).ok();
//! # Ok(()) }
//! ```
//!
//! Durability: a record is *acknowledged* once [`AuditLog::flush`] (or
//! [`AuditLog::shutdown`]) called after it returns `Ok`; it is then
//! written and synced to disk. Records are also written (not synced) by
//! the writer as it goes, within [`AuditOptions::interval`]. A process
//! that dies loses at most the records not yet written; a JSONL write cut
//! short leaves an unterminated last line, which `verify` reports as an
//! incomplete tail and which is cut off when the log is opened again.
//!
//! Failure: the first failing write stops the writer (records after it
//! are dropped and counted, see [`AuditLog::dropped`]); `flush` and
//! `shutdown` then return the error, and `record` never blocks on a
//! stopped writer.

mod canonical;
mod jsonl;
mod mask;
#[cfg(feature = "audit-sqlite")]
mod sqlite;
mod verify;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

pub use jsonl::{JsonlSink, verify_jsonl};
pub use mask::MASKED;
#[cfg(feature = "audit-sqlite")]
pub use sqlite::{SqliteSink, read_sqlite, verify_sqlite};
pub use verify::{At, IncompleteTail, Problem, VerifyReport};

use crate::{Decision, Effect, Header, Request, Risk, Value};
use canonical::{Head, Spans};

/// One decision, as recorded. Owned: the caller builds it on the hot path
/// and moves it into the log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    /// When the decision was made, in Unix milliseconds.
    pub time_ms: i64,
    pub trace_id: Option<String>,
    pub agent: String,
    /// The delegation chain, outermost first (empty when none).
    pub chain: Vec<String>,
    pub action: String,
    pub target: Option<String>,
    /// The request's context; keys matching [`AuditOptions::mask`] are
    /// masked by the writer before anything is written.
    pub context: BTreeMap<String, Value>,
    pub decision: Effect,
    pub rule: Option<String>,
    pub reason: Option<String>,
    pub risk: Option<Risk>,
    pub retry_after_s: Option<u64>,
    /// The policy revision that decided ([`revision_of`] of the bundle's
    /// header), shared between records.
    pub revision: Arc<str>,
}

impl AuditRecord {
    /// A record with the given essentials, made now, and nothing else.
    #[must_use]
    pub fn new(agent: &str, action: &str, decision: Effect, revision: Arc<str>) -> AuditRecord {
        AuditRecord {
            time_ms: now_ms(),
            trace_id: None,
            agent: agent.to_owned(),
            chain: Vec::new(),
            action: action.to_owned(),
            target: None,
            context: BTreeMap::new(),
            decision,
            rule: None,
            reason: None,
            risk: None,
            retry_after_s: None,
            revision,
        }
    }

    /// Makes this record the record of a decision made for a request at
    /// `time_ms`, reusing its buffers: what [`AuditLog::record_decision`]
    /// does with a record the writer has finished with.
    pub fn fill_from(
        &mut self,
        req: &Request,
        d: &Decision<'_>,
        revision: &Arc<str>,
        time_ms: i64,
    ) {
        self.time_ms = time_ms;
        self.trace_id.clone_from(&req.trace_id);
        self.agent.clone_from(&req.agent);
        self.chain.clone_from(&req.chain);
        self.action.clone_from(&req.action);
        self.target.clone_from(&req.target);
        clone_map_from(&mut self.context, &req.context);
        self.decision = d.effect;
        set_str(&mut self.rule, d.rule);
        set_str(&mut self.reason, d.reason_text(req).as_deref());
        self.risk = d.risk;
        self.retry_after_s = d.retry_after_s;
        if !Arc::ptr_eq(&self.revision, revision) {
            self.revision = Arc::clone(revision);
        }
    }

    /// The record of a decision made for a request at `time_ms`.
    #[must_use]
    pub fn from_decision(
        req: &Request,
        d: &Decision<'_>,
        revision: Arc<str>,
        time_ms: i64,
    ) -> AuditRecord {
        AuditRecord {
            time_ms,
            trace_id: req.trace_id.clone(),
            agent: req.agent.clone(),
            chain: req.chain.clone(),
            action: req.action.clone(),
            target: req.target.clone(),
            context: req.context.clone(),
            decision: d.effect,
            rule: d.rule.map(str::to_owned),
            reason: d.reason_text(req).map(std::borrow::Cow::into_owned),
            risk: d.risk,
            retry_after_s: d.retry_after_s,
            revision,
        }
    }
}

/// `to.clone_from(from)`, reusing `to`'s keys and values when it holds the
/// same keys (a recycled record of a request of the same shape): the
/// standard library's map clones everything anew.
pub fn clone_map_from(to: &mut BTreeMap<String, Value>, from: &BTreeMap<String, Value>) {
    if to.len() == from.len() && to.keys().zip(from.keys()).all(|(a, b)| a == b) {
        for (t, f) in to.values_mut().zip(from.values()) {
            clone_value_from(t, f);
        }
    } else {
        to.clone_from(from);
    }
}

fn clone_value_from(to: &mut Value, from: &Value) {
    match (to, from) {
        (Value::String(t), Value::String(f)) => t.clone_from(f),
        (Value::Map(t), Value::Map(f)) => clone_map_from(t, f),
        (Value::List(t), Value::List(f)) if t.len() == f.len() => {
            for (t, f) in t.iter_mut().zip(f) {
                clone_value_from(t, f);
            }
        }
        (to, from) => *to = from.clone(),
    }
}

/// Sets an optional string, reusing its buffer.
fn set_str(to: &mut Option<String>, from: Option<&str>) {
    match (to.as_mut(), from) {
        (Some(to), Some(from)) => {
            to.clear();
            to.push_str(from);
        }
        (_, from) => *to = from.map(str::to_owned),
    }
}

/// The current time in Unix milliseconds.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A bundle's revision as recorded: its SHA-256 in hex.
#[must_use]
pub fn revision_of(header: &Header) -> Arc<str> {
    Arc::from(canonical::hex(&header.revision))
}

/// A decision's id: a random prefix drawn when the log was opened and a
/// sequence number, printed `<16 hex digits>-<n>`. Unique across processes
/// (64 random bits per log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DecisionId {
    pub prefix: u64,
    pub seq: u64,
}

impl fmt::Display for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.prefix, self.seq)
    }
}

/// Where a log's chain stands: the last record's sequence number and hash
/// (`GENESIS` for an empty log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl ChainHead {
    /// An empty log: the first record is seq 1 and its `prev` is zeros.
    pub const GENESIS: ChainHead = ChainHead {
        seq: 0,
        hash: canonical::GENESIS,
    };
}

/// A record as written: masked, numbered, chained and hashed, with its
/// canonical JSON line.
#[derive(Debug)]
pub struct SealedRecord {
    seq: u64,
    id: DecisionId,
    record: Box<AuditRecord>,
    prev: [u8; 32],
    hash: [u8; 32],
    line: String,
    spans: Spans,
}

impl SealedRecord {
    /// The position in the log's chain (1 for the first record ever).
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }
    #[must_use]
    pub fn id(&self) -> DecisionId {
        self.id
    }
    /// The record, its context masked.
    #[must_use]
    pub fn record(&self) -> &AuditRecord {
        &self.record
    }
    /// The previous record's hash (zeros for the first).
    #[must_use]
    pub fn prev(&self) -> &[u8; 32] {
        &self.prev
    }
    /// SHA-256 of the canonical line up to its `hash` field.
    #[must_use]
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
    /// The canonical JSON line, without a newline.
    #[must_use]
    pub fn line(&self) -> &str {
        &self.line
    }
    /// The delegation chain as JSON, as it appears in the line.
    #[must_use]
    pub fn chain_json(&self) -> &str {
        self.line.get(self.spans.chain.clone()).unwrap_or("[]")
    }
    /// The masked context as JSON, as it appears in the line.
    #[must_use]
    pub fn context_json(&self) -> &str {
        self.line.get(self.spans.context.clone()).unwrap_or("{}")
    }
}

/// Where sealed records go. Called on the writer thread only.
pub trait Sink: Send {
    /// Where an existing log's chain stands, to continue it (called once,
    /// when the log is made). The default is an empty log.
    ///
    /// # Errors
    /// When the sink cannot tell.
    fn head(&mut self) -> io::Result<ChainHead> {
        Ok(ChainHead::GENESIS)
    }

    /// Writes a batch, in order. After an error the log stops.
    ///
    /// # Errors
    /// Any I/O error; the records of the batch count as lost.
    fn write_batch(&mut self, records: &[SealedRecord]) -> io::Result<()>;

    /// Makes everything written so far durable (fsync or equivalent).
    ///
    /// # Errors
    /// Any I/O error.
    fn sync(&mut self) -> io::Result<()>;
}

/// How a log batches and masks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// Context keys whose values are written as `"***"`, at any depth:
    /// globs with `*` and `?`, matched against the whole key, ASCII
    /// letters in any case.
    pub mask: Vec<String>,
    /// The most records handed to the sink in one write.
    pub batch_size: usize,
    /// How long the writer waits before looking at an empty queue again
    /// (so that recording never has to wake it). After a second of
    /// silence it sleeps until the next record.
    pub interval: Duration,
    /// How many records the queue holds; `record` waits for room when the
    /// writer falls this far behind.
    pub capacity: usize,
}

impl Default for AuditOptions {
    fn default() -> AuditOptions {
        AuditOptions {
            mask: [
                "password",
                "*secret*",
                "*token*",
                "api_key",
                "apikey",
                "authorization",
                "cookie",
            ]
            .map(str::to_owned)
            .to_vec(),
            batch_size: 1024,
            interval: Duration::from_millis(2),
            capacity: 8192,
        }
    }
}

/// Why the log could not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditError {
    /// Opening, reading or writing failed.
    Io(String),
    /// An existing log cannot be continued (its last record is malformed).
    Corrupt(String),
    /// The writer stopped after an error; nothing is written any more.
    Stopped(String),
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::Io(why) => write!(f, "audit log: {why}"),
            AuditError::Corrupt(why) => write!(f, "audit log cannot be continued: {why}"),
            AuditError::Stopped(why) => write!(f, "audit log stopped: {why}"),
        }
    }
}

impl std::error::Error for AuditError {}

/// What the calling threads and the writer share, behind one lock held
/// only for a push or a swap.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Callers waiting for room in a full queue.
    room: Condvar,
    /// Callers of `flush` waiting for the writer.
    progress: Condvar,
}

#[derive(Debug)]
struct State {
    /// Records not yet taken by the writer, in order.
    queue: Vec<(DecisionId, Box<AuditRecord>)>,
    /// Records the writer has written, handed back to be filled again
    /// (their buffers reused, and freed, if ever, on the calling side).
    // Boxed on purpose: a record stays where it is while it travels
    // between threads (only the pointer moves), so filling it again
    // touches lines the writer only read.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<AuditRecord>>,
    /// Line buffers written, handed back to the formatting thread.
    lines: Vec<String>,
    capacity: usize,
    /// Records ever queued (the last decision id's number).
    queued: u64,
    /// Records written and synced (acknowledged).
    synced: u64,
    /// The highest `queued` a `flush` waits for.
    flush_to: u64,
    stopping: bool,
    /// The writer is gone; `failed` says why, if it failed.
    stopped: bool,
    failed: Option<AuditError>,
    dropped: u64,
    /// The writer sleeps until woken (after a second without records).
    asleep: bool,
    room_waiters: usize,
    progress_waiters: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across code that can panic; if it were
        // poisoned anyway, the state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The audit log: a queue and the writer thread behind it. `Send + Sync`;
/// share it (`Arc`) between threads. Dropping it flushes and stops the
/// writer (use [`AuditLog::shutdown`] to see errors).
#[derive(Debug)]
pub struct AuditLog {
    shared: Arc<Shared>,
    prefix: u64,
    /// The formatting thread (the one callers wake) and the sealing one.
    writer: Option<(JoinHandle<()>, JoinHandle<()>)>,
}

impl AuditLog {
    /// Starts a log writing to `sink`.
    ///
    /// # Errors
    /// When the sink cannot say where its chain stands, or the writer
    /// thread cannot be started.
    pub fn new(sink: impl Sink + 'static, options: AuditOptions) -> Result<AuditLog, AuditError> {
        let mut sink: Box<dyn Sink> = Box::new(sink);
        let head = sink
            .head()
            .map_err(|e| AuditError::Io(format!("cannot read the log's last record: {e}")))?;
        let capacity = options.capacity.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Vec::with_capacity(capacity.min(1024)),
                spare: Vec::new(),
                lines: Vec::new(),
                capacity,
                queued: 0,
                synced: 0,
                flush_to: 0,
                stopping: false,
                stopped: false,
                failed: None,
                dropped: 0,
                asleep: false,
                room_waiters: 0,
                progress_waiters: 0,
            }),
            room: Condvar::new(),
            progress: Condvar::new(),
        });
        let batch_size = options.batch_size.max(1);
        // One chunk in flight between the threads, one being made: the
        // formatter stays at most two batches ahead.
        let (to_sealer, from_formatter) = std::sync::mpsc::sync_channel(1);
        let formatter = Formatter {
            shared: Arc::clone(&shared),
            mask: mask::Mask::new(&options.mask),
            lines: Vec::new(),
            chunk_size: batch_size,
            seq: head.seq,
            id_buf: String::new(),
            to_sealer,
        };
        let sealer = Sealer {
            sink,
            shared: Arc::clone(&shared),
            batch: Vec::with_capacity(batch_size),
            lines: Vec::new(),
            done: Vec::new(),
            batch_size,
            prev: head.hash,
            prev_hex: canonical::hex(&head.hash),
            written: 0,
            synced: 0,
        };
        let interval = options.interval.max(Duration::from_micros(50));
        let spawn_error =
            |e: io::Error| AuditError::Io(format!("cannot start the writer threads: {e}"));
        let sealing = std::thread::Builder::new()
            .name("writ-audit-seal".to_owned())
            .spawn(move || sealer.run(&from_formatter))
            .map_err(spawn_error)?;
        let formatting = std::thread::Builder::new()
            .name("writ-audit".to_owned())
            .spawn(move || formatter.run(interval))
            .map_err(spawn_error)?;
        Ok(AuditLog {
            shared,
            prefix: random_prefix(),
            writer: Some((formatting, sealing)),
        })
    }

    /// A log appending to a JSON Lines file (created if missing,
    /// continued if not), with the default options.
    ///
    /// # Errors
    /// As [`JsonlSink::open`].
    pub fn jsonl(path: impl AsRef<std::path::Path>) -> Result<AuditLog, AuditError> {
        AuditLog::new(JsonlSink::open(path)?, AuditOptions::default())
    }

    /// A log writing to an SQLite database (created if missing, continued
    /// if not), with the default options.
    ///
    /// # Errors
    /// As [`SqliteSink::open`].
    #[cfg(feature = "audit-sqlite")]
    pub fn sqlite(path: impl AsRef<std::path::Path>) -> Result<AuditLog, AuditError> {
        AuditLog::new(SqliteSink::open(path)?, AuditOptions::default())
    }

    /// Records a decision: assigns its id and queues it. Cheap: an
    /// uncontended lock and a move — no formatting, hashing, I/O or system
    /// call — unless the queue is full (then it waits for room) or the
    /// writer is asleep after a second without records (then it wakes
    /// it). When the writer has stopped, the record is dropped and counted.
    pub fn record(&self, rec: AuditRecord) -> DecisionId {
        self.enqueue(|_| Box::new(rec))
    }

    /// Records the decision `d` made for `req` at `time_ms` by the bundle
    /// of `revision`: as [`AuditLog::record`] with
    /// [`AuditRecord::from_decision`], but filling a record the writer has
    /// finished with ([`AuditRecord::fill_from`]), so that in a steady
    /// state recording allocates nothing and frees nothing.
    pub fn record_decision(
        &self,
        req: &Request,
        d: &Decision<'_>,
        revision: &Arc<str>,
        time_ms: i64,
    ) -> DecisionId {
        self.record_with(|rec| rec.fill_from(req, d, revision, time_ms))
    }

    /// Records what `fill` writes into a recycled record (one the writer
    /// has finished with, holding an earlier decision, or a blank one):
    /// `fill` must set every field. Called under the log's lock: keep it
    /// short.
    pub fn record_with(&self, fill: impl FnOnce(&mut AuditRecord)) -> DecisionId {
        self.enqueue(|spare| {
            let mut rec = spare
                .pop()
                .unwrap_or_else(|| Box::new(AuditRecord::new("", "", Effect::Deny, Arc::from(""))));
            fill(&mut rec);
            rec
        })
    }

    fn enqueue(
        &self,
        make: impl FnOnce(&mut Vec<Box<AuditRecord>>) -> Box<AuditRecord>,
    ) -> DecisionId {
        let mut st = self.shared.lock();
        st.queued += 1;
        let id = DecisionId {
            prefix: self.prefix,
            seq: st.queued,
        };
        if st.stopped {
            st.dropped += 1;
            return id;
        }
        while st.queue.len() >= st.capacity && !st.stopped {
            self.wake();
            st.room_waiters += 1;
            st = self
                .shared
                .room
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
            st.room_waiters -= 1;
        }
        if st.stopped {
            st.dropped += 1;
            return id;
        }
        let rec = make(&mut st.spare);
        st.queue.push((id, rec));
        if st.asleep {
            st.asleep = false;
            drop(st);
            self.wake();
        }
        id
    }

    /// Returns once every record queued before the call is written and
    /// synced to disk.
    ///
    /// # Errors
    /// The write or sync error, or [`AuditError::Stopped`] when the writer
    /// stopped earlier.
    pub fn flush(&self) -> Result<(), AuditError> {
        let mut st = self.shared.lock();
        let target = st.queued;
        st.flush_to = st.flush_to.max(target);
        self.wake();
        while st.synced < target && !st.stopped {
            st.progress_waiters += 1;
            st = self
                .shared
                .progress
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
            st.progress_waiters -= 1;
        }
        if st.synced >= target {
            return Ok(());
        }
        Err(st
            .failed
            .clone()
            .unwrap_or_else(|| AuditError::Stopped("the writer thread is gone".to_owned())))
    }

    /// Flushes and stops the writer.
    ///
    /// # Errors
    /// As [`AuditLog::flush`].
    pub fn shutdown(mut self) -> Result<(), AuditError> {
        self.stop()
    }

    /// Records that could not be queued because the writer had stopped.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// The error that stopped the writer, if it stopped.
    #[must_use]
    pub fn error(&self) -> Option<AuditError> {
        self.shared.lock().failed.clone()
    }

    fn wake(&self) {
        if let Some((formatting, _)) = &self.writer {
            formatting.thread().unpark();
        }
    }

    fn stop(&mut self) -> Result<(), AuditError> {
        let Some((formatting, sealing)) = self.writer.take() else {
            return Ok(());
        };
        self.shared.lock().stopping = true;
        formatting.thread().unpark();
        let formatted = formatting.join();
        if sealing.join().is_err() || formatted.is_err() {
            return Err(AuditError::Stopped("the writer thread panicked".to_owned()));
        }
        match self.shared.lock().failed.clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// 64 bits that differ between logs and processes: std's randomly keyed
/// hasher over the process id and the time.
fn random_prefix() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// A record formatted up to its `prev`, its hash begun: what the
/// formatting thread hands the sealing thread.
struct Formatted {
    seq: u64,
    id: DecisionId,
    record: Box<AuditRecord>,
    line: String,
    spans: Spans,
    hash: canonical::Partial,
}

/// Records in order, and what the sealing thread must do after them.
struct Chunk {
    items: Vec<Formatted>,
    /// Sync if a flush waits for records up to this number.
    flush_to: u64,
    /// The last chunk: sync and stop.
    stopping: bool,
}

/// The formatting thread's state.
struct Formatter {
    shared: Arc<Shared>,
    mask: mask::Mask,
    /// Line buffers, reused.
    lines: Vec<String>,
    chunk_size: usize,
    seq: u64,
    id_buf: String,
    to_sealer: std::sync::mpsc::SyncSender<Chunk>,
}

impl Formatter {
    /// Takes the whole queue at each turn (swapping buffers under the
    /// lock), formats it and sends it on in chunks, and otherwise sleeps
    /// for `interval`: the callers never have to wake it, except after a
    /// second without records, when it sleeps until the next one.
    fn run(mut self, interval: Duration) {
        let idle_limit = (Duration::from_secs(1).as_micros() / interval.as_micros().max(1)).max(1);
        let mut idle = 0u128;
        let mut taken: Vec<(DecisionId, Box<AuditRecord>)> = Vec::new();
        let mut sent_flush = 0u64;
        loop {
            let (flush_to, stopping) = {
                let mut st = self.shared.lock();
                if st.stopped {
                    return;
                }
                std::mem::swap(&mut st.queue, &mut taken);
                self.lines.append(&mut st.lines);
                if st.room_waiters > 0 {
                    self.shared.room.notify_all();
                }
                (st.flush_to, st.stopping)
            };
            let got = !taken.is_empty();
            let mut items = Vec::with_capacity(taken.len().min(self.chunk_size));
            for (id, rec) in taken.drain(..) {
                items.push(self.format(id, rec));
                if items.len() >= self.chunk_size {
                    let chunk = Chunk {
                        items: std::mem::take(&mut items),
                        flush_to: 0,
                        stopping: false,
                    };
                    if self.to_sealer.send(chunk).is_err() {
                        return;
                    }
                }
            }
            if !items.is_empty() || flush_to > sent_flush || stopping {
                let chunk = Chunk {
                    items,
                    flush_to,
                    stopping,
                };
                if self.to_sealer.send(chunk).is_err() {
                    return;
                }
                sent_flush = flush_to;
            }
            if stopping {
                // `stop` set `stopping` before this turn's swap, and no
                // record can be queued after it: everything is sent.
                return;
            }
            let mut st = self.shared.lock();
            if got || !st.queue.is_empty() || st.stopping || st.flush_to > sent_flush {
                idle = 0;
                continue;
            }
            if idle < idle_limit {
                idle += 1;
                drop(st);
                std::thread::park_timeout(interval);
            } else {
                st.asleep = true;
                drop(st);
                std::thread::park();
            }
        }
    }

    fn format(&mut self, id: DecisionId, mut rec: Box<AuditRecord>) -> Formatted {
        self.mask.apply(&mut rec.context);
        self.seq += 1;
        // As `DecisionId`'s `Display`, without the formatting machinery.
        self.id_buf.clear();
        canonical::push_hex(&mut self.id_buf, &id.prefix.to_be_bytes());
        self.id_buf.push('-');
        canonical::push_u64(&mut self.id_buf, id.seq);
        let mut line = self.lines.pop().unwrap_or_default();
        let head = Head {
            seq: self.seq,
            id: &self.id_buf,
            time_ms: rec.time_ms,
            trace_id: rec.trace_id.as_deref(),
            agent: &rec.agent,
            action: &rec.action,
            target: rec.target.as_deref(),
            decision: rec.decision.as_str(),
            rule: rec.rule.as_deref(),
            reason: rec.reason.as_deref(),
            risk: rec.risk.map(Risk::as_str),
            retry_after_s: rec.retry_after_s,
            revision: &rec.revision,
            prev: "",
        };
        let spans = canonical::open_body(
            &mut line,
            &head,
            |out| canonical::push_str_list(out, &rec.chain),
            |out| canonical::push_map(out, &rec.context),
        );
        let hash = canonical::Partial::begin(&line);
        Formatted {
            seq: self.seq,
            id,
            record: rec,
            line,
            spans,
            hash,
        }
    }
}

/// The sealing thread's state.
struct Sealer {
    sink: Box<dyn Sink>,
    shared: Arc<Shared>,
    batch: Vec<SealedRecord>,
    /// Line buffers of written records, to hand back.
    lines: Vec<String>,
    /// Records written, to hand back to the callers.
    #[allow(clippy::vec_box)]
    done: Vec<Box<AuditRecord>>,
    batch_size: usize,
    prev: [u8; 32],
    prev_hex: String,
    /// Records written by this writer.
    written: u64,
    /// `written` when last synced.
    synced: u64,
}

impl Sealer {
    /// Chains, writes and (when a flush waits) syncs each chunk; hands
    /// the records and line buffers back; stops at the last chunk or the
    /// first error.
    fn run(mut self, from: &std::sync::mpsc::Receiver<Chunk>) {
        while let Ok(chunk) = from.recv() {
            let mut result = Ok(());
            for f in chunk.items {
                self.seal(f);
                if self.batch.len() >= self.batch_size {
                    result = self.write();
                    if result.is_err() {
                        break;
                    }
                }
            }
            if result.is_ok() {
                result = self.write();
            }
            let must_sync = chunk.stopping || chunk.flush_to > self.synced;
            if result.is_ok() && must_sync {
                result = self
                    .sink
                    .sync()
                    .map_err(|e| fail(&format!("sync failed: {e}")));
            }
            let mut st = self.shared.lock();
            let room = st.capacity.saturating_sub(st.spare.len());
            let back = self.done.len().min(room);
            st.spare.extend(self.done.drain(..back));
            let room = self
                .batch_size
                .saturating_mul(2)
                .saturating_sub(st.lines.len());
            let back = self.lines.len().min(room);
            st.lines.extend(self.lines.drain(..back));
            if let Err(e) = result {
                st.failed.get_or_insert(e);
                st.stopped = true;
                st.queue.clear();
                self.shared.room.notify_all();
                self.shared.progress.notify_all();
                return;
            }
            if must_sync {
                self.synced = self.written;
                st.synced = self.written;
                if st.progress_waiters > 0 {
                    self.shared.progress.notify_all();
                }
            }
            if chunk.stopping {
                st.stopped = true;
                return;
            }
            drop(st);
            // More than the callers can use: freed here, off the lock.
            self.done.clear();
            self.lines.clear();
        }
        // The formatting thread is gone without a last chunk (it stops
        // early only when this thread has failed): make sure no one
        // waits for it.
        let mut st = self.shared.lock();
        if !st.stopped {
            st.failed
                .get_or_insert_with(|| fail("the formatting thread stopped"));
            st.stopped = true;
            st.queue.clear();
            self.shared.room.notify_all();
            self.shared.progress.notify_all();
        }
    }

    fn seal(&mut self, f: Formatted) {
        let Formatted {
            seq,
            id,
            record,
            mut line,
            spans,
            hash,
        } = f;
        let hash = hash.seal(&mut line, &self.prev_hex);
        let prev = std::mem::replace(&mut self.prev, hash);
        self.prev_hex.clear();
        canonical::push_hex(&mut self.prev_hex, &hash);
        self.batch.push(SealedRecord {
            seq,
            id,
            record,
            prev,
            hash,
            line,
            spans,
        });
    }

    fn write(&mut self) -> Result<(), AuditError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let result = self.sink.write_batch(&self.batch);
        let n = self.batch.len() as u64;
        for r in self.batch.drain(..) {
            self.lines.push(r.line);
            self.done.push(r.record);
        }
        result.map_err(|e| fail(&format!("write failed: {e}")))?;
        self.written += n;
        Ok(())
    }
}

fn fail(why: &str) -> AuditError {
    AuditError::Stopped(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn maps_cloned_in_place_equal_their_source() {
        let s = |t: &str| Value::String(t.to_owned());
        let map = |pairs: &[(&str, Value)]| -> BTreeMap<String, Value> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        let cases = [
            // Same keys: values replaced in place, of every kind.
            (
                map(&[("a", s("long old value")), ("b", Value::Number(1.0))]),
                map(&[("a", s("x")), ("b", s("now a string"))]),
            ),
            (
                map(&[("m", Value::Map(map(&[("k", s("v"))])))]),
                map(&[("m", Value::Map(map(&[("k", Value::Null), ("j", s("w"))])))]),
            ),
            (
                map(&[("l", Value::List(vec![s("a"), s("b")]))]),
                map(&[("l", Value::List(vec![s("c")]))]),
            ),
            (
                map(&[("l", Value::List(vec![s("a"), Value::Bool(true)]))]),
                map(&[("l", Value::List(vec![Value::Bool(false), s("d")]))]),
            ),
            // Other keys, fewer, more, none.
            (map(&[("a", s("1"))]), map(&[("b", s("1"))])),
            (map(&[("a", s("1")), ("b", s("2"))]), map(&[("a", s("1"))])),
            (BTreeMap::new(), map(&[("a", s("1"))])),
            (map(&[("a", s("1"))]), BTreeMap::new()),
        ];
        for (mut to, from) in cases {
            clone_map_from(&mut to, &from);
            assert_eq!(to, from);
        }
    }

    #[test]
    fn the_log_is_send_and_sync() {
        assert_send_sync::<AuditLog>();
    }

    #[derive(Debug)]
    struct Failing;
    impl Sink for Failing {
        fn write_batch(&mut self, _: &[SealedRecord]) -> io::Result<()> {
            Err(io::Error::other("disk full"))
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_sink_surfaces_in_flush_and_never_blocks_record() {
        let log = AuditLog::new(Failing, AuditOptions::default());
        let Ok(log) = log else {
            unreachable!("the log starts")
        };
        let rec = AuditRecord::new("a", "b", Effect::Deny, Arc::from("r"));
        log.record(rec.clone());
        let err = log.flush();
        assert!(
            matches!(&err, Err(AuditError::Stopped(why)) if why.contains("disk full")),
            "{err:?}"
        );
        // The writer is gone: recording drops and counts, flush keeps failing.
        for _ in 0..20_000 {
            log.record(rec.clone());
        }
        assert_eq!(log.dropped(), 20_000);
        assert!(log.flush().is_err());
        assert!(log.shutdown().is_err());
    }

    #[test]
    fn decision_ids_differ_between_logs() {
        assert_ne!(random_prefix(), random_prefix());
    }
}
