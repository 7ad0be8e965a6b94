//! The audit log: every decision recorded, hash-chained, off the hot path.
//!
//! After a decision, [`AuditLog::record_decision`] (or [`AuditLog::record`]
//! with an [`AuditRecord`]) gives it a [`DecisionId`] and packs its fields
//! into the queue: what differs from the record before (a few bytes for a
//! repeated decision, up to a few hundred with a context) copied under a
//! lock held only for that — no hashing, I/O or (while the lock is free)
//! system call on the calling thread, and no allocation or formatting but
//! a reason sentence's. A writer thread takes the whole queue at
//! each turn and, record by record, masks configured context keys,
//! numbers it, writes its canonical line straight from the packed fields
//! into a batch buffer and hashes it (chained to the record before), then
//! hands each batch to a [`Sink`]: a JSON Lines file
//! ([`JsonlSink`]) or, with feature `sqlite`, an SQLite database.
//! [`verify_jsonl`] (and `verify_sqlite`) check the chain and name the
//! records that were edited, deleted or reordered; [`verify`] and
//! [`AuditLog::open`] tell the format of a file by one rule
//! ([`Format`]).
//!
//! The runtime (`writ-runtime`) decides and knows nothing of this crate:
//! it stays a small leaf for agents that keep no log.
//!
//! ```
//! # fn main() -> Result<(), writ_audit::AuditError> {
//! use std::sync::Arc;
//! use writ_audit::{AuditLog, AuditRecord, verify_jsonl};
//! use writ_runtime::{Effect, Value};
//!
//! let path = std::env::temp_dir().join(format!("writ-audit-doc-{}.jsonl", std::process::id()));
//! let log = AuditLog::jsonl(&path)?;
//! let mut rec = AuditRecord::new("billing-agent", "tool:call", Effect::Allow, Arc::from("rev-1"));
//! rec.target = Some("refund".into());
//! rec.context.insert("api_key".into(), Value::String("sk-123".into())); // written as "***"
//! let id = log.record(&rec);
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

/// The Rust examples of the user docs, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/audit.md")]
mod audit_docs {}

mod canonical;
mod error;
mod format;
mod jsonl;
mod mask;
mod priority;
mod queue;
#[cfg(feature = "sqlite")]
mod sqlite;
mod verify;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

pub use error::AuditError;
pub use format::{Format, verify};
pub use jsonl::{JsonlSink, verify_jsonl};
pub use mask::MASKED;
pub use priority::{MAX_NICE, lower_this_thread};
#[cfg(feature = "sqlite")]
pub use sqlite::{
    PruneReport, SqliteCounts, SqliteSink, WAL_PAGES, prune_sqlite, read_sqlite, sqlite_counts,
    sqlite_in_order, sqlite_newest_first, verify_sqlite,
};
pub use verify::{At, IncompleteTail, Problem, Pruned, VerifyReport};

use canonical::{Head, Spans};
use error::Failure;
use queue::{Fields, Packed, Reader};
use writ_runtime::{Decision, Effect, Header, Request, Risk, Value};

/// One decision, as recorded, owned: for decisions that do not come from
/// a [`Request`] (or to record one later). [`AuditLog::record_decision`]
/// records a request and its decision without building one.
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

/// Records sealed together and handed to a [`Sink`] in one call: their
/// canonical lines one after another, each ending in a newline, in one
/// buffer ([`Batch::bytes`], UTF-8), and each record's fields
/// ([`Batch::records`]).
#[derive(Debug, Default)]
pub struct Batch {
    text: Vec<u8>,
    records: Vec<Sealed>,
}

/// What a batch knows of one record besides its line.
#[derive(Debug)]
struct Sealed {
    seq: u64,
    id: DecisionId,
    prev: [u8; 32],
    hash: [u8; 32],
    /// The line in the batch's text, without its newline.
    line: std::ops::Range<usize>,
    /// Relative to the line.
    spans: Spans,
    time_ms: i64,
    decision: Effect,
    risk: Option<Risk>,
    retry_after_s: Option<u64>,
}

impl Batch {
    /// Every record's line, in order, each followed by `\n`: what a JSON
    /// Lines file appends. UTF-8.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.text
    }

    /// How many records the batch holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = SealedRecord<'_>> {
        self.records.iter().map(|meta| SealedRecord {
            meta,
            // Lines are written from text only: this never fails.
            line: self
                .text
                .get(meta.line.clone())
                .and_then(|l| std::str::from_utf8(l).ok())
                .unwrap_or(""),
        })
    }

    fn clear(&mut self) {
        self.text.clear();
        self.records.clear();
    }
}

/// A record as written: masked, numbered, chained and hashed, with its
/// canonical JSON line. Its fields are read from the line.
#[derive(Clone, Copy, Debug)]
pub struct SealedRecord<'a> {
    meta: &'a Sealed,
    line: &'a str,
}

