//! `writ._writ`: the native half of the `writ` Python package.
//!
//! An [`Engine`] holds the current policy behind an atomic pointer (a reload
//! swaps it whole), decides requests with the GIL released, and records
//! every decision in the audit log when one is open. The pure-Python
//! package (`python/writ/__init__.py`) adds `enforce`, `govern` and the
//! exceptions that carry a decision.

mod context;
mod convert;
mod fast;
mod policy;
mod request;
mod watch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use writ_audit::{AuditLog, AuditOptions, DecisionId};
use writ_runtime::{Effect, LimitStore, OnStoreFailure, Request, Risk};

use policy::{Failure, Loaded, Spec};
use smol_str::SmolStr;

create_exception!(
    writ,
    WritError,
    PyException,
    "Base class of every error writ raises."
);
create_exception!(
    writ,
    PolicyError,
    WritError,
    "A policy that does not load: `.diagnostics` lists each problem as `file:line:col: error[CODE]: message`."
);

fn policy_error(py: Python<'_>, f: &Failure) -> PyErr {
    let err = PolicyError::new_err(f.message.clone());
    let diagnostics = PyList::new(py, &f.diagnostics)
        .map(Bound::into_any)
        .unwrap_or_else(|_| py.None().into_bound(py));
    // Setting an attribute on a fresh exception instance cannot fail in
    // practice; if it did, the message still says everything.
    let _ = err.value(py).setattr("diagnostics", diagnostics);
    err
}

/// One path or a list of them, as `PathBuf`s.
fn paths(obj: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    let one = |o: &Bound<'_, PyAny>| -> PyResult<PathBuf> {
        o.extract::<PathBuf>().map_err(|_| {
            PyTypeError::new_err(format!(
                "a policy path must be str or os.PathLike, not {}",
                o.get_type()
                    .name()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string())
            ))
        })
    };
    let out = if let Ok(list) = obj.cast::<PyList>() {
        list.iter().map(|o| one(&o)).collect::<PyResult<Vec<_>>>()?
    } else if let Ok(t) = obj.cast::<pyo3::types::PyTuple>() {
        t.iter().map(|o| one(&o)).collect::<PyResult<Vec<_>>>()?
    } else {
        vec![one(obj)?]
    };
    if out.is_empty() {
        return Err(PyValueError::new_err("no policy path given"));
    }
    Ok(out)
}

fn dialect(name: Option<&str>) -> PyResult<Option<writ_ir::Dialect>> {
    match name {
        None => Ok(None),
        Some(n) => policy::dialect(n).map(Some).ok_or_else(|| {
            let names: Vec<&str> = writ_ir::Dialect::ALL.iter().map(|d| d.as_str()).collect();
            PyValueError::new_err(format!(
                "unknown dialect `{n}`; expected one of: {}, yaml",
                names.join(", ")
            ))
        }),
    }
}

fn public_key(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<[u8; 32]>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(b) = obj.cast::<pyo3::types::PyBytes>() {
        let bytes = b.as_bytes();
        return <[u8; 32]>::try_from(bytes).map(Some).map_err(|_| {
            PyValueError::new_err(format!(
                "public_key: raw bytes must be 32 bytes, not {}",
                bytes.len()
            ))
        });
    }
    if let Ok(s) = obj.cast::<PyString>()
        && let Some(k) = writ_compiler::keys::parse(&s.to_cow()?)
    {
        return Ok(Some(k));
    }
    let path: PathBuf = obj.extract().map_err(|_| {
        PyTypeError::new_err("public_key must be bytes (32), a str of 64 hex digits, or the path of a `.pub` file written by `writ keygen`")
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        PyValueError::new_err(format!("public_key: cannot read {}: {e}", path.display()))
    })?;
    writ_compiler::keys::parse(&text).map(Some).ok_or_else(|| {
        PyValueError::new_err(format!(
            "public_key: {} is not a writ key (64 hex digits, as written by `writ keygen`)",
            path.display()
        ))
    })
}

fn missing(paths: &[PathBuf]) -> PyResult<()> {
    for p in paths {
        if !p.exists() {
            return Err(PyFileNotFoundError::new_err((
                2,
                "no such policy file",
                p.display().to_string(),
            )));
        }
    }
    Ok(())
}

