//! Moving spans: when an edit changes the length of the text before an
//! item, the item's IR (kept from the last analysis) is reused with every
//! span moved by the edit's length difference instead of being read again.

use writ_diagnostics::Span;

use crate::{
    AccessList, Agent, AgentLimit, Condition, Constraint, NamedList, Pattern, Rule, Scope, Spanned,
};

/// A node whose spans can be moved by a byte offset.
pub trait Shift {
    /// Moves every span in `self` by `delta` bytes (see [`Span::shifted`]).
    fn shift(&mut self, delta: i64);
}

impl Shift for Span {
    fn shift(&mut self, delta: i64) {
        *self = self.shifted(delta);
    }
}

impl<T: Shift> Shift for Option<T> {
    fn shift(&mut self, delta: i64) {
        if let Some(x) = self {
            x.shift(delta);
        }
    }
}

impl<T: Shift> Shift for Vec<T> {
    fn shift(&mut self, delta: i64) {
        for x in self {
            x.shift(delta);
        }
    }
}

/// Values under a [`Spanned`] in rules and agents carry no span of their
/// own: names, words, rates.
impl<T> Shift for Spanned<T> {
    fn shift(&mut self, delta: i64) {
        self.span.shift(delta);
    }
}

impl Shift for Pattern {
    fn shift(&mut self, delta: i64) {
        self.span.shift(delta);
    }
}

impl Shift for Condition {
    fn shift(&mut self, delta: i64) {
        match self {
            Condition::Compare { span, .. }
            | Condition::In { span, .. }
            | Condition::Contains { span, .. }
            | Condition::Exists { span, .. }
            | Condition::Time { span, .. }
            | Condition::Weekdays { span, .. } => span.shift(delta),
            Condition::Glob { pattern, span, .. } => {
                pattern.shift(delta);
                span.shift(delta);
            }
            Condition::All(parts) | Condition::Any(parts) => parts.shift(delta),
            Condition::Not(inner, span) => {
                inner.shift(delta);
                span.shift(delta);
            }
        }
    }
}

impl Shift for NamedList {
    fn shift(&mut self, delta: i64) {
        self.patterns.shift(delta);
        self.span.shift(delta);
    }
}

impl Shift for AccessList {
    fn shift(&mut self, delta: i64) {
        self.allow.shift(delta);
        self.block.shift(delta);
    }
}

impl Shift for AgentLimit {
    fn shift(&mut self, delta: i64) {
        self.actions.shift(delta);
        self.span.shift(delta);
    }
}

impl Shift for Agent {
    fn shift(&mut self, delta: i64) {
        let Agent {
            id: _,
            name,
            subject: _,
            policy: _,
            roles,
            tier,
            tags,
            token_prefix,
            models,
            tools,
            hosts,
            require_tls,
            limits,
            delegates,
            span,
        } = self;
        name.shift(delta);
        roles.shift(delta);
        tier.shift(delta);
        tags.shift(delta);
        token_prefix.shift(delta);
        models.shift(delta);
        tools.shift(delta);
        hosts.shift(delta);
        require_tls.shift(delta);
        limits.shift(delta);
        delegates.shift(delta);
        span.shift(delta);
    }
}

impl Shift for Scope {
    fn shift(&mut self, delta: i64) {
        let Scope {
            agents,
            roles,
            tiers,
            tags,
        } = self;
        agents.shift(delta);
        roles.shift(delta);
        tiers.shift(delta);
        tags.shift(delta);
    }
}

impl Shift for Constraint {
    fn shift(&mut self, delta: i64) {
        self.span.shift(delta);
    }
}

impl Shift for Rule {
    fn shift(&mut self, delta: i64) {
        // Destructured so that a new field with a span fails to compile here.
        let Rule {
            id: _,
            name,
            generated_name: _,
            policy: _,
            effect,
            risk,
            actions,
            targets,
            scope,
            condition,
            constraints,
            limit,
            reason,
            span,
        } = self;
        name.shift(delta);
        effect.shift(delta);
        risk.shift(delta);
        actions.shift(delta);
        targets.shift(delta);
        scope.shift(delta);
        condition.shift(delta);
        constraints.shift(delta);
        limit.shift(delta);
        reason.shift(delta);
        span.shift(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_diagnostics::FileId;

    #[test]
    fn spans_move_and_saturate() {
        let s = Span::new(FileId(0), 10, 14);
        assert_eq!(s.shifted(5), Span::new(FileId(0), 15, 19));
        assert_eq!(s.shifted(-10), Span::new(FileId(0), 0, 4));
        assert_eq!(s.shifted(-12), Span::new(FileId(0), 0, 2));
    }
}
