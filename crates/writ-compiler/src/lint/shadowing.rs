//! W0104, shadowed rules: under first-match, a rule that can never decide
//! because an earlier rule of the same policy decides every request it
//! would decide.
//!
//! Whether rule `a` shadows rule `b` is [`shadows`]: `a` has no
//! constraints and no limit, its condition is absent or the same as `b`'s,
//! every action (and target) pattern of `b` is [`covers`]ed by one of
//! `a`'s, and `a`'s principals admit everyone `b`'s do. Comparing every
//! rule with every earlier one is quadratic (100,000 rules: minutes), so
//! [`shadowed`] finds the earlier rules that may shadow `b` through an
//! index, built as it walks the rules in order, and compares only those:
//!
//! - The patterns of earlier rules are interned, once for actions and once
//!   for targets ([`Covering`]), and indexed by what [`covers`] looks at:
//!   patterns that match everything; the exact text; for `lit*` and `*lit`,
//!   the literal; for any pattern, the literal text it starts and ends with
//!   (lowercased), which every name it matches starts and ends with. The
//!   patterns that cover one of `b`'s are then found by looking up its text,
//!   the prefixes of its literal, or every (prefix, suffix) pair of a name,
//!   and checked with [`covers`] itself.
//! - A rule that may shadow is filed under (policy, condition, principal,
//!   action pattern, target pattern) for each of its action patterns, each
//!   of its target patterns (or none), and each name of its first non-empty
//!   principal list (agents, roles, tiers, tags; or none). Any rule that
//!   shadows `b` is filed under a key made of one pattern covering `b`'s
//!   first action, one covering its first target (or none), the absent
//!   list or `b`'s first name of that kind, and no condition or `b`'s
//!   (`b`'s first action must be covered, so must its first target, and a
//!   principal list that admits `b`'s holds its first name). So probing
//!   those keys finds every rule that shadows `b`, and only rules that
//!   agree with it on all of that: in a policy with one scope per agent,
//!   only that agent's rules. A rule with more keys than [`MAX_KEYS`] is
//!   filed by (policy, condition, action pattern) alone.
//! - Each list holds rules in order, so a probe stops at the first rule that
//!   shadows `b` (or at one past the earliest found so far): `b` is reported
//!   with the earliest rule that shadows it, as comparing every pair would.
//!
//! The test `the_indexes_find_what_every_pair_finds` holds [`shadowed`] to
//! the pairwise comparison on generated policies.

use rustc_hash::FxHashMap as HashMap;
use std::hash::{Hash, Hasher};

use writ_ir::{Combining, Condition, Pattern, PolicyId, PolicySet, Rule, Value};

use super::covering::{Covering, PatternId, covers};

/// Rule `shadowed` can never decide because rule `by`, earlier, always
/// decides first (indices into `set.rules`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shadow {
    pub shadowed: usize,
    pub by: usize,
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

/// A rule filed under more keys than this is filed by its actions alone
/// (lists of dozens of actions, targets and agents in one rule).
const MAX_KEYS: usize = 64;

/// The principals a rule is filed under: the names of its first non-empty
/// list (0 agents, 1 roles, 2 tiers, 3 tags), or everyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Principal<'s> {
    Everyone,
    Named(u8, &'s str),
}

impl<'s> Facts<'s> {
    fn lists(&self) -> [(u8, &[&'s str]); 4] {
        [
            (0, &self.agents),
            (1, &self.roles),
            (2, &self.tiers),
            (3, &self.tags),
        ]
    }

    /// The principal keys this rule is filed under.
    fn filed_principals(&self) -> Vec<Principal<'s>> {
        match self.lists().into_iter().find(|(_, l)| !l.is_empty()) {
            Some((kind, names)) => names.iter().map(|n| Principal::Named(kind, n)).collect(),
            None => vec![Principal::Everyone],
        }
    }

    /// The principal keys under which every rule admitting this one's
    /// principals is filed (at least one of them).
    fn probed_principals(&self) -> Vec<Principal<'s>> {
        let mut out = vec![Principal::Everyone];
        for (kind, names) in self.lists() {
            if let Some(first) = names.first() {
                out.push(Principal::Named(kind, first));
            }
        }
        out
    }

    /// The condition key: none, or the condition's fingerprint.
    fn condition_key(&self) -> Option<u64> {
        self.rule.condition.is_some().then_some(self.fingerprint)
    }
}

