//! Lints over a merged policy set, reported by `writ check` (and so by the
//! editor) as warnings: rules that can never decide because an earlier rule
//! covers them (W0104), agents that nothing uses (W0105), conditions
//! that can never hold (W0106), and scope names that look misspelled
//! (W0108, in `lint/scope_names.rs`).

mod scope_names;

use rustc_hash::FxHashMap as HashMap;
use std::hash::{Hash, Hasher};

use writ_diagnostics::{Code, Diagnostic};
use writ_ir::{CmpOp, Combining, Condition, Pattern, PolicySet, Rule, Subject, Value};

/// Rule `shadowed` can never decide because rule `by`, earlier, always
/// decides first (indices into `set.rules`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shadow {
    pub shadowed: usize,
    pub by: usize,
}

const META: &[char] = &['*', '?', '[', '{'];

fn prefix_glob(p: &Pattern) -> Option<&str> {
    let s = p.as_str().strip_suffix('*')?;
    (!s.contains(META)).then_some(s)
}

fn suffix_glob(p: &Pattern) -> Option<&str> {
    let s = p.as_str().strip_prefix('*')?;
    (!s.contains(META)).then_some(s)
}

/// Every name `b` matches, `a` matches too.
fn covers(a: &Pattern, b: &Pattern) -> bool {
    if a.matches_everything() || a.as_str() == b.as_str() {
        return true;
    }
    if a.is_case_insensitive() != b.is_case_insensitive() && !a.is_case_insensitive() {
        return false;
    }
    if b.is_literal() {
        return a.is_match(b.as_str());
    }
    if let (Some(pa), Some(pb)) = (prefix_glob(a), prefix_glob(b)) {
        return pb.starts_with(pa);
    }
    matches!((suffix_glob(a), suffix_glob(b)), (Some(sa), Some(sb)) if sb.ends_with(sa))
}

fn all_covered(a: &[Pattern], b: &[Pattern]) -> bool {
    b.iter().all(|pb| a.iter().any(|pa| covers(pa, pb)))
}

fn names(v: &[writ_ir::Spanned<String>]) -> Vec<&str> {
    let mut out: Vec<&str> = v.iter().map(|s| s.value.as_str()).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// What the shadowing check compares, computed once per rule.
struct Facts<'s> {
    rule: &'s Rule,
    unconditional: bool,
    /// Equal for conditions [`same_condition`] finds the same.
    fingerprint: u64,
    agents: Vec<&'s str>,
    roles: Vec<&'s str>,
    tiers: Vec<&'s str>,
    tags: Vec<&'s str>,
}

