//! The condition VM: fields read from the request (flat and nested
//! dotted keys), atoms judged in three-valued logic, postfix code run.

use super::*;

/// What a field reads from the request: missing (absent or null), a
/// value, or, for a dotted path whose flat key (`{"a.b": ..}`) and nested
/// maps (`{"a": {"b": ..}}`) both hold values that differ, ambiguous.
pub(super) enum Read<'r> {
    Missing,
    Str(&'r str),
    Value(&'r Value),
    Ambiguous,
}

pub(super) fn read<'r>(field: &Field, req: &'r crate::request::Request) -> Read<'r> {
    match field {
        Field::Target => req.target.as_deref().map_or(Read::Missing, Read::Str),
        Field::Context(path) => {
            let nested = nested(path, &req.context);
            let flat = if path.len() > 1 {
                flat(path, &req.context)
            } else {
                None
            };
            let v = match (flat, nested) {
                (Some(a), Some(b)) if !a.loosely_equals(b) => return Read::Ambiguous,
                (Some(v), _) | (None, Some(v)) => v,
                (None, None) => return Read::Missing,
            };
            if matches!(v, Value::Null) {
                Read::Missing
            } else {
                Read::Value(v)
            }
        }
    }
}

pub(super) fn nested<'r>(
    path: &[String],
    context: &'r std::collections::BTreeMap<String, Value>,
) -> Option<&'r Value> {
    let (first, rest) = path.split_first()?;
    let mut v = context.get(first)?;
    for seg in rest {
        match v {
            Value::Map(m) => v = m.get(seg)?,
            _ => return None,
        }
    }
    Some(v)
}

/// The value under the whole dotted path as one key, found without
/// building the key: keys beginning with the first segment are adjacent.
pub(super) fn flat<'r>(
    path: &[String],
    context: &'r std::collections::BTreeMap<String, Value>,
) -> Option<&'r Value> {
    use std::ops::Bound;
    let first = path.first()?.as_str();
    context
        .range::<str, _>((Bound::Included(first), Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(first))
        .find(|(k, _)| is_joined(k, path))
        .map(|(_, v)| v)
}

