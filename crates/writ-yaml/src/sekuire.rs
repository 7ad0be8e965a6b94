//! The Sekuire dialect, read as its users write it, nested under `agent:` or
//! at the top level.
//!
//! Sekuire governs one client, so its lists bound every agent. They become
//! rules with canonical actions, blocked lists first:
//!
//! | key | rule |
//! |---|---|
//! | `models.blocked_models` | `model_blocked`: deny `model:use` on these targets |
//! | `models.allowed_models` | `model_allowed`: allow `model:use` on these (all, if absent) |
//! | `toolsets.blocked_tools` | `tool_blocked`: deny `tool:call` |
//! | `toolsets.allowed_tools` | `tool_allowed`: allow `tool:call` (entries are names or `{name: ..}`) |
//! | `permissions.network.enabled: false` | `network_disabled`: deny every `net:connect` |
//! | `permissions.network.blocked_domains` | `network_blocked`: deny `net:connect` (host globs, any case) |
//! | `permissions.network.require_tls: true` | `network_tls_required`: deny `net:connect` unless context `scheme` is `https` |
//! | `permissions.network.allowed_domains` | `network_allowed`: allow `net:connect` |
//! | `rate_limits.per_agent.requests_per_<unit>` | at most N allowed `model:use` per agent per sliding unit |
//! | `rate_limits.per_agent.tokens_per_<unit>` | token budget on `model:use` per agent |
//!
//! `project`, `agent.name`, `system_prompt`, `tools` and `llm` configure the
//! client, not the policy: they are accepted and not enforced.

use writ_diagnostics::Span;
use writ_ir::{
    Agent, AgentId, CmpOp, Condition, Effect, Field, Path, Pattern, PolicyId, Spanned, Subject,
    Value,
};

use crate::Lowering;
use crate::cx::{self, Cx};
use crate::tree::{Kind, Node};
use writ_ir::RuleParts;

const TOP: &[&str] = &[
    "project",
    "agent",
    "models",
    "toolsets",
    "permissions",
    "rate_limits",
];
const AGENT: &[&str] = &[
    "name",
    "description",
    "system_prompt",
    "tools",
    "llm",
    "models",
    "toolsets",
    "permissions",
    "rate_limits",
];
const PROJECT: &[&str] = &["name", "version"];
const MODELS: &[&str] = &["allowed_models", "blocked_models"];
const TOOLSETS: &[&str] = &["allowed_tools", "blocked_tools"];
const PERMISSIONS: &[&str] = &["network"];
const NETWORK: &[&str] = &[
    "enabled",
    "require_tls",
    "allowed_domains",
    "blocked_domains",
];
const RATE_LIMITS: &[&str] = &["per_agent"];

/// Keys valid under each parent key (`""` for the top level), for editors.
pub(crate) const KEYS: &[(&str, &[&str])] = &[
    ("", TOP),
    ("project", PROJECT),
    ("agent", AGENT),
    ("models", MODELS),
    ("toolsets", TOOLSETS),
    ("permissions", PERMISSIONS),
    ("network", NETWORK),
    ("rate_limits", RATE_LIMITS),
];

/// The sections of a Sekuire policy, wherever they were written.
#[derive(Default)]
struct Sections<'n> {
    agent_name: Option<Spanned<String>>,
    models: Option<&'n Node>,
    toolsets: Option<&'n Node>,
    permissions: Option<&'n Node>,
    rate_limits: Option<&'n Node>,
}

impl<'n> Sections<'n> {
    fn take(&mut self, key: &str, node: &'n Node) {
        match key {
            "models" => self.models = Some(node),
            "toolsets" => self.toolsets = Some(node),
            "permissions" => self.permissions = Some(node),
            "rate_limits" => self.rate_limits = Some(node),
            _ => {}
        }
    }
}