/// The state behind a Python `Engine`, shared with the watcher thread.
pub(crate) struct Inner {
    current: ArcSwap<Loaded>,
    store: Arc<dyn LimitStore>,
    on_failure: OnStoreFailure,
    spec: Spec,
    audit: ArcSwapOption<AuditLog>,
    audit_path: Option<String>,
    last_reload_error: Mutex<Option<String>>,
    /// Reloads one at a time, so the last one to start wins.
    reloading: Mutex<()>,
    watcher: Mutex<Option<watch::Watcher>>,
    closed: AtomicBool,
}

impl Inner {
    /// Loads the spec again and makes it current; on failure the current
    /// policy stays and `last_reload_error` says why.
    pub(crate) fn reload(&self) -> Result<(), Failure> {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match policy::load(&self.spec) {
            Ok(mut loaded) => {
                loaded.runtime = loaded
                    .runtime
                    .with_limit_store(Arc::clone(&self.store), self.on_failure);
                self.current.store(Arc::new(loaded));
                *self
                    .last_reload_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                Ok(())
            }
            Err(f) => {
                *self
                    .last_reload_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    Some(format!("{}; still serving the last good policy", f.message));
                Err(f)
            }
        }
    }
}

/// A decision's reason, owned; the default decision's sentence is written
/// only when asked for (it names the action, which the decision keeps).
#[derive(Debug)]
enum Reason {
    None,
    Text(String),
    NoRule,
}

impl Reason {
    fn of(d: &writ_runtime::Decision<'_>, req: &Request) -> Reason {
        match d.reason {
            writ_runtime::Reason::None => Reason::None,
            writ_runtime::Reason::NoRule => Reason::NoRule,
            _ => d
                .reason_text(req)
                .map_or(Reason::None, |t| Reason::Text(t.into_owned())),
        }
    }
}

/// What a check decided, owned (the runtime's decision borrows the bundle).
struct Outcome {
    effect: Effect,
    rule: Option<SmolStr>,
    policy: Option<SmolStr>,
    reason: Reason,
    risk: Option<Risk>,
    retry_after_s: Option<u64>,
    id: Option<DecisionId>,
    defaulted: bool,
}

/// A decision: what writ answered, and for which request.
// A free list: a check makes a `Decision` and the caller usually drops it
// before the next, so its memory is reused rather than allocated again.
#[pyclass(frozen, freelist = 64, module = "writ", name = "Decision")]
#[derive(Debug)]
pub struct Decision {
    effect: Effect,
    rule: Option<SmolStr>,
    policy: Option<SmolStr>,
    reason: Reason,
    risk: Option<Risk>,
    retry_after_s: Option<u64>,
    id: Option<DecisionId>,
    defaulted: bool,
    agent: Py<PyString>,
    action: Py<PyString>,
    target: Option<Py<PyString>>,
    trace_id: Option<Py<PyString>>,
}

fn repr_str(s: Option<&str>) -> String {
    match s {
        None => "None".to_owned(),
        Some(s) => {
            let escaped = s.replace('\\', "\\\\").replace('\'', "\\'");
            format!("'{escaped}'")
        }
    }
}

#[pymethods]
impl Decision {
    /// True when the decision is `allow`.
    #[getter]
    fn allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// A decision is not a truth value: `if engine.check(...)` would
    /// read a deny as a yes. Raises TypeError pointing at `.allowed`.
    fn __bool__(&self) -> PyResult<bool> {
        Err(PyTypeError::new_err(
            "a writ.Decision has no truth value: test `decision.allowed` (True only for allow), or call `engine.enforce(...)`, which raises unless the policy allows",
        ))
    }

    /// True when the policy's default answered: no rule applied and no
    /// agent ceiling, limit or chain check decided.
    #[getter]
    fn defaulted(&self) -> bool {
        self.defaulted
    }

