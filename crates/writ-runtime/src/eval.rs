//! The decision procedure over a prepared bundle. It follows writ's
//! reference evaluator step by step (the differential tests compare them),
//! but finds candidate rules through the action index and evaluates
//! conditions as postfix code.

use std::borrow::Cow;
use std::cmp::Ordering;

use rustc_hash::FxHashMap;

use crate::error::LoadError;
use crate::limiter::{
    Acquire, InProcess, LimitKind, LimitStore, OnStoreFailure, Refusal, Scope as LimitScope,
};
use std::sync::OnceLock;

use crate::matcher::{ActionIndex, Matcher, Narrowing, ScopeKey, Who, any_match};
use crate::model::{
    Atom, Field, Head, Op, Prelude, Rate, Span, Value, r_ceiling_actions, r_condition, r_graph,
    r_rule, scan_condition_entry, scan_rule,
};
use crate::reason::ScopeList;
use crate::vocab::{Combining, CompareOp, Metric, Subject, Tier};
use crate::wire::{Reader, Strings};

pub use crate::vocab::{Effect, Risk};

/// A decision's reason, rendered only when asked for (so that deciding
/// does not allocate).
#[derive(Clone, Debug, PartialEq)]
pub enum Reason<'b> {
    None,
    /// A reason template from the bundle: `{action}`, `{target}` and
    /// `{agent}` are filled in from the request.
    Template(&'b str),
    /// The default decision's sentence naming the action.
    NoRule,
    Text(String),
}

/// The answer to a request. Borrowed names point into the runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision<'b> {
    pub effect: Effect,
    pub rule: Option<&'b str>,
    pub policy: Option<&'b str>,
    pub reason: Reason<'b>,
    pub risk: Option<Risk>,
    pub retry_after_s: Option<u64>,
    /// When the decision was made: the clock the runtime read (or was
    /// given, with `check_at`), in Unix milliseconds — not the request's
    /// `at`. What the audit log records.
    pub time_ms: i64,
    default_effect: Effect,
    /// No rule, agent list, limit or chain check decided: the default did.
    defaulted: bool,
}

impl Decision<'_> {
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// True when the policy's default decided: no rule applied to the
    /// request (rules whose scope left the agent out do not apply, though
    /// the reason names them), and no agent list, limit or chain check
    /// refused it. An adapter asking several forms of one action (writ's
    /// `agent:delegate`, MeshGuard's `handoff:<name>`) uses it to tell a
    /// form the policy says nothing about from one it decides.
    #[must_use]
    pub fn is_default(&self) -> bool {
        self.defaulted
    }

    /// The reason as text, for the request the decision was made for.
    #[must_use]
    pub fn reason_text(&self, req: &crate::request::Request) -> Option<Cow<'_, str>> {
        match &self.reason {
            Reason::None => None,
            Reason::Template(t) => Some(expand(t, req)),
            Reason::NoRule => Some(Cow::Owned(crate::reason::no_rule(
                &req.action,
                &req.agent,
                None,
                self.default_effect,
            ))),
            Reason::Text(s) => Some(Cow::Borrowed(s.as_str())),
        }
    }

    /// The decision as one line of JSON, the same shape as `writ eval`.
    #[must_use]
    pub fn to_json(&self, req: &crate::request::Request) -> String {
        let mut out = format!("{{\"decision\":\"{}\"", self.effect.as_str());
        let mut field = |name: &str, v: Option<&str>| {
            out.push_str(&format!(",\"{name}\":"));
            match v {
                Some(s) => json_string(&mut out, s),
                None => out.push_str("null"),
            }
        };
        field("rule", self.rule);
        field("policy", self.policy);
        let reason = self.reason_text(req);
        field("reason", reason.as_deref());
        field("risk", self.risk.map(Risk::as_str));
        match self.retry_after_s {
            Some(s) => out.push_str(&format!(",\"retry_after_s\":{s}}}")),
            None => out.push_str(",\"retry_after_s\":null}"),
        }
        out
    }
}

pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // As serde_json writes them, so that both engines' decision
            // JSON is the same text.
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn expand<'a>(template: &'a str, req: &crate::request::Request) -> Cow<'a, str> {
    if !template.contains('{') {
        return Cow::Borrowed(template);
    }
    Cow::Owned(
        template
            .replace("{action}", &req.action)
            .replace("{target}", req.target.as_deref().unwrap_or(""))
            .replace("{agent}", &req.agent),
    )
}

struct PList {
    key: String,
    matchers: Vec<Matcher>,
}

#[derive(Default)]
struct PAccess {
    allow: Option<PList>,
    block: Option<PList>,
}

struct PLimit {
    /// The agent entry's name and the limit's identity in it, hashed once.
    scope: LimitScope,
    /// The limit's key, for reasons.
    key: String,
    metric: Metric,
    rate: Rate,
    actions: Option<Matcher>,
}

struct PAgent {
    subject: Subject,
    name: String,
    policy: u32,
    roles: Vec<String>,
    tier: Option<Tier>,
    tags: Vec<String>,
    token_prefix: Option<String>,
    models: PAccess,
    tools: PAccess,
    hosts: PAccess,
    require_tls: bool,
    limits: Vec<PLimit>,
    delegates: Vec<String>,
}

enum PAtom {
    Compare {
        field: Field,
        op: CompareOp,
        value: Value,
    },
    In {
        field: Field,
        values: Vec<Value>,
        negated: bool,
    },
    Glob {
        field: Field,
        matcher: Matcher,
    },
    Contains {
        field: Field,
        value: Value,
    },
    Exists {
        field: Field,
    },
    Time {
        start: u32,
        end: u32,
    },
    Weekdays {
        mask: u8,
    },
}

struct PCond {
    atoms: Vec<PAtom>,
    code: Vec<Op>,
}

struct PRule {
    name: String,
    policy: u32,
    effect: Effect,
    risk: Option<Risk>,
    targets: Vec<Matcher>,
    scope: crate::model::Scope,
    condition: Option<PCond>,
    constraints: Vec<crate::model::Constraint>,
    /// The rule's limit and its scope (the rule's name; shared by all
    /// agents or counted per agent), hashed once.
    limit: Option<(Rate, LimitScope)>,
    reason: Option<String>,
}

/// What names an agent entry's limit in a store, beside the entry's name:
/// whether the entry is an agent's or a role's (they may share a name),
/// the limit's place in the entry and what it counts, so that every limit
/// has a window of its own.
fn limit_id(subject: Subject, index: usize, l: &crate::model::AgentLimit) -> String {
    let actions = l.actions.as_ref().map_or("", |p| match p {
        crate::model::Pattern::Exact(s)
        | crate::model::Pattern::Prefix(s)
        | crate::model::Pattern::Suffix(s) => s.as_str(),
        crate::model::Pattern::Dfa { text, .. } => text.as_str(),
        crate::model::Pattern::Any => "*",
    });
    format!(
        "{}/{index}/{}/{}/{}:{}/{actions}",
        subject.to_byte(),
        l.key,
        l.metric.to_byte(),
        l.rate.count,
        l.rate.unit.to_byte()
    )
}

/// A rule as prepared on first use, or why its record could not be read.
type Prepared = Result<PRule, String>;

