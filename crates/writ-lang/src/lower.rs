//! Lowering the syntax tree into the IR, with the same checks (and the same
//! diagnostic codes) as the YAML front ends: words with did-you-mean,
//! globs, times, rates, time zones; plus the language's own checks
//! (a setting in the wrong block, a setting given twice).

use writ_diagnostics::{Code, Diagnostic, FileId, Span, did_you_mean};
use writ_ir::{
    Agent, AgentId, AgentLimit, Ceiling, Combining, Condition, Constraint, Dialect, Field, Metric,
    NamedList, PartialSettings, Path, Pattern, Policy, PolicyFile, PolicyId, Rate, Risk, RuleLimit,
    RuleParts, Spanned, Subject, Tier, TimeWindow, Timezone, Value, Weekday, WeekdaySet,
};

use super::ast::{
    AccessKind, Block, BlockKind, ClauseKind, Entry, EntryKind, Expr, Item, Lit, LitKind, Names,
    PrincipalKind, RuleDecl,
};

/// Lowers one parsed file. `fallback_name` names the policy when the file
/// has no `policy` header (the file stem).
#[must_use]
pub fn lower(
    file: FileId,
    tree: &super::ast::File,
    fallback_name: &str,
) -> (PolicyFile, Vec<Diagnostic>) {
    let mut file = Assembler::new(file, fallback_name);
    for item in &tree.items {
        file.item(item);
    }
    file.finish()
}

/// An agent (or role, or `every agent`) or a rule, lowered on its own:
/// items are independent until the merge, so an editor keeps them across
/// edits elsewhere in the file.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one or two per part, moved into the file as they are: boxing would only add an allocation per rule"
)]
pub enum Lowered {
    Agent(Agent),
    Rule(writ_ir::Rule),
}

impl writ_ir::Shift for Lowered {
    fn shift(&mut self, delta: i64) {
        match self {
            Lowered::Agent(a) => a.shift(delta),
            Lowered::Rule(r) => r.shift(delta),
        }
    }
}

/// Lowers one agent or rule item, with what was wrong with it; `None` for
/// a policy header (which [`Assembler::item`] takes) or a syntax error.
#[must_use]
pub fn lower_item(item: &Item) -> Option<(Lowered, Vec<Diagnostic>)> {
    let mut cx = Lower { diags: Vec::new() };
    let lowered = match item {
        Item::Agent(block) => Lowered::Agent(cx.agent(block)),
        Item::Rule(rule) => Lowered::Rule(cx.rule(rule)),
        Item::Policy(_) | Item::Error(_) => return None,
    };
    Some((lowered, cx.diags))
}

/// Puts a file together item by item, in order: the policy header (the
/// first one; another is an error), agents and rules.
#[derive(Debug)]
pub struct Assembler {
    cx: Lower,
    policy: Policy,
    settings: PartialSettings,
    agents: Vec<Agent>,
    rules: Vec<writ_ir::Rule>,
    header: Option<Span>,
}

impl Assembler {
    #[must_use]
    pub fn new(file: FileId, fallback_name: &str) -> Assembler {
        Assembler {
            cx: Lower { diags: Vec::new() },
            policy: Policy {
                id: PolicyId(0),
                name: fallback_name.to_owned(),
                version: None,
                description: None,
                dialect: Dialect::Writ,
                file,
            },
            settings: PartialSettings::default(),
            agents: Vec::new(),
            rules: Vec::new(),
            header: None,
        }
    }

    /// Lowers and adds one item of the syntax tree.
    pub fn item(&mut self, item: &Item) {
        if let Item::Policy(block) = item {
            self.header(block);
        } else if let Some((lowered, diags)) = lower_item(item) {
            self.add(lowered, diags);
        }
    }

    /// Makes room for `rules` rules (a file of many rules would otherwise
    /// hold up to twice their memory while its vector grows).
    pub fn reserve(&mut self, rules: usize) {
        self.rules.reserve_exact(rules);
    }

