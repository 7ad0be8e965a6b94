//! What a bundle holds, and its byte encoding.
//!
//! The compiler builds a [`Model`] from the IR and calls [`Model::encode`];
//! the runtime decodes it (checking everything) and prepares the lookup
//! structures. The encoding lives here, in one place, so the two sides
//! cannot disagree.

use crate::LoadError;
use crate::wire::{Reader, Strings, Writer};

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
    /// The limit is counted once for all agents, not per acting agent
    /// (only with a `limit`; format 3).
    pub limit_shared: bool,
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
    /// What a request made through a delegation chain may do at most:
    /// its action must match every list (format 4: a section after the
    /// graph, written only when there is a list).
    pub ceiling_actions: Vec<NamedList>,
    /// The policy whose default decision applies, which the default
    /// decision names (format 4; `None`: the built-in default of a set of
    /// several policies, or a bundle of an older format).
    pub default_policy: Option<u32>,
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
            let n = r.count(2)?;
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
            w.varint(*i);
        }
        Op::All(n) => {
            w.u8(1);
            w.varint(*n);
        }
        Op::Any(n) => {
            w.u8(2);
            w.varint(*n);
        }
        Op::Not => w.u8(3),
    });
}

/// Decodes one condition.
///
/// # Errors
/// [`LoadError::Corrupt`] for anything out of place.
pub fn r_condition(r: &mut Reader<'_>) -> Result<Condition, LoadError> {
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
            0 => Op::Atom(r.varint()?),
            1 => Op::All(r.varint()?),
            2 => Op::Any(r.varint()?),
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

/// Decodes one rule record.
///
/// # Errors
/// [`LoadError::Corrupt`] for anything out of place.
pub fn r_rule(
    r: &mut Reader<'_>,
    condition: impl FnOnce(u32) -> Result<Condition, LoadError>,
) -> Result<Rule, LoadError> {
    let name = r.str()?;
    let policy = r.varint()?;
    let effect = small(r, 2, "effect")?;
    let flags = rule_flags(r)?;
    let has = |bit: u16| flags & bit != 0;
    Ok(Rule {
        name,
        policy,
        effect,
        risk: if has(RISK) {
            Some(small(r, 3, "risk")?)
        } else {
            None
        },
        actions: r.vec(1, r_pattern)?,
        targets: if has(TARGETS) {
            r.vec(1, r_pattern)?
        } else {
            Vec::new()
        },
        targets_case_insensitive: has(CASE_INSENSITIVE),
        scope: Scope {
            agents: if has(AGENTS) { r.strs()? } else { Vec::new() },
            roles: if has(ROLES) { r.strs()? } else { Vec::new() },
            tiers: if has(TIERS) {
                r.bytes()?.to_vec()
            } else {
                Vec::new()
            },
            tags: if has(TAGS) { r.strs()? } else { Vec::new() },
        },
        condition: if has(CONDITION) {
            Some(condition(r.varint()?)?)
        } else {
            None
        },
        constraints: if has(CONSTRAINTS) {
            r.vec(4, |r| {
                Ok(Constraint {
                    name: r.str()?,
                    field: r_field(r)?,
                    alternate: r.opt(r_field)?,
                    values: r.vec(1, |r| r_value(r, 0))?,
                })
            })?
        } else {
            Vec::new()
        },
        limit: if has(LIMIT) { Some(r_rate(r)?) } else { None },
        limit_shared: has(SHARED_LIMIT),
        reason: if has(REASON) { Some(r.str()?) } else { None },
    })
}

// Which optional parts a rule record holds (a little-endian u16 after the
// effect): most rules have few, and absent parts take no bytes.
const RISK: u16 = 1;
const TARGETS: u16 = 1 << 1;
const CASE_INSENSITIVE: u16 = 1 << 2;
const AGENTS: u16 = 1 << 3;
const ROLES: u16 = 1 << 4;
const TIERS: u16 = 1 << 5;
const TAGS: u16 = 1 << 6;
const CONDITION: u16 = 1 << 7;
const CONSTRAINTS: u16 = 1 << 8;
const LIMIT: u16 = 1 << 9;
const REASON: u16 = 1 << 10;
/// The limit is shared by all agents (format 3; only with `LIMIT`).
const SHARED_LIMIT: u16 = 1 << 11;
const ALL_FLAGS: u16 = (1 << 12) - 1;

#[inline(always)]
fn rule_flags(r: &mut Reader<'_>) -> Result<u16, LoadError> {
    let lo = r.u8()?;
    let hi = r.u8()?;
    let flags = u16::from_le_bytes([lo, hi]);
    if flags & !ALL_FLAGS != 0 || (flags & SHARED_LIMIT != 0 && flags & LIMIT == 0) {
        return Err(LoadError::Corrupt(format!("bad rule flags {flags:#x}")));
    }
    Ok(flags)
}

/// The fewest bytes a rule record takes: its name's string index, its
/// policy, effect, two flag bytes, the count of its actions and one
/// pattern tag (a rule whose only action is `*`).
pub(crate) const MIN_RULE_SIZE: usize = 7;

fn w_rule(w: &mut Writer, r: &Rule, condition: Option<u32>) {
    let mut flags = 0u16;
    let mut set = |bit: u16, on: bool| {
        if on {
            flags |= bit;
        }
    };
    set(RISK, r.risk.is_some());
    set(TARGETS, !r.targets.is_empty());
    set(CASE_INSENSITIVE, r.targets_case_insensitive);
    set(AGENTS, !r.scope.agents.is_empty());
    set(ROLES, !r.scope.roles.is_empty());
    set(TIERS, !r.scope.tiers.is_empty());
    set(TAGS, !r.scope.tags.is_empty());
    set(CONDITION, condition.is_some());
    set(CONSTRAINTS, !r.constraints.is_empty());
    set(LIMIT, r.limit.is_some());
    set(SHARED_LIMIT, r.limit.is_some() && r.limit_shared);
    set(REASON, r.reason.is_some());
    w.str(&r.name);
    w.varint(r.policy);
    w.u8(r.effect);
    w.out.extend_from_slice(&flags.to_le_bytes());
    if let Some(risk) = r.risk {
        w.u8(risk);
    }
    w.vec(&r.actions, w_pattern);
    if !r.targets.is_empty() {
        w.vec(&r.targets, w_pattern);
    }
    for list in [&r.scope.agents, &r.scope.roles] {
        if !list.is_empty() {
            w.strs(list);
        }
    }
    if !r.scope.tiers.is_empty() {
        w.bytes(&r.scope.tiers);
    }
    if !r.scope.tags.is_empty() {
        w.strs(&r.scope.tags);
    }
    if let Some(c) = condition {
        w.varint(c);
    }
    if !r.constraints.is_empty() {
        w.vec(&r.constraints, |w, c| {
            w.str(&c.name);
            w_field(w, &c.field);
            w.opt(c.alternate.as_ref(), w_field);
            w.vec(&c.values, w_value);
        });
    }
    if let Some(rate) = &r.limit {
        w_rate(w, rate);
    }
    if let Some(reason) = &r.reason {
        w.str(reason);
    }
}

// ---------------------------------------------------------------------
// Scanning: the same grammar as the decoders above, read without
// allocating. A runtime scans every rule record when it loads a bundle
// (so a malformed record is a load error, never a partial load) and
// decodes a record only when a request first needs its rule.
// `tests/bundle.rs` holds the two readers to the same language.

/// A string's (start, length) in the bundle body.
pub type Span = (u32, u32);

/// An action pattern as the scanner sees it.
#[derive(Clone, Copy, Debug)]
pub enum PatternRef<'a> {
    Exact(Span),
    Prefix(Span),
    Suffix(Span),
    Any,
    Dfa { text: &'a str, dfa: &'a [u8] },
}

