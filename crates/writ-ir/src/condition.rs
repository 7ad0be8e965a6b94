//! Conditions: boolean expressions over the request.
//!
//! A condition over a value the request does not carry is false, never an
//! error: `amount <= 100` does not hold for a request without `amount`, and
//! neither does `amount > 100`. `not` of such a comparison is true, so write
//! `exists` explicitly when absence must deny.

use std::fmt;

use writ_diagnostics::Span;

use crate::{Path, Pattern, TimeWindow, Value, WeekdaySet};

/// What a comparison reads from the request.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// A value of the request's `context`, by dotted path.
    Context(Path),
    /// The request's `target`.
    Target,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Context(p) => write!(f, "{p}"),
            Field::Target => f.write_str("target"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// True for the operators that order numbers.
    #[must_use]
    pub fn is_ordering(self) -> bool {
        matches!(self, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// `field op value`. Ordering operators compare numbers only (and strings
    /// lexicographically when both sides are strings).
    Compare {
        field: Field,
        op: CmpOp,
        value: Value,
        span: Span,
    },
    /// `field in [..]` / `field not in [..]`.
    In {
        field: Field,
        values: Vec<Value>,
        negated: bool,
        span: Span,
    },
    /// The field is a string matching a glob.
    Glob {
        field: Field,
        pattern: Pattern,
        span: Span,
    },
    /// The field is a list holding the value, or a string holding the substring.
    Contains {
        field: Field,
        value: Value,
        span: Span,
    },
    /// The field is present (and not null).
    Exists {
        field: Field,
        span: Span,
    },
    /// The request time, in the policy's time zone, lies in the window.
    Time {
        window: TimeWindow,
        span: Span,
    },
    /// The request's weekday, in the policy's time zone, is in the set.
    Weekdays {
        days: WeekdaySet,
        span: Span,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>, Span),
}

impl Condition {
    /// Conjunction in canonical form: nested conjunctions are flattened and a
    /// one-element `All` is its element. Every front end builds through this
    /// (and [`Condition::any`]), so the same condition written in YAML or in
    /// the writ language lowers to the same IR.
    #[must_use]
    pub fn all(parts: Vec<Condition>) -> Option<Condition> {
        let mut flat = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Condition::All(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        match flat.len() {
            0 => None,
            1 => flat.pop(),
            _ => Some(Condition::All(flat)),
        }
    }

    /// Disjunction in canonical form (see [`Condition::all`]).
    #[must_use]
    pub fn any(parts: Vec<Condition>) -> Option<Condition> {
        let mut flat = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Condition::Any(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        match flat.len() {
            0 => None,
            1 => flat.pop(),
            _ => Some(Condition::Any(flat)),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Compare {
                field, op, value, ..
            } => write!(f, "{field} {} {value}", op.symbol()),
            Condition::In {
                field,
                values,
                negated,
                ..
            } => {
                let list = Value::List(values.clone());
                if *negated {
                    write!(f, "{field} not in {list}")
                } else {
                    write!(f, "{field} in {list}")
                }
            }
            Condition::Glob { field, pattern, .. } => {
                write!(f, "{field} matches {:?}", pattern.as_str())
            }
            Condition::Contains { field, value, .. } => write!(f, "{field} contains {value}"),
            Condition::Exists { field, .. } => write!(f, "exists {field}"),
            Condition::Time { window, .. } => write!(f, "time in {window}"),
            Condition::Weekdays { days, .. } => write!(f, "weekday in [{days}]"),
            Condition::All(parts) => join(f, parts, " and "),
            Condition::Any(parts) => join(f, parts, " or "),
            Condition::Not(inner, _) => write!(f, "not ({inner})"),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, parts: &[Condition], sep: &str) -> fmt::Result {
    f.write_str("(")?;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{p}")?;
    }
    f.write_str(")")
}
