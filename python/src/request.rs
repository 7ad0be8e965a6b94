//! Building the runtime's `Request` from a call's arguments, without
//! allocating in the steady state: each thread keeps one request whose
//! buffers are reused, and remembers the `str` objects it last read the
//! agent, action and target from — Python strings are immutable, so the
//! same object means the same text and it is not read again.

use std::cell::RefCell;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use writ_runtime::Request;

use crate::convert;

/// A call's arguments, as Python gave them.
#[derive(Debug)]
pub struct Args<'a, 'py> {
    pub agent: &'a Bound<'py, PyString>,
    pub action: &'a Bound<'py, PyString>,
    pub target: Option<&'a Bound<'py, PyString>>,
    pub context: Option<&'a Bound<'py, PyAny>>,
    pub chain: Option<&'a Bound<'py, PyAny>>,
    pub tokens: Option<&'a Bound<'py, PyAny>>,
    pub trace_id: Option<&'a Bound<'py, PyString>>,
    pub at: Option<&'a Bound<'py, PyAny>>,
    pub token: Option<&'a Bound<'py, PyString>>,
    pub roles: Option<&'a Bound<'py, PyAny>>,
    pub tags: Option<&'a Bound<'py, PyAny>>,
    pub tier: Option<&'a Bound<'py, PyString>>,
}

#[derive(Default)]
struct Scratch {
    req: Request,
    agent: Option<Py<PyString>>,
    action: Option<Py<PyString>>,
    target: Option<Py<PyString>>,
    context: convert::KeyCache,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Builds the request for `args` and hands it to `f`.
///
/// # Errors
/// TypeError / ValueError for a malformed argument, or what `f` returns.
pub fn with_request<R>(
    args: &Args<'_, '_>,
    f: impl FnOnce(&Request) -> PyResult<R>,
) -> PyResult<R> {
    let mut f = Some(f);
    let reused = SCRATCH.try_with(|cell| {
        // Busy when a conversion ran Python code that checks again (an
        // `int` subclass's `__float__`, say): that call builds its own.
        let Ok(mut scratch) = cell.try_borrow_mut() else {
            return None;
        };
        let f = f.take()?;
        Some(fill(&mut scratch, args).and_then(|()| f(&scratch.req)))
    });
    match (reused, f.take()) {
        (Ok(Some(out)), _) => out,
        (_, Some(f)) => {
            let mut scratch = Scratch::default();
            fill(&mut scratch, args)?;
            f(&scratch.req)
        }
        // `f` was taken only where a result was made.
        (_, None) => Err(PyValueError::new_err("internal error: request not built")),
    }
}

/// Copies a Python string into `dst`, reusing `dst`'s buffer.
fn push_text(dst: &mut String, src: &Bound<'_, PyString>) -> PyResult<()> {
    // Read in place (CPython keeps a string's UTF-8 form); a string
    // holding a lone surrogate has none and raises.
    let text = src.to_str()?;
    dst.clear();
    dst.push_str(text);
    Ok(())
}

/// As [`push_text`], skipped when `src` is the object read last time.
fn cached_text(
    cache: &mut Option<Py<PyString>>,
    dst: &mut String,
    src: &Bound<'_, PyString>,
) -> PyResult<()> {
    if cache.as_ref().is_some_and(|c| c.is(src)) {
        return Ok(());
    }
    *cache = None;
    push_text(dst, src)?;
    *cache = Some(src.clone().unbind());
    Ok(())
}

fn optional_text(dst: &mut Option<String>, src: Option<&Bound<'_, PyString>>) -> PyResult<()> {
    match src {
        None => *dst = None,
        Some(s) => push_text(dst.get_or_insert_with(String::new), s)?,
    }
    Ok(())
}

fn not_none<'a, 'py>(o: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    o.filter(|o| !o.is_none())
}

fn fill(s: &mut Scratch, a: &Args<'_, '_>) -> PyResult<()> {
    let req = &mut s.req;
    cached_text(&mut s.agent, &mut req.agent, a.agent)?;
    cached_text(&mut s.action, &mut req.action, a.action)?;
    match a.target {
        None => {
            s.target = None;
            req.target = None;
        }
        Some(t) => {
            if req.target.is_none() {
                s.target = None;
            }
            cached_text(&mut s.target, req.target.get_or_insert_with(String::new), t)?;
        }
    }
    match not_none(a.context) {
        None => {
            req.context.clear();
            s.context.forget();
        }
        Some(c) => crate::context::update_cached(&mut req.context, c, &mut s.context)?,
    }
    match not_none(a.chain) {
        None => req.chain.clear(),
        Some(c) => req.chain = convert::strings(c, "chain")?,
    }
    req.tokens = match not_none(a.tokens) {
        None => 0,
        Some(t) => convert::tokens(t)?,
    };
    optional_text(&mut req.trace_id, a.trace_id)?;
    req.at = match not_none(a.at) {
        None => None,
        Some(t) => Some(convert::at(t)?),
    };
    optional_text(&mut req.token, a.token)?;
    match not_none(a.roles) {
        None => req.roles.clear(),
        Some(r) => req.roles = convert::strings(r, "roles")?,
    }
    match not_none(a.tags) {
        None => req.tags.clear(),
        Some(t) => req.tags = convert::strings(t, "tags")?,
    }
    req.tier = match a.tier {
        None => None,
        Some(t) => Some(
            writ_runtime::parse_tier(t.to_str()?)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.message))?,
        ),
    };
    Ok(())
}
