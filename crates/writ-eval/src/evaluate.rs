//! The decision procedure.
//!
//! 1. Resolve the principal: the request's agent id, its roles (from the
//!    request, from the declared agent, and from a token prefix), tier and tags.
//! 2. Ceilings: every agent or role entry that bounds the principal checks
//!    its model, tool and host lists (block list first) and its limits. A
//!    request outside a ceiling is denied, naming the list or limit.
//! 3. Rules: a rule applies when an action pattern matches, a target pattern
//!    matches (or it has none), the principal is in its scope and its
//!    condition holds. An applying rule's constraints are then checked (a
//!    failure denies) and, for allow rules, its limit (counted per acting
//!    agent, or once for all agents when the limit is `shared`).
//! 4. Combining: first-match takes the first applying rule; deny-overrides
//!    takes the first deny, else the first approve, else the first allow. No
//!    applying rule: the policy default.
//! 5. Only an allow is counted against limits and budgets.

use std::cmp::Ordering;

use writ_diagnostics::Span;
use writ_ir::{
    Agent, CmpOp, Combining, Condition, Effect, Field, Metric, PolicySet, Rule, Subject, Tier,
    TimeOfDay, Value, Weekday,
};

pub use writ_runtime::ScopeList;
use writ_runtime::Value as CtxValue;

use crate::limiter::{LimitKey, Limiter};
use crate::{Decision, Request};

/// Who is asking, after roles and tokens are resolved.
pub(crate) struct Principal<'r> {
    pub(crate) id: &'r str,
    pub(crate) roles: Vec<&'r str>,
    pub(crate) tier: Option<Tier>,
    pub(crate) tags: Vec<&'r str>,
}

/// The request's time in the policy's time zone.
pub(crate) struct Clock {
    pub(crate) time: TimeOfDay,
    pub(crate) weekday: Weekday,
    pub(crate) millis: i64,
}

/// A limit that must be committed if the decision ends as allow.
pub(crate) struct Pending {
    key: LimitKey,
    rate: writ_ir::Rate,
    amount: u64,
}

/// The reference evaluator over one policy set, with its own limit counters.
#[derive(Debug)]
pub struct Evaluator<'p> {
    pub(crate) set: &'p PolicySet,
    limiter: Limiter,
}

impl<'p> Evaluator<'p> {
    #[must_use]
    pub fn new(set: &'p PolicySet) -> Self {
        Evaluator {
            set,
            limiter: Limiter::default(),
        }
    }

    /// Decides a request. `now` is used when the request carries no `at`.
    pub fn check(&mut self, req: &Request, now: jiff::Timestamp) -> Decision {
        let clock = self.clock(req, now);
        self.decide(req, &clock, true)
    }

    /// The request's time (its `at`, else `now`) in the policy's time zone.
    pub(crate) fn clock(&self, req: &Request, now: jiff::Timestamp) -> Clock {
        let at = req.at.unwrap_or(now);
        let zoned = at.to_zoned(self.set.settings.timezone.value.tz.clone());
        let secs = u32::from(zoned.hour().unsigned_abs()) * 3600
            + u32::from(zoned.minute().unsigned_abs()) * 60
            + u32::from(zoned.second().unsigned_abs());
        let weekday = match zoned.weekday() {
            jiff::civil::Weekday::Monday => Weekday::Monday,
            jiff::civil::Weekday::Tuesday => Weekday::Tuesday,
            jiff::civil::Weekday::Wednesday => Weekday::Wednesday,
            jiff::civil::Weekday::Thursday => Weekday::Thursday,
            jiff::civil::Weekday::Friday => Weekday::Friday,
            jiff::civil::Weekday::Saturday => Weekday::Saturday,
            jiff::civil::Weekday::Sunday => Weekday::Sunday,
        };
        Clock {
            time: TimeOfDay::from_seconds(secs),
            weekday,
            millis: at.as_millisecond(),
        }
    }

