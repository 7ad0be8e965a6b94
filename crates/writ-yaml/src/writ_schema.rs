//! writ's own YAML schema (documented in `docs/schema.md`, JSON Schema in
//! `schemas/writ-policy.schema.json`).

use writ_diagnostics::{Code, Diagnostic, Span};
use writ_ir::{
    Agent, AgentId, AgentLimit, Ceiling, CmpOp, Combining, Condition, Constraint, Effect, Field,
    Metric, NamedList, Path, PolicyId, Rate, Risk, RuleLimit, Spanned, Subject, Tier,
};

use crate::cx::{self, Cx, missing_action, rule_actions, rule_list};
use crate::tree::{Key, Kind, Node};
use crate::{Header, Lowering};
use writ_ir::RuleParts;

const TOP: &[&str] = &["writ", "policy", "agents", "roles", "rules"];
const POLICY: &[&str] = &[
    "name",
    "version",
    "description",
    "combining",
    "default",
    "default_risk",
    "default_reason",
    "timezone",
    "max_delegation_depth",
    "ceiling",
    "entry_agents",
];
const AGENT: &[&str] = &[
    "roles",
    "tier",
    "tags",
    "token_prefix",
    "models",
    "tools",
    "hosts",
    "limits",
    "delegates",
];
const ROLE: &[&str] = &[
    "token_prefix",
    "models",
    "tools",
    "hosts",
    "limits",
    "delegates",
];
const LISTS: &[&str] = &["allow", "block"];
const HOSTS: &[&str] = &["allow", "block", "require_tls"];
const LIMIT: &[&str] = &["requests", "tokens", "actions"];
const RULE: &[&str] = &[
    "name",
    "effect",
    "risk",
    "action",
    "actions",
    "target",
    "targets",
    "principals",
    "when",
    "constraints",
    "limit",
    "reason",
];
const PRINCIPALS: &[&str] = &["agents", "roles", "tiers", "tags"];
const RULE_LIMIT: &[&str] = &["rate", "shared"];

/// Keys valid under each parent key (`""` for the top level), for editors.
pub(crate) const KEYS: &[(&str, &[&str])] = &[
    ("", TOP),
    ("policy", POLICY),
    ("agents", AGENT),
    ("roles", ROLE),
    ("models", LISTS),
    ("tools", LISTS),
    ("hosts", HOSTS),
    ("limits", LIMIT),
    ("rules", RULE),
    ("limit", RULE_LIMIT),
    ("principals", PRINCIPALS),
];
const OPERATORS: &[&str] = &[
    "==", "!=", "<", "<=", ">", ">=", "eq", "ne", "lt", "le", "lte", "gt", "ge", "gte", "in",
    "not_in", "matches", "contains", "exists",
];

pub(crate) fn lower(cx: &mut Cx<'_>, root: &Node, out: &mut Lowering) {
    for (key, value) in cx.map(root, "a writ policy", TOP) {
        match key.text.as_str() {
            "writ"
                if !matches!(value.kind, Kind::Int(1))
                    && value.scalar_text(cx.source).as_deref() != Some("1") =>
            {
                cx.report(
                    Diagnostic::new(
                        Code::InvalidValue,
                        value.span,
                        "unsupported schema version: this writ reads `writ: 1`",
                    )
                    .with_help("write `writ: 1`"),
                );
            }
            "policy" => policy(cx, value, out),
            "agents" | "roles" => agents(cx, key, value, out),
            "rules" => {
                out.rules = rule_list(cx, root, |cx, item| rule(cx, item).map(RuleParts::build))
            }
            _ => {}
        }
    }
}

