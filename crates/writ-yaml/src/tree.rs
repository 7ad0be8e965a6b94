//! A generic YAML tree with byte spans, read through serde-saphyr.
//!
//! The dialect lowerings walk this tree instead of deserializing straight
//! into structs: that way an unknown key, a wrong type or a bad value is a
//! diagnostic with its exact span and a suggestion, and one bad key does not
//! hide the others. serde-saphyr's `Spanned<T>` gives each node its location;
//! a custom visitor (not an internally tagged enum, which would lose spans)
//! builds the tree.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned as SaphyrSpanned;
use writ_diagnostics::{Code, Diagnostic, FileId, SourceFile, Span};

/// One YAML node.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key: its text and span.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

impl Node {
    /// The name of the node's YAML type, for "expected X, found Y" messages.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) | Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    #[must_use]
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of `key` in a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.text == key)
            .map(|(_, v)| v)
    }

    /// A scalar as text: strings as they are, numbers and booleans as YAML
    /// wrote them (`version: 1.0` reads as `1.0`).
    #[must_use]
    pub fn scalar_text(&self, source: &str) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => source
                .get(self.span.start as usize..self.span.end as usize)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            _ => None,
        }
    }
}

/// Raw node as serde-saphyr hands it over; converted to [`Node`] with spans.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<SaphyrSpanned<Raw>>),
    Map(Vec<(SaphyrSpanned<String>, SaphyrSpanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
                Raw::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
                Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
                Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
                Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(x) = a.next_element()? {
                    items.push(x);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = a.next_key::<SaphyrSpanned<KeyText>>()? {
                    let v = a.next_value()?;
                    entries.push((SaphyrSpanned::new(k.value.0, k.referenced, k.defined), v));
                }
                Ok(Raw::Map(entries))
            }
        }
        d.deserialize_any(RawVisitor)
    }
}

/// A mapping key; non-string scalar keys (`1: x`, `true: y`) become text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyText, E> {
                Ok(KeyText(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".to_owned()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

struct Converter<'a> {
    file: FileId,
    source: &'a SourceFile,
}

impl Converter<'_> {
    fn span(&self, loc: &serde_saphyr::Location) -> Span {
        let span = loc.span();
        let start = match span.byte_offset() {
            Some(b) => u32::try_from(b).unwrap_or(u32::MAX),
            None => self.source.offset_of(
                u32::try_from(loc.line()).unwrap_or(1),
                u32::try_from(loc.column()).unwrap_or(1),
            ),
        };
        let len = span.byte_len().map_or(0, |l| u32::try_from(l).unwrap_or(0));
        Span::new(self.file, start, start.saturating_add(len))
    }

    fn node(&self, raw: SaphyrSpanned<Raw>) -> Node {
        let mut span = self.span(&raw.referenced);
        let kind = match raw.value {
            Raw::Null => Kind::Null,
            Raw::Bool(b) => Kind::Bool(b),
            Raw::Int(i) => Kind::Int(i),
            Raw::Float(f) => Kind::Float(f),
            Raw::Str(s) => Kind::Str(s),
            Raw::Seq(items) => {
                let items: Vec<Node> = items.into_iter().map(|i| self.node(i)).collect();
                if let Some(last) = items.last() {
                    span = span.cover(last.span);
                }
                Kind::Seq(items)
            }
            Raw::Map(entries) => {
                let entries: Vec<(Key, Node)> = entries
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            Key {
                                span: self.span(&k.referenced),
                                text: k.value,
                            },
                            self.node(v),
                        )
                    })
                    .collect();
                if let Some((_, last)) = entries.last() {
                    span = span.cover(last.span);
                }
                Kind::Map(entries)
            }
        };
        Node { kind, span }
    }
}

/// Parses YAML text into a tree. `Ok(None)` for a document with no content.
///
/// # Errors
/// A syntax diagnostic (E0101, or E0107 for a duplicate key) at the place
/// the YAML parser stopped.
pub fn parse(file: FileId, source: &SourceFile) -> Result<Option<Node>, Diagnostic> {
    let mut options = serde_saphyr::options! {};
    options.budget = Some(budget(source.text().len()));
    let raw: Result<SaphyrSpanned<Raw>, serde_saphyr::Error> =
        serde_saphyr::from_str_with_options(source.text(), options);
    match raw {
        Ok(raw) => {
            let conv = Converter { file, source };
            let node = conv.node(raw);
            Ok(if node.kind == Kind::Null {
                None
            } else {
                Some(node)
            })
        }
        Err(err) => Err(syntax_diagnostic(file, source, &err)),
    }
}

