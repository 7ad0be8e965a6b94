//! What a bundle holds, and its byte encoding.
//!
//! The compiler builds a [`Model`] from the IR and calls [`Model::encode`];
//! the runtime decodes it (checking everything) and prepares the lookup
//! structures. The encoding lives here, in one place, so the two sides
//! cannot disagree.

use crate::LoadError;
use crate::wire::{Reader, Writer};

/// A value in a condition or a request context.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Map(std::collections::BTreeMap<String, Value>),
}

impl Value {
    /// Equality as policies mean it (numbers numerically, no cross-kind).
    #[must_use]
    pub fn loosely_equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => a == b,
            (a, b) => a == b,
        }
    }

    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// One glob, classified by the compiler. Exact names, prefixes, suffixes
/// and `*` are matched without any automaton; everything else carries a
/// serialized dense DFA (regex-automata) built from the glob.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Any,
    /// The glob's text (for messages) and its DFA's bytes.
    Dfa {
        text: String,
        dfa: Vec<u8>,
    },
}

/// What a comparison reads: the target, or a context path.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Target,
    Context(Vec<String>),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Target => f.write_str("target"),
            Field::Context(p) => f.write_str(&p.join(".")),
        }
    }
}

/// A leaf of a condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Atom {
    /// `op`: 0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >=.
    Compare {
        field: Field,
        op: u8,
        value: Value,
    },
    In {
        field: Field,
        values: Vec<Value>,
        negated: bool,
    },
    Glob {
        field: Field,
        pattern: Pattern,
        case_insensitive: bool,
    },
    Contains {
        field: Field,
        value: Value,
    },
    Exists {
        field: Field,
    },
    /// Seconds since midnight, half-open, may wrap.
    Time {
        start: u32,
        end: u32,
    },
    /// Bit `i` set for weekday `i` (Monday = 0).
    Weekdays {
        mask: u8,
    },
}

/// Postfix condition code: atoms push a truth value, the others combine
/// the top of the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Atom(u32),
    /// Pops `n` values, pushes their conjunction (`n` = 0 pushes true).
    All(u32),
    /// Pops `n` values, pushes their disjunction (`n` = 0 pushes false).
    Any(u32),
    Not,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub atoms: Vec<Atom>,
    pub code: Vec<Op>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NamedList {
    pub key: String,
    pub patterns: Vec<Pattern>,
    pub case_insensitive: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct AccessList {
    pub allow: Option<NamedList>,
    pub block: Option<NamedList>,
}

/// A sliding-window rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    /// 0 second, 1 minute, 2 hour, 3 day.
    pub unit: u8,
}