impl<'a> SealedRecord<'a> {
    /// The position in the log's chain (1 for the first record ever).
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.meta.seq
    }
    #[must_use]
    pub fn id(&self) -> DecisionId {
        self.meta.id
    }
    /// The previous record's hash (zeros for the first).
    #[must_use]
    pub fn prev(&self) -> &'a [u8; 32] {
        &self.meta.prev
    }
    /// SHA-256 of the canonical line up to its `hash` field.
    #[must_use]
    pub fn hash(&self) -> &'a [u8; 32] {
        &self.meta.hash
    }
    /// The canonical JSON line, without a newline.
    #[must_use]
    pub fn line(&self) -> &'a str {
        self.line
    }
    /// When the decision was made, in Unix milliseconds.
    #[must_use]
    pub fn time_ms(&self) -> i64 {
        self.meta.time_ms
    }
    #[must_use]
    pub fn decision(&self) -> Effect {
        self.meta.decision
    }
    #[must_use]
    pub fn risk(&self) -> Option<Risk> {
        self.meta.risk
    }
    #[must_use]
    pub fn retry_after_s(&self) -> Option<u64> {
        self.meta.retry_after_s
    }
    #[must_use]
    pub fn trace_id(&self) -> Option<Cow<'a, str>> {
        self.text(&self.meta.spans.trace_id)
    }
    #[must_use]
    pub fn agent(&self) -> Cow<'a, str> {
        self.text(&self.meta.spans.agent).unwrap_or_default()
    }
    #[must_use]
    pub fn action(&self) -> Cow<'a, str> {
        self.text(&self.meta.spans.action).unwrap_or_default()
    }
    #[must_use]
    pub fn target(&self) -> Option<Cow<'a, str>> {
        self.text(&self.meta.spans.target)
    }
    #[must_use]
    pub fn rule(&self) -> Option<Cow<'a, str>> {
        self.text(&self.meta.spans.rule)
    }
    #[must_use]
    pub fn reason(&self) -> Option<Cow<'a, str>> {
        self.text(&self.meta.spans.reason)
    }
    /// The revision of the policy that decided.
    #[must_use]
    pub fn revision(&self) -> Cow<'a, str> {
        self.text(&self.meta.spans.revision).unwrap_or_default()
    }
    /// The delegation chain as JSON, as it appears in the line.
    #[must_use]
    pub fn chain_json(&self) -> &'a str {
        self.line.get(self.meta.spans.chain.clone()).unwrap_or("[]")
    }
    /// The masked context as JSON, as it appears in the line.
    #[must_use]
    pub fn context_json(&self) -> &'a str {
        self.line
            .get(self.meta.spans.context.clone())
            .unwrap_or("{}")
    }

    fn text(&self, span: &std::ops::Range<usize>) -> Option<Cow<'a, str>> {
        canonical::unquote(self.line.get(span.clone())?)
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
    fn write_batch(&mut self, batch: &Batch) -> io::Result<()>;

    /// Makes everything written so far durable (fsync or equivalent).
    ///
    /// # Errors
    /// Any I/O error.
    fn sync(&mut self) -> io::Result<()>;

    /// A way to make what was written durable from another thread, as
    /// [`Sink::sync`] does (asked once, when the log starts): with one,
    /// the log syncs in the background — every few megabytes and when a
    /// `flush` waits — while the writer goes on sealing and writing, so
    /// the disk's time overlaps the writer's. `None` (the default): the
    /// writer calls `sync` itself, when a `flush` waits.
    fn background_sync(&mut self) -> Option<BackgroundSync> {
        None
    }
}

/// What [`Sink::background_sync`] returns: called on the log's syncing
/// thread, it makes durable everything written before the call.
pub type BackgroundSync = Box<dyn FnMut() -> io::Result<()> + Send>;

/// How much the writer writes before it asks the syncing thread (when the
/// sink has one) to sync, flush or not.
const SYNC_EVERY_BYTES: usize = 4 << 20;

/// How a log batches and masks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// Context keys whose values are written as `"***"`, at any depth:
    /// globs with `*` and `?`, matched against the whole key, ASCII
    /// letters in any case.
    pub mask: Vec<String>,
    /// The most records handed to the sink in one write.
    pub batch_size: usize,
    /// How long the writer waits between turns (so that recording need
    /// not wake it, and each turn writes many records at once): a record
    /// reaches the sink about this long after it was queued, sooner when
    /// a `flush` waits or half the queue (`capacity`) is waiting. After
    /// a second of silence the writer sleeps until the next record.
    pub interval: Duration,
    /// How many records the queue holds; `record` waits for room when the
    /// writer falls this far behind.
    pub capacity: usize,
    /// How much the writer and syncing threads raise their nice value
    /// (Linux; at most to 19; 0, the default, leaves them as they are).
    /// Their bursts of sealing, writing and checkpointing then give way
    /// to the threads that decide, which no longer wait behind them on a
    /// busy core; see [`lower_this_thread`]. Other systems ignore it.
    pub nice: u8,
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
            nice: 0,
        }
    }
}

