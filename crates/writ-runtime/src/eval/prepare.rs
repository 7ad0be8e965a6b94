//! The loader: a bundle body prepared for deciding. Settings and agents
//! are decoded at load; rule records are scanned at load and decoded on
//! first use into prepared rules (matchers built, conditions as code).

use super::*;

pub(super) struct PList {
    pub(super) key: String,
    pub(super) matchers: Vec<Matcher>,
}

#[derive(Default)]
pub(super) struct PAccess {
    pub(super) allow: Option<PList>,
    pub(super) block: Option<PList>,
}

pub(super) struct PLimit {
    /// The agent entry's name and the limit's identity in it, hashed once.
    pub(super) scope: LimitScope,
    /// The limit's key, for reasons.
    pub(super) key: String,
    pub(super) metric: Metric,
    pub(super) rate: Rate,
    pub(super) actions: Option<Matcher>,
}

pub(super) struct PAgent {
    pub(super) subject: Subject,
    pub(super) name: String,
    pub(super) policy: u32,
    pub(super) roles: Vec<String>,
    pub(super) tier: Option<Tier>,
    pub(super) tags: Vec<String>,
    pub(super) token_prefix: Option<String>,
    pub(super) models: PAccess,
    pub(super) tools: PAccess,
    pub(super) hosts: PAccess,
    pub(super) require_tls: bool,
    pub(super) limits: Vec<PLimit>,
    pub(super) delegates: Vec<String>,
}

impl PAgent {
    /// Whether the entry bounds what its principals do: an entry with only
    /// a tier, tags, roles or a token prefix describes them, and bounds
    /// nothing.
    pub(super) fn bounds(&self) -> bool {
        let listed = |a: &PAccess| a.allow.is_some() || a.block.is_some();
        listed(&self.models)
            || listed(&self.tools)
            || listed(&self.hosts)
            || self.require_tls
            || !self.limits.is_empty()
            || !self.delegates.is_empty()
    }
}

/// A rule's place in the load's table of target patterns when the index
/// cannot hold them all.
const NO_TARGETS: u32 = u32::MAX;

pub(super) enum PAtom {
    Compare {
        field: Field,
        op: CompareOp,
        value: Value,
    },
    In {
        field: Field,
        values: Vec<Value>,
        negated: bool,
    },
    Glob {
        field: Field,
        matcher: Matcher,
    },
    Contains {
        field: Field,
        value: Value,
    },
    Exists {
        field: Field,
    },
    Time {
        start: u32,
        end: u32,
    },
    Weekdays {
        mask: u8,
    },
}

pub(super) struct PCond {
    pub(super) atoms: Vec<PAtom>,
    pub(super) code: Vec<Op>,
}

pub(super) struct PRule {
    pub(super) name: String,
    pub(super) policy: u32,
    pub(super) effect: Effect,
    pub(super) risk: Option<Risk>,
    pub(super) targets: Vec<Matcher>,
    pub(super) scope: crate::model::Scope,
    pub(super) condition: Option<PCond>,
    pub(super) constraints: Vec<crate::model::Constraint>,
    /// The rule's limit and its scope (the rule's name; shared by all
    /// agents or counted per agent), hashed once.
    pub(super) limit: Option<(Rate, LimitScope)>,
    pub(super) reason: Option<String>,
}

/// What names an agent entry's limit in a store, beside the entry's name:
/// whether the entry is an agent's or a role's (they may share a name),
/// the limit's place in the entry and what it counts, so that every limit
/// has a window of its own.
pub(super) fn limit_id(subject: Subject, index: usize, l: &crate::model::AgentLimit) -> String {
    let actions = l.actions.as_ref().map_or("", |p| match p {
        crate::model::Pattern::Exact(s)
        | crate::model::Pattern::Prefix(s)
        | crate::model::Pattern::Suffix(s) => s.as_str(),
        crate::model::Pattern::Glob(g) => g.text.as_str(),
        crate::model::Pattern::Any => "*",
    });
    format!(
        "{}/{index}/{}/{}/{}:{}/{actions}",
        subject.to_byte(),
        l.key,
        l.metric.to_byte(),
        l.rate.count,
        l.rate.unit.to_byte()
    )
}