impl Rate {
    #[must_use]
    pub fn seconds(self) -> u64 {
        match self.unit {
            0 => 1,
            1 => 60,
            2 => 3600,
            _ => 86_400,
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.unit {
            0 => "second",
            1 => "minute",
            2 => "hour",
            _ => "day",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AgentLimit {
    pub key: String,
    /// 0 requests, 1 tokens.
    pub metric: u8,
    pub rate: Rate,
    pub actions: Option<Pattern>,
}

/// An agent (subject 0), role (1) or every-agent (2) entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    pub subject: u8,
    pub name: String,
    pub policy: u32,
    pub roles: Vec<String>,
    /// 0 untrusted .. 3 privileged.
    pub tier: Option<u8>,
    pub tags: Vec<String>,
    pub token_prefix: Option<String>,
    pub models: AccessList,
    pub tools: AccessList,
    pub hosts: AccessList,
    pub require_tls: Option<bool>,
    pub limits: Vec<AgentLimit>,
    pub delegates: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    pub name: String,
    pub field: Field,
    pub alternate: Option<Field>,
    pub values: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scope {
    pub agents: Vec<String>,
    pub roles: Vec<String>,
    pub tiers: Vec<u8>,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    pub policy: u32,
    /// 0 allow, 1 deny, 2 approve.
    pub effect: u8,
    /// 0 low .. 3 critical.
    pub risk: Option<u8>,
    pub actions: Vec<Pattern>,
    /// Empty: any target.
    pub targets: Vec<Pattern>,
    pub targets_case_insensitive: bool,
    pub scope: Scope,
    pub condition: Option<Condition>,
    pub constraints: Vec<Constraint>,
    pub limit: Option<Rate>,
    pub reason: Option<String>,
}

/// Policy-wide settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// 0 first-match, 1 deny-overrides.
    pub combining: u8,
    pub default_effect: u8,
    pub default_risk: Option<u8>,
    pub default_reason: Option<String>,
    pub timezone: String,
    /// The zone's TZif data (empty for UTC).
    pub tzif: Vec<u8>,
    pub max_delegation_depth: Option<u32>,
    pub ceiling_strict: bool,
}

/// A delegation edge of the policy's graph, by agent or role name.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: String,
}

/// Everything a bundle holds besides its header.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub writ_version: String,
    /// SHA-256 of the policy sources, in order.
    pub revision: [u8; 32],
    pub policies: Vec<String>,
    pub settings: Settings,
    pub agents: Vec<Agent>,
    pub rules: Vec<Rule>,
    pub graph: Vec<Edge>,
}

// ---------------------------------------------------------------------
// Encoding

fn w_value(w: &mut Writer, v: &Value) {
    match v {
        Value::Null => w.u8(0),
        Value::Bool(b) => {
            w.u8(1);
            w.bool(*b);
        }
        Value::Number(n) => {
            w.u8(2);
            w.f64(*n);
        }
        Value::String(s) => {
            w.u8(3);
            w.str(s);
        }
        Value::List(items) => {
            w.u8(4);
            w.vec(items, w_value);
        }
        Value::Map(m) => {
            w.u8(5);
            w.len(m.len());
            for (k, v) in m {
                w.str(k);
                w_value(w, v);
            }
        }
    }
}

/// Values nest at most this deep in a bundle.
const MAX_NESTING: u32 = 32;

fn r_value(r: &mut Reader<'_>, depth: u32) -> Result<Value, LoadError> {
    if depth > MAX_NESTING {
        return Err(LoadError::Corrupt("values nested too deep".to_owned()));
    }
    Ok(match r.u8()? {
        0 => Value::Null,
        1 => Value::Bool(r.bool()?),
        2 => Value::Number(r.f64()?),
        3 => Value::String(r.str()?),
        4 => Value::List(r.vec(1, |r| r_value(r, depth + 1))?),
        5 => {
            let n = r.count(5)?;
            let mut m = std::collections::BTreeMap::new();
            for _ in 0..n {
                let k = r.str()?;
                m.insert(k, r_value(r, depth + 1)?);
            }
            Value::Map(m)
        }
        t => return Err(LoadError::Corrupt(format!("unknown value tag {t}"))),
    })
}

fn w_pattern(w: &mut Writer, p: &Pattern) {
    match p {
        Pattern::Exact(s) => {
            w.u8(0);
            w.str(s);
        }
        Pattern::Prefix(s) => {
            w.u8(1);
            w.str(s);
        }
        Pattern::Suffix(s) => {
            w.u8(2);
            w.str(s);
        }
        Pattern::Any => w.u8(3),
        Pattern::Dfa { text, dfa } => {
            w.u8(4);
            w.str(text);
            w.bytes(dfa);
        }
    }
}

fn r_pattern(r: &mut Reader<'_>) -> Result<Pattern, LoadError> {
    Ok(match r.u8()? {
        0 => Pattern::Exact(r.str()?),
        1 => Pattern::Prefix(r.str()?),
        2 => Pattern::Suffix(r.str()?),
        3 => Pattern::Any,
        4 => Pattern::Dfa {
            text: r.str()?,
            dfa: r.bytes()?.to_vec(),
        },
        t => return Err(LoadError::Corrupt(format!("unknown pattern tag {t}"))),
    })
}

fn w_field(w: &mut Writer, f: &Field) {
    match f {
        Field::Target => w.u8(0),
        Field::Context(p) => {
            w.u8(1);
            w.strs(p);
        }
    }
}

fn r_field(r: &mut Reader<'_>) -> Result<Field, LoadError> {
    Ok(match r.u8()? {
        0 => Field::Target,
        1 => Field::Context(r.strs()?),
        t => return Err(LoadError::Corrupt(format!("unknown field tag {t}"))),
    })
}

fn w_condition(w: &mut Writer, c: &Condition) {
    w.vec(&c.atoms, |w, a| match a {
        Atom::Compare { field, op, value } => {
            w.u8(0);
            w_field(w, field);
            w.u8(*op);
            w_value(w, value);
        }
        Atom::In {
            field,
            values,
            negated,
        } => {
            w.u8(1);
            w_field(w, field);
            w.vec(values, w_value);
            w.bool(*negated);
        }
        Atom::Glob {
            field,
            pattern,
            case_insensitive,
        } => {
            w.u8(2);
            w_field(w, field);
            w_pattern(w, pattern);
            w.bool(*case_insensitive);
        }
        Atom::Contains { field, value } => {
            w.u8(3);
            w_field(w, field);
            w_value(w, value);
        }
        Atom::Exists { field } => {
            w.u8(4);
            w_field(w, field);
        }
        Atom::Time { start, end } => {
            w.u8(5);
            w.u32(*start);
            w.u32(*end);
        }
        Atom::Weekdays { mask } => {
            w.u8(6);
            w.u8(*mask);
        }
    });
    w.vec(&c.code, |w, op| match op {
        Op::Atom(i) => {
            w.u8(0);
            w.u32(*i);
        }
        Op::All(n) => {
            w.u8(1);
            w.u32(*n);
        }
        Op::Any(n) => {
            w.u8(2);
            w.u32(*n);
        }
        Op::Not => w.u8(3),
    });
}

fn r_condition(r: &mut Reader<'_>) -> Result<Condition, LoadError> {
    let atoms = r.vec(2, |r| {
        Ok(match r.u8()? {
            0 => {
                let field = r_field(r)?;
                let op = r.u8()?;
                if op > 5 {
                    return Err(LoadError::Corrupt(format!("unknown operator {op}")));
                }
                Atom::Compare {
                    field,
                    op,
                    value: r_value(r, 0)?,
                }
            }
            1 => Atom::In {
                field: r_field(r)?,
                values: r.vec(1, |r| r_value(r, 0))?,
                negated: r.bool()?,
            },
            2 => Atom::Glob {
                field: r_field(r)?,
                pattern: r_pattern(r)?,
                case_insensitive: r.bool()?,
            },
            3 => Atom::Contains {
                field: r_field(r)?,
                value: r_value(r, 0)?,
            },
            4 => Atom::Exists { field: r_field(r)? },
            5 => Atom::Time {
                start: r.u32()?,
                end: r.u32()?,
            },
            6 => Atom::Weekdays { mask: r.u8()? },
            t => return Err(LoadError::Corrupt(format!("unknown condition tag {t}"))),
        })
    })?;
    let code = r.vec(1, |r| {
        Ok(match r.u8()? {
            0 => Op::Atom(r.u32()?),
            1 => Op::All(r.u32()?),
            2 => Op::Any(r.u32()?),
            3 => Op::Not,
            t => return Err(LoadError::Corrupt(format!("unknown op tag {t}"))),
        })
    })?;
    // The code must be well formed: atoms in range, stack never short,
    // exactly one value at the end.
    let mut depth: u64 = 0;
    for op in &code {
        match op {
            Op::Atom(i) => {
                if *i as usize >= atoms.len() {
                    return Err(LoadError::Corrupt(
                        "condition refers to a missing atom".to_owned(),
                    ));
                }
                depth += 1;
            }
            Op::All(n) | Op::Any(n) => {
                depth = depth
                    .checked_sub(u64::from(*n))
                    .ok_or_else(|| LoadError::Corrupt("condition code underflows".to_owned()))?
                    + 1;
            }
            Op::Not => {
                if depth == 0 {
                    return Err(LoadError::Corrupt("condition code underflows".to_owned()));
                }
            }
        }
    }
    if depth != 1 {
        return Err(LoadError::Corrupt(
            "condition code leaves no single value".to_owned(),
        ));
    }
    Ok(Condition { atoms, code })
}

fn w_list(w: &mut Writer, l: &NamedList) {
    w.str(&l.key);
    w.vec(&l.patterns, w_pattern);
    w.bool(l.case_insensitive);
}

fn r_list(r: &mut Reader<'_>) -> Result<NamedList, LoadError> {
    Ok(NamedList {
        key: r.str()?,
        patterns: r.vec(1, r_pattern)?,
        case_insensitive: r.bool()?,
    })
}

fn w_access(w: &mut Writer, a: &AccessList) {
    w.opt(a.allow.as_ref(), w_list);
    w.opt(a.block.as_ref(), w_list);
}

fn r_access(r: &mut Reader<'_>) -> Result<AccessList, LoadError> {
    Ok(AccessList {
        allow: r.opt(r_list)?,
        block: r.opt(r_list)?,
    })
}

fn w_rate(w: &mut Writer, rate: &Rate) {
    w.u64(rate.count);
    w.u8(rate.unit);
}

fn r_rate(r: &mut Reader<'_>) -> Result<Rate, LoadError> {
    let count = r.u64()?;
    let unit = r.u8()?;
    if unit > 3 || count == 0 {
        return Err(LoadError::Corrupt("bad rate".to_owned()));
    }
    Ok(Rate { count, unit })
}

fn small(r: &mut Reader<'_>, max: u8, what: &str) -> Result<u8, LoadError> {
    let v = r.u8()?;
    if v > max {
        return Err(LoadError::Corrupt(format!("bad {what} {v}")));
    }
    Ok(v)
}

impl Model {
    /// The model's bytes (the bundle body, without header or checksum).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.str(&self.writ_version);
        w.out.extend_from_slice(&self.revision);
        w.strs(&self.policies);
        let s = &self.settings;
        w.u8(s.combining);
        w.u8(s.default_effect);
        w.opt(s.default_risk.as_ref(), |w, v| w.u8(*v));
        w.opt(s.default_reason.as_ref(), |w, v| w.str(v));
        w.str(&s.timezone);
        w.bytes(&s.tzif);
        w.opt(s.max_delegation_depth.as_ref(), |w, v| w.u32(*v));
        w.bool(s.ceiling_strict);
        w.vec(&self.agents, |w, a| {
            w.u8(a.subject);
            w.str(&a.name);
            w.u32(a.policy);
            w.strs(&a.roles);
            w.opt(a.tier.as_ref(), |w, v| w.u8(*v));
            w.strs(&a.tags);
            w.opt(a.token_prefix.as_ref(), |w, v| w.str(v));
            w_access(w, &a.models);
            w_access(w, &a.tools);
            w_access(w, &a.hosts);
            w.opt(a.require_tls.as_ref(), |w, v| w.bool(*v));
            w.vec(&a.limits, |w, l| {
                w.str(&l.key);
                w.u8(l.metric);
                w_rate(w, &l.rate);
                w.opt(l.actions.as_ref(), w_pattern);
            });
            w.strs(&a.delegates);
        });
        w.vec(&self.rules, |w, r| {
            w.str(&r.name);
            w.u32(r.policy);
            w.u8(r.effect);
            w.opt(r.risk.as_ref(), |w, v| w.u8(*v));
            w.vec(&r.actions, w_pattern);
            w.vec(&r.targets, w_pattern);
            w.bool(r.targets_case_insensitive);
            w.strs(&r.scope.agents);
            w.strs(&r.scope.roles);
            w.bytes(&r.scope.tiers);
            w.strs(&r.scope.tags);
            w.opt(r.condition.as_ref(), w_condition);
            w.vec(&r.constraints, |w, c| {
                w.str(&c.name);
                w_field(w, &c.field);
                w.opt(c.alternate.as_ref(), w_field);
                w.vec(&c.values, w_value);
            });
            w.opt(r.limit.as_ref(), w_rate);
            w.opt(r.reason.as_ref(), |w, v| w.str(v));
        });
        w.vec(&self.graph, |w, e| {
            w.str(&e.from);
            w.str(&e.to);
            w.str(&e.label);
        });
        w.out
    }

