//! The writ compiler: reads policy files, picks the front end (the writ
//! language, `writ-lang`, or a YAML dialect, `writ-yaml`), lowers and
//! merges them into one policy set, checks it (the delegation graph,
//! lints, glob program budgets) and collects diagnostics; [`bundle`] compiles
//! a checked set into the bundle the runtime loads.
//!
//! It does no terminal I/O: the CLI (the `writ` package) renders what it
//! returns. The Python package and the editor's analysis (`writ-ide`)
//! call it too.

pub mod bundle;
pub mod engine;
pub mod inputs;
pub mod keys;
pub mod testfile;
pub use writ_lang as lang;
pub mod lint;

use std::path::Path;

use writ_diagnostics::{Code, Diagnostic, FileId, Severity, SourceMap, Span};
use writ_ir::{Dialect, PolicySet};

/// The result of loading one or more policy files.
#[derive(Debug)]
pub struct Compilation {
    pub sources: SourceMap,
    /// The merged policy set; `None` when a file could not be read or parsed at all.
    pub set: Option<PolicySet>,
    pub diagnostics: Vec<Diagnostic>,
    /// Rules that can never decide (W0104), when the lints ran.
    pub shadows: Vec<lint::Shadow>,
    /// The glob programs of the set's patterns, built and checked against the
    /// limits ([`bundle::check_programs`]); [`bundle::compile_with`] takes
    /// them, so that a bundle does not build them again.
    pub programs: bundle::Programs,
}

impl Compilation {
    /// The sources read, owned (what `bundle::compile` embeds).
    #[must_use]
    pub fn owned_sources(&self) -> Vec<Source> {
        self.sources
            .iter()
            .map(|(_, f)| Source {
                name: f.name().to_owned(),
                text: f.text().to_owned(),
            })
            .collect()
    }

    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    #[must_use]
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }

    /// The merged set, only when no error was found: evaluation never runs
    /// on a policy that did not check cleanly.
    #[must_use]
    pub fn checked_set(&self) -> Option<&PolicySet> {
        if self.has_errors() {
            None
        } else {
            self.set.as_ref()
        }
    }
}

/// What one compilation may take. Each limit has a default, and an
/// environment variable raises (or lowers) it for `writ check`, the editor,
/// `writ compile` and the Python package alike, so that they give one
/// verdict; `docs/limits.md` says why each exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of policy text, all sources of a compilation together
    /// (`WRIT_MAX_POLICY_SIZE`; E0002 past it).
    pub source: usize,
    /// Bytes of one pattern's glob program (`WRIT_AUTOMATON_LIMIT`; E0209).
    pub program: usize,
    /// Bytes of a bundle's glob programs together, each pattern as often as it
    /// is written (`WRIT_AUTOMATA_BUDGET`; E0209).
    pub programs: usize,
}

/// Policy text past this many bytes (all sources together) is refused by
/// default (E0002): some 400,000 rules, which take about 800 MiB to check
/// (`docs/limits.md`).
pub const MAX_POLICY_SIZE: usize = 32 << 20;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            source: MAX_POLICY_SIZE,
            program: bundle::PROGRAM_SIZE_LIMIT,
            programs: bundle::PROGRAMS_BUDGET,
        }
    }
}

impl Limits {
    /// The limits in force: the defaults, with the environment variables
    /// that are set and valid.
    #[must_use]
    pub fn current() -> Limits {
        Limits::from_env().0
    }

