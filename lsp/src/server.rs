//! The LSP server over an [`Analyzer`].

use std::collections::HashMap;
use std::ops::Range as Bytes;
use std::sync::{Arc, RwLock};

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams,
    CodeActionProviderCapability, CodeActionResponse, CodeDescription, CodeLens, CodeLensOptions,
    CodeLensParams, Command, CompletionItem, CompletionItemKind, CompletionOptions,
    CompletionParams, CompletionResponse, Diagnostic, DiagnosticRelatedInformation,
    DiagnosticSeverity, DidChangeTextDocumentParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, DocumentFormattingParams, DocumentSymbol, DocumentSymbolParams,
    DocumentSymbolResponse, ExecuteCommandOptions, ExecuteCommandParams, FoldingRange,
    FoldingRangeParams, FoldingRangeProviderCapability, GotoDefinitionParams,
    GotoDefinitionResponse, Hover, HoverContents, HoverParams, HoverProviderCapability,
    InitializeParams, InitializeResult, InitializedParams, Location, MarkupContent, MarkupKind,
    MessageType, NumberOrString, OneOf, Position, PrepareRenameResponse, Range, ReferenceParams,
    RenameOptions, RenameParams, SemanticToken, SemanticTokenType, SemanticTokens,
    SemanticTokensFullOptions, SemanticTokensLegend, SemanticTokensOptions, SemanticTokensParams,
    SemanticTokensResult, SemanticTokensServerCapabilities, ServerCapabilities, ServerInfo,
    SymbolKind, TextDocumentContentChangeEvent, TextDocumentPositionParams,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri, WorkspaceEdit,
};
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use crate::analysis::{self, Analysis, Analyzer, CompletionKind, NameKind, TokenKind, Workspace};
use crate::line_index::LineIndex;

/// The command a code lens runs: decide the requests file next to a policy.
pub const EVALUATE_COMMAND: &str = "writ.evaluateRequests";
/// The command that converts a YAML policy to the writ language.
pub const CONVERT_COMMAND: &str = "writ.convertToWrit";

const TOKEN_TYPES: [SemanticTokenType; 8] = [
    SemanticTokenType::KEYWORD,
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::COMMENT,
    SemanticTokenType::OPERATOR,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::ENUM_MEMBER,
];

fn token_index(kind: TokenKind) -> u32 {
    match kind {
        TokenKind::Keyword => 0,
        TokenKind::String => 1,
        TokenKind::Number => 2,
        TokenKind::Comment => 3,
        TokenKind::Operator => 4,
        TokenKind::Property => 5,
        TokenKind::Name => 6,
        TokenKind::EnumMember => 7,
    }
}

/// One open document.
#[derive(Debug)]
struct Doc {
    uri: Uri,
    path: String,
    text: String,
    version: i32,
    index: LineIndex,
    policy: bool,
    analysis: Arc<Analysis>,
}

impl Doc {
    fn range(&self, bytes: &Bytes<usize>) -> Range {
        let (sl, sc) = self.index.position(&self.text, bytes.start);
        let (el, ec) = self.index.position(&self.text, bytes.end);
        Range::new(Position::new(sl, sc), Position::new(el, ec))
    }

    fn offset(&self, p: Position) -> usize {
        self.index.offset(&self.text, p.line, p.character)
    }
}

/// The language server: open documents and the analyzer.
pub struct Backend {
    client: Client,
    analyzer: Arc<dyn Analyzer>,
    docs: RwLock<HashMap<String, Doc>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

/// A document's path (for dialect detection) from its URI.
fn path_of(uri: &Uri) -> String {
    uri.to_file_path().map_or_else(
        || uri.as_str().to_owned(),
        |p| p.to_string_lossy().into_owned(),
    )
}

/// Applies one content change (incremental or whole) to a text; `index`
/// is the text's line index, kept up to date.
fn apply_change(text: &mut String, index: &mut LineIndex, change: &TextDocumentContentChangeEvent) {
    match change.range {
        None => change.text.clone_into(text),
        Some(r) => {
            let start = index.offset(text, r.start.line, r.start.character);
            let end = index.offset(text, r.end.line, r.end.character).max(start);
            if text.is_char_boundary(start) && text.is_char_boundary(end) {
                text.replace_range(start..end, &change.text);
            }
        }
    }
    *index = LineIndex::new(text);
}

impl Backend {
    fn new(client: Client, analyzer: Arc<dyn Analyzer>) -> Backend {
        Backend {
            client,
            analyzer,
            docs: RwLock::new(HashMap::new()),
        }
    }

