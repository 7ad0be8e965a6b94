//! The sentences a decision gives when no rule's own reason does: the
//! policy default, and the rule whose scope left the agent out. Written
//! here once; the runtime and writ's reference evaluator (which depends on
//! this crate) both call these functions, so the two engines cannot word a
//! decision differently.

use crate::Effect;

/// Which list of a rule's principal scope left the principal out, in the
/// order both engines check them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeList {
    Agents,
    Roles,
    Tiers,
    Tags,
}

impl ScopeList {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeList::Agents => "agents",
            ScopeList::Roles => "roles",
            ScopeList::Tiers => "tiers",
            ScopeList::Tags => "tags",
        }
    }
}

/// A rule whose action (and target) patterns matched the request but whose
/// scope left the agent out: what the default decision's reason names.
#[derive(Clone, Copy, Debug)]
pub struct OutOfScope<'a> {
    /// The rule's name.
    pub rule: &'a str,
    /// The first list of its scope that left the agent out.
    pub list: ScopeList,
    /// The names in that list (tier names for `tiers`).
    pub wanted: &'a [&'a str],
    /// The agent's tier, for `tiers`.
    pub tier: Option<&'a str>,
    /// The request's target, if it has one.
    pub target: Option<&'a str>,
}

/// How many names of a scope list a reason spells out.
const SHOWN: usize = 5;

/// The default decision's reason: the action, and, when a rule matched
/// the action but not the agent, that rule's scope and what the agent
/// lacks. `default` is the policy default.
#[must_use]
pub fn no_rule(
    action: &str,
    agent: &str,
    excluded: Option<&OutOfScope<'_>>,
    default: Effect,
) -> String {
    let default = default.as_str();
    let Some(x) = excluded else {
        return format!("no rule matched action `{action}`; the policy default is {default}");
    };
    let names = alternatives(x.wanted);
    let lacks = match x.wanted.len() {
        1 => "does not have it",
        2 => "has neither",
        _ => "has none of them",
    };
    let scope = match x.list {
        ScopeList::Agents => {
            let noun = if x.wanted.len() == 1 {
                "agent"
            } else {
                "agents"
            };
            format!("{noun} {names}, not to agent `{agent}`")
        }
        ScopeList::Roles => format!("agents with role {names}, and agent `{agent}` {lacks}"),
        ScopeList::Tags => format!("agents tagged {names}, and agent `{agent}` {lacks}"),
        ScopeList::Tiers => match x.tier {
            Some(t) => format!("agents of tier {names}, and agent `{agent}` is of tier `{t}`"),
            None => format!("agents of tier {names}, and agent `{agent}` has no tier"),
        },
    };
    let on = x.target.map(|t| format!(" on `{t}`")).unwrap_or_default();
    format!(
        "rule `{}` matches action `{action}`{on} but applies only to {scope}; the policy default is {default}",
        x.rule
    )
}

/// `a`, `` `a` or `b` ``, `` `a`, `b` or `c` ``; past [`SHOWN`] names, the
/// rest are counted.
fn alternatives(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    let hidden = names.len().saturating_sub(SHOWN);
    match (quoted.split_last(), hidden) {
        (None, _) => String::new(),
        (Some((last, [])), 0) => last.clone(),
        (Some((last, rest)), 0) => format!("{} or {last}", rest.join(", ")),
        (Some(_), n) => {
            let others = if n == 1 { "other" } else { "others" };
            format!("{} or {n} {others}", quoted.join(", "))
        }
    }
}

/// Of the rules that matched a request's action and target but not its
/// agent, in evaluation order (effect, what it names), the one a default
/// decision names: the first that would have decided otherwise than the
/// default (it is why the answer is not different), else the first.
pub fn nearest<T>(excluded: impl Iterator<Item = (Effect, T)>, default: Effect) -> Option<T> {
    let mut first = None;
    for (effect, x) in excluded {
        if effect != default {
            return Some(x);
        }
        if first.is_none() {
            first = Some(x);
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(list: ScopeList, wanted: &'static [&'static str], tier: Option<&'static str>) -> String {
        no_rule(
            "read:x",
            "bob",
            Some(&OutOfScope {
                rule: "r",
                list,
                wanted,
                tier,
                target: None,
            }),
            Effect::Deny,
        )
    }

    #[test]
    fn the_sentence_names_the_scope_and_what_the_agent_lacks() {
        assert_eq!(
            no_rule("read:x", "bob", None, Effect::Deny),
            "no rule matched action `read:x`; the policy default is deny"
        );
        assert_eq!(
            out(ScopeList::Tags, &["openai", "support"], None),
            "rule `r` matches action `read:x` but applies only to agents tagged `openai` or `support`, and agent `bob` has neither; the policy default is deny"
        );
        assert_eq!(
            out(ScopeList::Roles, &["admin"], None),
            "rule `r` matches action `read:x` but applies only to agents with role `admin`, and agent `bob` does not have it; the policy default is deny"
        );
        assert_eq!(
            out(ScopeList::Agents, &["a", "b", "c"], None),
            "rule `r` matches action `read:x` but applies only to agents `a`, `b` or `c`, not to agent `bob`; the policy default is deny"
        );
        assert_eq!(
            out(ScopeList::Tiers, &["trusted"], Some("verified")),
            "rule `r` matches action `read:x` but applies only to agents of tier `trusted`, and agent `bob` is of tier `verified`; the policy default is deny"
        );
        assert!(out(ScopeList::Tiers, &["trusted"], None).contains("has no tier"));
        let on = OutOfScope {
            rule: "r",
            list: ScopeList::Roles,
            wanted: &["billing"],
            tier: None,
            target: Some("refund"),
        };
        assert!(
            no_rule("tool:call", "bob", Some(&on), Effect::Allow).starts_with(
                "rule `r` matches action `tool:call` on `refund` but applies only to agents with role `billing`"
            )
        );
        let many = out(ScopeList::Tags, &["a", "b", "c", "d", "e", "f", "g"], None);
        assert!(
            many.contains("`a`, `b`, `c`, `d`, `e` or 2 others, and agent `bob` has none of them"),
            "{many}"
        );
    }

    #[test]
    fn the_nearest_rule_is_the_first_that_would_have_decided_otherwise() {
        let rules = [(Effect::Deny, 0), (Effect::Allow, 1), (Effect::Allow, 2)];
        assert_eq!(nearest(rules.into_iter(), Effect::Deny), Some(1));
        assert_eq!(nearest(rules.into_iter(), Effect::Allow), Some(0));
        assert_eq!(nearest(rules.into_iter().skip(1), Effect::Allow), Some(1));
        assert_eq!(
            nearest(std::iter::empty::<(Effect, u8)>(), Effect::Deny),
            None
        );
    }
}
