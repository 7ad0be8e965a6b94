//! The request context from Python: the dispatch between the fast path
//! (`fast`, for a dict of the same key objects as last time) and the
//! general conversion (`convert`), with the key caches that make the fast
//! path possible. The fast path calls back here, through the function it
//! is given, for a nested dict it has no cache for yet.

use std::collections::BTreeMap;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use writ_runtime::Value;

use crate::convert::{
    Bad, BadKind, CACHED_KEYS, KeyCache, Known, MAX_DEPTH, type_name, update_map,
};
use crate::fast;

/// The request context: a dict with string keys and JSON-like values.
pub fn read(obj: &Bound<'_, PyAny>) -> PyResult<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    update_cached(&mut out, obj, &mut KeyCache::default())?;
    Ok(out)
}

/// Makes `dst` the conversion of `obj`, reusing what `dst` holds (no
/// allocation when the shape is the same as last time) and remembering
/// the keys in `cache` for the next call.
pub fn update_cached(
    dst: &mut BTreeMap<String, Value>,
    obj: &Bound<'_, PyAny>,
    cache: &mut KeyCache,
) -> PyResult<()> {
    let Ok(dict) = obj.cast::<PyDict>() else {
        return Err(PyTypeError::new_err(format!(
            "context must be a dict, not {}",
            type_name(obj)
        )));
    };
    update_dict(dst, dict, cache, 1).map_err(Bad::into_err)
}

/// One dict at `depth` (the context is 1), through its cache.
fn update_dict(
    dst: &mut BTreeMap<String, Value>,
    dict: &Bound<'_, PyDict>,
    cache: &mut KeyCache,
    depth: usize,
) -> Result<(), Bad> {
    if depth > MAX_DEPTH {
        return Err(Bad::new(BadKind::Deep));
    }
    if fast::same_shape(dst, dict, cache, depth, refilled).is_ok() {
        return Ok(());
    }
    // The general path (a new shape, a value the fast path leaves to it,
    // an error to report with its key path); a value the attempt converted
    // already is converted again.
    cache.forget();
    update_map(dst, dict, depth)?;
    if fast::enabled() {
        remember(dst, dict, cache);
    }
    Ok(())
}

/// Fills `cache` from a dict just converted into `dst` (left empty when
/// the dict has too many keys or a key that is not exactly a `str`).
fn remember(dst: &BTreeMap<String, Value>, dict: &Bound<'_, PyDict>, cache: &mut KeyCache) {
    if dict.len() > CACHED_KEYS {
        return;
    }
    for (k, _) in dict.iter() {
        let Ok(key) = k.cast_into_exact::<PyString>() else {
            break;
        };
        let Some(rank) = key
            .to_str()
            .ok()
            .and_then(|text| dst.keys().position(|have| have == text))
        else {
            break;
        };
        cache.keys.push(Known {
            key: key.unbind(),
            rank,
            nested: KeyCache::default(),
        });
    }
    if cache.keys.len() != dst.len() {
        cache.forget();
    }
}

/// Makes `slot` the conversion of `dict` (a dict) through its `cache`,
/// for the fast path, which gives up on any error: whether it was
/// converted.
fn refilled(slot: &mut Value, dict: &Bound<'_, PyAny>, cache: &mut KeyCache, depth: usize) -> bool {
    let Ok(d) = dict.cast::<PyDict>() else {
        return false;
    };
    if !matches!(slot, Value::Map(_)) {
        cache.forget();
        *slot = Value::Map(BTreeMap::new());
    }
    match slot {
        Value::Map(m) => update_dict(m, d, cache, depth).is_ok(),
        _ => false,
    }
}
