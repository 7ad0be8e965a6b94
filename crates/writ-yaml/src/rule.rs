//! Building IR rules from the parts each dialect reads.

use writ_diagnostics::Span;
use writ_ir::{
    Condition, Constraint, Effect, Pattern, PolicyId, Rate, Risk, Rule, RuleId, Scope, Spanned,
};

use crate::cx::generated_rule_name;

/// The parts of a rule; [`RuleParts::build`] fills in the generated name.
pub(crate) struct RuleParts {
    pub name: Option<Spanned<String>>,
    pub effect: Spanned<Effect>,
    pub risk: Option<Spanned<Risk>>,
    pub actions: Vec<Pattern>,
    pub targets: Vec<Pattern>,
    pub scope: Scope,
    pub conditions: Vec<Condition>,
    pub constraints: Vec<Constraint>,
    pub limit: Option<Spanned<Rate>>,
    pub reason: Option<Spanned<String>>,
    pub span: Span,
}

impl RuleParts {
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
