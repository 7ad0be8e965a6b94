//! Dialect detection from a document's top-level keys.
//!
//! Each dialect has keys only it uses; the dialect with the most such keys
//! wins. writ's own schema is marked by a top-level `writ:` key and always
//! wins. Rules are looked at too, because a MeshGuard file and an Aegis file
//! can both be just a `rules:` list.

use writ_ir::Dialect;

use crate::tree::Node;

/// The dialect a document is written in, if any can be told.
#[must_use]
pub fn detect(root: &Node) -> Option<Dialect> {
    let entries = root.as_map()?;
    if root.get("writ").is_some() {
        return Some(Dialect::Writ);
    }
    let mut meshguard = 0;
    let mut aegis = 0;
    let mut sekuire = 0;
    for (k, _) in entries {
        match k.text.as_str() {
            "defaultEffect" | "appliesTo" => meshguard += 2,
            "defaults" => aegis += 2,
            "project" | "models" | "toolsets" | "permissions" | "rate_limits" => sekuire += 2,
            "agent" => sekuire += 1,
            "agents" => meshguard += 1,
            _ => {}
        }
    }
    if let Some(agent) = root.get("agent")
        && agent.as_map().is_some()
        && ["models", "toolsets", "permissions", "rate_limits", "llm"]
            .iter()
            .any(|k| agent.get(k).is_some())
    {
        sekuire += 2;
    }
    if let Some(rules) = root.get("rules")
        && let crate::tree::Kind::Seq(items) = &rules.kind
    {
        for rule in items {
            if rule.get("match").is_some()
                || rule.get("approval").is_some()
                || rule.get("risk_level").is_some()
            {
                aegis += 1;
            }
            if rule.get("effect").is_some()
                || rule.get("action").is_some()
                || rule.get("actions").is_some()
            {
                meshguard += 1;
            }
        }
    }
    let best = [
        (Dialect::MeshGuard, meshguard),
        (Dialect::Aegis, aegis),
        (Dialect::Sekuire, sekuire),
    ]
    .into_iter()
    .max_by_key(|(_, score)| *score)?;
    (best.1 > 0).then_some(best.0)
}
