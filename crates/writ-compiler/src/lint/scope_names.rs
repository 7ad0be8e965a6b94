//! W0108: a name in a rule's scope (`for agents`, `for roles`, `for tags`,
//! MeshGuard's `appliesTo`) that nothing declares but that is a misspelling
//! of one that is, or that is declared as the other kind (an agent in a
//! roles list, a role in an agents list).
//!
//! A scope may rightly name what no policy declares: requests carry agents,
//! roles and tags of their own, and another policy file may declare them.
//! So an undeclared name alone is not reported, and nor is any name when
//! nothing of its kind is declared. Only a name one edit (two in long
//! names) away from a declared one of its kind is, since a scope that
//! misses its agent by a letter silently stops applying: the rule never
//! decides for anyone. Tiers are a closed set and checked when read.

use std::collections::HashSet;

use writ_diagnostics::{Code, Diagnostic, Span, typo_of};
use writ_ir::{PolicySet, Spanned, Subject};

/// The names declared of each kind.
struct Declared<'s> {
    agents: Vec<&'s str>,
    roles: Vec<&'s str>,
    tags: Vec<&'s str>,
}

impl<'s> Declared<'s> {
    fn of(set: &'s PolicySet) -> Declared<'s> {
        let mut d = Declared {
            agents: Vec::new(),
            roles: Vec::new(),
            tags: Vec::new(),
        };
        for a in &set.agents {
            match a.subject {
                Subject::Agent => d.agents.push(&a.name.value),
                Subject::Role => d.roles.push(&a.name.value),
                Subject::Everyone => {}
            }
            d.roles.extend(a.roles.iter().map(|r| r.value.as_str()));
            d.tags.extend(a.tags.iter().map(|t| t.value.as_str()));
        }
        for v in [&mut d.agents, &mut d.roles, &mut d.tags] {
            v.sort_unstable();
            v.dedup();
        }
        d
    }
}

/// A kind of name a scope lists.
#[derive(Clone, Copy)]
enum Kind {
    Agent,
    Role,
    Tag,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Role => "role",
            Kind::Tag => "tag",
        }
    }

    fn declarer(self) -> &'static str {
        match self {
            Kind::Agent => "no agent entry",
            Kind::Role => "no agent or role entry",
            Kind::Tag => "no agent entry's `tags` list",
        }
    }
}

/// W0108 for every scope name that looks misspelled, once per place in
/// the text (a MeshGuard `appliesTo` is every rule's scope).
pub(super) fn check(set: &PolicySet, out: &mut Vec<Diagnostic>) {
    let declared = Declared::of(set);
    let mut seen: HashSet<Span> = HashSet::new();
    for rule in &set.rules {
        let lists: [(&[Spanned<String>], Kind); 3] = [
            (&rule.scope.agents, Kind::Agent),
            (&rule.scope.roles, Kind::Role),
            (&rule.scope.tags, Kind::Tag),
        ];
        for (names, kind) in lists {
            for name in names {
                if !seen.insert(name.span) {
                    continue;
                }
                if let Some(d) = finding(&declared, kind, name) {
                    out.push(d);
                }
            }
        }
    }
}

fn finding(declared: &Declared<'_>, kind: Kind, name: &Spanned<String>) -> Option<Diagnostic> {
    let n = name.value.as_str();
    let (same, other, other_kind) = match kind {
        Kind::Agent => (&declared.agents, Some(&declared.roles), Kind::Role),
        Kind::Role => (&declared.roles, Some(&declared.agents), Kind::Agent),
        Kind::Tag => (&declared.tags, None, Kind::Tag),
    };
    // Sorted and deduplicated (`Declared::of`).
    if same.binary_search(&n).is_ok() {
        return None;
    }
    let noun = kind.noun();
    if let Some(other) = other
        && other.binary_search(&n).is_ok()
    {
        let list = format!("{}s", other_kind.noun());
        return Some(
            Diagnostic::new(
                Code::UndeclaredScopeName,
                name.span,
                format!(
                    "the scope lists `{n}` among its {noun}s, but `{n}` is declared as {} {}",
                    if matches!(other_kind, Kind::Agent) {
                        "an"
                    } else {
                        "a"
                    },
                    other_kind.noun()
                ),
            )
            .with_label_message(format!("no {noun} `{n}` is declared"))
            .with_help(format!(
                "move it to the {list} list (`for {list} [{n}]`), or declare the {noun}"
            )),
        );
    }
    let near = typo_of(n, same.iter().copied())?;
    Some(
        Diagnostic::new(
            Code::UndeclaredScopeName,
            name.span,
            format!(
                "the scope names {noun} `{n}`, which {} declares",
                kind.declarer()
            ),
        )
        .with_label_message(format!("{noun} `{near}` is declared"))
        .with_help(match kind {
            Kind::Agent => format!(
                "did you mean `{near}`? as written, the rule applies only to requests from an agent named `{n}`"
            ),
            Kind::Role | Kind::Tag => format!(
                "did you mean `{near}`? as written, the rule applies only to agents whose requests carry the {noun} `{n}`"
            ),
        }),
    )
}