    fn with_doc<T>(&self, uri: &Uri, f: impl FnOnce(&Doc) -> T) -> Option<T> {
        let docs = self.docs.read().ok()?;
        docs.get(uri.as_str()).map(f)
    }

    /// Re-analyses a document and publishes its diagnostics.
    async fn refresh(&self, uri: &Uri) {
        let Some((path, text, version)) =
            self.with_doc(uri, |d| (d.path.clone(), d.text.clone(), d.version))
        else {
            return;
        };
        // Analysis runs here, on the server's thread: moving it to the
        // blocking pool measured 50–130 ms slower per edit of a
        // 5,000-rule file (memory freed across threads), so requests wait
        // for it instead.
        let policy = self.analyzer.is_policy(&path, &text);
        let analysis = Arc::new(if policy {
            self.analyzer.analyze(&path, &text)
        } else {
            Analysis::default()
        });
        let diagnostics = {
            let Ok(mut docs) = self.docs.write() else {
                return;
            };
            let Some(doc) = docs.get_mut(uri.as_str()) else {
                return;
            };
            // A newer edit arrived while analysing: its refresh publishes.
            if doc.version != version {
                return;
            }
            doc.policy = policy;
            let previous = std::mem::replace(&mut doc.analysis, Arc::clone(&analysis));
            let mut links = HashMap::new();
            let diagnostics = analysis
                .diagnostics
                .iter()
                .map(|d| self.diagnostic_linked(doc, d, &mut links))
                .collect::<Vec<_>>();
            (diagnostics, previous)
        };
        let (diagnostics, previous) = diagnostics;
        self.client
            .publish_diagnostics(uri.clone(), diagnostics, Some(version))
            .await;
        // Freed once the diagnostics are on their way.
        drop(previous);
    }

    fn diagnostic(&self, doc: &Doc, d: &analysis::Diagnostic) -> Diagnostic {
        self.diagnostic_linked(doc, d, &mut HashMap::new())
    }

    /// A diagnostic in LSP form; `links` memoizes each code's page.
    fn diagnostic_linked(
        &self,
        doc: &Doc,
        d: &analysis::Diagnostic,
        links: &mut HashMap<String, Option<Uri>>,
    ) -> Diagnostic {
        let mut message = d.message.clone();
        if let Some(help) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        Diagnostic {
            range: doc.range(&d.range),
            severity: Some(match d.severity {
                analysis::Severity::Error => DiagnosticSeverity::ERROR,
                analysis::Severity::Warning => DiagnosticSeverity::WARNING,
            }),
            code: Some(NumberOrString::String(d.code.clone())),
            code_description: links
                .entry(d.code.clone())
                .or_insert_with(|| {
                    self.analyzer
                        .docs_url(&d.code)
                        .and_then(|u| u.parse::<Uri>().ok())
                })
                .clone()
                .map(|href| CodeDescription { href }),
            source: Some("writ".to_owned()),
            message,
            related_information: (!d.related.is_empty()).then(|| {
                d.related
                    .iter()
                    .map(|(r, m)| DiagnosticRelatedInformation {
                        location: Location::new(doc.uri.clone(), doc.range(r)),
                        message: if m.is_empty() {
                            d.message.clone()
                        } else {
                            m.clone()
                        },
                    })
                    .collect()
            }),
            tags: None,
            data: None,
        }
    }

    /// Every document's references to `name` of `kind`.
    fn locations(&self, kind: NameKind, name: &str, definitions: Option<bool>) -> Vec<Location> {
        let Ok(docs) = self.docs.read() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut uris: Vec<&String> = docs.keys().collect();
        uris.sort();
        for uri in uris {
            let Some(doc) = docs.get(uri) else { continue };
            for r in &doc.analysis.references {
                if r.kind == kind && r.name == name && definitions.is_none_or(|d| d == r.definition)
                {
                    out.push(Location::new(doc.uri.clone(), doc.range(&r.range)));
                }
            }
        }
        out
    }

