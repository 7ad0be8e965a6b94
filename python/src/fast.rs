//! The common case of converting a context — a dict of the same key
//! objects as last time, holding `str`, `int`, `float`, `bool`, `None`,
//! `dict` and `list` values — read without touching reference counts.
//!
//! Under the stable ABI every reference count change and every type check
//! is a call into the interpreter; iterating a dict through PyO3 costs four
//! of each per item. Here items are read as borrowed pointers
//! (`PyDict_Next`, `PyList_GetItem`) and told apart by their type pointer.
//!
//! Why this is sound: a borrowed pointer stays valid while its container
//! is alive and unchanged, and only Python code can change a container.
//! So:
//! - every container iterated here is strongly held while it is iterated
//!   (the context by the caller; a nested dict or list by a reference taken
//!   here);
//! - on the path that succeeds nothing runs Python code: type pointers are
//!   compared, and `PyUnicode_AsUTF8AndSize`, `PyLong_AsLongAndOverflow`
//!   and `PyFloat_AsDouble` are called only on exact `str`, `int` and
//!   `float` objects, where they read the object and call nothing back;
//! - a value of any other type is handed to the general (safe) conversion
//!   as an owned reference — which may run Python code — and no borrowed
//!   pointer of that item is touched afterwards: the loop goes on with
//!   `PyDict_Next`/`PyList_GetItem` on a container still held, which read
//!   its current state;
//! - when a call fails (a string with a lone surrogate, which raises and so
//!   may run a collection and finalizers) the error is cleared and the
//!   whole conversion is given up without touching any borrowed pointer
//!   again: the general path starts over with owned references and reports
//!   the error with its key path.
//!
//! Giving up leaves every key cache describing its map's keys (values may
//! be half updated, which the general path redoes), so it is never wrong,
//! only slower.
//!
//! All of this relies on the GIL and on CPython's object layout: the
//! module declares that it needs the GIL (a free-threaded interpreter turns
//! it on when importing it), and at import the fast path is enabled only on
//! CPython with the GIL on ([`allow_if_sound`]); elsewhere (PyPy,
//! `PYTHON_GIL=0`) every context takes the general path.
#![allow(
    unsafe_code,
    reason = "the fast path reads borrowed pointers; the module documentation says why it is sound"
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use writ_runtime::Value;

use crate::convert::{CACHED_KEYS, KeyCache, MAX_DEPTH, converted, store_number, store_text};

