//! `writ convert`: any YAML dialect → the writ language, and the writ
//! language → writ's YAML schema.
//!
//! Both directions go through the IR, so a converted policy means what the
//! original meant (tests check that both lower to the same IR). Comments
//! come along: each is placed before the item, entry or clause that follows
//! it in the original, or at the end of the line it ended.

use std::fmt::Write as _;

use writ_diagnostics::{FileId, Span};
use writ_ir::{
    Agent, Condition, Constraint, Field, PolicySet, Rule, Spanned, Subject, Value,
    generated_rule_name,
};

use super::ast::{
    AccessKind, Block, BlockKind, Clause, ClauseKind, Entry, EntryKind, Expr, File, Item, Lit,
    LitKind, Names, Principal, PrincipalKind, RuleDecl,
};
use super::lexer::Comment;
use super::lower::default_constraint_name;
use super::print;

/// Something the target format cannot say; conversion stops rather than
/// change the policy's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub span: Option<Span>,
    pub message: String,
}

/// The comments of a YAML file, with their spans. Block scalars (`|`, `>`)
/// are skipped, and so is the `yaml-language-server` schema directive.
#[must_use]
pub fn yaml_comments(file: FileId, text: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    let mut block_indent: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start().len();
        if let Some(bi) = block_indent {
            if body.trim().is_empty() || indent > bi {
                continue;
            }
            block_indent = None;
        }
        if let Some(pos) = comment_start(body) {
            let text = body.get(pos + 1..).unwrap_or("").trim_end().to_owned();
            if !text.trim_start().starts_with("yaml-language-server:") {
                out.push(Comment {
                    span: Span::new(
                        file,
                        u32::try_from(start + pos).unwrap_or(u32::MAX),
                        u32::try_from(start + body.len()).unwrap_or(u32::MAX),
                    ),
                    text,
                });
            }
        }
        let code = comment_start(body).map_or(body, |p| body.get(..p).unwrap_or(body));
        let t = code.trim_end();
        if t.ends_with('|')
            || t.ends_with('>')
            || t.ends_with("|-")
            || t.ends_with(">-")
            || t.ends_with("|+")
            || t.ends_with(">+")
        {
            block_indent = Some(indent);
        }
    }
    out
}

/// Where a `#` comment starts on a YAML line, outside quotes.
fn comment_start(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'')
                && (prev == ' '
                    || prev == '['
                    || prev == ':'
                    || prev == ','
                    || prev == '{'
                    || prev == '-'
                    || i == 0) =>
            {
                quote = Some(c);
            }
            None if c == '#' && (i == 0 || prev.is_whitespace()) => return Some(i),
            None => {}
        }
        prev = c;
    }
    None
}

// ---------------------------------------------------------------------
// IR → writ language

fn sn(value: String, span: Span) -> Spanned<String> {
    Spanned::new(value, span)
}

