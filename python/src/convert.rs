//! Python values into request fields. Anything that is not plainly JSON-like
//! is refused with the key path that holds it: a request the binding does
//! not understand must raise, never decide.

use std::collections::BTreeMap;

use pyo3::PyTypeInfo;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use writ_runtime::Value;

/// Deeper context is refused (it also stops self-referencing containers).
pub const MAX_DEPTH: usize = 64;

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A Python string as Rust text.
pub fn text(obj: &Bound<'_, PyString>) -> PyResult<String> {
    Ok(obj.to_cow()?.into_owned())
}

/// What the last conversion of one dict found: its key objects in the
/// dict's order, each key's position in the converted (sorted) map, and,
/// for each key whose value was a dict, the same for that dict. Python
/// strings are immutable, so the same key objects in the same order are the
/// same keys: their text is neither read nor looked up again, only the
/// values are converted. A call site that builds its context from the same
/// literal keys (or keys Python interned) every time hits the cache at
/// every level.
#[derive(Debug, Default)]
pub struct KeyCache {
    pub(crate) keys: Vec<Known>,
}

/// One key of a [`KeyCache`].
#[derive(Debug)]
pub(crate) struct Known {
    pub(crate) key: Py<PyString>,
    /// Its position in the converted map.
    pub(crate) rank: usize,
    /// The cache of the dict its value was, if it was one.
    pub(crate) nested: KeyCache,
}

impl KeyCache {
    #[inline]
    pub(crate) fn forget(&mut self) {
        if !self.keys.is_empty() {
            self.keys.clear();
        }
    }
}

/// The most keys the cache serves in one dict (more take the general path).
pub(crate) const CACHED_KEYS: usize = 16;

/// `obj` as a `T` when its type is exactly `T` (one comparison of type
/// pointers, no call into Python; a subclass takes the general path).
#[inline]
fn exact<'a, 'py, T: PyTypeInfo>(obj: &'a Bound<'py, PyAny>) -> Option<&'a Bound<'py, T>> {
    if obj.is_exact_instance_of::<T>() {
        obj.cast_exact::<T>().ok()
    } else {
        None
    }
}

/// Why a value was refused, with the path to it (innermost first, built
/// only when something is wrong).
pub(crate) struct Bad {
    path: Vec<String>,
    kind: BadKind,
}

pub(crate) enum BadKind {
    Type(String),
    KeyType(String),
    NotFinite(f64),
    BigInt,
    Deep,
    Py(PyErr),
}

impl Bad {
    pub(crate) fn new(kind: BadKind) -> Bad {
        Bad {
            path: Vec::new(),
            kind,
        }
    }

    fn at(mut self, segment: String) -> Bad {
        self.path.push(segment);
        self
    }

    pub(crate) fn into_err(self) -> PyErr {
        let mut path = String::new();
        for seg in self.path.iter().rev() {
            if !path.is_empty() && !seg.starts_with('[') {
                path.push('.');
            }
            path.push_str(seg);
        }
        match self.kind {
            BadKind::Type(t) => PyTypeError::new_err(format!(
                "context value at `{path}` has type {t}; expected dict, list, str, int, float, bool or None"
            )),
            BadKind::KeyType(t) => {
                let shown = if path.is_empty() {
                    "context"
                } else {
                    path.as_str()
                };
                PyTypeError::new_err(format!(
                    "context keys must be str: `{shown}` has a key of type {t}"
                ))
            }
            BadKind::NotFinite(n) => PyValueError::new_err(format!(
                "context value at `{path}` is {n}; numbers must be finite"
            )),
            BadKind::BigInt => PyValueError::new_err(format!(
                "context value at `{path}` is an integer too large for a number"
            )),
            BadKind::Deep => PyValueError::new_err(format!(
                "context nests deeper than {MAX_DEPTH} levels at `{path}` (a container that holds itself?)"
            )),
            BadKind::Py(e) => e,
        }
    }
}

impl From<PyErr> for Bad {
    fn from(e: PyErr) -> Bad {
        Bad::new(BadKind::Py(e))
    }
}

pub(crate) fn update_map(
    dst: &mut BTreeMap<String, Value>,
    dict: &Bound<'_, PyDict>,
    depth: usize,
) -> Result<(), Bad> {
    if depth > MAX_DEPTH {
        return Err(Bad::new(BadKind::Deep));
    }
    // In place when every key is already there (and so no other key is).
    if dst.len() == dict.len() {
        let mut all = true;
        for (k, v) in dict.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(Bad::new(BadKind::KeyType(type_name(&k))));
            };
            let key = key.to_cow()?;
            match dst.get_mut(key.as_ref()) {
                Some(slot) => update_value(slot, &v, depth).map_err(|b| b.at(key.into_owned()))?,
                None => {
                    all = false;
                    break;
                }
            }
        }
        if all {
            return Ok(());
        }
    }
    dst.clear();
    for (k, v) in dict.iter() {
        let Ok(key) = k.cast::<PyString>() else {
            return Err(Bad::new(BadKind::KeyType(type_name(&k))));
        };
        let key = key.to_cow()?.into_owned();
        let mut value = Value::Null;
        if let Err(b) = update_value(&mut value, &v, depth) {
            return Err(b.at(key));
        }
        dst.insert(key, value);
    }
    Ok(())
}