/// What the runtime needs from a rule record at load time.
#[derive(Debug, Default)]
pub struct RuleScan {
    /// Some pattern of the rule (action, target or condition) is a DFA.
    pub has_dfa: bool,
    /// The condition reads the clock.
    pub has_clock: bool,
    /// How many of the scanned names (pushed to the caller's list) are
    /// the rule's agents, then its roles.
    pub agents: usize,
    pub roles: usize,
    /// How many exact target names were pushed to the caller's target
    /// list: set when the rule has targets and every one is an exact name
    /// (a request whose target is none of them cannot match the rule).
    pub exact_targets: Option<usize>,
}

#[inline(always)]
fn scan_pattern<'a>(r: &mut Reader<'a>) -> Result<PatternRef<'a>, LoadError> {
    Ok(match r.u8()? {
        0 => PatternRef::Exact(r.str_span()?),
        1 => PatternRef::Prefix(r.str_span()?),
        2 => PatternRef::Suffix(r.str_span()?),
        3 => PatternRef::Any,
        4 => PatternRef::Dfa {
            text: r.str_ref()?,
            dfa: r.bytes()?,
        },
        t => return Err(LoadError::Corrupt(format!("unknown pattern tag {t}"))),
    })
}

#[inline(always)]
fn scan_value(r: &mut Reader<'_>, depth: u32) -> Result<(), LoadError> {
    // Numbers and strings, the common values, without a call.
    match r.peek() {
        Some(2) => {
            r.u8()?;
            r.f64()?;
            return Ok(());
        }
        Some(3) => {
            r.u8()?;
            return r.skip_str();
        }
        _ => {}
    }
    scan_value_slow(r, depth)
}

