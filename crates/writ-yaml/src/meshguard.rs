//! The MeshGuard dialect, read as its users write it.
//!
//! | key | meaning in writ |
//! |---|---|
//! | `name`, `version`, `description` | policy header |
//! | `defaultEffect` | default decision |
//! | `appliesTo.tags` | every rule applies only to agents with one of these tags |
//! | `agents.<role>` | a role profile: `token_prefix`, `model_allowlist`, `rate_limits.{requests,tokens}_per_<unit>` |
//! | `rules[].action` / `actions` | action patterns |
//! | `rules[].effect` | allow / deny / approve |
//! | `conditions.amount_max` / `amount_min` | context `amount` ≤ / ≥ |
//! | `conditions.time_range` | time window, start ≤ now < end |
//! | `conditions.agent_role`, `from_agent_role` | principal has the role |
//! | `conditions.from_agent` | principal is the agent |
//! | `conditions.<k>` | context `k` equals the value (in the list) |
//! | `constraints.allowed_<name>` | every value of context `<name>` (or its singular) is listed |
//! | `constraints.allowed_targets`, `allowed_target_roles` | the target is listed |
//! | `constraints.rate_limit` | per-agent limit on allowed decisions of this rule |

use writ_ir::{
    Agent, AgentId, AgentLimit, CmpOp, Condition, Constraint, Effect, Field, Metric, NamedList,
    Path, PolicyId, Rate, RateUnit, RuleLimit, Spanned, Subject,
};

use crate::cx::{self, Cx, missing_action, rule_actions, rule_list};
use crate::tree::{Kind, Node};
use crate::{Header, Lowering};
use writ_ir::RuleParts;

const TOP: &[&str] = &[
    "version",
    "name",
    "description",
    "appliesTo",
    "agents",
    "rules",
    "defaultEffect",
];
const RULE: &[&str] = &[
    "name",
    "action",
    "actions",
    "effect",
    "conditions",
    "constraints",
    "reason",
];
const PROFILE: &[&str] = &["token_prefix", "model_allowlist", "rate_limits"];

/// Keys valid under each parent key (`""` for the top level), for editors.
pub(crate) const KEYS: &[(&str, &[&str])] = &[
    ("", TOP),
    ("rules", RULE),
    ("agents", PROFILE),
    ("rate_limits", LIMIT_KEYS),
];
const LIMIT_KEYS: &[&str] = &[
    "requests_per_second",
    "requests_per_minute",
    "requests_per_hour",
    "requests_per_day",
    "tokens_per_second",
    "tokens_per_minute",
    "tokens_per_hour",
    "tokens_per_day",
];

pub(crate) fn lower(cx: &mut Cx<'_>, root: &Node, out: &mut Lowering) {
    let mut applies_tags = Vec::new();
    for (key, value) in cx.map(root, "a MeshGuard policy", TOP) {
        match key.text.as_str() {
            "version" | "name" | "description" => {
                Header::read(cx, &mut out.header, &key.text, value)
            }
            "defaultEffect" => {
                out.settings.default_effect =
                    cx.word(value, "effect", Effect::parse, &Effect::words());
            }
            "appliesTo" => {
                for (k, v) in cx.map(value, "`appliesTo`", &["tags"]) {
                    if k.text == "tags" {
                        applies_tags = cx.strings(v, "a tag");
                    }
                }
            }
            "agents" => profiles(cx, value, out),
            "rules" => {}
            _ => {}
        }
    }
    out.rules = rule_list(cx, root, |cx, item| {
        rule(cx, item).map(|mut parts| {
            parts.scope.tags.extend(applies_tags.iter().cloned());
            parts.build()
        })
    });
}

fn profiles(cx: &mut Cx<'_>, node: &Node, out: &mut Lowering) {
    let Some(entries) = node.as_map() else {
        cx.wrong_type(node, "`agents`", "a mapping from role name to its settings");
        return;
    };
    for (role, body) in entries {
        let name = Spanned::new(role.text.clone(), role.span);
        let mut agent = Agent::new(
            AgentId(0),
            name,
            Subject::Role,
            PolicyId(0),
            role.span.cover(body.span),
        );
        for (k, v) in cx.map(body, &format!("role `{}`", role.text), PROFILE) {
            match k.text.as_str() {
                "token_prefix" => agent.token_prefix = cx.string(v, "token prefix"),
                "model_allowlist" => {
                    cx.warn_if_empty(v, "`model_allowlist`", "this role may use no model");
                    let patterns = cx.patterns(v, "`model_allowlist`", false);
                    agent.models.allow = Some(NamedList {
                        key: "model_allowlist".to_owned(),
                        patterns,
                        span: v.span,
                    });
                }
                "rate_limits" => agent.limits = rate_limits(cx, v, None),
                _ => {}
            }
        }
        out.agents.push(agent);
    }
}

/// `requests_per_<unit>` / `tokens_per_<unit>` counts, shared with Sekuire.
pub(crate) fn rate_limits(cx: &mut Cx<'_>, node: &Node, actions: Option<&str>) -> Vec<AgentLimit> {
    let mut limits = Vec::new();
    for (k, v) in cx.map(node, "`rate_limits`", LIMIT_KEYS) {
        let Some((metric, unit)) = k.text.split_once("_per_") else {
            continue;
        };
        let metric = if metric == "tokens" {
            Metric::Tokens
        } else {
            Metric::Requests
        };
        let Some(unit) = RateUnit::parse(unit) else {
            continue;
        };
        let Some(count) = cx.count(v, &format!("`{}`", k.text)) else {
            continue;
        };
        let actions = actions
            .and_then(|a| cx.pattern(&Spanned::new(a.to_owned(), k.span), "limit actions", false));
        limits.push(AgentLimit {
            key: k.text.clone(),
            metric,
            rate: Rate { count, unit },
            actions,
            span: k.span.cover(v.span),
        });
    }
    limits
}