impl<'s> Facts<'s> {
    fn new(rule: &'s Rule) -> Facts<'s> {
        let mut tiers: Vec<&str> = rule.scope.tiers.iter().map(|t| t.value.as_str()).collect();
        tiers.sort_unstable();
        Facts {
            rule,
            fingerprint: {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                if let Some(c) = &rule.condition {
                    fingerprint(c, &mut h);
                }
                h.finish()
            },
            unconditional: rule.condition.is_none()
                && rule.constraints.is_empty()
                && rule.limit.is_none(),
            agents: names(&rule.scope.agents),
            roles: names(&rule.scope.roles),
            tiers,
            tags: names(&rule.scope.tags),
        }
    }
}

/// `x` admits every principal `y` admits (an empty list admits everyone).
fn admits(x: &[&str], y: &[&str]) -> bool {
    x.is_empty() || (!y.is_empty() && y.iter().all(|n| x.contains(n)))
}

/// Hashes what [`same_condition`] compares (some of it: enough to tell
/// most conditions apart without walking two trees).
fn fingerprint(c: &Condition, h: &mut impl Hasher) {
    std::mem::discriminant(c).hash(h);
    let field = |f: &writ_ir::Field, h: &mut _| match f {
        writ_ir::Field::Context(p) => p.0.hash(h),
        writ_ir::Field::Target => 0u8.hash(h),
    };
    let value = |v: &Value, h: &mut _| match v {
        // `0.0 == -0.0`: one hash for both.
        Value::Number(n) => (if *n == 0.0 { 0 } else { n.to_bits() }).hash(h),
        Value::String(s) => s.hash(h),
        Value::Bool(b) => b.hash(h),
        Value::Null | Value::List(_) | Value::Map(_) => {}
    };
    match c {
        Condition::Compare {
            field: f,
            op,
            value: v,
            ..
        } => {
            field(f, h);
            op.symbol().hash(h);
            value(v, h);
        }
        Condition::In {
            field: f,
            values,
            negated,
            ..
        } => {
            field(f, h);
            negated.hash(h);
            values.len().hash(h);
        }
        Condition::Glob {
            field: f, pattern, ..
        } => {
            field(f, h);
            pattern.as_str().hash(h);
        }
        Condition::Contains {
            field: f, value: v, ..
        } => {
            field(f, h);
            value(v, h);
        }
        Condition::Exists { field: f, .. } => field(f, h),
        Condition::Time { .. } | Condition::Weekdays { .. } => {}
        Condition::All(parts) | Condition::Any(parts) => {
            parts.len().hash(h);
            for p in parts {
                fingerprint(p, h);
            }
        }
        Condition::Not(inner, _) => fingerprint(inner, h),
    }
}

/// The same condition, wherever each was written (spans aside).
fn same_condition(a: &Condition, b: &Condition) -> bool {
    use Condition as C;
    match (a, b) {
        (
            C::Compare {
                field: f1,
                op: o1,
                value: v1,
                ..
            },
            C::Compare {
                field: f2,
                op: o2,
                value: v2,
                ..
            },
        ) => f1 == f2 && o1 == o2 && v1 == v2,
        (
            C::In {
                field: f1,
                values: v1,
                negated: n1,
                ..
            },
            C::In {
                field: f2,
                values: v2,
                negated: n2,
                ..
            },
        ) => f1 == f2 && v1 == v2 && n1 == n2,
        (
            C::Glob {
                field: f1,
                pattern: p1,
                ..
            },
            C::Glob {
                field: f2,
                pattern: p2,
                ..
            },
        ) => f1 == f2 && p1 == p2,
        (
            C::Contains {
                field: f1,
                value: v1,
                ..
            },
            C::Contains {
                field: f2,
                value: v2,
                ..
            },
        ) => f1 == f2 && v1 == v2,
        (C::Exists { field: f1, .. }, C::Exists { field: f2, .. }) => f1 == f2,
        (C::Time { window: w1, .. }, C::Time { window: w2, .. }) => w1 == w2,
        (C::Weekdays { days: d1, .. }, C::Weekdays { days: d2, .. }) => d1 == d2,
        (C::All(x), C::All(y)) | (C::Any(x), C::Any(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_condition(a, b))
        }
        (C::Not(x, _), C::Not(y, _)) => same_condition(x, y),
        _ => false,
    }
}

/// Rule `a` decides every request rule `b` would decide.
fn shadows(a: &Facts<'_>, b: &Facts<'_>) -> bool {
    let (ra, rb) = (a.rule, b.rule);
    // Cheapest first: most pairs differ in their conditions.
    (a.unconditional || a.fingerprint == b.fingerprint)
        && ra.constraints.is_empty()
        && ra.limit.is_none()
        && (ra.condition.is_none() || rb.condition.is_some())
        && (ra.targets.is_empty()
            || (!rb.targets.is_empty() && all_covered(&ra.targets, &rb.targets)))
        && all_covered(&ra.actions, &rb.actions)
        && admits(&a.agents, &b.agents)
        && admits(&a.roles, &b.roles)
        && admits(&a.tiers, &b.tiers)
        && admits(&a.tags, &b.tags)
        // Last, as it is the dearest: no condition, or the same one.
        && (a.unconditional
            || match (&ra.condition, &rb.condition) {
                (Some(x), Some(y)) => same_condition(x, y),
                (x, y) => x.is_none() && y.is_none(),
            })
}

/// The literal start of a pattern (up to its first wildcard).
fn literal_start(p: &Pattern) -> &str {
    let s = p.as_str();
    s.find(META).map_or(s, |i| s.get(..i).unwrap_or(""))
}

/// What every name a target pattern matches begins and ends with (the
/// literal text before its first and after its last piece of glob syntax),
/// lowercased: a target that covers another has a start that is a prefix
/// of the other's start and an end that is a suffix of its end.
fn target_key(p: &Pattern) -> (String, String) {
    let s = p.as_str();
    let first = s.find(['*', '?', '[', '{', '\\']).unwrap_or(s.len());
    let last = s
        .rfind(['*', '?', '[', ']', '{', '}', ',', '\\'])
        .map_or(0, |i| i + 1);
    let start = s.get(..first).unwrap_or("");
    let end = s.get(last..).unwrap_or("");
    (start.to_ascii_lowercase(), end.to_ascii_lowercase())
}

/// Every prefix of `s` (the empty one and `s` included).
fn prefixes(s: &str) -> impl Iterator<Item = &str> {
    s.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .filter_map(|i| s.get(..i))
}

/// Every suffix of `s` (the empty one and `s` included).
fn suffixes(s: &str) -> impl Iterator<Item = &str> {
    s.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .filter_map(|i| s.get(i..))
}

/// Rules by the start and then the end of their targets.
type ByTarget = HashMap<String, HashMap<String, Vec<usize>>>;

/// The shadowed rules of a first-match policy set (none under
/// deny-overrides, where every matching rule counts). Earlier rules are
/// found through indexes, so this stays near-linear: rules whose actions
/// and targets are all literal by (action, target); others by the literal
/// start of their action patterns and then by the start of each of their
/// targets (or as having none), probed with every prefix of the later
/// rule's actions and of its first target (a rule that covers it covers
/// that one too).
#[must_use]
pub fn shadowed(set: &PolicySet) -> Vec<Shadow> {
    if set.settings.combining.value != Combining::FirstMatch {
        return Vec::new();
    }
    let facts: Vec<Facts<'_>> = set.rules.iter().map(Facts::new).collect();
    let mut literal: HashMap<(&str, &str, Option<u64>), Vec<usize>> = HashMap::default();
    // (Action start, condition) → rules without targets, and → target key
    // → rules; the condition is `None` for a rule without one, else its
    // fingerprint (a rule with a condition shadows only rules with the
    // same one).
    let mut any_target: HashMap<(&str, Option<u64>), Vec<usize>> = HashMap::default();
    let mut by_target: HashMap<(&str, Option<u64>), ByTarget> = HashMap::default();
    let mut out = Vec::new();
    let mut candidates: Vec<usize> = Vec::new();
    for (i, b) in facts.iter().enumerate() {
        let rb = b.rule;
        candidates.clear();
        let first_target = rb.targets.first().map(target_key);
        for p in &rb.actions {
            let text = p.as_str();
            for start in prefixes(literal_start(p)) {
                for cond in [None, Some(b.fingerprint)] {
                    if let Some(v) = any_target.get(&(start, cond)) {
                        candidates.extend(v);
                    }
                    if let (Some((first, last)), Some(by_start)) =
                        (&first_target, by_target.get(&(start, cond)))
                    {
                        for k in prefixes(first) {
                            if let Some(by_end) = by_start.get(k) {
                                for e in suffixes(last) {
                                    if let Some(v) = by_end.get(e) {
                                        candidates.extend(v);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for cond in [None, Some(b.fingerprint)] {
                if let Some(v) = literal.get(&(text, "", cond)) {
                    candidates.extend(v);
                }
                for t in &rb.targets {
                    if let Some(v) = literal.get(&(text, t.as_str(), cond)) {
                        candidates.extend(v);
                    }
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        // Within one policy: across files, order is a merge decision.
        if let Some(&by) = candidates.iter().find(|&&a| {
            facts
                .get(a)
                .is_some_and(|a| a.rule.policy == rb.policy && shadows(a, b))
        }) {
            out.push(Shadow { shadowed: i, by });
        }
        let literal_rule = rb.actions.iter().all(Pattern::is_literal)
            && rb.targets.iter().all(Pattern::is_literal)
            && !rb.targets.iter().any(Pattern::is_case_insensitive);
        let cond = (!b.unconditional).then_some(b.fingerprint);
        if literal_rule {
            for p in &rb.actions {
                if rb.targets.is_empty() {
                    literal.entry((p.as_str(), "", cond)).or_default().push(i);
                }
                for t in &rb.targets {
                    literal
                        .entry((p.as_str(), t.as_str(), cond))
                        .or_default()
                        .push(i);
                }
            }
        } else {
            let mut keys: Vec<(String, String)> = rb.targets.iter().map(target_key).collect();
            keys.sort_unstable();
            keys.dedup();
            for p in &rb.actions {
                let start = literal_start(p);
                if rb.targets.is_empty() {
                    any_target.entry((start, cond)).or_default().push(i);
                }
                let by_start = by_target.entry((start, cond)).or_default();
                for (first, last) in &keys {
                    by_start
                        .entry(first.clone())
                        .or_default()
                        .entry(last.clone())
                        .or_default()
                        .push(i);
                }
            }
        }
    }
    out
}

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
    for a in &set.agents {
        if a.subject != Subject::Agent {
            continue;
        }
        let name = a.name.value.as_str();
        let constrains = !a.roles.is_empty()
            || a.tier.is_some()
            || !a.tags.is_empty()
            || a.token_prefix.is_some()
            || a.models.allow.is_some()
            || a.models.block.is_some()
            || a.tools.allow.is_some()
            || a.tools.block.is_some()
            || a.hosts.allow.is_some()
            || a.hosts.block.is_some()
            || a.require_tls.is_some()
            || !a.limits.is_empty()
            || !a.delegates.is_empty();
        if constrains {
            continue;
        }
        // Only now look for a use: that scans every rule.
        let named = set.rules.iter().any(|r| {
            r.scope.agents.iter().any(|x| x.value == name)
                || r.targets.iter().any(|t| t.is_match(name))
        }) || set
            .agents
            .iter()
            .any(|o| o.delegates.iter().any(|d| d.value == name))
            || set
                .settings
                .entry_agents
                .as_ref()
                .is_some_and(|e| e.value.iter().any(|x| x.value == name));
        if !named {
            out.push(
                Diagnostic::new(
                    Code::UnusedAgent,
                    a.name.span,
                    format!(
                        "agent `{name}` has no effect: it declares nothing and nothing names it"
                    ),
                )
                .with_help("give it roles, lists or limits, name it in a rule, or remove it"),
            );
        }
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

    /// The indexes find exactly what comparing every earlier rule finds.
    #[test]
    fn the_indexes_find_what_every_pair_finds() {
        use super::{Facts, Shadow, shadowed, shadows};
        let actions = [
            "\"t\"",
            "\"t*\"",
            "\"*\"",
            "\"u\"",
            "[\"t\", \"u\"]",
            "\"t?\"",
        ];
        let targets = [
            "",
            " on x",
            " on \"x*\"",
            " on \"xy*\"",
            " on \"*y\"",
            " on \"*\"",
            " on [x, xy]",
            " on xy",
            " on hosts \"X*\"",
            " on hosts xy",
            " on \"x\\\\*\"",
            " on \"x?\"",
            " on \"*xy\"",
            " on \"x*y\"",
            " on \"[x]y\"",
            " on \"{x,y}y\"",
            " on hosts \"*Y\"",
            " on \"x\\\\y\"",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap_or(0)
        };
        for _ in 0..200 {
            let mut text = String::new();
            for i in 0..12 {
                let a = actions.get(next(actions.len())).copied().unwrap_or("\"t\"");
                let t = targets.get(next(targets.len())).copied().unwrap_or("");
                let who = if next(4) == 0 { " for roles [r]" } else { "" };
                let when = ["", "", " when x > 1", " when x > 2", " limit 1 per hour"]
                    .get(next(5))
                    .copied()
                    .unwrap_or("");
                text += &format!("rule r{i}: deny {a}{t}{who}{when}\n");
            }
            let comp = compile(
                &[Source {
                    name: "t.writ".into(),
                    text: text.clone(),
                }],
                None,
            );
            let Some(set) = comp.set.as_ref() else {
                continue;
            };
            let facts: Vec<Facts<'_>> = set.rules.iter().map(Facts::new).collect();
            let every_pair: Vec<Shadow> = facts
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    facts
                        .iter()
                        .take(i)
                        .position(|a| a.rule.policy == b.rule.policy && shadows(a, b))
                        .map(|by| Shadow { shadowed: i, by })
                })
                .collect();
            assert_eq!(shadowed(set), every_pair, "{text}");
        }
    }
}