/// Decodes the rule record at `offset` of `body` and prepares it.
fn prepare(
    body: &[u8],
    strings: Strings<'_>,
    conditions: &[u32],
    offset: u32,
) -> Result<PRule, LoadError> {
    let mut r = Reader::with_strings(body, strings);
    r.seek(offset as usize)?;
    let rule = r_rule(&mut r, |i| {
        let at = conditions
            .get(i as usize)
            .ok_or_else(|| LoadError::Corrupt(format!("rule refers to missing condition {i}")))?;
        let mut cr = Reader::with_strings(body, strings);
        cr.seek(*at as usize)?;
        r_condition(&mut cr)
    })?;
    let condition = match rule.condition {
        None => None,
        Some(c) => {
            let mut atoms = Vec::with_capacity(c.atoms.len());
            for a in c.atoms {
                atoms.push(match a {
                    Atom::Compare { field, op, value } => PAtom::Compare { field, op, value },
                    Atom::In {
                        field,
                        values,
                        negated,
                    } => PAtom::In {
                        field,
                        values,
                        negated,
                    },
                    Atom::Glob { field, pattern, .. } => PAtom::Glob {
                        field,
                        matcher: Matcher::new(pattern)?,
                    },
                    Atom::Contains { field, value } => PAtom::Contains { field, value },
                    Atom::Exists { field } => PAtom::Exists { field },
                    Atom::Time { start, end } => PAtom::Time { start, end },
                    Atom::Weekdays { mask } => PAtom::Weekdays { mask },
                });
            }
            Some(PCond {
                atoms,
                code: c.code,
            })
        }
    };
    let limit = rule.limit.map(|rate| {
        let kind = if rule.limit_shared {
            LimitKind::RuleShared
        } else {
            LimitKind::Rule
        };
        (rate, LimitScope::new(kind, &rule.name, ""))
    });
    Ok(PRule {
        name: rule.name,
        policy: rule.policy,
        effect: rule.effect,
        risk: rule.risk,
        targets: matchers(rule.targets)?,
        scope: rule.scope,
        condition,
        constraints: rule.constraints,
        limit,
        reason: rule.reason,
    })
}

/// A bundle prepared for deciding.
pub struct Compiled {
    policies: Vec<String>,
    combining: Combining,
    default_effect: Effect,
    default_risk: Option<Risk>,
    default_reason: Option<String>,
    /// The policy whose default applies.
    default_policy: Option<u32>,
    tz: jiff::tz::TimeZone,
    needs_clock: bool,
    max_depth: Option<u32>,
    ceiling_strict: bool,
    /// What a request made through a chain may do at most: every list
    /// must match its action.
    ceiling_actions: Vec<PList>,
    agents: Vec<PAgent>,
    agents_by_name: FxHashMap<String, Vec<u32>>,
    roles_by_name: FxHashMap<String, Vec<u32>>,
    everyone: Vec<u32>,
    has_token_prefix: bool,
    /// The bundle body: rule records are decoded from it on first use, and
    /// the action index's keys are spans of it.
    bundle: Vec<u8>,
    body_range: std::ops::Range<usize>,
    /// The body's string table: where it starts, and each string's end.
    strings_at: u32,
    string_ends: Box<[u32]>,
    /// Where each condition of the condition table starts in `body`.
    condition_offsets: Box<[u32]>,
    /// Where each rule's record starts in `body`.
    offsets: Box<[u32]>,
    /// Each rule, decoded and prepared the first time a request needs it.
    prepared: Box<[OnceLock<Box<Prepared>>]>,
    index: ActionIndex,
    pub(crate) limits: std::sync::Arc<dyn LimitStore>,
    pub(crate) on_store_failure: OnStoreFailure,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("rules", &self.offsets.len())
            .field("agents", &self.agents.len())
            .finish_non_exhaustive()
    }
}

fn matchers(ps: Vec<crate::model::Pattern>) -> Result<Vec<Matcher>, LoadError> {
    ps.into_iter().map(Matcher::new).collect()
}

fn plist(l: Option<crate::model::NamedList>) -> Result<Option<PList>, LoadError> {
    l.map(|l| {
        Ok(PList {
            key: l.key,
            matchers: matchers(l.patterns)?,
        })
    })
    .transpose()
}

fn paccess(a: crate::model::AccessList) -> Result<PAccess, LoadError> {
    Ok(PAccess {
        allow: plist(a.allow)?,
        block: plist(a.block)?,
    })
}

/// Up to eight names inline; more spill to the heap.
struct Names<'a> {
    inline: [&'a str; 4],
    len: usize,
    more: Vec<&'a str>,
}

impl<'a> Names<'a> {
    fn new() -> Self {
        Names {
            inline: [""; 4],
            len: 0,
            more: Vec::new(),
        }
    }

    fn push(&mut self, s: &'a str) {
        if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = s;
            self.len += 1;
        } else {
            self.more.push(s);
        }
    }

    fn contains(&self, s: &str) -> bool {
        self.inline.iter().take(self.len).any(|x| *x == s) || self.more.contains(&s)
    }
}

struct Principal<'r> {
    id: &'r str,
    roles: Names<'r>,
    tier: Option<Tier>,
    tags: Names<'r>,
}

struct Clock {
    time: u32,
    weekday: u8,
    millis: i64,
}

/// Up to 16 small numbers inline.
struct Small {
    inline: [u32; 16],
    len: usize,
    more: Vec<u32>,
}

impl Small {
    fn new() -> Self {
        Small {
            inline: [0; 16],
            len: 0,
            more: Vec::new(),
        }
    }

    fn push(&mut self, v: u32) {
        if self.more.is_empty() {
            if let Some(slot) = self.inline.get_mut(self.len) {
                *slot = v;
                self.len += 1;
                return;
            }
            self.more.extend(self.inline.iter().take(self.len));
        }
        self.more.push(v);
    }

    /// Sorted and deduplicated.
    fn finish(&mut self) -> &[u32] {
        if !self.more.is_empty() {
            self.more.sort_unstable();
            self.more.dedup();
            return &self.more;
        }
        let len = self.len;
        let Some(slice) = self.inline.get_mut(..len) else {
            return &[];
        };
        slice.sort_unstable();
        let mut w = 0usize;
        for i in 0..len {
            let v = slice.get(i).copied().unwrap_or(0);
            if w == 0 || slice.get(w - 1) != Some(&v) {
                if let Some(slot) = slice.get_mut(w) {
                    *slot = v;
                }
                w += 1;
            }
        }
        self.len = w;
        self.inline.get(..w).unwrap_or(&[])
    }
}

/// Limits to commit if the decision ends as allow.
/// An amount a decision takes from a limit once it allows.
#[derive(Clone, Copy)]
struct Hold<'s> {
    scope: &'s LimitScope,
    rate: Rate,
    amount: u64,
    /// What the amount counts (agent limits).
    metric: Metric,
    /// An agent entry's limit's key, as the author wrote it.
    key: &'s str,
    /// The rule whose limit this is.
    rule: Option<&'s PRule>,
    /// The agent entry whose limit this is.
    agent: Option<&'s PAgent>,
}