    /// The limits in force, and for each variable that is set but is not a
    /// size, its code and a sentence (that limit keeps its default).
    #[must_use]
    pub fn from_env() -> (Limits, Vec<(Code, String)>) {
        let mut limits = Limits::default();
        let mut problems = Vec::new();
        for (var, code, slot) in [
            (
                "WRIT_MAX_POLICY_SIZE",
                Code::PolicyTooLarge,
                &mut limits.source,
            ),
            (
                "WRIT_AUTOMATON_LIMIT",
                Code::PatternTooBig,
                &mut limits.program,
            ),
            (
                "WRIT_AUTOMATA_BUDGET",
                Code::PatternTooBig,
                &mut limits.programs,
            ),
        ] {
            let Some(value) = std::env::var_os(var) else {
                continue;
            };
            match value.to_str().and_then(parse_size) {
                Some(n) => *slot = n,
                None => problems.push((
                    code,
                    format!(
                        "the environment variable {var} is `{}`, not a size such as `64MiB`, \
                         `512KiB` or `1048576`; the default, {}, applies",
                        value.to_string_lossy(),
                        bundle::size(*slot)
                    ),
                )),
            }
        }
        (limits, problems)
    }
}

/// A size in bytes: digits, then optionally a unit (`K`, `KB`, `KiB`, `M`,
/// `MB`, `MiB`, `G`, `GB`, `GiB`, all of 1024; any case, spaces allowed).
#[must_use]
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: usize = n.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1usize.checked_shl(shift)?)
}

/// One policy source: a display name (a path) and its text.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

fn stem(name: &str) -> String {
    let file = Path::new(name)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or(name);
    file.split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(file)
        .to_owned()
}

/// Lowers and merges sources given in memory, in order.
#[must_use]
pub fn compile(sources: &[Source], dialect: Option<Dialect>) -> Compilation {
    compile_with(
        &mut Cache {
            once: true,
            ..Cache::default()
        },
        sources,
        dialect,
    )
}

/// What [`compile_with`] keeps from one compilation for the next, so that
/// compiling a new version of the same sources re-reads only the items that
/// changed (the language server compiles on every keystroke). For now the
/// writ language's items; YAML files are read whole.
#[derive(Debug, Default)]
pub struct Cache {
    reads: std::collections::HashMap<String, lang::incremental::ReadCache>,
    /// The glob programs of the last compilation's patterns.
    programs: bundle::Programs,
    /// Limits given by the caller; `None`: [`Limits::from_env`] at each
    /// compilation.
    limits: Option<Limits>,
    /// The cache of one compilation ([`compile`]): it keeps no items, so
    /// that a policy is not held twice while it is read.
    once: bool,
}

impl Cache {
    /// A cache whose compilations use `limits`, whatever the environment
    /// says.
    #[must_use]
    pub fn with_limits(limits: Limits) -> Cache {
        Cache {
            limits: Some(limits),
            ..Cache::default()
        }
    }
}

