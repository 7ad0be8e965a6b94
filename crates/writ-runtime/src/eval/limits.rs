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

    /// The reason a full limit gives.
    pub(super) fn full(&self, agent: &str) -> String {
        match self.scope.kind() {
            LimitKind::Rule => format!(
                "rate limit `{}` of rule `{}` reached for agent `{agent}`",
                self.rate,
                self.scope.name()
            ),
            LimitKind::RuleShared => format!(
                "rate limit `{}` of rule `{}` (shared by all agents) reached",
                self.rate,
                self.scope.name()
            ),
            LimitKind::Agent => format!(
                "agent `{agent}` is over its {} limit `{}` ({}: {})",
                self.metric.as_str(),
                self.rate,
                self.key,
                self.rate.count
            ),
        }
    }
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