impl<'s> Hold<'s> {
    fn acquire<'a>(&self, agent: &'a str) -> Acquire<'a>
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
    fn full(&self, agent: &str) -> String {
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

fn unavailable(why: &str) -> String {
    format!("the limit store cannot be reached ({why}); denying rather than not counting")
}

/// The amounts a decision will take if it allows: the first inline (no
/// allocation, and next to nothing to set up, on the decision path), more
/// in `more`.
struct Pending<'s> {
    first: Option<Hold<'s>>,
    more: Vec<Hold<'s>>,
    /// The decision is for real (not an explanation) and nothing after
    /// the rules can turn an allow into something else but the limits
    /// themselves: a first-match rule's limit need not be looked at while
    /// deciding, since taking it at the end refuses just as a look would.
    direct: bool,
}

impl<'s> Pending<'s> {
    fn new() -> Pending<'s> {
        Pending {
            first: None,
            more: Vec::new(),
            direct: false,
        }
    }

    fn push(&mut self, hold: Hold<'s>) {
        if self.first.is_none() {
            self.first = Some(hold);
        } else {
            self.more.push(hold);
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn get(&self, index: usize) -> Option<&Hold<'s>> {
        match index.checked_sub(1) {
            None => self.first.as_ref(),
            Some(i) => self.more.get(i),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Hold<'s>> {
        self.first.iter().chain(&self.more)
    }

    /// Takes them all for `agent`, or none.
    fn acquire(&self, store: &dyn LimitStore, agent: &str, now_ms: i64) -> Result<(), Refusal> {
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

impl Compiled {
    /// Prepares a bundle body. Settings and agents are decoded; every rule
    /// record is scanned (checked in full, without allocating) and its
    /// action patterns indexed, but decoded only when a request first
    /// needs it. A record that fails the scan fails the load.
    pub fn new(
        bundle: Vec<u8>,
        body_range: std::ops::Range<usize>,
        format: u32,
    ) -> Result<Compiled, LoadError> {
        let body = bundle
            .get(body_range.clone())
            .ok_or_else(|| LoadError::Corrupt("body out of range".to_owned()))?;
        let prelude = Prelude::read(body)?;
        let mut r = prelude.reader(body)?;
        let Head {
            policies,
            settings: s,
            agents: model_agents,
            ..
        } = Head::read(&mut r, format)?;
        let tz = if s.tzif.is_empty() {
            jiff::tz::TimeZone::UTC
        } else {
            jiff::tz::TimeZone::tzif(&s.timezone, &s.tzif)
                .map_err(|e| LoadError::Corrupt(format!("time zone `{}`: {e}", s.timezone)))?
        };
        let mut agents = Vec::with_capacity(model_agents.len());
        let mut agents_by_name: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        let mut roles_by_name: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        let mut everyone = Vec::new();
        let mut has_token_prefix = false;
        for (i, a) in model_agents.into_iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            match a.subject {
                Subject::Agent => agents_by_name.entry(a.name.clone()).or_default().push(id),
                Subject::Role => roles_by_name.entry(a.name.clone()).or_default().push(id),
                Subject::Everyone => everyone.push(id),
            }
            has_token_prefix |= a.token_prefix.is_some();
            let limits = a
                .limits
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    Ok(PLimit {
                        scope: LimitScope::new(
                            LimitKind::Agent,
                            &a.name,
                            &limit_id(a.subject, i, &l),
                        ),
                        key: l.key.clone(),
                        metric: l.metric,
                        rate: l.rate,
                        actions: l.actions.map(Matcher::new).transpose()?,
                    })
                })
                .collect::<Result<_, LoadError>>()?;
            agents.push(PAgent {
                subject: a.subject,
                name: a.name,
                policy: a.policy,
                roles: a.roles,
                tier: a.tier,
                tags: a.tags,
                token_prefix: a.token_prefix,
                models: paccess(a.models)?,
                tools: paccess(a.tools)?,
                hosts: paccess(a.hosts)?,
                require_tls: a.require_tls.unwrap_or(false),
                limits,
                delegates: a.delegates,
            });
        }
        let policy_count = u32::try_from(policies.len()).unwrap_or(u32::MAX);
        // The condition table: each condition checked once, decoded with
        // the first rule that needs it.
        let condition_count = r.count(2)?;
        let mut condition_offsets = Vec::with_capacity(condition_count);
        let mut condition_flags = Vec::with_capacity(condition_count);
        for _ in 0..condition_count {
            condition_offsets.push(
                u32::try_from(r.position())
                    .map_err(|_| LoadError::Corrupt("bundle too large".to_owned()))?,
            );
            condition_flags.push(scan_condition_entry(&mut r)?);
        }
        let rule_count = r.count(crate::model::MIN_RULE_SIZE)?;
        let mut index = ActionIndex::default();
        let mut needs_clock = false;
        let mut offsets = Vec::with_capacity(rule_count);
        // Each rule's agent and role names, and where they sit in `names`.
        let mut names: Vec<Span> = Vec::new();
        let mut scope_at: Vec<(usize, usize, usize)> = Vec::with_capacity(rule_count);
        // Each rule's exact target names (when all its targets are), and
        // where they sit in `targets`.
        let mut targets: Vec<Span> = Vec::new();
        let mut target_at: Vec<Option<(usize, usize)>> = Vec::with_capacity(rule_count);
        let mut eager = Vec::new();
        for i in 0..rule_count {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            offsets.push(
                u32::try_from(r.position())
                    .map_err(|_| LoadError::Corrupt("bundle too large".to_owned()))?,
            );
            let first = names.len();
            let first_target = targets.len();
            let scan = scan_rule(
                &mut r,
                policy_count,
                &condition_flags,
                |p| index.add(p, id),
                &mut names,
                &mut targets,
            )?;
            target_at.push(scan.exact_targets.map(|n| (first_target, n)));
            needs_clock |= scan.has_clock;
            if scan.has_dfa {
                eager.push(i);
            }
            scope_at.push((first, scan.agents, scan.roles));
        }
        r_graph(&mut r)?;
        let ceiling_actions = r_ceiling_actions(&mut r)?
            .into_iter()
            .map(|l| {
                Ok(PList {
                    key: l.key,
                    matchers: matchers(l.patterns)?,
                })
            })
            .collect::<Result<Vec<_>, LoadError>>()?;
        r.finish()?;
        let scopes = |rule: u32| {
            let targets = target_at
                .get(rule as usize)
                .copied()
                .flatten()
                .and_then(|(from, n)| targets.get(from..from + n));
            let Some(&(first, agents, roles)) = scope_at.get(rule as usize) else {
                return Narrowing {
                    scope: ScopeKey::Open,
                    targets,
                };
            };
            let at = |from: usize, n: usize| names.get(from..from + n).unwrap_or(&[]);
            let scope = if agents > 0 {
                ScopeKey::Agents(at(first, agents))
            } else if roles > 0 {
                ScopeKey::Roles(at(first + agents, roles))
            } else {
                ScopeKey::Open
            };
            Narrowing { scope, targets }
        };
        index.finish(body, &scopes);
        let prepared: Box<[OnceLock<Box<Prepared>>]> =
            (0..rule_count).map(|_| OnceLock::new()).collect();
        // Rules with automata are prepared now, so that every automaton is
        // validated at load.
        let strings = Strings {
            at: prelude.strings_at,
            ends: &prelude.ends,
        };
        for i in eager {
            let rule = prepare(
                body,
                strings,
                &condition_offsets,
                offsets.get(i).copied().unwrap_or(0),
            )?;
            if let Some(cell) = prepared.get(i) {
                let _ = cell.set(Box::new(Ok(rule)));
            }
        }
        Ok(Compiled {
            policies,
            combining: s.combining,
            default_effect: s.default_effect,
            default_risk: s.default_risk,
            default_reason: s.default_reason,
            default_policy: s.default_policy,
            tz,
            needs_clock,
            max_depth: s.max_delegation_depth,
            ceiling_strict: s.ceiling_strict,
            ceiling_actions,
            agents,
            agents_by_name,
            roles_by_name,
            everyone,
            has_token_prefix,
            strings_at: prelude.strings_at,
            string_ends: prelude.ends.into_boxed_slice(),
            bundle,
            body_range,
            offsets: offsets.into_boxed_slice(),
            condition_offsets: condition_offsets.into_boxed_slice(),
            prepared,
            index,
            limits: std::sync::Arc::new(InProcess::new()),
            on_store_failure: OnStoreFailure::Deny,
        })
    }

    /// A rule, decoded and prepared on first use. The load scanned its
    /// record, so this fails only if the scanner and the decoder disagree;
    /// callers deny then.
    #[inline]
    fn rule(&self, i: u32) -> Result<&PRule, &str> {
        let Some(cell) = self.prepared.get(i as usize) else {
            return Err("no such rule");
        };
        let prepared = match cell.get() {
            Some(p) => p,
            None => cell.get_or_init(|| Box::new(self.prepare(i))),
        };
        match &**prepared {
            Ok(rule) => Ok(rule),
            Err(why) => Err(why),
        }
    }

    /// Decodes and prepares rule `i` (the slow path of [`Compiled::rule`]).
    #[cold]
    fn prepare(&self, i: u32) -> Prepared {
        let offset = self
            .offsets
            .get(i as usize)
            .ok_or_else(|| "no such rule".to_owned())?;
        let strings = Strings {
            at: self.strings_at,
            ends: &self.string_ends,
        };
        prepare(self.body(), strings, &self.condition_offsets, *offset).map_err(|e| e.to_string())
    }

    /// Decodes and prepares every rule now rather than on first use.
    pub fn prepare_all(&self) -> Result<(), LoadError> {
        for i in 0..self.offsets.len() {
            self.rule(u32::try_from(i).unwrap_or(u32::MAX))
                .map_err(|why| LoadError::Corrupt(format!("rule {i}: {why}")))?;
        }
        Ok(())
    }

    /// The bundle body.
    #[inline]
    fn body(&self) -> &[u8] {
        self.bundle.get(self.body_range.clone()).unwrap_or(&[])
    }

    pub fn rule_count(&self) -> usize {
        self.offsets.len()
    }

    fn policy_name(&self, id: u32) -> Option<&str> {
        self.policies.get(id as usize).map(String::as_str)
    }

    fn deny<'s>(
        &'s self,
        rule: Option<&'s PRule>,
        agent: Option<&'s PAgent>,
        reason: String,
        retry: Option<u64>,
    ) -> Decision<'s> {
        let policy = rule
            .map(|r| r.policy)
            .or(agent.map(|a| a.policy))
            .and_then(|p| self.policy_name(p));
        Decision {
            effect: Effect::Deny,
            rule: rule.map(|r| r.name.as_str()),
            policy,
            reason: Reason::Text(reason),
            risk: rule.and_then(|r| r.risk).or(self.default_risk),
            retry_after_s: retry,
            time_ms: 0,
            default_effect: self.default_effect,
            defaulted: false,
        }
    }

    pub fn check(&self, req: &crate::request::Request, now: jiff::Timestamp) -> Decision<'_> {
        self.check_with(req, now, true)
    }

    /// As `check`, but a decision that allows takes nothing from its
    /// limits (a full limit still refuses).
    pub fn peek(&self, req: &crate::request::Request, now: jiff::Timestamp) -> Decision<'_> {
        self.check_with(req, now, false)
    }

    fn check_with(
        &self,
        req: &crate::request::Request,
        now: jiff::Timestamp,
        commit: bool,
    ) -> Decision<'_> {
        let at = req.at.unwrap_or(now);
        let clock = if self.needs_clock {
            let zoned = at.to_zoned(self.tz.clone());
            let secs = u32::from(zoned.hour().unsigned_abs()) * 3600
                + u32::from(zoned.minute().unsigned_abs()) * 60
                + u32::from(zoned.second().unsigned_abs());
            let weekday = u8::try_from(zoned.weekday().to_monday_zero_offset()).unwrap_or(0);
            Clock {
                time: secs,
                weekday,
                millis: at.as_millisecond(),
            }
        } else {
            Clock {
                time: 0,
                weekday: 0,
                millis: at.as_millisecond(),
            }
        };
        let mut d = self.decide(req, &clock, commit);
        d.time_ms = now.as_millisecond();
        d
    }

    fn decide<'s>(
        &'s self,
        req: &crate::request::Request,
        clock: &Clock,
        commit: bool,
    ) -> Decision<'s> {
        if let Some(path) = non_finite(&req.context) {
            let reason = format!("invalid request: context value `{path}` is not a finite number");
            return self.deny(None, None, reason, None);
        }
        let floor = if req.chain.len() > 1 {
            match self.chain(req, clock) {
                Ok(floor) => floor,
                Err(denied) => return denied,
            }
        } else {
            None
        };
        let mut principal = Principal {
            id: &req.agent,
            roles: Names::new(),
            tier: None,
            tags: Names::new(),
        };
        if let Err(reason) = self.principal(req, &mut principal) {
            return self.deny(None, None, reason, None);
        }
        let mut pending = Pending::new();
        pending.direct = commit && floor.is_none();
        if let Some(denied) = self.ceilings(req, &principal, clock, &mut pending) {
            return denied;
        }
        let decision = self.rules(req, &principal, clock, &mut pending);
        if decision.effect == Effect::Allow {
            if let Some(approve) = floor {
                return approve;
            }
            if commit && !pending.is_empty() {
                // Checked again and taken under the store's lock: another
                // request may have used the room since the limits were
                // looked at.
                match pending.acquire(&*self.limits, principal.id, clock.millis) {
                    Ok(()) => {}
                    Err(Refusal::Full {
                        index,
                        retry_after_s,
                    }) => {
                        let reason = pending.get(index).map_or_else(
                            || "a limit is reached".to_owned(),
                            |h| h.full(principal.id),
                        );
                        let (rule, agent) = pending
                            .get(index)
                            .map_or((None, None), |h| (h.rule, h.agent));
                        return self.deny(rule, agent, reason, Some(retry_after_s));
                    }
                    Err(Refusal::Unavailable(why)) => {
                        if self.on_store_failure == OnStoreFailure::Deny {
                            // Named by the rule whose limit could not be
                            // counted, as when it is looked at while
                            // deciding.
                            let rule = pending.iter().find_map(|h| h.rule);
                            let agent = pending.iter().find_map(|h| h.agent);
                            return self.deny(rule, agent, unavailable(&why), None);
                        }
                    }
                }
            }
        }
        decision
    }

    fn chain<'s>(
        &'s self,
        req: &crate::request::Request,
        clock: &Clock,
    ) -> Result<Option<Decision<'s>>, Decision<'s>> {
        let hops = req.chain.len().saturating_sub(1);
        if let Some(max) = self.max_depth
            && hops > max as usize
        {
            return Err(self.deny(
                None,
                None,
                format!(
                    "the delegation chain has {hops} hops ({}), more than max_delegation_depth {max}",
                    req.chain.join(" → ")
                ),
                None,
            ));
        }
        // What a delegated agent may do at most; handing work on is bounded
        // by the depth and the hops instead.
        if delegation_target(req).is_none()
            && let Some(list) = self
                .ceiling_actions
                .iter()
                .find(|l| !l.matchers.iter().any(|m| m.is_match(&req.action)))
        {
            return Err(self.deny(
                None,
                None,
                format!(
                    "`{}` is not in {}: an agent acting through a delegation chain may take only the actions it lists",
                    req.action, list.key
                ),
                None,
            ));
        }
        for pair in req.chain.windows(2) {
            let [from, to] = pair else { continue };
            let hop = self.hop(req, from, to, clock);
            if hop.effect == Effect::Deny {
                let why = reason_string(&hop, &hop_request(req, from, to));
                return Err(Decision {
                    reason: Reason::Text(format!(
                        "delegation `{from}` → `{to}` in the chain is not permitted: {why}"
                    )),
                    defaulted: false,
                    ..hop
                });
            }
        }
        if !self.ceiling_strict || delegation_target(req).is_some() {
            return Ok(None);
        }
        let mut floor = None;
        let acting = req.chain.last().map_or("", String::as_str);
        for member in req.chain.iter().filter(|m| m.as_str() != acting) {
            let mut alone = crate::request::Request::new(member, &req.action);
            alone.target.clone_from(&req.target);
            alone.context.clone_from(&req.context);
            alone.at = req.at;
            alone.tokens = req.tokens;
            let own = self.decide(&alone, clock, false);
            let what = match &req.target {
                Some(t) => format!("`{}` on `{t}`", req.action),
                None => format!("`{}`", req.action),
            };
            let why = reason_string(&own, &alone);
            match own.effect {
                Effect::Deny => {
                    return Err(Decision {
                        reason: Reason::Text(format!(
                            "strict ceiling: every agent in the chain must be allowed {what} itself, and `{member}` is not ({why})"
                        )),
                        defaulted: false,
                        ..own
                    });
                }
                Effect::Approve if floor.is_none() => {
                    floor = Some(Decision {
                        reason: Reason::Text(format!(
                            "strict ceiling: `{member}` in the chain needs approval for {what} ({why})"
                        )),
                        defaulted: false,
                        ..own
                    });
                }
                _ => {}
            }
        }
        Ok(floor)
    }

    fn hop<'s>(
        &'s self,
        req: &crate::request::Request,
        from: &str,
        to: &str,
        clock: &Clock,
    ) -> Decision<'s> {
        let ask = hop_request(req, from, to);
        let first = self.decide(&ask, clock, false);
        if first.effect != Effect::Deny {
            return first;
        }
        let mut handoff = crate::request::Request::new(from, &format!("handoff:{to}"));
        handoff.context.clone_from(&req.context);
        handoff.at = req.at;
        let second = self.decide(&handoff, clock, false);
        if second.effect != Effect::Deny {
            return Decision {
                reason: Reason::Text(reason_string(&second, &handoff)),
                defaulted: false,
                ..second
            };
        }
        first
    }

    fn principal<'r>(
        &'r self,
        req: &'r crate::request::Request,
        p: &mut Principal<'r>,
    ) -> Result<(), String> {
        for r in &req.roles {
            p.roles.push(r);
        }
        for t in &req.tags {
            p.tags.push(t);
        }
        if !self.agents_by_name.is_empty()
            && let Some(ids) = self.agents_by_name.get(req.agent.as_str())
        {
            for &i in ids {
                let Some(a) = self.agents.get(i as usize) else {
                    continue;
                };
                for r in &a.roles {
                    p.roles.push(r);
                }
                for t in &a.tags {
                    p.tags.push(t);
                }
                p.tier = p.tier.max(a.tier);
                if let (Some(prefix), Some(token)) = (&a.token_prefix, &req.token)
                    && !token.starts_with(prefix.as_str())
                {
                    return Err(format!("token does not belong to agent `{}`", req.agent));
                }
            }
        }
        if let Some(token) = &req.token
            && self.has_token_prefix
        {
            let mut matched = false;
            for a in &self.agents {
                if let Some(prefix) = &a.token_prefix
                    && token.starts_with(prefix.as_str())
                {
                    matched = true;
                    if a.subject == Subject::Role {
                        p.roles.push(&a.name);
                    }
                }
            }
            if !matched {
                return Err("token matches no declared `token_prefix`".to_owned());
            }
        }
        Ok(())
    }

    /// The entries bounding the principal, in entry order.
    fn bounding(&self, p: &Principal<'_>) -> Small {
        let mut out = Small::new();
        if let Some(ids) = self.agents_by_name.get(p.id) {
            ids.iter().for_each(|i| out.push(*i));
        }
        for r in p
            .roles
            .inline
            .iter()
            .take(p.roles.len)
            .chain(p.roles.more.iter())
        {
            if let Some(ids) = self.roles_by_name.get(*r) {
                ids.iter().for_each(|i| out.push(*i));
            }
        }
        self.everyone.iter().for_each(|i| out.push(*i));
        out
    }

    fn delegates_to(&self, entry: &PAgent, to: &str) -> bool {
        let roles: Vec<&str> = self
            .agents_by_name
            .get(to)
            .into_iter()
            .flatten()
            .filter_map(|i| self.agents.get(*i as usize))
            .flat_map(|a| a.roles.iter().map(String::as_str))
            .collect();
        entry
            .delegates
            .iter()
            .any(|d| d == to || roles.contains(&d.as_str()))
    }

    fn ceilings<'s>(
        &'s self,
        req: &crate::request::Request,
        p: &Principal<'_>,
        clock: &Clock,
        pending: &mut Pending<'s>,
    ) -> Option<Decision<'s>> {
        let target = req.target.as_deref().unwrap_or("");
        if let (Some(to), Some(max)) = (delegation_target(req), self.max_depth) {
            let hops = req.chain.len().max(1);
            if hops > max as usize {
                return Some(self.deny(
                    None,
                    None,
                    format!(
                        "delegating to `{to}` would make a chain of {hops} hops, more than max_delegation_depth {max}"
                    ),
                    None,
                ));
            }
        }
        if self.agents.is_empty() {
            return None;
        }
        let mut bounding = self.bounding(p);
        for &i in bounding.finish() {
            let Some(agent) = self.agents.get(i as usize) else {
                continue;
            };
            // Named only when something is denied: no allocation otherwise.
            let who = || match agent.subject {
                Subject::Agent => format!("agent `{}`", agent.name),
                Subject::Role => format!("role `{}`", agent.name),
                Subject::Everyone => format!("`{}`", agent.name),
            };
            let (list, noun) = match req.action.as_str() {
                "model:use" => (Some(&agent.models), "model"),
                "tool:call" => (Some(&agent.tools), "tool"),
                "net:connect" => (Some(&agent.hosts), "host"),
                _ => (None, ""),
            };
            if let Some(list) = list {
                if let Some(block) = &list.block
                    && any_match(&block.matchers, target)
                {
                    return Some(self.deny(
                        None,
                        Some(agent),
                        format!("{noun} `{target}` is in {} of {}", block.key, who()),
                        None,
                    ));
                }
                if let Some(allow) = &list.allow
                    && !any_match(&allow.matchers, target)
                {
                    return Some(self.deny(
                        None,
                        Some(agent),
                        format!("{noun} `{target}` is not in {} of {}", allow.key, who()),
                        None,
                    ));
                }
            }
            if let Some(to) = delegation_target(req)
                && !agent.delegates.is_empty()
                && !self.delegates_to(agent, to)
            {
                return Some(self.deny(
                    None,
                    Some(agent),
                    format!("delegation to `{to}` is not in delegates of {}", who()),
                    None,
                ));
            }
            if req.action == "net:connect"
                && agent.require_tls
                && req.context.get("scheme").and_then(Value::as_str) != Some("https")
            {
                return Some(self.deny(
                    None,
                    Some(agent),
                    format!("{} requires TLS: context `scheme` must be `https`", who()),
                    None,
                ));
            }
            for limit in &agent.limits {
                if limit
                    .actions
                    .as_ref()
                    .is_some_and(|a| !a.is_match(&req.action))
                {
                    continue;
                }
                let amount = match limit.metric {
                    Metric::Requests => 1,
                    Metric::Tokens => req.tokens,
                };
                let hold = Hold {
                    scope: &limit.scope,
                    rate: limit.rate,
                    amount,
                    metric: limit.metric,
                    key: &limit.key,
                    rule: None,
                    agent: Some(agent),
                };
                let retry = match self.limits.peek(&hold.acquire(p.id), clock.millis) {
                    Ok(()) => None,
                    Err(Refusal::Full { retry_after_s, .. }) => Some(retry_after_s),
                    Err(Refusal::Unavailable(why)) => {
                        if self.on_store_failure == OnStoreFailure::Deny {
                            return Some(self.deny(None, Some(agent), unavailable(&why), None));
                        }
                        continue;
                    }
                };
                if let Some(retry) = retry {
                    let what = limit.metric.as_str();
                    let reason = format!(
                        "{} is over its {what} limit `{}` ({}: {})",
                        who(),
                        limit.rate,
                        limit.key,
                        limit.rate.count
                    );
                    return Some(self.deny(None, Some(agent), reason, Some(retry)));
                }
                pending.push(hold);
            }
        }
        None
    }

    fn rules<'s>(
        &'s self,
        req: &crate::request::Request,
        p: &Principal<'_>,
        clock: &Clock,
        pending: &mut Pending<'s>,
    ) -> Decision<'s> {
        let mut candidates = Small::new();
        // Roles are visited only when some bucket is split by principal.
        let roles = |f: &mut dyn FnMut(&str)| {
            if self.index.is_scoped() {
                p.roles
                    .inline
                    .iter()
                    .take(p.roles.len)
                    .chain(p.roles.more.iter())
                    .for_each(|r| f(r));
            }
        };
        let who = Who {
            agent: p.id,
            roles: &roles,
            target: req.target.as_deref().unwrap_or(""),
            every: false,
        };
        self.index
            .candidates(self.body(), &req.action, &who, |r| candidates.push(r));
        let mut best: Option<Decision<'s>> = None;
        let mut allow_limits: Vec<Hold<'s>> = Vec::new();
        for &i in candidates.finish() {
            let rule = match self.rule(i) {
                Ok(rule) => rule,
                // Fail closed: a rule that cannot be read denies.
                Err(why) => {
                    return self.deny(
                        None,
                        None,
                        format!("rule {i} of the bundle cannot be read ({why}); denying"),
                        None,
                    );
                }
            };
            if !self.applies(rule, req, p, clock) {
                continue;
            }
            let peek = !(self.combining == Combining::FirstMatch && pending.direct);
            let (decision, limit) = self.outcome(rule, req, p, clock, peek);
            if self.combining == Combining::FirstMatch {
                if let Some(l) = limit {
                    pending.push(l);
                }
                return decision;
            }
            if decision.effect == Effect::Allow
                && let Some(l) = limit
            {
                allow_limits.push(l);
            }
            let rank = |e: Effect| match e {
                Effect::Deny => 2,
                Effect::Approve => 1,
                Effect::Allow => 0,
            };
            if best
                .as_ref()
                .is_none_or(|b| rank(decision.effect) > rank(b.effect))
            {
                best = Some(decision);
            }
        }
        if let Some(decision) = best {
            if decision.effect == Effect::Allow {
                for l in allow_limits {
                    pending.push(l);
                }
            }
            return decision;
        }
        // Unless the index narrowed them, the candidates are every rule of
        // the action already: no second pass.
        let every = (!self.index.is_narrowed()).then(|| candidates.finish());
        self.default(req, p, every)
    }

    /// The default decision. It names the rule that matched the action
    /// (and target) but whose scope left the agent out, if one did, and
    /// its policy; else the policy whose default applies. Looks at every
    /// rule of the action (`every`, sorted, when the caller has them; else
    /// found by a second pass over the index, taken only here).
    #[inline(never)]
    fn default<'s>(
        &'s self,
        req: &crate::request::Request,
        p: &Principal<'_>,
        every: Option<&[u32]>,
    ) -> Decision<'s> {
        let mut found = Small::new();
        let every = match every {
            Some(rules) => rules,
            None => {
                let no_roles = |_: &mut dyn FnMut(&str)| {};
                let who = Who {
                    agent: p.id,
                    roles: &no_roles,
                    target: req.target.as_deref().unwrap_or(""),
                    every: true,
                };
                self.index
                    .candidates(self.body(), &req.action, &who, |r| found.push(r));
                found.finish()
            }
        };
        let target = req.target.as_deref().unwrap_or("");
        let excluded = every.iter().filter_map(|&i| {
            // A rule that cannot be read here was not needed to decide
            // (the first pass would have denied): it explains nothing.
            let rule = self.rule(i).ok()?;
            if !rule.targets.is_empty() && !any_match(&rule.targets, target) {
                return None;
            }
            let list = scope_miss(&rule.scope, p)?;
            Some((rule.effect, (rule, list)))
        });
        let nearest = crate::reason::nearest(excluded, self.default_effect);
        let policy = match nearest {
            Some((rule, _)) => self.policy_name(rule.policy),
            None => self.default_policy.and_then(|i| self.policy_name(i)),
        };
        let reason = match (&self.default_reason, nearest) {
            (Some(r), _) => Reason::Template(r),
            (None, None) => Reason::NoRule,
            (None, Some((rule, list))) => {
                let s = &rule.scope;
                let tiers: Vec<&str> = s.tiers.iter().map(|t| t.as_str()).collect();
                let names = |l: &'s [String]| l.iter().map(String::as_str).collect::<Vec<_>>();
                let wanted = match list {
                    ScopeList::Agents => names(&s.agents),
                    ScopeList::Roles => names(&s.roles),
                    ScopeList::Tiers => tiers,
                    ScopeList::Tags => names(&s.tags),
                };
                Reason::Text(crate::reason::no_rule(
                    &req.action,
                    &req.agent,
                    Some(&crate::reason::OutOfScope {
                        rule: &rule.name,
                        list,
                        wanted: &wanted,
                        tier: p.tier.map(Tier::as_str),
                        target: req.target.as_deref(),
                    }),
                    self.default_effect,
                ))
            }
        };
        Decision {
            effect: self.default_effect,
            rule: None,
            policy,
            reason,
            risk: self.default_risk,
            retry_after_s: None,
            time_ms: 0,
            default_effect: self.default_effect,
            defaulted: true,
        }
    }

    fn outcome<'s>(
        &'s self,
        rule: &'s PRule,
        req: &crate::request::Request,
        p: &Principal<'_>,
        clock: &Clock,
        peek: bool,
    ) -> (Decision<'s>, Option<Hold<'s>>) {
        for c in &rule.constraints {
            let value =
                lookup(&c.field, req).or_else(|| c.alternate.as_ref().and_then(|f| lookup(f, req)));
            let failure = match value {
                None | Some(Value::Null) => {
                    Some(format!("`{}` is missing, required by {}", c.field, c.name))
                }
                Some(Value::List(items)) => items
                    .iter()
                    .find(|v| !c.values.iter().any(|a| a.loosely_equals(v)))
                    .map(|v| format!("{} not in {}", show(v), c.name)),
                Some(v) => (!c.values.iter().any(|a| a.loosely_equals(&v)))
                    .then(|| format!("{} not in {}", show(&v), c.name)),
            };
            if let Some(reason) = failure {
                return (self.deny(Some(rule), None, reason, None), None);
            }
        }
        let mut limit_id = None;
        if rule.effect == Effect::Allow
            && let Some((limit, scope)) = &rule.limit
        {
            let hold = Hold {
                scope,
                rate: *limit,
                amount: 1,
                metric: Metric::Requests,
                key: "",
                rule: Some(rule),
                agent: None,
            };
            let looked = if peek {
                self.limits.peek(&hold.acquire(p.id), clock.millis)
            } else {
                Ok(())
            };
            match looked {
                Ok(()) => limit_id = Some(hold),
                Err(Refusal::Full { retry_after_s, .. }) => {
                    return (
                        self.deny(Some(rule), None, hold.full(p.id), Some(retry_after_s)),
                        None,
                    );
                }
                Err(Refusal::Unavailable(why)) => {
                    if self.on_store_failure == OnStoreFailure::Deny {
                        return (self.deny(Some(rule), None, unavailable(&why), None), None);
                    }
                }
            }
        }
        let _ = req;
        (
            Decision {
                effect: rule.effect,
                rule: Some(&rule.name),
                policy: self.policy_name(rule.policy),
                reason: rule
                    .reason
                    .as_deref()
                    .map_or(Reason::None, Reason::Template),
                risk: rule.risk.or(self.default_risk),
                retry_after_s: None,
                time_ms: 0,
                default_effect: self.default_effect,
                defaulted: false,
            },
            limit_id,
        )
    }

    fn applies(
        &self,
        rule: &PRule,
        req: &crate::request::Request,
        p: &Principal<'_>,
        clock: &Clock,
    ) -> bool {
        if !rule.targets.is_empty() {
            let target = req.target.as_deref().unwrap_or("");
            if !any_match(&rule.targets, target) {
                return false;
            }
        }
        if scope_miss(&rule.scope, p).is_some() {
            return false;
        }
        rule.condition
            .as_ref()
            .is_none_or(|c| lets_apply(holds(c, req, clock), rule.effect))
    }
}

