//! The Aegis dialect, read as its users write it.
//!
//! | key | meaning in writ |
//! |---|---|
//! | `version` | policy version |
//! | `defaults.approval` | default decision: `auto` → allow, `approve` → approve, `block` → deny |
//! | `defaults.risk_level` | default risk |
//! | `rules[].name` | rule name |
//! | `rules[].match.type` / `match.target` | action / target patterns |
//! | `rules[].approval` | effect, mapped as above |
//! | `rules[].risk_level` | rule risk |
//! | `conditions.time_after: T` | T ≤ now (until midnight) |
//! | `conditions.time_before: T` | now < T (from midnight) |
//! | `conditions.weekdays` | the request's weekday is listed |
//! | `conditions.param_eq/gt/lt/gte/lte: {p: v}` | context `p` compared with `v` |
//! | `conditions.param_contains: {p: v}` | context `p` contains `v` |
//! | `conditions.param_matches: {p: glob}` | context `p` matches the glob |

use writ_diagnostics::Span;
use writ_ir::{
    CmpOp, Condition, Effect, Field, Path, Risk, TimeOfDay, TimeWindow, Weekday, WeekdaySet,
};

use crate::cx::{self, Cx, rule_list};
use crate::tree::{Kind, Node};
use crate::{Header, Lowering};
use writ_ir::RuleParts;

const TOP: &[&str] = &["version", "defaults", "rules"];
const DEFAULTS: &[&str] = &["risk_level", "approval"];
const RULE: &[&str] = &[
    "name",
    "match",
    "conditions",
    "risk_level",
    "approval",
    "description",
];
const MATCH: &[&str] = &["type", "target"];
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

fn approval(word: &str) -> Option<Effect> {
    match word.trim().to_ascii_lowercase().as_str() {
        "auto" => Some(Effect::Allow),
        "approve" => Some(Effect::Approve),
        "block" => Some(Effect::Deny),
        _ => None,
    }
}

pub(crate) fn lower(cx: &mut Cx<'_>, root: &Node, out: &mut Lowering) {
    for (key, value) in cx.map(root, "an Aegis policy", TOP) {
        match key.text.as_str() {
            "version" => Header::read(cx, &mut out.header, "version", value),
            "defaults" => {
                for (k, v) in cx.map(value, "`defaults`", DEFAULTS) {
                    if k.text == "approval" {
                        out.settings.default_effect = cx.word(v, "approval", approval, APPROVALS);
                    } else {
                        out.settings.default_risk =
                            cx.word(v, "risk level", Risk::parse, &Risk::words());
                    }
                }
            }
            _ => {}
        }
    }
    out.rules = rule_list(cx, root, |cx, item| rule(cx, item).map(RuleParts::build));
}

fn rule(cx: &mut Cx<'_>, node: &Node) -> Option<RuleParts> {
    let entries = cx.map(node, "an Aegis rule", RULE);
    node.as_map()?;
    let Some(approval_node) = node.get("approval") else {
        cx.missing(node, "approval", "an Aegis rule");
        return None;
    };
    let effect = cx.word(approval_node, "approval", approval, APPROVALS)?;
    let mut parts = RuleParts::new(effect, node.span);
    let mut has_type = false;
    for (k, v) in entries {
        match k.text.as_str() {
            "name" => parts.name = cx.string(v, "rule name"),
            "risk_level" => parts.risk = cx.word(v, "risk level", Risk::parse, &Risk::words()),
            "description" => parts.reason = cx.string(v, "description"),
            "match" => {
                for (mk, mv) in cx.map(v, "`match`", MATCH) {
                    let (expected, help) = if mk.text == "type" {
                        has_type = true;
                        cx::ACTIONS
                    } else {
                        cx::TARGETS
                    };
                    let Some(mv) = cx.coverage(mv, &format!("match.{}", mk.text), expected, help)
                    else {
                        continue;
                    };
                    if mk.text == "type" {
                        parts.actions.extend(cx.patterns(mv, "`match.type`", false));
                    } else {
                        cx.warn_if_empty(mv, "`match.target`", "this rule never applies");
                        if matches!(&mv.kind, Kind::Seq(items) if items.is_empty()) {
                            cx::no_target(&mut parts);
                        }
                        parts
                            .targets
                            .extend(cx.patterns(mv, "`match.target`", false));
                    }
                }
            }
            "conditions" => conditions(cx, v, &mut parts),
            _ => {}
        }
    }
    if !has_type {
        cx.missing(
            node.get("match").unwrap_or(node),
            "match.type",
            "an Aegis rule",
        );
        return None;
    }
    Some(parts)
}

