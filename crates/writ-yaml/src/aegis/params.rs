//! `param_*` conditions, with Python's meaning of `==`, `<`, `in` and
//! `re.search`.
//!
//! agent-aegis 1.0.0 checks `param_op: {p: v}` as `op(params.get(p), v)`,
//! false when the parameter is missing or null. Python differs from writ in
//! three ways, and each is lowered so that writ decides exactly as Python:
//!
//! - `True == 1` and `False == 0` (also inside lists and maps), and
//!   booleans order as 1 and 0: `param_eq: {n: 1}` holds for `true`;
//! - comparing values Python cannot order (`"a" > 5`), `v in 5`, or a list
//!   in a map's keys raises an exception: the request fails in Aegis;
//! - `param_matches` is a regular-expression search (see [`super::pyre`]).
//!
//! Each condition becomes a writ condition that holds when Python's
//! holds, is false when Python's is false, and cannot be judged exactly
//! when Python raises. A rule whose conditions can raise then gets a deny
//! rule just before it ([`guard`]) that applies when Aegis would raise on
//! the request, so what Aegis cannot evaluate is denied, never skipped
//! (which could let a later `auto` rule allow it). Two corners are not
//! exact and deny instead (listed in docs/dialects.md): `param_contains`
//! of a string, number, boolean or null in a parameter that is a map (Python
//! looks among its keys), and `param_matches` on a value that is not a
//! string (Python searches its `str()`).

use writ_diagnostics::{Code, Diagnostic};
use writ_ir::{CmpOp, Condition, Field, Path, Value};

use super::{Cond, cannot_judge, pyre, pyyaml};
use crate::cx::Cx;
use crate::tree::{Kind, Node};

/// Python's `re` match is capped: a pattern over 1,000 characters never
/// matches (`_MAX_REGEX_LEN` in aegis/core/conditions.py).
const MAX_REGEX_LEN: usize = 1000;
/// Lists and maps compared with `==` that hold more booleans, zeros and
/// ones than this are refused: each may stand for the other, so the
/// lowering lists every variant.
const MAX_SWAPS: u32 = 6;

pub(crate) fn lower(cx: &mut Cx<'_>, op: &str, node: &Node, out: &mut Vec<Cond>) {
    let Some(entries) = node.as_map() else {
        cx.wrong_type(
            node,
            &format!("`{op}`"),
            "a mapping from parameter name to value",
        );
        return;
    };
    for (k, v) in entries {
        let span = k.span.cover(v.span);
        if !pyyaml::key_is_string(&k.text, cx.source, k.span.start) {
            cx.report(
                Diagnostic::new(
                    Code::WrongType,
                    k.span,
                    format!("the parameter name `{}` is not a string to Aegis", k.text),
                )
                .with_help(format!(
                    "PyYAML reads an unquoted `{}` as a number, boolean or null, which never names a parameter; quote it",
                    k.text
                )),
            );
            continue;
        }
        let field = Field::Context(Path::single(&k.text));
        let Some(expected) = value(cx, v, op, &k.text) else {
            continue;
        };
        if matches!(op, "param_eq" | "param_contains") && too_many_swaps(cx, v, &expected, op) {
            continue;
        }
        let cond = match op {
            "param_eq" => Some(Cond {
                condition: equals(&field, &expected, span),
                may_fail: false,
            }),
            "param_contains" => Some(Cond {
                condition: contains(&field, &expected, span),
                may_fail: true,
            }),
            "param_matches" => matches(cx, &field, &expected, v, span),
            _ => order(cx, op, &field, &expected, v, span),
        };
        out.extend(cond);
    }
}

/// The expected value: finite numbers, no dates.
fn value(cx: &mut Cx<'_>, node: &Node, op: &str, key: &str) -> Option<Value> {
    let mut bad = None;
    check(node, cx.source, &mut bad);
    if let Some((span, why)) = bad {
        cx.report(
            Diagnostic::new(
                Code::InvalidOperand,
                span,
                format!("`{op}.{key}` holds {why}"),
            )
            .with_help("PyYAML reads it so, and no request parameter ever equals it; quote it if it is text"),
        );
        return None;
    }
    Some(cx.value(node))
}