/// What the calling threads and the writer share: the queue behind a
/// lock held only for a push or a swap (taken by every record: one
/// atomic exchange to take it, one to give it back), and the rest behind
/// a mutex with the condition
/// variables the threads wait on (taken by flushes, by a caller waiting
/// for room, and by the writer once a turn). Where both are held, the
/// mutex is taken first.
#[derive(Debug)]
struct Shared {
    /// A blocking lock, not a spin lock: the writer may run at a lower
    /// priority ([`AuditOptions::nice`]), and a caller spinning while a
    /// preempted writer holds the lock would keep it from running for
    /// as long as the scheduler favours the caller (milliseconds, at nice
    /// 19). A caller that finds it held spins briefly, then sleeps, and
    /// the writer runs.
    intake: Mutex<Intake>,
    state: Mutex<State>,
    /// Callers waiting for room in a full queue.
    room: Condvar,
    /// Callers of `flush` waiting for the writer.
    progress: Condvar,
    /// The syncing thread waiting for something to sync.
    sync_wanted: Condvar,
}

/// The queue and what a recording thread reads or changes with it.
#[derive(Debug)]
struct Intake {
    /// Records not yet taken by the writer, packed in order (see
    /// [`queue`]).
    queue: queue::Queue,
    /// How many records `queue` holds.
    count: usize,
    /// The revisions named by the queued records, by index.
    revisions: Vec<Arc<str>>,
    capacity: usize,
    /// Records ever queued (the last decision id's number).
    queued: u64,
    /// Records not queued because the writer had stopped.
    dropped: u64,
    /// The writer is gone: records are dropped.
    stopped: bool,
    /// The writer sleeps until woken (after a second without records).
    asleep: bool,
    /// Callers waiting for room (changed only with the state's mutex
    /// held too, so the writer, holding it, sees them): while there are
    /// any, a caller that finds room queues behind them rather than
    /// taking it first.
    waiting: usize,
}

impl Intake {
    /// How many queued records start the writer's turn before its
    /// interval is up: half the queue.
    fn half_full(&self) -> usize {
        (self.capacity / 2).max(1)
    }
}

#[derive(Debug)]
struct State {
    /// Records written and synced (acknowledged).
    synced: u64,
    /// Records the syncing thread is asked to sync (all written).
    sync_to: u64,
    /// The syncing thread stops once it has synced `sync_to`.
    sync_stop: bool,
    /// The highest `queued` a `flush` waits for.
    flush_to: u64,
    stopping: bool,
    /// The writer is gone; `failed` says why, if it failed.
    stopped: bool,
    failed: Option<Failure>,
    progress_waiters: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across code that can panic; if it were
        // poisoned anyway, the state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn intake(&self) -> MutexGuard<'_, Intake> {
        // Held only to push a record or swap the queue, neither of which
        // panics; if it were poisoned anyway, the queue is consistent.
        self.intake.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer is gone (`st` is the locked state): drops every queued
    /// record, and every record from now on.
    fn halt(&self, st: &mut State) {
        st.stopped = true;
        let mut intake = self.intake();
        intake.stopped = true;
        // Queued but never to be written: counted as dropped.
        intake.dropped += intake.count as u64;
        intake.queue.clear();
        intake.count = 0;
        intake.revisions.clear();
    }
}

/// The audit log: a queue and the writer thread behind it. `Send + Sync`;
/// share it (`Arc`) between threads. Dropping it flushes and stops the
/// writer (use [`AuditLog::shutdown`] to see errors).
#[derive(Debug)]
pub struct AuditLog {
    shared: Arc<Shared>,
    prefix: u64,
    /// The writer thread.
    writer: Option<JoinHandle<()>>,
}

