//! Turning paths into a loaded runtime: a compiled bundle is loaded as is,
//! policy sources are compiled in-process first.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use writ_ir::Dialect;
use writ_runtime::Runtime;

/// What to load, kept for reloads.
#[derive(Debug, Clone)]
pub struct Spec {
    pub paths: Vec<PathBuf>,
    pub dialect: Option<Dialect>,
    pub public_key: Option<[u8; 32]>,
}

/// A loaded policy: the runtime and what the binding reads off it often.
#[derive(Debug)]
pub struct Loaded {
    pub runtime: Runtime,
    /// The bundle revision in hex, as the audit log records it.
    pub revision: Arc<str>,
    pub rules: usize,
    /// Warnings from compiling sources (empty for a bundle).
    pub warnings: Vec<String>,
}

/// Why a policy could not be loaded.
#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
    /// Each diagnostic, one line: `file:line:col: severity[CODE]: message`.
    pub diagnostics: Vec<String>,
}

impl Failure {
    fn plain(message: String) -> Failure {
        Failure {
            message,
            diagnostics: Vec::new(),
        }
    }
}

/// Reads a dialect name (`dialect=` in Python): the IR's names
/// ([`Dialect::parse`], any case), and `yaml` for writ's own YAML schema.
pub fn dialect(name: &str) -> Option<Dialect> {
    if name.trim().eq_ignore_ascii_case("yaml") {
        return Some(Dialect::Writ);
    }
    Dialect::parse(name)
}

/// True when the file starts with the bundle magic bytes.
pub fn is_bundle(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 8];
    let mut read = 0;
    while read < magic.len() {
        let Some(rest) = magic.get_mut(read..) else {
            break;
        };
        match f.read(rest) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    read == magic.len() && &magic == writ_runtime::MAGIC
}

fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compiles policy sources into bundle bytes, with the warnings.
///
/// # Errors
/// The policy's errors, rendered.
pub fn compile_sources(
    paths: &[PathBuf],
    dialect: Option<Dialect>,
) -> Result<(Vec<u8>, Vec<String>), Failure> {
    let comp = writ_compiler::compile_files(paths, dialect);
    let rendered: Vec<String> = comp
        .diagnostics
        .iter()
        .map(|d| d.one_line(&comp.sources))
        .collect();
    let Some(set) = comp.checked_set() else {
        let errors = comp.count(writ_diagnostics::Severity::Error);
        let mut message = format!(
            "{}: the policy has {errors} error{}",
            names(paths),
            if errors == 1 { "" } else { "s" }
        );
        for line in &rendered {
            message.push_str("\n  ");
            message.push_str(line);
        }
        return Err(Failure {
            message,
            diagnostics: rendered,
        });
    };
    let sources = comp.owned_sources();
    let bytes = writ_compiler::bundle::compile(set, &sources, None)
        .map_err(|e| Failure::plain(format!("{}: {e}", names(paths))))?;
    Ok((bytes, rendered))
}

/// Loads what `spec` names: one bundle, or policy sources compiled here.
///
/// # Errors
/// Why nothing was loaded.
pub fn load(spec: &Spec) -> Result<Loaded, Failure> {
    let bundles: Vec<&PathBuf> = spec.paths.iter().filter(|p| is_bundle(p)).collect();
    let (runtime, warnings) = if let Some(first) = bundles.first() {
        if spec.paths.len() != 1 {
            return Err(Failure::plain(format!(
                "{} is a compiled bundle: load it alone, not with other files",
                first.display()
            )));
        }
        let bytes = std::fs::read(first)
            .map_err(|e| Failure::plain(format!("cannot read {}: {e}", first.display())))?;
        let loaded = match &spec.public_key {
            Some(key) => Runtime::from_bytes_verified(&bytes, key),
            None => Runtime::from_vec(bytes),
        };
        let runtime = loaded.map_err(|e| Failure::plain(format!("{}: {e}", first.display())))?;
        (runtime, Vec::new())
    } else {
        if spec.public_key.is_some() {
            return Err(Failure::plain(format!(
                "public_key verifies a signed bundle, but {} is policy source; compile and sign it with `writ compile --sign`",
                names(&spec.paths)
            )));
        }
        let (bytes, warnings) = compile_sources(&spec.paths, spec.dialect)?;
        let runtime = Runtime::from_vec(bytes).map_err(|e| {
            Failure::plain(format!(
                "{}: the compiled bundle did not load (a bug): {e}",
                names(&spec.paths)
            ))
        })?;
        (runtime, warnings)
    };
    Ok(Loaded {
        revision: writ_audit::revision_of(runtime.header()),
        rules: runtime.rule_count(),
        runtime,
        warnings,
    })
}
