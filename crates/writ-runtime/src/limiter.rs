//! Sliding-window counters, shared by every thread using a runtime.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::model::Rate;

/// Which limit: a rule's (kind 0, rule index) or an agent entry's (kind 1,
/// entry index, limit index); counted per acting agent.
pub type LimitId = (u8, u32, u32);

/// Per limit, per agent: the allowed amounts in the window, oldest first.
type Windows = HashMap<LimitId, HashMap<String, VecDeque<(i64, u64)>>>;

#[derive(Debug, Default)]
pub struct Limiter {
    windows: Mutex<Windows>,
}

impl Limiter {
    /// `Ok` when `amount` more fits; `Err(seconds)` until it would.
    pub fn check(
        &self,
        id: LimitId,
        agent: &str,
        rate: Rate,
        amount: u64,
        now_ms: i64,
    ) -> Result<(), u64> {
        let window_ms = i64::try_from(rate.seconds() * 1000).unwrap_or(i64::MAX);
        let mut guard = match self.windows.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(log) = guard.get_mut(&id).and_then(|m| m.get_mut(agent)) else {
            return if amount <= rate.count {
                Ok(())
            } else {
                Err(rate.seconds())
            };
        };
        let horizon = now_ms.saturating_sub(window_ms);
        while log.front().is_some_and(|(t, _)| *t <= horizon) {
            log.pop_front();
        }
        let used: u64 = log.iter().map(|(_, a)| *a).sum();
        if used.saturating_add(amount) <= rate.count {
            return Ok(());
        }
        if amount > rate.count {
            return Err(rate.seconds());
        }
        let mut remaining = used;
        for (t, a) in log.iter() {
            remaining = remaining.saturating_sub(*a);
            if remaining.saturating_add(amount) <= rate.count {
                let wait_ms = t.saturating_add(window_ms).saturating_sub(now_ms).max(1);
                return Err(u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1));
            }
        }
        Err(rate.seconds())
    }

    pub fn commit(&self, id: LimitId, agent: &str, amount: u64, now_ms: i64) {
        if amount == 0 {
            return;
        }
        let mut guard = match self.windows.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard
            .entry(id)
            .or_default()
            .entry(agent.to_owned())
            .or_default()
            .push_back((now_ms, amount));
    }
}