    /// Decides a request; with `commit`, an allow is counted against limits.
    fn decide(&mut self, req: &Request, clock: &Clock, commit: bool) -> Decision {
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
        let principal = match self.principal(req) {
            Ok(p) => p,
            Err(reason) => return self.deny(None, None, reason, None),
        };
        let mut pending = Vec::new();
        if let Some((denied, _)) = self.ceilings(req, &principal, clock, &mut pending) {
            return denied;
        }
        let decision = self.rules(req, &principal, clock, &mut pending);
        if decision.effect == Effect::Allow {
            // The strict ceiling: a chain member's approval is still needed.
            if let Some(approve) = floor {
                return approve;
            }
            if commit {
                for p in pending {
                    self.limiter.commit(p.key, p.rate, p.amount, clock.millis);
                }
            }
        }
        decision
    }

    /// Checks a request's delegation chain: its length, each hop, and (under
    /// the strict ceiling) that every member may take the action itself.
    /// Returns an approve decision when a member's own decision is approve.
    pub(crate) fn chain(
        &mut self,
        req: &Request,
        clock: &Clock,
    ) -> Result<Option<Decision>, Decision> {
        let hops = req.chain.len().saturating_sub(1);
        if let Some(max) = &self.set.settings.max_delegation_depth
            && hops > max.value as usize
        {
            return Err(self.deny(
                None,
                None,
                format!(
                    "the delegation chain has {hops} hops ({}), more than max_delegation_depth {}",
                    req.chain.join(" → "),
                    max.value
                ),
                None,
            ));
        }
        // What a delegated agent may do at most; handing work on is bounded
        // by the depth and the hops instead.
        if delegation_target(req).is_none()
            && let Some(list) = self
                .set
                .settings
                .ceiling_actions
                .iter()
                .find(|l| !l.matches(&req.action))
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
                let why = hop.reason.clone().unwrap_or_default();
                return Err(Decision {
                    reason: Some(format!(
                        "delegation `{from}` → `{to}` in the chain is not permitted: {why}"
                    )),
                    ..hop
                });
            }
        }
        // Handing work on is governed by the hops and the depth; the ceiling
        // is about what the chain does.
        if self.set.settings.ceiling.value == writ_ir::Ceiling::None
            || delegation_target(req).is_some()
        {
            return Ok(None);
        }
        let mut floor = None;
        let acting = req.chain.last().map_or("", String::as_str);
        for member in req.chain.iter().filter(|m| m.as_str() != acting) {
            let mut alone = Request::new(member, &req.action);
            alone.target.clone_from(&req.target);
            alone.context.clone_from(&req.context);
            alone.at = req.at;
            alone.tokens = req.tokens;
            let own = self.decide(&alone, clock, false);
            let what = match &req.target {
                Some(t) => format!("`{}` on `{t}`", req.action),
                None => format!("`{}`", req.action),
            };
            let why = own.reason.clone().unwrap_or_default();
            match own.effect {
                Effect::Deny => {
                    return Err(Decision {
                        reason: Some(format!(
                            "strict ceiling: every agent in the chain must be allowed {what} itself, and `{member}` is not ({why})"
                        )),
                        ..own
                    });
                }
                Effect::Approve if floor.is_none() => {
                    floor = Some(Decision {
                        reason: Some(format!(
                            "strict ceiling: `{member}` in the chain needs approval for {what} ({why})"
                        )),
                        ..own
                    });
                }
                _ => {}
            }
        }
        Ok(floor)
    }

    /// One hop of a chain: may `from` delegate to `to`? Asked as
    /// `agent:delegate` on `to`, else as `handoff:<to>`; allow or approve
    /// permits the hop (an approved hop has been approved by now).
    fn hop(&mut self, req: &Request, from: &str, to: &str, clock: &Clock) -> Decision {
        let mut ask = Request::new(from, "agent:delegate");
        ask.target = Some(to.to_owned());
        ask.context.clone_from(&req.context);
        ask.at = req.at;
        let first = self.decide(&ask, clock, false);
        if first.effect != Effect::Deny {
            return first;
        }
        let mut handoff = Request::new(from, &format!("handoff:{to}"));
        handoff.context.clone_from(&req.context);
        handoff.at = req.at;
        let second = self.decide(&handoff, clock, false);
        if second.effect != Effect::Deny {
            return second;
        }
        first
    }

    fn policy_name(&self, rule_policy: writ_ir::PolicyId) -> Option<String> {
        self.set.policy(rule_policy).map(|p| p.name.clone())
    }

    fn deny(
        &self,
        rule: Option<&Rule>,
        agent: Option<&Agent>,
        reason: String,
        retry: Option<u64>,
    ) -> Decision {
        let policy = rule
            .map(|r| r.policy)
            .or(agent.map(|a| a.policy))
            .and_then(|p| self.policy_name(p));
        Decision {
            effect: Effect::Deny,
            rule: rule.map(|r| r.name.value.clone()),
            policy,
            reason: Some(reason),
            risk: rule.and_then(|r| r.risk.as_ref().map(|r| r.value)).or(self
                .set
                .settings
                .default_risk
                .as_ref()
                .map(|r| r.value)),
            retry_after_s: retry,
        }
    }

    pub(crate) fn principal<'r>(&self, req: &'r Request) -> Result<Principal<'r>, String>
    where
        'p: 'r,
    {
        let mut p = Principal {
            id: &req.agent,
            roles: req.roles.iter().map(String::as_str).collect(),
            tier: None,
            tags: req.tags.iter().map(String::as_str).collect(),
        };
        for a in self
            .set
            .agents
            .iter()
            .filter(|a| a.subject == Subject::Agent && a.name.value == req.agent)
        {
            p.roles.extend(a.roles.iter().map(|r| r.value.as_str()));
            p.tags.extend(a.tags.iter().map(|t| t.value.as_str()));
            p.tier = p.tier.max(a.tier.as_ref().map(|t| t.value));
            if let (Some(prefix), Some(token)) = (&a.token_prefix, &req.token)
                && !token.starts_with(&prefix.value)
            {
                return Err(format!("token does not belong to agent `{}`", req.agent));
            }
        }
        // The caller's tier counts only for an agent the policy gives none.
        if p.tier.is_none() {
            p.tier = req.tier.and_then(|t| Tier::parse(t.as_str()));
        }
        if let Some(token) = &req.token {
            let mut any_prefix = false;
            let mut matched = false;
            for a in &self.set.agents {
                if let Some(prefix) = &a.token_prefix {
                    any_prefix = true;
                    if token.starts_with(&prefix.value) {
                        matched = true;
                        if a.subject == Subject::Role {
                            p.roles.push(&a.name.value);
                        }
                    }
                }
            }
            if any_prefix && !matched {
                return Err("token matches no declared `token_prefix`".to_owned());
            }
        }
        Ok(p)
    }

    fn bounds(agent: &Agent, p: &Principal<'_>) -> bool {
        match agent.subject {
            Subject::Agent => agent.name.value == p.id,
            Subject::Role => p.roles.contains(&agent.name.value.as_str()),
            Subject::Everyone => true,
        }
    }

    /// True when `to` is in the entry's `delegates`, by name or by one of
    /// the declared agent `to`'s roles.
    fn delegates_to(&self, entry: &Agent, to: &str) -> bool {
        let roles: Vec<&str> = self
            .set
            .agents
            .iter()
            .filter(|a| a.subject == Subject::Agent && a.name.value == to)
            .flat_map(|a| a.roles.iter().map(|r| r.value.as_str()))
            .collect();
        entry
            .delegates
            .iter()
            .any(|d| d.value == to || roles.contains(&d.value.as_str()))
    }

    /// The first ceiling that denies the request, with the span of the list,
    /// setting or limit that did (for explanations).
    pub(crate) fn ceilings(
        &mut self,
        req: &Request,
        p: &Principal<'_>,
        clock: &Clock,
        pending: &mut Vec<Pending>,
    ) -> Option<(Decision, Option<Span>)> {
        let target = req.target.as_deref().unwrap_or("");
        if let (Some(to), Some(max)) = (
            delegation_target(req),
            &self.set.settings.max_delegation_depth,
        ) {
            let hops = req.chain.len().max(1);
            if hops > max.value as usize {
                return Some((
                    self.deny(
                        None,
                        None,
                        format!(
                            "delegating to `{to}` would make a chain of {hops} hops, more than max_delegation_depth {}",
                            max.value
                        ),
                        None,
                    ),
                    Some(max.span),
                ));
            }
        }
        for agent in self.set.agents.iter().filter(|a| Self::bounds(a, p)) {
            let who = match agent.subject {
                Subject::Agent => format!("agent `{}`", agent.name.value),
                Subject::Role => format!("role `{}`", agent.name.value),
                Subject::Everyone => format!("`{}`", agent.name.value),
            };
            let (list, noun) = match req.action.as_str() {
                "model:use" => (&agent.models, "model"),
                "tool:call" => (&agent.tools, "tool"),
                "net:connect" => (&agent.hosts, "host"),
                _ => (
                    &writ_ir::AccessList {
                        allow: None,
                        block: None,
                    },
                    "",
                ),
            };
            if let Some(block) = &list.block
                && block.matches(target)
            {
                return Some((
                    self.deny(
                        None,
                        Some(agent),
                        format!("{noun} `{target}` is in {} of {who}", block.key),
                        None,
                    ),
                    Some(block.span),
                ));
            }
            if let Some(allow) = &list.allow
                && !allow.matches(target)
            {
                return Some((
                    self.deny(
                        None,
                        Some(agent),
                        format!("{noun} `{target}` is not in {} of {who}", allow.key),
                        None,
                    ),
                    Some(allow.span),
                ));
            }
            if let Some(to) = delegation_target(req)
                && !agent.delegates.is_empty()
                && !self.delegates_to(agent, to)
            {
                return Some((
                    self.deny(
                        None,
                        Some(agent),
                        format!("delegation to `{to}` is not in delegates of {who}"),
                        None,
                    ),
                    agent.delegates.first().map(|d| d.span).or(Some(agent.span)),
                ));
            }
            if req.action == "net:connect"
                && agent.require_tls.as_ref().is_some_and(|t| t.value)
                && req.context.get("scheme").and_then(CtxValue::as_str) != Some("https")
            {
                return Some((
                    self.deny(
                        None,
                        Some(agent),
                        format!("{who} requires TLS: context `scheme` must be `https`"),
                        None,
                    ),
                    agent.require_tls.as_ref().map(|t| t.span),
                ));
            }
            for (i, limit) in agent.limits.iter().enumerate() {
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
                let key = LimitKey::Agent(agent.id, i, p.id.to_owned());
                if let Err(retry) = self.limiter.check(&key, limit.rate, amount, clock.millis) {
                    let what = match limit.metric {
                        Metric::Requests => "requests",
                        Metric::Tokens => "tokens",
                    };
                    let reason = format!(
                        "{who} is over its {what} limit `{}` ({}: {})",
                        limit.rate, limit.key, limit.rate.count
                    );
                    return Some((
                        self.deny(None, Some(agent), reason, Some(retry)),
                        Some(limit.span),
                    ));
                }
                pending.push(Pending {
                    key,
                    rate: limit.rate,
                    amount,
                });
            }
        }
        None
    }

    fn rules(
        &mut self,
        req: &Request,
        p: &Principal<'_>,
        clock: &Clock,
        pending: &mut Vec<Pending>,
    ) -> Decision {
        let set = self.set;
        let mut best: Option<Decision> = None;
        let mut allow_limits: Vec<Pending> = Vec::new();
        for rule in &set.rules {
            if !applies(rule, req, p, clock) {
                continue;
            }
            let (decision, limits, _) = self.outcome(rule, req, p, clock);
            match set.settings.combining.value {
                Combining::FirstMatch => {
                    pending.extend(limits);
                    return decision;
                }
                Combining::DenyOverrides => {
                    if decision.effect == Effect::Allow {
                        allow_limits.extend(limits);
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
            }
        }
        if let Some(decision) = best {
            if decision.effect == Effect::Allow {
                pending.extend(allow_limits);
            }
            return decision;
        }
        self.default(req, p, clock)
    }

    /// The default decision, naming the first rule (preferring one of
    /// another effect than the default) whose action and target matched
    /// but whose scope left the agent out, and its policy; else the policy
    /// whose default applies.
    fn default(&self, req: &Request, p: &Principal<'_>, clock: &Clock) -> Decision {
        let s = &self.set.settings;
        let effect = s.default_effect.value;
        let excluded = self
            .set
            .rules
            .iter()
            .filter_map(|rule| match miss(rule, req, p, clock) {
                Some(Miss::Scope(list)) => Some((runtime_effect(rule.effect.value), (rule, list))),
                _ => None,
            });
        let nearest = writ_runtime::reason::nearest(excluded, runtime_effect(effect));
        let policy = match nearest {
            Some((rule, _)) => self.policy_name(rule.policy),
            None => self.set.default_policy().map(|p| p.name.clone()),
        };
        let reason = match (&s.default_reason, nearest) {
            (Some(r), _) => expand(&r.value, req),
            (None, found) => {
                let (wanted, rule, list): (Vec<String>, &str, Option<ScopeList>) = match found {
                    None => (Vec::new(), "", None),
                    Some((rule, list)) => {
                        let sc = &rule.scope;
                        let names = |l: &[writ_ir::Spanned<String>]| {
                            l.iter().map(|n| n.value.clone()).collect()
                        };
                        let wanted = match list {
                            ScopeList::Agents => names(&sc.agents),
                            ScopeList::Roles => names(&sc.roles),
                            ScopeList::Tiers => {
                                sc.tiers.iter().map(|t| t.value.to_string()).collect()
                            }
                            ScopeList::Tags => names(&sc.tags),
                        };
                        (wanted, rule.name.value.as_str(), Some(list))
                    }
                };
                let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
                let tier = p.tier.map(|t| t.to_string());
                let excluded = list.map(|list| writ_runtime::reason::OutOfScope {
                    rule,
                    list,
                    wanted: &wanted,
                    tier: tier.as_deref(),
                    target: req.target.as_deref(),
                });
                writ_runtime::reason::no_rule(
                    &req.action,
                    &req.agent,
                    excluded.as_ref(),
                    runtime_effect(effect),
                )
            }
        };
        Decision {
            effect,
            rule: None,
            policy,
            reason: Some(reason),
            risk: s.default_risk.as_ref().map(|r| r.value),
            retry_after_s: None,
        }
    }

    /// The decision of an applying rule: constraints, then its limit; with
    /// what blocked the rule's own effect, if anything did.
    pub(crate) fn outcome(
        &mut self,
        rule: &Rule,
        req: &Request,
        p: &Principal<'_>,
        clock: &Clock,
    ) -> (Decision, Vec<Pending>, Blocked) {
        for (i, c) in rule.constraints.iter().enumerate() {
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
                return (
                    self.deny(Some(rule), None, reason, None),
                    Vec::new(),
                    Blocked::Constraint(i),
                );
            }
        }
        let mut limits = Vec::new();
        if rule.effect.value == Effect::Allow
            && let Some(limit) = &rule.limit
        {
            let key = if limit.value.shared {
                LimitKey::RuleShared(rule.id)
            } else {
                LimitKey::Rule(rule.id, p.id.to_owned())
            };
            if let Err(retry) = self.limiter.check(&key, limit.value.rate, 1, clock.millis) {
                let reason = if limit.value.shared {
                    format!(
                        "rate limit `{}` of rule `{}` (shared by all agents) reached",
                        limit.value.rate, rule.name.value
                    )
                } else {
                    format!(
                        "rate limit `{}` of rule `{}` reached for agent `{}`",
                        limit.value.rate, rule.name.value, p.id
                    )
                };
                return (
                    self.deny(Some(rule), None, reason, Some(retry)),
                    Vec::new(),
                    Blocked::Limit,
                );
            }
            limits.push(Pending {
                key,
                rate: limit.value.rate,
                amount: 1,
            });
        }
        let decision = Decision {
            effect: rule.effect.value,
            rule: Some(rule.name.value.clone()),
            policy: self.policy_name(rule.policy),
            reason: rule.reason.as_ref().map(|r| expand(&r.value, req)),
            risk: rule.risk.as_ref().map(|r| r.value).or(self
                .set
                .settings
                .default_risk
                .as_ref()
                .map(|r| r.value)),
            retry_after_s: None,
        };
        (decision, limits, Blocked::No)
    }
}

