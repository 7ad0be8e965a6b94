//! YAML front ends: writ's own schema and the MeshGuard, Aegis and Sekuire
//! dialects, each lowered into the typed IR.
//!
//! Reading never fails: [`lower`] returns whatever it could build plus every
//! diagnostic it found (unknown keys with did-you-mean, wrong types, bad
//! globs, times, rates and words), each with its span. Callers decide
//! whether errors stop them.

mod aegis;
mod cx;
mod detect;
mod meshguard;
mod sekuire;
pub mod tree;
mod writ_schema;

use writ_diagnostics::{Code, Diagnostic, FileId, SourceFile, Span};
use writ_ir::{Agent, Dialect, PartialSettings, Policy, PolicyFile, PolicyId, Rule};

pub use detect::detect;

use cx::Cx;
use tree::Node;

/// The result of reading one YAML file.
#[derive(Debug)]
pub struct Lowered {
    /// The dialect used (detected or forced); `None` when it could not be told.
    pub dialect: Option<Dialect>,
    /// The lowered policy; present whenever the YAML parsed, even with errors.
    pub file: Option<PolicyFile>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Policy header fields common to the dialects.
#[derive(Default)]
pub(crate) struct Header {
    pub name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
}

impl Header {
    pub fn read(cx: &mut Cx<'_>, header: &mut Header, key: &str, node: &Node) {
        let value = cx.string(node, &format!("`{key}`")).map(|s| s.value);
        match key {
            "name" => header.name = value,
            "version" => header.version = value,
            _ => header.description = value,
        }
    }
}

/// What a dialect lowering fills in.
#[derive(Default)]
pub(crate) struct Lowering {
    pub header: Header,
    pub settings: PartialSettings,
    pub agents: Vec<Agent>,
    pub rules: Vec<Rule>,
}

/// The keys a dialect accepts under each parent key (`""` for the top
/// level; list items are under their list's key), for editor completion.
#[must_use]
pub fn keys(dialect: Dialect) -> &'static [(&'static str, &'static [&'static str])] {
    match dialect {
        Dialect::Writ => writ_schema::KEYS,
        Dialect::Aegis => aegis::KEYS,
        Dialect::MeshGuard => meshguard::KEYS,
        Dialect::Sekuire => sekuire::KEYS,
    }
}

/// Reads a YAML policy. `dialect` forces a dialect; otherwise it is detected.
/// `fallback_name` names the policy when the file does not (the file stem).
#[must_use]
pub fn lower(
    file: FileId,
    source: &SourceFile,
    dialect: Option<Dialect>,
    fallback_name: &str,
) -> Lowered {
    let root = match tree::parse(file, source) {
        Ok(Some(root)) => root,
        Ok(None) => {
            let d = Diagnostic::new(
                Code::EmptyPolicy,
                Span::file_start(file),
                "the policy file is empty",
            )
            .with_help("add at least a `rules:` list; see `docs/schema.md` for writ's YAML schema");
            return Lowered {
                dialect,
                file: None,
                diagnostics: vec![d],
            };
        }
        Err(d) => {
            return Lowered {
                dialect,
                file: None,
                diagnostics: vec![d],
            };
        }
    };
    if root.as_map().is_none() {
        let d = Diagnostic::new(
            Code::WrongType,
            root.span,
            format!(
                "a policy file must be a mapping of keys, found {}",
                root.type_name()
            ),
        )
        .with_help("start the file with keys such as `rules:`");
        return Lowered {
            dialect,
            file: None,
            diagnostics: vec![d],
        };
    }
    let Some(dialect) = dialect.or_else(|| detect(&root)) else {
        let d = Diagnostic::new(Code::UnknownDialect, Span::file_start(file), "cannot tell which policy dialect this file is written in")
            .with_help("add `writ: 1` at the top for writ's own schema, or pass `--dialect meshguard|aegis|sekuire|writ`");
        return Lowered {
            dialect: None,
            file: None,
            diagnostics: vec![d],
        };
    };
    let mut cx = Cx::new(source.text());
    let mut out = Lowering::default();
    match dialect {
        Dialect::Writ => writ_schema::lower(&mut cx, &root, &mut out),
        Dialect::MeshGuard => meshguard::lower(&mut cx, &root, &mut out),
        Dialect::Aegis => aegis::lower(&mut cx, &root, &mut out),
        Dialect::Sekuire => sekuire::lower(&mut cx, &root, &mut out),
    }
    let policy = Policy {
        id: PolicyId(0),
        name: out.header.name.unwrap_or_else(|| fallback_name.to_owned()),
        version: out.header.version,
        description: out.header.description,
        dialect,
        file,
    };
    Lowered {
        dialect: Some(dialect),
        file: Some(PolicyFile {
            policy,
            settings: out.settings,
            agents: out.agents,
            rules: out.rules,
        }),
        diagnostics: cx.diags,
    }
}