fn conditions(cx: &mut Cx<'_>, node: &Node, parts: &mut RuleParts) {
    // As in writ's schema and MeshGuard: a `conditions:` without a value is
    // not read as "no conditions".
    match node.as_map() {
        None if node.kind == Kind::Null => return cx.wrong_type(node, "`conditions`", "a mapping"),
        Some([]) => cx.warn_always_holds(node, "`conditions`"),
        _ => {}
    }
    for (k, v) in cx.map(node, "`conditions`", CONDITIONS) {
        let span = k.span.cover(v.span);
        match k.text.as_str() {
            "time_after" => {
                if let Some(t) = cx.time_of_day(v, "`time_after`") {
                    parts.conditions.push(Condition::Time {
                        window: TimeWindow {
                            start: t,
                            end: TimeOfDay::END_OF_DAY,
                        },
                        span,
                    });
                }
            }
            "time_before" => {
                if let Some(t) = cx.time_of_day(v, "`time_before`") {
                    if t == TimeOfDay::MIDNIGHT {
                        // Nothing is before midnight: a window that never holds.
                        parts.conditions.push(Condition::Any(Vec::new()));
                    } else {
                        parts.conditions.push(Condition::Time {
                            window: TimeWindow {
                                start: TimeOfDay::MIDNIGHT,
                                end: t,
                            },
                            span,
                        });
                    }
                }
            }
            "weekdays" => {
                if let Some(days) = weekdays(cx, v) {
                    parts.conditions.push(Condition::Weekdays { days, span });
                }
            }
            op => param(cx, op, v, parts),
        }
    }
}

pub(crate) fn weekdays(cx: &mut Cx<'_>, node: &Node) -> Option<WeekdaySet> {
    let mut days = WeekdaySet::default();
    let mut ok = true;
    for s in cx.strings(node, "a weekday") {
        match Weekday::parse(&s.value) {
            Some(d) => days.insert(d),
            None => {
                ok = false;
                let names: Vec<&str> = Weekday::ALL.iter().map(|d| d.name()).collect();
                let help = writ_diagnostics::did_you_mean(&s.value, names.iter().copied())
                    .map_or_else(
                        || "use `mon`..`sun` or full English day names".to_owned(),
                        |d| format!("did you mean `{d}`?"),
                    );
                cx.report(
                    writ_diagnostics::Diagnostic::new(
                        writ_diagnostics::Code::InvalidWeekday,
                        s.span,
                        format!("`{}` is not a weekday", s.value),
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

fn param(cx: &mut Cx<'_>, op: &str, node: &Node, parts: &mut RuleParts) {
    let Some(entries) = node.as_map() else {
        cx.wrong_type(
            node,
            &format!("`{op}`"),
            "a mapping from parameter name to value",
        );
        return;
    };
    for (k, v) in entries {
        let span: Span = k.span.cover(v.span);
        let field = Field::Context(Path::parse(&k.text));
        let cond = match op {
            "param_eq" => Condition::Compare {
                field,
                op: CmpOp::Eq,
                value: cx.value(v),
                span,
            },
            "param_contains" => Condition::Contains {
                field,
                value: cx.value(v),
                span,
            },
            "param_matches" => {
                let Some(s) = cx.string(v, "`param_matches`") else {
                    continue;
                };
                let Some(pattern) = cx.pattern(&s, "`param_matches`", false) else {
                    continue;
                };
                Condition::Glob {
                    field,
                    pattern,
                    span,
                }
            }
            _ => {
                let cmp = match op {
                    "param_gt" => CmpOp::Gt,
                    "param_lt" => CmpOp::Lt,
                    "param_gte" => CmpOp::Ge,
                    _ => CmpOp::Le,
                };
                let Some(n) = cx.number(v, &format!("`{op}.{}`", k.text)) else {
                    continue;
                };
                Condition::Compare {
                    field,
                    op: cmp,
                    value: writ_ir::Value::Number(n),
                    span,
                }
            }
        };
        parts.conditions.push(cond);
    }
}
