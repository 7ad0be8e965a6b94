//! Explanations: why a request got its decision, step by step.
//!
//! [`Evaluator::explain`] walks the same checks as [`Evaluator::check`], in
//! the same order, and records each: the delegation chain, the principal,
//! the ceilings, then every rule with the first reason it did not apply (an
//! action or target pattern, a scope list, the innermost failing part of its
//! condition), or what it decided. It is a separate walk so the normal path
//! pays nothing; the two share the checks themselves (`miss`, `outcome`,
//! `ceilings`), so they cannot drift apart.
//!
//! The walk does not count anything against limits; the decision returned
//! next to the explanation comes from `check` and counts as usual, so
//! explaining a sequence of requests keeps limits exactly as checking does.

use writ_diagnostics::Span;
use writ_ir::{Combining, Condition, Effect, Field, Rule, Value};

use crate::evaluate::{
    Blocked, Clock, Miss, Principal, Read, ScopeList, Truth, holds, miss, read, show,
};
use crate::{Decision, Evaluator, Request};

/// Every step that led to a decision, in evaluation order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Explanation {
    pub steps: Vec<Step>,
}

/// One check of the decision procedure.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// The delegation chain decided before any rule: too deep, a hop not
    /// permitted, or (strict ceiling) a member not allowed the action.
    Chain { reason: String },
    /// Under the strict ceiling a member of the chain needs approval: an
    /// allow from the rules becomes approve.
    ChainApproval { reason: String },
    /// The principal could not be resolved (its token); denied before any rule.
    Principal { reason: String },
    /// An agent or role entry's ceiling (a list, a limit, TLS, delegates,
    /// the delegation depth) denied before any rule.
    Ceiling { reason: String, span: Option<Span> },
    /// A rule, and what became of it.
    Rule(RuleStep),
    /// No rule decided: the policy default.
    Default {
        effect: Effect,
        span: Option<Span>,
        reason: Option<String>,
    },
}

/// A rule considered for the request.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleStep {
    pub name: String,
    /// The whole rule.
    pub span: Span,
    pub outcome: Outcome,
    /// True for the rule whose decision is the answer.
    pub decided: bool,
    /// For a deny or approval that applied because its condition could
    /// not be judged (not because it held): the part that could not be
    /// judged, and what the request holds for it.
    pub unjudged: Option<(Written, String)>,
}

/// What became of one rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It applied, and gave its own effect (the answer when `decided`,
    /// otherwise overridden under deny-overrides).
    Applied(Effect),
    /// No action pattern matched the request's action.
    Action {
        action: String,
        patterns: Vec<Written>,
    },
    /// No target pattern matched the request's target.
    Target {
        target: Option<String>,
        patterns: Vec<Written>,
    },
    /// The principal is outside one list of the rule's scope.
    Scope {
        list: ScopeList,
        wanted: Vec<Written>,
        /// What the principal has for that list (its id, roles, tier, tags).
        have: Vec<String>,
    },
    /// The condition does not hold; `failed` is its innermost failing part.
    /// `unjudged`: that part cannot be judged (a value of a type its
    /// operator is not defined on, an ambiguous path) rather than being
    /// false, which keeps an allow rule from applying just the same.
    Condition {
        failed: Written,
        actual: String,
        unjudged: bool,
    },
    /// It applied but a constraint failed, so it denied.
    Constraint { failed: Written, reason: String },
    /// It applied but its rate limit is reached, so it denied.
    Limit { failed: Written, retry_after_s: u64 },
    /// Not looked at: an earlier rule decided under first-match.
    Skipped,
}

/// A piece of policy text, as written, with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub text: String,
    pub span: Option<Span>,
}