fn policy(cx: &mut Cx<'_>, node: &Node, out: &mut Lowering) {
    for (k, v) in cx.map(node, "`policy`", POLICY) {
        match k.text.as_str() {
            "name" | "version" | "description" => Header::read(cx, &mut out.header, &k.text, v),
            "combining" => {
                out.settings.combining = cx.word(
                    v,
                    "combining algorithm",
                    Combining::parse,
                    &Combining::words(),
                )
            }
            "default" => {
                out.settings.default_effect = cx.word(v, "effect", Effect::parse, &Effect::words())
            }
            "default_risk" => {
                out.settings.default_risk = cx.word(v, "risk level", Risk::parse, &Risk::words())
            }
            "default_reason" => out.settings.default_reason = cx.string(v, "`default_reason`"),
            "max_delegation_depth" => {
                out.settings.max_delegation_depth = cx
                    .count(v, "`max_delegation_depth`")
                    .map(|n| Spanned::new(u32::try_from(n).unwrap_or(u32::MAX), v.span));
            }
            "ceiling" => {
                out.settings.ceiling =
                    cx.word(v, "permission ceiling", Ceiling::parse, &Ceiling::words());
            }
            "entry_agents" => {
                cx.warn_if_empty(v, "`entry_agents`", "no agent is an entry");
                out.settings.entry_agents =
                    Some(Spanned::new(cx.strings(v, "an agent id"), v.span));
            }
            _ => out.settings.timezone = cx.timezone(v),
        }
    }
}

fn agents(cx: &mut Cx<'_>, section: &Key, node: &Node, out: &mut Lowering) {
    let (subject, known, noun) = if section.text == "roles" {
        (Subject::Role, ROLE, "role")
    } else {
        (Subject::Agent, AGENT, "agent")
    };
    let Some(entries) = node.as_map() else {
        if node.kind != Kind::Null {
            cx.wrong_type(
                node,
                &format!("`{}`", section.text),
                &format!("a mapping from {noun} name to its settings"),
            );
        }
        return;
    };
    for (name, body) in entries {
        let id = Spanned::new(name.text.clone(), name.span);
        let mut agent = Agent::new(
            AgentId(0),
            id,
            subject.clone(),
            PolicyId(0),
            name.span.cover(body.span),
        );
        for (k, v) in cx.map(body, &format!("{noun} `{}`", name.text), known) {
            match k.text.as_str() {
                "roles" => agent.roles = cx.strings(v, "a role"),
                "tier" => agent.tier = cx.word(v, "trust tier", Tier::parse, &Tier::words()),
                "tags" => agent.tags = cx.strings(v, "a tag"),
                "token_prefix" => agent.token_prefix = cx.string(v, "token prefix"),
                "models" => agent.models = access(cx, v, "models", LISTS, &mut agent.require_tls),
                "tools" => agent.tools = access(cx, v, "tools", LISTS, &mut agent.require_tls),
                "hosts" => agent.hosts = access(cx, v, "hosts", HOSTS, &mut agent.require_tls),
                "limits" => agent.limits = limits(cx, v),
                _ => agent.delegates = cx.strings(v, "a delegation target"),
            }
        }
        out.agents.push(agent);
    }
}

fn access(
    cx: &mut Cx<'_>,
    node: &Node,
    what: &str,
    known: &[&str],
    tls: &mut Option<Spanned<bool>>,
) -> writ_ir::AccessList {
    let mut list = writ_ir::AccessList::default();
    let hosts = what == "hosts";
    for (k, v) in cx.map(node, &format!("`{what}`"), known) {
        if k.text == "require_tls" {
            *tls = cx.boolean(v, "`require_tls`");
            continue;
        }
        let key = format!("{what}.{}", k.text);
        if k.text == "allow" {
            cx.warn_if_empty(v, &format!("`{key}`"), "nothing is allowed");
        }
        let patterns = cx.patterns(v, &format!("`{key}`"), hosts);
        let named = Some(NamedList {
            key,
            patterns,
            span: v.span,
        });
        if k.text == "allow" {
            list.allow = named
        } else {
            list.block = named
        }
    }
    list
}

