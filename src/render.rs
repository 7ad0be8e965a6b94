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
    let cache = ariadne::sources(
        sources
            .iter()
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