/// Whether `key` is the segments joined by dots.
pub(super) fn is_joined(key: &str, path: &[String]) -> bool {
    let mut rest = key;
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            match rest.strip_prefix('.') {
                Some(r) => rest = r,
                None => return false,
            }
        }
        match rest.strip_prefix(seg.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// A field's value (copied), `None` when missing or ambiguous.
pub(super) fn lookup(field: &Field, req: &crate::request::Request) -> Option<Value> {
    match read(field, req) {
        Read::Str(s) => Some(Value::String(s.to_owned())),
        Read::Value(v) => Some(v.clone()),
        Read::Missing | Read::Ambiguous => None,
    }
}

/// Truth values of the condition code: three-valued (Kleene), so that a
/// guard that cannot be judged never opens a door.
pub(super) const FALSE: u8 = 0;
pub(super) const TRUE: u8 = 1;
pub(super) const UNKNOWN: u8 = 2;

pub(super) fn truth(b: bool) -> u8 {
    u8::from(b)
}

pub(super) fn and(a: u8, b: u8) -> u8 {
    if a == FALSE || b == FALSE {
        FALSE
    } else if a == UNKNOWN || b == UNKNOWN {
        UNKNOWN
    } else {
        TRUE
    }
}

pub(super) fn or(a: u8, b: u8) -> u8 {
    if a == TRUE || b == TRUE {
        TRUE
    } else if a == UNKNOWN || b == UNKNOWN {
        UNKNOWN
    } else {
        FALSE
    }
}

/// Whether a rule of `effect` applies given its condition's truth: an
/// allow needs true; a deny or an approval applies unless false.
pub(super) fn lets_apply(t: u8, effect: Effect) -> bool {
    match effect {
        Effect::Allow => t == TRUE,
        Effect::Deny | Effect::Approve => t != FALSE,
    }
}

pub(super) fn holds(c: &PCond, req: &crate::request::Request, clock: &Clock) -> u8 {
    // The common condition, one comparison, without the stack.
    if let [Op::Atom(i)] = c.code.as_slice() {
        return c
            .atoms
            .get(*i as usize)
            .map_or(UNKNOWN, |a| atom(a, req, clock));
    }
    let mut stack = [FALSE; 32];
    let mut spill: Vec<u8> = Vec::new();
    let mut len = 0usize;
    let push = |stack: &mut [u8; 32], spill: &mut Vec<u8>, len: &mut usize, v: u8| {
        if let Some(slot) = stack.get_mut(*len) {
            *slot = v;
        } else {
            spill.push(v);
        }
        *len += 1;
    };
    // An empty stack (a corrupt program) reads as unknown: it never
    // opens a door.
    let pop = |stack: &[u8; 32], spill: &mut Vec<u8>, len: &mut usize| -> u8 {
        if *len == 0 {
            return UNKNOWN;
        }
        *len -= 1;
        if *len >= stack.len() {
            spill.pop().unwrap_or(UNKNOWN)
        } else {
            stack.get(*len).copied().unwrap_or(UNKNOWN)
        }
    };
    for op in &c.code {
        match op {
            Op::Atom(i) => {
                let v = c
                    .atoms
                    .get(*i as usize)
                    .map_or(UNKNOWN, |a| atom(a, req, clock));
                push(&mut stack, &mut spill, &mut len, v);
            }
            Op::All(n) => {
                let mut v = TRUE;
                for _ in 0..*n {
                    v = and(v, pop(&stack, &mut spill, &mut len));
                }
                push(&mut stack, &mut spill, &mut len, v);
            }
            Op::Any(n) => {
                let mut v = FALSE;
                for _ in 0..*n {
                    v = or(v, pop(&stack, &mut spill, &mut len));
                }
                push(&mut stack, &mut spill, &mut len, v);
            }
            Op::Not => {
                let v = match pop(&stack, &mut spill, &mut len) {
                    TRUE => FALSE,
                    FALSE => TRUE,
                    _ => UNKNOWN,
                };
                push(&mut stack, &mut spill, &mut len, v);
            }
        }
    }
    pop(&stack, &mut spill, &mut len)
}

pub(super) fn eq(l: &Read<'_>, v: &Value) -> bool {
    match l {
        Read::Str(s) => v.as_str() == Some(*s),
        Read::Value(a) => a.loosely_equals(v),
        Read::Missing | Read::Ambiguous => false,
    }
}

/// An atom's truth: false on a missing value; unknown on an ambiguous
/// path or a value of a type the operator is not defined on.
pub(super) fn atom(a: &PAtom, req: &crate::request::Request, clock: &Clock) -> u8 {
    match a {
        PAtom::Compare { field, op, value } => {
            let actual = read(field, req);
            match actual {
                Read::Missing => return FALSE,
                Read::Ambiguous => return UNKNOWN,
                Read::Str(_) | Read::Value(_) => {}
            }
            match op {
                CompareOp::Eq => truth(eq(&actual, value)),
                CompareOp::Ne => truth(!eq(&actual, value)),
                CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => {
                    let ord = match (&actual, value) {
                        (Read::Value(Value::Number(a)), Value::Number(b)) => a.partial_cmp(b),
                        (Read::Value(Value::String(a)), Value::String(b)) => {
                            Some(a.as_str().cmp(b.as_str()))
                        }
                        (Read::Str(a), Value::String(b)) => Some((*a).cmp(b.as_str())),
                        _ => None,
                    };
                    match (ord, op) {
                        (Some(o), CompareOp::Lt) => truth(o == Ordering::Less),
                        (Some(o), CompareOp::Le) => truth(o != Ordering::Greater),
                        (Some(o), CompareOp::Gt) => truth(o == Ordering::Greater),
                        (Some(o), CompareOp::Ge) => truth(o != Ordering::Less),
                        (Some(_), CompareOp::Eq | CompareOp::Ne) | (None, _) => UNKNOWN,
                    }
                }
            }
        }
        PAtom::In {
            field,
            values,
            negated,
        } => {
            let actual = read(field, req);
            match actual {
                Read::Missing => FALSE,
                Read::Ambiguous => UNKNOWN,
                Read::Str(_) | Read::Value(_) => {
                    truth(values.iter().any(|v| eq(&actual, v)) != *negated)
                }
            }
        }
        PAtom::Glob { field, matcher } => match read(field, req) {
            Read::Missing => FALSE,
            Read::Str(s) => truth(matcher.is_match(s)),
            Read::Value(Value::String(s)) => truth(matcher.is_match(s)),
            Read::Value(_) | Read::Ambiguous => UNKNOWN,
        },
        PAtom::Contains { field, value } => {
            let substring = |s: &str| value.as_str().map_or(UNKNOWN, |n| truth(s.contains(n)));
            match read(field, req) {
                Read::Missing => FALSE,
                Read::Value(Value::List(items)) => {
                    truth(items.iter().any(|i| i.loosely_equals(value)))
                }
                Read::Value(Value::String(s)) => substring(s),
                Read::Str(s) => substring(s),
                Read::Value(_) | Read::Ambiguous => UNKNOWN,
            }
        }
        PAtom::Exists { field } => truth(!matches!(read(field, req), Read::Missing)),
        PAtom::Time { start, end } => {
            let t = clock.time;
            truth(if start < end {
                *start <= t && t < *end
            } else {
                t >= *start || t < *end
            })
        }
        PAtom::Weekdays { mask } => truth(mask & (1 << clock.weekday) != 0),
    }
}

/// The path of the first number in the context that is NaN or infinite
/// (the Rust API can carry one; JSON and Python cannot): such a request is
/// denied, since no comparison on it means anything.
pub(super) fn non_finite(context: &std::collections::BTreeMap<String, Value>) -> Option<String> {
    pub(super) fn bad(v: &Value) -> bool {
        match v {
            Value::Number(n) => !n.is_finite(),
            Value::List(items) => items.iter().any(bad),
            Value::Map(m) => m.values().any(bad),
            _ => false,
        }
    }
    pub(super) fn path_to(v: &Value, path: &mut String) {
        match v {
            Value::List(items) => {
                if let Some((i, item)) = items.iter().enumerate().find(|(_, i)| bad(i)) {
                    path.push_str(&format!("[{i}]"));
                    path_to(item, path);
                }
            }
            Value::Map(m) => {
                if let Some((k, item)) = m.iter().find(|(_, i)| bad(i)) {
                    path.push('.');
                    path.push_str(k);
                    path_to(item, path);
                }
            }
            _ => {}
        }
    }
    let (k, v) = context.iter().find(|(_, v)| bad(v))?;
    let mut path = k.clone();
    path_to(v, &mut path);
    Some(path)
}