fn scan_value_slow(r: &mut Reader<'_>, depth: u32) -> Result<(), LoadError> {
    if depth > MAX_NESTING {
        return Err(LoadError::Corrupt("values nested too deep".to_owned()));
    }
    match r.u8()? {
        0 => {}
        1 => {
            r.bool()?;
        }
        2 => {
            r.f64()?;
        }
        3 => {
            r.skip_str()?;
        }
        4 => {
            for _ in 0..r.count(1)? {
                scan_value(r, depth + 1)?;
            }
        }
        5 => {
            for _ in 0..r.count(2)? {
                r.skip_str()?;
                scan_value(r, depth + 1)?;
            }
        }
        t => return Err(LoadError::Corrupt(format!("unknown value tag {t}"))),
    }
    Ok(())
}

#[inline(always)]
fn scan_strs(r: &mut Reader<'_>) -> Result<(), LoadError> {
    for _ in 0..r.count(1)? {
        r.skip_str()?;
    }
    Ok(())
}

#[inline(always)]
fn scan_field(r: &mut Reader<'_>) -> Result<(), LoadError> {
    match r.u8()? {
        0 => Ok(()),
        1 => scan_strs(r),
        t => Err(LoadError::Corrupt(format!("unknown field tag {t}"))),
    }
}

fn scan_condition(r: &mut Reader<'_>, out: &mut RuleScan) -> Result<(), LoadError> {
    let atoms = r.count(2)?;
    for _ in 0..atoms {
        match r.u8()? {
            0 => {
                scan_field(r)?;
                let op = r.u8()?;
                if op > 5 {
                    return Err(LoadError::Corrupt(format!("unknown operator {op}")));
                }
                scan_value(r, 0)?;
            }
            1 => {
                scan_field(r)?;
                for _ in 0..r.count(1)? {
                    scan_value(r, 0)?;
                }
                r.bool()?;
            }
            2 => {
                scan_field(r)?;
                out.has_dfa |= matches!(scan_pattern(r)?, PatternRef::Dfa { .. });
                r.bool()?;
            }
            3 => {
                scan_field(r)?;
                scan_value(r, 0)?;
            }
            4 => scan_field(r)?,
            5 => {
                r.u32()?;
                r.u32()?;
                out.has_clock = true;
            }
            6 => {
                r.u8()?;
                out.has_clock = true;
            }
            t => return Err(LoadError::Corrupt(format!("unknown condition tag {t}"))),
        }
    }
    let mut depth: u64 = 0;
    for _ in 0..r.count(1)? {
        match r.u8()? {
            0 => {
                if r.varint()? as usize >= atoms {
                    return Err(LoadError::Corrupt(
                        "condition refers to a missing atom".to_owned(),
                    ));
                }
                depth += 1;
            }
            1 | 2 => {
                depth = depth
                    .checked_sub(u64::from(r.varint()?))
                    .ok_or_else(|| LoadError::Corrupt("condition code underflows".to_owned()))?
                    + 1;
            }
            3 => {
                if depth == 0 {
                    return Err(LoadError::Corrupt("condition code underflows".to_owned()));
                }
            }
            t => return Err(LoadError::Corrupt(format!("unknown op tag {t}"))),
        }
    }
    if depth != 1 {
        return Err(LoadError::Corrupt(
            "condition code leaves no single value".to_owned(),
        ));
    }
    Ok(())
}

