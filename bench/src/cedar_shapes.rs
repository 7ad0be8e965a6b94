//! Cedar's side of the `shapes` bench: the workloads of
//! `writ_bench::shapes` written as Cedar policies, decided two ways.
//!
//! Compiled only into `benches/shapes.rs` (included there with `#[path]`),
//! so `cedar-policy` stays a dev-dependency, as for `src/peers.rs`.
//!
//! Cedar matches actions as entities and strings with `like`, whose only
//! wildcard is `*`. Rule `i` becomes one `permit` whose condition tests
//! `context.action` (the request's action string) or, for hosts,
//! `context.target`, plus `context.amount < 100`:
//!
//! - exact: the action scope `action == Action::"tool:x<i>"`;
//! - `prefix*`, `*suffix`, inner `*`: `like`, which means the same;
//! - `?`: Cedar has no single-character wildcard; `like "q*x<i>"` stands
//!   for `q?x<i>` and matches more (an approximation);
//! - classes and alternations: not in Cedar; the members are listed, each
//!   an `==`, joined by `||` (the same meaning, written out);
//! - hosts: Cedar cannot ignore case; the caller lowercases the host
//!   before the request and the policy uses `like "*.h<i>.example.com"`.
//!
//! Scopes: agent `principal == User::"ag<i>"`, role `principal in
//! Role::"r<i>"`, tier `principal in Tier::"<tier>"` (the entity store
//! makes the request's principal a member of its role or tier), tag
//! `context.tags.contains("t<i>")`.
//!
//! "Grouped" is the best a caller can do by hand: each policy filed under
//! the number in its pattern, and each request sent with only the group of
//! the last run of digits in its target or action (an empty set for none,
//! so Cedar still denies by default). It relies on knowing the workload,
//! as `src/peers.rs`'s grouping by prefix does.

use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;

use writ_bench::shapes::{AMOUNT, Probe, Scope, Shape, TIERS, Workload};

/// How Cedar writes a shape, for the tables.
pub fn how(shape: Shape) -> &'static str {
    match shape {
        Shape::Exact => "the action scope, `action == Action::\"tool:x<i>\"`",
        Shape::Prefix | Shape::Suffix | Shape::Inner => "`like`, the same meaning",
        Shape::Question => "approximated: no `?` in Cedar, `like \"q*x<i>\"` (matches more)",
        Shape::Class => "emulated: no classes in Cedar, `== \"ac<i>\" || == \"bc<i>\"`",
        Shape::Alternation => {
            "emulated: no alternations in Cedar, `== \"get_<i>\" || == \"put_<i>\"`"
        }
        Shape::Host => {
            "emulated: Cedar cannot ignore case, the caller lowercases the host, then `like`"
        }
        Shape::Mix => "each rule as its shape above",
    }
}

/// The Cedar text of rule `i` of `w`.
fn policy_text(w: &Workload, i: usize) -> String {
    let shape = w.shape.of_rule(w.n, i);
    let principal = match w.scope {
        Scope::Any | Scope::Tag => "principal".to_owned(),
        Scope::Agent => format!("principal == User::\"ag{i}\""),
        Scope::Role => format!("principal in Role::\"r{i}\""),
        Scope::Tier => format!("principal in Tier::\"{}\"", TIERS[i % TIERS.len()]),
    };
    let (action, condition) = match shape {
        Shape::Exact => (format!("action == Action::\"tool:x{i}\""), None),
        Shape::Prefix | Shape::Suffix | Shape::Inner | Shape::Mix => (
            "action".to_owned(),
            Some(format!("context.action like \"{}\"", shape.pattern(i))),
        ),
        Shape::Question => (
            "action".to_owned(),
            Some(format!("context.action like \"q*x{i}\"")),
        ),
        Shape::Class => (
            "action".to_owned(),
            Some(format!(
                "(context.action == \"ac{i}\" || context.action == \"bc{i}\")"
            )),
        ),
        Shape::Alternation => (
            "action".to_owned(),
            Some(format!(
                "(context.action == \"get_{i}\" || context.action == \"put_{i}\")"
            )),
        ),
        Shape::Host => (
            "action == Action::\"net:connect\"".to_owned(),
            Some(format!("context.target like \"{}\"", shape.pattern(i))),
        ),
    };
    let mut when: Vec<String> = condition.into_iter().collect();
    if w.scope == Scope::Tag {
        when.push(format!("context.tags.contains(\"t{i}\")"));
    }
    when.push("context.amount < 100".to_owned());
    format!(
        "permit({principal}, {action}, resource) when {{ {} }};\n",
        when.join(" && ")
    )
}