/// What kept an applying rule from deciding its own effect.
pub(crate) enum Blocked {
    No,
    /// The constraint at this index failed.
    Constraint(usize),
    /// The rule's limit was reached.
    Limit,
}

/// Why a rule does not apply, in the order the checks run. Cheap to make
/// (no allocation), so the normal path shares it with explanations.
pub(crate) enum Miss<'r> {
    Action,
    Target,
    Scope(ScopeList),
    Condition(&'r Condition),
}

/// The runtime's name for an effect, for the sentences the two engines share.
fn runtime_effect(e: Effect) -> writ_runtime::Effect {
    match e {
        Effect::Allow => writ_runtime::Effect::Allow,
        Effect::Deny => writ_runtime::Effect::Deny,
        Effect::Approve => writ_runtime::Effect::Approve,
    }
}

/// `{action}`, `{target}` and `{agent}` in reasons are replaced by the request's.
fn expand(template: &str, req: &Request) -> String {
    if !template.contains('{') {
        return template.to_owned();
    }
    template
        .replace("{action}", &req.action)
        .replace("{target}", req.target.as_deref().unwrap_or(""))
        .replace("{agent}", &req.agent)
}

pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

fn applies(rule: &Rule, req: &Request, p: &Principal<'_>, clock: &Clock) -> bool {
    miss(rule, req, p, clock).is_none()
}