fn limits(cx: &mut Cx<'_>, node: &Node) -> Vec<AgentLimit> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::new();
    for item in items {
        let entries = cx.map(item, "a limit", LIMIT);
        let mut metric: Option<(Metric, Spanned<Rate>, String)> = None;
        let mut actions = None;
        for (k, v) in entries {
            match k.text.as_str() {
                "requests" | "tokens" => {
                    if metric.is_some() {
                        cx.report(
                            Diagnostic::new(
                                Code::InvalidValue,
                                k.span,
                                "a limit counts either `requests` or `tokens`, not both",
                            )
                            .with_help("write two limits"),
                        );
                        continue;
                    }
                    let m = if k.text == "requests" {
                        Metric::Requests
                    } else {
                        Metric::Tokens
                    };
                    if let Some(rate) = cx.rate(v, &format!("`{}` limit", k.text)) {
                        metric = Some((m, rate, format!("limits.{}", k.text)));
                    }
                }
                _ => {
                    if let Some(s) = cx.string(v, "`actions`") {
                        actions = cx.pattern(&s, "`actions`", false);
                    }
                }
            }
        }
        match metric {
            Some((metric, rate, key)) => out.push(AgentLimit {
                key,
                metric,
                rate: rate.value,
                actions,
                span: item.span,
            }),
            None if item.as_map().is_some() => cx.missing(item, "requests` or `tokens", "a limit"),
            None => {}
        }
    }
    out
}

fn rule(cx: &mut Cx<'_>, node: &Node) -> Option<RuleParts> {
    let entries = cx.map(node, "a rule", RULE);
    node.as_map()?;
    let Some(effect_node) = node.get("effect") else {
        cx.missing(node, "effect", "a rule");
        return None;
    };
    let effect = cx.word(effect_node, "effect", Effect::parse, &Effect::words())?;
    let mut parts = RuleParts::new(effect, node.span);
    let mut has_action = false;
    for (k, v) in entries {
        match k.text.as_str() {
            "name" => parts.name = cx.string(v, "rule name"),
            "risk" => parts.risk = cx.word(v, "risk level", Risk::parse, &Risk::words()),
            "action" | "actions" => {
                has_action = true;
                rule_actions(cx, k, v, &mut parts);
            }
            "target" | "targets" => {
                let (expected, help) = cx::TARGETS;
                let Some(v) = cx.coverage(v, &k.text, expected, help) else {
                    continue;
                };
                cx.warn_if_empty(v, "`targets`", "this rule never applies");
                if matches!(&v.kind, Kind::Seq(items) if items.is_empty()) {
                    cx::no_target(&mut parts);
                }
                parts.targets.extend(cx.patterns(v, "a target", false));
            }
            "principals" => {
                let (expected, help) = cx::PRINCIPALS;
                let Some(v) = cx.coverage(
                    v,
                    "principals",
                    "a mapping of `agents`, `roles`, `tiers` or `tags`",
                    help,
                ) else {
                    continue;
                };
                for (pk, pv) in cx.map(v, "`principals`", PRINCIPALS) {
                    let Some(pv) = cx.coverage(pv, &pk.text, expected, help) else {
                        continue;
                    };
                    match pk.text.as_str() {
                        "agents" => parts.scope.agents = cx.strings(pv, "an agent id"),
                        "roles" => parts.scope.roles = cx.strings(pv, "a role"),
                        "tags" => parts.scope.tags = cx.strings(pv, "a tag"),
                        _ => {
                            let items = match &pv.kind {
                                Kind::Seq(items) => items.iter().collect(),
                                _ => vec![pv],
                            };
                            parts.scope.tiers = items
                                .into_iter()
                                .filter_map(|t| {
                                    cx.word(t, "trust tier", Tier::parse, &Tier::words())
                                })
                                .collect();
                        }
                    }
                }
            }
            "when" => parts.conditions.extend(condition(cx, v)),
            "constraints" => constraints(cx, v, &mut parts),
            "limit" => parts.limit = rule_limit(cx, v),
            "reason" => parts.reason = cx.string(v, "reason"),
            _ => {} // `effect`, read above
        }
    }
    if !has_action {
        missing_action(cx, node, "a rule");
        return None;
    }
    Some(parts)
}