    /// `"allow"`, `"deny"` or `"approve"` (a human must approve).
    #[getter]
    fn decision(&self) -> &'static str {
        self.effect.as_str()
    }

    /// The rule that decided, or None (an agent's lists, a limit, the default).
    #[getter]
    fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    #[getter]
    fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    #[getter]
    fn reason(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(match &self.reason {
            Reason::None => None,
            Reason::Text(t) => Some(t.clone()),
            // The runtime's sentence (the effect of a default decision is
            // the default).
            Reason::NoRule => Some(writ_runtime::reason::no_rule(
                &self.action.bind(py).to_cow()?,
                &self.agent.bind(py).to_cow()?,
                None,
                self.effect,
            )),
        })
    }

    #[getter]
    fn risk(&self) -> Option<&'static str> {
        self.risk.map(Risk::as_str)
    }

    /// Seconds until a full limit has room again.
    #[getter]
    fn retry_after_s(&self) -> Option<u64> {
        self.retry_after_s
    }

    /// The audit log's id of this decision (None when not auditing).
    #[getter]
    fn id(&self) -> Option<String> {
        self.id.map(|i| i.to_string())
    }

    #[getter]
    fn trace_id(&self, py: Python<'_>) -> Option<Py<PyString>> {
        self.trace_id.as_ref().map(|t| t.clone_ref(py))
    }

    #[getter]
    fn agent(&self, py: Python<'_>) -> Py<PyString> {
        self.agent.clone_ref(py)
    }

    #[getter]
    fn action(&self, py: Python<'_>) -> Py<PyString> {
        self.action.clone_ref(py)
    }

    #[getter]
    fn target(&self, py: Python<'_>) -> Option<Py<PyString>> {
        self.target.as_ref().map(|t| t.clone_ref(py))
    }

    /// Every field, as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("decision", self.effect.as_str())?;
        d.set_item("allowed", self.allowed())?;
        d.set_item("rule", self.rule.as_deref())?;
        d.set_item("policy", self.policy.as_deref())?;
        d.set_item("reason", self.reason(py)?)?;
        d.set_item("risk", self.risk.map(Risk::as_str))?;
        d.set_item("retry_after_s", self.retry_after_s)?;
        d.set_item("defaulted", self.defaulted)?;
        d.set_item("id", self.id())?;
        d.set_item("trace_id", self.trace_id(py))?;
        d.set_item("agent", self.agent(py))?;
        d.set_item("action", self.action(py))?;
        d.set_item("target", self.target(py))?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let s = |p: &Py<PyString>| -> PyResult<String> { Ok(p.bind(py).to_cow()?.into_owned()) };
        let target = self.target.as_ref().map(&s).transpose()?;
        let mut out = format!(
            "Decision({}, agent={}, action={}, target={}, rule={}",
            repr_str(Some(self.effect.as_str())),
            repr_str(Some(&s(&self.agent)?)),
            repr_str(Some(&s(&self.action)?)),
            repr_str(target.as_deref()),
            repr_str(self.rule.as_deref()),
        );
        if let Some(r) = self.risk {
            out.push_str(&format!(", risk={}", repr_str(Some(r.as_str()))));
        }
        if let Some(r) = self.reason(py)? {
            out.push_str(&format!(", reason={}", repr_str(Some(&r))));
        }
        if let Some(r) = self.retry_after_s {
            out.push_str(&format!(", retry_after_s={r}"));
        }
        out.push(')');
        Ok(out)
    }
}