fn check(node: &Node, source: &str, bad: &mut Option<(writ_diagnostics::Span, &'static str)>) {
    match &node.kind {
        Kind::Float(f) if !f.is_finite() => *bad = Some((node.span, "a number that is not finite")),
        Kind::Str(_) if pyyaml::is_date(node, source) => *bad = Some((node.span, "a date")),
        Kind::Seq(items) => items.iter().for_each(|i| check(i, source, bad)),
        Kind::Map(entries) => entries.iter().for_each(|(_, v)| check(v, source, bad)),
        _ => {}
    }
}

/// `actual == expected`, Python's equality (`True == 1`).
fn equals(field: &Field, expected: &Value, span: writ_diagnostics::Span) -> Condition {
    if *expected == Value::Null {
        // A null parameter is never compared: false.
        return Condition::Any(Vec::new());
    }
    let variants = variants(expected);
    if let [only] = variants.as_slice() {
        return Condition::Compare {
            field: field.clone(),
            op: CmpOp::Eq,
            value: only.clone(),
            span,
        };
    }
    Condition::In {
        field: field.clone(),
        values: variants,
        negated: false,
        span,
    }
}

/// `expected in actual`: a substring, an item equal as Python compares
/// (`True == 1`), or (not exact, see the module) a key of a map.
fn contains(field: &Field, expected: &Value, span: writ_diagnostics::Span) -> Condition {
    let parts = variants(expected)
        .into_iter()
        .map(|value| Condition::Contains {
            field: field.clone(),
            value,
            span,
        })
        .collect();
    Condition::any(parts).unwrap_or(Condition::Any(Vec::new()))
}

/// The values Python's `==` makes equal to `v`: booleans and the numbers
/// 0 and 1 swapped, everywhere inside (at most 2^[`MAX_SWAPS`]).
fn variants(v: &Value) -> Vec<Value> {
    match v {
        Value::Bool(b) => vec![v.clone(), Value::Number(if *b { 1.0 } else { 0.0 })],
        Value::Number(n) if *n == 0.0 || *n == 1.0 => vec![v.clone(), Value::Bool(*n == 1.0)],
        Value::List(items) => {
            let mut out = vec![Vec::new()];
            for item in items {
                let options = variants(item);
                out = out
                    .iter()
                    .flat_map(|prefix| {
                        options.iter().map(move |o| {
                            let mut next: Vec<Value> = prefix.clone();
                            next.push(o.clone());
                            next
                        })
                    })
                    .collect();
            }
            out.into_iter().map(Value::List).collect()
        }
        Value::Map(entries) => {
            let mut out = vec![std::collections::BTreeMap::new()];
            for (k, item) in entries {
                let options = variants(item);
                out = out
                    .iter()
                    .flat_map(|prefix| {
                        options.iter().map(move |o| {
                            let mut next = prefix.clone();
                            next.insert(k.clone(), o.clone());
                            next
                        })
                    })
                    .collect();
            }
            out.into_iter().map(Value::Map).collect()
        }
        _ => vec![v.clone()],
    }
}

/// How many booleans, zeros and ones `v` holds inside a list or map.
fn swaps(v: &Value) -> u32 {
    match v {
        Value::Bool(_) => 1,
        Value::Number(n) if *n == 0.0 || *n == 1.0 => 1,
        Value::List(items) => items.iter().map(swaps).sum(),
        Value::Map(entries) => entries.values().map(swaps).sum(),
        _ => 0,
    }
}

/// Refuses a list or map with too many values that Python's `==` swaps.
fn too_many_swaps(cx: &mut Cx<'_>, node: &Node, v: &Value, op: &str) -> bool {
    if matches!(v, Value::List(_) | Value::Map(_)) && swaps(v) > MAX_SWAPS {
        cx.report(
            Diagnostic::new(
                Code::InvalidOperand,
                node.span,
                format!("`{op}` compares a value with more than {MAX_SWAPS} booleans, zeros and ones"),
            )
            .with_help("Python's `==` makes `true` equal `1` and `false` equal `0` inside lists and maps, and writ spells out each case; compare fewer of them at once"),
        );
        return true;
    }
    false
}

/// `param_gt/lt/gte/lte`: numbers (booleans as 0 and 1) or strings; any
/// other pair raises in Python.
fn order(
    cx: &mut Cx<'_>,
    op: &str,
    field: &Field,
    expected: &Value,
    node: &Node,
    span: writ_diagnostics::Span,
) -> Option<Cond> {
    let cmp = match op {
        "param_gt" => CmpOp::Gt,
        "param_lt" => CmpOp::Lt,
        "param_gte" => CmpOp::Ge,
        _ => CmpOp::Le,
    };
    let holds = |a: f64, b: f64| match cmp {
        CmpOp::Gt => a > b,
        CmpOp::Lt => a < b,
        CmpOp::Ge => a >= b,
        _ => a <= b,
    };
    let condition = match expected {
        Value::String(_) => Condition::Compare {
            field: field.clone(),
            op: cmp,
            value: expected.clone(),
            span,
        },
        Value::Number(_) | Value::Bool(_) => {
            let n = match expected {
                Value::Bool(b) => f64::from(u8::from(*b)),
                other => other.as_f64().unwrap_or_default(),
            };
            // A boolean parameter is 1 or 0 to Python: whether it passes is
            // known now; the number comparison must not see it (writ cannot
            // order a boolean).
            let mut parts = vec![Condition::All(vec![
                Condition::Not(
                    Box::new(Condition::In {
                        field: field.clone(),
                        values: vec![Value::Bool(true), Value::Bool(false)],
                        negated: false,
                        span,
                    }),
                    span,
                ),
                Condition::Compare {
                    field: field.clone(),
                    op: cmp,
                    value: Value::Number(n),
                    span,
                },
            ])];
            for b in [true, false] {
                if holds(f64::from(u8::from(b)), n) {
                    parts.push(Condition::Compare {
                        field: field.clone(),
                        op: CmpOp::Eq,
                        value: Value::Bool(b),
                        span,
                    });
                }
            }
            Condition::any(parts).unwrap_or(Condition::Any(Vec::new()))
        }
        _ => {
            cx.report(
                Diagnostic::new(
                    Code::InvalidOperand,
                    node.span,
                    format!("`{op}` compares with {}", expected.kind()),
                )
                .with_help("agent-aegis 1.0.0 orders numbers and strings; with a list, map or null it fails on every request that has the parameter; compare with a number or a string"),
            );
            return None;
        }
    };
    Some(Cond {
        condition,
        may_fail: true,
    })
}

/// `re.search(str(expected), str(actual))`.
fn matches(
    cx: &mut Cx<'_>,
    field: &Field,
    expected: &Value,
    node: &Node,
    span: writ_diagnostics::Span,
) -> Option<Cond> {
    let pattern = match expected {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Value::Null => "None".to_owned(),
        Value::Number(n) if matches!(node.kind, Kind::Int(_)) => format!("{n}"),
        _ => {
            cx.report(
                Diagnostic::new(
                    Code::InvalidOperand,
                    node.span,
                    format!("`param_matches` takes a pattern, found {}", expected.kind()),
                )
                .with_help("write the regular expression as a string"),
            );
            return None;
        }
    };
    if pattern.chars().count() > MAX_REGEX_LEN {
        // Aegis refuses to search with it: the condition is false.
        return Some(Cond {
            condition: Condition::Any(Vec::new()),
            may_fail: false,
        });
    }
    match pyre::translate(&pattern) {
        Ok(pyre::Search::Always) => Some(Cond {
            condition: Condition::Exists {
                field: field.clone(),
                span,
            },
            may_fail: false,
        }),
        Ok(pyre::Search::Glob(g)) => {
            let p = cx.pattern(
                &writ_ir::Spanned::new(g, node.span),
                "`param_matches`",
                false,
            )?;
            Some(Cond {
                condition: Condition::Glob {
                    field: field.clone(),
                    pattern: p,
                    span,
                },
                may_fail: true,
            })
        }
        Err(why) => {
            cannot_judge(
                cx,
                node.span,
                format!("writ cannot match the regular expression `{pattern}`: {why}"),
                "writ reads the part of Python's regular expressions a glob can say: characters, `.`, classes `[..]`, `?` after one of those, `^` first and `$` last",
            );
            None
        }
    }
}

/// The condition of the deny rule that precedes a rule whose conditions
/// can fail in Aegis: Aegis evaluates them in order and stops at the first
/// false one, so it fails on a request when, for some condition `c`, every
/// condition before `c` holds and `c` fails. A condition `c` fails exactly
/// when writ cannot judge it, and `c and not c` is then the only outcome
/// that is not false (it is false when `c` holds and when it does not). A
/// deny rule applies unless its condition is false, so the guard denies
/// exactly those requests.
pub(crate) fn guard(conditions: &[Cond], span: writ_diagnostics::Span) -> Option<Condition> {
    let mut terms = Vec::new();
    for (j, c) in conditions.iter().enumerate() {
        if !c.may_fail {
            continue;
        }
        let mut term: Vec<Condition> = conditions
            .get(..j)
            .unwrap_or_default()
            .iter()
            .map(|p| p.condition.clone())
            .collect();
        term.push(c.condition.clone());
        term.push(Condition::Not(Box::new(c.condition.clone()), span));
        terms.push(Condition::All(term));
    }
    Condition::any(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_equality_swaps_booleans_with_zero_and_one() {
        assert_eq!(
            variants(&Value::Number(1.0)),
            [Value::Number(1.0), Value::Bool(true)]
        );
        assert_eq!(variants(&Value::Number(2.0)), [Value::Number(2.0)]);
        let list = Value::List(vec![Value::Bool(false), Value::String("a".into())]);
        assert_eq!(
            variants(&list),
            [
                Value::List(vec![Value::Bool(false), Value::String("a".into())]),
                Value::List(vec![Value::Number(0.0), Value::String("a".into())]),
            ]
        );
        assert_eq!(swaps(&list), 1);
    }
}