/// A rule's `limit`: `N/unit`, counted per agent, or
/// `{ rate: N/unit, shared: true }`, counted once for all agents.
fn rule_limit(cx: &mut Cx<'_>, node: &Node) -> Option<Spanned<RuleLimit>> {
    if node.as_map().is_none() {
        return cx
            .rate(node, "rule limit")
            .map(|r| r.map(RuleLimit::per_agent));
    }
    let mut rate = None;
    let mut shared = false;
    for (k, v) in cx.map(node, "a rule limit", RULE_LIMIT) {
        if k.text == "rate" {
            rate = cx.rate(v, "rule limit");
        } else if let Some(b) = cx.boolean(v, "`shared`") {
            shared = b.value;
        }
    }
    if node.get("rate").is_none() {
        cx.missing(node, "rate", "a rule limit");
    }
    rate.map(|r| {
        Spanned::new(
            RuleLimit {
                rate: r.value,
                shared,
            },
            node.span,
        )
    })
}

fn constraints(cx: &mut Cx<'_>, node: &Node, parts: &mut RuleParts) {
    let Some(entries) = node.as_map() else {
        cx.wrong_type(node, "`constraints`", "a mapping");
        return;
    };
    for (k, v) in entries {
        let span = k.span.cover(v.span);
        let Some(name) = k.text.strip_prefix("allowed_").filter(|n| !n.is_empty()) else {
            cx.unknown_key(
                k,
                "`constraints`",
                &["allowed_targets", "allowed_<context key>"],
            );
            continue;
        };
        cx.warn_if_empty(v, &format!("`{}`", k.text), "this rule always denies");
        let values = cx.values(v);
        let (field, alternate) = if name == "targets" {
            (Field::Target, None)
        } else {
            let alt = name
                .strip_suffix('s')
                .filter(|s| !s.is_empty())
                .map(|s| Field::Context(Path::parse(s)));
            (Field::Context(Path::parse(name)), alt)
        };
        parts.constraints.push(Constraint {
            name: k.text.clone(),
            field,
            alternate,
            values,
            span,
        });
    }
}

/// A condition: a list (all must hold) or a mapping (every entry must hold).
/// An empty one always holds: it is `All([])`, never dropped, so that
/// `not: {all: []}` stays a condition that never holds.
pub(crate) fn condition(cx: &mut Cx<'_>, node: &Node) -> Option<Condition> {
    if matches!(&node.kind, Kind::Seq(items) if items.is_empty())
        || matches!(&node.kind, Kind::Map(entries) if entries.is_empty())
    {
        cx.warn_always_holds(node, "this condition");
    }
    match &node.kind {
        Kind::Seq(items) => Some(
            Condition::all(items.iter().filter_map(|i| condition(cx, i)).collect())
                .unwrap_or(Condition::All(Vec::new())),
        ),
        Kind::Map(entries) => Some(
            Condition::all(
                entries
                    .iter()
                    .filter_map(|(k, v)| entry(cx, k, v))
                    .collect(),
            )
            .unwrap_or(Condition::All(Vec::new())),
        ),
        _ => {
            cx.wrong_type(
                node,
                "a condition",
                "a mapping such as `{ amount: { \"<=\": 100 } }` or a list of them",
            );
            None
        }
    }
}

fn entry(cx: &mut Cx<'_>, key: &Key, value: &Node) -> Option<Condition> {
    let span = key.span.cover(value.span);
    match key.text.as_str() {
        "all" | "any" => {
            let Kind::Seq(items) = &value.kind else {
                cx.wrong_type(value, &format!("`{}`", key.text), "a list of conditions");
                return None;
            };
            // `all: []` always holds and `any: []` never does.
            if items.is_empty() && key.text == "all" {
                cx.warn_always_holds(value, "`all`");
            } else if key.text == "any" {
                cx.warn_if_empty(value, "`any`", "this condition never holds");
            }
            let parts: Vec<Condition> = items.iter().filter_map(|i| condition(cx, i)).collect();
            Some(if key.text == "all" {
                Condition::all(parts).unwrap_or(Condition::All(Vec::new()))
            } else {
                Condition::any(parts).unwrap_or(Condition::Any(Vec::new()))
            })
        }
        "not" => condition(cx, value).map(|c| Condition::Not(Box::new(c), span)),
        "time" => cx
            .time_window(value, "`time`")
            .map(|window| Condition::Time { window, span }),
        "weekdays" => weekdays(cx, value).map(|days| Condition::Weekdays { days, span }),
        "target" => operators(cx, Field::Target, value, span),
        other => operators(cx, Field::Context(Path::parse(other)), value, span),
    }
}

