//! What the server asks of writ: an analysis API in plain types (byte
//! ranges, strings). The compiler implements [`Analyzer`]; this crate
//! turns its answers into LSP messages. Nothing here knows LSP types.

use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// An edit that fixes a diagnostic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub title: String,
    pub range: Range<usize>,
    pub replacement: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub range: Range<usize>,
    pub severity: Severity,
    /// A stable code such as `E0103`.
    pub code: String,
    pub message: String,
    pub help: Option<String>,
    /// Other places the diagnostic points at, with their messages.
    pub related: Vec<(Range<usize>, String)>,
    pub fixes: Vec<Fix>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameKind {
    Policy,
    Agent,
    Role,
    Rule,
}

/// An item of the document's outline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub kind: NameKind,
    /// The whole item.
    pub range: Range<usize>,
    /// Its name.
    pub selection: Range<usize>,
    pub detail: String,
}

/// A place where an agent, role or rule is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub kind: NameKind,
    pub name: String,
    /// The name's text (without quotes).
    pub range: Range<usize>,
    pub definition: bool,
}

/// Markdown shown over a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hover {
    pub range: Range<usize>,
    pub markdown: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Keyword,
    String,
    Number,
    Comment,
    Operator,
    /// A context field in a condition.
    Property,
    /// An agent, role or rule name where it is declared or used.
    Name,
    /// Effects, risks, units, weekdays and other closed words.
    EnumMember,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub range: Range<usize>,
    pub kind: TokenKind,
}

/// Everything the server keeps about one open document.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub diagnostics: Vec<Diagnostic>,
    pub symbols: Vec<Symbol>,
    pub references: Vec<Reference>,
    pub folds: Vec<Range<usize>>,
    /// Action patterns the document uses (offered by completion).
    pub actions: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    Keyword,
    Key,
    Agent,
    Role,
    Value,
    Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    pub detail: Option<String>,
    /// Text to insert, when it differs from the label.
    pub insert: Option<String>,
}

/// Names from every open document, for completion.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    pub agents: Vec<String>,
    pub roles: Vec<String>,
    pub actions: Vec<String>,
}

/// One request of a `*.requests.jsonl` file, decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// 0-based line in the requests file.
    pub line: usize,
    /// `allow`, `deny`, `approve`, or `error`.
    pub decision: String,
    /// The decision as JSON (or the error).
    pub detail: String,
}

/// The analysis writ's compiler provides to the server.
pub trait Analyzer: Send + Sync + 'static {
    /// Whether a document is a policy (by its path and content).
    fn is_policy(&self, path: &str, text: &str) -> bool;
    /// Everything known about a document.
    fn analyze(&self, path: &str, text: &str) -> Analysis;
    /// Hover at a byte offset: a rule or agent name, a keyword, a YAML key.
    fn hover(&self, path: &str, text: &str, offset: usize) -> Option<Hover>;
    /// Semantic tokens of a document, in order (computed when asked for,
    /// not on every edit).
    fn tokens(&self, path: &str, text: &str) -> Vec<Token>;
    /// Completions at a byte offset.
    fn complete(&self, path: &str, text: &str, offset: usize, ws: &Workspace) -> Vec<Completion>;
    /// The document formatted, or why not.
    ///
    /// # Errors
    /// When the document cannot be formatted (syntax errors, YAML).
    fn format(&self, path: &str, text: &str) -> Result<String, String>;
    /// The document converted to the writ language, or why not.
    ///
    /// # Errors
    /// When the document cannot be converted.
    fn to_writ(&self, path: &str, text: &str) -> Result<String, String>;
    /// Decides each line of a requests file against the document.
    fn evaluate(&self, path: &str, text: &str, requests: &str) -> Vec<Evaluation>;
    /// The documentation page of a diagnostic code.
    fn docs_url(&self, code: &str) -> Option<String>;
}
