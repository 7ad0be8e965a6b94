//! Rate limits and token budgets: where their counts live.
//!
//! A [`LimitStore`] keeps, per limit and per acting agent, the amounts
//! allowed within the limit's sliding window. The runtime asks it twice:
//! while deciding, [`LimitStore::peek`] says whether a limit still has room
//! (so that a full limit decides, with its reason and a retry time); once
//! the decision is an allow, [`LimitStore::acquire`] takes every amount the
//! decision consumes *atomically* — all or nothing, checked again under the
//! store's lock — so that concurrent requests never overshoot a limit.
//!
//! Limits are named by the rule or agent entry that declares them (not by
//! position), so counts survive a reload of a new bundle that keeps the
//! names. [`InProcess`] is the default; [`crate::redis_store`] (feature
//! `redis`) shares counts between processes.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use crate::model::Rate;

/// Which kind of limit a key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// A rule's `limit`, counted per acting agent: `name` is the rule.
    Rule,
    /// A rule's `limit ... shared`, one count for every agent: `name` is
    /// the rule, `agent` empty.
    RuleShared,
    /// An agent entry's `limit` (requests or tokens): `name` is the entry,
    /// `sub` the limit's key.
    Agent,
}

/// A limit, whoever acts: its kind, the name of the rule or agent entry
/// that declares it and (for an agent entry's limits) the limit's key,
/// hashed once when the bundle is loaded, so that a store finds a
/// limit's count for an agent by hashing only the agent's name.
///
/// Cloning a scope shares it: a store's entry keeps a clone, and finds it
/// again by address before comparing names.
#[derive(Clone, Debug)]
pub struct Scope(std::sync::Arc<ScopeParts>);

#[derive(Debug)]
struct ScopeParts {
    kind: LimitKind,
    name: Box<str>,
    sub: Box<str>,
    hash: u64,
}

impl PartialEq for Scope {
    fn eq(&self, other: &Scope) -> bool {
        self.is(other)
    }
}

impl Eq for Scope {}

impl Scope {
    #[must_use]
    pub fn new(kind: LimitKind, name: &str, sub: &str) -> Scope {
        let mut h = rustc_hash::FxHasher::default();
        kind.hash(&mut h);
        name.hash(&mut h);
        sub.hash(&mut h);
        Scope(std::sync::Arc::new(ScopeParts {
            kind,
            name: name.into(),
            sub: sub.into(),
            hash: h.finish(),
        }))
    }

    #[must_use]
    pub fn kind(&self) -> LimitKind {
        self.0.kind
    }

    /// The rule or agent entry that declares the limit.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The limit's key within an agent entry (empty for a rule's).
    #[must_use]
    pub fn sub(&self) -> &str {
        &self.0.sub
    }

    /// A hash of the kind, name and key.
    #[must_use]
    pub fn hash_value(&self) -> u64 {
        self.0.hash
    }

    /// The same limit: the same scope (the common case, by address), or
    /// one with the same kind, name and key (a reloaded bundle's).
    #[inline]
    fn is(&self, other: &Scope) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.is_named_as(other)
    }

    #[inline(never)]
    fn is_named_as(&self, other: &Scope) -> bool {
        let (a, b) = (&*self.0, &*other.0);
        a.hash == b.hash && a.kind == b.kind && same(&a.name, &b.name) && same(&a.sub, &b.sub)
    }
}

/// One amount to take from one limit for one agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acquire<'a> {
    pub scope: &'a Scope,
    pub agent: &'a str,
    pub rate: Rate,
    pub amount: u64,
}

/// Why a store would not take an amount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Item `index` does not fit; it would in `retry_after_s` seconds.
    Full { index: usize, retry_after_s: u64 },
    /// The store could not be asked (e.g. Redis unreachable).
    Unavailable(String),
}

/// What the runtime does when the store cannot be asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnStoreFailure {
    /// Deny, naming the failure (the default: a limit that cannot be
    /// counted must not become unlimited).
    #[default]
    Deny,
    /// Decide as if the limit had room, without counting.
    Allow,
}

