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

#[cfg(test)]
mod tests {
    //! Lists written empty or without a value, in every dialect: what the
    //! rule then means, and what is reported.

    use writ_diagnostics::{Code, FileId, SourceFile};
    use writ_ir::{Condition, Rule};

    fn lower(text: &str) -> (Vec<Rule>, Vec<Code>) {
        let source = SourceFile::new("t.yaml", text);
        let lowered = super::lower(FileId(0), &source, None, "t");
        let codes = lowered.diagnostics.iter().map(|d| d.code).collect();
        match lowered.file {
            Some(file) => (file.rules, codes),
            None => panic!("{codes:?}"),
        }
    }

    /// The IR's empty target list means any target: a target list written
    /// empty must not, so its rule gets a condition that never holds.
    fn never_applies(rule: &Rule) -> bool {
        matches!(&rule.condition, Some(Condition::Any(c)) if c.is_empty())
    }

    /// serde-saphyr's default budget (250,000 nodes) refused a valid policy
    /// of about 17,000 rules; writ's scales with the file: 30,000 rules of
    /// eight actions each (about 400,000 nodes) load.
    #[test]
    fn large_yaml_policies_load() {
        let mut text = String::from("writ: 1\nrules:\n");
        for i in 0..30_000 {
            text.push_str(&format!(
                "  - effect: allow\n    actions: [a{i}, b{i}, c{i}, d{i}, e{i}, f{i}, g{i}, h{i}]\n"
            ));
        }
        let source = SourceFile::new("big.yaml", &text);
        let lowered = super::lower(FileId(0), &source, None, "big");
        assert!(
            lowered.diagnostics.is_empty(),
            "{:?}",
            lowered.diagnostics.first()
        );
        assert_eq!(lowered.file.map(|f| f.rules.len()), Some(30_000));
    }

    /// A file denser in values than any policy (one per two bytes) is
    /// refused in writ's words: what limit, and what to do; never the
    /// parser's debug text ("budget breached: Nodes { nodes: 250001 }").
    #[test]
    fn a_yaml_file_past_the_readers_budget_says_what_to_do() {
        let text = format!("writ: 1\nrules: [{}a]\n", "a,".repeat(400_000));
        let source = SourceFile::new("dense.yaml", &text);
        let lowered = super::lower(FileId(0), &source, None, "dense");
        let d = lowered.diagnostics.first();
        assert!(
            d.is_some_and(|d| d.code == Code::YamlSyntax
                && d.message.contains("more YAML values than writ reads")
                && !d.message.contains("Nodes {")
                && d.help
                    .as_deref()
                    .is_some_and(|h| h.contains("docs/limits.md"))),
            "{:?}",
            lowered.diagnostics
        );
        // Nesting past 64 levels names the depth.
        let deep = format!("writ: 1\nrules: {}{}\n", "[".repeat(80), "]".repeat(80));
        let source = SourceFile::new("deep.yaml", &deep);
        let lowered = super::lower(FileId(0), &source, None, "deep");
        assert!(
            lowered
                .diagnostics
                .first()
                .is_some_and(|d| d.message.contains("levels deep")),
            "{:?}",
            lowered.diagnostics
        );
    }

    #[test]
    fn empty_target_lists_make_rules_never_apply() {
        let (rules, codes) = lower(
            "writ: 1\nrules:\n  - effect: allow\n    action: \"tool:call\"\n    targets: []\n",
        );
        assert!(rules.iter().all(never_applies), "{rules:?}");
        assert_eq!(codes, [Code::EmptyList]);

        // Aegis takes one pattern: agent-aegis 1.0.0 would run a list's
        // items together (`[]` matches only the empty target), so a list
        // is refused.
        let source = SourceFile::new(
            "t.yaml",
            "version: \"1\"\nrules:\n  - name: r\n    match: { type: \"db.query\", target: [] }\n    approval: auto\n",
        );
        let lowered = super::lower(FileId(0), &source, None, "t");
        let codes: Vec<Code> = lowered.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::WrongType]);

        // Sekuire: an empty allowed list allows no model, an empty blocked
        // list blocks none; the tools, absent, are all allowed.
        let (rules, codes) = lower("models:\n  allowed_models: []\n  blocked_models: []\n");
        let names: Vec<(&str, bool)> = rules
            .iter()
            .map(|r| (r.name.value.as_str(), never_applies(r)))
            .collect();
        assert_eq!(
            names,
            [
                ("model_blocked", true),
                ("model_allowed", true),
                ("tool_allowed", false)
            ]
        );
        assert_eq!(codes, [Code::EmptyList]);

        // A target list that is not empty is only a target list.
        let (rules, codes) = lower(
            "writ: 1\nrules:\n  - effect: allow\n    action: \"tool:call\"\n    targets: [a]\n",
        );
        assert_eq!(rules.first().map(|r| r.condition.is_none()), Some(true));
        assert!(codes.is_empty(), "{codes:?}");
    }

    #[test]
    fn lists_without_a_value_are_errors_in_every_dialect() {
        for text in [
            "writ: 1\nrules:\n  - effect: deny\n    action: null\n",
            "writ: 1\nrules:\n  - effect: deny\n    actions:\n",
            "writ: 1\nrules:\n  - effect: allow\n    action: a\n    target: ~\n",
            "writ: 1\nrules:\n  - effect: allow\n    action: a\n    principals:\n",
            "writ: 1\nrules:\n  - effect: allow\n    action: a\n    principals: { roles: null }\n",
            "defaultEffect: deny\nrules:\n  - action: null\n    effect: deny\n",
            "defaultEffect: deny\nrules:\n  - actions: ~\n    effect: deny\n",
            "defaultEffect: deny\nrules:\n  - action: a\n    effect: allow\n    conditions: { agent_role: null }\n",
            "version: \"1\"\nrules:\n  - name: r\n    match: { type: null }\n    approval: block\n",
            "version: \"1\"\nrules:\n  - name: r\n    match: { type: a, target: null }\n    approval: auto\n",
            "version: \"1\"\nrules:\n  - name: r\n    match: { type: a }\n    approval: auto\n    conditions:\n",
            "toolsets:\n  allowed_tools:\n",
            "permissions:\n  network:\n    blocked_domains: null\n",
        ] {
            assert_reports(text, Code::WrongType);
        }
    }

    fn assert_reports(text: &str, code: Code) {
        let (_, codes) = lower(text);
        assert_eq!(codes, [code], "{text}");
    }

    #[test]
    fn empty_conditions_warn_in_every_dialect() {
        for text in [
            "writ: 1\nrules:\n  - effect: allow\n    action: a\n    when: {}\n",
            "writ: 1\nrules:\n  - effect: allow\n    action: a\n    when: []\n",
            "writ: 1\nrules:\n  - effect: allow\n    action: a\n    when: { all: [] }\n",
            "writ: 1\nrules:\n  - effect: allow\n    action: a\n    when: { not: {} }\n",
            "defaultEffect: deny\nrules:\n  - action: a\n    effect: allow\n    conditions: {}\n",
            "version: \"1\"\nrules:\n  - name: r\n    match: { type: a }\n    approval: auto\n    conditions: {}\n",
        ] {
            assert_reports(text, Code::EmptyCondition);
        }
        let (rules, codes) =
            lower("writ: 1\nrules:\n  - effect: allow\n    action: a\n    when: { any: [] }\n");
        assert_eq!(codes, [Code::EmptyList]);
        assert!(rules.iter().all(never_applies), "{rules:?}");
    }
}
