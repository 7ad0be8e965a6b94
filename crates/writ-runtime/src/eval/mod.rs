//! The decision procedure over a prepared bundle. It follows writ's
//! reference evaluator step by step (the differential tests compare them),
//! but finds candidate rules through the action index and evaluates
//! conditions as postfix code.
//!
//! - [`decision`]: the decision and its reason, as handed out;
//! - [`prepare`]: the loader, and rules prepared on first use;
//! - this module: the decision procedure (principal, chain, ceilings,
//!   rules, default, limits);
//! - [`limits`]: the amounts a decision takes once it allows;
//! - [`cond`]: the condition VM.

use std::borrow::Cow;
use std::cmp::Ordering;

use rustc_hash::FxHashMap;

use crate::error::LoadError;
use crate::limiter::{
    Acquire, InProcess, LimitKind, LimitStore, OnStoreFailure, Refusal, Scope as LimitScope,
};
use std::sync::OnceLock;

use crate::matcher::{ActionIndex, Matcher, Narrowing, ScopeKey, TARGET_PROVEN, Who, any_match};
use crate::model::{
    Atom, Field, Head, Op, Prelude, Rate, Span, Value, r_ceiling_actions, r_condition, r_graph,
    r_rule, scan_condition_entry, scan_rule,
};
use crate::reason::ScopeList;
use crate::vocab::{Combining, CompareOp, Metric, Subject, Tier};
use crate::wire::{Reader, Strings};

pub use crate::vocab::{Effect, Risk};

mod cond;
mod decision;
mod limits;
mod prepare;

use cond::*;
pub use decision::{Decision, Reason};
pub use limits::FullLimit;
use limits::*;
use prepare::*;

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
    /// Whether some agent entry bounds what its principals do (lists of
    /// models, tools or hosts, TLS, limits, delegates); when none does,
    /// the ceilings have no entry to look at.
    bounded: bool,
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
    /// The agent entries declared under the agent's name (looked up once).
    entries: &'r [u32],
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

    /// Candidates from the index (see [`crate::matcher::TARGET_PROVEN`]),
    /// sorted, each rule once: [`TARGET_PROVEN`] kept if any of its copies
    /// had it.
    fn finish_rules(&mut self) -> &[u32] {
        self.finish_by(|v| v >> 1)
    }

    /// The numbers as pushed.
    fn as_slice(&self) -> &[u32] {
        if self.more.is_empty() {
            self.inline.get(..self.len).unwrap_or(&[])
        } else {
            &self.more
        }
    }

    /// Sorted and deduplicated.
    fn finish(&mut self) -> &[u32] {
        self.finish_by(|v| v)
    }

    /// Sorted, numbers of the same `key` merged into one (their bits
    /// or-ed together).
    fn finish_by(&mut self, key: fn(u32) -> u32) -> &[u32] {
        if self.len <= 1 && self.more.is_empty() {
            return self.inline.get(..self.len).unwrap_or(&[]);
        }
        let slice: &mut [u32] = if self.more.is_empty() {
            self.inline.get_mut(..self.len).unwrap_or(&mut [])
        } else {
            &mut self.more
        };
        slice.sort_unstable();
        let mut w = 0usize;
        for i in 0..slice.len() {
            let v = slice.get(i).copied().unwrap_or(0);
            match w.checked_sub(1).and_then(|last| slice.get_mut(last)) {
                Some(last) if key(*last) == key(v) => *last |= v,
                _ => {
                    if let Some(slot) = slice.get_mut(w) {
                        *slot = v;
                    }
                    w += 1;
                }
            }
        }
        if self.more.is_empty() {
            self.len = w;
            self.inline.get(..w).unwrap_or(&[])
        } else {
            self.more.truncate(w);
            &self.more
        }
    }
}

