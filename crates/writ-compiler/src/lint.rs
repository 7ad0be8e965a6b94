//! Lints over a merged policy set, reported by `writ check` (and so by the
//! editor) as warnings: rules that can never decide because an earlier rule
//! covers them (W0104), agents that nothing uses (W0105), conditions
//! that can never hold (W0106), and scope names that look misspelled
//! (W0108, in `lint/scope_names.rs`). W0104 is found in
//! `lint/shadowing.rs`.

mod covering;
mod scope_names;
mod shadowing;

pub use shadowing::{Shadow, shadowed};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use writ_diagnostics::{Code, Diagnostic};
use writ_ir::{Agent, CmpOp, Condition, PolicySet, Subject, Value};

use covering::Covering;

/// A numeric interval, for conditions that can never hold.
#[derive(Clone, Copy)]
struct Bound {
    value: f64,
    strict: bool,
}

/// Lower bound, upper bound, and a value required by `==`.
type Interval = (Option<Bound>, Option<Bound>, Option<f64>);

fn impossible(c: &Condition) -> bool {
    let Condition::All(items) = c else {
        return false;
    };
    let mut bounds: HashMap<String, Interval> = HashMap::default();
    for item in items {
        let Condition::Compare {
            field,
            op,
            value: Value::Number(n),
            ..
        } = item
        else {
            continue;
        };
        let entry = bounds.entry(field.to_string()).or_default();
        let lower = |e: &mut Option<Bound>, b: Bound| {
            if e.is_none_or(|x| b.value > x.value || (b.value == x.value && b.strict)) {
                *e = Some(b);
            }
        };
        let upper = |e: &mut Option<Bound>, b: Bound| {
            if e.is_none_or(|x| b.value < x.value || (b.value == x.value && b.strict)) {
                *e = Some(b);
            }
        };
        match op {
            CmpOp::Gt => lower(
                &mut entry.0,
                Bound {
                    value: *n,
                    strict: true,
                },
            ),
            CmpOp::Ge => lower(
                &mut entry.0,
                Bound {
                    value: *n,
                    strict: false,
                },
            ),
            CmpOp::Lt => upper(
                &mut entry.1,
                Bound {
                    value: *n,
                    strict: true,
                },
            ),
            CmpOp::Le => upper(
                &mut entry.1,
                Bound {
                    value: *n,
                    strict: false,
                },
            ),
            CmpOp::Eq => {
                if entry.2.is_some_and(|e| e != *n) {
                    return true;
                }
                entry.2 = Some(*n);
            }
            CmpOp::Ne => {}
        }
    }
    bounds.values().any(|(lo, hi, eq)| {
        let above = |v: f64, b: &Option<Bound>| {
            b.is_some_and(|b| v < b.value || (v == b.value && b.strict))
        };
        let below = |v: f64, b: &Option<Bound>| {
            b.is_some_and(|b| v > b.value || (v == b.value && b.strict))
        };
        let empty = match (lo, hi) {
            (Some(l), Some(h)) => {
                l.value > h.value || (l.value == h.value && (l.strict || h.strict))
            }
            _ => false,
        };
        empty || eq.is_some_and(|v| above(v, lo) || below(v, hi))
    })
}

/// W0105: agent entries that declare nothing (no roles, lists, limits or
/// delegates) and that no rule scope, rule target, delegation or entry
/// list names, in order.
fn unused_agents(set: &PolicySet) -> Vec<&Agent> {
    let declares_nothing: Vec<&Agent> = set
        .agents
        .iter()
        .filter(|a| {
            a.subject == Subject::Agent
                && a.roles.is_empty()
                && a.tier.is_none()
                && a.tags.is_empty()
                && a.token_prefix.is_none()
                && a.models.allow.is_none()
                && a.models.block.is_none()
                && a.tools.allow.is_none()
                && a.tools.block.is_none()
                && a.hosts.allow.is_none()
                && a.hosts.block.is_none()
                && a.require_tls.is_none()
                && a.limits.is_empty()
                && a.delegates.is_empty()
        })
        .collect();
    if declares_nothing.is_empty() {
        return declares_nothing;
    }
    // Only now look for uses: that reads every rule.
    let mut named: HashSet<&str> = HashSet::default();
    let mut targets = Covering::default();
    for r in &set.rules {
        named.extend(r.scope.agents.iter().map(|x| x.value.as_str()));
        for t in &r.targets {
            targets.intern(t);
        }
    }
    for o in &set.agents {
        named.extend(o.delegates.iter().map(|d| d.value.as_str()));
    }
    if let Some(e) = &set.settings.entry_agents {
        named.extend(e.value.iter().map(|x| x.value.as_str()));
    }
    declares_nothing
        .into_iter()
        .filter(|a| {
            let name = a.name.value.as_str();
            !named.contains(name) && !targets.matches(name)
        })
        .collect()
}