pub(crate) fn lower(cx: &mut Cx<'_>, root: &Node, out: &mut Lowering) {
    let mut sections = Sections::default();
    for (key, value) in cx.map(root, "a Sekuire policy", TOP) {
        match key.text.as_str() {
            "project" => {
                // The project's name and version name the policy; a typo
                // there is reported like any other.
                for (k, v) in cx.map(value, "`project`", PROJECT) {
                    let text = cx
                        .string(v, &format!("`project.{}`", k.text))
                        .map(|s| s.value);
                    if k.text == "name" {
                        out.header.name = text;
                    } else {
                        out.header.version = text;
                    }
                }
            }
            "agent" => {
                for (k, v) in cx.map(value, "`agent`", AGENT) {
                    if k.text == "name" {
                        sections.agent_name = cx.string(v, "`agent.name`");
                    } else {
                        sections.take(&k.text, v);
                    }
                }
            }
            other => sections.take(other, value),
        }
    }
    if out.header.name.is_none() {
        out.header.name = sections.agent_name.as_ref().map(|n| n.value.clone());
    }
    if let Some(node) = sections.models {
        lists(cx, node, "`models`", MODELS, "model", "model:use", out);
    } else {
        out.rules
            .push(allow_all(cx, "model_allowed", "model:use", root.span));
    }
    if let Some(node) = sections.toolsets {
        lists(cx, node, "`toolsets`", TOOLSETS, "tool", "tool:call", out);
    } else {
        out.rules
            .push(allow_all(cx, "tool_allowed", "tool:call", root.span));
    }
    if let Some(node) = sections.permissions {
        permissions(cx, node, out);
    }
    if let Some(node) = sections.rate_limits {
        for (k, v) in cx.map(node, "`rate_limits`", RATE_LIMITS) {
            let limits = cx::rate_limits(cx, v, Some("model:use"));
            if !limits.is_empty() {
                let name = sections
                    .agent_name
                    .clone()
                    .unwrap_or_else(|| Spanned::new("every agent".to_owned(), k.span));
                let mut agent = Agent::new(
                    AgentId(0),
                    name,
                    Subject::Everyone,
                    PolicyId(0),
                    k.span.cover(v.span),
                );
                agent.limits = limits;
                out.agents.push(agent);
            }
        }
    }
}

fn action(cx: &mut Cx<'_>, action: &str, span: Span) -> Vec<Pattern> {
    cx.pattern(&Spanned::new(action.to_owned(), span), "action", false)
        .into_iter()
        .collect()
}

fn allow_all(cx: &mut Cx<'_>, name: &str, act: &str, span: Span) -> writ_ir::Rule {
    let mut parts = RuleParts::new(Spanned::new(Effect::Allow, span), span);
    parts.name = Some(Spanned::new(name.to_owned(), span));
    parts.actions = action(cx, act, span);
    parts.build()
}

/// Tool entries are names or `{name: ...}` mappings.
fn names(cx: &mut Cx<'_>, node: &Node, what: &str) -> Vec<Spanned<String>> {
    match &node.kind {
        Kind::Seq(items) => items
            .iter()
            .filter_map(|item| {
                if item.as_map().is_some() {
                    let entries = cx.map(item, what, &["name"]);
                    match entries.first() {
                        Some((_, v)) => cx.string(v, what),
                        None => {
                            cx.missing(item, "name", what);
                            None
                        }
                    }
                } else {
                    cx.string(item, what)
                }
            })
            .collect(),
        _ => cx.strings(node, what),
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "each argument is one column of the models/toolsets table"
)]
fn list_rule(
    cx: &mut Cx<'_>,
    node: &Node,
    name: &str,
    effect: Effect,
    act: &str,
    reason: Option<String>,
    case_insensitive: bool,
    out: &mut Lowering,
) {
    let items = names(cx, node, &format!("`{name}`"));
    let targets: Vec<Pattern> = items
        .iter()
        .filter_map(|s| cx.pattern(s, "a list entry", case_insensitive))
        .collect();
    let mut parts = RuleParts::new(Spanned::new(effect, node.span), node.span);
    parts.name = Some(Spanned::new(name.to_owned(), node.span));
    parts.actions = action(cx, act, node.span);
    if targets.is_empty() {
        // An empty allowed list allows nothing and an empty blocked list
        // blocks nothing: not every target.
        cx::no_target(&mut parts);
    }
    parts.targets = targets;
    parts.reason = reason.map(|r| Spanned::new(r, node.span));
    out.rules.push(parts.build());
}

/// The value of a list key, or `None` after reporting one without a value
/// (see [`Cx::coverage`]): the list decides what its rule covers.
fn list<'n>(cx: &mut Cx<'_>, key: &str, node: &'n Node) -> Option<&'n Node> {
    cx.coverage(
        node,
        key,
        "a list of names",
        "list the entries, or remove the key",
    )
}

fn lists(
    cx: &mut Cx<'_>,
    node: &Node,
    what: &str,
    keys: &[&str],
    noun: &str,
    act: &str,
    out: &mut Lowering,
) {
    let entries = cx.map(node, what, keys);
    let find = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.text.ends_with(key))
            .map(|(k, v)| (k.text.clone(), *v))
    };
    if let Some((key, v)) = find("blocked_models").or_else(|| find("blocked_tools"))
        && let Some(v) = list(cx, &key, v)
    {
        let reason = format!("{noun} `{{target}}` is in {key}");
        list_rule(
            cx,
            v,
            &format!("{noun}_blocked"),
            Effect::Deny,
            act,
            Some(reason),
            false,
            out,
        );
    }
    match find("allowed_models").or_else(|| find("allowed_tools")) {
        Some((key, v)) => {
            let Some(v) = list(cx, &key, v) else {
                return;
            };
            cx.warn_if_empty(v, &format!("`{key}`"), &format!("no {noun} is allowed"));
            list_rule(
                cx,
                v,
                &format!("{noun}_allowed"),
                Effect::Allow,
                act,
                None,
                false,
                out,
            );
        }
        None => out
            .rules
            .push(allow_all(cx, &format!("{noun}_allowed"), act, node.span)),
    }
}

