//! The Aegis dialect, read exactly as agent-aegis 1.0.0 reads it.
//!
//! The package is the reference: `Policy.from_dict` (aegis/core/policy.py)
//! for the structure and `evaluate_conditions` (aegis/core/conditions.py)
//! for the conditions. Its files are read with PyYAML, so plain scalars
//! are first typed as YAML 1.1 types them ([`pyyaml`]). Where Aegis would
//! let a request through that it cannot judge (an unknown condition key
//! makes a `block` rule never apply) or would decide something writ cannot
//! express, writ refuses the policy instead; docs/dialects.md lists each
//! such case.
//!
//! | key | meaning in writ |
//! |---|---|
//! | `version` | policy version (a whole number, as `int()` reads it) |
//! | `scope`, `scope_id` | labels, not used to decide |
//! | `plan_rules` | refused (E0210): writ does not judge plans |
//! | `defaults.approval` | default decision: `auto` → allow, `approve` → approve, `block` → deny; absent: `block` |
//! | `defaults.risk_level` | default risk; absent: `medium` |
//! | `rules[].name` | rule name; absent: `rule_<index>`; empty: `<type>@<target>` |
//! | `rules[].match.type` / `match.target` | fnmatch patterns; absent: `*` |
//! | `rules[].match.agent` | the agent's id (an empty id is `*`); a glob is refused |
//! | `rules[].approval` | effect, mapped as above; absent: `approve` |
//! | `rules[].risk_level` | rule risk; absent: `medium` |
//! | `conditions.time_after: T` | T ≤ now (UTC) |
//! | `conditions.time_before: T` | now < T (UTC) |
//! | `conditions.weekdays: [1..7]` | ISO weekday number of now (1 = Monday) is listed |
//! | `conditions.param_*` | see [`params`] |
//! | `conditions.semantic` | refused (E0210) |

mod fnmatch;
mod params;
mod pyre;
mod pyyaml;

use writ_diagnostics::{Code, Diagnostic, Span};
use writ_ir::{
    Condition, Effect, Risk, Rule, RuleParts, Spanned, TimeOfDay, TimeWindow, Weekday, WeekdaySet,
};

use crate::cx::{self, Cx};
use crate::tree::{Kind, Node};
use crate::{Header, Lowering};

const TOP: &[&str] = &[
    "version",
    "defaults",
    "rules",
    "scope",
    "scope_id",
    "plan_rules",
];
const DEFAULTS: &[&str] = &["risk_level", "approval"];
const RULE: &[&str] = &[
    "name",
    "match",
    "conditions",
    "risk_level",
    "approval",
    "description",
];
const MATCH: &[&str] = &["type", "target", "agent"];
const CONDITIONS: &[&str] = &[
    "time_after",
    "time_before",
    "weekdays",
    "param_eq",
    "param_gt",
    "param_lt",
    "param_gte",
    "param_lte",
    "param_contains",
    "param_matches",
    "semantic",
];

/// Keys valid under each parent key (`""` for the top level), for editors.
pub(crate) const KEYS: &[(&str, &[&str])] = &[
    ("", TOP),
    ("defaults", DEFAULTS),
    ("rules", RULE),
    ("match", MATCH),
    ("conditions", CONDITIONS),
];
const APPROVALS: &[&str] = &["auto", "approve", "block"];

/// `Approval(value)`: the exact word, as Python's enum looks it up.
fn approval(word: &str) -> Option<Effect> {
    match word {
        "auto" => Some(Effect::Allow),
        "approve" => Some(Effect::Approve),
        "block" => Some(Effect::Deny),
        _ => None,
    }
}

/// `RiskLevel[value.upper()]`.
fn risk(word: &str) -> Option<Risk> {
    match word.to_uppercase().as_str() {
        "LOW" => Some(Risk::Low),
        "MEDIUM" => Some(Risk::Medium),
        "HIGH" => Some(Risk::High),
        "CRITICAL" => Some(Risk::Critical),
        _ => None,
    }
}