/// The first reason `rule` does not apply to the request; `None` when it applies.
pub(crate) fn miss<'r>(
    rule: &'r Rule,
    req: &Request,
    p: &Principal<'_>,
    clock: &Clock,
) -> Option<Miss<'r>> {
    if !rule.actions.iter().any(|a| a.is_match(&req.action)) {
        return Some(Miss::Action);
    }
    if !rule.targets.is_empty() {
        let target = req.target.as_deref().unwrap_or("");
        if !rule.targets.iter().any(|t| t.is_match(target)) {
            return Some(Miss::Target);
        }
    }
    let s = &rule.scope;
    if !s.agents.is_empty() && !s.agents.iter().any(|a| a.value == p.id) {
        return Some(Miss::Scope(ScopeList::Agents));
    }
    if !s.roles.is_empty() && !s.roles.iter().any(|r| p.roles.contains(&r.value.as_str())) {
        return Some(Miss::Scope(ScopeList::Roles));
    }
    if !s.tiers.is_empty() && !s.tiers.iter().any(|t| p.tier == Some(t.value)) {
        return Some(Miss::Scope(ScopeList::Tiers));
    }
    if !s.tags.is_empty() && !s.tags.iter().any(|t| p.tags.contains(&t.value.as_str())) {
        return Some(Miss::Scope(ScopeList::Tags));
    }
    match &rule.condition {
        Some(c) if !holds(c, req, clock).lets_apply(rule.effect.value) => Some(Miss::Condition(c)),
        _ => None,
    }
}