    /// The reference under the cursor.
    fn reference_at(&self, p: &TextDocumentPositionParams) -> Option<(NameKind, String, Range)> {
        self.with_doc(&p.text_document.uri, |doc| {
            let at = doc.offset(p.position);
            doc.analysis
                .references
                .iter()
                .find(|r| r.range.start <= at && at <= r.range.end)
                .map(|r| (r.kind, r.name.clone(), doc.range(&r.range)))
        })
        .flatten()
    }

    fn workspace(&self) -> Workspace {
        let mut ws = Workspace::default();
        if let Ok(docs) = self.docs.read() {
            for doc in docs.values() {
                for r in &doc.analysis.references {
                    match r.kind {
                        NameKind::Agent => ws.agents.push(r.name.clone()),
                        NameKind::Role => ws.roles.push(r.name.clone()),
                        _ => {}
                    }
                }
                ws.actions.extend(doc.analysis.actions.iter().cloned());
            }
        }
        for v in [&mut ws.agents, &mut ws.roles, &mut ws.actions] {
            v.sort();
            v.dedup();
        }
        ws
    }

    /// The requests file next to a policy: `NAME.requests.jsonl` for
    /// `NAME.writ` / `NAME.yaml`.
    fn requests_file(path: &str) -> Option<std::path::PathBuf> {
        let p = std::path::Path::new(path);
        let stem = p.file_name()?.to_str()?;
        let base = stem
            .strip_suffix(".writ.yaml")
            .or_else(|| stem.strip_suffix(".writ"))
            .or_else(|| stem.strip_suffix(".yaml"))
            .or_else(|| stem.strip_suffix(".yml"))?;
        let candidate = p.with_file_name(format!("{base}.requests.jsonl"));
        candidate.is_file().then_some(candidate)
    }

