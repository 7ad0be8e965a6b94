//! Sliding-window counters for rule limits, agent limits and token budgets.
//!
//! Each key keeps the log of what it admitted (time, amount) within its
//! window. A check asks whether `amount` more fits under the limit over the
//! window ending now; only decisions that end as allow are committed, so a
//! denied request never uses up a limit. Times come from the requests, so a
//! batch replayed with fixed `at` values gives the same answers every time.

use std::collections::{HashMap, VecDeque};

use writ_ir::{AgentId, Rate, RuleId};

/// What a counter belongs to: one rule or one agent limit, for one agent,
/// or a rule's shared limit, for every agent together.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Rule(RuleId, String),
    RuleShared(RuleId),
    Agent(AgentId, usize, String),
}

/// The counters of one evaluator (one process, one CLI batch).
#[derive(Debug, Default)]
pub struct Limiter {
    windows: HashMap<LimitKey, Log>,
}

/// What one key admitted, oldest first, and the latest time it admitted
/// something at (kept when that entry has aged out).
#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<(i64, u64)>,
    latest: Option<i64>,
}

impl Limiter {
    /// `Ok` when `amount` more fits under `rate` at `now_ms`; otherwise the
    /// whole seconds until it would (at least 1).
    ///
    /// # Errors
    /// `Err(retry_after_s)` when the limit is reached.
    pub fn check(
        &mut self,
        key: &LimitKey,
        rate: Rate,
        amount: u64,
        now_ms: i64,
    ) -> Result<(), u64> {
        let window_ms = i64::try_from(rate.unit.seconds() * 1000).unwrap_or(i64::MAX);
        let Some(log) = self.windows.get(key) else {
            return if amount <= rate.count {
                Ok(())
            } else {
                Err(rate.unit.seconds())
            };
        };
        // Time never runs backwards within a window: a request earlier
        // than the latest one admitted is taken at that one's time. A check
        // changes nothing: entries that have left the window are skipped
        // here and dropped only when a decision is committed.
        let now_ms = log.latest.map_or(now_ms, |t| now_ms.max(t));
        let horizon = now_ms.saturating_sub(window_ms);
        let live = || log.entries.iter().skip_while(|(t, _)| *t <= horizon);
        let used: u64 = live().map(|(_, a)| *a).sum();
        if used.saturating_add(amount) <= rate.count {
            return Ok(());
        }
        if amount > rate.count {
            return Err(rate.unit.seconds());
        }
        // Free the oldest entries until the request fits; it fits when the
        // last of them leaves the window.
        let mut remaining = used;
        for (t, a) in live() {
            remaining = remaining.saturating_sub(*a);
            if remaining.saturating_add(amount) <= rate.count {
                let wait_ms = t.saturating_add(window_ms).saturating_sub(now_ms).max(1);
                return Err(u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1));
            }
        }
        Err(rate.unit.seconds())
    }

    /// Records an admitted decision: drops what has left the window (at
    /// the request's time, or the newest entry's if that is later), then
    /// adds the amount.
    pub fn commit(&mut self, key: LimitKey, rate: Rate, amount: u64, now_ms: i64) {
        if amount == 0 {
            return;
        }
        let window_ms = i64::try_from(rate.unit.seconds() * 1000).unwrap_or(i64::MAX);
        let log = self.windows.entry(key).or_default();
        let now_ms = log.latest.map_or(now_ms, |t| now_ms.max(t));
        let horizon = now_ms.saturating_sub(window_ms);
        while log.entries.front().is_some_and(|(t, _)| *t <= horizon) {
            log.entries.pop_front();
        }
        log.entries.push_back((now_ms, amount));
        log.latest = Some(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_ir::RateUnit;

    #[test]
    fn admits_up_to_the_limit_then_says_when_to_retry() {
        let mut l = Limiter::default();
        let key = LimitKey::Rule(RuleId(0), "a".into());
        let rate = Rate {
            count: 2,
            unit: RateUnit::Minute,
        };
        for t in [0, 10_000] {
            assert_eq!(l.check(&key, rate, 1, t), Ok(()));
            l.commit(key.clone(), rate, 1, t);
        }
        assert_eq!(l.check(&key, rate, 1, 20_000), Err(40));
        // The first entry leaves the window at 60 s exactly.
        assert_eq!(l.check(&key, rate, 1, 60_000), Ok(()));
        // Other agents have their own counters.
        assert_eq!(
            l.check(&LimitKey::Rule(RuleId(0), "b".into()), rate, 1, 20_000),
            Ok(())
        );
        // So does the rule's shared count.
        assert_eq!(
            l.check(&LimitKey::RuleShared(RuleId(0)), rate, 1, 20_000),
            Ok(())
        );
    }

    #[test]
    fn token_budgets_count_amounts() {
        let mut l = Limiter::default();
        let key = LimitKey::Agent(AgentId(0), 0, "a".into());
        let rate = Rate {
            count: 100,
            unit: RateUnit::Hour,
        };
        assert_eq!(l.check(&key, rate, 60, 0), Ok(()));
        l.commit(key.clone(), rate, 60, 0);
        assert_eq!(l.check(&key, rate, 50, 1000), Err(3599));
        assert_eq!(l.check(&key, rate, 40, 1000), Ok(()));
        assert_eq!(l.check(&key, rate, 101, 1000), Err(3600));
    }
}