/// The lint warnings of a merged policy set, given its shadowed rules
/// (from [`shadowed`], which the editor's hovers reuse).
#[must_use]
pub fn lint_with(set: &PolicySet, shadows: &[Shadow]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for s in shadows.iter().copied() {
        let (Some(rule), Some(by)) = (set.rules.get(s.shadowed), set.rules.get(s.by)) else {
            continue;
        };
        out.push(
            Diagnostic::new(
                Code::ShadowedRule,
                rule.name.span,
                format!(
                    "rule `{}` can never decide: rule `{}` before it matches everything it matches",
                    rule.name.value, by.name.value
                ),
            )
            .with_secondary(by.name.span, "this rule decides first")
            .with_help(format!(
                "move `{}` above `{}`, or narrow `{}` (a condition, a target, or principals)",
                rule.name.value, by.name.value, by.name.value
            )),
        );
    }
    for rule in &set.rules {
        if let Some(c) = &rule.condition
            && impossible(c)
        {
            out.push(
                Diagnostic::new(
                    Code::ImpossibleCondition,
                    rule.name.span,
                    format!(
                        "the condition of rule `{}` can never hold: `{c}`",
                        rule.name.value
                    ),
                )
                .with_help(
                    "the bounds on one field exclude each other; fix the numbers or use `or`",
                ),
            );
        }
    }
    let unused = unused_agents(set);
    for a in unused {
        let name = a.name.value.as_str();
        out.push(
            Diagnostic::new(
                Code::UnusedAgent,
                a.name.span,
                format!("agent `{name}` has no effect: it declares nothing and nothing names it"),
            )
            .with_help("give it roles, lists or limits, name it in a rule, or remove it"),
        );
    }
    scope_names::check(set, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use crate::{Source, compile};

    fn codes(text: &str) -> Vec<(String, String)> {
        let comp = compile(
            &[Source {
                name: "t.writ".into(),
                text: text.into(),
            }],
            None,
        );
        comp.diagnostics
            .iter()
            .map(|d| (d.code.as_str().to_owned(), d.message.clone()))
            .collect()
    }

    #[test]
    fn bounds_that_meet_are_possible_and_bounds_that_cross_are_not() {
        let rule = |cond: &str| format!("rule r: allow \"a\"\n  when {cond}\n");
        for possible in [
            "x >= 5 and x <= 5",
            "x > 1 and x < 2",
            "x == 3 and x < 4",
            "x > 100 or x < 50",
            "x > 100 and y < 50",
        ] {
            assert!(codes(&rule(possible)).is_empty(), "{possible}");
        }
        for impossible in [
            "x > 5 and x < 5",
            "x >= 6 and x <= 5",
            "x > 100 and x < 50",
            "x == 1 and x == 2",
            "x == 3 and x > 3",
        ] {
            let c = codes(&rule(impossible));
            assert_eq!(c.len(), 1, "{impossible}: {c:?}");
            assert_eq!(c[0].0, "W0106");
        }
    }

    #[test]
    fn shadowing_needs_covering_patterns_principals_and_no_narrower_condition() {
        let shadowed = |first: &str, second: &str| {
            codes(&format!("rule a: allow {first}\n\nrule b: deny {second}\n"))
                .iter()
                .any(|(c, _)| c == "W0104")
        };
        assert!(shadowed("\"tool:*\"", "\"tool:call\""));
        assert!(shadowed("\"tool:*\"", "\"tool:call*\""));
        assert!(shadowed("\"*\"", "\"x\" on y"));
        assert!(shadowed("\"t\" on \"lookup_*\"", "\"t\" on lookup_orders"));
        assert!(!shadowed("\"tool:call\"", "\"tool:*\""), "narrower first");
        // `x\*` is the exact name `x*`: it does not cover `x\y*` (`xy...`).
        assert!(!shadowed("\"t\" on \"x\\\\*\"", "\"t\" on \"x\\\\y*\""));
        assert!(shadowed("\"t\" on \"x\\\\*\"", "\"t\" on \"x\\\\*\""));
        assert!(!shadowed("\"t\" on refund", "\"t\""), "any target is wider");
        assert!(
            !shadowed("\"t\"\n  when amount > 5", "\"t\""),
            "a condition"
        );
        assert!(shadowed(
            "\"t\"\n  when amount > 5",
            "\"t\"\n  when amount > 5"
        ));
        assert!(!shadowed(
            "\"t\"\n  for roles [a]",
            "\"t\"\n  for roles [b]"
        ));
        assert!(shadowed(
            "\"t\"\n  for roles [a, b]",
            "\"t\"\n  for roles [b]"
        ));
        assert!(
            !shadowed("\"t\"\n  limit 5 per hour", "\"t\""),
            "a limit can stop deciding"
        );
        // Under deny-overrides every matching rule counts.
        let c = codes(
            "policy \"p\" { combine deny-overrides }\nrule a: allow \"*\"\n\nrule b: deny \"x\"\n",
        );
        assert!(c.iter().all(|(code, _)| code != "W0104"), "{c:?}");
    }

    #[test]
    fn agents_that_declare_or_are_named_are_used() {
        let unused = |text: &str| codes(text).iter().any(|(c, _)| c == "W0105");
        assert!(unused("agent \"ghost\" {}\n"));
        assert!(!unused("agent \"bot\" { roles [r] }\n"));
        assert!(!unused(
            "agent \"bot\" {}\nrule r: allow \"x\"\n  for agents [bot]\n"
        ));
        assert!(!unused(
            "agent \"a\" { delegates [bot] }\nagent \"bot\" {}\n"
        ));
        // Named by a rule's target: any pattern that matches the name.
        for target in [
            "bot",
            "\"b*\"",
            "\"*ot\"",
            "\"*o*\"",
            "\"[ab]o?\"",
            "hosts BOT",
        ] {
            let text =
                format!("agent \"bot\" {{}}\nrule r: allow \"agent:delegate\" on {target}\n");
            assert!(!unused(&text), "{target}");
        }
        for target in ["bots", "\"c*\"", "\"*x*\"", "\"*ob*\"", "\"b?\"", "BOT"] {
            let text =
                format!("agent \"bot\" {{}}\nrule r: allow \"agent:delegate\" on {target}\n");
            assert!(unused(&text), "{target}");
        }
    }

    #[test]
    fn misspelled_scope_names_are_flagged_and_names_requests_may_bring_are_not() {
        let flagged = |text: &str| -> Vec<String> {
            codes(text)
                .into_iter()
                .filter(|(c, _)| c == "W0108")
                .map(|(_, m)| m)
                .collect()
        };
        let declared = "agent \"billing-agent\" {\n  roles [billing]\n  tags [support, tier-1]\n}\nrole \"finance\" { token_prefix \"f_\" }\n";
        let rule = |scope: &str| format!("{declared}rule r: allow \"x\"\n  for {scope}\n");
        assert_eq!(
            flagged(&rule("agents [biling-agent]")),
            ["the scope names agent `biling-agent`, which no agent entry declares"]
        );
        assert_eq!(flagged(&rule("roles [biling]")).len(), 1);
        assert_eq!(flagged(&rule("tags [suport]")).len(), 1);
        assert_eq!(
            flagged(&rule("agents [finance]")),
            ["the scope lists `finance` among its agents, but `finance` is declared as a role"]
        );
        assert_eq!(flagged(&rule("roles [billing-agent]")).len(), 1);
        // Declared names, names far from every declared one, names that
        // differ only in digits, and names of a kind nothing declares are
        // not reported: requests (or another file) may bring them.
        for fine in [
            "agents [billing-agent] roles [billing, finance] tags [support]",
            "agents [research-agent]",
            "roles [auditor]",
            "tags [tier-2, openai]",
        ] {
            assert!(flagged(&rule(fine)).is_empty(), "{fine}");
        }
        assert!(
            flagged("rule r: allow \"x\"\n  for agents [biling-agent] roles [admn] tags [prod]\n")
                .is_empty()
        );
    }
}