/// The first list of a rule's scope that leaves the principal out, in the
/// reference evaluator's order; `None` when the principal is in scope.
#[inline]
fn scope_miss(s: &crate::model::Scope, p: &Principal<'_>) -> Option<ScopeList> {
    if !s.agents.is_empty() && !s.agents.iter().any(|a| a == p.id) {
        return Some(ScopeList::Agents);
    }
    if !s.roles.is_empty() && !s.roles.iter().any(|r| p.roles.contains(r)) {
        return Some(ScopeList::Roles);
    }
    if !s.tiers.is_empty() && !s.tiers.iter().any(|t| p.tier == Some(*t)) {
        return Some(ScopeList::Tiers);
    }
    if !s.tags.is_empty() && !s.tags.iter().any(|t| p.tags.contains(t)) {
        return Some(ScopeList::Tags);
    }
    None
}

fn hop_request(req: &crate::request::Request, from: &str, to: &str) -> crate::request::Request {
    let mut ask = crate::request::Request::new(from, "agent:delegate");
    ask.target = Some(to.to_owned());
    ask.context.clone_from(&req.context);
    ask.at = req.at;
    ask
}

fn reason_string(d: &Decision<'_>, req: &crate::request::Request) -> String {
    d.reason_text(req).map(Cow::into_owned).unwrap_or_default()
}