    fn evaluate(&self, uri: &Uri) -> Option<(std::path::PathBuf, Vec<analysis::Evaluation>)> {
        let (path, text) = self.with_doc(uri, |d| (d.path.clone(), d.text.clone()))?;
        let file = Self::requests_file(&path)?;
        let requests = std::fs::read_to_string(&file).ok()?;
        Some((file, self.analyzer.evaluate(&path, &text, &requests)))
    }
}

fn completion_kind(k: CompletionKind) -> CompletionItemKind {
    match k {
        CompletionKind::Keyword => CompletionItemKind::KEYWORD,
        CompletionKind::Key => CompletionItemKind::PROPERTY,
        CompletionKind::Agent | CompletionKind::Role => CompletionItemKind::VARIABLE,
        CompletionKind::Value => CompletionItemKind::ENUM_MEMBER,
        CompletionKind::Action => CompletionItemKind::VALUE,
    }
}

fn symbol_kind(k: NameKind) -> SymbolKind {
    match k {
        NameKind::Policy => SymbolKind::MODULE,
        NameKind::Agent => SymbolKind::CLASS,
        NameKind::Role => SymbolKind::INTERFACE,
        NameKind::Rule => SymbolKind::FUNCTION,
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, _: InitializeParams) -> Result<InitializeResult> {
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "writ".to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            }),
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::INCREMENTAL,
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Right(RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: Default::default(),
                })),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![
                        " ".to_owned(),
                        "\"".to_owned(),
                        ":".to_owned(),
                        "[".to_owned(),
                    ]),
                    ..CompletionOptions::default()
                }),
                document_symbol_provider: Some(OneOf::Left(true)),
                folding_range_provider: Some(FoldingRangeProviderCapability::Simple(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![EVALUATE_COMMAND.to_owned(), CONVERT_COMMAND.to_owned()],
                    ..ExecuteCommandOptions::default()
                }),
                semantic_tokens_provider: Some(
                    SemanticTokensServerCapabilities::SemanticTokensOptions(
                        SemanticTokensOptions {
                            legend: SemanticTokensLegend {
                                token_types: TOKEN_TYPES.to_vec(),
                                token_modifiers: Vec::new(),
                            },
                            full: Some(SemanticTokensFullOptions::Bool(true)),
                            range: None,
                            ..SemanticTokensOptions::default()
                        },
                    ),
                ),
                ..ServerCapabilities::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        self.client
            .log_message(MessageType::INFO, "writ language server ready")
            .await;
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let path = path_of(&doc.uri);
        if let Ok(mut docs) = self.docs.write() {
            docs.insert(
                doc.uri.as_str().to_owned(),
                Doc {
                    uri: doc.uri.clone(),
                    path,
                    index: LineIndex::new(&doc.text),
                    text: doc.text,
                    version: doc.version,
                    policy: false,
                    analysis: Arc::new(Analysis::default()),
                },
            );
        }
        self.refresh(&doc.uri).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        {
            let Ok(mut docs) = self.docs.write() else {
                return;
            };
            let Some(doc) = docs.get_mut(uri.as_str()) else {
                return;
            };
            // Edits apply in version order; a stale one is dropped.
            if params.text_document.version <= doc.version {
                return;
            }
            for change in &params.content_changes {
                apply_change(&mut doc.text, &mut doc.index, change);
            }
            doc.version = params.text_document.version;
        }
        self.refresh(&uri).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        if let Ok(mut docs) = self.docs.write() {
            docs.remove(uri.as_str());
        }
        self.client.publish_diagnostics(uri, Vec::new(), None).await;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let p = params.text_document_position_params;
        let Some((path, text, at)) = self.with_doc(&p.text_document.uri, |d| {
            (d.path.clone(), d.text.clone(), d.offset(p.position))
        }) else {
            return Ok(None);
        };
        let Some(h) = self.analyzer.hover(&path, &text, at) else {
            return Ok(None);
        };
        Ok(self.with_doc(&p.text_document.uri, |d| Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: h.markdown.clone(),
            }),
            range: Some(d.range(&h.range)),
        }))
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let Some((kind, name, _)) = self.reference_at(&params.text_document_position_params) else {
            return Ok(None);
        };
        let defs = self.locations(kind, &name, Some(true));
        Ok((!defs.is_empty()).then_some(GotoDefinitionResponse::Array(defs)))
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let Some((kind, name, _)) = self.reference_at(&params.text_document_position) else {
            return Ok(None);
        };
        let include = params.context.include_declaration;
        let all = self.locations(kind, &name, if include { None } else { Some(false) });
        Ok(Some(all))
    }

    async fn prepare_rename(
        &self,
        params: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        Ok(self
            .reference_at(&params)
            .filter(|(kind, ..)| matches!(kind, NameKind::Agent | NameKind::Rule | NameKind::Role))
            .map(
                |(_, name, range)| PrepareRenameResponse::RangeWithPlaceholder {
                    range,
                    placeholder: name,
                },
            ))
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let Some((kind, name, _)) = self.reference_at(&params.text_document_position) else {
            return Ok(None);
        };
        let new = params.new_name;
        // Names are rewritten in place, quoted or not: keep to characters
        // that stand unquoted in both the writ language and YAML.
        if new.is_empty()
            || !new
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '@'))
        {
            return Err(tower_lsp_server::jsonrpc::Error::invalid_params(
                "a new name is letters, digits, `_`, `-`, `.`, `:` or `@`",
            ));
        }
        let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
        for loc in self.locations(kind, &name, None) {
            changes
                .entry(loc.uri)
                .or_default()
                .push(TextEdit::new(loc.range, new.clone()));
        }
        Ok(Some(WorkspaceEdit::new(changes)))
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let p = params.text_document_position;
        let ws = self.workspace();
        let Some((path, text, at)) = self.with_doc(&p.text_document.uri, |d| {
            (d.path.clone(), d.text.clone(), d.offset(p.position))
        }) else {
            return Ok(None);
        };
        let items = self
            .analyzer
            .complete(&path, &text, at, &ws)
            .into_iter()
            .map(|c| CompletionItem {
                label: c.label,
                kind: Some(completion_kind(c.kind)),
                detail: c.detail,
                insert_text: c.insert,
                ..CompletionItem::default()
            })
            .collect();
        Ok(Some(CompletionResponse::Array(items)))
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        Ok(self.with_doc(&params.text_document.uri, |d| {
            #[allow(deprecated, reason = "`SymbolInformation::deprecated` must be set though the protocol deprecates it")]
            let symbols = d
                .analysis
                .symbols
                .iter()
                .map(|s| DocumentSymbol {
                    name: s.name.clone(),
                    detail: (!s.detail.is_empty()).then(|| s.detail.clone()),
                    kind: symbol_kind(s.kind),
                    tags: None,
                    deprecated: None,
                    range: d.range(&s.range),
                    selection_range: d.range(&s.selection),
                    children: None,
                })
                .collect();
            DocumentSymbolResponse::Nested(symbols)
        }))
    }

    async fn folding_range(&self, params: FoldingRangeParams) -> Result<Option<Vec<FoldingRange>>> {
        Ok(self.with_doc(&params.text_document.uri, |d| {
            d.analysis
                .folds
                .iter()
                .filter_map(|f| {
                    let r = d.range(f);
                    (r.end.line > r.start.line).then_some(FoldingRange {
                        start_line: r.start.line,
                        end_line: r.end.line,
                        ..FoldingRange::default()
                    })
                })
                .collect()
        }))
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        let Some((path, text, end)) = self.with_doc(&params.text_document.uri, |d| {
            (d.path.clone(), d.text.clone(), d.range(&(0..d.text.len())))
        }) else {
            return Ok(None);
        };
        match self.analyzer.format(&path, &text) {
            Ok(formatted) if formatted == text => Ok(Some(Vec::new())),
            Ok(formatted) => Ok(Some(vec![TextEdit::new(end, formatted)])),
            Err(why) => {
                self.client
                    .show_message(MessageType::WARNING, format!("writ fmt: {why}"))
                    .await;
                Ok(None)
            }
        }
    }

    async fn semantic_tokens_full(
        &self,
        params: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        let Some((path, text, policy)) = self.with_doc(&params.text_document.uri, |d| {
            (d.path.clone(), d.text.clone(), d.policy)
        }) else {
            return Ok(None);
        };
        let tokens = if policy {
            self.analyzer.tokens(&path, &text)
        } else {
            Vec::new()
        };
        Ok(self.with_doc(&params.text_document.uri, |d| {
            let mut data = Vec::with_capacity(tokens.len());
            let (mut line, mut col) = (0u32, 0u32);
            for t in &tokens {
                let r = d.range(&t.range);
                // Tokens never span lines in the protocol: cut at the end
                // of the first line.
                let length = if r.end.line == r.start.line {
                    r.end.character.saturating_sub(r.start.character)
                } else {
                    let (_, eol) = d.index.position(
                        &d.text,
                        d.text
                            .get(t.range.start..)
                            .and_then(|s| s.find('\n'))
                            .map_or(d.text.len(), |n| t.range.start + n),
                    );
                    eol.saturating_sub(r.start.character)
                };
                let delta_line = r.start.line - line.min(r.start.line);
                let delta_start = if delta_line == 0 {
                    r.start.character.saturating_sub(col)
                } else {
                    r.start.character
                };
                data.push(SemanticToken {
                    delta_line,
                    delta_start,
                    length,
                    token_type: token_index(t.kind),
                    token_modifiers_bitset: 0,
                });
                line = r.start.line;
                col = r.start.character;
            }
            SemanticTokensResult::Tokens(SemanticTokens {
                result_id: None,
                data,
            })
        }))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri;
        let Some(actions) = self.with_doc(&uri, |d| {
            let start = d.offset(params.range.start);
            let end = d.offset(params.range.end);
            let mut out: Vec<CodeActionOrCommand> = Vec::new();
            for diag in &d.analysis.diagnostics {
                if diag.range.end < start || diag.range.start > end {
                    continue;
                }
                for fix in &diag.fixes {
                    let mut changes = HashMap::new();
                    changes.insert(
                        uri.clone(),
                        vec![TextEdit::new(d.range(&fix.range), fix.replacement.clone())],
                    );
                    out.push(CodeActionOrCommand::CodeAction(CodeAction {
                        title: fix.title.clone(),
                        kind: Some(CodeActionKind::QUICKFIX),
                        diagnostics: Some(vec![self.diagnostic(d, diag)]),
                        edit: Some(WorkspaceEdit::new(changes)),
                        is_preferred: Some(true),
                        ..CodeAction::default()
                    }));
                }
            }
            if d.policy && !d.path.ends_with(".writ") {
                out.push(CodeActionOrCommand::CodeAction(CodeAction {
                    title: "Convert this policy to the writ language".to_owned(),
                    kind: Some(CodeActionKind::REFACTOR_REWRITE),
                    command: Some(Command::new(
                        "Convert to writ".to_owned(),
                        CONVERT_COMMAND.to_owned(),
                        Some(vec![serde_json::Value::String(uri.as_str().to_owned())]),
                    )),
                    ..CodeAction::default()
                }));
            }
            out
        }) else {
            return Ok(None);
        };
        Ok(Some(actions))
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        let uri = params.text_document.uri;
        let Some((file, results)) = self.evaluate(&uri) else {
            return Ok(None);
        };
        let count = |what: &str| results.iter().filter(|e| e.decision == what).count();
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut title = format!(
            "{}: {} allow · {} deny · {} approve",
            name,
            count("allow"),
            count("deny"),
            count("approve")
        );
        let errors = count("error");
        if errors > 0 {
            title.push_str(&format!(" · {errors} invalid"));
        }
        Ok(Some(vec![CodeLens {
            range: Range::new(Position::new(0, 0), Position::new(0, 0)),
            command: Some(Command::new(
                title,
                EVALUATE_COMMAND.to_owned(),
                Some(vec![serde_json::Value::String(uri.as_str().to_owned())]),
            )),
            data: None,
        }]))
    }

    async fn execute_command(
        &self,
        params: ExecuteCommandParams,
    ) -> Result<Option<serde_json::Value>> {
        let Some(uri) = params
            .arguments
            .first()
            .and_then(serde_json::Value::as_str)
            .and_then(|s| s.parse::<Uri>().ok())
        else {
            return Err(tower_lsp_server::jsonrpc::Error::invalid_params(
                "expected the document's URI as the first argument",
            ));
        };
        match params.command.as_str() {
            EVALUATE_COMMAND => {
                let Some((file, results)) = self.evaluate(&uri) else {
                    return Ok(None);
                };
                let mut report = format!("{}:\n", file.display());
                for e in &results {
                    report.push_str(&format!("  line {}: {}\n", e.line + 1, e.detail));
                }
                self.client.log_message(MessageType::INFO, report).await;
                Ok(Some(serde_json::Value::Array(
                    results
                        .iter()
                        .map(|e| {
                            serde_json::json!({"line": e.line, "decision": e.decision, "detail": e.detail})
                        })
                        .collect(),
                )))
            }
            CONVERT_COMMAND => {
                let Some((path, text)) = self.with_doc(&uri, |d| (d.path.clone(), d.text.clone()))
                else {
                    return Ok(None);
                };
                match self.analyzer.to_writ(&path, &text) {
                    Ok(writ) => Ok(Some(serde_json::Value::String(writ))),
                    Err(why) => {
                        self.client
                            .show_message(MessageType::ERROR, format!("cannot convert: {why}"))
                            .await;
                        Ok(None)
                    }
                }
            }
            other => Err(tower_lsp_server::jsonrpc::Error::invalid_params(format!(
                "unknown command `{other}`"
            ))),
        }
    }
}

/// The service, for tests that drive the server without stdio.
pub fn service(
    analyzer: Arc<dyn Analyzer>,
) -> (LspService<Backend>, tower_lsp_server::ClientSocket) {
    LspService::new(move |client| Backend::new(client, analyzer))
}

/// Serves LSP over stdin and stdout until the client exits.
pub fn serve_stdio(analyzer: Arc<dyn Analyzer>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (service, socket) = service(analyzer);
        Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
            .serve(service)
            .await;
    });
    Ok(())
}