/// The cached general conversion of a nested dict the fast path has no
/// cache for (or cannot take): makes the slot that dict's conversion and
/// says whether it could. The caller (`context`) passes its own, so this
/// module does not depend on it.
pub type Refill = fn(&mut Value, &Bound<'_, PyAny>, &mut KeyCache, usize) -> bool;

/// Set at import when the interpreter is CPython with the GIL on.
static SOUND: AtomicBool = AtomicBool::new(false);

/// Enables the fast path when this interpreter is CPython and its GIL is
/// on (`sys._is_gil_enabled`, where it exists, says so).
///
/// # Errors
/// When `sys` cannot be read.
pub fn allow_if_sound(py: Python<'_>) -> PyResult<()> {
    let sys = py.import("sys")?;
    let cpython = sys
        .getattr("implementation")?
        .getattr("name")?
        .extract::<String>()?
        == "cpython";
    let gil = match sys.getattr("_is_gil_enabled") {
        Ok(f) => f.call0()?.is_truthy()?,
        Err(_) => true,
    };
    SOUND.store(cpython && gil, Ordering::Relaxed);
    Ok(())
}

/// Whether the fast path runs here (key caches are kept only then).
pub fn enabled() -> bool {
    SOUND.load(Ordering::Relaxed)
}

/// The fast path gave up; the general path takes over.
#[derive(Debug)]
pub struct GiveUp;

/// A reference held for as long as this lives (a nested container being
/// iterated).
struct Held(*mut ffi::PyObject);

impl Held {
    /// # Safety
    /// `obj` is a live object (a borrowed pointer not yet invalidated).
    unsafe fn new(obj: *mut ffi::PyObject) -> Held {
        // SAFETY: the caller's pointer is live; the GIL is held.
        unsafe { ffi::Py_IncRef(obj) };
        Held(obj)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `new`. The count cannot reach zero
        // here unless Python code released the container's other owners,
        // in which case freeing it is right.
        unsafe { ffi::Py_DecRef(self.0) };
    }
}

/// Converts `dict` into `dst` in place when it has exactly the key objects
/// `cache` remembers, in the same order.
pub fn same_shape(
    dst: &mut BTreeMap<String, Value>,
    dict: &Bound<'_, PyDict>,
    cache: &mut KeyCache,
    depth: usize,
    refill: Refill,
) -> Result<(), GiveUp> {
    if !enabled() {
        return Err(GiveUp);
    }
    // SAFETY: `dict` is held by the caller for the whole call.
    unsafe { dict_in_place(dict.py(), dst, dict.as_ptr(), cache, depth, refill) }
}

/// # Safety
/// `dict` is a dict (or a subclass) strongly held for the whole call; the
/// GIL is held.
unsafe fn dict_in_place(
    py: Python<'_>,
    dst: &mut BTreeMap<String, Value>,
    dict: *mut ffi::PyObject,
    cache: &mut KeyCache,
    depth: usize,
    refill: Refill,
) -> Result<(), GiveUp> {
    if depth > MAX_DEPTH {
        return Err(GiveUp);
    }
    // SAFETY: `dict` is a live dict; `PyDict_Size` runs no Python code.
    let n = usize::try_from(unsafe { ffi::PyDict_Size(dict) }).map_err(|_| GiveUp)?;
    if n == 0 && dst.is_empty() {
        return Ok(());
    }
    if n == 0 || n != cache.keys.len() || n != dst.len() || n > CACHED_KEYS {
        return Err(GiveUp);
    }
    let mut slots: [Option<&mut Value>; CACHED_KEYS] = Default::default();
    for (slot, v) in slots.iter_mut().zip(dst.values_mut()) {
        *slot = Some(v);
    }
    let mut pos: ffi::Py_ssize_t = 0;
    let mut seen = 0;
    loop {
        let mut key: *mut ffi::PyObject = std::ptr::null_mut();
        let mut value: *mut ffi::PyObject = std::ptr::null_mut();
        // SAFETY: `dict` is held; `PyDict_Next` reads its current entries
        // (bounds-checked) and runs no Python code.
        if unsafe { ffi::PyDict_Next(dict, &raw mut pos, &raw mut key, &raw mut value) } == 0 {
            break;
        }
        let known = cache.keys.get_mut(seen).ok_or(GiveUp)?;
        if known.key.as_ptr() != key {
            return Err(GiveUp);
        }
        let slot = slots
            .get_mut(known.rank)
            .and_then(Option::take)
            .ok_or(GiveUp)?;
        // SAFETY: `value` was just yielded by the held dict and nothing has
        // run since.
        unsafe { value_in_place(py, slot, value, &mut known.nested, depth, refill) }?;
        seen += 1;
    }
    if seen == n { Ok(()) } else { Err(GiveUp) }
}

/// # Safety
/// `obj` is live (borrowed from a held container, nothing run since); the
/// GIL is held.
unsafe fn value_in_place(
    py: Python<'_>,
    slot: &mut Value,
    obj: *mut ffi::PyObject,
    nested: &mut KeyCache,
    depth: usize,
    refill: Refill,
) -> Result<(), GiveUp> {
    // SAFETY: `obj` is live; reading its type pointer runs nothing.
    let ty = unsafe { ffi::Py_TYPE(obj) };
    if ty == &raw mut ffi::PyDict_Type {
        // SAFETY: `obj` is live; it is held for the rest of this branch, so
        // it stays valid even if Python code runs below.
        let held = unsafe { Held::new(obj) };
        if let Value::Map(m) = slot
            && !nested.keys.is_empty()
            // SAFETY: a dict, held by `held`.
            && unsafe { dict_in_place(py, m, held.0, nested, depth + 1, refill) }.is_ok()
        {
            return Ok(());
        }
        // No cache for this dict yet, or a shape or value it cannot take:
        // this dict alone through the cached general path, which (re)fills
        // its cache, with an owned reference. Giving up leaves `nested`
        // describing `m`'s keys, which that path relies on.
        // SAFETY: `held.0` is live; `from_borrowed_ptr` takes a new reference.
        let owned = unsafe { Bound::from_borrowed_ptr(py, held.0) };
        return if refill(slot, &owned, nested, depth + 1) {
            Ok(())
        } else {
            Err(GiveUp)
        };
    }
    nested.forget();
    // SAFETY: as the first call of this function.
    unsafe { scalar_or_list(py, slot, obj, ty, depth) }
}

/// The general (safe) conversion of a value, through an owned reference:
/// it may run Python code, so nothing borrowed from this item may be
/// touched afterwards.
///
/// # Safety
/// `obj` is live; the GIL is held.
unsafe fn general(
    py: Python<'_>,
    slot: &mut Value,
    obj: *mut ffi::PyObject,
    depth: usize,
) -> Result<(), GiveUp> {
    // SAFETY: `obj` is live; `from_borrowed_ptr` takes a new reference.
    let owned = unsafe { Bound::from_borrowed_ptr(py, obj) };
    if converted(slot, &owned, depth) {
        Ok(())
    } else {
        Err(GiveUp)
    }
}

/// # Safety
/// As [`value_in_place`]; `ty` is `obj`'s type.
unsafe fn scalar_or_list(
    py: Python<'_>,
    slot: &mut Value,
    obj: *mut ffi::PyObject,
    ty: *mut ffi::PyTypeObject,
    depth: usize,
) -> Result<(), GiveUp> {
    if ty == &raw mut ffi::PyUnicode_Type {
        let mut len: ffi::Py_ssize_t = 0;
        // SAFETY: an exact `str`; this reads (or fills once) its UTF-8
        // form and calls no Python code unless it fails.
        let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(obj, &raw mut len) };
        if data.is_null() {
            // SAFETY: the GIL is held; the error is the one just raised.
            // Nothing borrowed is touched from here on.
            unsafe { ffi::PyErr_Clear() };
            return Err(GiveUp);
        }
        let len = usize::try_from(len).map_err(|_| GiveUp)?;
        // SAFETY: CPython returns `len` bytes at `data`, alive as long as
        // the string, which outlives this call.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        // SAFETY: CPython's UTF-8 form of a string is valid UTF-8 (a
        // string that has none, with a lone surrogate, failed above).
        let text = unsafe { std::str::from_utf8_unchecked(bytes) };
        store_text(slot, text);
        return Ok(());
    }
    if ty == &raw mut ffi::PyLong_Type {
        let mut overflow: std::ffi::c_int = 0;
        // SAFETY: an exact `int`: read without calling anything; too large
        // for 64 bits sets `overflow` (no exception).
        let n = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj, &raw mut overflow) };
        // SAFETY: the GIL is held.
        if overflow != 0 || (n == -1 && !unsafe { ffi::PyErr_Occurred() }.is_null()) {
            // SAFETY: the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return Err(GiveUp);
        }
        #[allow(
            clippy::cast_precision_loss,
            reason = "Python ints become f64 numbers, as in the JSON reader"
        )]
        store_number(slot, n as f64);
        return Ok(());
    }
    if ty == &raw mut ffi::PyFloat_Type {
        // SAFETY: an exact `float`: its value, read without calling
        // anything (cannot fail).
        let n = unsafe { ffi::PyFloat_AsDouble(obj) };
        if !n.is_finite() {
            return Err(GiveUp);
        }
        store_number(slot, n);
        return Ok(());
    }
    // SAFETY: the singletons' addresses; nothing is read through them.
    let (none, true_) = unsafe { (ffi::Py_None(), ffi::Py_True()) };
    if ty == &raw mut ffi::PyBool_Type {
        *slot = Value::Bool(obj == true_);
        return Ok(());
    }
    if obj == none {
        *slot = Value::Null;
        return Ok(());
    }
    if ty == &raw mut ffi::PyList_Type {
        // SAFETY: `obj` is live; it is held while it is iterated.
        let held = unsafe { Held::new(obj) };
        // SAFETY: a list, held by `held` for the call.
        return unsafe { list_in_place(py, slot, held.0, depth) };
    }
    // Anything else (a subclass, a tuple, a type the context refuses).
    // SAFETY: `obj` is live.
    unsafe { general(py, slot, obj, depth) }
}