/// The path of the first number in the context that is NaN or infinite
/// (JSON cannot carry one, the Rust API can): such a request is denied,
/// since no comparison on it means anything.
fn non_finite(context: &std::collections::BTreeMap<String, CtxValue>) -> Option<String> {
    fn walk(v: &CtxValue, path: &mut String) -> bool {
        match v {
            CtxValue::Number(n) => !n.is_finite(),
            CtxValue::List(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let bad = walk(item, path);
                if !bad {
                    path.truncate(len);
                }
                bad
            }),
            CtxValue::Map(m) => m.iter().any(|(k, item)| {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                let bad = walk(item, path);
                if !bad {
                    path.truncate(len);
                }
                bad
            }),
            CtxValue::Null | CtxValue::Bool(_) | CtxValue::String(_) => false,
        }
    }
    context.iter().find_map(|(k, v)| {
        let mut path = k.clone();
        walk(v, &mut path).then_some(path)
    })
}

/// A context value (the runtime's request type) as the IR's value, which
/// policy literals are.
fn ir_value(v: &CtxValue) -> Value {
    match v {
        CtxValue::Null => Value::Null,
        CtxValue::Bool(b) => Value::Bool(*b),
        CtxValue::Number(n) => Value::Number(*n),
        CtxValue::String(s) => Value::String(s.clone()),
        CtxValue::List(items) => Value::List(items.iter().map(ir_value).collect()),
        CtxValue::Map(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), ir_value(v))).collect()),
    }
}

