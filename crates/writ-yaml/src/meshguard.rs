//! The MeshGuard dialect, read as its users write it.
//!
//! | key | meaning in writ |
//! |---|---|
//! | `name`, `version`, `description` | policy header |
//! | `defaultEffect` | default decision |
//! | `appliesTo.tags` | every rule applies only to agents with one of these tags |
//! | `appliesTo.trustTiers` | ... only to agents of one of these tiers (`unverified` and `anonymous` are `untrusted`) |
//! | `appliesTo.agentIds` | ... only to these agents |
//! | `appliesTo.orgIds` | refused (E0108): writ has no organisations |
//! | `delegation.maxDepth` | `max_delegation_depth` |
//! | `delegation.permissionCeiling` | the actions a request made through a chain may take at most |
//! | `agents.<role>` | a role profile: `token_prefix`, `model_allowlist`, `rate_limits.{requests,tokens}_per_<unit>` |
//! | `rules[].action` / `actions` | action patterns |
//! | `rules[].effect` | allow / deny / approve (`require_approval`) |
//! | `conditions.amount_max` / `amount_min` | context `amount` ≤ / ≥ |
//! | `conditions.time_range` | time window, start ≤ now < end |
//! | `conditions.agent_role`, `from_agent_role` | principal has the role |
//! | `conditions.from_agent` | principal is the agent |
//! | `conditions.<k>` | context `k` equals the value (in the list) |
//! | `constraints.allowed_<name>` | every value of context `<name>` (or its singular) is listed |
//! | `constraints.allowed_targets`, `allowed_target_roles` | the target is listed |
//! | `constraints.rate_limit` | per-agent limit on allowed decisions of this rule |