/// Builds the writ language's tree for a one-file policy set.
///
/// # Errors
/// When the IR holds something the language cannot say (a map value).
pub fn to_tree(set: &PolicySet, comments: Vec<Comment>) -> Result<File, Unsupported> {
    no_ceiling_actions(set, "the writ language")?;
    let mut items = Vec::new();
    let start_of_all = set
        .agents
        .iter()
        .map(|a| a.span)
        .chain(set.rules.iter().map(|r| r.span))
        .map(|s| s.start)
        .min()
        .unwrap_or(0);
    let s = &set.settings;
    let setting_spans = [
        s.combining.span,
        s.default_effect.span,
        s.timezone.span,
        s.default_risk.as_ref().map(|r| r.span),
        s.default_reason.as_ref().map(|r| r.span),
        s.max_delegation_depth.as_ref().map(|r| r.span),
        s.ceiling.span,
        s.entry_agents.as_ref().map(|r| r.span),
    ];
    let file = set.policies.first().map_or(FileId(0), |p| p.file);
    let head_start = setting_spans
        .iter()
        .flatten()
        .map(|s| s.start)
        .min()
        .map_or(start_of_all, |m| m.min(start_of_all));
    let at = |o: u32| Span::new(file, o, o);
    if let Some(policy) = set.policies.first() {
        let mut entries = Vec::new();
        let mut push = |kind: EntryKind, span: Span| entries.push(Entry { kind, span });
        if let Some(v) = &policy.version {
            push(
                EntryKind::Version(sn(v.clone(), at(head_start))),
                at(head_start),
            );
        }
        if let Some(d) = &policy.description {
            push(
                EntryKind::Description(sn(d.clone(), at(head_start))),
                at(head_start),
            );
        }
        if let Some(sp) = s.combining.span {
            push(
                EntryKind::Combine(sn(s.combining.value.as_str().to_owned(), sp)),
                sp,
            );
        }
        let effect = s
            .default_effect
            .span
            .map(|sp| Spanned::new(s.default_effect.value, sp));
        if effect.is_some() || s.default_risk.is_some() || s.default_reason.is_some() {
            let span = effect
                .as_ref()
                .map(|e| e.span)
                .or(s.default_risk.as_ref().map(|r| r.span))
                .or(s.default_reason.as_ref().map(|r| r.span))
                .unwrap_or(at(head_start));
            push(
                EntryKind::Default {
                    effect,
                    risk: s
                        .default_risk
                        .as_ref()
                        .map(|r| sn(r.value.as_str().to_owned(), r.span)),
                    reason: s.default_reason.clone(),
                },
                span,
            );
        }
        if let Some(sp) = s.timezone.span {
            push(
                EntryKind::Timezone(sn(s.timezone.value.name.clone(), sp)),
                sp,
            );
        }
        if let Some(d) = &s.max_delegation_depth {
            push(
                EntryKind::MaxDelegationDepth(Spanned::new(f64::from(d.value), d.span)),
                d.span,
            );
        }
        if let Some(sp) = s.ceiling.span {
            push(
                EntryKind::Ceiling(sn(s.ceiling.value.as_str().to_owned(), sp)),
                sp,
            );
        }
        if let Some(e) = &s.entry_agents {
            push(EntryKind::EntryAgents(names(&e.value, e.span)), e.span);
        }
        entries.sort_by_key(|e| e.span.start);
        let end = entries
            .iter()
            .map(|e| e.span.end)
            .max()
            .unwrap_or(head_start);
        items.push(Item::Policy(Block {
            kind: BlockKind::Policy,
            name: Some(sn(policy.name.clone(), at(head_start))),
            entries,
            body: Some(Span::new(file, head_start, end)),
            span: Span::new(file, head_start, end),
        }));
    }
    for a in &set.agents {
        items.push(Item::Agent(agent_block(a)));
    }
    for r in &set.rules {
        items.push(Item::Rule(rule_decl(r)?));
    }
    Ok(File { items, comments })
}

fn names(items: &[Spanned<String>], span: Span) -> Names {
    Names {
        items: items.to_vec(),
        bracketed: true,
        span,
    }
}

fn first_span(items: &[Spanned<String>], fallback: Span) -> Span {
    items
        .iter()
        .map(|i| i.span)
        .reduce(Span::cover)
        .unwrap_or(fallback)
}