/// What a dotted path reads from a context. A path of several segments
/// (`a.b`) has two readings: the whole dotted text as one key
/// (`{"a.b": 1}`) and nested maps (`{"a": {"b": 1}}`). When only one is
/// present it is the value; when both are present and equal, that value;
/// when both are present and differ, the path is ambiguous. Mixed forms
/// (`{"a.b": {"c": 1}}` for `a.b.c`) are not read.
pub(crate) fn find<'a>(
    path: &writ_ir::Path,
    context: &'a std::collections::BTreeMap<String, CtxValue>,
) -> Found<'a> {
    let segments = &path.0;
    let nested = (|| {
        let (first, rest) = segments.split_first()?;
        let mut cur = context.get(first)?;
        for key in rest {
            match cur {
                CtxValue::Map(m) => cur = m.get(key)?,
                _ => return None,
            }
        }
        Some(cur)
    })();
    if segments.len() < 2 {
        return nested.map_or(Found::Missing, Found::Value);
    }
    match (context.get(&segments.join(".")), nested) {
        (Some(flat), Some(nested)) if !flat.loosely_equals(nested) => Found::Ambiguous,
        (Some(v), _) | (None, Some(v)) => Found::Value(v),
        (None, None) => Found::Missing,
    }
}

/// What a path reads from a context.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Found<'a> {
    Missing,
    Value(&'a CtxValue),
    /// The flat key and the nested maps hold different values.
    Ambiguous,
}