/// The number a grouping caller files a request under: the last run of
/// digits in its target, or else its action.
fn group_of(probe: &Probe) -> Option<usize> {
    let text = probe.target.as_deref().unwrap_or(&probe.action);
    let end = text.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = text[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |k| k + 1);
    text[start..end].parse().ok()
}

/// A Cedar caller set up for one workload.
pub struct Cedar {
    authorizer: cedar_policy::Authorizer,
    entities: cedar_policy::Entities,
    whole: cedar_policy::PolicySet,
    groups: HashMap<usize, cedar_policy::PolicySet>,
    empty: cedar_policy::PolicySet,
}

impl std::fmt::Debug for Cedar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cedar").finish_non_exhaustive()
    }
}

fn uid(kind: &str, id: &str) -> cedar_policy::EntityUid {
    cedar_policy::EntityUid::from_type_name_and_id(
        cedar_policy::EntityTypeName::from_str(kind).expect("a Cedar type name"),
        cedar_policy::EntityId::new(id),
    )
}

impl Cedar {
    /// Parses the workload's policies, whole and grouped, and the entity
    /// store of its requests' principal; checks that the hit is allowed and
    /// the miss denied both ways.
    pub fn new(w: &Workload) -> Cedar {
        let mut text = String::with_capacity(w.n * 120);
        let mut groups = HashMap::with_capacity(w.n);
        for i in 0..w.n {
            let one = policy_text(w, i);
            text.push_str(&one);
            let policy = cedar_policy::Policy::parse(
                Some(cedar_policy::PolicyId::new(format!("r{i}"))),
                one,
            )
            .expect("a Cedar policy parses");
            groups.insert(
                i,
                cedar_policy::PolicySet::from_policies([policy]).expect("a Cedar policy set"),
            );
        }
        let whole = cedar_policy::PolicySet::from_str(&text).expect("the Cedar policies parse");
        let hit = w.hit();
        let principal = uid("User", &hit.agent);
        let mut parents = HashSet::new();
        let mut entities = Vec::new();
        if w.scope == Scope::Role {
            parents.extend(hit.roles.iter().map(|r| uid("Role", r)));
        }
        if w.scope == Scope::Tier {
            let tier = TIERS[w.n.saturating_sub(1) % TIERS.len()];
            parents.insert(uid("Tier", tier));
        }
        for parent in &parents {
            entities.push(cedar_policy::Entity::new_no_attrs(
                parent.clone(),
                HashSet::new(),
            ));
        }
        entities.push(cedar_policy::Entity::new_no_attrs(principal, parents));
        let cedar = Cedar {
            authorizer: cedar_policy::Authorizer::new(),
            entities: cedar_policy::Entities::from_entities(entities, None)
                .expect("Cedar entities"),
            whole,
            groups,
            empty: cedar_policy::PolicySet::new(),
        };
        let miss = w.miss();
        for grouped in [false, true] {
            assert!(
                cedar.decide(&hit, grouped),
                "cedar ({}, {}, grouped {grouped}): the hit must be allowed",
                w.shape.name(),
                w.scope.name()
            );
            assert!(
                !cedar.decide(&miss, grouped),
                "cedar ({}, {}, grouped {grouped}): the miss must be denied",
                w.shape.name(),
                w.scope.name()
            );
        }
        cedar
    }

    /// One decision as a caller makes it: the request built from the
    /// probe (uids, a context with the action, the lowercased target, the
    /// amount and the tags), then `is_authorized` against the whole set,
    /// or the group the request's number picks.
    pub fn decide(&self, probe: &Probe, grouped: bool) -> bool {
        use cedar_policy::{Context, RestrictedExpression as E};
        let policies = if grouped {
            group_of(probe)
                .and_then(|g| self.groups.get(&g))
                .unwrap_or(&self.empty)
        } else {
            &self.whole
        };
        let target = probe
            .target
            .as_deref()
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let context = Context::from_pairs([
            ("action".to_owned(), E::new_string(probe.action.clone())),
            ("target".to_owned(), E::new_string(target)),
            ("amount".to_owned(), E::new_long(AMOUNT)),
            (
                "tags".to_owned(),
                E::new_set(probe.tags.iter().map(|t| E::new_string(t.clone()))),
            ),
        ])
        .expect("a Cedar context");
        let request = cedar_policy::Request::new(
            uid("User", &probe.agent),
            uid("Action", &probe.action),
            uid("Tool", "any"),
            context,
            None,
        )
        .expect("a Cedar request");
        self.authorizer
            .is_authorized(&request, policies, &self.entities)
            .decision()
            == cedar_policy::Decision::Allow
    }
}