/// # Safety
/// `list` is a list strongly held for the whole call; the GIL is held.
unsafe fn list_in_place(
    py: Python<'_>,
    slot: &mut Value,
    list: *mut ffi::PyObject,
    depth: usize,
) -> Result<(), GiveUp> {
    if depth + 1 > MAX_DEPTH {
        return Err(GiveUp);
    }
    // SAFETY: `list` is a held list; its size runs no Python code.
    let len = usize::try_from(unsafe { ffi::PyList_Size(list) }).map_err(|_| GiveUp)?;
    if !matches!(slot, Value::List(_)) {
        *slot = Value::List(Vec::with_capacity(len));
    }
    let Value::List(out) = slot else {
        return Err(GiveUp);
    };
    out.truncate(len);
    let mut i = 0;
    // The size is read again at each step: the general conversion of an
    // item may have run Python code that changed the list.
    // SAFETY: `list` is held; `PyList_Size` runs no Python code.
    while i < usize::try_from(unsafe { ffi::PyList_Size(list) }).map_err(|_| GiveUp)? {
        let at = ffi::Py_ssize_t::try_from(i).map_err(|_| GiveUp)?;
        // SAFETY: `list` is held and `at` is within its current size, so
        // this borrows a live item without raising.
        let item = unsafe { ffi::PyList_GetItem(list, at) };
        if item.is_null() {
            // SAFETY: the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return Err(GiveUp);
        }
        if out.len() <= i {
            out.push(Value::Null);
        }
        let target = out.get_mut(i).ok_or(GiveUp)?;
        // SAFETY: `item` was just borrowed from the held list; nothing has
        // run since. A dict in a list has no key cache: the general path.
        unsafe {
            let ty = ffi::Py_TYPE(item);
            if ty == &raw mut ffi::PyDict_Type {
                general(py, target, item, depth + 1)
            } else {
                scalar_or_list(py, target, item, ty, depth + 1)
            }
        }?;
        i += 1;
    }
    out.truncate(i);
    Ok(())
}