fn agent_block(a: &Agent) -> Block {
    let kind = match a.subject {
        Subject::Agent => BlockKind::Agent,
        Subject::Role => BlockKind::Role,
        Subject::Everyone => BlockKind::Every,
    };
    let name = if kind == BlockKind::Every && a.name.value == "every agent" {
        None
    } else {
        Some(a.name.clone())
    };
    let mut entries = Vec::new();
    let fallback = Span::new(a.span.file, a.span.start, a.span.start);
    let mut push = |kind: EntryKind, span: Span| entries.push(Entry { kind, span });
    if !a.roles.is_empty() {
        let sp = first_span(&a.roles, fallback);
        push(EntryKind::Roles(names(&a.roles, sp)), sp);
    }
    if let Some(t) = &a.tier {
        push(
            EntryKind::Tier(sn(t.value.as_str().to_owned(), t.span)),
            t.span,
        );
    }
    if !a.tags.is_empty() {
        let sp = first_span(&a.tags, fallback);
        push(EntryKind::Tags(names(&a.tags, sp)), sp);
    }
    if let Some(t) = &a.token_prefix {
        push(EntryKind::TokenPrefix(t.clone()), t.span);
    }
    for (kind, list) in [
        (AccessKind::Models, &a.models),
        (AccessKind::Tools, &a.tools),
        (AccessKind::Hosts, &a.hosts),
    ] {
        for (block, l) in [(true, &list.block), (false, &list.allow)] {
            let Some(l) = l else { continue };
            let verb = if block { "block" } else { "allow" };
            let default_key = format!("{}.{verb}", kind.keyword());
            let patterns: Vec<Spanned<String>> = l
                .patterns
                .iter()
                .map(|p| sn(p.as_str().to_owned(), p.span))
                .collect();
            push(
                EntryKind::Access {
                    list: Spanned::new(kind, l.span),
                    block,
                    patterns: names(&patterns, l.span),
                    label: (l.key != default_key).then(|| sn(l.key.clone(), l.span)),
                },
                l.span,
            );
        }
    }
    if let Some(t) = &a.require_tls {
        push(EntryKind::RequireTls(t.clone()), t.span);
    }
    for l in &a.limits {
        let default_key = format!("limits.{}", l.metric);
        push(
            EntryKind::Limit {
                count: Spanned::new(l.rate.count as f64, l.span),
                metric: sn(l.metric.as_str().to_owned(), l.span),
                unit: sn(l.rate.unit.as_str().to_owned(), l.span),
                shared: None,
                on: l
                    .actions
                    .as_ref()
                    .map(|p| sn(p.as_str().to_owned(), p.span)),
                label: (l.key != default_key).then(|| sn(l.key.clone(), l.span)),
            },
            l.span,
        );
    }
    if !a.delegates.is_empty() {
        let sp = first_span(&a.delegates, fallback);
        push(EntryKind::Delegates(names(&a.delegates, sp)), sp);
    }
    Block {
        kind,
        name,
        entries,
        body: Some(a.span),
        span: a.span,
    }
}

fn pattern_names(patterns: &[writ_ir::Pattern], fallback: Span) -> Names {
    let items: Vec<Spanned<String>> = patterns
        .iter()
        .map(|p| sn(p.as_str().to_owned(), p.span))
        .collect();
    let span = first_span(&items, fallback);
    Names {
        bracketed: items.len() != 1,
        items,
        span,
    }
}

fn rule_decl(r: &Rule) -> Result<RuleDecl, Unsupported> {
    let generated = generated_rule_name(
        r.effect.value,
        r.actions.first().map(writ_ir::Pattern::as_str),
    );
    // Generated names deduplicated by the merge (`allow_x_2`) come back
    // the same way when the rule is left unnamed again.
    let dedup = r
        .name
        .value
        .strip_prefix(generated.as_str())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let name = if r.generated_name && (r.name.value == generated || dedup) {
        None
    } else {
        Some(r.name.clone())
    };
    let at = Span::new(r.span.file, r.span.start, r.span.start);
    let mut clauses = Vec::new();
    let mut push = |kind: ClauseKind, span: Span| clauses.push(Clause { kind, span });
    if !r.targets.is_empty() {
        let n = pattern_names(&r.targets, at);
        let sp = n.span;
        let hosts = r.targets.iter().all(writ_ir::Pattern::is_case_insensitive);
        push(ClauseKind::On { names: n, hosts }, sp);
    }
    let sc = &r.scope;
    let mut principals = Vec::new();
    for (kind, list) in [
        (PrincipalKind::Agents, sc.agents.clone()),
        (PrincipalKind::Roles, sc.roles.clone()),
        (
            PrincipalKind::Tiers,
            sc.tiers
                .iter()
                .map(|t| sn(t.value.as_str().to_owned(), t.span))
                .collect(),
        ),
        (PrincipalKind::Tags, sc.tags.clone()),
    ] {
        if list.is_empty() {
            continue;
        }
        let sp = first_span(&list, at);
        principals.push(Principal {
            kind: Spanned::new(kind, sp),
            names: names(&list, sp),
        });
    }
    if let Some(first) = principals.first() {
        let sp = first.names.span;
        push(ClauseKind::For(principals), sp);
    }
    if let Some(c) = &r.condition {
        let e = expr(c, at)?;
        let sp = e.span();
        push(ClauseKind::When(e), sp);
    }
    for c in &r.constraints {
        push(require(c)?, c.span);
    }
    if let Some(l) = &r.limit {
        push(
            ClauseKind::Limit {
                count: Spanned::new(l.value.rate.count as f64, l.span),
                unit: sn(l.value.rate.unit.as_str().to_owned(), l.span),
                shared: l.value.shared.then_some(l.span),
            },
            l.span,
        );
    }
    if let Some(risk) = &r.risk {
        push(
            ClauseKind::Risk(sn(risk.value.as_str().to_owned(), risk.span)),
            risk.span,
        );
    }
    if let Some(reason) = &r.reason {
        push(ClauseKind::Because(reason.clone()), reason.span);
    }
    Ok(RuleDecl {
        name,
        effect: r.effect.clone(),
        actions: pattern_names(&r.actions, at),
        clauses,
        span: r.span,
    })
}