/// What a field reads from the request.
pub(crate) enum Read {
    /// Absent, or null.
    Missing,
    Value(Value),
    /// A dotted path whose flat key and nested maps hold different values.
    Ambiguous,
}

pub(crate) fn read(field: &Field, req: &Request) -> Read {
    match field {
        Field::Target => req
            .target
            .clone()
            .map_or(Read::Missing, |t| Read::Value(Value::String(t))),
        Field::Context(path) => match find(path, &req.context) {
            Found::Missing | Found::Value(CtxValue::Null) => Read::Missing,
            Found::Value(v) => Read::Value(ir_value(v)),
            Found::Ambiguous => Read::Ambiguous,
        },
    }
}

/// The value of a field, `None` when it is missing, null or ambiguous.
pub(crate) fn lookup(field: &Field, req: &Request) -> Option<Value> {
    match read(field, req) {
        Read::Value(v) => Some(v),
        Read::Missing | Read::Ambiguous => None,
    }
}

/// The truth of a condition: three-valued, so that what cannot be judged
/// never opens a door.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Truth {
    False,
    True,
    /// The condition reads a value of a type its operator is not defined
    /// on (`amount > 100` on a string), or an ambiguous dotted path.
    Unknown,
}

impl Truth {
    fn of(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }

    /// Kleene's conjunction: false wins, then unknown.
    fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::Unknown, _) | (_, Truth::Unknown) => Truth::Unknown,
            _ => Truth::True,
        }
    }

    /// Kleene's disjunction: true wins, then unknown.
    fn or(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::True, _) | (_, Truth::True) => Truth::True,
            (Truth::Unknown, _) | (_, Truth::Unknown) => Truth::Unknown,
            _ => Truth::False,
        }
    }

    fn not(self) -> Truth {
        match self {
            Truth::False => Truth::True,
            Truth::True => Truth::False,
            Truth::Unknown => Truth::Unknown,
        }
    }

    /// Whether a rule of this effect applies: an allow needs its condition
    /// to hold; a deny or an approval applies unless its condition is
    /// false (an unknown guard fails closed).
    #[must_use]
    pub fn lets_apply(self, effect: Effect) -> bool {
        match effect {
            Effect::Allow => self == Truth::True,
            Effect::Deny | Effect::Approve => self != Truth::False,
        }
    }
}