/// Where limit counts live. Implementations must make [`acquire`] atomic
/// across every thread and process sharing the store.
///
/// [`acquire`]: LimitStore::acquire
pub trait LimitStore: Send + Sync + std::fmt::Debug {
    /// `Ok` when `item.amount` more fits now; nothing is taken.
    ///
    /// # Errors
    /// [`Refusal::Full`] (with `index` 0) when it does not fit, or
    /// [`Refusal::Unavailable`].
    fn peek(&self, item: &Acquire<'_>, now_ms: i64) -> Result<(), Refusal>;

    /// Takes every item, or none: `Err` names the first item that does not
    /// fit.
    ///
    /// # Errors
    /// [`Refusal::Full`] or [`Refusal::Unavailable`].
    fn acquire(&self, items: &[Acquire<'_>], now_ms: i64) -> Result<(), Refusal>;
}

/// The amounts allowed within one limit's sliding window, oldest first,
/// with their running total. The window is exact: an amount allowed at
/// time `t` counts for every time in `[t, t + window)` and not after, so
/// "at most N in any window" means exactly that. Amounts allowed in the
/// same millisecond share an entry (they leave the window together); the
/// log holds at most one entry per allowed amount, so no more entries than
/// the limit's count.
///
/// The newest entry (the one still taking amounts) is kept apart from the
/// others, so that a request within the same millisecond touches neither
/// end of the log.
#[derive(Debug, Default)]
pub struct Window {
    /// Every entry but the newest, oldest first.
    log: VecDeque<(i64, u64)>,
    /// The newest entry: time and amount (0 when there is none).
    open: (i64, u64),
    used: u64,
    /// The latest time an amount was taken at (kept when its entry has
    /// aged out): no later request is taken at an earlier time.
    latest: Option<i64>,
}

impl Window {
    fn window_ms(rate: Rate) -> i64 {
        i64::try_from(rate.seconds().saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// Drops what has left the window at `now_ms`.
    pub fn trim(&mut self, rate: Rate, now_ms: i64) {
        self.trim_to(Window::window_ms(rate), now_ms);
    }

    /// Time never runs backwards within a window: a request earlier than
    /// the latest amount taken (a batch replayed with earlier `at` times,
    /// another process's clock) is taken at that time, so entries stay in
    /// time order and dropping aged entries never changes an answer.
    fn clamp(&self, now_ms: i64) -> i64 {
        self.latest.map_or(now_ms, |t| now_ms.max(t))
    }

    fn trim_to(&mut self, window_ms: i64, now_ms: i64) {
        let now_ms = self.clamp(now_ms);
        let horizon = now_ms.saturating_sub(window_ms);
        while let Some(&(t, a)) = self.log.front() {
            if t > horizon {
                return;
            }
            self.used = self.used.saturating_sub(a);
            self.log.pop_front();
        }
        let (t, a) = self.open;
        if a > 0 && t <= horizon {
            self.used = self.used.saturating_sub(a);
            self.open = (0, 0);
        }
    }

    /// The entries, oldest first.
    fn entries(&self) -> impl Iterator<Item = &(i64, u64)> {
        self.log
            .iter()
            .chain((self.open.1 > 0).then_some(&self.open))
    }

    /// Whether `amount` more fits, else after how many whole seconds it
    /// would (at least 1). Changes nothing: entries that have left the
    /// window are skipped, not dropped, so that looking at a limit while
    /// deciding never changes what a later request sees.
    ///
    /// # Errors
    /// The wait in seconds.
    pub fn fits(&self, rate: Rate, amount: u64, now_ms: i64) -> Result<(), u64> {
        let now_ms = self.clamp(now_ms);
        let window_ms = Window::window_ms(rate);
        let horizon = now_ms.saturating_sub(window_ms);
        let aged: u64 = self
            .entries()
            .take_while(|(t, _)| *t <= horizon)
            .map(|(_, a)| *a)
            .sum();
        let used = self.used.saturating_sub(aged);
        if used.saturating_add(amount) <= rate.count {
            return Ok(());
        }
        if amount > rate.count {
            return Err(rate.seconds());
        }
        let mut remaining = used;
        for (t, a) in self.entries().skip_while(|(t, _)| *t <= horizon) {
            remaining = remaining.saturating_sub(*a);
            if remaining.saturating_add(amount) <= rate.count {
                let wait_ms = t.saturating_add(window_ms).saturating_sub(now_ms).max(1);
                return Err(u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1));
            }
        }
        Err(rate.seconds())
    }

    /// Trims, and adds `amount` if it fits: [`Window::trim`],
    /// [`Window::fits`] and [`Window::add`] in one.
    ///
    /// # Errors
    /// The wait in seconds, as [`Window::fits`].
    pub fn take(&mut self, rate: Rate, amount: u64, now_ms: i64) -> Result<(), u64> {
        if amount == 0 {
            // Nothing to take: a look.
            return self.fits(rate, 0, now_ms);
        }
        // Checked first: a take that does not fit changes nothing (an
        // aged entry dropped at a time later than `latest` could still
        // count for a request dated between the two).
        self.fits(rate, amount, now_ms)?;
        let window_ms = Window::window_ms(rate);
        self.trim_to(window_ms, now_ms);
        self.add(amount, now_ms);
        Ok(())
    }

    /// Adds `amount` allowed at `now_ms`.
    pub fn add(&mut self, amount: u64, now_ms: i64) {
        if amount == 0 {
            return;
        }
        let now_ms = self.clamp(now_ms);
        self.latest = Some(now_ms);
        self.used = self.used.saturating_add(amount);
        let (t, a) = self.open;
        if a > 0 && now_ms == t {
            self.open = (now_ms, a.saturating_add(amount));
        } else {
            if a > 0 {
                self.log.push_back(self.open);
            }
            self.open = (now_ms, amount);
        }
    }
}

/// A limit and agent, owned, with its hash (the table's entry).
#[derive(Debug)]
struct Entry {
    hash: u64,
    scope: Scope,
    agent: Box<str>,
    window: Window,
}

impl Entry {
    #[inline]
    fn is(&self, item: &Acquire<'_>) -> bool {
        same(&self.agent, item.agent) && self.scope.is(item.scope)
    }
}

/// The table's hash of a limit and agent: the limit's, hashed once at
/// load, and the agent's name.
#[inline]
fn key_hash(item: &Acquire<'_>) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write_u64(item.scope.hash_value());
    item.agent.hash(&mut h);
    h.finish()
}

/// String equality without calling `memcmp`: names are short, and the
/// library call (an AVX-512 variant on some machines) costs several times
/// more than comparing them here: eight bytes at a time, the last (or
/// only) word overlapping the one before.
///
/// Public for the audit log (`writ-audit`), which compares each queued
/// record's names with the record's before it on the calling thread; it
/// is `a == b` for byte slices, only faster for short ones.
#[inline]
#[must_use]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| -> u64 {
        s.get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u64::from_ne_bytes)
    };
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        return word(a, n - 8) == word(b, n - 8);
    }
    let half = |s: &[u8], at: usize| -> u32 {
        s.get(at..at + 4)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u32::from_ne_bytes)
    };
    if n >= 4 {
        return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// String equality without calling `memcmp` (see [`same_bytes`]).
#[inline]
fn same(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

type Windows = hashbrown::HashTable<Entry>;

/// Counts in this process, behind one lock (taken only by requests that
/// meet a limit, and held for a table lookup and a few additions).
/// Shared by every thread using the runtime; give the same store to a
/// reloaded runtime to keep the counts.
///
/// The lock is a spin lock that yields the thread while another holds
/// it: taking and releasing it is one atomic exchange and one store, half
/// the cost of a std mutex, which matters on a path taken by every
/// limited decision. A panic while it is held (none is expected: every
/// update is a single push or trim) releases it, leaving the counts as
/// they were.
#[derive(Default)]
pub struct InProcess {
    windows: spin::mutex::SpinMutex<Windows, spin::relax::Yield>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never waits: formatting while this thread holds the lock must
        // not spin forever.
        let mut d = f.debug_struct("InProcess");
        match self.windows.try_lock() {
            Some(w) => d.field("windows", &w.len()),
            None => d.field("windows", &"<locked>"),
        };
        d.finish()
    }
}

impl InProcess {
    #[must_use]
    pub fn new() -> InProcess {
        InProcess::default()
    }

    fn lock(&self) -> spin::mutex::SpinMutexGuard<'_, Windows, spin::relax::Yield> {
        self.windows.lock()
    }

    /// The number of limit × agent windows held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no window is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn full(index: usize) -> impl FnOnce(u64) -> Refusal {
    move |retry_after_s| Refusal::Full {
        index,
        retry_after_s,
    }
}