/// Checks one rule record without allocating: `action` is called with
/// each action pattern, and the rule's agent then role names are pushed
/// to `names`.
///
/// # Errors
/// [`LoadError::Corrupt`] exactly where [`r_rule`] would fail, and when
/// the rule names a policy at or past `policies`.
pub fn scan_rule<'a>(
    r: &mut Reader<'a>,
    policies: u32,
    conditions: &[u8],
    mut action: impl FnMut(PatternRef<'a>) -> Result<(), LoadError>,
    names: &mut Vec<Span>,
    targets: &mut Vec<Span>,
) -> Result<RuleScan, LoadError> {
    let mut out = RuleScan::default();
    r.skip_str()?;
    if r.varint()? >= policies {
        return Err(LoadError::Corrupt(
            "a rule or agent names a missing policy".to_owned(),
        ));
    }
    small(r, 2, "effect")?;
    let flags = rule_flags(r)?;
    let has = |bit: u16| flags & bit != 0;
    if has(RISK) {
        small(r, 3, "risk")?;
    }
    for _ in 0..r.count(1)? {
        let p = scan_pattern(r)?;
        out.has_dfa |= matches!(p, PatternRef::Dfa { .. });
        action(p)?;
    }
    if has(TARGETS) {
        let first = targets.len();
        let mut exact = true;
        for _ in 0..r.count(1)? {
            match scan_pattern(r)? {
                PatternRef::Exact(span) => targets.push(span),
                p => {
                    out.has_dfa |= matches!(p, PatternRef::Dfa { .. });
                    exact = false;
                }
            }
        }
        if exact && targets.len() > first {
            out.exact_targets = Some(targets.len() - first);
        } else {
            targets.truncate(first);
        }
    }
    if has(AGENTS) {
        out.agents = r.count(1)?;
        for _ in 0..out.agents {
            names.push(r.str_span()?);
        }
    }
    if has(ROLES) {
        out.roles = r.count(1)?;
        for _ in 0..out.roles {
            names.push(r.str_span()?);
        }
    }
    if has(TIERS) {
        r.bytes()?;
    }
    if has(TAGS) {
        scan_strs(r)?;
    }
    if has(CONDITION) {
        let c = r.varint()?;
        let Some(&cflags) = conditions.get(c as usize) else {
            return Err(LoadError::Corrupt(format!(
                "rule refers to missing condition {c}"
            )));
        };
        out.has_clock |= cflags & COND_CLOCK != 0;
        out.has_dfa |= cflags & COND_DFA != 0;
    }
    if has(CONSTRAINTS) {
        for _ in 0..r.count(4)? {
            r.skip_str()?;
            scan_field(r)?;
            if r.bool()? {
                scan_field(r)?;
            }
            for _ in 0..r.count(1)? {
                scan_value(r, 0)?;
            }
        }
    }
    if has(LIMIT) {
        r_rate(r)?;
    }
    if has(REASON) {
        r.skip_str()?;
    }
    Ok(out)
}

/// A scanned condition reads the clock.
pub const COND_CLOCK: u8 = 1;
/// A scanned condition has a DFA pattern.
pub const COND_DFA: u8 = 2;

/// Checks one condition of the condition table without allocating;
/// returns its [`COND_CLOCK`] and [`COND_DFA`] bits.
///
/// # Errors
/// [`LoadError::Corrupt`] exactly where the condition decoder would fail.
pub fn scan_condition_entry(r: &mut Reader<'_>) -> Result<u8, LoadError> {
    let mut out = RuleScan::default();
    scan_condition(r, &mut out)?;
    Ok(u8::from(out.has_clock) * COND_CLOCK + u8::from(out.has_dfa) * COND_DFA)
}

/// The start of a bundle body: the writ version and revision (plain, for
/// `read_header`), then the string table.
#[derive(Debug)]
pub struct Prelude {
    pub writ_version: String,
    pub revision: [u8; 32],
    /// Where the string table's bytes start in the body.
    pub strings_at: u32,
    /// The end of each string, relative to `strings_at`.
    pub ends: Vec<u32>,
    /// Where what follows the string table starts.
    pub next: usize,
}

impl Prelude {
    /// Reads a body's prelude.
    ///
    /// # Errors
    /// [`LoadError::Corrupt`] for anything out of place.
    pub fn read(body: &[u8]) -> Result<Prelude, LoadError> {
        let mut r = Reader::new(body);
        let writ_version = r.str()?;
        let revision: [u8; 32] = r
            .take(32)?
            .try_into()
            .map_err(|_| LoadError::Corrupt("truncated revision".to_owned()))?;
        let (strings_at, ends) = r.string_table()?;
        Ok(Prelude {
            writ_version,
            revision,
            strings_at,
            ends,
            next: r.position(),
        })
    }