/// [`update_value`] for the fast path, which gives up on any error (the
/// general path reports it): whether the value was converted.
pub(crate) fn converted(slot: &mut Value, obj: &Bound<'_, PyAny>, depth: usize) -> bool {
    update_value(slot, obj, depth).is_ok()
}

fn update_value(slot: &mut Value, obj: &Bound<'_, PyAny>, depth: usize) -> Result<(), Bad> {
    // The exact built-in types first, told apart by their type pointer
    // alone; a subclass (or anything else) takes the general path below.
    if let Some(s) = exact::<PyString>(obj) {
        return set_text(slot, s);
    }
    if let Some(i) = exact::<PyInt>(obj) {
        return set_int(slot, i);
    }
    if let Some(f) = exact::<PyFloat>(obj) {
        return set_float(slot, f);
    }
    if let Some(b) = exact::<PyBool>(obj) {
        *slot = Value::Bool(b.is_true());
        return Ok(());
    }
    if obj.is_none() {
        *slot = Value::Null;
        return Ok(());
    }
    if let Some(d) = exact::<PyDict>(obj) {
        return set_map(slot, d, depth);
    }
    if let Some(l) = exact::<PyList>(obj) {
        return update_list(slot, l.len(), l.iter(), depth);
    }
    update_other(slot, obj, depth)
}

/// [`update_value`] for subclasses of the built-in types and what is
/// none of them.
#[cold]
fn update_other(slot: &mut Value, obj: &Bound<'_, PyAny>, depth: usize) -> Result<(), Bad> {
    if let Ok(s) = obj.cast::<PyString>() {
        return set_text(slot, s);
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        *slot = Value::Bool(b.is_true());
        return Ok(());
    }
    if obj.is_instance_of::<PyInt>() {
        return set_int(slot, obj);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return set_float(slot, f);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return set_map(slot, d, depth);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return update_list(slot, l.len(), l.iter(), depth);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return update_list(slot, t.len(), t.iter(), depth);
    }
    Err(Bad::new(BadKind::Type(type_name(obj))))
}

/// Sets a string, reusing the slot's buffer when it holds one.
#[inline]
pub(crate) fn store_text(slot: &mut Value, text: &str) {
    match slot {
        Value::String(old) => {
            old.clear();
            old.push_str(text);
        }
        _ => *slot = Value::String(text.to_owned()),
    }
}

/// Sets a number, in place when the slot holds one (nothing to drop).
#[inline]
pub(crate) fn store_number(slot: &mut Value, n: f64) {
    match slot {
        Value::Number(old) => *old = n,
        _ => *slot = Value::Number(n),
    }
}

fn set_text(slot: &mut Value, s: &Bound<'_, PyString>) -> Result<(), Bad> {
    store_text(slot, s.to_str()?);
    Ok(())
}

fn set_int(slot: &mut Value, obj: &Bound<'_, PyAny>) -> Result<(), Bad> {
    // Most ints fit an i64: read without making a float object.
    if let Ok(i) = obj.extract::<i64>() {
        #[allow(
            clippy::cast_precision_loss,
            reason = "Python ints become f64 numbers, as in the JSON reader"
        )]
        store_number(slot, i as f64);
        return Ok(());
    }
    match obj.extract::<f64>() {
        Ok(n) if n.is_finite() => {
            store_number(slot, n);
            Ok(())
        }
        _ => Err(Bad::new(BadKind::BigInt)),
    }
}

fn set_float(slot: &mut Value, f: &Bound<'_, PyFloat>) -> Result<(), Bad> {
    let n = f.value();
    if !n.is_finite() {
        return Err(Bad::new(BadKind::NotFinite(n)));
    }
    store_number(slot, n);
    Ok(())
}

fn set_map(slot: &mut Value, d: &Bound<'_, PyDict>, depth: usize) -> Result<(), Bad> {
    if !matches!(slot, Value::Map(_)) {
        *slot = Value::Map(BTreeMap::new());
    }
    if let Value::Map(m) = slot {
        update_map(m, d, depth + 1)?;
    }
    Ok(())
}

fn update_list<'py>(
    slot: &mut Value,
    len: usize,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    depth: usize,
) -> Result<(), Bad> {
    if depth + 1 > MAX_DEPTH {
        return Err(Bad::new(BadKind::Deep));
    }
    if !matches!(slot, Value::List(_)) {
        *slot = Value::List(Vec::with_capacity(len));
    }
    let Value::List(out) = slot else {
        return Ok(());
    };
    out.truncate(len);
    let mut count = 0;
    for (i, item) in items.enumerate() {
        count = i + 1;
        let result = match out.get_mut(i) {
            Some(existing) => update_value(existing, &item, depth + 1),
            None => {
                let mut v = Value::Null;
                let r = update_value(&mut v, &item, depth + 1);
                out.push(v);
                r
            }
        };
        result.map_err(|b| b.at(format!("[{i}]")))?;
    }
    // The items read are the list (it cannot change while the GIL is
    // held, but a conversion is no place to rely on that).
    out.truncate(count);
    Ok(())
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
