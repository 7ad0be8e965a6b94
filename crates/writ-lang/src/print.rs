//! The canonical printer: syntax tree → text, comments put back.
//!
//! Layout is fixed: two-space indentation, one entry or clause per line, a
//! blank line between items, block names in quotes, words bare where the
//! language allows. The tree is first flattened into lines, each carrying
//! the source range it came from; comments (which live beside the tree,
//! by position) are then merged in: a comment before a line is printed
//! above it, a comment on the same source line after it stays at its end.
//! A comment followed by a blank line in the source keeps the blank line.
//!
//! `writ convert` prints trees it built from YAML through the same code,
//! with the YAML file's comments and spans.

use writ_ir::CmpOp;

use super::ast::{
    Block, Clause, ClauseKind, Entry, EntryKind, Expr, File, Item, Lit, LitKind, Names, RuleDecl,
};
use super::lexer::{Comment, is_bare_word, is_ident_shaped};

/// Lines longer than this have their `when` broken at `and` / `or`.
pub const WIDTH: usize = 100;

struct Line {
    indent: usize,
    text: String,
    start: u32,
    end: u32,
    /// Indentation for comments printed above this line (a closing brace
    /// takes its block's comments at the entries' indentation).
    comment_indent: usize,
}

enum Out {
    Line(Line),
    Blank,
}

/// Prints a file. `source` is the text the spans and comments point into.
#[must_use]
pub fn print(file: &File, source: &str) -> String {
    let mut lines = Vec::new();
    for (i, item) in file.items.iter().enumerate() {
        if i > 0 {
            lines.push(Out::Blank);
        }
        match item {
            Item::Policy(b) | Item::Agent(b) => block(b, &mut lines),
            Item::Rule(r) => rule(r, &mut lines),
            Item::Error(_) => {}
        }
    }
    merge(&lines, &file.comments, source)
}

fn merge(lines: &[Out], comments: &[Comment], source: &str) -> String {
    let starts = line_starts(source);
    let line_of = |offset: u32| starts.partition_point(|s| *s <= offset).saturating_sub(1);
    let mut out = String::new();
    let mut next = 0usize;
    let emit_comment = |out: &mut String, indent: usize, c: &Comment| {
        out.push_str(&" ".repeat(indent));
        out.push('#');
        out.push_str(&c.text);
        out.push('\n');
    };
    for (i, l) in lines.iter().enumerate() {
        let line = match l {
            Out::Blank => {
                if !out.is_empty() && !out.ends_with("\n\n") {
                    out.push('\n');
                }
                continue;
            }
            Out::Line(line) => line,
        };
        while let Some(c) = comments.get(next) {
            if c.span.start >= line.start {
                break;
            }
            emit_comment(&mut out, line.comment_indent, c);
            next += 1;
            let until = comments
                .get(next)
                .map_or(line.start, |n| n.span.start.min(line.start));
            if blank_between(source, c.span.end, until) {
                out.push('\n');
            }
        }
        out.push_str(&" ".repeat(line.indent));
        out.push_str(&line.text);
        let next_start = lines
            .iter()
            .skip(i + 1)
            .find_map(|l| match l {
                Out::Line(l) => Some(l.start),
                Out::Blank => None,
            })
            .unwrap_or(u32::MAX);
        let end_line = line_of(line.end.saturating_sub(1).max(line.start));
        while let Some(c) = comments.get(next) {
            if c.span.start < next_start.max(line.end) && line_of(c.span.start) == end_line {
                out.push_str("  #");
                out.push_str(&c.text);
                next += 1;
            } else {
                break;
            }
        }
        out.push('\n');
    }
    let rest = comments.get(next..).unwrap_or(&[]);
    if !rest.is_empty() && !out.is_empty() {
        out.push('\n');
    }
    for c in rest {
        emit_comment(&mut out, 0, c);
    }
    out
}

fn line_starts(source: &str) -> Vec<u32> {
    let mut v = vec![0u32];
    for (i, b) in source.bytes().enumerate() {
        if b == b'\n' {
            v.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
        }
    }
    v
}

fn blank_between(source: &str, from: u32, to: u32) -> bool {
    let gap = source
        .get(from as usize..(to as usize).max(from as usize))
        .unwrap_or("");
    gap.chars().filter(|c| *c == '\n').count() >= 2 && gap.trim().is_empty()
}

fn block(b: &Block, lines: &mut Vec<Out>) {
    let mut head = b.kind.keyword().to_owned();
    if let Some(n) = &b.name {
        head.push(' ');
        head.push_str(&quote(&n.value));
    }
    let Some(body) = b.body else {
        lines.push(Out::Line(Line {
            indent: 0,
            text: head,
            start: b.span.start,
            end: b.span.end,
            comment_indent: 0,
        }));
        return;
    };
    lines.push(Out::Line(Line {
        indent: 0,
        text: format!("{head} {{"),
        start: b.span.start,
        end: body.start + 1,
        comment_indent: 0,
    }));
    for e in &b.entries {
        lines.push(Out::Line(Line {
            indent: 2,
            text: entry(e),
            start: e.span.start,
            end: e.span.end,
            comment_indent: 2,
        }));
    }
    lines.push(Out::Line(Line {
        indent: 0,
        text: "}".to_owned(),
        start: body.end.saturating_sub(1).max(body.start),
        end: body.end,
        comment_indent: 2,
    }));
}