/// A loaded policy that decides requests. Thread-safe; decisions run with
/// the GIL released.
#[pyclass(subclass, frozen, module = "writ._writ", name = "Engine")]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("paths", &self.inner.spec.paths)
            .field("revision", &self.inner.current.load().revision)
            .finish_non_exhaustive()
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (path, *, dialect=None, audit=None, audit_mask=None, watch=false, public_key=None))]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        dialect: Option<&str>,
        audit: Option<PathBuf>,
        audit_mask: Option<&Bound<'_, PyAny>>,
        watch: bool,
        public_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Engine> {
        let spec = Spec {
            paths: paths(path)?,
            dialect: crate::dialect(dialect)?,
            public_key: crate::public_key(public_key)?,
        };
        missing(&spec.paths)?;
        let before = watch.then(|| watch::Snapshot::take(&spec.paths));
        let mask = match audit_mask {
            None => None,
            Some(m) if m.is_none() => None,
            Some(m) => Some(convert::strings(m, "audit_mask")?),
        };
        let loaded = py
            .detach(|| policy::load(&spec))
            .map_err(|f| policy_error(py, &f))?;
        let log = match &audit {
            None => None,
            Some(p) => Some(Arc::new(
                py.detach(|| open_audit(p, mask))
                    .map_err(WritError::new_err)?,
            )),
        };
        let store = loaded.runtime.limit_store();
        let on_failure = loaded.runtime.on_store_failure();
        let inner = Arc::new(Inner {
            current: ArcSwap::from_pointee(loaded),
            store,
            on_failure,
            spec,
            audit: ArcSwapOption::new(log),
            audit_path: audit.map(|p| p.display().to_string()),
            last_reload_error: Mutex::new(None),
            reloading: Mutex::new(()),
            watcher: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        if let Some(before) = before {
            let w = watch::Watcher::start(&inner, before).map_err(WritError::new_err)?;
            *inner.watcher.lock().unwrap_or_else(PoisonError::into_inner) = Some(w);
        }
        Ok(Engine { inner })
    }

    /// Decides a request. Never raises for a policy reason: a deny is a
    /// decision. Raises TypeError/ValueError for a malformed request.
    ///
    /// `dry_run=True` asks what would be decided without acting on it:
    /// nothing is recorded and an allow takes nothing from its limits.
    ///
    /// `tokens=None` is taken as 0; the signature shows 0, as the docs do.
    #[pyo3(
        signature = (agent, action, target=None, context=None, chain=None, tokens=None, trace_id=None, at=None, *, token=None, roles=None, tags=None, tier=None, dry_run=false),
        text_signature = "($self, agent, action, target=None, context=None, chain=None, tokens=0, trace_id=None, at=None, *, token=None, roles=None, tags=None, tier=None, dry_run=False)"
    )]
    #[allow(
        clippy::too_many_arguments,
        reason = "the Python signature's keyword arguments"
    )]
    fn check(
        &self,
        py: Python<'_>,
        agent: Bound<'_, PyString>,
        action: Bound<'_, PyString>,
        target: Option<Bound<'_, PyString>>,
        context: Option<&Bound<'_, PyAny>>,
        chain: Option<&Bound<'_, PyAny>>,
        tokens: Option<&Bound<'_, PyAny>>,
        trace_id: Option<Bound<'_, PyString>>,
        at: Option<&Bound<'_, PyAny>>,
        token: Option<Bound<'_, PyString>>,
        roles: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
        tier: Option<Bound<'_, PyString>>,
        dry_run: bool,
    ) -> PyResult<Decision> {
        let args = request::Args {
            agent: &agent,
            action: &action,
            target: target.as_ref(),
            context,
            chain,
            tokens,
            trace_id: trace_id.as_ref(),
            at,
            token: token.as_ref(),
            roles,
            tags,
            tier: tier.as_ref(),
        };
        let inner = &*self.inner;
        let outcome = request::with_request(&args, |req| {
            validate(req)?;
            py.detach(|| decide(inner, req, dry_run))
        })?;
        Ok(Decision {
            effect: outcome.effect,
            rule: outcome.rule,
            policy: outcome.policy,
            reason: outcome.reason,
            risk: outcome.risk,
            retry_after_s: outcome.retry_after_s,
            id: outcome.id,
            defaulted: outcome.defaulted,
            agent: agent.unbind(),
            action: action.unbind(),
            target: target.map(Bound::unbind),
            trace_id: trace_id.map(Bound::unbind),
        })
    }

    /// Reads the same path(s) again now. Raises PolicyError and keeps the
    /// current policy when the new one does not load.
    fn reload(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &*self.inner;
        py.detach(|| inner.reload())
            .map_err(|f| policy_error(py, &f))
    }

    /// Records an event that is not a decision (a tool starting or
    /// ending, a handoff, a model call) in the audit log, as a record with
    /// decision `allow` and reason `event`; returns its id, or None
    /// without an audit log. Context keys are masked as for decisions.
    #[pyo3(signature = (agent, action, target=None, context=None, chain=None, trace_id=None))]
    #[allow(
        clippy::too_many_arguments,
        reason = "the Python signature's keyword arguments"
    )]
    fn record_event(
        &self,
        py: Python<'_>,
        agent: Bound<'_, PyString>,
        action: Bound<'_, PyString>,
        target: Option<Bound<'_, PyString>>,
        context: Option<&Bound<'_, PyAny>>,
        chain: Option<&Bound<'_, PyAny>>,
        trace_id: Option<Bound<'_, PyString>>,
    ) -> PyResult<Option<String>> {
        let Some(log) = self.inner.audit.load_full() else {
            if self.inner.audit_path.is_some() {
                return Err(WritError::new_err("the engine is closed"));
            }
            return Ok(None);
        };
        let revision = std::sync::Arc::clone(&self.inner.current.load().revision);
        let mut rec = writ_audit::AuditRecord::new(
            &convert::text(&agent)?,
            &convert::text(&action)?,
            Effect::Allow,
            revision,
        );
        if let Some(t) = &target {
            rec.target = Some(convert::text(t)?);
        }
        if let Some(c) = context.filter(|c| !c.is_none()) {
            rec.context = context::read(c)?;
        }
        if let Some(c) = chain.filter(|c| !c.is_none()) {
            rec.chain = convert::strings(c, "chain")?;
        }
        if let Some(t) = &trace_id {
            rec.trace_id = Some(convert::text(t)?);
        }
        rec.reason = Some("event".to_owned());
        let id = py.detach(|| log.record(&rec));
        Ok(Some(id.to_string()))
    }

    /// Returns once every decision recorded so far is on disk (no-op
    /// without an audit log).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let Some(log) = self.inner.audit.load_full() else {
            return Ok(());
        };
        py.detach(|| log.flush())
            .map_err(|e| WritError::new_err(format!("audit log: {e}")))
    }

    /// Stops watching, flushes and closes the audit log. Checks after
    /// closing raise WritError. Closing twice is a no-op.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.closed.store(true, Ordering::SeqCst);
        let watcher = self
            .inner
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let log = self.inner.audit.swap(None);
        py.detach(move || {
            drop(watcher);
            match log.map(Arc::try_unwrap) {
                None => Ok(()),
                Some(Ok(log)) => log.shutdown(),
                // A check in flight still holds the log; it stops when
                // that check is done. Everything so far is flushed.
                Some(Err(shared)) => shared.flush(),
            }
        })
        .map_err(|e| WritError::new_err(format!("audit log: {e}")))
    }

    /// The current policy's revision (SHA-256 of its sources), in hex.
    #[getter]
    fn revision(&self) -> String {
        self.inner.current.load().revision.to_string()
    }

    /// How many rules the current policy has.
    #[getter]
    fn rules(&self) -> usize {
        self.inner.current.load().rules
    }

    /// Warnings from compiling the current policy's sources.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.current.load().warnings.clone()
    }

    #[getter]
    fn audit_path(&self) -> Option<String> {
        self.inner.audit_path.clone()
    }

    /// The path(s) this engine loads from.
    #[getter]
    fn paths(&self) -> Vec<PathBuf> {
        self.inner.spec.paths.clone()
    }

    /// Why the last reload (by `reload()` or the watcher) was refused;
    /// None after a good one.
    #[getter]
    fn last_reload_error(&self) -> Option<String> {
        self.inner
            .last_reload_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    fn __repr__(&self) -> String {
        let cur = self.inner.current.load();
        let paths: Vec<String> = self
            .inner
            .spec
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "<writ.Engine {} rules={} revision={}{}>",
            paths.join(", "),
            cur.rules,
            cur.revision.get(..12).unwrap_or(&cur.revision),
            if self.closed() { " closed" } else { "" }
        )
    }
}