fn field_path(f: &Field) -> Vec<String> {
    match f {
        Field::Target => vec!["target".to_owned()],
        Field::Context(p) => p.0.clone(),
    }
}

fn require(c: &Constraint) -> Result<ClauseKind, Unsupported> {
    let values = c
        .values
        .iter()
        .map(|v| lit(v, c.span))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClauseKind::Require {
        field: Spanned::new(field_path(&c.field), c.span),
        alternate: c
            .alternate
            .as_ref()
            .map(|a| Spanned::new(field_path(a), c.span)),
        values: Spanned::new(values, c.span),
        label: (c.name != default_constraint_name(&c.field)).then(|| sn(c.name.clone(), c.span)),
    })
}

fn lit(v: &Value, span: Span) -> Result<Lit, Unsupported> {
    let kind = match v {
        Value::Null => LitKind::Null,
        Value::Bool(b) => LitKind::Bool(*b),
        Value::Number(n) => LitKind::Num(*n),
        Value::String(s) => LitKind::Str(s.clone()),
        Value::List(items) => LitKind::List(
            items
                .iter()
                .map(|i| lit(i, span))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Map(_) => {
            return Err(Unsupported {
                span: Some(span),
                message: "a mapping used as a value has no form in the writ language".to_owned(),
            });
        }
    };
    Ok(Lit { kind, span })
}

fn expr(c: &Condition, at: Span) -> Result<Expr, Unsupported> {
    Ok(match c {
        Condition::Compare {
            field,
            op,
            value,
            span,
        } => Expr::Compare {
            field: Spanned::new(field_path(field), *span),
            op: *op,
            value: lit(value, *span)?,
            span: *span,
        },
        Condition::In {
            field,
            values,
            negated,
            span,
        } => Expr::In {
            field: Spanned::new(field_path(field), *span),
            values: Spanned::new(
                values
                    .iter()
                    .map(|v| lit(v, *span))
                    .collect::<Result<Vec<_>, _>>()?,
                *span,
            ),
            negated: *negated,
            span: *span,
        },
        Condition::Glob {
            field,
            pattern,
            span,
        } => Expr::Matches {
            field: Spanned::new(field_path(field), *span),
            pattern: sn(pattern.as_str().to_owned(), *span),
            span: *span,
        },
        Condition::Contains { field, value, span } => Expr::Contains {
            field: Spanned::new(field_path(field), *span),
            value: lit(value, *span)?,
            span: *span,
        },
        Condition::Exists { field, span } => Expr::Exists {
            field: Spanned::new(field_path(field), *span),
            span: *span,
        },
        Condition::Time { window, span } => Expr::Time {
            window: sn(window.to_string(), *span),
            span: *span,
        },
        Condition::Weekdays { days, span } => Expr::Weekday {
            days: Spanned::new(
                writ_ir::Weekday::ALL
                    .into_iter()
                    .filter(|d| days.contains(*d))
                    .map(|d| Lit {
                        kind: LitKind::Word(d.name().get(..3).unwrap_or(d.name()).to_owned()),
                        span: *span,
                    })
                    .collect(),
                *span,
            ),
            span: *span,
        },
        Condition::All(parts) if parts.is_empty() => Expr::Const(true, at),
        Condition::Any(parts) if parts.is_empty() => Expr::Const(false, at),
        Condition::All(parts) | Condition::Any(parts) => {
            let parts = parts
                .iter()
                .map(|p| expr(p, at))
                .collect::<Result<Vec<_>, _>>()?;
            let span = parts
                .iter()
                .map(Expr::span)
                .reduce(Span::cover)
                .unwrap_or(at);
            if matches!(c, Condition::All(_)) {
                Expr::and(parts, span)
            } else {
                Expr::or(parts, span)
            }
        }
        Condition::Not(inner, span) => Expr::Not(Box::new(expr(inner, at)?), *span),
    })
}

/// Converts a one-file policy set to the writ language.
///
/// # Errors
/// When the policy holds something the language cannot say.
pub fn to_writ(
    set: &PolicySet,
    source: &str,
    comments: Vec<Comment>,
) -> Result<String, Unsupported> {
    let tree = to_tree(set, comments)?;
    Ok(print::print(&tree, source))
}

// ---------------------------------------------------------------------
// IR → writ's YAML schema

/// A YAML scalar: plain when that is unambiguous, else double-quoted.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn yaml_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => print::number(*n),
        Value::String(s) => yaml_str(s),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(yaml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", yaml_str(k), yaml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn yaml_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    format!(
        "[{}]",
        items
            .into_iter()
            .map(yaml_str)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Comments placed by position while the YAML is written.
struct Emitter<'a> {
    out: String,
    comments: &'a [Comment],
    next: usize,
}

impl Emitter<'_> {
    /// Writes the comments that come before `offset`, at `indent`.
    fn comments_before(&mut self, offset: u32, indent: usize) {
        while let Some(c) = self.comments.get(self.next) {
            if c.span.start >= offset {
                break;
            }
            let _ = writeln!(self.out, "{}#{}", " ".repeat(indent), c.text);
            self.next += 1;
        }
    }

    fn line(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.out, "{}{text}", " ".repeat(indent));
    }
}