pub(crate) fn cannot_judge(cx: &mut Cx<'_>, span: Span, message: String, help: &str) {
    cx.report(Diagnostic::new(Code::CannotJudge, span, message).with_help(help.to_owned()));
}

/// Python's truth of a YAML value (`data.get(k) or {}` and the like).
fn falsy(node: &Node) -> bool {
    match &node.kind {
        Kind::Null => true,
        Kind::Bool(b) => !b,
        Kind::Int(i) => *i == 0,
        Kind::Float(f) => *f == 0.0,
        Kind::Str(s) => s.is_empty(),
        Kind::Seq(items) => items.is_empty(),
        Kind::Map(entries) => entries.is_empty(),
    }
}

/// A value Python reads as `str`: refused otherwise (Aegis would fail on it).
fn text(cx: &mut Cx<'_>, node: &Node, what: &str) -> Option<Spanned<String>> {
    match &node.kind {
        Kind::Str(s) if !pyyaml::is_date(node, cx.source) => {
            Some(Spanned::new(s.clone(), node.span))
        }
        Kind::Str(_) => {
            cx.report(
                Diagnostic::new(
                    Code::WrongType,
                    node.span,
                    format!("{what} must be a string, found a date"),
                )
                .with_help("PyYAML reads an unquoted date as a date, and Aegis cannot use it here; quote it"),
            );
            None
        }
        _ => {
            let d = Diagnostic::new(
                Code::WrongType,
                node.span,
                format!("{what} must be a string, found {}", node.type_name()),
            )
            .with_label_message("expected a string");
            cx.report(if plain_number_or_word(node) {
                d.with_help("Aegis reads its files with PyYAML (YAML 1.1), which types this unquoted value as a number, boolean or null; quote it")
            } else {
                d
            });
            None
        }
    }
}

fn plain_number_or_word(node: &Node) -> bool {
    matches!(
        node.kind,
        Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) | Kind::Null
    )
}

pub(crate) fn lower(cx: &mut Cx<'_>, root: &Node, out: &mut Lowering) {
    let root = &pyyaml::retype(root, cx.source);
    let mut default_effect = None;
    let mut default_risk = None;
    for (key, value) in cx.map(root, "an Aegis policy", TOP) {
        match key.text.as_str() {
            "version" => version(cx, value, &mut out.header),
            "defaults" if falsy(value) => {}
            "defaults" => {
                for (k, v) in cx.map(value, "`defaults`", DEFAULTS) {
                    if k.text == "approval" {
                        default_effect = word(cx, v, "approval", approval, APPROVALS);
                    } else {
                        default_risk = word(cx, v, "risk level", risk, &Risk::words());
                    }
                }
            }
            "plan_rules" if !falsy(value) => cannot_judge(
                cx,
                key.span,
                "writ does not judge Aegis `plan_rules`".to_owned(),
                "plan rules apply to whole plans (`Runtime.plan`), which writ does not see; remove them, or keep them in Aegis",
            ),
            _ => {}
        }
    }
    // Aegis gives every file its defaults (block, medium) when it declares
    // none, and a merge keeps those of the first file: so does writ.
    let at = Span::new(root.span.file, root.span.start, root.span.start);
    out.settings.default_effect =
        Some(default_effect.unwrap_or_else(|| Spanned::new(Effect::Deny, at)));
    out.settings.default_risk =
        Some(default_risk.unwrap_or_else(|| Spanned::new(Risk::Medium, at)));
    out.rules = rules(cx, root);
}