/// Whether a condition holds. A comparison on an absent (or null) value is
/// false; on a value of the wrong type, or an ambiguous path, unknown.
pub(crate) fn holds(c: &Condition, req: &Request, clock: &Clock) -> Truth {
    match c {
        Condition::Compare {
            field, op, value, ..
        } => match read(field, req) {
            Read::Missing => Truth::False,
            Read::Ambiguous => Truth::Unknown,
            Read::Value(actual) => compare(&actual, *op, value),
        },
        Condition::In {
            field,
            values,
            negated,
            ..
        } => match read(field, req) {
            Read::Missing => Truth::False,
            Read::Ambiguous => Truth::Unknown,
            Read::Value(actual) => {
                Truth::of(values.iter().any(|v| v.loosely_equals(&actual)) != *negated)
            }
        },
        Condition::Glob { field, pattern, .. } => match read(field, req) {
            Read::Missing => Truth::False,
            Read::Value(Value::String(s)) => Truth::of(pattern.is_match(&s)),
            Read::Value(_) | Read::Ambiguous => Truth::Unknown,
        },
        Condition::Contains { field, value, .. } => match read(field, req) {
            Read::Missing => Truth::False,
            Read::Value(Value::List(items)) => {
                Truth::of(items.iter().any(|i| i.loosely_equals(value)))
            }
            Read::Value(Value::String(s)) => match value.as_str() {
                Some(needle) => Truth::of(s.contains(needle)),
                None => Truth::Unknown,
            },
            Read::Value(_) | Read::Ambiguous => Truth::Unknown,
        },
        Condition::Exists { field, .. } => Truth::of(!matches!(read(field, req), Read::Missing)),
        Condition::Time { window, .. } => Truth::of(window.contains(clock.time)),
        Condition::Weekdays { days, .. } => Truth::of(days.contains(clock.weekday)),
        Condition::All(parts) => parts
            .iter()
            .fold(Truth::True, |acc, p| acc.and(holds(p, req, clock))),
        Condition::Any(parts) => parts
            .iter()
            .fold(Truth::False, |acc, p| acc.or(holds(p, req, clock))),
        Condition::Not(inner, _) => holds(inner, req, clock).not(),
    }
}

/// `==` and `!=` are defined on every pair of values; the ordering
/// operators on two numbers or two strings, and unknown otherwise.
fn compare(actual: &Value, op: CmpOp, expected: &Value) -> Truth {
    match op {
        CmpOp::Eq => Truth::of(actual.loosely_equals(expected)),
        CmpOp::Ne => Truth::of(!actual.loosely_equals(expected)),
        _ => {
            let ord = match (actual, expected) {
                (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
                (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
                _ => None,
            };
            match (ord, op) {
                (Some(o), CmpOp::Lt) => Truth::of(o == Ordering::Less),
                (Some(o), CmpOp::Le) => Truth::of(o != Ordering::Greater),
                (Some(o), CmpOp::Gt) => Truth::of(o == Ordering::Greater),
                (Some(o), CmpOp::Ge) => Truth::of(o != Ordering::Less),
                _ => Truth::Unknown,
            }
        }
    }
}

/// The agent a delegation request hands off to: the target of
/// `agent:delegate`, or the name in `handoff:<name>`.
pub(crate) fn delegation_target(req: &Request) -> Option<&str> {
    match req.action.as_str() {
        "agent:delegate" => req.target.as_deref(),
        other => other.strip_prefix("handoff:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_path_reads_flat_and_nested_keys_and_two_that_differ_are_ambiguous() {
        let path = writ_ir::Path::parse("a.b");
        let mut ctx = BTreeMap::new();
        ctx.insert("a.b".to_owned(), CtxValue::Number(1.0));
        assert_eq!(find(&path, &ctx), Found::Value(&CtxValue::Number(1.0)));
        let mut inner = BTreeMap::new();
        inner.insert("b".to_owned(), CtxValue::Number(2.0));
        ctx.insert("a".to_owned(), CtxValue::Map(inner.clone()));
        assert_eq!(find(&path, &ctx), Found::Ambiguous);
        inner.insert("b".to_owned(), CtxValue::Number(1.0));
        ctx.insert("a".to_owned(), CtxValue::Map(inner));
        assert_eq!(find(&path, &ctx), Found::Value(&CtxValue::Number(1.0)));
        ctx.remove("a.b");
        assert_eq!(find(&path, &ctx), Found::Value(&CtxValue::Number(1.0)));
        assert_eq!(find(&writ_ir::Path::parse("a.c"), &ctx), Found::Missing);
        assert_eq!(find(&writ_ir::Path::parse("a.b.c"), &ctx), Found::Missing);
    }
}
