//! The lowering context: typed readers over the YAML tree that report every
//! problem as a diagnostic and keep going.
//!
//! Each reader returns `None` (or an empty list) after reporting, so one bad
//! value never stops the file: the author sees every error of a file at once.

use writ_diagnostics::{Code, Diagnostic};
use writ_ir::{
    AgentLimit, Metric, Pattern, Rate, RateUnit, RuleParts, Spanned, TimeWindow, Timezone, Value,
};

use crate::tree::{Key, Kind, Node};

pub(crate) struct Cx<'a> {
    pub source: &'a str,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Cx<'a> {
    pub fn new(source: &'a str) -> Self {
        Cx {
            source,
            diags: Vec::new(),
        }
    }

    pub fn report(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        self.report(
            Diagnostic::new(
                Code::WrongType,
                node.span,
                format!("{what} must be {expected}, found {}", node.type_name()),
            )
            .with_label_message(format!("expected {expected}")),
        );
    }

    /// The entries of a mapping whose keys are in `known`; every other key
    /// is reported (E0103) with the closest known key as a suggestion.
    pub fn map<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&str],
    ) -> Vec<(&'n Key, &'n Node)> {
        let Some(entries) = node.as_map() else {
            if node.kind != Kind::Null {
                self.wrong_type(node, what, "a mapping");
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            if known.contains(&k.text.as_str()) {
                out.push((k, v));
            } else {
                self.unknown_key(k, what, known);
            }
        }
        out
    }

    pub fn unknown_key(&mut self, key: &Key, what: &str, known: &[&str]) {
        let help =
            writ_diagnostics::did_you_mean_or_list(&key.text, known, "the keys allowed here are:");
        self.report(
            Diagnostic::new(
                Code::UnknownKey,
                key.span,
                format!("unknown key `{}` in {what}", key.text),
            )
            .with_label_message("not a key of this section")
            .with_help(help),
        );
    }

    /// Reports a missing key at the start of the mapping that lacks it.
    pub fn missing(&mut self, node: &Node, key: &str, what: &str) {
        let span = first_key_span(node);
        self.report(
            Diagnostic::new(Code::MissingKey, span, format!("{what} needs `{key}`"))
                .with_label_message(format!("`{key}` is missing")),
        );
    }

    /// A scalar read as text (`1.0` stays `1.0`).
    pub fn string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        match &node.kind {
            Kind::Str(_) | Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => node
                .scalar_text(self.source)
                .map(|t| Spanned::new(t, node.span)),
            _ => {
                self.wrong_type(node, what, "a string");
                None
            }
        }
    }

    /// A list of scalars, or one scalar standing for a list of one.
    pub fn strings(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        match &node.kind {
            Kind::Seq(items) => items.iter().filter_map(|i| self.string(i, what)).collect(),
            Kind::Null => Vec::new(),
            _ => self.string(node, what).into_iter().collect(),
        }
    }

    pub fn pattern(
        &mut self,
        s: &Spanned<String>,
        what: &str,
        case_insensitive: bool,
    ) -> Option<Pattern> {
        let compiled = if case_insensitive {
            Pattern::new_case_insensitive(&s.value, s.span)
        } else {
            Pattern::new(&s.value, s.span)
        };
        match compiled {
            Ok(p) => Some(p),
            Err(e) => {
                self.report(e.diagnostic(&s.value, s.span, what));
                None
            }
        }
    }

    pub fn patterns(&mut self, node: &Node, what: &str, case_insensitive: bool) -> Vec<Pattern> {
        let items = self.strings(node, what);
        items
            .iter()
            .filter_map(|s| self.pattern(s, what, case_insensitive))
            .collect()
    }

    /// One word of a closed set (effects, risk levels, tiers, ...).
    pub fn word<T>(
        &mut self,
        node: &Node,
        what: &str,
        parse: fn(&str) -> Option<T>,
        words: &[&str],
    ) -> Option<Spanned<T>> {
        let s = self.string(node, what)?;
        if let Some(v) = parse(&s.value) {
            return Some(Spanned::new(v, s.span));
        }
        self.report(writ_diagnostics::invalid_word(
            s.span, &s.value, what, words,
        ));
        None
    }

    pub fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        match &node.kind {
            Kind::Int(i) => Some(*i as f64),
            Kind::Float(f) if f.is_finite() => Some(*f),
            Kind::Str(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Some(f),
                _ => {
                    self.report(Diagnostic::new(
                        Code::InvalidNumber,
                        node.span,
                        format!("{what} must be a number, found `{s}`"),
                    ));
                    None
                }
            },
            _ => {
                self.wrong_type(node, what, "a number");
                None
            }
        }
    }

    /// A whole number ≥ 1.
    pub fn count(&mut self, node: &Node, what: &str) -> Option<u64> {
        let n = self.number(node, what)?;
        if n >= 1.0 && n.fract() == 0.0 && n <= 1e15 {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked whole and in range above"
            )]
            Some(n as u64)
        } else {
            self.report(
                Diagnostic::new(
                    Code::InvalidNumber,
                    node.span,
                    format!("{what} must be a whole number of at least 1, found `{n}`"),
                )
                .with_help("to forbid something entirely, write a deny rule"),
            );
            None
        }
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<Spanned<bool>> {
        match node.kind {
            Kind::Bool(b) => Some(Spanned::new(b, node.span)),
            _ => {
                self.wrong_type(node, what, "`true` or `false`");
                None
            }
        }
    }

    pub fn rate(&mut self, node: &Node, what: &str) -> Option<Spanned<Rate>> {
        let s = self.string(node, what)?;
        match Rate::parse(&s.value) {
            Ok(r) => Some(Spanned::new(r, s.span)),
            Err(msg) => {
                self.report(
                    Diagnostic::new(Code::InvalidRate, s.span, format!("invalid {what}: {msg}"))
                        .with_help("write the rate as `N/unit` with unit second, minute, hour or day, e.g. `30/hour`"),
                );
                None
            }
        }
    }

    pub fn time_window(&mut self, node: &Node, what: &str) -> Option<TimeWindow> {
        let s = self.string(node, what)?;
        match TimeWindow::parse(&s.value) {
            Ok(w) => Some(w),
            Err(msg) => {
                self.report(
                    Diagnostic::new(Code::InvalidTime, s.span, format!("invalid {what}: {msg}"))
                        .with_help("write a window as `HH:MM-HH:MM`; it may wrap midnight, e.g. `22:00-06:00`"),
                );
                None
            }
        }
    }

    pub fn timezone(&mut self, node: &Node) -> Option<Spanned<Timezone>> {
        let s = self.string(node, "time zone")?;
        match Timezone::get(&s.value) {
            Some(tz) => Some(Spanned::new(tz, s.span)),
            None => {
                let help = Timezone::suggestion(&s.value);
                self.report(
                    Diagnostic::new(
                        Code::UnknownTimezone,
                        s.span,
                        format!("unknown time zone `{}`", s.value),
                    )
                    .with_help(help),
                );
                None
            }
        }
    }

    /// A literal value as written.
    pub fn value(&mut self, node: &Node) -> Value {
        match &node.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::Number(*i as f64),
            Kind::Float(f) => Value::Number(*f),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::List(items.iter().map(|i| self.value(i)).collect()),
            Kind::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.text.clone(), self.value(v)))
                    .collect(),
            ),
        }
    }

    pub fn values(&mut self, node: &Node) -> Vec<Value> {
        match &node.kind {
            Kind::Seq(items) => items.iter().map(|i| self.value(i)).collect(),
            _ => vec![self.value(node)],
        }
    }

    /// The value of a key that decides what a rule covers (its actions,
    /// targets or principals), or `None` after reporting (E0104) a key
    /// written without a value (`action:` or `action: null`). Read as an
    /// empty list, such a key would change the rule without a word: no
    /// action makes it never apply (a deny rule that does nothing), no
    /// target or principal makes it cover every one.
    pub fn coverage<'n>(
        &mut self,
        node: &'n Node,
        key: &str,
        expected: &str,
        help: &str,
    ) -> Option<&'n Node> {
        if node.kind != Kind::Null {
            return Some(node);
        }
        self.report(
            Diagnostic::new(
                Code::WrongType,
                node.span,
                format!("`{key}` must be {expected}, found null"),
            )
            .with_label_message(format!("`{key}` has no value"))
            .with_help(help.to_owned()),
        );
        None
    }

    /// Warns that an empty condition always holds (W0107): written where a
    /// condition was meant, it makes its rule apply whatever the request.
    pub fn warn_always_holds(&mut self, node: &Node, what: &str) {
        self.report(
            Diagnostic::new(
                Code::EmptyCondition,
                node.span,
                format!("{what} is empty: it always holds"),
            )
            .with_label_message("no condition here")
            .with_help("write the condition the rule needs, or remove the key if the rule is meant to apply to every request"),
        );
    }

    /// Warns that an empty list can never match (W0102).
    pub fn warn_if_empty(&mut self, node: &Node, what: &str, consequence: &str) {
        if matches!(&node.kind, Kind::Seq(items) if items.is_empty()) {
            self.report(
                Diagnostic::new(
                    Code::EmptyList,
                    node.span,
                    format!("{what} is an empty list: {consequence}"),
                )
                .with_help("list at least one entry, or remove the key"),
            );
        }
    }
}