/// A rule as prepared on first use, or why its record could not be read.
pub(super) type Prepared = Result<PRule, String>;

/// Decodes the rule record at `offset` of `body` and prepares it.
pub(super) fn prepare(
    body: &[u8],
    strings: Strings<'_>,
    conditions: &[u32],
    offset: u32,
) -> Result<PRule, LoadError> {
    let mut r = Reader::with_strings(body, strings);
    r.seek(offset as usize)?;
    let rule = r_rule(&mut r, |i| {
        let at = conditions
            .get(i as usize)
            .ok_or_else(|| LoadError::Corrupt(format!("rule refers to missing condition {i}")))?;
        let mut cr = Reader::with_strings(body, strings);
        cr.seek(*at as usize)?;
        r_condition(&mut cr)
    })?;
    let condition = match rule.condition {
        None => None,
        Some(c) => {
            let mut atoms = Vec::with_capacity(c.atoms.len());
            for a in c.atoms {
                atoms.push(match a {
                    Atom::Compare { field, op, value } => PAtom::Compare { field, op, value },
                    Atom::In {
                        field,
                        values,
                        negated,
                    } => PAtom::In {
                        field,
                        values,
                        negated,
                    },
                    Atom::Glob { field, pattern, .. } => PAtom::Glob {
                        field,
                        matcher: Matcher::new(pattern),
                    },
                    Atom::Contains { field, value } => PAtom::Contains { field, value },
                    Atom::Exists { field } => PAtom::Exists { field },
                    Atom::Time { start, end } => PAtom::Time { start, end },
                    Atom::Weekdays { mask } => PAtom::Weekdays { mask },
                });
            }
            Some(PCond {
                atoms,
                code: c.code,
            })
        }
    };
    let limit = rule.limit.map(|rate| {
        let kind = if rule.limit_shared {
            LimitKind::RuleShared
        } else {
            LimitKind::Rule
        };
        (rate, LimitScope::new(kind, &rule.name, ""))
    });
    Ok(PRule {
        name: rule.name,
        policy: rule.policy,
        effect: rule.effect,
        risk: rule.risk,
        targets: matchers(rule.targets),
        scope: rule.scope,
        condition,
        constraints: rule.constraints,
        limit,
        reason: rule.reason,
    })
}

pub(super) fn matchers(ps: Vec<crate::model::Pattern>) -> Vec<Matcher> {
    ps.into_iter().map(Matcher::new).collect()
}

pub(super) fn plist(l: Option<crate::model::NamedList>) -> Result<Option<PList>, LoadError> {
    l.map(|l| {
        Ok(PList {
            key: l.key,
            matchers: matchers(l.patterns),
        })
    })
    .transpose()
}

pub(super) fn paccess(a: crate::model::AccessList) -> Result<PAccess, LoadError> {
    Ok(PAccess {
        allow: plist(a.allow)?,
        block: plist(a.block)?,
    })
}