fn insert(windows: &mut Windows, hash: u64, item: &Acquire<'_>, now_ms: i64) {
    let mut window = Window::default();
    window.add(item.amount, now_ms);
    windows.insert_unique(
        hash,
        Entry {
            hash,
            scope: item.scope.clone(),
            agent: item.agent.into(),
            window,
        },
        |e| e.hash,
    );
}

impl LimitStore for InProcess {
    fn peek(&self, item: &Acquire<'_>, now_ms: i64) -> Result<(), Refusal> {
        let hash = key_hash(item);
        let mut guard = self.lock();
        match guard.find_mut(hash, |e| e.is(item)) {
            // A look changes nothing (see `Window::fits`).
            Some(e) => e.window.fits(item.rate, item.amount, now_ms),
            None => Window::default().fits(item.rate, item.amount, now_ms),
        }
        .map_err(full(0))
    }

    fn acquire(&self, items: &[Acquire<'_>], now_ms: i64) -> Result<(), Refusal> {
        // One limit (the common case): one lookup.
        if let [item] = items {
            let hash = key_hash(item);
            let mut guard = self.lock();
            return match guard.find_mut(hash, |e| e.is(item)) {
                Some(e) => e
                    .window
                    .take(item.rate, item.amount, now_ms)
                    .map_err(full(0)),
                None => {
                    Window::default()
                        .fits(item.rate, item.amount, now_ms)
                        .map_err(full(0))?;
                    if item.amount > 0 {
                        insert(&mut guard, hash, item, now_ms);
                    }
                    Ok(())
                }
            };
        }
        let mut guard = self.lock();
        for (index, item) in items.iter().enumerate() {
            // The same limit twice in one decision: count what this
            // decision already takes from it.
            let before: u64 = items
                .iter()
                .take(index)
                .filter(|o| o.scope.is(item.scope))
                .map(|o| o.amount)
                .sum();
            let amount = item.amount.saturating_add(before);
            match guard.find_mut(key_hash(item), |e| e.is(item)) {
                Some(e) => e.window.fits(item.rate, amount, now_ms),
                None => Window::default().fits(item.rate, amount, now_ms),
            }
            .map_err(full(index))?;
        }
        // Everything fits: drop what has aged out of each window taken
        // from, and take.
        for item in items {
            if item.amount == 0 {
                continue;
            }
            let hash = key_hash(item);
            match guard.find_mut(hash, |e| e.is(item)) {
                Some(e) => {
                    e.window.trim(item.rate, now_ms);
                    e.window.add(item.amount, now_ms);
                }
                None => insert(&mut guard, hash, item, now_ms),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    static RULE: std::sync::LazyLock<Scope> =
        std::sync::LazyLock::new(|| Scope::new(LimitKind::Rule, "r", ""));
    static AGENT: std::sync::LazyLock<Scope> =
        std::sync::LazyLock::new(|| Scope::new(LimitKind::Agent, "r", ""));

    fn item(agent: &str, count: u64, amount: u64) -> Acquire<'_> {
        Acquire {
            scope: &RULE,
            agent,
            rate: Rate {
                count,
                unit: crate::vocab::RateUnit::Minute,
            },
            amount,
        }
    }

    #[test]
    fn same_is_string_equality() {
        let words = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abce",
            "abcde",
            "bbcde",
            "abcdefg",
            "abcdefgh",
            "abcdefgi",
            "xbcdefgh",
            "abcdefghi",
            "abcdefghj",
            "billing-agent",
            "billing-agenu",
            "cilling-agent",
            "billing-agent-2",
            "billing-agent-3",
            "é",
            "e\u{301}",
        ];
        for a in words {
            for b in words {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn acquire_takes_all_or_nothing() {
        let s = InProcess::new();
        assert_eq!(s.acquire(&[item("a", 3, 2)], 0), Ok(()));
        let mut other = item("a", 10, 1);
        other.scope = &AGENT;
        // The second item does not fit: the first is not taken either.
        assert!(matches!(
            s.acquire(&[other, item("a", 3, 2)], 1),
            Err(Refusal::Full { index: 1, .. })
        ));
        assert_eq!(s.peek(&other, 1), Ok(()));
        assert_eq!(s.acquire(&[other, item("a", 3, 1)], 1), Ok(()));
        assert!(matches!(
            s.peek(&item("a", 3, 1), 2),
            Err(Refusal::Full { .. })
        ));
        // Counted per agent, and the window slides.
        assert_eq!(s.peek(&item("b", 3, 3), 2), Ok(()));
        assert_eq!(s.peek(&item("a", 3, 3), 60_001), Ok(()));
    }

    #[test]
    fn a_limit_is_its_kind_name_and_key_not_its_scope_object() {
        let s = InProcess::new();
        let take = |scope: &Scope, agent: &str| {
            s.acquire(
                &[Acquire {
                    scope,
                    agent,
                    rate: Rate {
                        count: 1,
                        unit: crate::vocab::RateUnit::Minute,
                    },
                    amount: 1,
                }],
                0,
            )
        };
        // Built again (as a reloaded bundle builds it): the same count.
        assert_eq!(take(&Scope::new(LimitKind::Rule, "r", ""), "a"), Ok(()));
        assert!(take(&Scope::new(LimitKind::Rule, "r", ""), "a").is_err());
        // Any part different: another count.
        for other in [
            Scope::new(LimitKind::RuleShared, "r", ""),
            Scope::new(LimitKind::Agent, "r", ""),
            Scope::new(LimitKind::Rule, "s", ""),
            Scope::new(LimitKind::Rule, "r", "x"),
            Scope::new(LimitKind::Rule, "", "r"),
        ] {
            assert_eq!(take(&other, "a"), Ok(()), "{other:?}");
        }
        assert_eq!(take(&Scope::new(LimitKind::Rule, "r", ""), "b"), Ok(()));
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn retry_is_when_enough_has_left_the_window() {
        let s = InProcess::new();
        s.acquire(&[item("a", 2, 1)], 0).unwrap();
        s.acquire(&[item("a", 2, 1)], 30_000).unwrap();
        assert_eq!(
            s.peek(&item("a", 2, 1), 45_000),
            Err(Refusal::Full {
                index: 0,
                retry_after_s: 15
            })
        );
    }

    #[test]
    fn one_entry_per_limit_and_agent() {
        let s = InProcess::new();
        for t in 0..100 {
            s.peek(&item("a", 1000, 1), t).unwrap();
            s.acquire(&[item("a", 1000, 1)], t).unwrap();
        }
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_window_is_exact_and_the_log_holds_one_entry_per_millisecond() {
        let mut w = Window::default();
        let rate = Rate {
            count: 1_000_000,
            unit: crate::vocab::RateUnit::Second,
        };
        for ms in 0..10_000 {
            w.trim(rate, ms);
            w.add(1, ms);
            w.add(1, ms);
        }
        // A one-second window: the last 1,000 milliseconds, two each.
        assert_eq!(w.used, 2000);
        assert_eq!(w.entries().count(), 1000);
        let total: u64 = w.entries().map(|(_, a)| a).sum();
        assert_eq!(total, w.used);
        // An entry stamped t counts until t + window, not a millisecond
        // longer: at 10,500 the entries of 9,000..=9,500 have left.
        w.trim(rate, 10_500);
        assert_eq!(w.used, 2 * 499);
        w.trim(rate, 11_000);
        assert_eq!((w.used, w.entries().count()), (0, 0));
    }
}