impl Evaluator<'_> {
    /// Decides a request as [`Evaluator::check`] does (limits count the
    /// same) and explains the decision.
    pub fn explain(&mut self, req: &Request, now: jiff::Timestamp) -> (Decision, Explanation) {
        let clock = self.clock(req, now);
        let mut steps = Vec::new();
        self.trace(req, &clock, &mut steps);
        let decision = self.check(req, now);
        (decision, Explanation { steps })
    }

    fn trace(&mut self, req: &Request, clock: &Clock, steps: &mut Vec<Step>) {
        if req.chain.len() > 1 {
            match self.chain(req, clock) {
                Err(denied) => {
                    steps.push(Step::Chain {
                        reason: denied.reason.unwrap_or_default(),
                    });
                    return;
                }
                Ok(Some(floor)) => steps.push(Step::ChainApproval {
                    reason: floor.reason.unwrap_or_default(),
                }),
                Ok(None) => {}
            }
        }
        let principal = match self.principal(req) {
            Ok(p) => p,
            Err(reason) => {
                steps.push(Step::Principal { reason });
                return;
            }
        };
        let mut pending = Vec::new();
        if let Some((denied, span)) = self.ceilings(req, &principal, clock, &mut pending) {
            steps.push(Step::Ceiling {
                reason: denied.reason.unwrap_or_default(),
                span,
            });
            return;
        }
        let set = self.set;
        let first_match = set.settings.combining.value == Combining::FirstMatch;
        let rank = |e: Effect| match e {
            Effect::Deny => 2,
            Effect::Approve => 1,
            Effect::Allow => 0,
        };
        // The step index and effect of the decision so far.
        let mut best: Option<(usize, Effect)> = None;
        for rule in &set.rules {
            let outcome = if first_match && best.is_some() {
                Outcome::Skipped
            } else {
                match miss(rule, req, &principal, clock) {
                    Some(m) => why_not(rule, m, req, &principal, clock),
                    None => {
                        let (decision, _, blocked) = self.outcome(rule, req, &principal, clock);
                        if best.is_none_or(|(_, b)| rank(decision.effect) > rank(b)) {
                            best = Some((steps.len(), decision.effect));
                        }
                        match blocked {
                            Blocked::No => Outcome::Applied(decision.effect),
                            Blocked::Constraint(i) => Outcome::Constraint {
                                failed: rule.constraints.get(i).map_or(
                                    Written {
                                        text: String::new(),
                                        span: None,
                                    },
                                    |c| Written {
                                        text: c.name.clone(),
                                        span: Some(c.span),
                                    },
                                ),
                                reason: decision.reason.unwrap_or_default(),
                            },
                            Blocked::Limit => Outcome::Limit {
                                failed: Written {
                                    text: rule
                                        .limit
                                        .as_ref()
                                        .map(|l| l.value.to_string())
                                        .unwrap_or_default(),
                                    span: rule.limit.as_ref().map(|l| l.span),
                                },
                                retry_after_s: decision.retry_after_s.unwrap_or(0),
                            },
                        }
                    }
                }
            };
            let unjudged = match (&outcome, &rule.condition) {
                (Outcome::Applied(_), Some(c)) if holds(c, req, clock) == Truth::Unknown => {
                    let part = unknown_part(c, req, clock);
                    Some((
                        Written {
                            text: part.to_string(),
                            span: condition_span(part),
                        },
                        actual(part, req, clock),
                    ))
                }
                _ => None,
            };
            steps.push(Step::Rule(RuleStep {
                name: rule.name.value.clone(),
                span: rule.span,
                outcome,
                decided: false,
                unjudged,
            }));
        }
        match best.and_then(|(i, _)| steps.get_mut(i)) {
            Some(Step::Rule(step)) => step.decided = true,
            _ => steps.push(Step::Default {
                effect: set.settings.default_effect.value,
                span: set.settings.default_effect.span,
                reason: set
                    .settings
                    .default_reason
                    .as_ref()
                    .map(|r| r.value.clone()),
            }),
        }
    }
}

fn why_not(rule: &Rule, m: Miss<'_>, req: &Request, p: &Principal<'_>, clock: &Clock) -> Outcome {
    let written = |pats: &[writ_ir::Pattern]| {
        pats.iter()
            .map(|p| Written {
                text: p.as_str().to_owned(),
                span: Some(p.span),
            })
            .collect()
    };
    let names = |list: &[writ_ir::Spanned<String>]| {
        list.iter()
            .map(|n| Written {
                text: n.value.clone(),
                span: Some(n.span),
            })
            .collect()
    };
    match m {
        Miss::Action => Outcome::Action {
            action: req.action.clone(),
            patterns: written(&rule.actions),
        },
        Miss::Target => Outcome::Target {
            target: req.target.clone(),
            patterns: written(&rule.targets),
        },
        Miss::Scope(list) => {
            let s = &rule.scope;
            let (wanted, have) = match list {
                ScopeList::Agents => (names(&s.agents), vec![p.id.to_owned()]),
                ScopeList::Roles => (
                    names(&s.roles),
                    p.roles.iter().map(|r| (*r).to_owned()).collect(),
                ),
                ScopeList::Tiers => (
                    s.tiers
                        .iter()
                        .map(|t| Written {
                            text: t.value.to_string(),
                            span: Some(t.span),
                        })
                        .collect(),
                    p.tier.iter().map(ToString::to_string).collect(),
                ),
                ScopeList::Tags => (
                    names(&s.tags),
                    p.tags.iter().map(|t| (*t).to_owned()).collect(),
                ),
            };
            Outcome::Scope { list, wanted, have }
        }
        Miss::Condition(c) => {
            let failed = culprit(c, req, clock, rule.effect.value);
            Outcome::Condition {
                failed: Written {
                    text: failed.to_string(),
                    span: condition_span(failed),
                },
                actual: actual(failed, req, clock),
                unjudged: holds(failed, req, clock) == Truth::Unknown,
            }
        }
    }
}