/// MeshGuard's `delegation.permissionCeiling` has no form in writ's own
/// formats yet: converting without it would let delegated agents do more.
fn no_ceiling_actions(set: &PolicySet, target: &str) -> Result<(), Unsupported> {
    match set.settings.ceiling_actions.first() {
        Some(l) => Err(unsupported(
            l.span,
            format!(
                "{target} cannot say `{}` (the actions a delegated agent may take at most); keep this policy in its dialect",
                l.key
            ),
        )),
        None => Ok(()),
    }
}

fn unsupported(span: Span, message: impl Into<String>) -> Unsupported {
    Unsupported {
        span: Some(span),
        message: message.into(),
    }
}

/// Converts a one-file policy set to writ's YAML schema.
///
/// # Errors
/// When the policy uses something writ's YAML schema cannot say: an
/// action ceiling for delegated requests, an `every agent` block, a list or limit renamed with `as`, or a `require`
/// whose name or alternate field differ from what the schema derives.
pub fn to_yaml(set: &PolicySet, comments: &[Comment]) -> Result<String, Unsupported> {
    no_ceiling_actions(set, "writ's YAML schema")?;
    let mut e = Emitter {
        out: String::new(),
        comments,
        next: 0,
    };
    let first_item = set
        .agents
        .iter()
        .map(|a| a.span.start)
        .chain(set.rules.iter().map(|r| r.span.start))
        .min()
        .unwrap_or(u32::MAX);
    e.comments_before(first_item, 0);
    e.line(0, "writ: 1");
    let s = &set.settings;
    if let Some(p) = set.policies.first() {
        e.line(0, "policy:");
        e.line(2, &format!("name: {}", yaml_str(&p.name)));
        if let Some(v) = &p.version {
            e.line(2, &format!("version: {}", yaml_str(v)));
        }
        if let Some(d) = &p.description {
            e.line(2, &format!("description: {}", yaml_str(d)));
        }
        if s.combining.span.is_some() {
            e.line(2, &format!("combining: {}", s.combining.value));
        }
        if s.default_effect.span.is_some() {
            e.line(2, &format!("default: {}", s.default_effect.value));
        }
        if let Some(r) = &s.default_risk {
            e.line(2, &format!("default_risk: {}", r.value));
        }
        if let Some(r) = &s.default_reason {
            e.line(2, &format!("default_reason: {}", yaml_str(&r.value)));
        }
        if s.timezone.span.is_some() {
            e.line(
                2,
                &format!("timezone: {}", yaml_str(&s.timezone.value.name)),
            );
        }
        if let Some(d) = &s.max_delegation_depth {
            e.line(2, &format!("max_delegation_depth: {}", d.value));
        }
        if s.ceiling.span.is_some() {
            e.line(2, &format!("ceiling: {}", s.ceiling.value));
        }
        if let Some(a) = &s.entry_agents {
            e.line(
                2,
                &format!(
                    "entry_agents: {}",
                    yaml_list(a.value.iter().map(|x| x.value.as_str()))
                ),
            );
        }
    }
    for (subject, section) in [(Subject::Role, "roles"), (Subject::Agent, "agents")] {
        let agents: Vec<&Agent> = set.agents.iter().filter(|a| a.subject == subject).collect();
        if agents.is_empty() {
            continue;
        }
        e.line(0, &format!("{section}:"));
        for a in agents {
            e.comments_before(a.span.start, 2);
            yaml_agent(&mut e, a)?;
        }
    }
    if let Some(a) = set.agents.iter().find(|a| a.subject == Subject::Everyone) {
        return Err(unsupported(
            a.span,
            "writ's YAML schema has no `every agent` section; keep this policy in the writ language",
        ));
    }
    if !set.rules.is_empty() {
        e.line(0, "rules:");
        for r in &set.rules {
            e.comments_before(r.span.start, 2);
            yaml_rule(&mut e, r)?;
        }
    }
    e.comments_before(u32::MAX, 0);
    Ok(e.out)
}