/// Where to point for a problem with a whole mapping: its first key.
pub(crate) fn first_key_span(node: &Node) -> writ_diagnostics::Span {
    node.as_map()
        .and_then(|m| m.first())
        .map_or(node.span, |(k, _)| k.span)
}

/// Reports a rule that has neither `action` nor `actions`.
pub(crate) fn missing_action(cx: &mut Cx<'_>, node: &Node, what: &str) {
    cx.report(
        Diagnostic::new(
            Code::MissingKey,
            first_key_span(node),
            format!("{what} needs `action` or `actions`"),
        )
        .with_help("add `action: \"*\"` to match every action"),
    );
}

/// What [`Cx::coverage`] says of a rule's actions, targets and principals
/// without a value: what is expected, and the help.
pub(crate) const ACTIONS: (&str, &str) = (
    "an action pattern or a list of them",
    "list the actions the rule is for, such as `\"delete:*\"`, or `\"*\"` for every action",
);
pub(crate) const TARGETS: (&str, &str) = (
    "a target pattern or a list of them",
    "list the targets the rule is for, or remove the key to match every target",
);
pub(crate) const PRINCIPALS: (&str, &str) = (
    "a name or a list of names",
    "name whom the rule is for, or remove the key to cover every agent",
);

/// A rule's `action` or `actions` (writ's schema and MeshGuard): one
/// pattern or a list; null is an error, an empty list a warning.
pub(crate) fn rule_actions(cx: &mut Cx<'_>, key: &Key, node: &Node, parts: &mut RuleParts) {
    let (expected, help) = ACTIONS;
    let Some(node) = cx.coverage(node, &key.text, expected, help) else {
        return;
    };
    cx.warn_if_empty(node, "`actions`", "this rule never applies");
    parts.actions.extend(cx.patterns(node, "an action", false));
}