fn operators(cx: &mut Cx<'_>, field: Field, node: &Node, span: Span) -> Option<Condition> {
    match &node.kind {
        Kind::Map(entries) => {
            let mut parts = Vec::new();
            for (op, v) in entries {
                if let Some(c) = operator(cx, &field, op, v, op.span.cover(v.span)) {
                    parts.push(c);
                }
            }
            Condition::all(parts)
        }
        Kind::Seq(_) => Some(Condition::In {
            field,
            values: cx.values(node),
            negated: false,
            span,
        }),
        _ => Some(Condition::Compare {
            field,
            op: CmpOp::Eq,
            value: cx.value(node),
            span,
        }),
    }
}

fn operator(cx: &mut Cx<'_>, field: &Field, op: &Key, v: &Node, span: Span) -> Option<Condition> {
    let field = field.clone();
    let cmp = |o| Some(o);
    let ordering = match op.text.as_str() {
        "==" | "eq" => {
            return Some(Condition::Compare {
                field,
                op: CmpOp::Eq,
                value: cx.value(v),
                span,
            });
        }
        "!=" | "ne" => {
            return Some(Condition::Compare {
                field,
                op: CmpOp::Ne,
                value: cx.value(v),
                span,
            });
        }
        "<" | "lt" => cmp(CmpOp::Lt),
        "<=" | "le" | "lte" => cmp(CmpOp::Le),
        ">" | "gt" => cmp(CmpOp::Gt),
        ">=" | "ge" | "gte" => cmp(CmpOp::Ge),
        "in" | "not_in" => {
            let Kind::Seq(_) = &v.kind else {
                cx.report(
                    Diagnostic::new(
                        Code::InvalidOperand,
                        v.span,
                        format!("`{}` needs a list, found {}", op.text, v.type_name()),
                    )
                    .with_help(format!("write `{}: [a, b]`", op.text)),
                );
                return None;
            };
            return Some(Condition::In {
                field,
                values: cx.values(v),
                negated: op.text == "not_in",
                span,
            });
        }
        "matches" => {
            let s = cx.string(v, "`matches`")?;
            let pattern = cx.pattern(&s, "`matches`", false)?;
            return Some(Condition::Glob {
                field,
                pattern,
                span,
            });
        }
        "contains" => {
            return Some(Condition::Contains {
                field,
                value: cx.value(v),
                span,
            });
        }
        "exists" => {
            let b = cx.boolean(v, "`exists`")?;
            let exists = Condition::Exists { field, span };
            return Some(if b.value {
                exists
            } else {
                Condition::Not(Box::new(exists), span)
            });
        }
        _ => {
            cx.unknown_key(op, "a comparison", OPERATORS);
            return None;
        }
    }?;
    match &v.kind {
        Kind::Int(_) | Kind::Float(_) => Some(Condition::Compare {
            field,
            op: ordering,
            value: cx.value(v),
            span,
        }),
        Kind::Str(s) => match s.trim().parse::<f64>() {
            Ok(n) => Some(Condition::Compare {
                field,
                op: ordering,
                value: writ_ir::Value::Number(n),
                span,
            }),
            Err(_) => {
                cx.report(
                    Diagnostic::new(
                        Code::InvalidOperand,
                        v.span,
                        format!("`{}` compares numbers, found the string `{s}`", op.text),
                    )
                    .with_help("use `==`, `in` or `matches` for strings"),
                );
                None
            }
        },
        _ => {
            cx.report(Diagnostic::new(
                Code::InvalidOperand,
                v.span,
                format!("`{}` compares numbers, found {}", op.text, v.type_name()),
            ));
            None
        }
    }
}

/// `weekdays: [mon, tue]`: day names, full or short, in any case.
fn weekdays(cx: &mut Cx<'_>, node: &Node) -> Option<writ_ir::WeekdaySet> {
    use writ_ir::Weekday;
    let mut days = writ_ir::WeekdaySet::default();
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