impl Compiled {
    fn deny<'s>(
        &'s self,
        rule: Option<&'s PRule>,
        agent: Option<&'s PAgent>,
        reason: String,
        retry: Option<u64>,
    ) -> Decision<'s> {
        self.deny_for(rule, agent, Reason::Text(reason), retry)
    }

    fn deny_for<'s>(
        &'s self,
        rule: Option<&'s PRule>,
        agent: Option<&'s PAgent>,
        reason: Reason<'s>,
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
            reason,
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
            entries: &[],
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
                        // The principal is the request's agent, whom
                        // the sentence names when it is written.
                        let reason = pending.get(index).map_or_else(
                            || Reason::Text("a limit is reached".to_owned()),
                            |h| Reason::Limit(FullLimit(Box::new(*h))),
                        );
                        let (rule, agent) = pending
                            .get(index)
                            .map_or((None, None), |h| (h.rule, h.agent));
                        return self.deny_for(rule, agent, reason, Some(retry_after_s));
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
            p.entries = ids;
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
        // The caller's tier counts only for an agent the policy gives none.
        if p.tier.is_none() {
            p.tier = req.tier;
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
        p.entries.iter().for_each(|i| out.push(*i));
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
        if !self.bounded {
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
            narrowed: std::cell::Cell::default(),
        };
        self.index
            .candidates(self.body(), &req.action, &who, |r| candidates.push(r));
        let mut best: Option<Decision<'s>> = None;
        let mut allow_limits: Vec<Hold<'s>> = Vec::new();
        // The rules that matched the action and target but whose scope
        // left the principal out: what the default decision names.
        // (Rarely any: no room is made until one comes.)
        let mut out_of_scope: Vec<u32> = Vec::new();
        for &c in candidates.finish_rules() {
            let (i, proven) = (c >> 1, c & TARGET_PROVEN != 0);
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
            match self.applies(rule, req, p, clock, proven) {
                Applies::Yes => {}
                Applies::OutOfScope => {
                    out_of_scope.push(i);
                    continue;
                }
                Applies::No => continue,
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
        // Unless the index narrowed them for this request, the candidates
        // were every rule of the action that can match; else the buckets
        // that narrowed them give what they left out (or, past the buckets
        // kept, a second pass over the index).
        let narrowed = who.narrowed.get();
        if narrowed.is_empty() {
            return self.default(req, p, &out_of_scope, &[]);
        }
        let mut wider = Small::new();
        if !self
            .index
            .widen(self.body(), &narrowed, who.target, |c| wider.push(c))
        {
            let no_roles = |_: &mut dyn FnMut(&str)| {};
            let every = Who {
                agent: p.id,
                roles: &no_roles,
                target: who.target,
                every: true,
                narrowed: std::cell::Cell::default(),
            };
            self.index
                .candidates(self.body(), &req.action, &every, |c| wider.push(c));
        }
        // Each rule the first pass looked at is known already.
        let first = candidates.finish_rules();
        let mut unseen = Small::new();
        wider
            .finish_rules()
            .iter()
            .filter(|c| first.binary_search_by_key(&(*c >> 1), |f| f >> 1).is_err())
            .for_each(|c| unseen.push(*c));
        // (Taken in order from a sorted list of distinct rules: sorted and
        // distinct already.)
        self.default(req, p, &out_of_scope, unseen.as_slice())
    }

    /// The default decision. It names the rule that matched the action
    /// (and target) but whose scope left the agent out, if one did, and
    /// its policy; else the policy whose default applies. `known` are
    /// such rules found while deciding (by number, sorted); `unseen`,
    /// candidates of the action that deciding did not look at (as the
    /// index gives them, sorted): every rule of the action that can match
    /// is in one or the other or was looked at and cannot explain.
    #[inline(never)]
    fn default<'s>(
        &'s self,
        req: &crate::request::Request,
        p: &Principal<'_>,
        known: &[u32],
        unseen: &[u32],
    ) -> Decision<'s> {
        let target = req.target.as_deref().unwrap_or("");
        // Both lists in rule order, the unseen ones checked here.
        let mut known_in = known.iter().peekable();
        let mut unseen_in = unseen.iter().peekable();
        let in_order = std::iter::from_fn(|| match (known_in.peek(), unseen_in.peek()) {
            (Some(&&k), Some(&&u)) if k < u >> 1 => known_in.next().map(|k| (*k, true)),
            (Some(_), Some(_)) | (None, Some(_)) => {
                unseen_in.next().map(|u| (u >> 1, u & TARGET_PROVEN != 0))
            }
            (Some(_), None) => known_in.next().map(|k| (*k, true)),
            (None, None) => None,
        });
        let excluded = in_order.filter_map(|(i, target_matched)| {
            // A rule that cannot be read here was not needed to decide
            // (the first pass would have denied): it explains nothing.
            let rule = self.rule(i).ok()?;
            if !target_matched && !rule.targets.is_empty() && !any_match(&rule.targets, target) {
                return None;
            }
            let list = scope_miss(&rule.scope, p)?;
            Some((rule.effect, (rule, list)))
        });
        let nearest = if known.len() + unseen.len() == 0 {
            None
        } else {
            crate::reason::nearest(excluded, self.default_effect)
        };
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
                        self.deny_for(
                            Some(rule),
                            None,
                            Reason::Limit(FullLimit(Box::new(hold))),
                            Some(retry_after_s),
                        ),
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

    /// Whether `rule` applies to the request; `proven` when the index
    /// found it by a target pattern the request's target matches.
    fn applies(
        &self,
        rule: &PRule,
        req: &crate::request::Request,
        p: &Principal<'_>,
        clock: &Clock,
        proven: bool,
    ) -> Applies {
        if !proven && !rule.targets.is_empty() {
            let target = req.target.as_deref().unwrap_or("");
            if !any_match(&rule.targets, target) {
                return Applies::No;
            }
        }
        if scope_miss(&rule.scope, p).is_some() {
            return Applies::OutOfScope;
        }
        if rule
            .condition
            .as_ref()
            .is_none_or(|c| lets_apply(holds(c, req, clock), rule.effect))
        {
            Applies::Yes
        } else {
            Applies::No
        }
    }
}

/// Whether a rule applies to a request.
enum Applies {
    Yes,
    /// Its action and targets match, but its scope leaves the principal
    /// out: the default decision may name it.
    OutOfScope,
    /// Its targets or its condition do not match.
    No,
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
