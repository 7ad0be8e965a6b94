//! The analysis behind `writ lsp`: diagnostics, outline, names, hovers,
//! completion, formatting and evaluation for one policy document, in byte
//! offsets. `writ_lsp` turns it into the protocol; nothing here knows LSP.

use std::ops::Range;

use writ_diagnostics::{Diagnostic, FileId, Severity, Span};
use writ_ir::{Dialect, PolicySet, Rule, Subject};
use writ_lsp::analysis::{
    self, Analysis, Completion, CompletionKind, Evaluation, Fix, Hover, NameKind, Reference,
    Symbol, Token, TokenKind, Workspace,
};

use writ_compiler::lang::{self, lexer};
use writ_compiler::{Compilation, Source};

/// writ's compiler as the language server's analyzer. It keeps the last
/// compilation of each document, so that hovers (asked for rarely, after
/// an analysis) do not compile again.
#[derive(Debug, Default)]
pub struct WritAnalyzer {
    last: std::sync::Mutex<std::collections::HashMap<String, Compiled>>,
    /// Each document's items as last read, so that an edit re-reads only
    /// the items it touched.
    reads: std::sync::Mutex<std::collections::HashMap<String, writ_compiler::Cache>>,
}

/// A document's compilation (with the shadowing its lints found).
#[derive(Debug, Clone)]
struct Compiled {
    comp: std::sync::Arc<Compilation>,
}

impl Compiled {
    /// True when this is the compilation of `text`.
    fn of(&self, text: &str) -> bool {
        self.comp
            .sources
            .get(FileId(0))
            .is_some_and(|f| f.text() == text)
    }
}

impl WritAnalyzer {
    /// The compilation of `text`, from the cache when the text is the one
    /// last analysed under `path`.
    fn compiled(&self, path: &str, text: &str) -> Compiled {
        if let Ok(last) = self.last.lock()
            && let Some(c) = last.get(path)
            && c.of(text)
        {
            return c.clone();
        }
        let comp = match self.reads.lock() {
            Ok(mut reads) => {
                if reads.len() >= 64 && !reads.contains_key(path) {
                    reads.clear();
                }
                compile_one(reads.entry(path.to_owned()).or_default(), path, text)
            }
            Err(_) => compile_one(&mut writ_compiler::Cache::default(), path, text),
        };
        let c = Compiled {
            comp: std::sync::Arc::new(comp),
        };
        if let Ok(mut last) = self.last.lock() {
            // One entry per document; forget them all past a bound rather
            // than grow with every file ever opened.
            if last.len() >= 64 && !last.contains_key(path) {
                last.clear();
            }
            if let Some(old) = last.insert(path.to_owned(), c.clone()) {
                drop_later(old);
            }
        }
        c
    }

    /// The hover of the rule or agent whose name is at `offset`.
    fn name_hover(&self, path: &str, text: &str, offset: usize) -> Option<Hover> {
        let c = self.compiled(path, text);
        let set = c.comp.set.as_ref()?;
        let within = |r: &Range<usize>| r.start <= offset && offset <= r.end;
        if let Some(a) = set
            .agents
            .iter()
            .find(|a| within(&unquoted(text, a.name.span)))
        {
            return Some(Hover {
                range: unquoted(text, a.name.span),
                markdown: agent_hover(a),
            });
        }
        let rule = set
            .rules
            .iter()
            .find(|r| within(&rule_name_range(text, r)))?;
        let related: Vec<&writ_compiler::lint::Shadow> = c
            .comp
            .shadows
            .iter()
            .filter(|s| s.shadowed == rule.id.0 as usize || s.by == rule.id.0 as usize)
            .collect();
        Some(Hover {
            range: rule_name_range(text, rule),
            markdown: rule_hover(set, rule, &related),
        })
    }
}

/// Frees a value on another thread: the last compilation of a large
/// document takes milliseconds to free, which need not stand between an
/// edit and its diagnostics. (If no thread can be started, it is freed
/// here.)
fn drop_later<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("writ-free".to_owned())
        .spawn(move || drop(value));
}

fn bytes(span: Span) -> Range<usize> {
    span.start as usize..span.end as usize
}