fn version(cx: &mut Cx<'_>, node: &Node, header: &mut Header) {
    // `int(data.get("version", 1))`.
    let ok = match &node.kind {
        Kind::Int(_) | Kind::Bool(_) => true,
        Kind::Float(f) => f.is_finite(),
        Kind::Str(s) => {
            let t = s.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    };
    if ok {
        Header::read(cx, header, "version", node);
    } else {
        cx.wrong_type(node, "`version`", "a whole number");
    }
}

fn word<T>(
    cx: &mut Cx<'_>,
    node: &Node,
    what: &str,
    parse: fn(&str) -> Option<T>,
    words: &[&str],
) -> Option<Spanned<T>> {
    let s = text(cx, node, what)?;
    match parse(&s.value) {
        Some(v) => Some(Spanned::new(v, s.span)),
        None => {
            cx.report(writ_diagnostics::invalid_word(
                s.span, &s.value, what, words,
            ));
            None
        }
    }
}

fn rules(cx: &mut Cx<'_>, root: &Node) -> Vec<Rule> {
    let Some(list) = root.get("rules") else {
        return Vec::new();
    };
    let items = match &list.kind {
        Kind::Seq(items) => items.as_slice(),
        _ if falsy(list) => return Vec::new(),
        _ => {
            cx.wrong_type(list, "`rules`", "a list of rules");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some((rule, guard)) = rule(cx, item, i) {
            out.extend(guard);
            out.push(rule);
        }
    }
    out
}

/// A rule, and the deny rule that goes before it when Aegis can fail on
/// some request while evaluating it (see [`params::guard`]).
fn rule(cx: &mut Cx<'_>, node: &Node, index: usize) -> Option<(Rule, Option<Rule>)> {
    if node.as_map().is_none() {
        cx.wrong_type(node, "an Aegis rule", "a mapping");
        return None;
    }
    let entries = cx.map(node, "an Aegis rule", RULE);
    let effect = match node.get("approval") {
        Some(v) => word(cx, v, "approval", approval, APPROVALS)?,
        None => Spanned::new(Effect::Approve, node.span),
    };
    let mut parts = RuleParts::new(effect, node.span);
    parts.risk = Some(Spanned::new(Risk::Medium, node.span));
    let mut name: Option<Spanned<String>> = None;
    let mut name_falsy = false;
    let mut type_text = "*".to_owned();
    let mut target_text = "*".to_owned();
    let mut has_type = false;
    let mut ok = true;
    let mut conditions = Vec::new();
    for (k, v) in entries {
        match k.text.as_str() {
            "name" => match rule_name(cx, v) {
                Ok(Some(n)) => name = Some(n),
                Ok(None) => name_falsy = true,
                Err(()) => ok = false,
            },
            "risk_level" => match word(cx, v, "risk level", risk, &Risk::words()) {
                Some(r) => parts.risk = Some(r),
                None => ok = false,
            },
            "description" => parts.reason = cx.string(v, "description"),
            "match" => {
                let Some(v) = cx.coverage(
                    v,
                    "match",
                    "a mapping",
                    "remove `match` to match every action",
                ) else {
                    ok = false;
                    continue;
                };
                if v.as_map().is_none() {
                    cx.wrong_type(v, "`match`", "a mapping");
                    ok = false;
                    continue;
                }
                for (mk, mv) in cx.map(v, "`match`", MATCH) {
                    let what = format!("`match.{}`", mk.text);
                    let Some(p) = pattern_text(cx, mv, &what) else {
                        ok = false;
                        continue;
                    };
                    match mk.text.as_str() {
                        "type" => {
                            has_type = true;
                            type_text.clone_from(&p.value);
                            ok &= add_pattern(cx, &p, &what, &mut parts, true);
                        }
                        "target" => {
                            target_text.clone_from(&p.value);
                            ok &= add_pattern(cx, &p, &what, &mut parts, false);
                        }
                        _ => ok &= agent(cx, &p, &mut parts),
                    }
                }
            }
            "conditions" => match conditions_of(cx, v) {
                Some(c) => conditions = c,
                None => ok = false,
            },
            _ => {}
        }
    }
    if !has_type {
        let p = Spanned::new("*".to_owned(), node.span);
        add_pattern(cx, &p, "`match.type`", &mut parts, true);
    }
    if !ok {
        return None;
    }
    // A `block` rule whose only condition that can fail is its last needs
    // no guard: a condition writ cannot judge makes it deny already.
    let last_only = conditions.iter().rev().skip(1).all(|c| !c.may_fail);
    let guard = if parts.effect.value == Effect::Deny && last_only {
        None
    } else {
        params::guard(&conditions, node.span)
    };
    // What `match` adds (an empty target, a class no string matches)
    // holds for the guard too.
    let match_conditions = parts.conditions.clone();
    parts
        .conditions
        .extend(conditions.into_iter().map(|c| c.condition));
    let explicit = name.is_some();
    let name_span = name.as_ref().map(|n| n.span);
    let name_text = match name {
        Some(n) => n.value,
        None if name_falsy => format!("{type_text}@{target_text}"),
        None => format!("rule_{index}"),
    };
    let guard = guard.map(|g| {
        let mut gp = RuleParts::new(Spanned::new(Effect::Deny, node.span), node.span);
        gp.actions.clone_from(&parts.actions);
        gp.targets.clone_from(&parts.targets);
        gp.scope = parts.scope.clone();
        gp.risk.clone_from(&parts.risk);
        gp.conditions = match_conditions;
        gp.conditions.push(g);
        gp.reason = Some(Spanned::new(
            format!("agent-aegis 1.0.0 fails on this request in rule `{name_text}` (a parameter it cannot compare); writ denies"),
            node.span,
        ));
        named(gp.build(), Spanned::new(format!("{name_text}_error"), node.span), false)
    });
    let name = Spanned::new(name_text, name_span.unwrap_or(node.span));
    Some((named(parts.build(), name, explicit), guard))
}

fn named(mut rule: Rule, name: Spanned<String>, explicit: bool) -> Rule {
    rule.name = name;
    rule.generated_name = !explicit;
    rule
}

/// `rule.name or f"{type}@{target}"`: `Ok(None)` for a name Python finds
/// false.
fn rule_name(cx: &mut Cx<'_>, node: &Node) -> Result<Option<Spanned<String>>, ()> {
    if falsy(node) {
        return Ok(None);
    }
    let value = match &node.kind {
        Kind::Str(s) if !pyyaml::is_date(node, cx.source) => s.clone(),
        Kind::Int(i) => i.to_string(),
        Kind::Bool(_) => "True".to_owned(),
        _ => {
            cx.wrong_type(node, "rule name", "a string");
            return Err(());
        }
    };
    Ok(Some(Spanned::new(value, node.span)))
}

fn pattern_text(cx: &mut Cx<'_>, node: &Node, what: &str) -> Option<Spanned<String>> {
    if matches!(node.kind, Kind::Seq(_)) {
        cx.report(
            Diagnostic::new(Code::WrongType, node.span, format!("{what} must be one pattern, found a list"))
                .with_help("agent-aegis 1.0.0 reads a list here as one pattern made of its items run together (`[a, b]` matches only `ab`); write one pattern, or one rule per pattern"),
        );
        return None;
    }
    text(cx, node, what)
}

/// Adds an fnmatch pattern as writ's glob; false after reporting.
fn add_pattern(
    cx: &mut Cx<'_>,
    p: &Spanned<String>,
    what: &str,
    parts: &mut RuleParts,
    action: bool,
) -> bool {
    if p.value.is_empty() {
        // Only the empty string matches: no request has an empty action,
        // and a target must be exactly empty.
        if action {
            match_nothing(cx, p, what, parts);
        } else {
            parts.conditions.push(Condition::Compare {
                field: writ_ir::Field::Target,
                op: writ_ir::CmpOp::Eq,
                value: writ_ir::Value::String(String::new()),
                span: p.span,
            });
        }
        return true;
    }
    match fnmatch::translate(&p.value) {
        Ok(fnmatch::Translated::Glob(g)) => {
            let Some(pattern) = cx.pattern(&Spanned::new(g, p.span), what, false) else {
                return false;
            };
            if action {
                parts.actions.push(pattern);
            } else {
                parts.targets.push(pattern);
            }
            true
        }
        Ok(fnmatch::Translated::Never) => {
            if action {
                match_nothing(cx, p, what, parts);
            } else {
                cx::no_target(parts);
            }
            true
        }
        Err(fnmatch::Refused) => {
            cx.report(
                Diagnostic::new(
                    Code::InvalidGlob,
                    p.span,
                    format!("invalid pattern `{}` in {what}", p.value),
                )
                .with_help("Python's fnmatch cannot compile this class, so agent-aegis 1.0.0 fails to load the policy; check the ranges in `[...]`"),
            );
            false
        }
    }
}

/// A `match.type` no action matches: any action, and a condition that
/// never holds.
fn match_nothing(cx: &mut Cx<'_>, p: &Spanned<String>, what: &str, parts: &mut RuleParts) {
    if let Some(any) = cx.pattern(&Spanned::new("*".to_owned(), p.span), what, false) {
        parts.actions.push(any);
    }
    cx::no_target(parts);
}

/// `match.agent`: the request's agent id (an empty id is matched as `*`).
fn agent(cx: &mut Cx<'_>, p: &Spanned<String>, parts: &mut RuleParts) -> bool {
    if p.value == "*" {
        return true;
    }
    if !fnmatch::is_literal(&p.value) {
        cannot_judge(
            cx,
            p.span,
            format!("writ cannot match agent ids with the pattern `{}`", p.value),
            "writ matches a rule's agents by their exact id; write one rule per agent id",
        );
        return false;
    }
    parts.scope.agents.push(p.clone());
    true
}

/// One condition of a rule in Aegis's order, and whether it can fail
/// (raise) in Aegis for some request.
pub(crate) struct Cond {
    pub condition: Condition,
    pub may_fail: bool,
}

impl Cond {
    fn exact(condition: Condition) -> Cond {
        Cond {
            condition,
            may_fail: false,
        }
    }
}

fn conditions_of(cx: &mut Cx<'_>, node: &Node) -> Option<Vec<Cond>> {
    // As in writ's schema and MeshGuard: a `conditions:` without a value is
    // not read as "no conditions" (Aegis would drop them silently).
    match node.as_map() {
        None => {
            cx.wrong_type(node, "`conditions`", "a mapping");
            return None;
        }
        Some([]) => cx.warn_always_holds(node, "`conditions`"),
        _ => {}
    }
    let errors = cx.diags.len();
    let mut out = Vec::new();
    for (k, v) in cx.map(node, "`conditions`", CONDITIONS) {
        let span = k.span.cover(v.span);
        match k.text.as_str() {
            "time_after" => {
                if let Some(t) = time(cx, v, "`time_after`") {
                    out.push(Cond::exact(Condition::Time {
                        window: TimeWindow {
                            start: t,
                            end: TimeOfDay::END_OF_DAY,
                        },
                        span,
                    }));
                }
            }
            "time_before" => {
                if let Some(t) = time(cx, v, "`time_before`") {
                    out.push(Cond::exact(if t == TimeOfDay::MIDNIGHT {
                        // Nothing is before midnight: a window that never holds.
                        Condition::Any(Vec::new())
                    } else {
                        Condition::Time {
                            window: TimeWindow {
                                start: TimeOfDay::MIDNIGHT,
                                end: t,
                            },
                            span,
                        }
                    }));
                }
            }
            "weekdays" => {
                if let Some(days) = iso_weekdays(cx, v) {
                    out.push(Cond::exact(Condition::Weekdays { days, span }));
                }
            }
            "semantic" => cannot_judge(
                cx,
                k.span,
                "writ cannot judge Aegis's `semantic` condition".to_owned(),
                "it matches keywords against the action's description and every parameter name, which writ's conditions cannot express; use `param_*` conditions",
            ),
            op => params::lower(cx, op, v, &mut out),
        }
    }
    let failed = cx.diags.get(errors..).is_some_and(|d| {
        d.iter()
            .any(|d| d.severity == writ_diagnostics::Severity::Error)
    });
    (!failed).then_some(out)
}

/// `_parse_time`: `s.strip().split(":")`, `int()` of the first two parts
/// (the rest ignored), then `time(h, m)`.
fn time(cx: &mut Cx<'_>, node: &Node, what: &str) -> Option<TimeOfDay> {
    if let (Kind::Int(_) | Kind::Float(_), Some(plain)) =
        (&node.kind, pyyaml::plain_text(node, cx.source))
        && plain.contains(':')
    {
        cx.report(
            Diagnostic::new(Code::InvalidTime, node.span, format!("{what} `{plain}` is a number to Aegis"))
                .with_help(format!("PyYAML reads an unquoted `{plain}` as a number in base 60, on which agent-aegis 1.0.0 fails; quote it: \"{plain}\"")),
        );
        return None;
    }
    let s = text(cx, node, what)?;
    let mut parts = s.value.trim().split(':');
    let problem = match (parts.next().and_then(py_int), parts.next().and_then(py_int)) {
        (Some(h), Some(m)) if (0..24).contains(&h) && (0..60).contains(&m) => {
            return u32::try_from(h * 3600 + m * 60)
                .ok()
                .map(TimeOfDay::from_seconds);
        }
        (Some(h), Some(_)) if !(0..24).contains(&h) => {
            format!(
                "hour `{h}` is out of range in `{}`; hours run from 0 to 23",
                s.value
            )
        }
        (Some(_), Some(m)) => {
            format!(
                "minute `{m}` is out of range in `{}`; minutes run from 0 to 59",
                s.value
            )
        }
        _ => format!(
            "`{}` is not a time of day; write `HH:MM` on a 24-hour clock",
            s.value
        ),
    };
    cx.report(
        Diagnostic::new(
            Code::InvalidTime,
            s.span,
            format!("invalid {what}: {problem}"),
        )
        .with_help("times are `HH:MM` on a 24-hour clock, from `00:00` to `23:59`"),
    );
    None
}

/// Python's `int(text)` for ASCII text: blanks around, a sign, digits with
/// single underscores between them.
fn py_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let clean: String = t.chars().filter(|c| *c != '_').collect();
    clean.parse().ok()
}

/// `now.isoweekday() in value`: a list of ISO day numbers, 1 (Monday) to 7.
fn iso_weekdays(cx: &mut Cx<'_>, node: &Node) -> Option<WeekdaySet> {
    let Kind::Seq(items) = &node.kind else {
        cx.wrong_type(
            node,
            "`weekdays`",
            "a list of ISO day numbers (1 = Monday .. 7 = Sunday)",
        );
        return None;
    };
    let mut days = WeekdaySet::default();
    let mut ok = true;
    for item in items {
        let n = match item.kind {
            Kind::Int(i) => Some(i),
            #[expect(clippy::cast_possible_truncation, reason = "whole and small, checked")]
            Kind::Float(f) if f.fract() == 0.0 && (1.0..=7.0).contains(&f) => Some(f as i64),
            _ => None,
        };
        let day = n
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| Weekday::ALL.get(i).copied());
        match day {
            Some(d) => days.insert(d),
            None => {
                ok = false;
                let shown = pyyaml::plain_text(item, cx.source)
                    .or_else(|| item.scalar_text(cx.source))
                    .unwrap_or_else(|| item.type_name().to_owned());
                let help = match &item.kind {
                    Kind::Str(s) => match Weekday::parse(s) {
                        Some(d) => format!(
                            "agent-aegis 1.0.0 compares ISO day numbers, so `{s}` never matches there; write {} for {}",
                            d.index() + 1,
                            d.name()
                        ),
                        None => "write ISO day numbers: 1 = Monday .. 7 = Sunday".to_owned(),
                    },
                    _ => "write ISO day numbers: 1 = Monday .. 7 = Sunday; agent-aegis 1.0.0 never matches other values".to_owned(),
                };
                cx.report(
                    Diagnostic::new(
                        Code::InvalidWeekday,
                        item.span,
                        format!("`{shown}` is not an ISO weekday number"),
                    )
                    .with_help(help),
                );
            }
        }
    }
    if days.is_empty() && ok {
        cx.warn_if_empty(node, "`weekdays`", "this condition never holds");
    }
    ok.then_some(days)
}

#[cfg(test)]
mod tests;