/// [`compile`], reusing what `cache` kept from the last compilation of the
/// same source names; the result is the same as [`compile`]'s.
#[must_use]
pub fn compile_with(
    cache: &mut Cache,
    sources: &[Source],
    dialect: Option<Dialect>,
) -> Compilation {
    cache
        .reads
        .retain(|name, _| sources.iter().any(|s| s.name == *name));
    let (limits, problems) = match cache.limits {
        Some(l) => (l, Vec::new()),
        None => Limits::from_env(),
    };
    if cache.programs.limits() != limits {
        cache.programs = bundle::Programs::new(limits);
    }
    let mut map = SourceMap::new();
    let mut diagnostics = Vec::new();
    let mut files = Vec::new();
    let mut complete = true;
    let mut read: usize = 0;
    for src in sources {
        let id = map.add(src.name.clone(), src.text.clone());
        let Some(file) = map.get(id) else { continue };
        if id.0 == 0 {
            // A limit set wrong in the environment, on the first file.
            for (code, why) in &problems {
                diagnostics.push(
                    Diagnostic::new(*code, Span::file_start(id), why.clone())
                        .with_help("see docs/limits.md for each variable and its default"),
                );
            }
        }
        read = read.saturating_add(src.text.len());
        if read > limits.source {
            diagnostics.push(too_large(
                id,
                &src.name,
                src.text.len(),
                read,
                limits.source,
            ));
            complete = false;
            break;
        }
        if lang::is_writ_file(&src.name) {
            let once = cache.once;
            let reads = cache.reads.entry(src.name.clone()).or_insert_with(|| {
                if once {
                    lang::incremental::ReadCache::once()
                } else {
                    lang::incremental::ReadCache::default()
                }
            });
            let (lowered, diags) =
                lang::incremental::read(reads, id, file.text(), &stem(&src.name));
            diagnostics.extend(diags);
            files.push(lowered);
            continue;
        }
        let lowered = writ_yaml::lower(id, file, dialect, &stem(&src.name));
        diagnostics.extend(lowered.diagnostics);
        match lowered.file {
            Some(f) => files.push(f),
            None => complete = false,
        }
    }
    let mut shadows = Vec::new();
    let set = if complete {
        let (set, merge_diags) = writ_ir::merge(files);
        diagnostics.extend(merge_diags);
        let graph = writ_graph::build(&set);
        diagnostics.extend(writ_graph::check(&set, &graph));
        // The runtime's programs, built now so that an exploding glob is
        // an error here (and in the editor), not only in `writ compile`.
        diagnostics.extend(bundle::check_programs(&set, &mut cache.programs));
        // Lints on a policy with errors would judge what the errors left
        // out (an agent whose lists were rejected looks empty).
        if !diagnostics.iter().any(Diagnostic::is_error) {
            shadows = lint::shadowed(&set);
            diagnostics.extend(lint::lint_with(&set, &shadows));
        }
        Some(set)
    } else {
        None
    };
    sort(&mut diagnostics);
    Compilation {
        sources: map,
        set,
        diagnostics,
        shadows,
        programs: cache.programs.clone(),
    }
}

/// E0002: the policy text so far (`total` bytes, `len` of them in `name`)
/// is over `limit`.
fn too_large(id: FileId, name: &str, len: usize, total: usize, limit: usize) -> Diagnostic {
    let whose = if total == len {
        format!("`{name}` is {}", bundle::size(len))
    } else {
        format!(
            "with `{name}` ({}), the policy's files take {}",
            bundle::size(len),
            bundle::size(total)
        )
    };
    Diagnostic::new(
        Code::PolicyTooLarge,
        Span::file_start(id),
        format!(
            "{whose}, more than the {} writ reads in one policy; `{name}` was not read",
            bundle::size(limit)
        ),
    )
    .with_help(format!(
        "split the policy, or raise the limit with the environment variable \
         WRIT_MAX_POLICY_SIZE (e.g. WRIT_MAX_POLICY_SIZE={}MiB); checking takes about \
         25 bytes of memory per byte of policy",
        (total >> 20).saturating_add(1).next_power_of_two()
    ))
}

/// Reads files from disk and compiles them. A file that cannot be read is
/// an E0001 diagnostic, not a failure.
#[must_use]
pub fn compile_files(paths: &[impl AsRef<Path>], dialect: Option<Dialect>) -> Compilation {
    compile_paths(paths, None, dialect)
}