/// Places where `names` are used (not declared), as references.
fn uses(out: &mut Analysis, kind: NameKind, names: &[writ_ir::Spanned<String>], text: &str) {
    out.references.extend(names.iter().map(|n| Reference {
        kind,
        name: n.value.clone(),
        range: unquoted(text, n.span),
        definition: false,
    }));
}

/// The range a rule is known by: its name, or the whole rule when the name
/// was generated.
fn rule_name_range(text: &str, rule: &Rule) -> Range<usize> {
    if rule.generated_name {
        bytes(rule.span)
    } else {
        unquoted(text, rule.name.span)
    }
}

/// A name's range without its quotes.
fn unquoted(text: &str, span: Span) -> Range<usize> {
    let r = bytes(span);
    match text.get(r.clone()) {
        Some(s) if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') => r.start + 1..r.end - 1,
        _ => r,
    }
}

fn compile_one(cache: &mut writ_compiler::Cache, path: &str, text: &str) -> Compilation {
    writ_compiler::compile_with(
        cache,
        &[Source {
            name: path.to_owned(),
            text: text.to_owned(),
        }],
        None,
    )
}

fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// The did-you-mean of a diagnostic as an edit of its primary span.
fn fixes(text: &str, d: &Diagnostic) -> Vec<Fix> {
    let (Some(help), Some(span)) = (&d.help, d.span()) else {
        return Vec::new();
    };
    let Some(rest) = help.split("did you mean `").nth(1) else {
        return Vec::new();
    };
    let Some(word) = rest.split('`').next() else {
        return Vec::new();
    };
    let range = bytes(span);
    let Some(current) = text.get(range.clone()) else {
        return Vec::new();
    };
    if current.is_empty() || current.contains(['\n', ' ']) || word.is_empty() {
        return Vec::new();
    }
    let replacement = if current.starts_with('"') && current.ends_with('"') && current.len() >= 2 {
        format!("\"{word}\"")
    } else {
        word.to_owned()
    };
    vec![Fix {
        title: format!("Replace with `{word}`"),
        range,
        replacement,
    }]
}

fn diagnostic(text: &str, d: &Diagnostic) -> analysis::Diagnostic {
    analysis::Diagnostic {
        range: d.span().map_or(0..0, bytes),
        severity: match d.severity {
            Severity::Error => analysis::Severity::Error,
            Severity::Warning => analysis::Severity::Warning,
        },
        code: d.code.as_str().to_owned(),
        message: d.message.clone(),
        help: d.help.clone(),
        related: d
            .labels
            .iter()
            .skip(1)
            .map(|l| (bytes(l.span), l.message.clone()))
            .collect(),
        fixes: fixes(text, d),
    }
}