fn permissions(cx: &mut Cx<'_>, node: &Node, out: &mut Lowering) {
    for (_, network) in cx.map(node, "`permissions`", PERMISSIONS) {
        let entries = cx.map(network, "`permissions.network`", NETWORK);
        let get = |key: &str| entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| *v);
        let enabled = get("enabled").and_then(|v| cx.boolean(v, "`enabled`"));
        if let Some(e) = &enabled
            && !e.value
        {
            let mut parts = RuleParts::new(Spanned::new(Effect::Deny, e.span), e.span);
            parts.name = Some(Spanned::new("network_disabled".to_owned(), e.span));
            parts.actions = action(cx, "net:connect", e.span);
            parts.reason = Some(Spanned::new(
                "network access is disabled (permissions.network.enabled: false)".to_owned(),
                e.span,
            ));
            out.rules.push(parts.build());
            continue;
        }
        if let Some(v) = get("blocked_domains").and_then(|v| list(cx, "blocked_domains", v)) {
            list_rule(
                cx,
                v,
                "network_blocked",
                Effect::Deny,
                "net:connect",
                Some("host `{target}` is in blocked_domains".to_owned()),
                true,
                out,
            );
        }
        if let Some(tls) = get("require_tls").and_then(|v| cx.boolean(v, "`require_tls`"))
            && tls.value
        {
            let mut parts = RuleParts::new(Spanned::new(Effect::Deny, tls.span), tls.span);
            parts.name = Some(Spanned::new("network_tls_required".to_owned(), tls.span));
            parts.actions = action(cx, "net:connect", tls.span);
            let https = Condition::Compare {
                field: Field::Context(Path::single("scheme")),
                op: CmpOp::Eq,
                value: Value::String("https".to_owned()),
                span: tls.span,
            };
            parts
                .conditions
                .push(Condition::Not(Box::new(https), tls.span));
            parts.reason = Some(Spanned::new(
                "TLS is required: context `scheme` must be `https`".to_owned(),
                tls.span,
            ));
            out.rules.push(parts.build());
        }
        match get("allowed_domains") {
            Some(v) => {
                let Some(v) = list(cx, "allowed_domains", v) else {
                    continue;
                };
                cx.warn_if_empty(v, "`allowed_domains`", "no host is allowed");
                list_rule(
                    cx,
                    v,
                    "network_allowed",
                    Effect::Allow,
                    "net:connect",
                    None,
                    true,
                    out,
                );
            }
            None => out.rules.push(allow_all(
                cx,
                "network_allowed",
                "net:connect",
                network.span,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use writ_diagnostics::{Code, FileId, SourceFile};

    fn lower(text: &str) -> (Option<String>, Option<String>, Vec<Code>) {
        let source = SourceFile::new("t.yml", text);
        let lowered = crate::lower(FileId(0), &source, Some(writ_ir::Dialect::Sekuire), "t");
        let codes = lowered.diagnostics.iter().map(|d| d.code).collect();
        let policy = lowered.file.map(|f| f.policy);
        (
            policy.as_ref().map(|p| p.name.clone()),
            policy.and_then(|p| p.version),
            codes,
        )
    }

    #[test]
    fn project_keys_name_the_policy_and_typos_are_reported() {
        let (name, version, codes) =
            lower("project:\n  name: research\n  version: 1.0.0\nmodels:\n  allowed_models: [a]\n");
        assert_eq!(name.as_deref(), Some("research"));
        assert_eq!(version.as_deref(), Some("1.0.0"));
        assert!(codes.is_empty(), "{codes:?}");
        let (_, _, codes) = lower("project:\n  nmae: research\nmodels:\n  allowed_models: [a]\n");
        assert_eq!(codes, [Code::UnknownKey]);
        let (_, _, codes) = lower("project: research\nmodels:\n  allowed_models: [a]\n");
        assert_eq!(codes, [Code::WrongType]);
        let (_, _, codes) = lower("project:\n  name: [a, b]\n");
        assert_eq!(codes, [Code::WrongType]);
    }
}