fn delegation_target(req: &crate::request::Request) -> Option<&str> {
    match req.action.as_str() {
        "agent:delegate" => req.target.as_deref(),
        other => other.strip_prefix("handoff:"),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

/// What a field reads from the request: missing (absent or null), a
/// value, or, for a dotted path whose flat key (`{"a.b": ..}`) and nested
/// maps (`{"a": {"b": ..}}`) both hold values that differ, ambiguous.
enum Read<'r> {
    Missing,
    Str(&'r str),
    Value(&'r Value),
    Ambiguous,
}

fn read<'r>(field: &Field, req: &'r crate::request::Request) -> Read<'r> {
    match field {
        Field::Target => req.target.as_deref().map_or(Read::Missing, Read::Str),
        Field::Context(path) => {
            let nested = nested(path, &req.context);
            let flat = if path.len() > 1 {
                flat(path, &req.context)
            } else {
                None
            };
            let v = match (flat, nested) {
                (Some(a), Some(b)) if !a.loosely_equals(b) => return Read::Ambiguous,
                (Some(v), _) | (None, Some(v)) => v,
                (None, None) => return Read::Missing,
            };
            if matches!(v, Value::Null) {
                Read::Missing
            } else {
                Read::Value(v)
            }
        }
    }
}

fn nested<'r>(
    path: &[String],
    context: &'r std::collections::BTreeMap<String, Value>,
) -> Option<&'r Value> {
    let (first, rest) = path.split_first()?;
    let mut v = context.get(first)?;
    for seg in rest {
        match v {
            Value::Map(m) => v = m.get(seg)?,
            _ => return None,
        }
    }
    Some(v)
}