    /// Adds an item lowered earlier, with its diagnostics.
    pub fn add(&mut self, lowered: Lowered, diags: Vec<Diagnostic>) {
        self.cx.diags.extend(diags);
        match lowered {
            Lowered::Agent(a) => self.agents.push(a),
            Lowered::Rule(r) => self.rules.push(r),
        }
    }

    fn header(&mut self, block: &Block) {
        if let Some(first) = self.header {
            self.cx.report(
                Diagnostic::new(
                    Code::DuplicateSetting,
                    block.span,
                    "a file has one `policy` header",
                )
                .with_secondary(first, "the first header")
                .with_help("merge the two headers into one"),
            );
            return;
        }
        self.header = Some(block.span);
        if let Some(name) = &block.name {
            self.policy.name.clone_from(&name.value);
        }
        self.cx.policy(block, &mut self.policy, &mut self.settings);
    }

    /// The lowered file and the diagnostics of lowering, in item order.
    #[must_use]
    pub fn finish(self) -> (PolicyFile, Vec<Diagnostic>) {
        (
            PolicyFile {
                policy: self.policy,
                settings: self.settings,
                agents: self.agents,
                rules: self.rules,
            },
            self.cx.diags,
        )
    }
}

#[derive(Debug)]
struct Lower {
    diags: Vec<Diagnostic>,
}

/// Which entries each block takes.
fn allowed(kind: BlockKind, entry: &EntryKind) -> bool {
    use EntryKind as E;
    match kind {
        BlockKind::Policy => matches!(
            entry,
            E::Version(_)
                | E::Description(_)
                | E::Combine(_)
                | E::Default { .. }
                | E::Timezone(_)
                | E::MaxDelegationDepth(_)
                | E::Ceiling(_)
                | E::EntryAgents(_)
        ),
        BlockKind::Agent => matches!(
            entry,
            E::Roles(_)
                | E::Tier(_)
                | E::Tags(_)
                | E::TokenPrefix(_)
                | E::Access { .. }
                | E::RequireTls(_)
                | E::Limit { .. }
                | E::Delegates(_)
        ),
        BlockKind::Role => matches!(
            entry,
            E::TokenPrefix(_)
                | E::Access { .. }
                | E::RequireTls(_)
                | E::Limit { .. }
                | E::Delegates(_)
        ),
        BlockKind::Every => matches!(entry, E::Access { .. } | E::RequireTls(_) | E::Limit { .. }),
    }
}

fn where_it_belongs(entry: &EntryKind) -> &'static str {
    use EntryKind as E;
    match entry {
        E::Version(_)
        | E::Description(_)
        | E::Combine(_)
        | E::Default { .. }
        | E::Timezone(_)
        | E::MaxDelegationDepth(_)
        | E::Ceiling(_)
        | E::EntryAgents(_) => "the `policy` block",
        E::Roles(_) | E::Tier(_) | E::Tags(_) => "an `agent` block",
        E::TokenPrefix(_) | E::Delegates(_) => "an `agent` or `role` block",
        _ => "an `agent`, `role` or `every agent` block",
    }
}

