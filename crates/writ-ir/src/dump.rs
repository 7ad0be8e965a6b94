//! A stable, human-readable dump of the IR, used by `writ check --dump-ir`
//! and by the snapshot tests. Spans are printed through a caller-supplied
//! function so that the dump can show `line:column` without this crate
//! knowing source text.

use std::fmt::Write as _;

use writ_diagnostics::Span;

use crate::{AccessList, Agent, PolicySet, Rule, Scope, Spanned, Subject};

/// Renders the whole policy set. `at` turns a span into a short location.
#[must_use]
pub fn dump(set: &PolicySet, at: &dyn Fn(Span) -> String) -> String {
    let mut out = String::new();
    let s = &set.settings;
    let origin = |span: Option<Span>| {
        span.map_or_else(
            || "(built-in default)".to_owned(),
            |s| format!("@{}", at(s)),
        )
    };
    let _ = writeln!(out, "settings");
    let _ = writeln!(
        out,
        "  combining: {} {}",
        s.combining.value,
        origin(s.combining.span)
    );
    let _ = writeln!(
        out,
        "  default: {} {}",
        s.default_effect.value,
        origin(s.default_effect.span)
    );
    if let Some(r) = &s.default_risk {
        let _ = writeln!(out, "  default_risk: {} @{}", r.value, at(r.span));
    }
    if let Some(r) = &s.default_reason {
        let _ = writeln!(out, "  default_reason: {:?} @{}", r.value, at(r.span));
    }
    let _ = writeln!(
        out,
        "  timezone: {} {}",
        s.timezone.value.name,
        origin(s.timezone.span)
    );
    if let Some(d) = &s.max_delegation_depth {
        let _ = writeln!(out, "  max_delegation_depth: {} @{}", d.value, at(d.span));
    }
    let _ = writeln!(
        out,
        "  ceiling: {} {}",
        s.ceiling.value,
        origin(s.ceiling.span)
    );
    for l in &s.ceiling_actions {
        let pats: Vec<String> = l.patterns.iter().map(pattern).collect();
        let _ = writeln!(
            out,
            "  ceiling_actions ({}): [{}] @{}",
            l.key,
            pats.join(", "),
            at(l.span)
        );
    }
    if let Some(e) = &s.entry_agents {
        let _ = writeln!(out, "  entry_agents: {} @{}", names(&e.value), at(e.span));
    }
    for p in &set.policies {
        let _ = write!(out, "policy #{} {:?} dialect={}", p.id.0, p.name, p.dialect);
        if let Some(v) = &p.version {
            let _ = write!(out, " version={v:?}");
        }
        let _ = writeln!(out);
        if let Some(d) = &p.description {
            let _ = writeln!(out, "  description: {d:?}");
        }
    }
    for a in &set.agents {
        dump_agent(&mut out, a, at);
    }
    for r in &set.rules {
        dump_rule(&mut out, r, at);
    }
    out
}

/// A pattern as written; host patterns, which ignore case, are marked.
fn pattern(p: &crate::Pattern) -> String {
    if p.is_case_insensitive() {
        format!("{:?} (any case)", p.as_str())
    } else {
        format!("{:?}", p.as_str())
    }
}

fn names(list: &[Spanned<String>]) -> String {
    list.iter()
        .map(|n| n.value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn dump_agent(out: &mut String, a: &Agent, at: &dyn Fn(Span) -> String) {
    let kind = match a.subject {
        Subject::Agent => "agent",
        Subject::Role => "role",
        Subject::Everyone => "every-agent",
    };
    let _ = writeln!(
        out,
        "{kind} {:?} policy=#{} @{}",
        a.name.value,
        a.policy.0,
        at(a.span)
    );
    if !a.roles.is_empty() {
        let _ = writeln!(out, "  roles: {}", names(&a.roles));
    }
    if let Some(t) = &a.tier {
        let _ = writeln!(out, "  tier: {}", t.value);
    }
    if !a.tags.is_empty() {
        let _ = writeln!(out, "  tags: {}", names(&a.tags));
    }
    if let Some(t) = &a.token_prefix {
        let _ = writeln!(out, "  token_prefix: {:?}", t.value);
    }
    dump_access(out, "models", &a.models);
    dump_access(out, "tools", &a.tools);
    dump_access(out, "hosts", &a.hosts);
    if let Some(t) = &a.require_tls {
        let _ = writeln!(out, "  require_tls: {}", t.value);
    }
    for l in &a.limits {
        let _ = write!(out, "  limit {} {} ({})", l.metric, l.rate, l.key);
        if let Some(p) = &l.actions {
            let _ = write!(out, " on {}", pattern(p));
        }
        let _ = writeln!(out, " @{}", at(l.span));
    }
    if !a.delegates.is_empty() {
        let _ = writeln!(out, "  delegates: {}", names(&a.delegates));
    }
}

fn dump_access(out: &mut String, what: &str, list: &AccessList) {
    for (verb, l) in [("block", &list.block), ("allow", &list.allow)] {
        if let Some(l) = l {
            let pats: Vec<String> = l.patterns.iter().map(pattern).collect();
            let _ = writeln!(out, "  {what}.{verb} ({}): [{}]", l.key, pats.join(", "));
        }
    }
}

fn dump_scope(out: &mut String, scope: &Scope) {
    if scope.is_everyone() {
        return;
    }
    let mut parts = Vec::new();
    if !scope.agents.is_empty() {
        parts.push(format!("agents=[{}]", names(&scope.agents)));
    }
    if !scope.roles.is_empty() {
        parts.push(format!("roles=[{}]", names(&scope.roles)));
    }
    if !scope.tiers.is_empty() {
        let t: Vec<&str> = scope.tiers.iter().map(|t| t.value.as_str()).collect();
        parts.push(format!("tiers=[{}]", t.join(", ")));
    }
    if !scope.tags.is_empty() {
        parts.push(format!("tags=[{}]", names(&scope.tags)));
    }
    let _ = writeln!(out, "  scope: {}", parts.join(" "));
}

fn dump_rule(out: &mut String, r: &Rule, at: &dyn Fn(Span) -> String) {
    let generated = if r.generated_name {
        " (generated name)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "rule #{} {}{generated} policy=#{} @{}",
        r.id.0,
        r.name.value,
        r.policy.0,
        at(r.span)
    );
    let _ = write!(out, "  effect: {}", r.effect.value);
    if let Some(risk) = &r.risk {
        let _ = write!(out, " risk: {}", risk.value);
    }
    let _ = writeln!(out);
    let acts: Vec<String> = r.actions.iter().map(pattern).collect();
    let _ = writeln!(out, "  actions: [{}]", acts.join(", "));
    if !r.targets.is_empty() {
        let t: Vec<String> = r.targets.iter().map(pattern).collect();
        let _ = writeln!(out, "  targets: [{}]", t.join(", "));
    }
    dump_scope(out, &r.scope);
    if let Some(c) = &r.condition {
        let _ = writeln!(out, "  when: {c}");
    }
    for c in &r.constraints {
        let alt = c
            .alternate
            .as_ref()
            .map(|a| format!(" (or {a})"))
            .unwrap_or_default();
        let vals: Vec<String> = c.values.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "  constraint {}: every {}{alt} in [{}]",
            c.name,
            c.field,
            vals.join(", ")
        );
    }
    if let Some(l) = &r.limit {
        let whom = if l.value.shared {
            "shared by all agents"
        } else {
            "per agent"
        };
        let _ = writeln!(out, "  limit: {} {whom}", l.value.rate);
    }
    if let Some(reason) = &r.reason {
        let _ = writeln!(out, "  reason: {:?}", reason.value);
    }
}