fn entry(e: &Entry) -> String {
    let mut s = e.keyword().to_owned();
    let mut push = |part: &str| {
        s.push(' ');
        s.push_str(part);
    };
    match &e.kind {
        EntryKind::Version(v)
        | EntryKind::Description(v)
        | EntryKind::Timezone(v)
        | EntryKind::TokenPrefix(v) => {
            push(&string(&v.value));
        }
        EntryKind::Combine(w) | EntryKind::Tier(w) | EntryKind::Ceiling(w) => {
            push(&word(&w.value));
        }
        EntryKind::MaxDelegationDepth(n) => push(&number(n.value)),
        EntryKind::Default {
            effect,
            risk,
            reason,
        } => {
            if let Some(e) = effect {
                push(e.value.as_str());
            }
            if let Some(r) = risk {
                push("risk");
                push(&word(&r.value));
            }
            if let Some(r) = reason {
                push("because");
                push(&string(&r.value));
            }
        }
        EntryKind::Roles(n)
        | EntryKind::Tags(n)
        | EntryKind::Delegates(n)
        | EntryKind::EntryAgents(n) => push(&names(n)),
        EntryKind::Access {
            block,
            patterns,
            label,
            ..
        } => {
            push(if *block { "block" } else { "allow" });
            push(&names(patterns));
            if let Some(l) = label {
                push("as");
                push(&string(&l.value));
            }
        }
        EntryKind::RequireTls(b) => push(if b.value { "true" } else { "false" }),
        EntryKind::Limit {
            count,
            metric,
            unit,
            shared,
            on,
            label,
        } => {
            push(&number(count.value));
            push(&word(&metric.value));
            push("per");
            push(&word(&unit.value));
            if shared.is_some() {
                push("shared");
            }
            if let Some(p) = on {
                push("on");
                push(&name(&p.value));
            }
            if let Some(l) = label {
                push("as");
                push(&string(&l.value));
            }
        }
        EntryKind::Error => {}
    }
    s
}

fn rule(r: &RuleDecl, lines: &mut Vec<Out>) {
    let mut head = "rule ".to_owned();
    if let Some(n) = &r.name {
        head.push_str(&rule_name(&n.value));
        head.push_str(": ");
    }
    head.push_str(r.effect.value.as_str());
    head.push(' ');
    head.push_str(&names(&r.actions));
    let mut end = r.actions.span.end;
    let mut clauses = r.clauses.iter().peekable();
    if let Some(c) = clauses.next_if(|c| matches!(c.kind, ClauseKind::On { .. })) {
        head.push(' ');
        head.push_str(&clause(c, 0));
        end = c.span.end;
    }
    lines.push(Out::Line(Line {
        indent: 0,
        text: head,
        start: r.span.start,
        end,
        comment_indent: 0,
    }));
    for c in clauses {
        lines.push(Out::Line(Line {
            indent: 2,
            text: clause(c, 2),
            start: c.span.start,
            end: c.span.end,
            comment_indent: 2,
        }));
    }
}

fn clause(c: &Clause, indent: usize) -> String {
    match &c.kind {
        ClauseKind::On { names: n, hosts } => {
            format!("on {}{}", if *hosts { "hosts " } else { "" }, names(n))
        }
        ClauseKind::For(ps) => {
            let mut s = "for".to_owned();
            for p in ps {
                s.push(' ');
                s.push_str(p.kind.value.keyword());
                s.push(' ');
                s.push_str(&names(&p.names));
            }
            s
        }
        ClauseKind::When(e) => {
            let flat = format!("when {}", expr(e, 0));
            if indent + flat.len() <= WIDTH {
                return flat;
            }
            let pad = " ".repeat(indent + 2);
            match e {
                Expr::Or(parts, _) if parts.len() > 1 => {
                    let body: Vec<String> = parts.iter().map(|p| expr(p, 1)).collect();
                    format!("when {}", body.join(&format!("\n{pad}or ")))
                }
                Expr::And(parts, _) if parts.len() > 1 => {
                    let body: Vec<String> = parts.iter().map(|p| expr(p, 2)).collect();
                    format!("when {}", body.join(&format!("\n{pad}and ")))
                }
                _ => flat,
            }
        }
        ClauseKind::Risk(w) => format!("risk {}", word(&w.value)),
        ClauseKind::Limit {
            count,
            unit,
            shared,
        } => format!(
            "limit {} per {}{}",
            number(count.value),
            word(&unit.value),
            if shared.is_some() { " shared" } else { "" }
        ),
        ClauseKind::Because(s) => format!("because {}", string(&s.value)),
        ClauseKind::Require {
            field,
            alternate,
            values,
            label,
        } => {
            let mut s = format!("require {}", path(&field.value));
            if let Some(a) = alternate {
                s.push_str(" or ");
                s.push_str(&path(&a.value));
            }
            s.push_str(" in ");
            s.push_str(&list(&values.value));
            if let Some(l) = label {
                s.push_str(" as ");
                s.push_str(&string(&l.value));
            }
            s
        }
        ClauseKind::Error => String::new(),
    }
}

