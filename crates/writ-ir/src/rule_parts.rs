//! Building IR rules from the parts each front end reads.

use crate::{
    Condition, Constraint, Effect, Pattern, PolicyId, Risk, Rule, RuleId, RuleLimit, Scope, Spanned,
};
use writ_diagnostics::Span;

/// The parts of a rule; [`RuleParts::build`] fills in the generated name.
#[derive(Debug)]
pub struct RuleParts {
    pub name: Option<Spanned<String>>,
    pub effect: Spanned<Effect>,
    pub risk: Option<Spanned<Risk>>,
    pub actions: Vec<Pattern>,
    pub targets: Vec<Pattern>,
    pub scope: Scope,
    pub conditions: Vec<Condition>,
    pub constraints: Vec<Constraint>,
    pub limit: Option<Spanned<RuleLimit>>,
    pub reason: Option<Spanned<String>>,
    pub span: Span,
}

impl RuleParts {
    #[must_use]
    pub fn new(effect: Spanned<Effect>, span: Span) -> Self {
        RuleParts {
            name: None,
            effect,
            risk: None,
            actions: Vec::new(),
            targets: Vec::new(),
            scope: Scope::default(),
            conditions: Vec::new(),
            constraints: Vec::new(),
            limit: None,
            reason: None,
            span,
        }
    }

    #[must_use]
    pub fn build(self) -> Rule {
        let (name, generated_name) = match self.name {
            Some(n) => (n, false),
            None => (
                Spanned::new(
                    generated_rule_name(
                        self.effect.value,
                        self.actions.first().map(Pattern::as_str),
                    ),
                    self.span,
                ),
                true,
            ),
        };
        Rule {
            id: RuleId(0),
            name,
            generated_name,
            policy: PolicyId(0),
            effect: self.effect,
            risk: self.risk,
            actions: self.actions,
            targets: self.targets,
            scope: self.scope,
            condition: Condition::all(self.conditions),
            constraints: self.constraints,
            limit: self.limit,
            reason: self.reason,
            span: self.span,
        }
    }
}

/// The name writ gives a rule its author did not name: the effect and a
/// slug of the first action (`allow_write_refund`).
#[must_use]
pub fn generated_rule_name(effect: Effect, first_action: Option<&str>) -> String {
    let action = first_action.unwrap_or("any");
    let mut slug = String::new();
    for ch in action.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_');
    let slug = if slug.is_empty() { "any" } else { slug };
    format!("{effect}_{slug}")
}