/// The runtime's own check ([`Request::validate`]): the package refuses a
/// malformed request with the runtime's sentence.
fn validate(req: &Request) -> PyResult<()> {
    req.validate().map_err(|e| PyValueError::new_err(e.message))
}

fn decide(inner: &Inner, req: &Request, dry_run: bool) -> PyResult<Outcome> {
    if inner.closed.load(Ordering::Relaxed) {
        return Err(WritError::new_err("the engine is closed"));
    }
    let loaded = inner.current.load();
    let now = req.at.unwrap_or_else(jiff::Timestamp::now);
    if dry_run {
        let d = loaded.runtime.peek_at(req, now);
        return Ok(Outcome {
            effect: d.effect,
            rule: d.rule.map(SmolStr::new),
            policy: d.policy.map(SmolStr::new),
            reason: Reason::of(&d, req),
            risk: d.risk,
            retry_after_s: d.retry_after_s,
            id: None,
            defaulted: d.is_default(),
        });
    }
    let d = loaded.runtime.check_at(req, now);
    // An engine opened without an audit log never gets one: skip the load.
    let audit = inner.audit_path.as_ref().map(|_| inner.audit.load());
    let id = match audit.as_ref().and_then(|a| a.as_ref()) {
        Some(log) => {
            let ms = if req.at.is_some() {
                writ_audit::now_ms()
            } else {
                now.as_millisecond()
            };
            Some(log.record_decision(req, &d, &loaded.revision, ms))
        }
        None if inner.audit_path.is_some() => {
            return Err(WritError::new_err("the engine is closed"));
        }
        None => None,
    };
    Ok(Outcome {
        effect: d.effect,
        rule: d.rule.map(SmolStr::new),
        policy: d.policy.map(SmolStr::new),
        reason: Reason::of(&d, req),
        risk: d.risk,
        retry_after_s: d.retry_after_s,
        id,
        defaulted: d.is_default(),
    })
}