fn yaml_agent(e: &mut Emitter<'_>, a: &Agent) -> Result<(), Unsupported> {
    e.line(2, &format!("{}:", yaml_str(&a.name.value)));
    let i = 4;
    if !a.roles.is_empty() {
        e.line(
            i,
            &format!(
                "roles: {}",
                yaml_list(a.roles.iter().map(|r| r.value.as_str()))
            ),
        );
    }
    if let Some(t) = &a.tier {
        e.line(i, &format!("tier: {}", t.value));
    }
    if !a.tags.is_empty() {
        e.line(
            i,
            &format!(
                "tags: {}",
                yaml_list(a.tags.iter().map(|r| r.value.as_str()))
            ),
        );
    }
    if let Some(t) = &a.token_prefix {
        e.line(i, &format!("token_prefix: {}", yaml_str(&t.value)));
    }
    for (what, list) in [
        ("models", &a.models),
        ("tools", &a.tools),
        ("hosts", &a.hosts),
    ] {
        let tls = (what == "hosts")
            .then_some(a.require_tls.as_ref())
            .flatten();
        if list.allow.is_none() && list.block.is_none() && tls.is_none() {
            continue;
        }
        e.line(i, &format!("{what}:"));
        for (verb, l) in [("allow", &list.allow), ("block", &list.block)] {
            let Some(l) = l else { continue };
            if l.key != format!("{what}.{verb}") {
                return Err(unsupported(
                    l.span,
                    format!(
                        "the list named \"{}\" cannot keep its name in writ's YAML schema",
                        l.key
                    ),
                ));
            }
            e.line(
                i + 2,
                &format!(
                    "{verb}: {}",
                    yaml_list(l.patterns.iter().map(writ_ir::Pattern::as_str))
                ),
            );
        }
        if let Some(t) = tls {
            e.line(i + 2, &format!("require_tls: {}", t.value));
        }
    }
    if !a.limits.is_empty() {
        e.line(i, "limits:");
        for l in &a.limits {
            if l.key != format!("limits.{}", l.metric) {
                return Err(unsupported(
                    l.span,
                    format!(
                        "the limit named \"{}\" cannot keep its name in writ's YAML schema",
                        l.key
                    ),
                ));
            }
            e.line(i + 2, &format!("- {}: {}", l.metric, l.rate));
            if let Some(p) = &l.actions {
                e.line(i + 4, &format!("actions: {}", yaml_str(p.as_str())));
            }
        }
    }
    if !a.delegates.is_empty() {
        e.line(
            i,
            &format!(
                "delegates: {}",
                yaml_list(a.delegates.iter().map(|r| r.value.as_str()))
            ),
        );
    }
    Ok(())
}