impl AuditLog {
    /// Starts a log writing to `sink`.
    ///
    /// # Errors
    /// When the sink cannot say where its chain stands, or the writer
    /// thread cannot be started.
    pub fn new(sink: impl Sink + 'static, options: AuditOptions) -> Result<AuditLog, AuditError> {
        let mut sink: Box<dyn Sink> = Box::new(sink);
        let background = sink.background_sync();
        let head = sink.head().map_err(|source| AuditError::Start {
            what: "cannot read the log's last record",
            source,
        })?;
        let capacity = options.capacity.max(1);
        let shared = Arc::new(Shared {
            intake: Mutex::new(Intake {
                queue: queue::Queue::with_capacity(1 << 16),
                count: 0,
                revisions: Vec::new(),
                capacity,
                queued: 0,
                dropped: 0,
                stopped: false,
                asleep: false,
                waiting: 0,
            }),
            state: Mutex::new(State {
                synced: 0,
                sync_to: 0,
                sync_stop: false,
                flush_to: 0,
                stopping: false,
                stopped: false,
                failed: None,
                progress_waiters: 0,
            }),
            room: Condvar::new(),
            progress: Condvar::new(),
            sync_wanted: Condvar::new(),
        });
        let prefix = random_prefix();
        let writer = Writer {
            shared: Arc::clone(&shared),
            sink,
            mask: mask::Mask::new(&options.mask),
            batch: Batch::default(),
            batch_size: options.batch_size.max(1),
            seq: head.seq,
            prefix,
            prev: head.hash,
            prev_hex: canonical::hex(&head.hash).into_bytes(),
            id_buf: Vec::new(),
            time: canonical::TimeCache::default(),
            written: 0,
            requested: 0,
            unsynced_bytes: 0,
            syncer: None,
        };
        let interval = options.interval.max(Duration::from_micros(50));
        let nice = options.nice;
        let mut writer = writer;
        if let Some(sync) = background {
            let shared = Arc::clone(&shared);
            let syncer = std::thread::Builder::new()
                .name("writ-audit-sync".to_owned())
                .spawn(move || {
                    let _ = lower_this_thread(nice);
                    run_syncer(&shared, sync);
                })
                .map_err(|source| AuditError::Start {
                    what: "cannot start the syncing thread",
                    source,
                })?;
            writer.syncer = Some(syncer);
        }
        let writer = std::thread::Builder::new()
            .name("writ-audit".to_owned())
            .spawn(move || {
                let _ = lower_this_thread(nice);
                writer.run(interval);
            })
            .map_err(|source| AuditError::Start {
                what: "cannot start the writer thread",
                source,
            })?;
        Ok(AuditLog {
            shared,
            prefix,
            writer: Some(writer),
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
    #[cfg(feature = "sqlite")]
    pub fn sqlite(path: impl AsRef<std::path::Path>) -> Result<AuditLog, AuditError> {
        AuditLog::new(SqliteSink::open(path)?, AuditOptions::default())
    }

    /// Records the decision `d` made for `req` at `time_ms` by the bundle
    /// of `revision` (see [`revision_of`]): assigns the decision its id
    /// and packs the request's and the decision's fields into the queue.
    /// Cheap: a lock taken and a few bytes copied (what differs
    /// from the record before; more with a chain or a context) — no
    /// hashing, I/O or (while the lock is free) system call, and no
    /// allocation or formatting but the reason sentence's — unless the
    /// queue is full (then it waits for room) or the writer is asleep
    /// after a second without records (then it wakes it). When the writer
    /// has stopped, the record is dropped and counted.
    pub fn record_decision(
        &self,
        req: &Request,
        d: &Decision<'_>,
        revision: &Arc<str>,
        time_ms: i64,
    ) -> DecisionId {
        self.record_decision_with_reason(req, d, revision, time_ms, d.reason_text(req).as_deref())
    }

    /// [`AuditLog::record_decision`] with the decision's reason already
    /// made (`d.reason_text(req)`), for a caller that needs it elsewhere
    /// too.
    pub fn record_decision_with_reason(
        &self,
        req: &Request,
        d: &Decision<'_>,
        revision: &Arc<str>,
        time_ms: i64,
        reason: Option<&str>,
    ) -> DecisionId {
        debug_assert_eq!(
            reason,
            d.reason_text(req).as_deref(),
            "not the decision's reason"
        );
        self.enqueue(revision, |q, seq, revision| {
            q.push(&Fields {
                seq,
                time_ms,
                decision: d.effect,
                risk: d.risk,
                retry_after_s: d.retry_after_s,
                revision,
                trace_id: req.trace_id.as_deref(),
                agent: &req.agent,
                action: &req.action,
                target: req.target.as_deref(),
                rule: d.rule,
                reason,
                chain: &req.chain,
                context: &req.context,
            });
        })
    }

    /// Records a decision described by `rec`, as
    /// [`AuditLog::record_decision`] does (the record is copied; keep or
    /// reuse it).
    pub fn record(&self, rec: &AuditRecord) -> DecisionId {
        self.enqueue(&rec.revision, |q, seq, revision| {
            q.push(&Fields {
                seq,
                time_ms: rec.time_ms,
                decision: rec.decision,
                risk: rec.risk,
                retry_after_s: rec.retry_after_s,
                revision,
                trace_id: rec.trace_id.as_deref(),
                agent: &rec.agent,
                action: &rec.action,
                target: rec.target.as_deref(),
                rule: rec.rule.as_deref(),
                reason: rec.reason.as_deref(),
                chain: &rec.chain,
                context: &rec.context,
            });
        })
    }

    /// Assigns an id, waits for room, and lets `push` pack the record
    /// (given its number and its revision's index) into the queue.
    fn enqueue(
        &self,
        revision: &Arc<str>,
        push: impl FnOnce(&mut queue::Queue, u64, u32),
    ) -> DecisionId {
        let mut intake = self.shared.intake();
        intake.queued += 1;
        let id = DecisionId {
            prefix: self.prefix,
            seq: intake.queued,
        };
        if intake.stopped {
            intake.dropped += 1;
        } else if intake.count < intake.capacity && intake.waiting == 0 {
            self.push_into(intake, id, revision, push);
        } else {
            drop(intake);
            self.enqueue_when_room(id, revision, push);
        }
        id
    }

    /// Packs a record into the queue, and wakes the writer if it sleeps
    /// or half the queue waits.
    #[inline(always)]
    fn push_into(
        &self,
        mut intake: MutexGuard<'_, Intake>,
        id: DecisionId,
        revision: &Arc<str>,
        push: impl FnOnce(&mut queue::Queue, u64, u32),
    ) {
        let i = &mut *intake;
        if !i.revisions.last().is_some_and(|r| Arc::ptr_eq(r, revision)) {
            i.revisions.push(Arc::clone(revision));
        }
        let index = u32::try_from(i.revisions.len() - 1).unwrap_or(u32::MAX);
        push(&mut i.queue, id.seq, index);
        i.count += 1;
        if i.asleep || i.count == i.half_full() {
            // Asleep after a silence, or half the queue waiting: the
            // writer's turn now rather than after its interval.
            i.asleep = false;
            drop(intake);
            self.wake();
        }
    }

    /// Waits for room in a full queue, then packs the record (or drops
    /// it, if the writer stops meanwhile). Waiting is announced under the
    /// state's lock before the queue is looked at again, and the writer
    /// takes that lock after emptying the queue: the writer's wake-up
    /// cannot be missed.
    #[cold]
    fn enqueue_when_room(
        &self,
        id: DecisionId,
        revision: &Arc<str>,
        push: impl FnOnce(&mut queue::Queue, u64, u32),
    ) {
        let mut st = self.shared.lock();
        self.shared.intake().waiting += 1;
        loop {
            let mut intake = self.shared.intake();
            if intake.stopped {
                intake.waiting -= 1;
                intake.dropped += 1;
                break;
            }
            if intake.count < intake.capacity {
                intake.waiting -= 1;
                self.push_into(intake, id, revision, push);
                break;
            }
            drop(intake);
            self.wake();
            st = self
                .shared
                .room
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Returns once every record queued before the call is written and
    /// synced to disk.
    ///
    /// # Errors
    /// The write or sync error, or [`AuditError::Stopped`] when the writer
    /// stopped earlier.
    pub fn flush(&self) -> Result<(), AuditError> {
        let mut st = self.shared.lock();
        let target = self.shared.intake().queued;
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
        Err(st.failed.as_ref().map_or_else(
            || Failure::new("the writer thread is gone").error(),
            Failure::error,
        ))
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
        self.shared.intake().dropped
    }

    /// The error that stopped the writer, if it stopped.
    #[must_use]
    pub fn error(&self) -> Option<AuditError> {
        self.shared.lock().failed.as_ref().map(Failure::error)
    }

    fn wake(&self) {
        if let Some(writer) = &self.writer {
            writer.thread().unpark();
        }
    }

    fn stop(&mut self) -> Result<(), AuditError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        self.shared.lock().stopping = true;
        writer.thread().unpark();
        if writer.join().is_err() {
            return Err(Failure::new("the writer thread panicked").error());
        }
        match &self.shared.lock().failed {
            Some(f) => Err(f.error()),
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

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    sink: Box<dyn Sink>,
    mask: mask::Mask,
    batch: Batch,
    batch_size: usize,
    /// The last record's number in the chain.
    seq: u64,
    /// The log's decision id prefix.
    prefix: u64,
    /// The last record's hash, and in hex.
    prev: [u8; 32],
    prev_hex: Vec<u8>,
    id_buf: Vec<u8>,
    time: canonical::TimeCache,
    /// Records written by this writer.
    written: u64,
    /// `written` when last synced, or last asked to be synced by the
    /// syncing thread.
    requested: u64,
    /// Bytes written since then.
    unsynced_bytes: usize,
    /// The syncing thread, when the sink syncs in the background.
    syncer: Option<JoinHandle<()>>,
}

impl Writer {
    /// Takes the whole queue at each turn (swapping buffers under the
    /// lock), seals and writes it in batches, syncs when a flush waits,
    /// and otherwise sleeps for `interval` between turns: the callers
    /// wake it only when half the queue is waiting, or after a second
    /// without records, when it sleeps until the next one. Stops at
    /// shutdown or at the first error.
    fn run(mut self, interval: Duration) {
        let _halt = HaltOnPanic(Arc::clone(&self.shared));
        let idle_limit = (Duration::from_secs(1).as_micros() / interval.as_micros().max(1)).max(1);
        let mut idle = 0u128;
        let mut taken = queue::Queue::default();
        let mut revisions: Vec<Arc<str>> = Vec::new();
        loop {
            let (count, flush_to, stopping) = {
                let st = self.shared.lock();
                if st.stopped {
                    return;
                }
                taken.clear();
                revisions.clear();
                let (count, waiting) = {
                    let mut intake = self.shared.intake();
                    std::mem::swap(&mut intake.queue, &mut taken);
                    std::mem::swap(&mut intake.revisions, &mut revisions);
                    (std::mem::take(&mut intake.count), intake.waiting)
                };
                if waiting > 0 {
                    self.shared.room.notify_all();
                }
                (count, st.flush_to, st.stopping)
            };
            let mut result = self.write_all(taken.bytes(), &revisions);
            let must_sync = stopping
                || flush_to > self.requested
                || (self.syncer.is_some() && self.unsynced_bytes >= SYNC_EVERY_BYTES);
            if result.is_ok() && must_sync && self.syncer.is_none() {
                result = self.sink.sync().map_err(|e| Failure::io("sync failed", e));
            }
            let mut st = self.shared.lock();
            if let Err(e) = result {
                st.failed.get_or_insert(e);
                self.shared.halt(&mut st);
                self.shared.room.notify_all();
                self.shared.progress.notify_all();
                drop(st);
                self.stop_syncer();
                return;
            }
            if st.stopped {
                // The syncing thread failed.
                drop(st);
                self.stop_syncer();
                return;
            }
            if must_sync {
                self.requested = self.written;
                self.unsynced_bytes = 0;
                if self.syncer.is_some() {
                    if st.sync_to < self.written {
                        st.sync_to = self.written;
                        self.shared.sync_wanted.notify_one();
                    }
                } else {
                    st.synced = self.written;
                    if st.progress_waiters > 0 {
                        self.shared.progress.notify_all();
                    }
                }
            }
            if stopping {
                // `stop` set `stopping` before this turn's swap, and no
                // record can be queued after it: everything is written.
                drop(st);
                if !self.stop_syncer() {
                    let mut st = self.shared.lock();
                    st.failed
                        .get_or_insert_with(|| Failure::new("the syncing thread panicked"));
                }
                let mut st = self.shared.lock();
                self.shared.halt(&mut st);
                return;
            }
            let (queued, half_full, waiting) = {
                let intake = self.shared.intake();
                (intake.count, intake.half_full(), intake.waiting)
            };
            if queued >= half_full || waiting > 0 || st.stopping || st.flush_to > self.requested {
                // Behind, or waited for: the next turn now.
                idle = 0;
                continue;
            }
            if count > 0 || queued > 0 {
                // Records keep coming: the next turn after `interval`,
                // so that each takes many records at once (one lock
                // handed between the threads per turn, not per record,
                // and the deciding threads run without the writer
                // beside them meanwhile).
                idle = 0;
            } else if idle < idle_limit {
                idle += 1;
            } else {
                let mut intake = self.shared.intake();
                if intake.count == 0 {
                    // A record queued from now on wakes the writer.
                    intake.asleep = true;
                    drop(intake);
                    drop(st);
                    std::thread::park();
                    continue;
                }
                // A record came meanwhile: a turn after `interval`.
                idle = 0;
            }
            drop(st);
            std::thread::park_timeout(interval);
        }
    }

    /// Seals every record packed in `queue` and writes them, a batch at a
    /// time.
    fn write_all(&mut self, queue: &[u8], revisions: &[Arc<str>]) -> Result<(), Failure> {
        let mut reader = Reader::new(queue);
        while !reader.is_empty() {
            // Only this module packs the queue: a record that does not
            // read back is a bug. Stop rather than write a wrong record or
            // skip one silently.
            reader
                .record()
                .and_then(|p| self.seal(&p, revisions))
                .ok_or_else(|| Failure::new("internal error: a queued record could not be read"))?;
            if self.batch.len() >= self.batch_size {
                self.write()?;
            }
        }
        self.write()
    }

    /// Appends a record's line to the batch: masked, numbered, chained
    /// and hashed.
    fn seal(&mut self, p: &Packed<'_>, revisions: &[Arc<str>]) -> Option<()> {
        let revision = revisions.get(usize::try_from(p.revision).ok()?)?;
        // As `DecisionId`'s `Display`, without the formatting machinery.
        // `<prefix hex>-` stays; only the number changes.
        self.id_buf.truncate(17);
        if self.id_buf.len() < 17 {
            self.id_buf.clear();
            canonical::push_hex(&mut self.id_buf, &self.prefix.to_be_bytes());
            self.id_buf.push(b'-');
        }
        canonical::push_u64(&mut self.id_buf, p.seq);
        let head = Head {
            seq: self.seq + 1,
            id: &self.id_buf,
            time_ms: p.time_ms,
            trace_id: p.trace_id,
            agent: p.agent,
            action: p.action,
            target: p.target,
            decision: p.decision.as_str(),
            rule: p.rule,
            reason: p.reason,
            risk: p.risk.map(Risk::as_str),
            retry_after_s: p.retry_after_s,
            revision: revision.as_bytes(),
            prev: &self.prev_hex,
        };
        let text = &mut self.batch.text;
        let start = text.len();
        let (mut chain_ok, mut context_ok) = (false, false);
        let mask = &mut self.mask;
        let spans = canonical::append_body(
            text,
            &head,
            &mut self.time,
            |out| chain_ok = canonical::push_packed_chain(out, p.chain.clone()).is_some(),
            |out| {
                let mut r = p.context.clone();
                context_ok = canonical::push_packed_map(out, &mut r, &mut |k| mask.masks(k))
                    .is_some()
                    && r.is_empty();
            },
        );
        if !(chain_ok && context_ok) {
            text.truncate(start);
            return None;
        }
        let hash = canonical::hash_body(text.get(start..).unwrap_or(&[]));
        canonical::push_hash_suffix(text, &hash);
        let line = start..text.len();
        text.push(b'\n');
        self.seq += 1;
        self.batch.records.push(Sealed {
            seq: self.seq,
            id: DecisionId {
                prefix: self.prefix,
                seq: p.seq,
            },
            prev: std::mem::replace(&mut self.prev, hash),
            hash,
            line,
            spans,
            time_ms: p.time_ms,
            decision: p.decision,
            risk: p.risk,
            retry_after_s: p.retry_after_s,
        });
        self.prev_hex.clear();
        canonical::push_hex(&mut self.prev_hex, &hash);
        Some(())
    }

    /// Lets the syncing thread finish what it was asked and waits for it;
    /// false if it panicked.
    fn stop_syncer(&mut self) -> bool {
        let Some(syncer) = self.syncer.take() else {
            return true;
        };
        self.shared.lock().sync_stop = true;
        self.shared.sync_wanted.notify_one();
        syncer.join().is_ok()
    }

    fn write(&mut self) -> Result<(), Failure> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.unsynced_bytes += self.batch.text.len();
        let result = self.sink.write_batch(&self.batch);
        let n = self.batch.len() as u64;
        self.batch.clear();
        result.map_err(|e| Failure::io("write failed", e))?;
        self.written += n;
        Ok(())
    }
}

/// The syncing thread: syncs up to what the writer asks (`sync_to`),
/// acknowledges it (`synced`) and wakes the callers of `flush`; stops at
/// `sync_stop` once everything asked is synced, or at the first error.
fn run_syncer(shared: &Shared, mut sync: BackgroundSync) {
    let mut done = 0u64;
    loop {
        let target = {
            let mut st = shared.lock();
            while st.sync_to <= done && !st.sync_stop && !st.stopped {
                st = shared
                    .sync_wanted
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if st.sync_to <= done || st.stopped {
                return;
            }
            st.sync_to
        };
        let result = sync();
        let mut st = shared.lock();
        match result {
            Ok(()) => {
                done = target;
                st.synced = st.synced.max(target);
                if st.progress_waiters > 0 {
                    shared.progress.notify_all();
                }
            }
            Err(e) => {
                st.failed
                    .get_or_insert_with(|| Failure::io("sync failed", e));
                shared.halt(&mut st);
                shared.room.notify_all();
                shared.progress.notify_all();
                return;
            }
        }
    }
}

/// Stops the log if the writer thread panics (in a sink, say), so that
/// callers are told rather than left waiting for room or for a flush.
struct HaltOnPanic(Arc<Shared>);

impl Drop for HaltOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let shared = &self.0;
        let mut st = shared.lock();
        st.failed
            .get_or_insert_with(|| Failure::new("the writer thread panicked"));
        shared.halt(&mut st);
        st.sync_stop = true;
        shared.room.notify_all();
        shared.progress.notify_all();
        shared.sync_wanted.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_log_is_send_and_sync() {
        assert_send_sync::<AuditLog>();
    }

    #[derive(Debug)]
    struct Failing;
    impl Sink for Failing {
        fn write_batch(&mut self, _: &Batch) -> io::Result<()> {
            Err(io::Error::other("disk full"))
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A log over `sink` fails at its first flush with `why`; then
    /// recording drops and counts, never blocks, and flush and shutdown
    /// keep failing.
    /// With `io_cause`, `why` is the sink's I/O error, which the error
    /// keeps as its source.
    fn stops_and_surfaces(sink: impl Sink + 'static, why: &str, io_cause: bool) {
        let log = AuditLog::new(sink, AuditOptions::default());
        let Ok(log) = log else {
            unreachable!("the log starts")
        };
        let rec = AuditRecord::new("a", "b", Effect::Deny, Arc::from("r"));
        log.record(&rec);
        let err = log.flush();
        assert!(
            matches!(&err, Err(e @ AuditError::Stopped { .. }) if e.to_string().contains(why)),
            "{err:?}"
        );
        let cause = err
            .as_ref()
            .err()
            .and_then(std::error::Error::source)
            .and_then(|c| c.downcast_ref::<io::Error>())
            .map(ToString::to_string);
        if io_cause {
            assert_eq!(cause.as_deref(), Some(why), "{err:?}");
        } else {
            assert_eq!(cause, None, "{err:?}");
        }
        // Every later call says the same.
        assert_eq!(
            log.error().map(|e| e.to_string()),
            err.err().map(|e| e.to_string())
        );
        for _ in 0..20_000 {
            log.record(&rec);
        }
        assert_eq!(log.dropped(), 20_000);
        assert!(log.flush().is_err());
        assert!(log.shutdown().is_err());
    }

    #[test]
    fn a_failing_sink_surfaces_in_flush_and_never_blocks_record() {
        stops_and_surfaces(Failing, "disk full", true);
    }

    #[derive(Debug)]
    struct Panicking;
    impl Sink for Panicking {
        #[allow(clippy::panic, reason = "the test sink panics on purpose")]
        fn write_batch(&mut self, _: &Batch) -> io::Result<()> {
            panic!("a sink with a bug")
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_panicking_sink_stops_the_log_rather_than_hanging_its_callers() {
        stops_and_surfaces(Panicking, "the writer thread panicked", false);
    }

    /// Counts writes and syncs; syncs in the background, failing when
    /// told to.
    #[derive(Debug, Default)]
    struct Counting {
        written: Arc<Mutex<u64>>,
        synced: Arc<Mutex<Vec<u64>>>,
        inline_syncs: Arc<Mutex<u64>>,
        fail_sync: bool,
    }
    impl Sink for Counting {
        fn write_batch(&mut self, batch: &Batch) -> io::Result<()> {
            *self.written.lock().unwrap_or_else(PoisonError::into_inner) += batch.len() as u64;
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            *self
                .inline_syncs
                .lock()
                .unwrap_or_else(PoisonError::into_inner) += 1;
            Ok(())
        }
        fn background_sync(&mut self) -> Option<BackgroundSync> {
            let (written, synced, fail) = (
                Arc::clone(&self.written),
                Arc::clone(&self.synced),
                self.fail_sync,
            );
            Some(Box::new(move || {
                if fail {
                    return Err(io::Error::other("device gone"));
                }
                let now = *written.lock().unwrap_or_else(PoisonError::into_inner);
                synced
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(now);
                Ok(())
            }))
        }
    }

    #[test]
    fn a_background_sync_acknowledges_flushes_and_shutdown() {
        let sink = Counting::default();
        let (written, synced, inline) = (
            Arc::clone(&sink.written),
            Arc::clone(&sink.synced),
            Arc::clone(&sink.inline_syncs),
        );
        let log = AuditLog::new(sink, AuditOptions::default());
        let Ok(log) = log else {
            unreachable!("the log starts")
        };
        let rec = AuditRecord::new("a", "b", Effect::Deny, Arc::from("r"));
        for round in 1..=3u64 {
            for _ in 0..1000 {
                log.record(&rec);
            }
            assert!(log.flush().is_ok());
            // Acknowledged means a sync that began after the records
            // were written.
            let syncs = synced
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            assert!(
                syncs.last().is_some_and(|&n| n >= round * 1000),
                "{syncs:?}"
            );
        }
        log.record(&rec);
        assert!(log.shutdown().is_ok());
        assert_eq!(
            *written.lock().unwrap_or_else(PoisonError::into_inner),
            3001
        );
        let syncs = synced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(syncs.last(), Some(&3001));
        assert_eq!(*inline.lock().unwrap_or_else(PoisonError::into_inner), 0);
    }

    #[test]
    fn a_failing_background_sync_surfaces_in_flush_and_never_blocks_record() {
        let sink = Counting {
            fail_sync: true,
            ..Counting::default()
        };
        stops_and_surfaces(sink, "device gone", true);
    }

    /// Waits up to ten seconds for `written` to reach `n`.
    fn reaches(written: &Mutex<u64>, n: u64) -> bool {
        for _ in 0..1000 {
            if *written.lock().unwrap_or_else(PoisonError::into_inner) >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn half_a_queue_waiting_starts_the_writers_turn_before_its_interval() {
        let sink = Counting::default();
        let written = Arc::clone(&sink.written);
        // The writer would not look at the queue again for an hour.
        let log = AuditLog::new(
            sink,
            AuditOptions {
                interval: Duration::from_secs(3600),
                capacity: 8,
                ..AuditOptions::default()
            },
        );
        let Ok(log) = log else {
            unreachable!("the log starts")
        };
        std::thread::sleep(Duration::from_millis(50));
        let rec = AuditRecord::new("a", "b", Effect::Deny, Arc::from("r"));
        for _ in 0..4 {
            log.record(&rec);
        }
        assert!(
            reaches(&written, 4),
            "half the queue waited for the interval"
        );
        // Two threads, many times the queue: recording waits for room and
        // is never stuck, whatever the interval.
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..5000 {
                        log.record(&rec);
                    }
                });
            }
        });
        assert!(reaches(&written, 10_000));
        assert!(log.flush().is_ok());
        assert_eq!(
            *written.lock().unwrap_or_else(PoisonError::into_inner),
            10_004
        );
    }

    #[test]
    fn decision_ids_differ_between_logs() {
        assert_ne!(random_prefix(), random_prefix());
    }
}