impl Compiled {
    /// Prepares a bundle body. Settings and agents are decoded; every rule
    /// record is scanned (checked in full, without allocating) and its
    /// action patterns indexed, but decoded only when a request first
    /// needs it. A record that fails the scan fails the load.
    pub fn new(bundle: Vec<u8>, body_range: std::ops::Range<usize>) -> Result<Compiled, LoadError> {
        let body = bundle
            .get(body_range.clone())
            .ok_or_else(|| LoadError::Corrupt("body out of range".to_owned()))?;
        let prelude = Prelude::read(body)?;
        let mut r = prelude.reader(body)?;
        let Head {
            policies,
            settings: s,
            agents: model_agents,
            ..
        } = Head::read(&mut r)?;
        let tz = if s.tzif.is_empty() {
            jiff::tz::TimeZone::UTC
        } else {
            jiff::tz::TimeZone::tzif(&s.timezone, &s.tzif)
                .map_err(|e| LoadError::Corrupt(format!("time zone `{}`: {e}", s.timezone)))?
        };
        let mut agents = Vec::with_capacity(model_agents.len());
        let mut agents_by_name: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        let mut roles_by_name: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        let mut everyone = Vec::new();
        let mut has_token_prefix = false;
        for (i, a) in model_agents.into_iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            match a.subject {
                Subject::Agent => agents_by_name.entry(a.name.clone()).or_default().push(id),
                Subject::Role => roles_by_name.entry(a.name.clone()).or_default().push(id),
                Subject::Everyone => everyone.push(id),
            }
            has_token_prefix |= a.token_prefix.is_some();
            let limits = a
                .limits
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    Ok(PLimit {
                        scope: LimitScope::new(
                            LimitKind::Agent,
                            &a.name,
                            &limit_id(a.subject, i, &l),
                        ),
                        key: l.key.clone(),
                        metric: l.metric,
                        rate: l.rate,
                        actions: l.actions.map(Matcher::new),
                    })
                })
                .collect::<Result<_, LoadError>>()?;
            agents.push(PAgent {
                subject: a.subject,
                name: a.name,
                policy: a.policy,
                roles: a.roles,
                tier: a.tier,
                tags: a.tags,
                token_prefix: a.token_prefix,
                models: paccess(a.models)?,
                tools: paccess(a.tools)?,
                hosts: paccess(a.hosts)?,
                require_tls: a.require_tls.unwrap_or(false),
                limits,
                delegates: a.delegates,
            });
        }
        let policy_count = u32::try_from(policies.len()).unwrap_or(u32::MAX);
        // The condition table: each condition checked once, decoded with
        // the first rule that needs it.
        let condition_count = r.count(2)?;
        let mut condition_offsets = Vec::with_capacity(condition_count);
        let mut condition_flags = Vec::with_capacity(condition_count);
        for _ in 0..condition_count {
            condition_offsets.push(
                u32::try_from(r.position())
                    .map_err(|_| LoadError::Corrupt("bundle too large".to_owned()))?,
            );
            condition_flags.push(scan_condition_entry(&mut r)?);
        }
        let rule_count = r.count(crate::model::MIN_RULE_SIZE)?;
        // The index hands out rule numbers shifted left by one
        // (`matcher::TARGET_PROVEN`); a bundle under 4 GiB has fewer.
        if rule_count >= 1 << 30 {
            return Err(LoadError::Corrupt("bundle too large".to_owned()));
        }
        let mut index = ActionIndex::default();
        index.plan(rule_count);
        let mut needs_clock = false;
        let mut offsets = Vec::with_capacity(rule_count);
        // Each rule's agent and role names, and where they sit in `names`.
        // (Places and counts as u32, a bundle being smaller than 4 GiB:
        // the tables are read once for each rule while the index is built,
        // and smaller is faster to fill.)
        let mut names: Vec<Span> = Vec::with_capacity(rule_count);
        let mut scope_at: Vec<(u32, u32, u32)> = Vec::with_capacity(rule_count);
        // Each rule's target patterns (when the index can hold them all),
        // and where they sit in `targets` (`NO_TARGETS` for none).
        let mut targets: Vec<crate::model::PatternRef> = Vec::with_capacity(rule_count);
        let mut target_at: Vec<(u32, u32)> = Vec::with_capacity(rule_count);
        let small = |n: usize| {
            u32::try_from(n).map_err(|_| LoadError::Corrupt("bundle too large".to_owned()))
        };
        // Reads a glob's program for the index.
        let programs = r.clone();
        for i in 0..rule_count {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            offsets.push(
                u32::try_from(r.position())
                    .map_err(|_| LoadError::Corrupt("bundle too large".to_owned()))?,
            );
            let first = names.len();
            let first_target = targets.len();
            let scan = scan_rule(
                &mut r,
                policy_count,
                &condition_flags,
                |p, at| index.add(p, id, body, at),
                &mut names,
                &mut targets,
            )?;
            target_at.push(match scan.indexed_targets {
                Some(n) => (small(first_target)?, small(n)?),
                None => (0, NO_TARGETS),
            });
            needs_clock |= scan.has_clock;
            scope_at.push((small(first)?, small(scan.agents)?, small(scan.roles)?));
        }
        r_graph(&mut r)?;
        let ceiling_actions = r_ceiling_actions(&mut r)?
            .into_iter()
            .map(|l| PList {
                key: l.key,
                matchers: matchers(l.patterns),
            })
            .collect();
        r.finish()?;
        let scopes = |rule: u32| {
            let targets = target_at
                .get(rule as usize)
                .filter(|(_, n)| *n != NO_TARGETS)
                .and_then(|&(from, n)| targets.get(from as usize..(from as usize + n as usize)));
            let Some(&(first, agents, roles)) = scope_at.get(rule as usize) else {
                return Narrowing {
                    scope: ScopeKey::Open,
                    targets,
                };
            };
            let (first, agents, roles) = (first as usize, agents as usize, roles as usize);
            let at = |from: usize, n: usize| names.get(from..from + n).unwrap_or(&[]);
            let scope = if agents > 0 {
                ScopeKey::Agents(at(first, agents))
            } else if roles > 0 {
                ScopeKey::Roles(at(first + agents, roles))
            } else {
                ScopeKey::Open
            };
            Narrowing { scope, targets }
        };
        index.finish(body, &scopes, &programs);
        let prepared: Box<[OnceLock<Box<Prepared>>]> =
            (0..rule_count).map(|_| OnceLock::new()).collect();
        let bounded = agents.iter().any(PAgent::bounds);
        Ok(Compiled {
            policies,
            combining: s.combining,
            default_effect: s.default_effect,
            default_risk: s.default_risk,
            default_reason: s.default_reason,
            default_policy: s.default_policy,
            tz,
            needs_clock,
            max_depth: s.max_delegation_depth,
            ceiling_strict: s.ceiling_strict,
            ceiling_actions,
            agents,
            bounded,
            agents_by_name,
            roles_by_name,
            everyone,
            has_token_prefix,
            strings_at: prelude.strings_at,
            string_ends: prelude.ends.into_boxed_slice(),
            bundle,
            body_range,
            offsets: offsets.into_boxed_slice(),
            condition_offsets: condition_offsets.into_boxed_slice(),
            prepared,
            index,
            limits: std::sync::Arc::new(InProcess::new()),
            on_store_failure: OnStoreFailure::Deny,
        })
    }

    /// A rule, decoded and prepared on first use. The load scanned its
    /// record, so this fails only if the scanner and the decoder disagree;
    /// callers deny then.
    #[inline]
    pub(super) fn rule(&self, i: u32) -> Result<&PRule, &str> {
        let Some(cell) = self.prepared.get(i as usize) else {
            return Err("no such rule");
        };
        let prepared = match cell.get() {
            Some(p) => p,
            None => cell.get_or_init(|| Box::new(self.prepare(i))),
        };
        match &**prepared {
            Ok(rule) => Ok(rule),
            Err(why) => Err(why),
        }
    }

    /// Decodes and prepares rule `i` (the slow path of [`Compiled::rule`]).
    #[cold]
    pub(super) fn prepare(&self, i: u32) -> Prepared {
        let offset = self
            .offsets
            .get(i as usize)
            .ok_or_else(|| "no such rule".to_owned())?;
        // (Without the table's text: checking the whole table to decode one
        // rule would cost more than checking the rule's strings.)
        let strings = Strings {
            at: self.strings_at,
            ends: &self.string_ends,
            text: None,
        };
        prepare(self.body(), strings, &self.condition_offsets, *offset).map_err(|e| e.to_string())
    }

    /// Decodes and prepares every rule now rather than on first use.
    pub fn prepare_all(&self) -> Result<(), LoadError> {
        for i in 0..self.offsets.len() {
            self.rule(u32::try_from(i).unwrap_or(u32::MAX))
                .map_err(|why| LoadError::Corrupt(format!("rule {i}: {why}")))?;
        }
        Ok(())
    }

    /// The bundle body.
    #[inline]
    pub(super) fn body(&self) -> &[u8] {
        self.bundle.get(self.body_range.clone()).unwrap_or(&[])
    }

    pub fn rule_count(&self) -> usize {
        self.offsets.len()
    }

    pub(super) fn policy_name(&self, id: u32) -> Option<&str> {
        self.policies.get(id as usize).map(String::as_str)
    }
}