fn yaml_rule(e: &mut Emitter<'_>, r: &Rule) -> Result<(), Unsupported> {
    let mut first = true;
    let mut field = |e: &mut Emitter<'_>, text: &str| {
        let lead = if first { "- " } else { "  " };
        first = false;
        e.line(2, &format!("{lead}{text}"));
    };
    if !r.generated_name {
        field(e, &format!("name: {}", yaml_str(&r.name.value)));
    }
    field(e, &format!("effect: {}", r.effect.value));
    if let Some(risk) = &r.risk {
        field(e, &format!("risk: {}", risk.value));
    }
    field(
        e,
        &format!(
            "actions: {}",
            yaml_list(r.actions.iter().map(writ_ir::Pattern::as_str))
        ),
    );
    if let Some(p) = r.targets.iter().find(|p| p.is_case_insensitive()) {
        return Err(unsupported(
            p.span,
            "writ's YAML schema has no host targets matched in any case (`on hosts`); keep this policy in the writ language",
        ));
    }
    if !r.targets.is_empty() {
        field(
            e,
            &format!(
                "targets: {}",
                yaml_list(r.targets.iter().map(writ_ir::Pattern::as_str))
            ),
        );
    }
    let sc = &r.scope;
    if !sc.is_everyone() {
        let mut parts = Vec::new();
        for (k, list) in [
            ("agents", &sc.agents),
            ("roles", &sc.roles),
            ("tags", &sc.tags),
        ] {
            if !list.is_empty() {
                parts.push(format!(
                    "{k}: {}",
                    yaml_list(list.iter().map(|x| x.value.as_str()))
                ));
            }
        }
        if !sc.tiers.is_empty() {
            parts.push(format!(
                "tiers: {}",
                yaml_list(sc.tiers.iter().map(|t| t.value.as_str()))
            ));
        }
        field(e, &format!("principals: {{ {} }}", parts.join(", ")));
    }
    if let Some(c) = &r.condition {
        field(e, "when:");
        yaml_condition(e, c, 6, false)?;
    }
    if !r.constraints.is_empty() {
        field(e, "constraints:");
        let mut keys = std::collections::HashSet::new();
        for c in &r.constraints {
            let key = default_constraint_name(&c.field);
            if !keys.insert(key.clone()) {
                return Err(unsupported(
                    c.span,
                    format!(
                        "writ's YAML schema has one `{key}` per rule; this rule requires it twice"
                    ),
                ));
            }
            let derived = match &c.field {
                Field::Target => None,
                Field::Context(p) => p
                    .to_string()
                    .strip_suffix('s')
                    .filter(|s| !s.is_empty())
                    .map(|s| Field::Context(writ_ir::Path::parse(s))),
            };
            if c.name != key || c.alternate != derived {
                return Err(unsupported(
                    c.span,
                    format!(
                        "writ's YAML schema derives a constraint's name and fallback field from its key; `{}` cannot be written there",
                        c.name
                    ),
                ));
            }
            let values: Vec<String> = c.values.iter().map(yaml_value).collect();
            e.line(6, &format!("{key}: [{}]", values.join(", ")));
        }
    }
    if let Some(l) = &r.limit {
        if l.value.shared {
            field(
                e,
                &format!("limit: {{ rate: {}, shared: true }}", l.value.rate),
            );
        } else {
            field(e, &format!("limit: {}", l.value.rate));
        }
    }
    if let Some(reason) = &r.reason {
        field(e, &format!("reason: {}", yaml_str(&reason.value)));
    }
    Ok(())
}

