//! The amounts a decision takes from its limits, held until it ends as
//! allow and then taken all at once (or none).

use super::*;

/// Limits to commit if the decision ends as allow.
/// An amount a decision takes from a limit once it allows.
#[derive(Clone, Copy)]
pub(super) struct Hold<'s> {
    pub(super) scope: &'s LimitScope,
    pub(super) rate: Rate,
    pub(super) amount: u64,
    /// What the amount counts (agent limits).
    pub(super) metric: Metric,
    /// An agent entry's limit's key, as the author wrote it.
    pub(super) key: &'s str,
    /// The rule whose limit this is.
    pub(super) rule: Option<&'s PRule>,
    /// The agent entry whose limit this is.
    pub(super) agent: Option<&'s PAgent>,
}

impl<'s> Hold<'s> {
    pub(super) fn acquire<'a>(&self, agent: &'a str) -> Acquire<'a>
    where
        's: 'a,
    {
        Acquire {
            scope: self.scope,
            // A shared limit is one count, whoever acts.
            agent: if self.scope.kind() == LimitKind::RuleShared {
                ""
            } else {
                agent
            },
            rate: self.rate,
            amount: self.amount,
        }
    }

    /// The reason a full limit gives. Written piece by piece, not with
    /// `format!`: under load most answers are this refusal.
    pub(super) fn full(&self, agent: &str) -> String {
        let name = self.scope.name();
        let mut s = String::with_capacity(72 + name.len() + agent.len() + self.key.len());
        match self.scope.kind() {
            LimitKind::Rule => {
                s.push_str("rate limit `");
                push_rate(&mut s, self.rate);
                s.push_str("` of rule `");
                s.push_str(name);
                s.push_str("` reached for agent `");
                s.push_str(agent);
                s.push('`');
            }
            LimitKind::RuleShared => {
                s.push_str("rate limit `");
                push_rate(&mut s, self.rate);
                s.push_str("` of rule `");
                s.push_str(name);
                s.push_str("` (shared by all agents) reached");
            }
            LimitKind::Agent => {
                s.push_str("agent `");
                s.push_str(agent);
                s.push_str("` is over its ");
                s.push_str(self.metric.as_str());
                s.push_str(" limit `");
                push_rate(&mut s, self.rate);
                s.push_str("` (");
                s.push_str(self.key);
                s.push_str(": ");
                push_u64(&mut s, self.rate.count);
                s.push(')');
            }
        }
        s
    }
}

/// A rate as its `Display` writes it (`3/hour`).
fn push_rate(s: &mut String, rate: Rate) {
    push_u64(s, rate.count);
    s.push('/');
    s.push_str(rate.unit.as_str());
}

fn push_u64(s: &mut String, n: u64) {
    s.push_str(crate::json_text::decimal(n, &mut [0; 20]));
}

/// A full limit, as a decision's reason: its sentence (which names the
/// request's agent) is written only when asked for, so that a refusal
/// under load does not format it. Boxed: a decision stays small.
#[derive(Clone)]
pub struct FullLimit<'b>(pub(super) Box<Hold<'b>>);

impl FullLimit<'_> {
    /// The sentence, for `agent`.
    #[must_use]
    pub fn sentence(&self, agent: &str) -> String {
        self.0.full(agent)
    }
}

impl std::fmt::Debug for FullLimit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FullLimit")
            .field(&self.sentence("{agent}"))
            .finish()
    }
}

impl PartialEq for FullLimit<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.sentence("") == other.sentence("")
    }
}

pub(super) fn unavailable(why: &str) -> String {
    format!("the limit store cannot be reached ({why}); denying rather than not counting")
}

/// The amounts a decision will take if it allows: the first inline (no
/// allocation, and next to nothing to set up, on the decision path), more
/// in `more`.
pub(super) struct Pending<'s> {
    pub(super) first: Option<Hold<'s>>,
    pub(super) more: Vec<Hold<'s>>,
    /// The decision is for real (not an explanation) and nothing after
    /// the rules can turn an allow into something else but the limits
    /// themselves: a first-match rule's limit need not be looked at while
    /// deciding, since taking it at the end refuses just as a look would.
    pub(super) direct: bool,
}

impl<'s> Pending<'s> {
    pub(super) fn new() -> Pending<'s> {
        Pending {
            first: None,
            more: Vec::new(),
            direct: false,
        }
    }

    pub(super) fn push(&mut self, hold: Hold<'s>) {
        if self.first.is_none() {
            self.first = Some(hold);
        } else {
            self.more.push(hold);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub(super) fn get(&self, index: usize) -> Option<&Hold<'s>> {
        match index.checked_sub(1) {
            None => self.first.as_ref(),
            Some(i) => self.more.get(i),
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Hold<'s>> {
        self.first.iter().chain(&self.more)
    }

    /// Takes them all for `agent`, or none.
    pub(super) fn acquire(
        &self,
        store: &dyn LimitStore,
        agent: &str,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        match &self.first {
            None => Ok(()),
            Some(first) if self.more.is_empty() => {
                store.acquire(std::slice::from_ref(&first.acquire(agent)), now_ms)
            }
            Some(_) => {
                let items: Vec<Acquire<'_>> = self.iter().map(|h| h.acquire(agent)).collect();
                store.acquire(&items, now_ms)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::RateUnit;

    /// The rate in a refusal's sentence is what `Rate`'s `Display`
    /// writes, for counts of every length.
    #[test]
    fn rates_are_written_as_display_writes_them() {
        let mut compared = 0;
        for count in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            for unit in [
                RateUnit::Second,
                RateUnit::Minute,
                RateUnit::Hour,
                RateUnit::Day,
            ] {
                let rate = Rate { count, unit };
                let mut ours = String::new();
                push_rate(&mut ours, rate);
                assert_eq!(ours, rate.to_string());
                compared += 1;
            }
        }
        assert_eq!(compared, 36);
    }
}
