//! One lowered file ([`PolicyFile`]) and the merge of several into a [`PolicySet`].
//!
//! Files are merged in the order given: the rules of the first file come
//! first, and each setting (combining algorithm, default decision, default
//! risk, time zone) comes from the first file that declares it; a later file
//! declaring another value gets a warning (W0101). Rule names are unique
//! across the set (E0301); names writ generates for unnamed rules are made
//! unique by a numeric suffix.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use writ_diagnostics::{Code, Diagnostic, Span};

use crate::{
    Agent, AgentId, Ceiling, Combining, Effect, NamedList, Policy, PolicyId, PolicySet, Risk, Rule,
    RuleId, Setting, Settings, Spanned, Subject, Timezone,
};

/// Settings as one file declares them; `None` where it is silent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartialSettings {
    pub combining: Option<Spanned<Combining>>,
    pub default_effect: Option<Spanned<Effect>>,
    pub default_risk: Option<Spanned<Risk>>,
    pub default_reason: Option<Spanned<String>>,
    pub timezone: Option<Spanned<Timezone>>,
    pub max_delegation_depth: Option<Spanned<u32>>,
    pub ceiling: Option<Spanned<Ceiling>>,
    /// Action ceilings for delegated requests; unlike the other settings,
    /// those of every file apply together.
    pub ceiling_actions: Vec<NamedList>,
    pub entry_agents: Option<Spanned<Vec<Spanned<String>>>>,
}

/// What a front end produces for one source file. Ids inside are local to
/// the file and renumbered by [`merge`].
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyFile {
    pub policy: Policy,
    pub settings: PartialSettings,
    pub agents: Vec<Agent>,
    pub rules: Vec<Rule>,
}

fn take<T: Clone + PartialEq>(
    slot: &mut Option<Spanned<T>>,
    incoming: Option<&Spanned<T>>,
    what: &str,
    show: impl Fn(&T) -> String,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(incoming) = incoming else { return };
    match slot {
        None => *slot = Some(incoming.clone()),
        Some(first) if first.value != incoming.value => diags.push(
            Diagnostic::new(
                Code::IgnoredDefaults,
                incoming.span,
                format!("{what} `{}` is ignored: an earlier file sets it to `{}`", show(&incoming.value), show(&first.value)),
            )
            .with_secondary(first.span, "the value in force is set here")
            .with_help("the first file that declares a setting provides it; remove this one or reorder the files"),
        ),
        Some(_) => {}
    }
}