/// Writes a condition as a list item (`- ...`) or mapping body at `indent`.
fn yaml_condition(
    e: &mut Emitter<'_>,
    c: &Condition,
    indent: usize,
    item: bool,
) -> Result<(), Unsupported> {
    let lead = if item { "- " } else { "" };
    let key = |f: &Field| yaml_str(&f.to_string());
    let field = match c {
        Condition::Compare { field, span, .. }
        | Condition::In { field, span, .. }
        | Condition::Glob { field, span, .. }
        | Condition::Contains { field, span, .. }
        | Condition::Exists { field, span } => Some((field, *span)),
        _ => None,
    };
    if let Some((Field::Context(p), span)) = field
        && let Some(first) = p.0.first().filter(|f| {
            matches!(
                f.as_str(),
                "all" | "any" | "not" | "time" | "weekdays" | "target"
            )
        })
    {
        return Err(unsupported(
            span,
            format!(
                "in writ's YAML schema `{first}:` is an operator, not a context key; keep this policy in the writ language"
            ),
        ));
    }
    match c {
        Condition::Compare {
            field, op, value, ..
        } => {
            e.line(
                indent,
                &format!(
                    "{lead}{}: {{ {}: {} }}",
                    key(field),
                    serde_json::to_string(op.symbol()).unwrap_or_default(),
                    yaml_value(value)
                ),
            );
        }
        Condition::In {
            field,
            values,
            negated,
            ..
        } => {
            let vals: Vec<String> = values.iter().map(yaml_value).collect();
            let op = if *negated { "not_in" } else { "in" };
            e.line(
                indent,
                &format!("{lead}{}: {{ {op}: [{}] }}", key(field), vals.join(", ")),
            );
        }
        Condition::Glob { field, pattern, .. } => {
            e.line(
                indent,
                &format!(
                    "{lead}{}: {{ matches: {} }}",
                    key(field),
                    yaml_str(pattern.as_str())
                ),
            );
        }
        Condition::Contains { field, value, .. } => {
            e.line(
                indent,
                &format!(
                    "{lead}{}: {{ contains: {} }}",
                    key(field),
                    yaml_value(value)
                ),
            );
        }
        Condition::Exists { field, .. } => {
            e.line(indent, &format!("{lead}{}: {{ exists: true }}", key(field)));
        }
        Condition::Time { window, .. } => {
            e.line(
                indent,
                &format!("{lead}time: {}", yaml_str(&window.to_string())),
            );
        }
        Condition::Weekdays { days, .. } => {
            let names: Vec<&str> = writ_ir::Weekday::ALL
                .into_iter()
                .filter(|d| days.contains(*d))
                .map(|d| d.name().get(..3).unwrap_or(d.name()))
                .collect();
            e.line(indent, &format!("{lead}weekdays: [{}]", names.join(", ")));
        }
        Condition::All(parts) | Condition::Any(parts) => {
            let k = if matches!(c, Condition::All(_)) {
                "all"
            } else {
                "any"
            };
            if parts.is_empty() {
                e.line(indent, &format!("{lead}{k}: []"));
                return Ok(());
            }
            e.line(indent, &format!("{lead}{k}:"));
            let inner = indent + if item { 4 } else { 2 };
            for p in parts {
                yaml_condition(e, p, inner, true)?;
            }
        }
        Condition::Not(inner, _) => {
            e.line(indent, &format!("{lead}not:"));
            let i = indent + if item { 4 } else { 2 };
            yaml_condition(e, inner, i, false)?;
        }
    }
    Ok(())
}

/// True when two policy sets mean the same: the same IR, spans and the
/// front end's dialect aside.
#[must_use]
pub fn same_meaning(a: &PolicySet, b: &PolicySet) -> bool {
    normalized(a) == normalized(b)
}

/// The IR dump without locations or dialects, for comparing meanings.
#[must_use]
pub fn normalized(set: &PolicySet) -> String {
    let text = super::fmt::ir_text(set);
    text.lines()
        .map(|l| match l.find(" dialect=") {
            Some(i) if l.starts_with("policy #") => l.get(..i).unwrap_or(l),
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}