    /// A reader of what follows the string table.
    ///
    /// # Errors
    /// Never for a prelude read from `body`.
    pub fn reader<'a>(&'a self, body: &'a [u8]) -> Result<Reader<'a>, LoadError> {
        let mut r = Reader::with_strings(
            body,
            Strings {
                at: self.strings_at,
                ends: &self.ends,
            },
        );
        r.seek(self.next)?;
        Ok(r)
    }
}

/// A bundle body read up to its rules: everything but the rules decoded,
/// and where the rule records start.
#[derive(Debug)]
pub struct Head {
    pub policies: Vec<String>,
    pub settings: Settings,
    pub agents: Vec<Agent>,
}

impl Head {
    /// Reads a body of bundle format `format` up to its rule records.
    ///
    /// # Errors
    /// [`LoadError::Corrupt`] for anything out of place.
    pub fn read(r: &mut Reader<'_>, format: u32) -> Result<Head, LoadError> {
        let policies = r.strs()?;
        let settings = Settings {
            combining: small(r, 1, "combining")?,
            default_effect: small(r, 2, "effect")?,
            default_risk: r.opt(|r| small(r, 3, "risk"))?,
            default_reason: r.opt(Reader::str)?,
            timezone: r.str()?,
            tzif: r.bytes()?.to_vec(),
            max_delegation_depth: r.opt(Reader::u32)?,
            ceiling_strict: r.bool()?,
            ceiling_actions: Vec::new(),
            default_policy: if format >= 4 {
                r.opt(Reader::varint)?
            } else {
                None
            },
        };
        let agents = r.vec(8, |r| {
            Ok(Agent {
                subject: small(r, 2, "subject")?,
                name: r.str()?,
                policy: r.varint()?,
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
        let policy_count = u32::try_from(policies.len()).unwrap_or(u32::MAX);
        if agents.iter().any(|a| a.policy >= policy_count)
            || settings.default_policy.is_some_and(|p| p >= policy_count)
        {
            return Err(LoadError::Corrupt(
                "a rule or agent names a missing policy".to_owned(),
            ));
        }
        Ok(Head {
            policies,
            settings,
            agents,
        })
    }
}

/// Reads the action ceilings that may follow the graph (format 4; none
/// when the body ends there, as every format 2 and 3 body does).
///
/// # Errors
/// [`LoadError::Corrupt`] for anything out of place.
pub fn r_ceiling_actions(r: &mut Reader<'_>) -> Result<Vec<NamedList>, LoadError> {
    if r.peek().is_none() {
        return Ok(Vec::new());
    }
    let lists = r.vec(3, r_list)?;
    if lists.is_empty() {
        return Err(LoadError::Corrupt(
            "an empty action ceiling section".to_owned(),
        ));
    }
    Ok(lists)
}

/// Reads the delegation graph that follows the rules.
///
/// # Errors
/// [`LoadError::Corrupt`] for anything out of place.
pub fn r_graph(r: &mut Reader<'_>) -> Result<Vec<Edge>, LoadError> {
    r.vec(3, |r| {
        Ok(Edge {
            from: r.str()?,
            to: r.str()?,
            label: r.str()?,
        })
    })
}

impl Model {
    /// The model's bytes (the bundle body, without header or checksum).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.encode_as(crate::FORMAT_VERSION)
    }

    /// The model's bytes in the layout of bundle format `format` (what an
    /// older format has no place for is left out): for tests that load
    /// bundles older runtimes wrote.
    #[must_use]
    pub fn encode_as(&self, format: u32) -> Vec<u8> {
        let mut head = Writer::default();
        head.str(&self.writ_version);
        head.out.extend_from_slice(&self.revision);
        let mut w = Writer::interning();
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
        if format >= 4 {
            w.opt(s.default_policy.as_ref(), |w, v| w.varint(*v));
        }
        w.vec(&self.agents, |w, a| {
            w.u8(a.subject);
            w.str(&a.name);
            w.varint(a.policy);
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
        // The condition table: each distinct condition once, in order of
        // first use; rules refer to it by index.
        let mut conditions = w.sub();
        let mut seen: std::collections::HashMap<Vec<u8>, u32> = std::collections::HashMap::new();
        let mut refs = Vec::with_capacity(self.rules.len());
        for r in &self.rules {
            refs.push(r.condition.as_ref().map(|c| {
                let mark = conditions.out.len();
                w_condition(&mut conditions, c);
                let bytes = conditions.out.split_off(mark);
                let next = u32::try_from(seen.len()).unwrap_or(u32::MAX);
                *seen.entry(bytes.clone()).or_insert_with(|| {
                    conditions.out.extend_from_slice(&bytes);
                    next
                })
            }));
        }
        w.len(seen.len());
        w.absorb(conditions);
        w.len(self.rules.len());
        for (r, c) in self.rules.iter().zip(refs) {
            w_rule(&mut w, r, c);
        }
        w.vec(&self.graph, |w, e| {
            w.str(&e.from);
            w.str(&e.to);
            w.str(&e.label);
        });
        if !self.settings.ceiling_actions.is_empty() {
            w.vec(&self.settings.ceiling_actions, w_list);
        }
        head.string_table(&w);
        head.out.extend_from_slice(&w.out);
        head.out
    }

    /// Decodes and checks a bundle body of bundle format `format`.
    ///
    /// # Errors
    /// [`LoadError::Corrupt`] for anything out of place.
    pub fn decode(bytes: &[u8], format: u32) -> Result<Model, LoadError> {
        let prelude = Prelude::read(bytes)?;
        let mut r = prelude.reader(bytes)?;
        let head = Head::read(&mut r, format)?;
        let conditions = r.vec(2, r_condition)?;
        let count = r.count(MIN_RULE_SIZE)?;
        let mut rules = Vec::with_capacity(count);
        for _ in 0..count {
            rules.push(r_rule(&mut r, |i| {
                conditions.get(i as usize).cloned().ok_or_else(|| {
                    LoadError::Corrupt(format!("rule refers to missing condition {i}"))
                })
            })?);
        }
        let Head {
            policies,
            mut settings,
            agents,
            ..
        } = head;
        let graph = r_graph(&mut r)?;
        settings.ceiling_actions = r_ceiling_actions(&mut r)?;
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
            writ_version: prelude.writ_version.clone(),
            revision: prelude.revision,
            policies,
            settings,
            agents,
            rules,
            graph,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(limit: Option<Rate>, limit_shared: bool) -> Vec<u8> {
        let rule = Rule {
            name: "r".to_owned(),
            policy: 0,
            effect: 0,
            risk: None,
            actions: vec![Pattern::Any],
            targets: Vec::new(),
            targets_case_insensitive: false,
            scope: Scope::default(),
            condition: None,
            constraints: Vec::new(),
            limit,
            limit_shared,
            reason: None,
        };
        let mut w = Writer::default();
        w_rule(&mut w, &rule, None);
        w.out
    }

    fn decodes(bytes: &[u8]) -> Result<Rule, LoadError> {
        let scanned = scan_rule(
            &mut Reader::new(bytes),
            1,
            &[],
            |_| Ok(()),
            &mut Vec::new(),
            &mut Vec::new(),
        );
        let decoded = r_rule(&mut Reader::new(bytes), |_| {
            Err(LoadError::Corrupt("no conditions".to_owned()))
        });
        assert_eq!(
            scanned.is_ok(),
            decoded.is_ok(),
            "scanner and decoder disagree"
        );
        decoded
    }

    #[test]
    fn a_shared_limit_is_a_flag_of_a_rule_with_a_limit() {
        let rate = Rate { count: 3, unit: 1 };
        let shared = decodes(&record(Some(rate), true)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((shared.limit, shared.limit_shared), (Some(rate), true));
        let own = decodes(&record(Some(rate), false)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((own.limit, own.limit_shared), (Some(rate), false));
        // Without a limit the flag is not written, and a record that has it
        // anyway is corrupt.
        let none = record(None, true);
        assert!(
            !decodes(&none)
                .unwrap_or_else(|e| panic!("{e}"))
                .limit_shared
        );
        // name (len, byte), policy, effect, then the flags.
        let mut made_shared = record(Some(rate), false);
        made_shared[5] |= (SHARED_LIMIT >> 8) as u8;
        assert!(decodes(&made_shared).is_ok_and(|r| r.limit_shared));
        let mut bad = none;
        bad[5] |= (SHARED_LIMIT >> 8) as u8;
        assert!(decodes(&bad).is_err());
    }
}