fn rule_hover(set: &PolicySet, rule: &Rule, shadows: &[&writ_compiler::lint::Shadow]) -> String {
    let mut md = format!(
        "**rule `{}`** — {}",
        rule.name.value,
        rule.effect.value.as_str()
    );
    if let Some(risk) = &rule.risk {
        md.push_str(&format!(" · risk {}", risk.value.as_str()));
    }
    let list = |ps: &[writ_ir::Pattern]| {
        ps.iter()
            .map(|p| format!("`{}`", p.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    md.push_str(&format!("\n\n- actions: {}", list(&rule.actions)));
    if !rule.targets.is_empty() {
        md.push_str(&format!("\n- targets: {}", list(&rule.targets)));
    }
    let names = |v: &[writ_ir::Spanned<String>]| {
        v.iter()
            .map(|s| s.value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !rule.scope.agents.is_empty() {
        md.push_str(&format!("\n- for agents: {}", names(&rule.scope.agents)));
    }
    if !rule.scope.roles.is_empty() {
        md.push_str(&format!("\n- for roles: {}", names(&rule.scope.roles)));
    }
    if let Some(c) = &rule.condition {
        md.push_str(&format!("\n- when: `{c}`"));
    }
    if let Some(l) = &rule.limit {
        md.push_str(&format!("\n- limit: {}", l.value.rate));
        if l.value.shared {
            md.push_str(", shared by all agents");
        }
    }
    if let Some(r) = &rule.reason {
        md.push_str(&format!("\n- because: {}", r.value));
    }
    for s in shadows {
        let name = |id: usize| {
            set.rules
                .get(id)
                .map_or_else(String::new, |r| r.name.value.clone())
        };
        if s.shadowed == rule.id.0 as usize {
            md.push_str(&format!(
                "\n\n⚠ never decides: shadowed by `{}`",
                name(s.by)
            ));
        } else if s.by == rule.id.0 as usize {
            md.push_str(&format!("\n\nshadows `{}`", name(s.shadowed)));
        }
    }
    md
}

fn agent_hover(a: &writ_ir::Agent) -> String {
    let what = match a.subject {
        Subject::Agent => "agent",
        Subject::Role => "role",
        Subject::Everyone => "every agent",
    };
    let mut md = format!("**{what} `{}`**", a.name.value);
    let names = |v: &[writ_ir::Spanned<String>]| {
        v.iter()
            .map(|s| s.value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !a.roles.is_empty() {
        md.push_str(&format!("\n\n- roles: {}", names(&a.roles)));
    }
    if let Some(t) = &a.tier {
        md.push_str(&format!("\n- tier: {}", t.value.as_str()));
    }
    for (label, list) in [
        ("models", &a.models),
        ("tools", &a.tools),
        ("hosts", &a.hosts),
    ] {
        for (kind, l) in [("allow", &list.allow), ("block", &list.block)] {
            if let Some(l) = l {
                let ps: Vec<String> = l
                    .patterns
                    .iter()
                    .map(|p| format!("`{}`", p.as_str()))
                    .collect();
                md.push_str(&format!("\n- {label} {kind}: {}", ps.join(", ")));
            }
        }
    }
    for l in &a.limits {
        md.push_str(&format!("\n- limit: {} {}", l.rate, l.key));
    }
    if !a.delegates.is_empty() {
        md.push_str(&format!("\n- delegates to: {}", names(&a.delegates)));
    }
    md
}

fn token_kind(t: &lexer::Tok) -> Option<TokenKind> {
    use lexer::Tok;
    Some(match t {
        Tok::Str(_) | Tok::Unterminated => TokenKind::String,
        Tok::Num(_) => TokenKind::Number,
        Tok::EqEq | Tok::NotEq | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge => TokenKind::Operator,
        Tok::True | Tok::False | Tok::Null => TokenKind::EnumMember,
        Tok::Ident(_) => TokenKind::Property,
        Tok::Error
        | Tok::LBrace
        | Tok::RBrace
        | Tok::LBracket
        | Tok::RBracket
        | Tok::LParen
        | Tok::RParen
        | Tok::Comma
        | Tok::Colon
        | Tok::Dot => return None,
        _ => TokenKind::Keyword,
    })
}

/// One line of documentation per keyword of the writ language.
const KEYWORD_DOCS: &[(&str, &str)] = &[
    (
        "policy",
        "Policy settings: `version`, `description`, `combine`, `default`, `timezone`, `max_delegation_depth`, `ceiling`, `entry_agents`.",
    ),
    (
        "agent",
        "Declares an agent: roles, tier, tags, token prefix, model/tool/host lists, limits and delegates.",
    ),
    (
        "role",
        "Declares a role: ceilings shared by every agent holding it.",
    ),
    ("every", "`every agent { ... }`: ceilings for all agents."),
    (
        "rule",
        "`rule NAME: EFFECT \"action\" [on \"target\"]` then `for`, `when`, `require`, `limit`, `risk`, `because`.",
    ),
    ("allow", "Effect: the action may proceed."),
    ("deny", "Effect: the action is refused."),
    (
        "approve",
        "Effect: the action needs a human's approval first.",
    ),
    (
        "combine",
        "How rules combine: `first-match` (the first matching rule decides) or `deny-overrides`.",
    ),
    (
        "default",
        "The decision when no rule matches, with an optional `risk` and `because`.",
    ),
    (
        "timezone",
        "IANA time zone for `time in` and `weekday in` conditions.",
    ),
    (
        "max_delegation_depth",
        "The longest delegation chain allowed.",
    ),
    (
        "ceiling",
        "`strict`: a delegate never gets more than its delegator; `none`: rules alone decide.",
    ),
    (
        "entry_agents",
        "Agents that start conversations; others should be reachable from them.",
    ),
    ("risk", "Risk level: `low`, `medium`, `high`, `critical`."),
    (
        "because",
        "The reason shown with the decision; `{agent}`, `{action}`, `{target}` are filled in.",
    ),
    (
        "roles",
        "Roles an agent holds (or, in `for roles`, the roles a rule applies to).",
    ),
    (
        "tier",
        "Trust tier: `untrusted`, `standard`, `trusted`, `privileged`.",
    ),
    ("tags", "Free-form labels; rules can apply `for tags [..]`."),
    (
        "token_prefix",
        "Requests carrying a token must have this prefix.",
    ),
    ("models", "Model allow/block lists (`models allow [..]`)."),
    ("tools", "Tool allow/block lists."),
    (
        "hosts",
        "Host allow/block lists, matched in any case; `require_tls`.",
    ),
    ("block", "A block list: matching names are refused."),
    ("require_tls", "Network requests must use TLS."),
    (
        "limit",
        "A rate limit: `limit N requests|tokens per second|minute|hour|day` (agents), `limit N per UNIT [shared]` (rules).",
    ),
    (
        "per",
        "The unit of a limit: `second`, `minute`, `hour`, `day`.",
    ),
    (
        "shared",
        "After a rule's limit (`limit 1000 per day shared`): one count for all agents together, not one per agent.",
    ),
    (
        "on",
        "The target of a rule (`on \"refund\"`); `on hosts` matches hosts in any case.",
    ),
    (
        "delegates",
        "Agents this agent may delegate or hand off to (its ceiling).",
    ),
    (
        "for",
        "Whom a rule applies to: `for agents [..]`, `for roles [..]`, `for tiers [..]`, `for tags [..]`.",
    ),
    (
        "when",
        "A condition over the request's context: comparisons, `in`, `matches`, `contains`, `exists`, `time in`, `weekday in`, `and`/`or`/`not`.",
    ),
    (
        "require",
        "`require field in [..]`: the field must hold one of the values, else deny.",
    ),
    ("matches", "Glob match: `*`, `?`, `[..]`, `{a,b}`."),
    ("contains", "True when a list or string contains the value."),
    ("exists", "True when the context field is present."),
    (
        "time",
        "`time in \"09:00-17:00\"` in the policy's time zone.",
    ),
    ("weekday", "`weekday in [mon, tue]`."),
];

/// Documentation of YAML keys worth a hover, by key.
const KEY_DOCS: &[(&str, &str)] = &[
    ("rules", "The policy's rules, in order."),
    (
        "agents",
        "Agents (writ, Sekuire) or role profiles (MeshGuard).",
    ),
    (
        "effect",
        "`allow`, `deny` or `approve` (MeshGuard: `allow`/`deny`).",
    ),
    (
        "approval",
        "Aegis: `auto` (allow), `approve` (needs a human), `block` (deny).",
    ),
    (
        "risk_level",
        "Aegis risk: `low`, `medium`, `high`, `critical`.",
    ),
    (
        "conditions",
        "Conditions the request must meet for the rule to apply.",
    ),
    (
        "constraints",
        "Values a request field must hold, else the rule denies.",
    ),
    (
        "defaultEffect",
        "MeshGuard: the decision when no rule matches.",
    ),
    ("defaults", "Aegis: the decision when no rule matches."),
    (
        "principals",
        "writ schema: `agents`, `roles`, `tiers`, `tags` the rule applies to.",
    ),
    ("when", "writ schema: the rule's condition."),
    (
        "limit",
        "A rate limit on the rule, per agent (`10/minute`) or shared by all agents (`{ rate: 10/minute, shared: true }`).",
    ),
    (
        "shared",
        "`true`: the rule's limit is one count for all agents together.",
    ),
    ("reason", "The reason shown with the decision."),
    ("timezone", "IANA time zone for time conditions."),
];

fn docs_link(anchor: &str) -> String {
    format!(
        "\n\n[writ language reference]({}/blob/main/docs/language.md#{anchor})",
        env!("CARGO_PKG_REPOSITORY")
    )
}

/// The word (letters, digits, `_`, `-`) around an offset.
fn word_at(text: &str, offset: usize) -> Option<(Range<usize>, &str)> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let before = text.get(..offset)?;
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let after = text.get(offset..)?;
    let end = offset + after.find(|c: char| !is_word(c)).unwrap_or(after.len());
    let w = text.get(start..end)?;
    (!w.is_empty()).then_some((start..end, w))
}

/// The YAML key a line's cursor sits under: the nearest line above with less
/// indentation (list dashes count as indentation).
fn yaml_parent(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or("");
    let mut lines = before.lines().rev();
    let current = lines.next().unwrap_or("");
    let indent = |l: &str| l.len() - l.trim_start_matches([' ', '-']).len();
    let mine = indent(current);
    for l in lines {
        let t = l.trim_start_matches([' ', '-']);
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if indent(l) < mine {
            return t.split(':').next().unwrap_or("").trim().to_owned();
        }
    }
    String::new()
}

impl writ_lsp::Analyzer for WritAnalyzer {
    fn is_policy(&self, path: &str, text: &str) -> bool {
        if lang::is_writ_file(path) || path.ends_with(".writ.yaml") {
            return true;
        }
        if !is_yaml(path) {
            return false;
        }
        if text
            .lines()
            .take(5)
            .any(|l| l.starts_with('#') && l.contains("writ"))
        {
            return true;
        }
        // Through the cache: the analysis that follows reuses it.
        let compiled = self.compiled(path, text);
        !compiled
            .comp
            .diagnostics
            .iter()
            .any(|d| d.code == writ_diagnostics::Code::UnknownDialect)
    }

    fn analyze(&self, path: &str, text: &str) -> Analysis {
        let compiled = self.compiled(path, text);
        let comp = &compiled.comp;
        let mut out = Analysis {
            diagnostics: comp
                .diagnostics
                .iter()
                .map(|d| diagnostic(text, d))
                .collect(),
            ..Analysis::default()
        };
        let Some(set) = &comp.set else {
            return out;
        };
        for a in &set.agents {
            let kind = match a.subject {
                Subject::Role => NameKind::Role,
                _ => NameKind::Agent,
            };
            let name_range = unquoted(text, a.name.span);
            if a.subject != Subject::Everyone {
                out.references.push(Reference {
                    kind,
                    name: a.name.value.clone(),
                    range: name_range.clone(),
                    definition: true,
                });
            }
            out.symbols.push(Symbol {
                name: a.name.value.clone(),
                kind,
                range: bytes(a.span),
                selection: name_range.clone(),
                detail: a
                    .roles
                    .iter()
                    .map(|r| r.value.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
            out.folds.push(bytes(a.span));
            uses(&mut out, NameKind::Role, &a.roles, text);
            uses(&mut out, NameKind::Agent, &a.delegates, text);
        }
        if let Some(entry) = &set.settings.entry_agents {
            uses(&mut out, NameKind::Agent, &entry.value, text);
        }
        for rule in &set.rules {
            let name_range = rule_name_range(text, rule);
            if !rule.generated_name {
                out.references.push(Reference {
                    kind: NameKind::Rule,
                    name: rule.name.value.clone(),
                    range: name_range.clone(),
                    definition: true,
                });
            }
            out.symbols.push(Symbol {
                name: rule.name.value.clone(),
                kind: NameKind::Rule,
                range: bytes(rule.span),
                selection: name_range.clone(),
                detail: rule.effect.value.as_str().to_owned(),
            });
            out.folds.push(bytes(rule.span));
            uses(&mut out, NameKind::Agent, &rule.scope.agents, text);
            uses(&mut out, NameKind::Role, &rule.scope.roles, text);
            out.actions
                .extend(rule.actions.iter().map(|p| p.as_str().to_owned()));
        }
        // Names used but declared as neither agent nor role are still
        // references (a role only rules name).
        out.actions.sort();
        out.actions.dedup();
        out
    }

    fn hover(&self, path: &str, text: &str, offset: usize) -> Option<Hover> {
        if let Some(h) = self.name_hover(path, text, offset) {
            return Some(h);
        }
        let (range, word) = word_at(text, offset)?;
        if lang::is_writ_file(path) {
            let doc = KEYWORD_DOCS.iter().find(|(k, _)| *k == word)?.1;
            return Some(Hover {
                range,
                markdown: format!("**`{word}`** — {doc}{}", docs_link(word)),
            });
        }
        // A YAML key: the word followed by `:`.
        let after = text.get(range.end..)?;
        if !after.starts_with(':') {
            return None;
        }
        let doc = KEY_DOCS.iter().find(|(k, _)| *k == word)?.1;
        Some(Hover {
            range,
            markdown: format!("**`{word}`** — {doc}"),
        })
    }

    fn complete(&self, path: &str, text: &str, offset: usize, ws: &Workspace) -> Vec<Completion> {
        let line_start = text
            .get(..offset)
            .and_then(|b| b.rfind('\n'))
            .map_or(0, |i| i + 1);
        let line = text.get(line_start..offset).unwrap_or("");
        let item = |label: &str, kind: CompletionKind, detail: Option<&str>| Completion {
            label: label.to_owned(),
            kind,
            detail: detail.map(str::to_owned),
            insert: None,
        };
        let words = |ws: &[&str], kind| ws.iter().map(|w| item(w, kind, None)).collect::<Vec<_>>();
        let trimmed = line.trim_end();
        let last_word = trimmed.split_whitespace().last().unwrap_or("");
        let in_string = line.matches('"').count() % 2 == 1;
        if lang::is_writ_file(path) {
            if in_string {
                // An action or target pattern: those used in the workspace.
                return ws
                    .actions
                    .iter()
                    .map(|a| {
                        item(
                            a,
                            CompletionKind::Action,
                            Some("action used in the workspace"),
                        )
                    })
                    .collect();
            }
            if line.contains("agents [")
                || line.contains("delegates [")
                || line.contains("entry_agents [")
            {
                return ws
                    .agents
                    .iter()
                    .map(|a| item(a, CompletionKind::Agent, Some("agent")))
                    .collect();
            }
            if line.contains("roles [") {
                return ws
                    .roles
                    .iter()
                    .map(|a| item(a, CompletionKind::Role, Some("role")))
                    .collect();
            }
            match last_word {
                "risk" => {
                    return words(
                        &["low", "medium", "high", "critical"],
                        CompletionKind::Value,
                    );
                }
                "per" => return words(&["second", "minute", "hour", "day"], CompletionKind::Value),
                "default" | "rule" if line.ends_with(' ') && last_word == "default" => {
                    return words(&["allow", "deny", "approve"], CompletionKind::Value);
                }
                "combine" => {
                    return words(&["first-match", "deny-overrides"], CompletionKind::Value);
                }
                "tier" => {
                    return words(
                        &["untrusted", "standard", "trusted", "privileged"],
                        CompletionKind::Value,
                    );
                }
                "ceiling" => return words(&["strict", "none"], CompletionKind::Value),
                _ => {}
            }
            if trimmed.ends_with(':') {
                return words(&["allow", "deny", "approve"], CompletionKind::Value);
            }
            return lexer::KEYWORDS
                .iter()
                .map(|(k, _)| {
                    let doc = KEYWORD_DOCS.iter().find(|(w, _)| w == k).map(|(_, d)| *d);
                    item(k, CompletionKind::Keyword, doc)
                })
                .collect();
        }
        // YAML: keys valid under the parent key, for the document's dialect.
        let compiled = self.compiled(path, text);
        let dialect = compiled
            .comp
            .set
            .as_ref()
            .and_then(|s| s.policies.first().map(|p| p.dialect))
            .unwrap_or(Dialect::Writ);
        if let Some((key, _)) = trimmed.trim_start_matches([' ', '-']).split_once(':') {
            return match key.trim() {
                "effect" => words(&["allow", "deny", "approve"], CompletionKind::Value),
                "approval" => words(&["auto", "approve", "block"], CompletionKind::Value),
                "risk" | "risk_level" | "default_risk" => words(
                    &["low", "medium", "high", "critical"],
                    CompletionKind::Value,
                ),
                "agents" | "from_agent" | "allowed_targets" => ws
                    .agents
                    .iter()
                    .map(|a| item(a, CompletionKind::Agent, Some("agent")))
                    .collect(),
                "roles" | "from_agent_role" => ws
                    .roles
                    .iter()
                    .map(|a| item(a, CompletionKind::Role, Some("role")))
                    .collect(),
                "action" | "actions" | "type" => ws
                    .actions
                    .iter()
                    .map(|a| item(a, CompletionKind::Action, None))
                    .collect(),
                _ => Vec::new(),
            };
        }
        let parent = yaml_parent(text, offset);
        writ_yaml::keys(dialect)
            .iter()
            .find(|(p, _)| *p == parent)
            .map(|(_, keys)| {
                keys.iter()
                    .map(|k| Completion {
                        label: (*k).to_owned(),
                        kind: CompletionKind::Key,
                        detail: KEY_DOCS
                            .iter()
                            .find(|(w, _)| w == k)
                            .map(|(_, d)| (*d).to_owned()),
                        insert: Some(format!("{k}: ")),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn tokens(&self, path: &str, text: &str) -> Vec<Token> {
        if !lang::is_writ_file(path) {
            return Vec::new();
        }
        let lexed = lexer::lex(FileId(0), text);
        let mut tokens: Vec<Token> = lexed
            .tokens
            .iter()
            .filter_map(|(s, t, e)| {
                token_kind(t).map(|kind| Token {
                    range: *s..*e,
                    kind,
                })
            })
            .chain(lexed.comments.iter().map(|c| Token {
                range: bytes(c.span),
                kind: TokenKind::Comment,
            }))
            .collect();
        tokens.sort_by_key(|t| t.range.start);
        tokens
    }

    fn format(&self, path: &str, text: &str) -> Result<String, String> {
        if !lang::is_writ_file(path) {
            return Err("formatting is for the writ language; convert YAML policies with `writ convert --to writ`".to_owned());
        }
        let stem = std::path::Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("policy");
        lang::fmt::format(text, stem).map_err(|e| match e {
            lang::fmt::FormatError::Syntax(_) => "the file has syntax errors".to_owned(),
            lang::fmt::FormatError::MeaningChanged(why) => why,
        })
    }

    fn to_writ(&self, path: &str, text: &str) -> Result<String, String> {
        writ_compiler::convert_to_writ(path, text).map_err(|e| e.to_string())
    }

    fn evaluate(&self, path: &str, text: &str, requests: &str) -> Vec<Evaluation> {
        let compiled = self.compiled(path, text);
        let Some(set) = compiled.comp.checked_set() else {
            return vec![Evaluation {
                line: 0,
                decision: "error".to_owned(),
                detail: "the policy has errors".to_owned(),
            }];
        };
        // The runtime decides, as everywhere a user sees a decision.
        let mut engine = match writ_compiler::engine::SourceEngine::new(set, &compiled.comp) {
            Ok(e) => e,
            Err(e) => {
                return vec![Evaluation {
                    line: 0,
                    decision: "error".to_owned(),
                    detail: e.to_string(),
                }];
            }
        };
        requests
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(line, l)| match writ_eval::Request::from_json(l) {
                Ok(req) => {
                    let d = engine.check(&req, jiff::Timestamp::now());
                    Evaluation {
                        line,
                        decision: d.effect.as_str().to_owned(),
                        detail: d.to_json(),
                    }
                }
                Err(e) => Evaluation {
                    line,
                    decision: "error".to_owned(),
                    detail: e.to_string(),
                },
            })
            .collect()
    }

    /// A link that opens: `WRIT_DOCS_URL/CODE.md` when that variable gives
    /// a base (e.g. where a team publishes writ's docs), otherwise the page
    /// in the writ checkout this binary was built from, when it is still
    /// there; no link (rather than a dead one) when neither is.
    fn docs_url(&self, code: &str) -> Option<String> {
        if !writ_diagnostics::Code::ALL
            .iter()
            .any(|c| c.as_str() == code)
        {
            return None;
        }
        if let Ok(base) = std::env::var("WRIT_DOCS_URL")
            && !base.is_empty()
        {
            return Some(format!("{}/{code}.md", base.trim_end_matches('/')));
        }
        // This crate sits in `crates/writ-ide` of the checkout.
        let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/diagnostics")
            .join(format!("{code}.md"));
        let page = page.canonicalize().ok()?;
        page.is_file().then(|| file_url(&page))
    }
}

/// A `file://` URL for an absolute path, with every byte outside
/// `A-Z a-z 0-9 - . _ ~ /` percent-encoded.
fn file_url(path: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let text = path.to_string_lossy().replace('\\', "/");
    let mut url = String::from("file://");
    if !text.starts_with('/') {
        url.push('/');
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            url.push(char::from(b));
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    url
}