impl Lower {
    fn report(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Reports entries that don't belong in the block and entries given
    /// twice (except `limit` and access lists, which may repeat with
    /// different targets); returns the entries to read.
    fn entries<'a>(&mut self, block: &'a Block) -> Vec<&'a Entry> {
        let mut seen: Vec<(String, Span)> = Vec::new();
        let mut out = Vec::new();
        for e in &block.entries {
            if matches!(e.kind, EntryKind::Error) {
                continue;
            }
            if !allowed(block.kind, &e.kind) {
                self.report(
                    Diagnostic::new(
                        Code::MisplacedSetting,
                        e.span,
                        format!(
                            "`{}` does not belong in {} `{}` block",
                            e.keyword(),
                            if matches!(block.kind, BlockKind::Every | BlockKind::Agent) {
                                "an"
                            } else {
                                "a"
                            },
                            block.kind.keyword()
                        ),
                    )
                    .with_help(format!("move it to {}", where_it_belongs(&e.kind))),
                );
                continue;
            }
            let key = match &e.kind {
                EntryKind::Access { list, block, .. } => {
                    format!(
                        "{} {}",
                        list.value.keyword(),
                        if *block { "block" } else { "allow" }
                    )
                }
                EntryKind::Limit { .. } => {
                    out.push(e);
                    continue;
                }
                _ => e.keyword().to_owned(),
            };
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateSetting,
                        e.span,
                        format!("`{key}` is given twice in this block"),
                    )
                    .with_secondary(*first, "first given here")
                    .with_help("keep one; to list several values, put them in one list"),
                );
                continue;
            }
            seen.push((key, e.span));
            out.push(e);
        }
        out
    }

    fn policy(&mut self, block: &Block, policy: &mut Policy, settings: &mut PartialSettings) {
        for e in self.entries(block) {
            match &e.kind {
                EntryKind::Version(v) => policy.version = Some(v.value.clone()),
                EntryKind::Description(d) => policy.description = Some(d.value.clone()),
                EntryKind::Combine(w) => {
                    settings.combining = self.word(
                        w,
                        "combining algorithm",
                        Combining::parse,
                        &Combining::words(),
                    );
                }
                EntryKind::Default {
                    effect,
                    risk,
                    reason,
                } => {
                    if effect.is_none() && risk.is_none() && reason.is_none() {
                        self.report(
                            Diagnostic::new(Code::MissingKey, e.span, "`default` sets nothing")
                                .with_help("write `default deny`, optionally followed by `risk medium` and `because \"...\"`"),
                        );
                    }
                    settings.default_effect.clone_from(effect);
                    settings.default_risk = risk
                        .as_ref()
                        .and_then(|r| self.word(r, "risk level", Risk::parse, &Risk::words()));
                    settings.default_reason.clone_from(reason);
                }
                EntryKind::Timezone(tz) => settings.timezone = self.timezone(tz),
                EntryKind::MaxDelegationDepth(n) => {
                    settings.max_delegation_depth = self.whole(n, "the maximum delegation depth");
                }
                EntryKind::Ceiling(w) => {
                    settings.ceiling =
                        self.word(w, "permission ceiling", Ceiling::parse, &Ceiling::words());
                }
                EntryKind::EntryAgents(n) => {
                    if n.items.is_empty() {
                        self.report(
                            Diagnostic::new(Code::EmptyList, n.span, "`entry_agents` is an empty list: no agent is an entry")
                                .with_help("list the agents where delegation chains start, or remove the entry"),
                        );
                    }
                    settings.entry_agents = Some(Spanned::new(n.items.clone(), n.span));
                }
                _ => {}
            }
        }
    }

    fn agent(&mut self, block: &Block) -> Agent {
        let subject = match block.kind {
            BlockKind::Role => Subject::Role,
            BlockKind::Every => Subject::Everyone,
            _ => Subject::Agent,
        };
        let name = block
            .name
            .clone()
            .unwrap_or_else(|| Spanned::new("every agent".to_owned(), block.span));
        let mut agent = Agent::new(AgentId(0), name, subject, PolicyId(0), block.span);
        for e in self.entries(block) {
            match &e.kind {
                EntryKind::Roles(n) => agent.roles = self.names(n),
                EntryKind::Tier(t) => {
                    agent.tier = self.word(t, "trust tier", Tier::parse, &Tier::words());
                }
                EntryKind::Tags(n) => agent.tags = self.names(n),
                EntryKind::TokenPrefix(p) => agent.token_prefix = Some(p.clone()),
                EntryKind::Access {
                    list,
                    block,
                    patterns,
                    label,
                } => {
                    let verb = if *block { "block" } else { "allow" };
                    let key = label.as_ref().map_or_else(
                        || format!("{}.{verb}", list.value.keyword()),
                        |l| l.value.clone(),
                    );
                    if !*block && patterns.items.is_empty() {
                        self.report(
                            Diagnostic::new(
                                Code::EmptyList,
                                patterns.span,
                                format!(
                                    "`{} allow` is an empty list: nothing is allowed",
                                    list.value.keyword()
                                ),
                            )
                            .with_help("list at least one entry, or remove the entry"),
                        );
                    }
                    let hosts = list.value == AccessKind::Hosts;
                    let named = Some(NamedList {
                        key,
                        patterns: self.patterns(patterns, hosts),
                        span: patterns.span,
                    });
                    let target = match list.value {
                        AccessKind::Models => &mut agent.models,
                        AccessKind::Tools => &mut agent.tools,
                        AccessKind::Hosts => &mut agent.hosts,
                    };
                    if *block {
                        target.block = named;
                    } else {
                        target.allow = named;
                    }
                }
                EntryKind::RequireTls(b) => agent.require_tls = Some(b.clone()),
                EntryKind::Limit {
                    count,
                    metric,
                    unit,
                    shared,
                    on,
                    label,
                } => {
                    if let Some(at) = shared {
                        self.report(
                            Diagnostic::new(
                                Code::SharedAgentLimit,
                                *at,
                                format!(
                                    "`shared` applies only to a rule's limit, not to one in this `{}` block",
                                    block.kind.keyword()
                                ),
                            )
                            .with_label_message("only a rule's limit can be shared")
                            .with_help("remove `shared`: this limit counts each agent separately; for one count across every agent, write `limit N per UNIT shared` on the rule that allows the action"),
                        );
                    }
                    let metric_v =
                        self.word(metric, "limit metric", Metric::parse, &Metric::words());
                    let rate = self.rate(count, unit);
                    let actions = on.as_ref().and_then(|p| self.pattern(p, false));
                    if let (Some(m), Some(rate)) = (metric_v, rate) {
                        let key = label
                            .as_ref()
                            .map_or_else(|| format!("limits.{}", m.value), |l| l.value.clone());
                        agent.limits.push(AgentLimit {
                            key,
                            metric: m.value,
                            rate,
                            actions,
                            span: e.span,
                        });
                    }
                }
                EntryKind::Delegates(n) => agent.delegates = self.names(n),
                _ => {}
            }
        }
        agent
    }

    fn rule(&mut self, rule: &RuleDecl) -> writ_ir::Rule {
        let mut parts = RuleParts::new(rule.effect.clone(), rule.span);
        parts.name.clone_from(&rule.name);
        if rule.actions.items.is_empty() {
            self.report(
                Diagnostic::new(
                    Code::EmptyList,
                    rule.actions.span,
                    "the rule lists no action: it never applies",
                )
                .with_help("list at least one action, e.g. \"tool:call\""),
            );
        }
        parts.actions = self.patterns(&rule.actions, false);
        let mut once: Vec<(&'static str, Span)> = Vec::new();
        for c in &rule.clauses {
            let kw = c.keyword();
            if matches!(kw, "risk" | "limit" | "because" | "on") {
                if let Some((_, first)) = once.iter().find(|(k, _)| *k == kw) {
                    self.report(
                        Diagnostic::new(
                            Code::DuplicateSetting,
                            c.span,
                            format!("the rule has `{kw}` twice"),
                        )
                        .with_secondary(*first, "first given here")
                        .with_help("keep one"),
                    );
                    continue;
                }
                once.push((kw, c.span));
            }
            match &c.kind {
                ClauseKind::On { names: n, hosts } => {
                    if n.items.is_empty() {
                        self.report(
                            Diagnostic::new(
                                Code::EmptyList,
                                n.span,
                                "`on` lists no target: the rule never applies",
                            )
                            .with_help(
                                "list at least one target, or remove `on` to match any target",
                            ),
                        );
                        // In the IR no target means any target: a condition
                        // that never holds makes the rule never apply, as
                        // the warning says (writ-yaml does the same).
                        parts.conditions.push(Condition::Any(Vec::new()));
                    }
                    parts.targets = self.patterns(n, *hosts);
                }
                ClauseKind::For(principals) => {
                    for p in principals {
                        match p.kind.value {
                            PrincipalKind::Agents => {
                                parts.scope.agents.extend(self.names(&p.names))
                            }
                            PrincipalKind::Roles => parts.scope.roles.extend(self.names(&p.names)),
                            PrincipalKind::Tags => parts.scope.tags.extend(self.names(&p.names)),
                            PrincipalKind::Tiers => {
                                for t in &p.names.items {
                                    if let Some(t) =
                                        self.word(t, "trust tier", Tier::parse, &Tier::words())
                                    {
                                        parts.scope.tiers.push(t);
                                    }
                                }
                            }
                        }
                    }
                }
                ClauseKind::When(e) => parts.conditions.extend(self.expr(e)),
                ClauseKind::Risk(r) => {
                    parts.risk = self.word(r, "risk level", Risk::parse, &Risk::words());
                }
                ClauseKind::Limit {
                    count,
                    unit,
                    shared,
                } => {
                    parts.limit = self.rate(count, unit).map(|rate| {
                        Spanned::new(
                            RuleLimit {
                                rate,
                                shared: shared.is_some(),
                            },
                            c.span,
                        )
                    });
                }
                ClauseKind::Because(r) => parts.reason = Some(r.clone()),
                ClauseKind::Require {
                    field,
                    alternate,
                    values,
                    label,
                } => {
                    self.check_path(field);
                    if let Some(a) = alternate {
                        self.check_path(a);
                    }
                    let f = to_field(&field.value);
                    let name = label
                        .as_ref()
                        .map_or_else(|| default_constraint_name(&f), |l| l.value.clone());
                    if values.value.is_empty() {
                        self.report(
                            Diagnostic::new(
                                Code::EmptyList,
                                values.span,
                                "`require` lists no value: the rule always denies",
                            )
                            .with_help("list the values that are allowed"),
                        );
                    }
                    parts.constraints.push(Constraint {
                        name,
                        field: f,
                        alternate: alternate.as_ref().map(|a| to_field(&a.value)),
                        values: values.value.iter().map(lit_value).collect(),
                        span: c.span,
                    });
                }
                ClauseKind::Error => {}
            }
        }
        parts.build()
    }

    fn expr(&mut self, e: &Expr) -> Option<Condition> {
        match e {
            Expr::Compare { field, .. }
            | Expr::In { field, .. }
            | Expr::Matches { field, .. }
            | Expr::Contains { field, .. }
            | Expr::Exists { field, .. } => self.check_path(field),
            _ => {}
        }
        match e {
            Expr::Compare {
                field,
                op,
                value,
                span,
            } => {
                if op.is_ordering() && !matches!(value.kind, LitKind::Num(_)) {
                    self.report(
                        Diagnostic::new(
                            Code::InvalidOperand,
                            value.span,
                            format!(
                                "`{}` compares numbers, found {}",
                                op.symbol(),
                                lit_kind(value)
                            ),
                        )
                        .with_help("use `==`, `in` or `matches` for strings"),
                    );
                    return None;
                }
                Some(Condition::Compare {
                    field: to_field(&field.value),
                    op: *op,
                    value: lit_value(value),
                    span: *span,
                })
            }
            Expr::In {
                field,
                values,
                negated,
                span,
            } => Some(Condition::In {
                field: to_field(&field.value),
                values: values.value.iter().map(lit_value).collect(),
                negated: *negated,
                span: *span,
            }),
            Expr::Matches {
                field,
                pattern,
                span,
            } => self.pattern(pattern, false).map(|pattern| Condition::Glob {
                field: to_field(&field.value),
                pattern,
                span: *span,
            }),
            Expr::Contains { field, value, span } => Some(Condition::Contains {
                field: to_field(&field.value),
                value: lit_value(value),
                span: *span,
            }),
            Expr::Exists { field, span } => Some(Condition::Exists {
                field: to_field(&field.value),
                span: *span,
            }),
            Expr::Time { window, span } => match TimeWindow::parse(&window.value) {
                Ok(window) => Some(Condition::Time {
                    window,
                    span: *span,
                }),
                Err(msg) => {
                    self.report(
                        Diagnostic::new(Code::InvalidTime, window.span, format!("invalid time window: {msg}"))
                            .with_help("write a window as \"HH:MM-HH:MM\"; it may wrap midnight, e.g. \"22:00-06:00\""),
                    );
                    None
                }
            },
            Expr::Weekday { days, span } => {
                let mut set = WeekdaySet::default();
                let mut ok = true;
                for d in &days.value {
                    let text = match &d.kind {
                        LitKind::Str(s) | LitKind::Word(s) => s.as_str(),
                        _ => "",
                    };
                    match Weekday::parse(text) {
                        Some(day) => set.insert(day),
                        None => {
                            ok = false;
                            self.report(
                                Diagnostic::new(
                                    Code::InvalidWeekday,
                                    d.span,
                                    format!("`{}` is not a weekday", lit_text(d)),
                                )
                                .with_help(
                                    "use mon, tue, wed, thu, fri, sat, sun (or the full names)",
                                ),
                            );
                        }
                    }
                }
                ok.then_some(Condition::Weekdays {
                    days: set,
                    span: *span,
                })
            }
            Expr::Const(true, _) => Some(Condition::All(Vec::new())),
            Expr::Const(false, _) => Some(Condition::Any(Vec::new())),
            Expr::And(parts, _) => {
                let parts: Vec<Condition> = parts.iter().filter_map(|p| self.expr(p)).collect();
                Some(Condition::all(parts).unwrap_or(Condition::All(Vec::new())))
            }
            Expr::Or(parts, _) => {
                let parts: Vec<Condition> = parts.iter().filter_map(|p| self.expr(p)).collect();
                Some(Condition::any(parts).unwrap_or(Condition::Any(Vec::new())))
            }
            Expr::Not(inner, span) => self.expr(inner).map(|c| Condition::Not(Box::new(c), *span)),
        }
    }

    /// Reports a quoted path segment holding a `.`: `a.b` already means
    /// the key `b` inside `a`, as in YAML.
    fn check_path(&mut self, path: &Spanned<Vec<String>>) {
        if let Some(seg) = path.value.iter().find(|s| s.contains('.') || s.is_empty()) {
            self.report(
                Diagnostic::new(
                    Code::InvalidValue,
                    path.span,
                    format!("the field name \"{seg}\" cannot be empty or hold a `.`"),
                )
                .with_help(
                    "write nested keys as a dotted path without quotes, e.g. customer.email",
                ),
            );
        }
    }

    fn names(&mut self, n: &Names) -> Vec<Spanned<String>> {
        n.items.clone()
    }

    fn pattern(&mut self, s: &Spanned<String>, case_insensitive: bool) -> Option<Pattern> {
        let compiled = if case_insensitive {
            Pattern::new_case_insensitive(&s.value, s.span)
        } else {
            Pattern::new(&s.value, s.span)
        };
        match compiled {
            Ok(p) => Some(p),
            Err(e) => {
                self.report(e.diagnostic(&s.value, s.span, ""));
                None
            }
        }
    }

    fn patterns(&mut self, n: &Names, case_insensitive: bool) -> Vec<Pattern> {
        n.items
            .iter()
            .filter_map(|s| self.pattern(s, case_insensitive))
            .collect()
    }

    fn word<T>(
        &mut self,
        w: &Spanned<String>,
        what: &str,
        parse: fn(&str) -> Option<T>,
        words: &[&str],
    ) -> Option<Spanned<T>> {
        if let Some(v) = parse(&w.value) {
            return Some(Spanned::new(v, w.span));
        }
        self.report(writ_diagnostics::invalid_word(
            w.span, &w.value, what, words,
        ));
        None
    }

    /// A whole number of at least 1.
    fn whole(&mut self, n: &Spanned<f64>, what: &str) -> Option<Spanned<u32>> {
        let v = n.value;
        if v.fract() != 0.0 || !(1.0..=f64::from(u32::MAX)).contains(&v) {
            self.report(
                Diagnostic::new(
                    Code::InvalidNumber,
                    n.span,
                    format!("{what} must be a whole number of at least 1, found `{v}`"),
                )
                .with_help("write a whole number such as `3`"),
            );
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked whole and in range above"
        )]
        Some(Spanned::new(v as u32, n.span))
    }

    fn rate(&mut self, count: &Spanned<f64>, unit: &Spanned<String>) -> Option<Rate> {
        let n = count.value;
        if n.fract() != 0.0 || !(1.0..=1e15).contains(&n) {
            self.report(
                Diagnostic::new(Code::InvalidNumber, count.span, format!("a limit counts whole things; `{n}` is not a whole number of at least 1"))
                    .with_help("write a whole number such as `20`; to forbid something entirely, write a deny rule"),
            );
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "`n` is a whole, positive count checked above"
        )]
        let whole = n as u64;
        match Rate::parse(&format!("{whole}/{}", unit.value)) {
            Ok(r) => Some(r),
            Err(msg) => {
                let units = ["second", "minute", "hour", "day"];
                let help = did_you_mean(&unit.value, units.iter().copied()).map_or_else(
                    || "use second, minute, hour or day".to_owned(),
                    |u| format!("did you mean `{u}`?"),
                );
                self.report(
                    Diagnostic::new(Code::InvalidRate, unit.span, format!("invalid rate: {msg}"))
                        .with_help(help),
                );
                None
            }
        }
    }

    fn timezone(&mut self, s: &Spanned<String>) -> Option<Spanned<Timezone>> {
        if let Some(tz) = Timezone::get(&s.value) {
            return Some(Spanned::new(tz, s.span));
        }
        let help = Timezone::suggestion(&s.value);
        self.report(
            Diagnostic::new(
                Code::UnknownTimezone,
                s.span,
                format!("unknown time zone \"{}\"", s.value),
            )
            .with_help(help),
        );
        None
    }
}