/// The value under the whole dotted path as one key, found without
/// building the key: keys beginning with the first segment are adjacent.
fn flat<'r>(
    path: &[String],
    context: &'r std::collections::BTreeMap<String, Value>,
) -> Option<&'r Value> {
    use std::ops::Bound;
    let first = path.first()?.as_str();
    context
        .range::<str, _>((Bound::Included(first), Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(first))
        .find(|(k, _)| is_joined(k, path))
        .map(|(_, v)| v)
}

/// Whether `key` is the segments joined by dots.
fn is_joined(key: &str, path: &[String]) -> bool {
    let mut rest = key;
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            match rest.strip_prefix('.') {
                Some(r) => rest = r,
                None => return false,
            }
        }
        match rest.strip_prefix(seg.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// A field's value (copied), `None` when missing or ambiguous.
fn lookup(field: &Field, req: &crate::request::Request) -> Option<Value> {
    match read(field, req) {
        Read::Str(s) => Some(Value::String(s.to_owned())),
        Read::Value(v) => Some(v.clone()),
        Read::Missing | Read::Ambiguous => None,
    }
}

/// Truth values of the condition code: three-valued (Kleene), so that a
/// guard that cannot be judged never opens a door.
const FALSE: u8 = 0;
const TRUE: u8 = 1;
const UNKNOWN: u8 = 2;

fn truth(b: bool) -> u8 {
    u8::from(b)
}

fn and(a: u8, b: u8) -> u8 {
    if a == FALSE || b == FALSE {
        FALSE
    } else if a == UNKNOWN || b == UNKNOWN {
        UNKNOWN
    } else {
        TRUE
    }
}

fn or(a: u8, b: u8) -> u8 {
    if a == TRUE || b == TRUE {
        TRUE
    } else if a == UNKNOWN || b == UNKNOWN {
        UNKNOWN
    } else {
        FALSE
    }
}

/// Whether a rule of `effect` applies given its condition's truth: an
/// allow needs true; a deny or an approval applies unless false.
fn lets_apply(t: u8, effect: Effect) -> bool {
    match effect {
        Effect::Allow => t == TRUE,
        Effect::Deny | Effect::Approve => t != FALSE,
    }
}

fn holds(c: &PCond, req: &crate::request::Request, clock: &Clock) -> u8 {
    let mut stack = [FALSE; 32];
    let mut spill: Vec<u8> = Vec::new();
    let mut len = 0usize;
    let push = |stack: &mut [u8; 32], spill: &mut Vec<u8>, len: &mut usize, v: u8| {
        if let Some(slot) = stack.get_mut(*len) {
            *slot = v;
        } else {
            spill.push(v);
        }
        *len += 1;
    };
    // An empty stack (a corrupt program) reads as unknown: it never
    // opens a door.
    let pop = |stack: &[u8; 32], spill: &mut Vec<u8>, len: &mut usize| -> u8 {
        if *len == 0 {
            return UNKNOWN;
        }
        *len -= 1;
        if *len >= stack.len() {
            spill.pop().unwrap_or(UNKNOWN)
        } else {
            stack.get(*len).copied().unwrap_or(UNKNOWN)
        }
    };
    for op in &c.code {
        match op {
            Op::Atom(i) => {
                let v = c
                    .atoms
                    .get(*i as usize)
                    .map_or(UNKNOWN, |a| atom(a, req, clock));
                push(&mut stack, &mut spill, &mut len, v);
            }
            Op::All(n) => {
                let mut v = TRUE;
                for _ in 0..*n {
                    v = and(v, pop(&stack, &mut spill, &mut len));
                }
                push(&mut stack, &mut spill, &mut len, v);
            }
            Op::Any(n) => {
                let mut v = FALSE;
                for _ in 0..*n {
                    v = or(v, pop(&stack, &mut spill, &mut len));
                }
                push(&mut stack, &mut spill, &mut len, v);
            }
            Op::Not => {
                let v = match pop(&stack, &mut spill, &mut len) {
                    TRUE => FALSE,
                    FALSE => TRUE,
                    _ => UNKNOWN,
                };
                push(&mut stack, &mut spill, &mut len, v);
            }
        }
    }
    pop(&stack, &mut spill, &mut len)
}

fn eq(l: &Read<'_>, v: &Value) -> bool {
    match l {
        Read::Str(s) => v.as_str() == Some(*s),
        Read::Value(a) => a.loosely_equals(v),
        Read::Missing | Read::Ambiguous => false,
    }
}

/// An atom's truth: false on a missing value; unknown on an ambiguous
/// path or a value of a type the operator is not defined on.
fn atom(a: &PAtom, req: &crate::request::Request, clock: &Clock) -> u8 {
    match a {
        PAtom::Compare { field, op, value } => {
            let actual = read(field, req);
            match actual {
                Read::Missing => return FALSE,
                Read::Ambiguous => return UNKNOWN,
                Read::Str(_) | Read::Value(_) => {}
            }
            match op {
                CompareOp::Eq => truth(eq(&actual, value)),
                CompareOp::Ne => truth(!eq(&actual, value)),
                CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => {
                    let ord = match (&actual, value) {
                        (Read::Value(Value::Number(a)), Value::Number(b)) => a.partial_cmp(b),
                        (Read::Value(Value::String(a)), Value::String(b)) => {
                            Some(a.as_str().cmp(b.as_str()))
                        }
                        (Read::Str(a), Value::String(b)) => Some((*a).cmp(b.as_str())),
                        _ => None,
                    };
                    match (ord, op) {
                        (Some(o), CompareOp::Lt) => truth(o == Ordering::Less),
                        (Some(o), CompareOp::Le) => truth(o != Ordering::Greater),
                        (Some(o), CompareOp::Gt) => truth(o == Ordering::Greater),
                        (Some(o), CompareOp::Ge) => truth(o != Ordering::Less),
                        (Some(_), CompareOp::Eq | CompareOp::Ne) | (None, _) => UNKNOWN,
                    }
                }
            }
        }
        PAtom::In {
            field,
            values,
            negated,
        } => {
            let actual = read(field, req);
            match actual {
                Read::Missing => FALSE,
                Read::Ambiguous => UNKNOWN,
                Read::Str(_) | Read::Value(_) => {
                    truth(values.iter().any(|v| eq(&actual, v)) != *negated)
                }
            }
        }
        PAtom::Glob { field, matcher } => match read(field, req) {
            Read::Missing => FALSE,
            Read::Str(s) => truth(matcher.is_match(s)),
            Read::Value(Value::String(s)) => truth(matcher.is_match(s)),
            Read::Value(_) | Read::Ambiguous => UNKNOWN,
        },
        PAtom::Contains { field, value } => {
            let substring = |s: &str| value.as_str().map_or(UNKNOWN, |n| truth(s.contains(n)));
            match read(field, req) {
                Read::Missing => FALSE,
                Read::Value(Value::List(items)) => {
                    truth(items.iter().any(|i| i.loosely_equals(value)))
                }
                Read::Value(Value::String(s)) => substring(s),
                Read::Str(s) => substring(s),
                Read::Value(_) | Read::Ambiguous => UNKNOWN,
            }
        }
        PAtom::Exists { field } => truth(!matches!(read(field, req), Read::Missing)),
        PAtom::Time { start, end } => {
            let t = clock.time;
            truth(if start < end {
                *start <= t && t < *end
            } else {
                t >= *start || t < *end
            })
        }
        PAtom::Weekdays { mask } => truth(mask & (1 << clock.weekday) != 0),
    }
}

/// The path of the first number in the context that is NaN or infinite
/// (the Rust API can carry one; JSON and Python cannot): such a request is
/// denied, since no comparison on it means anything.
fn non_finite(context: &std::collections::BTreeMap<String, Value>) -> Option<String> {
    fn bad(v: &Value) -> bool {
        match v {
            Value::Number(n) => !n.is_finite(),
            Value::List(items) => items.iter().any(bad),
            Value::Map(m) => m.values().any(bad),
            _ => false,
        }
    }
    fn path_to(v: &Value, path: &mut String) {
        match v {
            Value::List(items) => {
                if let Some((i, item)) = items.iter().enumerate().find(|(_, i)| bad(i)) {
                    path.push_str(&format!("[{i}]"));
                    path_to(item, path);
                }
            }
            Value::Map(m) => {
                if let Some((k, item)) = m.iter().find(|(_, i)| bad(i)) {
                    path.push('.');
                    path.push_str(k);
                    path_to(item, path);
                }
            }
            _ => {}
        }
    }
    let (k, v) = context.iter().find(|(_, v)| bad(v))?;
    let mut path = k.clone();
    path_to(v, &mut path);
    Some(path)
}
