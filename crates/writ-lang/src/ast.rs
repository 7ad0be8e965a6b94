//! The writ language's syntax tree.
//!
//! The tree is what the author wrote, in order, with a span on every node:
//! the formatter prints it back and the lowering turns it into IR. Nodes
//! that could not be parsed are `Error` nodes; the diagnostics explain them.

use writ_diagnostics::Span;
use writ_ir::{CmpOp, Effect, Spanned};

use super::lexer::Comment;

/// A parsed file: its items and its comments (kept aside, by position).
#[derive(Clone, Debug, Default)]
pub struct File {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug)]
pub enum Item {
    Policy(Block),
    Agent(Block),
    Rule(RuleDecl),
    Error(Span),
}

impl Item {
    #[must_use]
    pub fn span(&self) -> Span {
        match self {
            Item::Policy(b) | Item::Agent(b) => b.span,
            Item::Rule(r) => r.span,
            Item::Error(s) => *s,
        }
    }
}

/// What a block declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// `policy NAME { ... }`: settings.
    Policy,
    /// `agent NAME { ... }`: one agent.
    Agent,
    /// `role NAME { ... }`: every agent holding the role.
    Role,
    /// `every agent [NAME] { ... }`: every agent.
    Every,
}

impl BlockKind {
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            BlockKind::Policy => "policy",
            BlockKind::Agent => "agent",
            BlockKind::Role => "role",
            BlockKind::Every => "every agent",
        }
    }
}

/// `policy`, `agent`, `role` and `every agent` blocks share one shape: a
/// header and keyword-led entries. Which entries a block allows is checked
/// when lowering, so a misplaced one gets a message naming the block.
#[derive(Clone, Debug)]
pub struct Block {
    pub kind: BlockKind,
    pub name: Option<Spanned<String>>,
    pub entries: Vec<Entry>,
    /// From `{` to `}`; `None` for a `policy` header without a block.
    pub body: Option<Span>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum EntryKind {
    Version(Spanned<String>),
    Description(Spanned<String>),
    Combine(Spanned<String>),
    Default {
        effect: Option<Spanned<Effect>>,
        risk: Option<Spanned<String>>,
        reason: Option<Spanned<String>>,
    },
    Timezone(Spanned<String>),
    MaxDelegationDepth(Spanned<f64>),
    Ceiling(Spanned<String>),
    EntryAgents(Names),
    Roles(Names),
    Tier(Spanned<String>),
    Tags(Names),
    TokenPrefix(Spanned<String>),
    /// `models|tools|hosts allow|block [..] [as "key"]`.
    Access {
        list: Spanned<AccessKind>,
        block: bool,
        patterns: Names,
        label: Option<Spanned<String>>,
    },
    RequireTls(Spanned<bool>),
    /// `limit N requests|tokens per UNIT [on "pattern"] [as "key"]`; a
    /// `shared` after the unit (where the word is out of place, reported
    /// when lowering) is kept so that the message can point at it.
    Limit {
        count: Spanned<f64>,
        metric: Spanned<String>,
        unit: Spanned<String>,
        shared: Option<Span>,
        on: Option<Spanned<String>>,
        label: Option<Spanned<String>>,
    },
    Delegates(Names),
    Error,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub kind: EntryKind,
    pub span: Span,
}

impl Entry {
    /// The keyword that starts the entry, for messages.
    #[must_use]
    pub fn keyword(&self) -> &'static str {
        match &self.kind {
            EntryKind::Version(_) => "version",
            EntryKind::Description(_) => "description",
            EntryKind::Combine(_) => "combine",
            EntryKind::Default { .. } => "default",
            EntryKind::Timezone(_) => "timezone",
            EntryKind::MaxDelegationDepth(_) => "max_delegation_depth",
            EntryKind::Ceiling(_) => "ceiling",
            EntryKind::EntryAgents(_) => "entry_agents",
            EntryKind::Roles(_) => "roles",
            EntryKind::Tier(_) => "tier",
            EntryKind::Tags(_) => "tags",
            EntryKind::TokenPrefix(_) => "token_prefix",
            EntryKind::Access { list, .. } => list.value.keyword(),
            EntryKind::RequireTls(_) => "require_tls",
            EntryKind::Limit { .. } => "limit",
            EntryKind::Delegates(_) => "delegates",
            EntryKind::Error => "(error)",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    Models,
    Tools,
    Hosts,
}

impl AccessKind {
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            AccessKind::Models => "models",
            AccessKind::Tools => "tools",
            AccessKind::Hosts => "hosts",
        }
    }
}

/// A name or a bracketed list of names; `bracketed` records which, so the
/// formatter keeps a one-name list a list.
#[derive(Clone, Debug)]
pub struct Names {
    pub items: Vec<Spanned<String>>,
    pub bracketed: bool,
    pub span: Span,
}