/// The innermost part of a failing condition that fails: the first failing
/// conjunct, recursively. A failing `or` is reported whole (every
/// alternative failed), as is a failing `not` (its inner part held).
fn culprit<'c>(c: &'c Condition, req: &Request, clock: &Clock, effect: Effect) -> &'c Condition {
    match c {
        Condition::All(parts) => parts
            .iter()
            .find(|p| !holds(p, req, clock).lets_apply(effect))
            .map_or(c, |p| culprit(p, req, clock, effect)),
        _ => c,
    }
}

/// The innermost part of a condition that cannot be judged.
fn unknown_part<'c>(c: &'c Condition, req: &Request, clock: &Clock) -> &'c Condition {
    match c {
        Condition::All(parts) | Condition::Any(parts) => parts
            .iter()
            .find(|p| holds(p, req, clock) == Truth::Unknown)
            .map_or(c, |p| unknown_part(p, req, clock)),
        Condition::Not(inner, _) => unknown_part(inner, req, clock),
        _ => c,
    }
}

/// The span of a condition: its own, or the cover of its parts'.
fn condition_span(c: &Condition) -> Option<Span> {
    match c {
        Condition::Compare { span, .. }
        | Condition::In { span, .. }
        | Condition::Glob { span, .. }
        | Condition::Contains { span, .. }
        | Condition::Exists { span, .. }
        | Condition::Time { span, .. }
        | Condition::Weekdays { span, .. }
        | Condition::Not(_, span) => Some(*span),
        Condition::All(parts) | Condition::Any(parts) => parts
            .iter()
            .filter_map(condition_span)
            .reduce(|a, b| if a.file == b.file { a.cover(b) } else { a }),
    }
}

/// The kind of value a condition's operator is about, when the value's
/// type can be why it failed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    String,
    /// `contains`: a list, or a string to look in.
    ListOrString,
}

impl Kind {
    fn of(v: &Value) -> Option<Kind> {
        match v {
            Value::Number(_) => Some(Kind::Number),
            Value::String(_) => Some(Kind::String),
            _ => None,
        }
    }

    fn fits(self, v: &Value) -> bool {
        match self {
            Kind::Number => matches!(v, Value::Number(_)),
            Kind::String => matches!(v, Value::String(_)),
            Kind::ListOrString => matches!(v, Value::List(_) | Value::String(_)),
        }
    }

    fn not(self) -> &'static str {
        match self {
            Kind::Number => "not a number",
            Kind::String => "not a string",
            Kind::ListOrString => "neither a list nor a string",
        }
    }
}

/// The kind of value a condition compares with, if it is one kind.
fn expected(c: &Condition) -> Option<Kind> {
    match c {
        Condition::Compare { value, .. } => Kind::of(value),
        Condition::In { values, .. } => {
            let mut kinds = values.iter().map(Kind::of);
            let first = kinds.next().flatten()?;
            kinds.all(|k| k == Some(first)).then_some(first)
        }
        Condition::Glob { .. } => Some(Kind::String),
        Condition::Contains { .. } => Some(Kind::ListOrString),
        _ => None,
    }
}

/// A value as the explanation shows it: with its type, and, when the
/// condition is about another kind of value, what it is not (`"50"` is a
/// string, and `amount <= 100` is about numbers).
fn typed(v: &Value, want: Option<Kind>) -> String {
    let shown = match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Number(_) if want.is_none_or(|k| k.fits(v)) => show(v),
        Value::Number(_) => format!("the number {v}"),
        Value::Bool(_) => format!("the boolean {v}"),
        Value::List(_) => format!("the list {v}"),
        Value::Map(_) => format!("the map {v}"),
        Value::Null => "null".to_owned(),
    };
    match want {
        Some(k) if !k.fits(v) => format!("{shown}, {}", k.not()),
        _ => shown,
    }
}

/// What the request holds for the fields a failing condition reads.
fn actual(c: &Condition, req: &Request, clock: &Clock) -> String {
    let field = |f: &Field| match read(f, req) {
        Read::Missing => format!("`{f}` is missing"),
        Read::Ambiguous => format!(
            "`{f}` has two readings that differ (a key written with dots and nested maps), so it cannot be judged"
        ),
        Read::Value(v) => format!("`{f}` is {}", typed(&v, expected(c))),
    };
    match c {
        Condition::Compare { field: f, .. }
        | Condition::In { field: f, .. }
        | Condition::Glob { field: f, .. }
        | Condition::Contains { field: f, .. }
        | Condition::Exists { field: f, .. } => field(f),
        Condition::Time { .. } => format!("the time is {}", clock.time),
        Condition::Weekdays { .. } => format!("the day is {:?}", clock.weekday),
        Condition::Not(inner, _) => actual(inner, req, clock),
        Condition::All(parts) | Condition::Any(parts) => {
            let mut seen: Vec<String> = Vec::new();
            for p in parts {
                let a = actual(p, req, clock);
                if !seen.contains(&a) {
                    seen.push(a);
                }
            }
            seen.join(", ")
        }
    }
}