/// Nodes (mappings, sequences, scalars) the YAML reader accepts per byte of
/// text, at least: a YAML value takes a few bytes (`a, `), so real policies
/// stay far below one per four bytes; a file past it is built to make the
/// reader allocate.
const BYTES_PER_NODE: usize = 4;

/// The YAML reader's limits for a file of `len` bytes. serde-saphyr's
/// defaults (250,000 nodes, 1,000,000 events) stop a valid policy of about
/// 17,000 rules; writ scales the node and event budgets with the file's
/// size instead (the file's size is bounded by the policy size limit,
/// `WRIT_MAX_POLICY_SIZE`), and keeps the other defaults: nesting depth 64,
/// 50,000 aliases and anchors, the alias-to-anchor ratio that stops
/// "billion laughs" expansion.
fn budget(len: usize) -> serde_saphyr::Budget {
    let mut b = serde_saphyr::Budget::default();
    b.max_nodes = b.max_nodes.max(len / BYTES_PER_NODE);
    // A node is one event (a scalar) or two (a collection's start and end).
    b.max_events = b.max_events.max(len / BYTES_PER_NODE * 2);
    b
}

/// E0101 for a breach of the reader's limits ([`budget`]), in writ's words.
fn budget_diagnostic(span: Span, breach: &serde_saphyr::budget::BudgetBreach) -> Diagnostic {
    use serde_saphyr::budget::BudgetBreach as B;
    let (what, help) = match breach {
        B::Nodes { .. } | B::Events { .. } => (
            "the file holds more YAML values than writ reads from a file of its size (one per 4 bytes of text, and at least 250,000)".to_owned(),
            "a policy's values take several bytes each, so this file is not a policy as written; if it is generated, write it with fewer, longer values, or in the writ language (docs/limits.md)",
        ),
        B::Depth { depth } => (
            format!("the YAML nests {depth} levels deep, more than the 64 writ reads"),
            "a policy needs a handful of levels: flatten the structure",
        ),
        B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } => (
            "the YAML uses more aliases (`*name`) or anchors (`&name`) than writ reads (50,000 each, and at most 10 aliases per anchor past the first 100)".to_owned(),
            "write the repeated parts out, or in the writ language, where a role or a rule says it once",
        ),
        B::Documents { documents } => (
            format!("the file holds {documents} YAML documents (`---`); a policy is one"),
            "keep one document per file",
        ),
        _ => (
            "the YAML exceeds one of the reader's safety limits (sizes of scalars, merge keys or includes)".to_owned(),
            "split the file, or write the policy in the writ language (docs/limits.md)",
        ),
    };
    Diagnostic::new(Code::YamlSyntax, span, format!("invalid yaml: {what}")).with_help(help)
}

fn syntax_diagnostic(file: FileId, source: &SourceFile, err: &serde_saphyr::Error) -> Diagnostic {
    let text = err.without_snippet().to_string();
    // serde-saphyr appends " at line N, column M"; we show the location ourselves.
    let message = text
        .rfind(" at line ")
        .and_then(|i| text.get(..i))
        .unwrap_or(&text)
        .trim()
        .to_owned();
    let span = err.location().map_or(Span::file_start(file), |loc| {
        let conv = Converter { file, source };
        let s = conv.span(&loc);
        if s.start == s.end {
            Span::new(file, s.start, s.start.saturating_add(1))
        } else {
            s
        }
    });
    if let serde_saphyr::Error::Budget { breach, .. } = err.without_snippet() {
        return budget_diagnostic(span, breach);
    }
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        return Diagnostic::new(Code::DuplicateKey, span, format!("duplicate key `{key}`"))
            .with_label_message("the key is already set above")
            .with_help("remove one of the two entries, or merge them");
    }
    let lower = message.to_lowercase();
    let help = if lower.contains("tab") {
        Some("YAML indentation must use spaces, not tabs".to_owned())
    } else if lower.contains("mapping values are not allowed") || lower.contains("indent") {
        Some("check the indentation: keys of one mapping must start in the same column".to_owned())
    } else if lower.contains("unclosed") {
        Some("close the bracket or quote that was opened before this point".to_owned())
    } else if lower.contains("did not find expected") {
        Some("check the indentation, and that every bracket and quote opened before this point is closed".to_owned())
    } else {
        None
    };
    let message = lower_first(&message);
    Diagnostic::new(Code::YamlSyntax, span, format!("invalid yaml: {message}")).with_help_opt(help)
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}