/// (Policy, condition, principal, action, target) → rules in order.
type Key<'s> = (
    PolicyId,
    Option<u64>,
    Principal<'s>,
    PatternId,
    Option<PatternId>,
);

/// The rules filed so far, and their patterns.
#[derive(Default)]
struct Index<'s> {
    actions: Covering<'s>,
    targets: Covering<'s>,
    fine: HashMap<Key<'s>, Vec<usize>>,
    /// Rules with more than [`MAX_KEYS`] keys: by (policy, condition, action).
    coarse: HashMap<(PolicyId, Option<u64>, PatternId), Vec<usize>>,
}

impl<'s> Index<'s> {
    /// Files rule `i` (after every earlier one), unless it can never
    /// shadow: a rule with constraints or a limit may not decide.
    fn file(&mut self, i: usize, a: &Facts<'s>) {
        let rule = a.rule;
        if !rule.constraints.is_empty() || rule.limit.is_some() {
            return;
        }
        let mut actions: Vec<PatternId> = rule
            .actions
            .iter()
            .map(|p| self.actions.intern(p))
            .collect();
        actions.sort_unstable_by_key(|id| id.0);
        actions.dedup();
        let mut targets: Vec<Option<PatternId>> = rule
            .targets
            .iter()
            .map(|p| Some(self.targets.intern(p)))
            .collect();
        if targets.is_empty() {
            targets.push(None);
        }
        targets.sort_unstable_by_key(|id| id.map(|id| id.0));
        targets.dedup();
        let principals = a.filed_principals();
        let cond = a.condition_key();
        if actions.len() * targets.len() * principals.len() > MAX_KEYS {
            for &action in &actions {
                self.coarse
                    .entry((rule.policy, cond, action))
                    .or_default()
                    .push(i);
            }
            return;
        }
        for &action in &actions {
            for &target in &targets {
                for &who in &principals {
                    self.fine
                        .entry((rule.policy, cond, who, action, target))
                        .or_default()
                        .push(i);
                }
            }
        }
    }

    /// The earliest rule filed so far that shadows `b`.
    fn first_shadowing(&self, facts: &[Facts<'s>], b: &Facts<'s>) -> Option<usize> {
        let rule = b.rule;
        let Some(first_action) = rule.actions.first() else {
            // No action to look up (not a rule any front end makes):
            // compare with every rule filed before it.
            return facts
                .iter()
                .position(|a| a.rule.policy == rule.policy && shadows(a, b));
        };
        let mut actions = Vec::new();
        self.actions.covering(first_action, &mut actions);
        if actions.is_empty() {
            return None;
        }
        let mut targets: Vec<Option<PatternId>> = vec![None];
        if let Some(first_target) = rule.targets.first() {
            let mut ids = Vec::new();
            self.targets.covering(first_target, &mut ids);
            targets.extend(ids.into_iter().map(Some));
        }
        let mut conds = vec![None];
        if rule.condition.is_some() {
            conds.push(Some(b.fingerprint));
        }
        let principals = b.probed_principals();
        let mut best: Option<usize> = None;
        // The first rule of `list` (in order) that shadows `b`, if it comes
        // before the best so far.
        let mut scan = |list: &[usize]| {
            for &a in list {
                if best.is_some_and(|x| a >= x) {
                    break;
                }
                if facts.get(a).is_some_and(|fa| shadows(fa, b)) {
                    best = Some(a);
                    break;
                }
            }
        };
        for &cond in &conds {
            for &action in &actions {
                if let Some(list) = self.coarse.get(&(rule.policy, cond, action)) {
                    scan(list);
                }
                for &target in &targets {
                    for &who in &principals {
                        if let Some(list) = self.fine.get(&(rule.policy, cond, who, action, target))
                        {
                            scan(list);
                        }
                    }
                }
            }
        }
        best
    }
}

/// The shadowed rules of a first-match policy set (none under
/// deny-overrides, where every matching rule counts), each with the
/// earliest rule that shadows it, found through the index described at
/// the top of this module.
#[must_use]
pub fn shadowed(set: &PolicySet) -> Vec<Shadow> {
    if set.settings.combining.value != Combining::FirstMatch {
        return Vec::new();
    }
    let facts: Vec<Facts<'_>> = set.rules.iter().map(Facts::new).collect();
    let mut index = Index::default();
    let mut out = Vec::new();
    for (i, b) in facts.iter().enumerate() {
        if let Some(by) = index.first_shadowing(facts.get(..i).unwrap_or(&[]), b) {
            out.push(Shadow { shadowed: i, by });
        }
        index.file(i, b);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{Source, compile};

    use super::{Facts, Shadow, shadowed, shadows};

    /// The earliest earlier rule of the same policy that shadows each rule,
    /// found by comparing every pair: what the index must find.
    fn every_pair(set: &writ_ir::PolicySet) -> (Vec<Shadow>, usize) {
        let facts: Vec<Facts<'_>> = set.rules.iter().map(Facts::new).collect();
        let mut compared = 0;
        let found = facts
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                compared += i;
                facts
                    .iter()
                    .take(i)
                    .position(|a| a.rule.policy == b.rule.policy && shadows(a, b))
                    .map(|by| Shadow { shadowed: i, by })
            })
            .collect();
        (found, compared)
    }