/// Prints a condition; `parent` is the binding strength around it
/// (0: top, 1: inside `or`, 2: inside `and`, 3: inside `not`).
#[must_use]
pub fn expr(e: &Expr, parent: u8) -> String {
    let (text, strength) = match e {
        Expr::Or(parts, _) => (
            parts
                .iter()
                .map(|p| expr(p, 1))
                .collect::<Vec<_>>()
                .join(" or "),
            1,
        ),
        Expr::And(parts, _) => (
            parts
                .iter()
                .map(|p| expr(p, 2))
                .collect::<Vec<_>>()
                .join(" and "),
            2,
        ),
        // `not (a == b)`: parentheses around a negated comparison, for the reader.
        Expr::Not(inner, _) => match **inner {
            Expr::Not(..) | Expr::Const(..) | Expr::Exists { .. } => {
                (format!("not {}", expr(inner, 3)), 3)
            }
            _ => (format!("not ({})", expr(inner, 0)), 3),
        },
        Expr::Compare {
            field, op, value, ..
        } => (
            format!("{} {} {}", path(&field.value), op_text(*op), lit(value)),
            4,
        ),
        Expr::In {
            field,
            values,
            negated,
            ..
        } => (
            format!(
                "{} {}in {}",
                path(&field.value),
                if *negated { "not " } else { "" },
                list(&values.value)
            ),
            4,
        ),
        Expr::Matches { field, pattern, .. } => (
            format!("{} matches {}", path(&field.value), string(&pattern.value)),
            4,
        ),
        Expr::Contains { field, value, .. } => {
            (format!("{} contains {}", path(&field.value), lit(value)), 4)
        }
        Expr::Exists { field, .. } => (format!("{} exists", path(&field.value)), 4),
        Expr::Time { window, .. } => (format!("time in {}", string(&window.value)), 4),
        Expr::Weekday { days, .. } => (format!("weekday in {}", list(&days.value)), 4),
        Expr::Const(b, _) => ((if *b { "true" } else { "false" }).to_owned(), 4),
    };
    if strength < parent {
        format!("({text})")
    } else {
        text
    }
}

fn op_text(op: CmpOp) -> &'static str {
    op.symbol()
}

pub use crate::lexer::quote as string;

/// A block name: always quoted.
fn quote(s: &str) -> String {
    string(s)
}

/// A name, pattern or string value: bare when the language allows.
#[must_use]
pub fn name(s: &str) -> String {
    if is_bare_word(s) {
        s.to_owned()
    } else {
        string(s)
    }
}

/// A word in word position (tiers, units, risk levels): bare when it can
/// be, so that a misspelling stays visible as written.
fn word(s: &str) -> String {
    name(s)
}

fn rule_name(s: &str) -> String {
    if is_ident_shaped(s) {
        s.to_owned()
    } else {
        string(s)
    }
}

fn names(n: &Names) -> String {
    if !n.bracketed
        && let [one] = n.items.as_slice()
    {
        return name(&one.value);
    }
    let items: Vec<String> = n.items.iter().map(|i| name(&i.value)).collect();
    format!("[{}]", items.join(", "))
}

/// A dotted path; segments that are not plain words are quoted.
#[must_use]
pub fn path(segments: &[String]) -> String {
    let mut out = String::new();
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        let plain = is_ident_shaped(seg);
        let reserved_first = i == 0
            && matches!(
                seg.as_str(),
                "not" | "time" | "weekday" | "true" | "false" | "null"
            );
        if plain && !reserved_first {
            out.push_str(seg);
        } else {
            out.push_str(&string(seg));
        }
    }
    out
}

fn list(items: &[Lit]) -> String {
    let parts: Vec<String> = items.iter().map(lit).collect();
    format!("[{}]", parts.join(", "))
}

fn lit(l: &Lit) -> String {
    match &l.kind {
        LitKind::Str(s) | LitKind::Word(s) => name(s),
        LitKind::Num(n) => number(*n),
        LitKind::Bool(b) => (if *b { "true" } else { "false" }).to_owned(),
        LitKind::Null => "null".to_owned(),
        LitKind::List(items) => list(items),
    }
}

/// A number as the lexer reads it back exactly.
#[must_use]
pub fn number(n: f64) -> String {
    format!("{n}")
}
