//! Rendering diagnostics: with ariadne for people, as JSON for tools.

use ariadne::{Color, Config, IndexType, Label, Report, ReportKind};
use serde::Serialize;
use writ_diagnostics::{Diagnostic, Severity, SourceMap};

/// Renders one diagnostic the way `writ check` prints it.
#[must_use]
pub fn to_text(diag: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    let Some(span) = diag.span() else {
        return format!(
            "{}[{}]: {}\n",
            diag.severity.as_str(),
            diag.code,
            diag.message
        );
    };
    let Some(file) = sources.get(span.file) else {
        return format!(
            "{}[{}]: {}\n",
            diag.severity.as_str(),
            diag.code,
            diag.message
        );
    };
    let long_line = diag.labels.iter().any(|l| {
        sources
            .get(l.span.file)
            .is_some_and(|f| longest_line_in(f.text(), l.span) > MAX_LINE)
    });
    if long_line {
        return excerpt(diag, sources);
    }
    let kind = match diag.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let name = file.name().to_owned();
    let range = |s: writ_diagnostics::Span| s.start as usize..s.end.max(s.start) as usize;
    let config = Config::default()
        .with_color(color)
        .with_index_type(IndexType::Byte);
    let mut builder = Report::build(kind, (name.clone(), range(span)))
        .with_config(config)
        .with_code(diag.code.as_str())
        .with_message(&diag.message);
    for (i, label) in diag.labels.iter().enumerate() {
        let Some(lfile) = sources.get(label.span.file) else {
            continue;
        };
        let mut l = Label::new((lfile.name().to_owned(), range(label.span)));
        // ariadne draws no underline for a label without text.
        let text = if label.message.is_empty() {
            "here"
        } else {
            label.message.as_str()
        };
        l = l.with_message(text);
        if color {
            l = l.with_color(if i == 0 { Color::Red } else { Color::Blue });
        }
        builder = builder.with_label(l);
    }
    if let Some(help) = &diag.help {
        builder = builder.with_help(help);
    }
    for note in &diag.notes {
        builder = builder.with_note(note);
    }
    builder = builder.with_note(format!("see docs/diagnostics/{}.md", diag.code));
    // Only the files this diagnostic points into are handed to ariadne
    // (each is copied): not every file of the policy, for every diagnostic.
    let cache = ariadne::sources(
        sources
            .iter()
            .filter(|(id, _)| diag.labels.iter().any(|l| l.span.file == *id))
            .map(|(_, f)| (f.name().to_owned(), f.text().to_owned())),
    );
    let mut out = Vec::new();
    if builder.finish().write(cache, &mut out).is_err() {
        return format!(
            "{}[{}]: {}\n",
            diag.severity.as_str(),
            diag.code,
            diag.message
        );
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lines longer than this (in bytes) are not shown whole: a diagnostic in
/// a one-line 50 MB file shows a window around its position instead.
const MAX_LINE: usize = 500;

/// Bytes of a long line shown on each side of a label's start.
const WINDOW: usize = 60;

/// The length in bytes of the longest line `span` touches.
fn longest_line_in(text: &str, span: writ_diagnostics::Span) -> usize {
    let (start, end) = (
        span.start as usize,
        (span.end as usize).max(span.start as usize),
    );
    let from = text
        .get(..start.min(text.len()))
        .map_or(0, |t| t.rfind('\n').map_or(0, |i| i + 1));
    let to = text
        .get(end.min(text.len())..)
        .map_or(text.len(), |t| t.find('\n').map_or(text.len(), |i| end + i));
    text.get(from..to).map_or(0, |lines| {
        lines.split('\n').map(str::len).max().unwrap_or(0)
    })
}

/// The largest char boundary of `text` at or below `i`.
fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A diagnostic whose position is on a very long line: the same parts as
/// ariadne's report, with a window of the line around each label (cut
/// ends marked `…`) instead of the whole line.
fn excerpt(diag: &Diagnostic, sources: &SourceMap) -> String {
    use std::fmt::Write as _;
    let kind = match diag.severity {
        Severity::Error => "Error",
        Severity::Warning => "Warning",
    };
    let mut out = format!("[{}] {kind}: {}\n", diag.code, diag.message);
    for label in &diag.labels {
        let Some(f) = sources.get(label.span.file) else {
            continue;
        };
        let text = f.text();
        let at = f.line_col(label.span.start);
        let start = floor_boundary(text, label.span.start as usize);
        let line_start = text
            .get(..start)
            .map_or(0, |t| t.rfind('\n').map_or(0, |i| i + 1));
        let line_end = text.get(start..).map_or(text.len(), |t| {
            t.find('\n').map_or(text.len(), |i| start + i)
        });
        let from = floor_boundary(text, start.saturating_sub(WINDOW).max(line_start));
        let to = floor_boundary(text, start.saturating_add(WINDOW).min(line_end));
        let before = text.get(from..start).unwrap_or_default();
        let after = text.get(start..to).unwrap_or_default();
        let cut_left = if from > line_start { "…" } else { "" };
        let cut_right = if to < line_end { "…" } else { "" };
        let width = (label.span.end.saturating_sub(label.span.start) as usize)
            .clamp(1, after.chars().count().max(1));
        let message = if label.message.is_empty() {
            "here"
        } else {
            label.message.as_str()
        };
        let _ = writeln!(
            out,
            "   ╭─[ {}:{}:{} ]\n   │ {cut_left}{before}{after}{cut_right}\n   │ {}{} {message}",
            f.name(),
            at.line,
            at.column,
            " ".repeat(cut_left.chars().count() + before.chars().count()),
            "^".repeat(width),
        );
    }
    if let Some(help) = &diag.help {
        let _ = writeln!(out, "   │ Help: {help}");
    }
    for note in &diag.notes {
        let _ = writeln!(out, "   │ Note: {note}");
    }
    let _ = writeln!(
        out,
        "   │ Note: see docs/diagnostics/{}.md\n───╯",
        diag.code
    );
    out
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    start: u32,
    end: u32,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    severity: &'static str,
    message: &'a str,
    file: Option<&'a str>,
    line: Option<u32>,
    column: Option<u32>,
    labels: Vec<JsonLabel<'a>>,
    help: Option<&'a str>,
    notes: &'a [String],
    docs: String,
}

/// All diagnostics as one JSON array (`writ check --format json`).
#[must_use]
pub fn to_json(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let items: Vec<JsonDiagnostic<'_>> = diags
        .iter()
        .map(|d| {
            let labels: Vec<JsonLabel<'_>> = d
                .labels
                .iter()
                .filter_map(|l| {
                    let f = sources.get(l.span.file)?;
                    let a = f.line_col(l.span.start);
                    let b = f.line_col(l.span.end);
                    Some(JsonLabel {
                        file: f.name(),
                        line: a.line,
                        column: a.column,
                        end_line: b.line,
                        end_column: b.column,
                        start: l.span.start,
                        end: l.span.end,
                        message: &l.message,
                    })
                })
                .collect();
            let first = labels.first();
            JsonDiagnostic {
                code: d.code.as_str(),
                severity: d.severity.as_str(),
                message: &d.message,
                file: first.map(|l| l.file),
                line: first.map(|l| l.line),
                column: first.map(|l| l.column),
                help: d.help.as_deref(),
                notes: &d.notes,
                docs: format!("docs/diagnostics/{}.md", d.code),
                labels,
            }
        })
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_owned())
}