/// [`compile_files`] for the paths of a command line ([`inputs::policy_paths`]
/// has expanded directories): `-` is `stdin`'s text, read by the caller,
/// under the name [`inputs::stdin_name`] gives it.
#[must_use]
pub fn compile_paths(
    paths: &[impl AsRef<Path>],
    stdin: Option<&str>,
    dialect: Option<Dialect>,
) -> Compilation {
    let mut sources = Vec::new();
    let mut unreadable = Vec::new();
    let mut too_big = None;
    let limit = Limits::from_env().0.source;
    let mut total: usize = 0;
    for p in paths {
        let p = p.as_ref();
        if let (Some(text), true) = (stdin, p.as_os_str() == "-") {
            total = total.saturating_add(text.len());
            let name = inputs::stdin_name(text).to_owned();
            if total > limit {
                too_big = Some((name, text.len(), total, limit));
                break;
            }
            sources.push(Source {
                name,
                text: text.to_owned(),
            });
            continue;
        }
        let name = p.display().to_string();
        // Past the size limit a file is not even read into memory.
        if let Ok(meta) = std::fs::metadata(p) {
            let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
            total = total.saturating_add(len);
            if total > limit {
                too_big = Some((name, len, total, limit));
                break;
            }
        }
        match std::fs::read(p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => sources.push(Source { name, text }),
                Err(e) => unreadable.push((
                    name,
                    format!(
                        "it is not UTF-8 text (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                )),
            },
            Err(e) => unreadable.push((name, e.to_string().to_lowercase())),
        }
    }
    let mut comp = compile(&sources, dialect);
    if let Some((name, len, total, limit)) = too_big {
        let id = comp.sources.add(name.clone(), String::new());
        comp.diagnostics
            .push(too_large(id, &name, len, total, limit));
        comp.set = None;
    }
    for (name, why) in unreadable {
        comp.input_error(
            &name,
            &format!("cannot read `{name}`: {why}"),
            "check the path and the file's permissions",
        );
    }
    comp
}

impl Compilation {
    /// Adds an E0001 error about an input (`name`: a path, or `-`) that
    /// could not be used; the policy set is then withheld.
    pub fn input_error(&mut self, name: &str, message: &str, help: &str) {
        let id = self.sources.add(name.to_owned(), String::new());
        self.diagnostics.push(
            Diagnostic::new(Code::Io, Span::file_start(id), message.to_owned()).with_help(help),
        );
        self.set = None;
    }
}

/// Orders diagnostics by file, then position, so output is stable.
fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| d.span().map(|s| (s.file, s.start, s.end)));
}

/// Why [`convert_to_writ`] gave no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConvertError {
    /// The policy has errors (`writ check` lists them).
    PolicyErrors,
    /// A construct the writ language cannot say, at `file:line:col` when known.
    Unsupported { at: Option<String>, message: String },
    /// The result would mean something else: a bug in writ.
    MeaningChanged(String),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::PolicyErrors => f.write_str("the policy has errors"),
            ConvertError::Unsupported {
                at: Some(at),
                message,
            } => write!(f, "{at}: {message}"),
            ConvertError::Unsupported { at: None, message } => f.write_str(message),
            ConvertError::MeaningChanged(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ConvertError {}

/// Converts one policy (any YAML dialect, or the writ language, which is
/// then formatted) to the writ language, proving the result means the same.
///
/// # Errors
/// Errors in the policy, a construct the writ language cannot say, or (a
/// bug) a result that would mean otherwise.
pub fn convert_to_writ(name: &str, text: &str) -> Result<String, ConvertError> {
    let source = Source {
        name: name.to_owned(),
        text: text.to_owned(),
    };
    let comp = compile(std::slice::from_ref(&source), None);
    let Some(set) = comp.checked_set() else {
        return Err(ConvertError::PolicyErrors);
    };
    let stem = stem(name);
    let out = if lang::is_writ_file(name) {
        lang::fmt::format(text, &stem).map_err(|e| match e {
            lang::fmt::FormatError::Syntax(_) => ConvertError::PolicyErrors,
            lang::fmt::FormatError::MeaningChanged(why) => ConvertError::MeaningChanged(why),
        })?
    } else {
        let comments = lang::convert::yaml_comments(writ_diagnostics::FileId(0), text);
        lang::convert::to_writ(set, text, comments).map_err(|u| ConvertError::Unsupported {
            at: u
                .span
                .and_then(|s| comp.sources.location(s))
                .map(|(file, lc)| format!("{file}:{}:{}", lc.line, lc.column)),
            message: u.message.clone(),
        })?
    };
    let check = compile(
        &[Source {
            name: format!("{stem}.writ"),
            text: out.clone(),
        }],
        None,
    );
    if check
        .checked_set()
        .is_some_and(|again| lang::convert::same_meaning(set, again))
    {
        Ok(out)
    } else {
        Err(ConvertError::MeaningChanged(
            "the result would not mean the same; this is a bug in writ".to_owned(),
        ))
    }
}