    /// The indexes find exactly what comparing every earlier rule finds,
    /// on generated policies over every pattern shape (exact, `lit*`,
    /// `*lit`, inner `*`, `?`, classes, alternatives, escapes, hosts in any
    /// case), lists of actions and targets, principals of every kind (some
    /// rules with more keys than the index files one by one), conditions,
    /// requirements, limits, and two files (two policies).
    #[test]
    fn the_indexes_find_what_every_pair_finds() {
        let actions = [
            "\"t\"",
            "\"t*\"",
            "\"*\"",
            "\"**\"",
            "\"u\"",
            "[\"t\", \"u\"]",
            "[\"t*\", \"u\", \"v\"]",
            "\"t?\"",
            "\"*t\"",
            "\"[tu]\"",
            "\"{t,u}\"",
            "\"t\\\\*\"",
            "\"*t*\"",
            "\"?*t*?\"",
        ];
        let targets = [
            "",
            " on x",
            " on X",
            " on \"x*\"",
            " on \"xy*\"",
            " on \"*y\"",
            " on \"*\"",
            " on [x, xy]",
            " on [x, xy, y, \"x*\"]",
            " on xy",
            " on hosts \"X*\"",
            " on hosts xy",
            " on hosts XY",
            " on hosts [\"*.Y\", xy]",
            " on \"x\\\\*\"",
            " on \"x\\\\y*\"",
            " on \"x?\"",
            " on \"*xy\"",
            " on \"x*y\"",
            " on \"[x]y\"",
            " on \"{x,y}y\"",
            " on \"{x,}\"",
            " on hosts \"*Y\"",
            " on \"x\\\\y\"",
            " on \"*xy*\"",
            " on \"*x*\"",
            " on hosts \"*Y*\"",
            " on \"*x\\\\*y*\"",
            " on \"{x,y}*y?\"",
        ];
        let principals = [
            "",
            "",
            " for roles [r]",
            " for roles [r, s]",
            " for roles [s]",
            " for agents [a]",
            " for agents [a, b] roles [r]",
            " for agents [a, b, c, d, e, f, g, h, i, j]",
            " for tiers [trusted]",
            " for tiers [trusted, verified] tags [k]",
            " for tags [k, l]",
        ];
        let whens = [
            "",
            "",
            " when x > 1",
            " when x > 2",
            " when x > 1 and y == 2",
            " limit 1 per hour",
            " require store in [s1]",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap_or(0)
        };
        let (mut policies, mut compared, mut found) = (0, 0, 0);
        for _ in 0..300 {
            let mut sources = Vec::new();
            for file in 0..2 {
                let mut text = String::new();
                for i in 0..24 {
                    let mut pick =
                        |list: &[&'static str]| list.get(next(list.len())).copied().unwrap_or("");
                    let (a, t, who, when) = (
                        pick(&actions),
                        pick(&targets),
                        pick(&principals),
                        pick(&whens),
                    );
                    text += &format!("rule r{file}_{i}: deny {a}{t}{who}{when}\n");
                }
                sources.push(Source {
                    name: format!("p{file}.writ"),
                    text,
                });
            }
            let comp = compile(&sources, None);
            let Some(set) = comp.set.as_ref() else {
                continue;
            };
            let (expected, pairs) = every_pair(set);
            assert_eq!(shadowed(set), expected, "{sources:?}");
            policies += 1;
            compared += pairs;
            found += expected.len();
        }
        // Every generated policy is valid, and the generator makes
        // policies where rules shadow others and where they do not.
        assert_eq!(policies, 300);
        assert!(
            found > 300 && found < compared / 20,
            "{found} of {compared}"
        );
        eprintln!("{policies} policies, {compared} pairs compared, {found} shadowed rules");
    }
}
