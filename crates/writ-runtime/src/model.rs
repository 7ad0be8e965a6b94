//! What a bundle holds, and its byte encoding.
//!
//! The compiler builds a [`Model`] from the IR and calls [`Model::encode`];
//! the runtime decodes it (checking everything) and prepares the lookup
//! structures. The encoding lives here, in one place, so the two sides
//! cannot disagree.

use crate::error::LoadError;
use crate::vocab::{
    AtomTag, Combining, CompareOp, Effect, FieldTag, Metric, OpTag, PatternTag, RateUnit, Risk,
    Subject, Tier, ValueTag,
};
use crate::wire::{Reader, Strings, Writer};

pub use crate::glob::{GlobPattern, GlobUnit};
use crate::glob::{r_glob, w_glob};

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
/// and `*` are compared as strings; everything else is a glob program
/// ([`crate::glob`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Any,
    Glob(GlobPattern),
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
pub type Atom = AtomOf<Field, Value, Pattern>;

/// A leaf of a condition, with its fields, values and patterns as a reader
/// of the bytes takes them (see [`Leaves`]).
#[derive(Clone, Debug, PartialEq)]
pub enum AtomOf<F, V, P> {
    Compare {
        field: F,
        op: CompareOp,
        value: V,
    },
    In {
        field: F,
        values: Vec<V>,
        negated: bool,
    },
    Glob {
        field: F,
        pattern: P,
        case_insensitive: bool,
    },
    Contains {
        field: F,
        value: V,
    },
    Exists {
        field: F,
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
    pub unit: RateUnit,
}

impl Rate {
    #[must_use]
    pub fn seconds(self) -> u64 {
        self.unit.seconds()
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.count, self.unit.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AgentLimit {
    pub key: String,
    pub metric: Metric,
    pub rate: Rate,
    pub actions: Option<Pattern>,
}

/// An agent, role or every-agent entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    pub subject: Subject,
    pub name: String,
    pub policy: u32,
    pub roles: Vec<String>,
    pub tier: Option<Tier>,
    pub tags: Vec<String>,
    pub token_prefix: Option<String>,
    pub models: AccessList,
    pub tools: AccessList,
    pub hosts: AccessList,
    pub require_tls: Option<bool>,
    pub limits: Vec<AgentLimit>,
    pub delegates: Vec<String>,
}

pub type Constraint = ConstraintOf<String, Field, Value>;

/// A constraint of a rule, with its leaves as a reader of the bytes takes
/// them (see [`Leaves`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ConstraintOf<S, F, V> {
    pub name: S,
    pub field: F,
    pub alternate: Option<F>,
    pub values: Vec<V>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scope {
    pub agents: Vec<String>,
    pub roles: Vec<String>,
    pub tiers: Vec<Tier>,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    pub policy: u32,
    pub effect: Effect,
    pub risk: Option<Risk>,
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
    pub combining: Combining,
    pub default_effect: Effect,
    pub default_risk: Option<Risk>,
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
//
// Each record has one writer (`w_*`) and one reader. The reader is
// generic over how it takes the leaves of a record ([`Leaves`]):
// [`Decode`] builds the owned model, [`Check`] only checks the bytes,
// without allocating. A runtime checks every record when it loads a
// bundle (so a malformed record is a load error, never a partial load)
// and decodes a rule's record only when a request first needs it; both
// are the same reader, so they cannot disagree on what a record is.
// Coded bytes are read and written only through the enums of
// [`crate::vocab`].

/// A string's (start, length) in the bundle body.
pub type Span = (u32, u32);

/// How the one reader of the format takes the leaves of a record.
pub trait Leaves<'a> {
    /// A string of a value, a field path, a constraint or a tag.
    type Str;
    type Value;
    /// The items of a list value, while it is read.
    type List: Default;
    /// The entries of a map value, while it is read.
    type Map: Default;
    /// The strings of a list, while it is read.
    type Strs: Default;
    type Field;
    type Pattern;

    fn str(r: &mut Reader<'a>) -> Result<Self::Str, LoadError>;
    fn push_str(list: &mut Self::Strs, s: Self::Str);
    /// A field: the target (`None`), or a context path.
    fn field(context: Option<Self::Strs>) -> Self::Field;
    fn pattern(r: &Reader<'a>, p: PatternRef) -> Result<Self::Pattern, LoadError>;
    fn null() -> Self::Value;
    fn bool(b: bool) -> Self::Value;
    fn number(n: f64) -> Self::Value;
    fn string(s: Self::Str) -> Self::Value;
    fn push(list: &mut Self::List, v: Self::Value);
    fn list(list: Self::List) -> Self::Value;
    fn insert(map: &mut Self::Map, key: Self::Str, v: Self::Value);
    fn map(map: Self::Map) -> Self::Value;
}

/// Leaves decoded into the owned model.
#[derive(Debug)]
pub enum Decode {}

impl<'a> Leaves<'a> for Decode {
    type Str = String;
    type Value = Value;
    type List = Vec<Value>;
    type Map = std::collections::BTreeMap<String, Value>;
    type Strs = Vec<String>;
    type Field = Field;
    type Pattern = Pattern;

    fn str(r: &mut Reader<'a>) -> Result<String, LoadError> {
        r.str()
    }
    fn push_str(list: &mut Vec<String>, s: String) {
        list.push(s);
    }
    fn field(context: Option<Vec<String>>) -> Field {
        context.map_or(Field::Target, Field::Context)
    }
    fn pattern(r: &Reader<'a>, p: PatternRef) -> Result<Pattern, LoadError> {
        Ok(match p {
            PatternRef::Exact(s) => Pattern::Exact(r.text(s)?.to_owned()),
            PatternRef::Prefix(s) => Pattern::Prefix(r.text(s)?.to_owned()),
            PatternRef::Suffix(s) => Pattern::Suffix(r.text(s)?.to_owned()),
            PatternRef::Any => Pattern::Any,
            PatternRef::Glob { text, at } => {
                let mut g = GlobPattern {
                    text: r.text(text)?.to_owned(),
                    case_insensitive: false,
                    variants: Vec::new(),
                };
                let mut gr = r.clone();
                gr.seek(at as usize)?;
                r_glob(&mut gr, &mut g)?;
                Pattern::Glob(g)
            }
        })
    }
    fn null() -> Value {
        Value::Null
    }
    fn bool(b: bool) -> Value {
        Value::Bool(b)
    }
    fn number(n: f64) -> Value {
        Value::Number(n)
    }
    fn string(s: String) -> Value {
        Value::String(s)
    }
    fn push(list: &mut Vec<Value>, v: Value) {
        list.push(v);
    }
    fn list(list: Vec<Value>) -> Value {
        Value::List(list)
    }
    fn insert(map: &mut Self::Map, key: String, v: Value) {
        map.insert(key, v);
    }
    fn map(map: Self::Map) -> Value {
        Value::Map(map)
    }
}

/// Leaves only checked: nothing is allocated, and patterns stay places in
/// the bytes.
#[derive(Debug)]
pub enum Check {}

impl<'a> Leaves<'a> for Check {
    type Str = ();
    type Value = ();
    type List = ();
    type Map = ();
    type Strs = ();
    type Field = ();
    type Pattern = PatternRef;

    #[inline(always)]
    fn str(r: &mut Reader<'a>) -> Result<(), LoadError> {
        r.skip_str()
    }
    fn push_str((): &mut (), (): ()) {}
    fn field(_: Option<()>) {}
    fn pattern(_: &Reader<'a>, p: PatternRef) -> Result<PatternRef, LoadError> {
        Ok(p)
    }
    fn null() {}
    fn bool(_: bool) {}
    fn number(_: f64) {}
    fn string((): ()) {}
    fn push((): &mut (), (): ()) {}
    fn list((): ()) {}
    fn insert((): &mut (), (): (), (): ()) {}
    fn map((): ()) {}
}

fn w_value(w: &mut Writer, v: &Value) {
    match v {
        Value::Null => w.u8(ValueTag::Null.to_byte()),
        Value::Bool(b) => {
            w.u8(ValueTag::Bool.to_byte());
            w.bool(*b);
        }
        Value::Number(n) => {
            w.u8(ValueTag::Number.to_byte());
            w.f64(*n);
        }
        Value::String(s) => {
            w.u8(ValueTag::String.to_byte());
            w.str(s);
        }
        Value::List(items) => {
            w.u8(ValueTag::List.to_byte());
            w.vec(items, w_value);
        }
        Value::Map(m) => {
            w.u8(ValueTag::Map.to_byte());
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

/// Reads one value.
#[inline]
fn r_value<'a, L: Leaves<'a>>(r: &mut Reader<'a>, depth: u32) -> Result<L::Value, LoadError> {
    if depth > MAX_NESTING {
        return Err(LoadError::Corrupt("values nested too deep".to_owned()));
    }
    Ok(match ValueTag::from_byte(r.u8()?)? {
        ValueTag::Null => L::null(),
        ValueTag::Bool => L::bool(r.bool()?),
        ValueTag::Number => L::number(r.f64()?),
        ValueTag::String => L::string(L::str(r)?),
        ValueTag::List => {
            let mut list = L::List::default();
            for _ in 0..r.count(1)? {
                L::push(&mut list, r_value::<L>(r, depth + 1)?);
            }
            L::list(list)
        }
        ValueTag::Map => {
            let mut map = L::Map::default();
            for _ in 0..r.count(2)? {
                let k = L::str(r)?;
                L::insert(&mut map, k, r_value::<L>(r, depth + 1)?);
            }
            L::map(map)
        }
    })
}

fn r_values<'a, L: Leaves<'a>>(r: &mut Reader<'a>) -> Result<Vec<L::Value>, LoadError> {
    r.vec(1, |r| r_value::<L>(r, 0))
}

fn w_pattern(w: &mut Writer, p: &Pattern) {
    match p {
        Pattern::Exact(s) => {
            w.u8(PatternTag::Exact.to_byte());
            w.str(s);
        }
        Pattern::Prefix(s) => {
            w.u8(PatternTag::Prefix.to_byte());
            w.str(s);
        }
        Pattern::Suffix(s) => {
            w.u8(PatternTag::Suffix.to_byte());
            w.str(s);
        }
        Pattern::Any => w.u8(PatternTag::Any.to_byte()),
        Pattern::Glob(g) => {
            w.u8(PatternTag::Glob.to_byte());
            w.str(&g.text);
            w_glob(w, g);
        }
    }
}

/// An action pattern as the bytes hold it.
#[derive(Clone, Copy, Debug)]
pub enum PatternRef {
    Exact(Span),
    Prefix(Span),
    Suffix(Span),
    Any,
    /// A glob: its text, and where its program starts (checked when it
    /// was read; [`crate::glob::Glob::read`] reads it from there).
    Glob {
        text: Span,
        at: u32,
    },
}

/// Reads one pattern.
#[inline(always)]
fn r_pattern_ref<'a>(r: &mut Reader<'a>) -> Result<PatternRef, LoadError> {
    let p = r_pattern_head(r)?;
    if matches!(p, PatternRef::Glob { .. }) {
        r_glob(r, &mut ())?;
    }
    Ok(p)
}

/// A pattern up to its glob program: for a glob, `r` is left at the
/// program (at the returned `at`), which the caller must read.
#[inline(always)]
fn r_pattern_head(r: &mut Reader<'_>) -> Result<PatternRef, LoadError> {
    Ok(match PatternTag::from_byte(r.u8()?)? {
        PatternTag::Exact => PatternRef::Exact(r.str_span()?),
        PatternTag::Prefix => PatternRef::Prefix(r.str_span()?),
        PatternTag::Suffix => PatternRef::Suffix(r.str_span()?),
        PatternTag::Any => PatternRef::Any,
        PatternTag::Glob => {
            let text = r.str_span()?;
            let at = u32::try_from(r.position())
                .map_err(|_| LoadError::Corrupt("bundle too large".to_owned()))?;
            PatternRef::Glob { text, at }
        }
    })
}

fn r_pattern<'a, L: Leaves<'a>>(r: &mut Reader<'a>) -> Result<L::Pattern, LoadError> {
    let p = r_pattern_ref(r)?;
    L::pattern(r, p)
}

fn w_field(w: &mut Writer, f: &Field) {
    match f {
        Field::Target => w.u8(FieldTag::Target.to_byte()),
        Field::Context(p) => {
            w.u8(FieldTag::Context.to_byte());
            w.strs(p);
        }
    }
}

#[inline(always)]
fn r_strs<'a, L: Leaves<'a>>(r: &mut Reader<'a>) -> Result<L::Strs, LoadError> {
    let mut out = L::Strs::default();
    for _ in 0..r.count(1)? {
        L::push_str(&mut out, L::str(r)?);
    }
    Ok(out)
}

#[inline(always)]
fn r_field<'a, L: Leaves<'a>>(r: &mut Reader<'a>) -> Result<L::Field, LoadError> {
    Ok(L::field(match FieldTag::from_byte(r.u8()?)? {
        FieldTag::Target => None,
        FieldTag::Context => Some(r_strs::<L>(r)?),
    }))
}

fn w_condition(w: &mut Writer, c: &Condition) {
    w.vec(&c.atoms, |w, a| match a {
        Atom::Compare { field, op, value } => {
            w.u8(AtomTag::Compare.to_byte());
            w_field(w, field);
            w.u8(op.to_byte());
            w_value(w, value);
        }
        Atom::In {
            field,
            values,
            negated,
        } => {
            w.u8(AtomTag::In.to_byte());
            w_field(w, field);
            w.vec(values, w_value);
            w.bool(*negated);
        }
        Atom::Glob {
            field,
            pattern,
            case_insensitive,
        } => {
            w.u8(AtomTag::Glob.to_byte());
            w_field(w, field);
            w_pattern(w, pattern);
            w.bool(*case_insensitive);
        }
        Atom::Contains { field, value } => {
            w.u8(AtomTag::Contains.to_byte());
            w_field(w, field);
            w_value(w, value);
        }
        Atom::Exists { field } => {
            w.u8(AtomTag::Exists.to_byte());
            w_field(w, field);
        }
        Atom::Time { start, end } => {
            w.u8(AtomTag::Time.to_byte());
            w.u32(*start);
            w.u32(*end);
        }
        Atom::Weekdays { mask } => {
            w.u8(AtomTag::Weekdays.to_byte());
            w.u8(*mask);
        }
    });
    w.vec(&c.code, |w, op| match op {
        Op::Atom(i) => {
            w.u8(OpTag::Atom.to_byte());
            w.varint(*i);
        }
        Op::All(n) => {
            w.u8(OpTag::All.to_byte());
            w.varint(*n);
        }
        Op::Any(n) => {
            w.u8(OpTag::Any.to_byte());
            w.varint(*n);
        }
        Op::Not => w.u8(OpTag::Not.to_byte()),
    });
}

/// Reads one condition: each atom is given to `atom` and each instruction
/// of its code to `op`, and the code is checked to be well formed (atoms
/// in range, the stack never short, exactly one value at the end).
fn r_condition_with<'a, L: Leaves<'a>>(
    r: &mut Reader<'a>,
    mut atom: impl FnMut(AtomOf<L::Field, L::Value, L::Pattern>),
    mut op: impl FnMut(Op),
) -> Result<(), LoadError> {
    let atoms = r.count(2)?;
    for _ in 0..atoms {
        atom(match AtomTag::from_byte(r.u8()?)? {
            AtomTag::Compare => AtomOf::Compare {
                field: r_field::<L>(r)?,
                op: CompareOp::from_byte(r.u8()?)?,
                value: r_value::<L>(r, 0)?,
            },
            AtomTag::In => AtomOf::In {
                field: r_field::<L>(r)?,
                values: r_values::<L>(r)?,
                negated: r.bool()?,
            },
            AtomTag::Glob => AtomOf::Glob {
                field: r_field::<L>(r)?,
                pattern: r_pattern::<L>(r)?,
                case_insensitive: r.bool()?,
            },
            AtomTag::Contains => AtomOf::Contains {
                field: r_field::<L>(r)?,
                value: r_value::<L>(r, 0)?,
            },
            AtomTag::Exists => AtomOf::Exists {
                field: r_field::<L>(r)?,
            },
            AtomTag::Time => AtomOf::Time {
                start: r.u32()?,
                end: r.u32()?,
            },
            AtomTag::Weekdays => AtomOf::Weekdays { mask: r.u8()? },
        });
    }
    let mut depth: u64 = 0;
    for _ in 0..r.count(1)? {
        let next = match OpTag::from_byte(r.u8()?)? {
            OpTag::Atom => Op::Atom(r.varint()?),
            OpTag::All => Op::All(r.varint()?),
            OpTag::Any => Op::Any(r.varint()?),
            OpTag::Not => Op::Not,
        };
        match next {
            Op::Atom(i) => {
                if i as usize >= atoms {
                    return Err(LoadError::Corrupt(
                        "condition refers to a missing atom".to_owned(),
                    ));
                }
                depth += 1;
            }
            Op::All(n) | Op::Any(n) => {
                depth = depth
                    .checked_sub(u64::from(n))
                    .ok_or_else(|| LoadError::Corrupt("condition code underflows".to_owned()))?
                    + 1;
            }
            Op::Not => {
                if depth == 0 {
                    return Err(LoadError::Corrupt("condition code underflows".to_owned()));
                }
            }
        }
        op(next);
    }
    if depth != 1 {
        return Err(LoadError::Corrupt(
            "condition code leaves no single value".to_owned(),
        ));
    }
    Ok(())
}

/// Decodes one condition.
///
/// # Errors
/// [`LoadError::Corrupt`] for anything out of place.
pub fn r_condition(r: &mut Reader<'_>) -> Result<Condition, LoadError> {
    let mut c = Condition {
        atoms: Vec::new(),
        code: Vec::new(),
    };
    r_condition_with::<Decode>(r, |a| c.atoms.push(a), |op| c.code.push(op))?;
    Ok(c)
}

fn w_list(w: &mut Writer, l: &NamedList) {
    w.str(&l.key);
    w.vec(&l.patterns, w_pattern);
    w.bool(l.case_insensitive);
}

fn r_list(r: &mut Reader<'_>) -> Result<NamedList, LoadError> {
    Ok(NamedList {
        key: r.str()?,
        patterns: r.vec(1, r_pattern::<Decode>)?,
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
    w.u8(rate.unit.to_byte());
}

fn r_rate(r: &mut Reader<'_>) -> Result<Rate, LoadError> {
    let count = r.u64()?;
    let unit = RateUnit::from_byte(r.u8()?)?;
    if count == 0 {
        return Err(LoadError::Corrupt("bad rate".to_owned()));
    }
    Ok(Rate { count, unit })
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
    let flags = r.u16()?;
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
    w.u8(r.effect.to_byte());
    w.out.extend_from_slice(&flags.to_le_bytes());
    if let Some(risk) = r.risk {
        w.u8(risk.to_byte());
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
        w.vec(&r.scope.tiers, |w, t| w.u8(t.to_byte()));
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

/// The fixed start of a rule record.
#[derive(Clone, Copy, Debug)]
pub struct RuleHead {
    pub name: Span,
    pub policy: u32,
    pub effect: Effect,
    pub risk: Option<Risk>,
    pub targets_case_insensitive: bool,
    pub limit_shared: bool,
}

/// What the one reader of a rule record ([`r_rule_with`]) reports, part by
/// part, in the order of the record. Each method may refuse the record.
pub trait RuleSink<'a> {
    type Leaves: Leaves<'a>;

    fn head(&mut self, r: &Reader<'a>, head: RuleHead) -> Result<(), LoadError>;
    fn action(&mut self, r: &Reader<'a>, p: PatternRef) -> Result<(), LoadError>;
    /// An action glob `p`, with `r` at its program, which this must read
    /// in full (checking it) before `r` goes on; by default checked, then
    /// reported to [`RuleSink::action`]. (A sink that keeps the glob reads
    /// it once rather than twice.)
    #[inline(always)]
    fn action_glob(&mut self, r: &mut Reader<'a>, p: PatternRef) -> Result<(), LoadError> {
        r_glob(r, &mut ())?;
        self.action(r, p)
    }
    /// One of the rule's targets; `targets_end` follows the last one.
    fn target(&mut self, r: &Reader<'a>, p: PatternRef) -> Result<(), LoadError>;
    fn targets_end(&mut self) {}
    fn agent(&mut self, r: &Reader<'a>, name: Span) -> Result<(), LoadError>;
    fn role(&mut self, r: &Reader<'a>, name: Span) -> Result<(), LoadError>;
    fn tier(&mut self, tier: Tier);
    fn tag(&mut self, tag: Str<'a, Self>);
    fn condition(&mut self, index: u32) -> Result<(), LoadError>;
    fn constraint(&mut self, c: ConstraintOf<Str<'a, Self>, LField<'a, Self>, LValue<'a, Self>>);
    fn limit(&mut self, rate: Rate);
    fn reason(&mut self, reason: Str<'a, Self>);
}

type Str<'a, S> = <<S as RuleSink<'a>>::Leaves as Leaves<'a>>::Str;
type LField<'a, S> = <<S as RuleSink<'a>>::Leaves as Leaves<'a>>::Field;
type LValue<'a, S> = <<S as RuleSink<'a>>::Leaves as Leaves<'a>>::Value;

/// Reads one rule record, reporting its parts to `sink`: the one
/// description of a rule record's bytes that decoding ([`r_rule`]) and
/// checking ([`scan_rule`]) share.
///
/// # Errors
/// [`LoadError`] for anything out of place, or what `sink` refuses.
#[inline(always)]
pub fn r_rule_with<'a, S: RuleSink<'a>>(r: &mut Reader<'a>, sink: &mut S) -> Result<(), LoadError> {
    let name = r.str_span()?;
    let policy = r.varint()?;
    let effect = Effect::from_byte(r.u8()?)?;
    let flags = rule_flags(r)?;
    let has = |bit: u16| flags & bit != 0;
    let risk = if has(RISK) {
        Some(Risk::from_byte(r.u8()?)?)
    } else {
        None
    };
    sink.head(
        r,
        RuleHead {
            name,
            policy,
            effect,
            risk,
            targets_case_insensitive: has(CASE_INSENSITIVE),
            limit_shared: has(SHARED_LIMIT),
        },
    )?;
    for _ in 0..r.count(1)? {
        let p = r_pattern_head(r)?;
        if matches!(p, PatternRef::Glob { .. }) {
            sink.action_glob(r, p)?;
        } else {
            sink.action(r, p)?;
        }
    }
    if has(TARGETS) {
        for _ in 0..r.count(1)? {
            let p = r_pattern_ref(r)?;
            sink.target(r, p)?;
        }
        sink.targets_end();
    }
    if has(AGENTS) {
        for _ in 0..r.count(1)? {
            let name = r.str_span()?;
            sink.agent(r, name)?;
        }
    }
    if has(ROLES) {
        for _ in 0..r.count(1)? {
            let name = r.str_span()?;
            sink.role(r, name)?;
        }
    }
    if has(TIERS) {
        for _ in 0..r.count(1)? {
            sink.tier(Tier::from_byte(r.u8()?)?);
        }
    }
    if has(TAGS) {
        for _ in 0..r.count(1)? {
            sink.tag(S::Leaves::str(r)?);
        }
    }
    if has(CONDITION) {
        sink.condition(r.varint()?)?;
    }
    if has(CONSTRAINTS) {
        for _ in 0..r.count(4)? {
            sink.constraint(ConstraintOf {
                name: S::Leaves::str(r)?,
                field: r_field::<S::Leaves>(r)?,
                alternate: if r.bool()? {
                    Some(r_field::<S::Leaves>(r)?)
                } else {
                    None
                },
                values: r_values::<S::Leaves>(r)?,
            });
        }
    }
    if has(LIMIT) {
        sink.limit(r_rate(r)?);
    }
    if has(REASON) {
        sink.reason(S::Leaves::str(r)?);
    }
    Ok(())
}

/// Builds a [`Rule`] from its record.
struct RuleDecoder<F> {
    rule: Rule,
    condition: Option<F>,
}

impl<'a, F: FnOnce(u32) -> Result<Condition, LoadError>> RuleSink<'a> for RuleDecoder<F> {
    type Leaves = Decode;

    fn head(&mut self, r: &Reader<'a>, h: RuleHead) -> Result<(), LoadError> {
        self.rule.name = r.text(h.name)?.to_owned();
        self.rule.policy = h.policy;
        self.rule.effect = h.effect;
        self.rule.risk = h.risk;
        self.rule.targets_case_insensitive = h.targets_case_insensitive;
        self.rule.limit_shared = h.limit_shared;
        Ok(())
    }
    fn action(&mut self, r: &Reader<'a>, p: PatternRef) -> Result<(), LoadError> {
        self.rule.actions.push(Decode::pattern(r, p)?);
        Ok(())
    }
    fn target(&mut self, r: &Reader<'a>, p: PatternRef) -> Result<(), LoadError> {
        self.rule.targets.push(Decode::pattern(r, p)?);
        Ok(())
    }
    fn agent(&mut self, r: &Reader<'a>, name: Span) -> Result<(), LoadError> {
        self.rule.scope.agents.push(r.text(name)?.to_owned());
        Ok(())
    }
    fn role(&mut self, r: &Reader<'a>, name: Span) -> Result<(), LoadError> {
        self.rule.scope.roles.push(r.text(name)?.to_owned());
        Ok(())
    }
    fn tier(&mut self, tier: Tier) {
        self.rule.scope.tiers.push(tier);
    }
    fn tag(&mut self, tag: String) {
        self.rule.scope.tags.push(tag);
    }
    fn condition(&mut self, index: u32) -> Result<(), LoadError> {
        let Some(condition) = self.condition.take() else {
            return Err(LoadError::Corrupt("a rule with two conditions".to_owned()));
        };
        self.rule.condition = Some(condition(index)?);
        Ok(())
    }
    fn constraint(&mut self, c: Constraint) {
        self.rule.constraints.push(c);
    }
    fn limit(&mut self, rate: Rate) {
        self.rule.limit = Some(rate);
    }
    fn reason(&mut self, reason: String) {
        self.rule.reason = Some(reason);
    }
}

/// Decodes one rule record; `condition` gives the condition of the
/// condition table the record refers to.
///
/// # Errors
/// [`LoadError`] for anything out of place.
pub fn r_rule(
    r: &mut Reader<'_>,
    condition: impl FnOnce(u32) -> Result<Condition, LoadError>,
) -> Result<Rule, LoadError> {
    let mut sink = RuleDecoder {
        rule: Rule {
            name: String::new(),
            policy: 0,
            effect: Effect::Deny,
            risk: None,
            actions: Vec::new(),
            targets: Vec::new(),
            targets_case_insensitive: false,
            scope: Scope::default(),
            condition: None,
            constraints: Vec::new(),
            limit: None,
            limit_shared: false,
            reason: None,
        },
        condition: Some(condition),
    };
    r_rule_with(r, &mut sink)?;
    Ok(sink.rule)
}

/// What the runtime needs from a rule record at load time.
#[derive(Debug, Default)]
pub struct RuleScan {
    /// The condition reads the clock.
    pub has_clock: bool,
    /// How many of the scanned names (pushed to the caller's list) are
    /// the rule's agents, then its roles.
    pub agents: usize,
    pub roles: usize,
    /// How many target patterns were pushed to the caller's target list:
    /// set when the rule has targets and none is `*` (a request whose
    /// target matches none of them cannot match the rule).
    pub indexed_targets: Option<usize>,
}

/// Checks a rule record at load time, collecting what the action index
/// needs.
struct RuleScanner<'s, A> {
    out: RuleScan,
    policies: u32,
    conditions: &'s [u8],
    action: A,
    names: &'s mut Vec<Span>,
    targets: &'s mut Vec<PatternRef>,
    first_target: usize,
    indexable: bool,
}

impl<'a, A: FnMut(PatternRef, Option<&mut Reader<'a>>) -> Result<(), LoadError>> RuleSink<'a>
    for RuleScanner<'_, A>
{
    type Leaves = Check;

    #[inline(always)]
    fn head(&mut self, _: &Reader<'a>, h: RuleHead) -> Result<(), LoadError> {
        if h.policy >= self.policies {
            return Err(LoadError::Corrupt(
                "a rule or agent names a missing policy".to_owned(),
            ));
        }
        Ok(())
    }
    #[inline(always)]
    fn action(&mut self, _: &Reader<'a>, p: PatternRef) -> Result<(), LoadError> {
        (self.action)(p, None)
    }
    #[inline(always)]
    fn action_glob(&mut self, r: &mut Reader<'a>, p: PatternRef) -> Result<(), LoadError> {
        (self.action)(p, Some(r))
    }
    fn target(&mut self, _: &Reader<'a>, p: PatternRef) -> Result<(), LoadError> {
        match p {
            PatternRef::Any => self.indexable = false,
            p => self.targets.push(p),
        }
        Ok(())
    }
    fn targets_end(&mut self) {
        if self.indexable && self.targets.len() > self.first_target {
            self.out.indexed_targets = Some(self.targets.len() - self.first_target);
        } else {
            self.targets.truncate(self.first_target);
        }
    }
    fn agent(&mut self, _: &Reader<'a>, name: Span) -> Result<(), LoadError> {
        self.out.agents += 1;
        self.names.push(name);
        Ok(())
    }
    fn role(&mut self, _: &Reader<'a>, name: Span) -> Result<(), LoadError> {
        self.out.roles += 1;
        self.names.push(name);
        Ok(())
    }
    fn tier(&mut self, _: Tier) {}
    fn tag(&mut self, (): ()) {}
    fn condition(&mut self, c: u32) -> Result<(), LoadError> {
        let Some(&cflags) = self.conditions.get(c as usize) else {
            return Err(LoadError::Corrupt(format!(
                "rule refers to missing condition {c}"
            )));
        };
        self.out.has_clock |= cflags & COND_CLOCK != 0;
        Ok(())
    }
    fn constraint(&mut self, _: ConstraintOf<(), (), ()>) {}
    fn limit(&mut self, _: Rate) {}
    fn reason(&mut self, (): ()) {}
}

/// Checks one rule record without allocating: `action` is called with
/// each action pattern, and the rule's agent then role names are pushed
/// to `names`. For a glob, `action` is given the reader at its program,
/// and must read the program in full (checking it: the scan does not).
/// (`r_glob(r, &mut ())` checks one that is not kept.)
///
/// # Errors
/// [`LoadError`] exactly where [`r_rule`] would fail (they are one
/// reader), and when the rule names a policy at or past `policies`.
pub fn scan_rule<'a>(
    r: &mut Reader<'a>,
    policies: u32,
    conditions: &[u8],
    action: impl FnMut(PatternRef, Option<&mut Reader<'a>>) -> Result<(), LoadError>,
    names: &mut Vec<Span>,
    targets: &mut Vec<PatternRef>,
) -> Result<RuleScan, LoadError> {
    let first_target = targets.len();
    let mut sink = RuleScanner {
        // (Field by field: a default built apart and copied in is read
        // back wider than it was written, a stalled load on every rule.)
        out: RuleScan {
            has_clock: false,
            agents: 0,
            roles: 0,
            indexed_targets: None,
        },
        policies,
        conditions,
        action,
        names,
        targets,
        first_target,
        indexable: true,
    };
    r_rule_with(r, &mut sink)?;
    Ok(sink.out)
}

/// A scanned condition reads the clock.
pub const COND_CLOCK: u8 = 1;

/// Checks one condition of the condition table without allocating;
/// returns its [`COND_CLOCK`] bit.
///
/// # Errors
/// [`LoadError`] exactly where the condition decoder would fail (they are
/// one reader).
pub fn scan_condition_entry(r: &mut Reader<'_>) -> Result<u8, LoadError> {
    let mut flags = 0;
    r_condition_with::<Check>(
        r,
        |a| match a {
            AtomOf::Time { .. } | AtomOf::Weekdays { .. } => flags |= COND_CLOCK,
            _ => {}
        },
        |_| {},
    )?;
    Ok(flags)
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
        let mut r = Reader::with_strings(body, Strings::of(body, self.strings_at, &self.ends));
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
    pub fn read(r: &mut Reader<'_>) -> Result<Head, LoadError> {
        let policies = r.strs()?;
        let settings = Settings {
            combining: Combining::from_byte(r.u8()?)?,
            default_effect: Effect::from_byte(r.u8()?)?,
            default_risk: r.opt(|r| Risk::from_byte(r.u8()?))?,
            default_reason: r.opt(Reader::str)?,
            timezone: r.str()?,
            tzif: r.bytes()?.to_vec(),
            max_delegation_depth: r.opt(Reader::u32)?,
            ceiling_strict: r.bool()?,
            ceiling_actions: Vec::new(),
            default_policy: r.opt(Reader::varint)?,
        };
        let agents = r.vec(8, |r| {
            Ok(Agent {
                subject: Subject::from_byte(r.u8()?)?,
                name: r.str()?,
                policy: r.varint()?,
                roles: r.strs()?,
                tier: r.opt(|r| Tier::from_byte(r.u8()?))?,
                tags: r.strs()?,
                token_prefix: r.opt(Reader::str)?,
                models: r_access(r)?,
                tools: r_access(r)?,
                hosts: r_access(r)?,
                require_tls: r.opt(Reader::bool)?,
                limits: r.vec(4, |r| {
                    Ok(AgentLimit {
                        key: r.str()?,
                        metric: Metric::from_byte(r.u8()?)?,
                        rate: r_rate(r)?,
                        actions: r.opt(r_pattern::<Decode>)?,
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
        let mut head = Writer::default();
        head.str(&self.writ_version);
        head.out.extend_from_slice(&self.revision);
        let mut w = Writer::interning();
        w.strs(&self.policies);
        let s = &self.settings;
        w.u8(s.combining.to_byte());
        w.u8(s.default_effect.to_byte());
        w.opt(s.default_risk.as_ref(), |w, v| w.u8(v.to_byte()));
        w.opt(s.default_reason.as_ref(), |w, v| w.str(v));
        w.str(&s.timezone);
        w.bytes(&s.tzif);
        w.opt(s.max_delegation_depth.as_ref(), |w, v| w.u32(*v));
        w.bool(s.ceiling_strict);
        w.opt(s.default_policy.as_ref(), |w, v| w.varint(*v));
        w.vec(&self.agents, |w, a| {
            w.u8(a.subject.to_byte());
            w.str(&a.name);
            w.varint(a.policy);
            w.strs(&a.roles);
            w.opt(a.tier.as_ref(), |w, v| w.u8(v.to_byte()));
            w.strs(&a.tags);
            w.opt(a.token_prefix.as_ref(), |w, v| w.str(v));
            w_access(w, &a.models);
            w_access(w, &a.tools);
            w_access(w, &a.hosts);
            w.opt(a.require_tls.as_ref(), |w, v| w.bool(*v));
            w.vec(&a.limits, |w, l| {
                w.str(&l.key);
                w.u8(l.metric.to_byte());
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

    /// Decodes and checks a bundle body (of this runtime's format).
    ///
    /// # Errors
    /// [`LoadError::Corrupt`] for anything out of place.
    pub fn decode(bytes: &[u8]) -> Result<Model, LoadError> {
        let prelude = Prelude::read(bytes)?;
        let mut r = prelude.reader(bytes)?;
        let head = Head::read(&mut r)?;
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
mod tests;