use writ_diagnostics::{Code, Diagnostic};
use writ_ir::{
    Agent, AgentId, CmpOp, Condition, Constraint, Effect, Field, NamedList, Path, PolicyId,
    RuleLimit, Scope, Spanned, Subject, Tier,
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
    "delegation",
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
const APPLIES_TO: &[&str] = &["trustTiers", "tags", "agentIds", "orgIds"];
const DELEGATION: &[&str] = &["maxDepth", "permissionCeiling"];
/// MeshGuard's tier names: writ's four, and the other names MeshGuard's
/// documents give its lowest tier.
const TIER_WORDS: &[&str] = &[
    "untrusted",
    "verified",
    "trusted",
    "privileged",
    "unverified",
    "anonymous",
];

/// Keys valid under each parent key (`""` for the top level), for editors.
pub(crate) const KEYS: &[(&str, &[&str])] = &[
    ("", TOP),
    ("rules", RULE),
    ("agents", PROFILE),
    ("rate_limits", cx::LIMIT_KEYS),
    ("appliesTo", APPLIES_TO),
    ("delegation", DELEGATION),
];
pub(crate) fn lower(cx: &mut Cx<'_>, root: &Node, out: &mut Lowering) {
    let mut applies = AppliesTo::default();
    for (key, value) in cx.map(root, "a MeshGuard policy", TOP) {
        match key.text.as_str() {
            "version" | "name" | "description" => {
                Header::read(cx, &mut out.header, &key.text, value)
            }
            "defaultEffect" => {
                out.settings.default_effect = cx.word(value, "effect", effect, EFFECT_WORDS);
            }
            "appliesTo" => applies = applies_to(cx, value),
            "agents" => profiles(cx, value, out),
            "delegation" => delegation(cx, value, out),
            "rules" => {}
            _ => {}
        }
    }
    out.rules = rule_list(cx, root, |cx, item| {
        rule(cx, item).map(|mut parts| {
            applies.narrow(&mut parts);
            parts.build()
        })
    });
}

/// MeshGuard's effects: writ's, and `require_approval` for `approve`.
fn effect(word: &str) -> Option<Effect> {
    Effect::parse(word).or_else(|| {
        word.trim()
            .eq_ignore_ascii_case("require_approval")
            .then_some(Effect::Approve)
    })
}
const EFFECT_WORDS: &[&str] = &["allow", "deny", "approve", "require_approval"];

fn tier(word: &str) -> Option<Tier> {
    Tier::parse(word).or_else(|| {
        let w = word.trim().to_ascii_lowercase();
        matches!(w.as_str(), "unverified" | "anonymous").then_some(Tier::Untrusted)
    })
}

/// Whom the policy's rules are for: each list given must match the agent
/// (one entry of it is enough), as a rule's own principals do.
#[derive(Default)]
struct AppliesTo {
    scope: Scope,
    /// A list was written empty, or `appliesTo` lists nothing: the policy
    /// applies to no agent.
    nobody: bool,
}

impl AppliesTo {
    /// Narrows a rule to the policy's agents. A rule's own agents
    /// (`from_agent`) and the policy's must both match, so the rule keeps
    /// the agents in both lists; with none in common it never applies.
    fn narrow(&self, parts: &mut RuleParts) {
        let s = &self.scope;
        let mut never = self.nobody;
        if !s.agents.is_empty() {
            if parts.scope.agents.is_empty() {
                parts.scope.agents.clone_from(&s.agents);
            } else {
                parts
                    .scope
                    .agents
                    .retain(|a| s.agents.iter().any(|b| b.value == a.value));
                never |= parts.scope.agents.is_empty();
            }
        }
        parts.scope.tiers.extend(s.tiers.iter().cloned());
        parts.scope.tags.extend(s.tags.iter().cloned());
        if never {
            cx::no_target(parts);
        }
    }
}

fn applies_to(cx: &mut Cx<'_>, node: &Node) -> AppliesTo {
    let mut out = AppliesTo::default();
    let (expected, help) = (
        "a mapping of `trustTiers`, `tags` or `agentIds`",
        "list the agents the policy is for, or remove `appliesTo` to cover every agent",
    );
    let Some(node) = cx.coverage(node, "appliesTo", expected, help) else {
        return out;
    };
    let entries = cx.map(node, "`appliesTo`", APPLIES_TO);
    if node.as_map().is_some_and(<[_]>::is_empty) {
        cx.report(
            Diagnostic::new(
                Code::EmptyList,
                node.span,
                "`appliesTo` lists no agents: the policy applies to none",
            )
            .with_help("list `trustTiers`, `tags` or `agentIds`, or remove `appliesTo` to cover every agent"),
        );
        out.nobody = true;
    }
    for (k, v) in entries {
        let what = format!("`appliesTo.{}`", k.text);
        if k.text == "orgIds" {
            cx.report(
                Diagnostic::new(
                    Code::UnsupportedKey,
                    k.span,
                    "`appliesTo.orgIds` is not supported: writ has no organisations",
                )
                .with_label_message("a request carries no organisation")
                .with_help("a writ policy governs the agents of one deployment: remove `orgIds`, or narrow the policy with `agentIds`, `tags` or `trustTiers`"),
            );
            continue;
        }
        let Some(v) = cx.coverage(v, &k.text, "a list", help) else {
            continue;
        };
        cx.warn_if_empty(v, &what, "the policy applies to no agent");
        out.nobody |= matches!(&v.kind, Kind::Seq(items) if items.is_empty());
        match k.text.as_str() {
            "trustTiers" => {
                let items = match &v.kind {
                    Kind::Seq(items) => items.iter().collect(),
                    _ => vec![v],
                };
                for item in items {
                    if let Some(t) = cx.word(item, "trust tier", tier, TIER_WORDS) {
                        out.scope.tiers.push(t);
                    }
                }
            }
            "agentIds" => out.scope.agents.extend(cx.strings(v, "an agent id")),
            _ => out.scope.tags.extend(cx.strings(v, "a tag")),
        }
    }
    out
}

/// `delegation`: the longest chain, and the most a delegated agent may do.
fn delegation(cx: &mut Cx<'_>, node: &Node, out: &mut Lowering) {
    for (k, v) in cx.map(node, "`delegation`", DELEGATION) {
        if k.text == "maxDepth" {
            out.settings.max_delegation_depth = cx
                .count(v, "`delegation.maxDepth`")
                .map(|n| Spanned::new(u32::try_from(n).unwrap_or(u32::MAX), v.span));
            continue;
        }
        let (expected, help) = (
            "an action pattern or a list of them",
            "list the actions a delegated agent may take, such as `\"read:*\"`",
        );
        let Some(v) = cx.coverage(v, "permissionCeiling", expected, help) else {
            continue;
        };
        cx.warn_if_empty(
            v,
            "`delegation.permissionCeiling`",
            "a request made through a delegation chain is always denied",
        );
        let patterns = cx.patterns(v, "`permissionCeiling`", false);
        out.settings.ceiling_actions.push(NamedList {
            key: "permissionCeiling".to_owned(),
            patterns,
            span: v.span,
        });
    }
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
                "rate_limits" => agent.limits = cx::rate_limits(cx, v, None),
                _ => {}
            }
        }
        out.agents.push(agent);
    }
}