fn open_audit(path: &std::path::Path, mask: Option<Vec<String>>) -> Result<AuditLog, String> {
    let mut options = AuditOptions::default();
    if let Some(m) = mask {
        options.mask = m;
    }
    // An existing log in its own format, a new one by its name: the rule
    // `writ audit` reads by too (`writ_audit::Format`).
    let log = AuditLog::open(path, options);
    log.map_err(|e| format!("cannot open the audit log {}: {e}", path.display()))
}

/// Compiles policy sources into bundle bytes (written to `output` too when
/// given); returns the bytes and the compiler's warnings (`writ.compile`
/// turns those into `writ.PolicyWarning`s).
#[pyfunction]
#[pyo3(signature = (path, output=None, *, dialect=None))]
fn compile<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    output: Option<PathBuf>,
    dialect: Option<&str>,
) -> PyResult<(Bound<'py, pyo3::types::PyBytes>, Vec<String>)> {
    let paths = paths(path)?;
    let dialect = crate::dialect(dialect)?;
    missing(&paths)?;
    let (bytes, warnings) = py
        .detach(|| policy::compile_sources(&paths, dialect))
        .map_err(|f| policy_error(py, &f))?;
    if let Some(out) = output {
        std::fs::write(&out, &bytes).map_err(|e| {
            pyo3::exceptions::PyOSError::new_err(format!("cannot write {}: {e}", out.display()))
        })?;
    }
    Ok((pyo3::types::PyBytes::new(py, &bytes), warnings))
}

/// Verifies an audit log's hash chain (JSON Lines or SQLite, told by the
/// file's first bytes), as `writ audit verify` does.
#[pyfunction]
fn verify_audit<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let report = py
        .detach(|| writ_audit::verify(&path))
        .map_err(|e| WritError::new_err(format!("cannot verify: {e}")))?;
    let d = PyDict::new(py);
    d.set_item("intact", report.is_intact())?;
    d.set_item("records", report.records)?;
    d.set_item("last_seq", report.last.as_ref().map(|l| l.0))?;
    d.set_item("last_hash", report.last.as_ref().map(|l| l.1.clone()))?;
    d.set_item("problems", report.problem_lines())?;
    d.set_item(
        "pruned_through_seq",
        report.pruned.as_ref().map(|p| p.through_seq),
    )?;
    d.set_item("report", report.to_string())?;
    Ok(d)
}

// `gil_used`: a free-threaded interpreter turns the GIL on when it imports
// this module (the context fast path reads borrowed pointers, see fast.rs).
#[pymodule(gil_used = true)]
fn _writ(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    fast::allow_if_sound(py)?;
    m.add("WritError", py.get_type::<WritError>())?;
    m.add("PolicyError", py.get_type::<PolicyError>())?;
    m.add_class::<Engine>()?;
    m.add_class::<Decision>()?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(verify_audit, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