/// Makes a rule whose target list was written empty (`targets: []`, an
/// empty Sekuire list) never apply, as W0102 says it does. In the IR no
/// target means any target, so the rule gets a condition that never holds
/// (an empty `any`); the writ language does the same for `on []`.
pub(crate) fn no_target(parts: &mut RuleParts) {
    parts.conditions.push(writ_ir::Condition::Any(Vec::new()));
}

/// Lowers each item of a top-level `rules:` list with `rule`.
pub(crate) fn rule_list(
    cx: &mut Cx<'_>,
    root: &Node,
    mut rule: impl FnMut(&mut Cx<'_>, &Node) -> Option<writ_ir::Rule>,
) -> Vec<writ_ir::Rule> {
    let Some(rules) = root.get("rules") else {
        return Vec::new();
    };
    match &rules.kind {
        Kind::Seq(items) => items.iter().filter_map(|item| rule(cx, item)).collect(),
        Kind::Null => Vec::new(),
        _ => {
            cx.wrong_type(rules, "`rules`", "a list of rules");
            Vec::new()
        }
    }
}

/// The keys of a `rate_limits` map (MeshGuard's agents, Sekuire's
/// `rate_limits.per_agent`).
pub(crate) const LIMIT_KEYS: &[&str] = &[
    "requests_per_second",
    "requests_per_minute",
    "requests_per_hour",
    "requests_per_day",
    "tokens_per_second",
    "tokens_per_minute",
    "tokens_per_hour",
    "tokens_per_day",
];

/// `requests_per_<unit>` / `tokens_per_<unit>` counts (MeshGuard and
/// Sekuire): agent limits, on `actions` when given.
pub(crate) fn rate_limits(cx: &mut Cx<'_>, node: &Node, actions: Option<&str>) -> Vec<AgentLimit> {
    let mut limits = Vec::new();
    for (k, v) in cx.map(node, "`rate_limits`", LIMIT_KEYS) {
        let Some((metric, unit)) = k.text.split_once("_per_") else {
            continue;
        };
        let metric = if metric == "tokens" {
            Metric::Tokens
        } else {
            Metric::Requests
        };
        let Some(unit) = RateUnit::parse(unit) else {
            continue;
        };
        let Some(count) = cx.count(v, &format!("`{}`", k.text)) else {
            continue;
        };
        let actions = actions
            .and_then(|a| cx.pattern(&Spanned::new(a.to_owned(), k.span), "limit actions", false));
        limits.push(AgentLimit {
            key: k.text.clone(),
            metric,
            rate: Rate { count, unit },
            actions,
            span: k.span.cover(v.span),
        });
    }
    limits
}

#[cfg(test)]
mod tests {
    use writ_ir::Effect;
    use writ_ir::generated_rule_name;

    #[test]
    fn generated_names_are_readable_slugs() {
        assert_eq!(
            generated_rule_name(Effect::Allow, Some("write:refund")),
            "allow_write_refund"
        );
        assert_eq!(generated_rule_name(Effect::Deny, Some("*")), "deny_any");
        assert_eq!(
            generated_rule_name(Effect::Allow, Some("handoff:Billing Specialist")),
            "allow_handoff_billing_specialist"
        );
    }
}
