//! Decisions out, with their JSON form (the CLI contract). Requests are
//! the runtime's (`writ_runtime::Request`, read from JSON by
//! `Request::from_json`): one request type for both engines.

use serde::Serialize;
use writ_ir::{Effect, Risk};

/// The answer to a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub effect: Effect,
    pub rule: Option<String>,
    pub policy: Option<String>,
    pub reason: Option<String>,
    pub risk: Option<Risk>,
    pub retry_after_s: Option<u64>,
}

#[derive(Serialize)]
struct WireDecision<'a> {
    decision: &'static str,
    rule: Option<&'a str>,
    policy: Option<&'a str>,
    reason: Option<&'a str>,
    risk: Option<&'static str>,
    retry_after_s: Option<u64>,
}

impl Decision {
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// The JSON object the CLI prints, one line.
    #[must_use]
    pub fn to_json(&self) -> String {
        let wire = WireDecision {
            decision: self.effect.as_str(),
            rule: self.rule.as_deref(),
            policy: self.policy.as_deref(),
            reason: self.reason.as_deref(),
            risk: self.risk.map(Risk::as_str),
            retry_after_s: self.retry_after_s,
        };
        // Serializing plain strings and numbers cannot fail; fall back to a
        // deny rather than ever printing nothing.
        serde_json::to_string(&wire)
            .unwrap_or_else(|_| r#"{"decision":"deny","reason":"internal error"}"#.to_owned())
    }
}