/// Merges files in order into one policy set.
#[must_use]
pub fn merge(files: Vec<PolicyFile>) -> (PolicySet, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut acc = PartialSettings::default();
    for f in &files {
        let s = &f.settings;
        take(
            &mut acc.combining,
            s.combining.as_ref(),
            "combining algorithm",
            |v| v.to_string(),
            &mut diags,
        );
        take(
            &mut acc.default_effect,
            s.default_effect.as_ref(),
            "default decision",
            |v| v.to_string(),
            &mut diags,
        );
        take(
            &mut acc.default_risk,
            s.default_risk.as_ref(),
            "default risk",
            |v| v.to_string(),
            &mut diags,
        );
        take(
            &mut acc.default_reason,
            s.default_reason.as_ref(),
            "default reason",
            Clone::clone,
            &mut diags,
        );
        take(
            &mut acc.timezone,
            s.timezone.as_ref(),
            "time zone",
            |v| v.name.clone(),
            &mut diags,
        );
        take(
            &mut acc.max_delegation_depth,
            s.max_delegation_depth.as_ref(),
            "maximum delegation depth",
            u32::to_string,
            &mut diags,
        );
        take(
            &mut acc.ceiling,
            s.ceiling.as_ref(),
            "permission ceiling",
            |v| v.to_string(),
            &mut diags,
        );
        acc.ceiling_actions
            .extend(s.ceiling_actions.iter().cloned());
        take(
            &mut acc.entry_agents,
            s.entry_agents.as_ref(),
            "entry agents",
            |v| {
                v.iter()
                    .map(|a| a.value.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            &mut diags,
        );
    }
    let defaults = Settings::default();
    let settings = Settings {
        combining: acc.combining.map_or(defaults.combining, |s| Setting {
            value: s.value,
            span: Some(s.span),
        }),
        default_effect: acc
            .default_effect
            .map_or(defaults.default_effect, |s| Setting {
                value: s.value,
                span: Some(s.span),
            }),
        default_risk: acc.default_risk,
        default_reason: acc.default_reason,
        timezone: acc.timezone.map_or(defaults.timezone, |s| Setting {
            value: s.value,
            span: Some(s.span),
        }),
        max_delegation_depth: acc.max_delegation_depth,
        ceiling: acc.ceiling.map_or(defaults.ceiling, |s| Setting {
            value: s.value,
            span: Some(s.span),
        }),
        ceiling_actions: acc.ceiling_actions,
        entry_agents: acc.entry_agents,
    };

    let mut set = PolicySet {
        settings,
        ..PolicySet::default()
    };
    // Names a generated name must avoid (only needed when there is one).
    let generated = files
        .iter()
        .flat_map(|f| f.rules.iter())
        .any(|r| r.generated_name);
    let explicit: HashSet<String> = files
        .iter()
        .flat_map(|f| f.rules.iter())
        .filter(|r| generated && !r.generated_name)
        .map(|r| r.name.value.clone())
        .collect();
    let rules = files.iter().map(|f| f.rules.len()).sum();
    // Room for exactly every rule: a growing vector of 100,000 rules would
    // keep room for 131,072 and copy them on the way.
    set.rules.reserve_exact(rules);
    let mut seen_rules: HashMap<String, Span> =
        HashMap::with_capacity_and_hasher(rules, rustc_hash::FxBuildHasher);
    let mut generated_counts: HashMap<String, u32> = HashMap::default();
    let mut seen_agents: HashMap<(String, bool), Span> = HashMap::default();

    for (pi, file) in files.into_iter().enumerate() {
        let pid = PolicyId(u32::try_from(pi).unwrap_or(u32::MAX));
        let mut policy = file.policy;
        policy.id = pid;
        set.policies.push(policy);
        for mut agent in file.agents {
            agent.id = AgentId(u32::try_from(set.agents.len()).unwrap_or(u32::MAX));
            agent.policy = pid;
            let key = (agent.name.value.clone(), agent.subject == Subject::Role);
            if agent.subject != Subject::Everyone {
                if let Some(first) = seen_agents.get(&key) {
                    let kind = if key.1 { "role" } else { "agent" };
                    diags.push(
                        Diagnostic::new(
                            Code::DuplicateAgent,
                            agent.name.span,
                            format!("{kind} `{}` is declared twice", key.0),
                        )
                        .with_secondary(*first, "first declared here")
                        .with_help("declare each agent once; merge the two entries"),
                    );
                    continue;
                }
                seen_agents.insert(key, agent.name.span);
            }
            set.agents.push(agent);
        }
        for mut rule in file.rules {
            rule.id = RuleId(u32::try_from(set.rules.len()).unwrap_or(u32::MAX));
            rule.policy = pid;
            if rule.generated_name {
                let base = rule.name.value.clone();
                let mut n = generated_counts.get(&base).copied().unwrap_or(0);
                let mut candidate = base.clone();
                loop {
                    n += 1;
                    if n > 1 {
                        candidate = format!("{base}_{n}");
                    }
                    if !explicit.contains(&candidate) && !seen_rules.contains_key(&candidate) {
                        break;
                    }
                }
                generated_counts.insert(base, n);
                rule.name.value = candidate;
            } else if let Some(first) = seen_rules.get(&rule.name.value) {
                diags.push(
                    Diagnostic::new(
                        Code::DuplicateRuleName,
                        rule.name.span,
                        format!("rule name `{}` is used twice", rule.name.value),
                    )
                    .with_secondary(*first, "first used here")
                    .with_help("rule names identify decisions in audit logs and tests; give this rule another name"),
                );
            }
            seen_rules
                .entry(rule.name.value.clone())
                .or_insert(rule.name.span);
            if let Some(limit) = rule
                .limit
                .as_ref()
                .filter(|_| rule.effect.value != Effect::Allow)
            {
                diags.push(
                    Diagnostic::new(
                        Code::LimitNeverCounts,
                        limit.span,
                        format!(
                            "`limit` on a rule that decides `{}` counts nothing: only allowed decisions are counted",
                            rule.effect.value
                        ),
                    )
                    .with_secondary(rule.effect.span, "this rule never allows")
                    .with_help("remove the limit, or put it on the `allow` rule whose use it should bound"),
                );
            }
            set.rules.push(rule);
        }
    }
    (set, diags)
}
