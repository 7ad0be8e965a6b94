//! The renderer-agnostic diagnostic value.

use crate::{Code, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A span with an optional message pointing into a source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One problem found in policy text.
///
/// Messages follow one style: lowercase, no final full stop, user input in
/// backticks. `help` carries the suggested fix when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// The primary label comes first.
    pub labels: Vec<Label>,
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// The diagnostic on one line, without colors:
    /// `file:line:col: severity[CODE]: message (help: ...)`. What logs and
    /// the Python package's warnings and errors show.
    #[must_use]
    pub fn one_line(&self, sources: &crate::SourceMap) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        if let Some((file, at)) = self.span().and_then(|s| sources.location(s)) {
            let _ = write!(out, "{file}:{}:{}: ", at.line, at.column);
        }
        let _ = write!(
            out,
            "{}[{}]: {}",
            self.severity.as_str(),
            self.code,
            self.message
        );
        if let Some(help) = &self.help {
            let _ = write!(out, " (help: {help})");
        }
        out
    }

    /// Moves every label `delta` bytes (see [`Span::shifted`]).
    pub fn shift(&mut self, delta: i64) {
        for l in &mut self.labels {
            l.span = l.span.shifted(delta);
        }
    }

    /// A diagnostic with the code's default severity and one primary label.
    #[must_use]
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            labels: vec![Label {
                span,
                message: String::new(),
            }],
            help: None,
            notes: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_label_message(mut self, message: impl Into<String>) -> Self {
        if let Some(first) = self.labels.first_mut() {
            first.message = message.into();
        }
        self
    }

    #[must_use]
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The primary span.
    #[must_use]
    pub fn span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }

    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