fn rule(cx: &mut Cx<'_>, node: &Node) -> Option<RuleParts> {
    let entries = cx.map(node, "a MeshGuard rule", RULE);
    node.as_map()?;
    let effect = match node.get("effect") {
        Some(v) => cx.word(v, "effect", effect, EFFECT_WORDS)?,
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
    use writ_diagnostics::{Code, Diagnostic, FileId, SourceFile};
    use writ_ir::{Condition, PolicyFile, Tier};

    fn lower(text: &str) -> (Option<PolicyFile>, Vec<Diagnostic>) {
        let source = SourceFile::new("t.yaml", text);
        let lowered = crate::lower(FileId(0), &source, Some(writ_ir::Dialect::MeshGuard), "t");
        (lowered.file, lowered.diagnostics)
    }

    fn file(text: &str) -> PolicyFile {
        let (file, diags) = lower(text);
        assert!(diags.is_empty(), "{diags:?}");
        file.unwrap_or_else(|| panic!("no file for {text}"))
    }

    fn codes(text: &str) -> Vec<Code> {
        lower(text).1.iter().map(|d| d.code).collect()
    }

    /// The text a diagnostic's span covers.
    fn at<'t>(text: &'t str, d: &Diagnostic) -> &'t str {
        d.span()
            .and_then(|s| text.get(s.start as usize..s.end as usize))
            .unwrap_or("")
    }

    fn never_applies(c: Option<&Condition>) -> bool {
        matches!(c, Some(Condition::Any(c)) if c.is_empty())
    }

    const RULE: &str = "rules:\n  - effect: allow\n    actions: [\"read:*\"]\n";

    #[test]
    fn applies_to_lists_narrow_every_rule() {
        let f = file(&format!(
            "appliesTo:\n  trustTiers: [verified, Trusted, anonymous]\n  agentIds: [a1, a2]\n  tags: [prod]\n{RULE}"
        ));
        let scope = f.rules.first().map(|r| r.scope.clone()).unwrap_or_default();
        let tiers: Vec<Tier> = scope.tiers.iter().map(|t| t.value).collect();
        assert_eq!(tiers, [Tier::Verified, Tier::Trusted, Tier::Untrusted]);
        let agents: Vec<&str> = scope.agents.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(agents, ["a1", "a2"]);
        let tags: Vec<&str> = scope.tags.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(tags, ["prod"]);
        // One scalar stands for a list of one.
        let f = file(&format!("appliesTo:\n  trustTiers: privileged\n{RULE}"));
        let tiers: Vec<Tier> = f
            .rules
            .iter()
            .flat_map(|r| r.scope.tiers.iter().map(|t| t.value))
            .collect();
        assert_eq!(tiers, [Tier::Privileged]);
    }

    #[test]
    fn a_rules_own_agent_and_the_policys_agents_must_both_match() {
        let rules = "rules:\n  - action: \"agent:delegate\"\n    effect: allow\n    conditions: { from_agent: [t1, t2] }\n";
        let f = file(&format!("appliesTo:\n  agentIds: [t2, t3]\n{rules}"));
        let rule = f.rules.first();
        let agents: Vec<&str> = rule
            .map(|r| r.scope.agents.iter().map(|a| a.value.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(agents, ["t2"]);
        assert!(!never_applies(rule.and_then(|r| r.condition.as_ref())));
        // Nothing in common: the rule never applies (it must not become
        // a rule for every agent).
        let f = file(&format!("appliesTo:\n  agentIds: [t3]\n{rules}"));
        assert!(
            never_applies(f.rules.first().and_then(|r| r.condition.as_ref())),
            "{:?}",
            f.rules
        );
    }

    #[test]
    fn empty_applies_to_lists_apply_to_nobody() {
        for text in [
            format!("appliesTo:\n  tags: []\n{RULE}"),
            format!("appliesTo:\n  trustTiers: []\n  tags: [prod]\n{RULE}"),
            format!("appliesTo: {{}}\n{RULE}"),
        ] {
            let (f, diags) = lower(&text);
            let codes: Vec<Code> = diags.iter().map(|d| d.code).collect();
            assert_eq!(codes, [Code::EmptyList], "{text}");
            let rules = f.map(|f| f.rules).unwrap_or_default();
            assert!(
                !rules.is_empty() && rules.iter().all(|r| never_applies(r.condition.as_ref())),
                "{text}: {rules:?}"
            );
        }
        assert_eq!(codes(&format!("appliesTo:\n{RULE}")), [Code::WrongType]);
        assert_eq!(
            codes(&format!("appliesTo:\n  agentIds: ~\n{RULE}")),
            [Code::WrongType]
        );
    }

    #[test]
    fn bad_applies_to_values_and_keys_are_reported_where_written() {
        let text = format!("appliesTo:\n  trustTiers: [verified, trustd]\n{RULE}");
        let (_, diags) = lower(&text);
        assert_eq!(
            diags.iter().map(|d| d.code).collect::<Vec<_>>(),
            [Code::InvalidValue]
        );
        let d = diags.first().map(|d| (at(&text, d), d.help.clone()));
        assert_eq!(d.as_ref().map(|d| d.0), Some("trustd"));
        assert!(d.and_then(|d| d.1).is_some_and(|h| h.contains("`trusted`")));

        let text = format!("appliesTo:\n  trustTier: [verified]\n{RULE}");
        let (_, diags) = lower(&text);
        assert_eq!(
            diags.iter().map(|d| d.code).collect::<Vec<_>>(),
            [Code::UnknownKey]
        );
        let d = diags.first();
        assert_eq!(d.map(|d| at(&text, d)), Some("trustTier"));
        assert!(
            d.and_then(|d| d.help.as_deref())
                .is_some_and(|h| h.contains("`trustTiers`"))
        );

        let text = format!("appliesTo:\n  orgIds: [org_1]\n  tags: [a]\n{RULE}");
        let (_, diags) = lower(&text);
        assert_eq!(
            diags.iter().map(|d| d.code).collect::<Vec<_>>(),
            [Code::UnsupportedKey]
        );
        assert_eq!(diags.first().map(|d| at(&text, d)), Some("orgIds"));
    }

    #[test]
    fn delegation_sets_the_depth_and_the_action_ceiling() {
        let f = file(&format!(
            "delegation:\n  maxDepth: 2\n  permissionCeiling: [\"read:*\", \"write:notes\"]\n{RULE}"
        ));
        assert_eq!(f.settings.max_delegation_depth.map(|d| d.value), Some(2));
        let lists = &f.settings.ceiling_actions;
        assert_eq!(lists.len(), 1);
        let list = lists.first();
        assert_eq!(list.map(|l| l.key.as_str()), Some("permissionCeiling"));
        assert!(list.is_some_and(|l| l.matches("read:contacts") && l.matches("write:notes")));
        assert!(list.is_some_and(|l| !l.matches("write:email")));
        // The ceiling principle itself is writ's default strict ceiling.
        assert_eq!(f.settings.ceiling, None);
    }

    #[test]
    fn bad_delegation_values_and_keys_are_reported_where_written() {
        for (text, code, span) in [
            ("delegation:\n  maxDepth: 0\n", Code::InvalidNumber, "0"),
            ("delegation:\n  maxDepth: two\n", Code::InvalidNumber, "two"),
            ("delegation:\n  maxDepth: 1.5\n", Code::InvalidNumber, "1.5"),
            ("delegation:\n  maxDepht: 2\n", Code::UnknownKey, "maxDepht"),
            (
                "delegation:\n  permissionCeiling: [\"read:[\"]\n",
                Code::InvalidGlob,
                "\"read:[\"",
            ),
            ("delegation:\n  permissionCeiling:\n", Code::WrongType, ""),
            (
                "delegation:\n  permissionCeiling: []\n",
                Code::EmptyList,
                "[",
            ),
            ("delegation: [2]\n", Code::WrongType, "[2"),
        ] {
            let text = format!("{text}{RULE}");
            let (_, diags) = lower(&text);
            assert_eq!(
                diags.iter().map(|d| d.code).collect::<Vec<_>>(),
                [code],
                "{text}"
            );
            // (A flow list's span ends before its `]`.)
            if !span.is_empty() {
                assert_eq!(diags.first().map(|d| at(&text, d)), Some(span), "{text}");
            }
        }
        let (_, diags) = lower(&format!("delegation:\n  maxDepht: 2\n{RULE}"));
        assert!(
            diags
                .first()
                .and_then(|d| d.help.as_deref())
                .is_some_and(|h| h.contains("`maxDepth`"))
        );
        // An empty ceiling is kept: every delegated request is denied.
        let (f, _) = lower(&format!("delegation:\n  permissionCeiling: []\n{RULE}"));
        let lists = f.map(|f| f.settings.ceiling_actions).unwrap_or_default();
        assert!(lists.len() == 1 && lists.iter().all(|l| !l.matches("read:x")));
    }

    #[test]
    fn require_approval_is_approve() {
        let f = file(
            "defaultEffect: deny\nrules:\n  - effect: require_approval\n    actions: [\"write:*\"]\n",
        );
        assert_eq!(
            f.rules.first().map(|r| r.effect.value),
            Some(writ_ir::Effect::Approve)
        );
        assert_eq!(
            codes("rules:\n  - effect: requires_approval\n    actions: [a]\n"),
            [Code::InvalidValue]
        );
    }

    #[test]
    fn singulars() {
        assert_eq!(singular("stores").as_deref(), Some("store"));
        assert_eq!(singular("categories").as_deref(), Some("category"));
        assert_eq!(singular("s"), None);
    }
}
