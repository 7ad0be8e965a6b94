//! The policy being served: compiled from sources or read from a bundle,
//! swapped whole and atomically on reload. A request decides on one
//! [`Loaded`] from start to end (it holds an `Arc` of it), so no decision
//! ever mixes two policies; a reload that fails leaves the last good one
//! serving and says why ([`Policies::last_error`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use writ_runtime::model::{Model, Pattern};
use writ_runtime::{LimitStore, OnStoreFailure, Runtime};

/// Where the policy comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Policy files or directories (any dialect), compiled on each load.
    Files(Vec<PathBuf>),
    /// A compiled bundle file; with a key, it must be signed by it.
    Bundle {
        path: PathBuf,
        key: Option<[u8; 32]>,
    },
    /// Bundle bytes fetched from a URL (by the poller); with a key, they
    /// must be signed by it.
    Fetched { url: String, key: Option<[u8; 32]> },
}

/// One rule, as the admin API lists it.
#[derive(Clone, Debug)]
pub struct RuleInfo {
    pub name: String,
    pub effect: &'static str,
    pub actions: Vec<String>,
}

/// One policy, as the admin API lists it.
#[derive(Clone, Debug)]
pub struct PolicyInfo {
    pub name: String,
    pub rules: Vec<RuleInfo>,
}

/// A policy that loaded: the runtime deciding it and what to say of it.
#[derive(Debug)]
pub struct Loaded {
    pub runtime: Runtime,
    /// Hex of the bundle's revision (SHA-256 of the sources).
    pub revision: String,
    /// The same, shared with the audit records.
    pub revision_arc: Arc<str>,
    /// The same, as the `X-Writ-Revision` header's value (made once).
    pub revision_header: axum::http::HeaderValue,
    /// The agent entries' `token_prefix`es (an opaque token with one of
    /// them is handed to the runtime, which maps it to its entry).
    pub token_prefixes: Vec<String>,
    pub files: Vec<String>,
    pub policies: Vec<PolicyInfo>,
    pub rules: usize,
    pub agents: usize,
    pub loaded_at: jiff::Timestamp,
    /// The compilation, when the policy came from sources (what
    /// `/v1/explain` needs: a bundle holds no spans).
    pub compilation: Option<writ_compiler::Compilation>,
}

/// Why a policy did not load: one or more lines, for `/v1/policy` and the
/// server's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadFailure(pub String);

impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadFailure {}

/// The served policy and how to load it again.
pub struct Policies {
    source: Source,
    current: ArcSwap<Loaded>,
    store: Arc<dyn LimitStore>,
    on_failure: OnStoreFailure,
    last_error: Mutex<Option<String>>,
    reloads: std::sync::atomic::AtomicU64,
    failed_reloads: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("source", &self.source)
            .field("revision", &self.current.load().revision)
            .finish_non_exhaustive()
    }
}

impl Policies {
    /// Loads the policy a first time.
    ///
    /// # Errors
    /// Why it did not load (the server does not start without a policy).
    pub fn open(
        source: Source,
        store: Arc<dyn LimitStore>,
        on_failure: OnStoreFailure,
        fetched: Option<Vec<u8>>,
    ) -> Result<Policies, LoadFailure> {
        let loaded = load(&source, fetched, &store, on_failure)?;
        Ok(Policies {
            source,
            current: ArcSwap::from_pointee(loaded),
            store,
            on_failure,
            last_error: Mutex::new(None),
            reloads: 0.into(),
            failed_reloads: 0.into(),
        })
    }

    /// The policy now served.
    #[must_use]
    pub fn current(&self) -> Arc<Loaded> {
        self.current.load_full()
    }