/// `target` alone is the request's target; anything else reads the context.
#[must_use]
pub fn to_field(path: &[String]) -> Field {
    match path {
        [only] if only == "target" => Field::Target,
        _ => Field::Context(Path(path.to_vec())),
    }
}

/// The name a `require` clause gets without `as`: `allowed_<field>`, and
/// `allowed_targets` for the target (the YAML schema's key).
#[must_use]
pub fn default_constraint_name(field: &Field) -> String {
    match field {
        Field::Target => "allowed_targets".to_owned(),
        Field::Context(p) => format!("allowed_{p}"),
    }
}

fn lit_value(l: &Lit) -> Value {
    match &l.kind {
        LitKind::Str(s) | LitKind::Word(s) => Value::String(s.clone()),
        LitKind::Num(n) => Value::Number(*n),
        LitKind::Bool(b) => Value::Bool(*b),
        LitKind::Null => Value::Null,
        LitKind::List(items) => Value::List(items.iter().map(lit_value).collect()),
    }
}

fn lit_kind(l: &Lit) -> &'static str {
    match &l.kind {
        LitKind::Str(_) | LitKind::Word(_) => "a string",
        LitKind::Num(_) => "a number",
        LitKind::Bool(_) => "a boolean",
        LitKind::Null => "null",
        LitKind::List(_) => "a list",
    }
}

fn lit_text(l: &Lit) -> String {
    match &l.kind {
        LitKind::Str(s) | LitKind::Word(s) => s.clone(),
        other => lit_value(&Lit {
            kind: other.clone(),
            span: l.span,
        })
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use writ_diagnostics::{Code, FileId};
    use writ_ir::Condition;

    /// `on []` is warned as never applying, and it never does: in the IR no
    /// target means any target, so the rule gets a condition that never
    /// holds (the YAML front ends do the same for `targets: []`).
    #[test]
    fn on_an_empty_list_never_applies() {
        let (file, diags) = super::super::read(
            FileId(0),
            "rule t: allow \"tool:call\" on []\nrule u: allow \"tool:call\" on [a]\n",
            "t",
        );
        let codes: Vec<Code> = diags.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::EmptyList]);
        let conditions: Vec<Option<&Condition>> =
            file.rules.iter().map(|r| r.condition.as_ref()).collect();
        assert_eq!(conditions, [Some(&Condition::Any(Vec::new())), None]);
    }
}