/// `rule [NAME:] EFFECT ACTIONS CLAUSE*`.
#[derive(Clone, Debug)]
pub struct RuleDecl {
    pub name: Option<Spanned<String>>,
    pub effect: Spanned<Effect>,
    pub actions: Names,
    pub clauses: Vec<Clause>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ClauseKind {
    /// `on TARGETS`, or `on hosts TARGETS` to match host names in any case.
    On {
        names: Names,
        hosts: bool,
    },
    /// `for agents [..] roles [..] tiers [..] tags [..]`.
    For(Vec<Principal>),
    When(Expr),
    Risk(Spanned<String>),
    /// `limit N per UNIT [shared]`; `shared`: one count for all agents.
    Limit {
        count: Spanned<f64>,
        unit: Spanned<String>,
        shared: Option<Span>,
    },
    Because(Spanned<String>),
    /// `require FIELD [or FIELD] in [..] [as "name"]`.
    Require {
        field: Spanned<Vec<String>>,
        alternate: Option<Spanned<Vec<String>>>,
        values: Spanned<Vec<Lit>>,
        label: Option<Spanned<String>>,
    },
    Error,
}

#[derive(Clone, Debug)]
pub struct Clause {
    pub kind: ClauseKind,
    pub span: Span,
}

impl Clause {
    #[must_use]
    pub fn keyword(&self) -> &'static str {
        match &self.kind {
            ClauseKind::On { .. } => "on",
            ClauseKind::For(_) => "for",
            ClauseKind::When(_) => "when",
            ClauseKind::Risk(_) => "risk",
            ClauseKind::Limit { .. } => "limit",
            ClauseKind::Because(_) => "because",
            ClauseKind::Require { .. } => "require",
            ClauseKind::Error => "(error)",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    Agents,
    Roles,
    Tiers,
    Tags,
}

impl PrincipalKind {
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            PrincipalKind::Agents => "agents",
            PrincipalKind::Roles => "roles",
            PrincipalKind::Tiers => "tiers",
            PrincipalKind::Tags => "tags",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Principal {
    pub kind: Spanned<PrincipalKind>,
    pub names: Names,
}

/// A literal value in a condition or a list.
#[derive(Clone, Debug)]
pub enum LitKind {
    Str(String),
    /// A bare word: a string written without quotes.
    Word(String),
    Num(f64),
    Bool(bool),
    Null,
    List(Vec<Lit>),
}

#[derive(Clone, Debug)]
pub struct Lit {
    pub kind: LitKind,
    pub span: Span,
}

/// A condition.
#[derive(Clone, Debug)]
pub enum Expr {
    Compare {
        field: Spanned<Vec<String>>,
        op: CmpOp,
        value: Lit,
        span: Span,
    },
    In {
        field: Spanned<Vec<String>>,
        values: Spanned<Vec<Lit>>,
        negated: bool,
        span: Span,
    },
    Matches {
        field: Spanned<Vec<String>>,
        pattern: Spanned<String>,
        span: Span,
    },
    Contains {
        field: Spanned<Vec<String>>,
        value: Lit,
        span: Span,
    },
    Exists {
        field: Spanned<Vec<String>>,
        span: Span,
    },
    Time {
        window: Spanned<String>,
        span: Span,
    },
    Weekday {
        days: Spanned<Vec<Lit>>,
        span: Span,
    },
    /// `true` (always holds) or `false` (never holds).
    Const(bool, Span),
    And(Vec<Expr>, Span),
    Or(Vec<Expr>, Span),
    Not(Box<Expr>, Span),
}

impl Expr {
    #[must_use]
    pub fn span(&self) -> Span {
        match self {
            Expr::Compare { span, .. }
            | Expr::In { span, .. }
            | Expr::Matches { span, .. }
            | Expr::Contains { span, .. }
            | Expr::Exists { span, .. }
            | Expr::Time { span, .. }
            | Expr::Weekday { span, .. }
            | Expr::Const(_, span)
            | Expr::And(_, span)
            | Expr::Or(_, span)
            | Expr::Not(_, span) => *span,
        }
    }

    /// `a and b`, flattening nested conjunctions.
    #[must_use]
    pub fn and(parts: Vec<Expr>, span: Span) -> Expr {
        let mut flat = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Expr::And(inner, _) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        if flat.len() == 1
            && let Some(only) = flat.pop()
        {
            return only;
        }
        Expr::And(flat, span)
    }

    /// `a or b`, flattening nested disjunctions.
    #[must_use]
    pub fn or(parts: Vec<Expr>, span: Span) -> Expr {
        let mut flat = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Expr::Or(inner, _) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        if flat.len() == 1
            && let Some(only) = flat.pop()
        {
            return only;
        }
        Expr::Or(flat, span)
    }
}

/// A span from two byte offsets (used by the generated parser).
#[must_use]
pub fn sp(file: writ_diagnostics::FileId, l: usize, r: usize) -> Span {
    Span::new(
        file,
        u32::try_from(l).unwrap_or(u32::MAX),
        u32::try_from(r).unwrap_or(u32::MAX),
    )
}
