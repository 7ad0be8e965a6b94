//! Python values into request fields. Anything that is not plainly JSON-like
//! is refused with the key path that holds it: a request the binding does
//! not understand must raise, never decide.

use std::collections::BTreeMap;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use writ_runtime::Value;

/// Deeper context is refused (it also stops self-referencing containers).
pub const MAX_DEPTH: usize = 64;

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A Python string as Rust text.
pub fn text(obj: &Bound<'_, PyString>) -> PyResult<String> {
    Ok(obj.to_cow()?.into_owned())
}

/// The request context: a dict with string keys and JSON-like values.
pub fn context(obj: &Bound<'_, PyAny>) -> PyResult<BTreeMap<String, Value>> {
    let Ok(dict) = obj.cast::<PyDict>() else {
        return Err(PyTypeError::new_err(format!(
            "context must be a dict, not {}",
            type_name(obj)
        )));
    };
    let mut path = String::new();
    map(dict, &mut path, 1)
}

fn map(
    dict: &Bound<'_, PyDict>,
    path: &mut String,
    depth: usize,
) -> PyResult<BTreeMap<String, Value>> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "context nests deeper than {MAX_DEPTH} levels at `{path}` (a container that holds itself?)"
        )));
    }
    let mut out = BTreeMap::new();
    for (k, v) in dict.iter() {
        let Ok(key) = k.cast::<PyString>() else {
            let shown = if path.is_empty() {
                "context"
            } else {
                path.as_str()
            };
            return Err(PyTypeError::new_err(format!(
                "context keys must be str: `{shown}` has a key of type {}",
                type_name(&k)
            )));
        };
        let key = text(key)?;
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(&key);
        let value = value(&v, path, depth)?;
        path.truncate(len);
        out.insert(key, value);
    }
    Ok(out)
}

fn value(obj: &Bound<'_, PyAny>, path: &mut String, depth: usize) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(text(s)?));
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::Number(n)),
            _ => Err(PyValueError::new_err(format!(
                "context value at `{path}` is an integer too large for a number"
            ))),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let n = f.value();
        if !n.is_finite() {
            return Err(PyValueError::new_err(format!(
                "context value at `{path}` is {n}; numbers must be finite"
            )));
        }
        return Ok(Value::Number(n));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(Value::Map(map(d, path, depth + 1)?));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return list(l.iter(), path, depth);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return list(t.iter(), path, depth);
    }
    Err(PyTypeError::new_err(format!(
        "context value at `{path}` has type {}; expected dict, list, str, int, float, bool or None",
        type_name(obj)
    )))
}

fn list<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    path: &mut String,
    depth: usize,
) -> PyResult<Value> {
    if depth + 1 > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "context nests deeper than {MAX_DEPTH} levels at `{path}` (a container that holds itself?)"
        )));
    }
    let mut out = Vec::new();
    for (i, item) in items.enumerate() {
        let len = path.len();
        path.push_str(&format!("[{i}]"));
        out.push(value(&item, path, depth + 1)?);
        path.truncate(len);
    }
    Ok(Value::List(out))
}

/// A list of strings (`chain`, `roles`, `tags`).
pub fn strings(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    let refuse = || {
        PyTypeError::new_err(format!(
            "{what} must be a list of str, not {}",
            type_name(obj)
        ))
    };
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(refuse());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.cast::<PyString>() {
            Ok(s) => text(s),
            Err(_) => Err(PyTypeError::new_err(format!(
                "{what}[{i}] must be str, not {}",
                type_name(item)
            ))),
        })
        .collect()
}

/// `tokens`: a non-negative int.
pub fn tokens(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "tokens must be an int, not {}",
            type_name(obj)
        )));
    }
    obj.extract::<u64>().map_err(|_| {
        PyValueError::new_err(format!(
            "tokens must be a non-negative integer below 2**64, not {obj}"
        ))
    })
}

/// `at`: an RFC 3339 string or an aware datetime.
pub fn at(obj: &Bound<'_, PyAny>) -> PyResult<jiff::Timestamp> {
    if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_cow()?;
        return s.parse::<jiff::Timestamp>().map_err(|e| {
            PyValueError::new_err(format!(
                "at: `{s}` is not an RFC 3339 time with an offset (like 2025-01-15T15:00:00Z): {e}"
            ))
        });
    }
    if obj.is_instance_of::<PyDateTime>() {
        if obj.call_method0("utcoffset")?.is_none() {
            return Err(PyValueError::new_err(
                "at: a naive datetime has no time zone; pass an aware one (e.g. datetime.now(timezone.utc))",
            ));
        }
        let iso = obj.call_method0("isoformat")?;
        let iso = iso.cast::<PyString>()?.to_cow()?.into_owned();
        return iso.parse::<jiff::Timestamp>().map_err(|e| {
            PyValueError::new_err(format!("at: cannot read the datetime `{iso}`: {e}"))
        });
    }
    Err(PyTypeError::new_err(format!(
        "at must be an aware datetime or an RFC 3339 str, not {}",
        type_name(obj)
    )))
}