    /// Decodes and checks a bundle body.
    ///
    /// # Errors
    /// [`LoadError::Corrupt`] for anything out of place.
    pub fn decode(bytes: &[u8]) -> Result<Model, LoadError> {
        let mut r = Reader::new(bytes);
        let writ_version = r.str()?;
        let revision: [u8; 32] = r
            .take(32)?
            .try_into()
            .map_err(|_| LoadError::Corrupt("truncated revision".to_owned()))?;
        let policies = r.strs()?;
        let settings = Settings {
            combining: small(&mut r, 1, "combining")?,
            default_effect: small(&mut r, 2, "effect")?,
            default_risk: r.opt(|r| small(r, 3, "risk"))?,
            default_reason: r.opt(Reader::str)?,
            timezone: r.str()?,
            tzif: r.bytes()?.to_vec(),
            max_delegation_depth: r.opt(Reader::u32)?,
            ceiling_strict: r.bool()?,
        };
        let agents = r.vec(8, |r| {
            Ok(Agent {
                subject: small(r, 2, "subject")?,
                name: r.str()?,
                policy: r.u32()?,
                roles: r.strs()?,
                tier: r.opt(|r| small(r, 3, "tier"))?,
                tags: r.strs()?,
                token_prefix: r.opt(Reader::str)?,
                models: r_access(r)?,
                tools: r_access(r)?,
                hosts: r_access(r)?,
                require_tls: r.opt(Reader::bool)?,
                limits: r.vec(4, |r| {
                    Ok(AgentLimit {
                        key: r.str()?,
                        metric: small(r, 1, "metric")?,
                        rate: r_rate(r)?,
                        actions: r.opt(r_pattern)?,
                    })
                })?,
                delegates: r.strs()?,
            })
        })?;
        let rules = r.vec(8, |r| {
            let rule = Rule {
                name: r.str()?,
                policy: r.u32()?,
                effect: small(r, 2, "effect")?,
                risk: r.opt(|r| small(r, 3, "risk"))?,
                actions: r.vec(1, r_pattern)?,
                targets: r.vec(1, r_pattern)?,
                targets_case_insensitive: r.bool()?,
                scope: Scope {
                    agents: r.strs()?,
                    roles: r.strs()?,
                    tiers: r.bytes()?.to_vec(),
                    tags: r.strs()?,
                },
                condition: r.opt(r_condition)?,
                constraints: r.vec(4, |r| {
                    Ok(Constraint {
                        name: r.str()?,
                        field: r_field(r)?,
                        alternate: r.opt(r_field)?,
                        values: r.vec(1, |r| r_value(r, 0))?,
                    })
                })?,
                limit: r.opt(r_rate)?,
                reason: r.opt(Reader::str)?,
            };
            Ok(rule)
        })?;
        let graph = r.vec(12, |r| {
            Ok(Edge {
                from: r.str()?,
                to: r.str()?,
                label: r.str()?,
            })
        })?;
        r.finish()?;
        let policy_count = u32::try_from(policies.len()).unwrap_or(u32::MAX);
        if agents.iter().any(|a| a.policy >= policy_count)
            || rules.iter().any(|r| r.policy >= policy_count)
        {
            return Err(LoadError::Corrupt(
                "a rule or agent names a missing policy".to_owned(),
            ));
        }
        Ok(Model {
            writ_version,
            revision,
            policies,
            settings,
            agents,
            rules,
            graph,
        })
    }
}