fn rule(cx: &mut Cx<'_>, node: &Node) -> Option<RuleParts> {
    let entries = cx.map(node, "a MeshGuard rule", RULE);
    node.as_map()?;
    let effect = match node.get("effect") {
        Some(v) => cx.word(v, "effect", Effect::parse, &Effect::words())?,
        None => {
            cx.missing(node, "effect", "a MeshGuard rule");
            return None;
        }
    };
    let mut parts = RuleParts::new(effect, node.span);
    for (k, v) in entries {
        match k.text.as_str() {
            "name" => parts.name = cx.string(v, "rule name"),
            "action" | "actions" => rule_actions(cx, k, v, &mut parts),
            "reason" => parts.reason = cx.string(v, "reason"),
            "conditions" => conditions(cx, v, &mut parts),
            "constraints" => constraints(cx, v, &mut parts),
            _ => {}
        }
    }
    if node.get("action").is_none() && node.get("actions").is_none() {
        missing_action(cx, node, "a MeshGuard rule");
        return None;
    }
    Some(parts)
}

fn conditions(cx: &mut Cx<'_>, node: &Node, parts: &mut RuleParts) {
    let Some(entries) = node.as_map() else {
        cx.wrong_type(node, "`conditions`", "a mapping");
        return;
    };
    if entries.is_empty() {
        cx.warn_always_holds(node, "`conditions`");
    }
    for (k, v) in entries {
        let span = k.span.cover(v.span);
        match k.text.as_str() {
            "amount_max" | "amount_min" => {
                if let Some(n) = cx.number(v, &format!("`{}`", k.text)) {
                    let op = if k.text == "amount_max" {
                        CmpOp::Le
                    } else {
                        CmpOp::Ge
                    };
                    parts.conditions.push(Condition::Compare {
                        field: Field::Context(Path::single("amount")),
                        op,
                        value: writ_ir::Value::Number(n),
                        span,
                    });
                }
            }
            "time_range" => {
                if let Some(window) = cx.time_window(v, "`time_range`") {
                    parts.conditions.push(Condition::Time { window, span });
                }
            }
            "agent_role" | "from_agent_role" | "from_agent" => {
                let (expected, help) = cx::PRINCIPALS;
                let Some(v) = cx.coverage(v, &k.text, expected, help) else {
                    continue;
                };
                if k.text == "from_agent" {
                    parts.scope.agents.extend(cx.strings(v, "an agent id"));
                } else {
                    parts.scope.roles.extend(cx.strings(v, "a role"));
                }
            }
            other => {
                let field = Field::Context(Path::single(other));
                let cond = match &v.kind {
                    Kind::Seq(_) => Condition::In {
                        field,
                        values: cx.values(v),
                        negated: false,
                        span,
                    },
                    Kind::Map(_) => {
                        cx.wrong_type(
                            v,
                            &format!("condition `{other}`"),
                            "a value or a list of values",
                        );
                        continue;
                    }
                    _ => Condition::Compare {
                        field,
                        op: CmpOp::Eq,
                        value: cx.value(v),
                        span,
                    },
                };
                parts.conditions.push(cond);
            }
        }
    }
}

fn singular(name: &str) -> Option<String> {
    if let Some(stem) = name.strip_suffix("ies") {
        Some(format!("{stem}y"))
    } else {
        name.strip_suffix('s')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

fn constraints(cx: &mut Cx<'_>, node: &Node, parts: &mut RuleParts) {
    let Some(entries) = node.as_map() else {
        cx.wrong_type(node, "`constraints`", "a mapping");
        return;
    };
    for (k, v) in entries {
        let span = k.span.cover(v.span);
        match k.text.as_str() {
            "rate_limit" => {
                parts.limit = cx
                    .rate(v, "`rate_limit`")
                    .map(|r| r.map(RuleLimit::per_agent));
            }
            "allowed_targets" | "allowed_target_roles" => {
                cx.warn_if_empty(v, &format!("`{}`", k.text), "this rule always denies");
                let values = cx.values(v);
                parts.constraints.push(Constraint {
                    name: k.text.clone(),
                    field: Field::Target,
                    alternate: None,
                    values,
                    span,
                });
            }
            other => {
                if let Some(name) = other.strip_prefix("allowed_").filter(|n| !n.is_empty()) {
                    cx.warn_if_empty(v, &format!("`{other}`"), "this rule always denies");
                    let values = cx.values(v);
                    parts.constraints.push(Constraint {
                        name: other.to_owned(),
                        field: Field::Context(Path::single(name)),
                        alternate: singular(name).map(|s| Field::Context(Path::single(&s))),
                        values,
                        span,
                    });
                } else {
                    cx.unknown_key(
                        k,
                        "`constraints`",
                        &[
                            "rate_limit",
                            "allowed_targets",
                            "allowed_target_roles",
                            "allowed_<name>",
                        ],
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::singular;

    #[test]
    fn singulars() {
        assert_eq!(singular("stores").as_deref(), Some("store"));
        assert_eq!(singular("categories").as_deref(), Some("category"));
        assert_eq!(singular("s"), None);
    }
}