    #[must_use]
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Loads the policy again (for a fetched source, from `fetched`) and
    /// makes it current; on failure the current one stays.
    ///
    /// # Errors
    /// Why the new policy was refused.
    pub fn reload(&self, fetched: Option<Vec<u8>>) -> Result<Arc<Loaded>, LoadFailure> {
        use std::sync::atomic::Ordering::Relaxed;
        match load(&self.source, fetched, &self.store, self.on_failure) {
            Ok(loaded) => {
                let loaded = Arc::new(loaded);
                self.current.store(Arc::clone(&loaded));
                self.set_error(None);
                self.reloads.fetch_add(1, Relaxed);
                Ok(loaded)
            }
            Err(e) => {
                self.set_error(Some(format!(
                    "{e}; still serving revision {}",
                    self.current.load().revision
                )));
                self.failed_reloads.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    /// Why the last reload was refused, if it was (cleared by a good one).
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        match self.last_error.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Reloads done and refused since start.
    #[must_use]
    pub fn reload_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.reloads.load(Relaxed),
            self.failed_reloads.load(Relaxed),
        )
    }

    fn set_error(&self, e: Option<String>) {
        match self.last_error.lock() {
            Ok(mut g) => *g = e,
            Err(p) => *p.into_inner() = e,
        }
    }

    /// The files to watch for changes.
    #[must_use]
    pub fn watched(&self) -> Vec<PathBuf> {
        match &self.source {
            Source::Files(paths) => paths.clone(),
            Source::Bundle { path, .. } => vec![path.clone()],
            Source::Fetched { .. } => Vec::new(),
        }
    }
}

fn load(
    source: &Source,
    fetched: Option<Vec<u8>>,
    store: &Arc<dyn LimitStore>,
    on_failure: OnStoreFailure,
) -> Result<Loaded, LoadFailure> {
    let mut compilation = None;
    let (bytes, files, key) = match source {
        Source::Files(paths) => {
            let (bytes, files, comp) = compile(paths)?;
            compilation = Some(comp);
            (bytes, files, None)
        }
        Source::Bundle { path, key } => {
            let bytes = std::fs::read(path)
                .map_err(|e| LoadFailure(format!("{}: cannot read: {e}", path.display())))?;
            (bytes, vec![path.display().to_string()], key.as_ref())
        }
        Source::Fetched { url, key } => {
            let bytes = fetched.ok_or_else(|| LoadFailure(format!("{url}: nothing fetched")))?;
            (bytes, vec![url.clone()], key.as_ref())
        }
    };
    let fail = |e: writ_runtime::LoadError| LoadFailure(format!("{}: {e}", files.join(", ")));
    // A signed bundle is verified before anything else reads it; an
    // unsigned one is handed to the runtime without a copy.
    let (runtime, model) = match key {
        Some(k) => {
            let runtime = Runtime::from_bytes_verified(&bytes, k).map_err(fail)?;
            (runtime, writ_runtime::read_model(&bytes).map_err(fail)?)
        }
        None => {
            let model = writ_runtime::read_model(&bytes).map_err(fail)?;
            (Runtime::from_vec(bytes).map_err(fail)?, model)
        }
    };
    let runtime = runtime.with_limit_store(Arc::clone(store), on_failure);
    let revision = hex(&runtime.header().revision);
    Ok(Loaded {
        // Hex digits: always a valid header value.
        revision_header: axum::http::HeaderValue::from_str(&revision)
            .unwrap_or(axum::http::HeaderValue::from_static("")),
        revision,
        revision_arc: writ_audit::revision_of(runtime.header()),
        token_prefixes: model
            .agents
            .iter()
            .filter_map(|a| a.token_prefix.clone())
            .collect(),
        rules: model.rules.len(),
        agents: model.agents.len(),
        policies: policies_of(&model),
        files,
        runtime,
        loaded_at: jiff::Timestamp::now(),
        compilation,
    })
}

/// Compiles policy files (directories expanded) into bundle bytes.
fn compile(
    paths: &[PathBuf],
) -> Result<(Vec<u8>, Vec<String>, writ_compiler::Compilation), LoadFailure> {
    let expanded = writ_compiler::inputs::policy_paths(paths);
    if let Some(dir) = expanded.empty_dirs.first() {
        return Err(LoadFailure(format!(
            "{}: no policy file in this directory (.writ, .yaml, .yml)",
            dir.display()
        )));
    }
    let comp = writ_compiler::compile_paths(&expanded.files, None, None);
    let files: Vec<String> = expanded
        .files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let Some(set) = comp.checked_set() else {
        let errors: Vec<String> = comp
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.one_line(&comp.sources))
            .collect();
        return Err(LoadFailure(format!(
            "the policy has errors:\n{}",
            errors.join("\n")
        )));
    };
    let sources = comp.owned_sources();
    let bytes = writ_compiler::bundle::compile_with(set, &sources, None, &comp.programs)
        .map_err(|e| LoadFailure(e.to_string()))?;
    Ok((bytes, files, comp))
}

fn policies_of(model: &Model) -> Vec<PolicyInfo> {
    let mut out: Vec<PolicyInfo> = model
        .policies
        .iter()
        .map(|name| PolicyInfo {
            name: name.clone(),
            rules: Vec::new(),
        })
        .collect();
    for rule in &model.rules {
        if let Some(p) = out.get_mut(rule.policy as usize) {
            p.rules.push(RuleInfo {
                name: rule.name.clone(),
                effect: rule.effect.as_str(),
                actions: rule.actions.iter().map(pattern_text).collect(),
            });
        }
    }
    out
}

fn pattern_text(p: &Pattern) -> String {
    match p {
        Pattern::Exact(s) => s.clone(),
        Pattern::Prefix(s) => format!("{s}*"),
        Pattern::Suffix(s) => format!("*{s}"),
        Pattern::Any => "*".to_owned(),
        Pattern::Glob(g) => g.text.clone(),
    }
}

/// Lowercase hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
