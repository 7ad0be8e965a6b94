//! A request, the question an agent asks before it acts, and what makes
//! one well formed ([`Request::validate`]): checked in one place, by the
//! JSON reader ([`Request::from_json`], feature `json`) and by bindings
//! that build requests field by field (the Python package), so a malformed
//! request is refused with the same sentence wherever it comes from.

use std::collections::BTreeMap;

use crate::Value;

/// One question: may `agent` take `action` on `target` now?
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Request {
    pub agent: String,
    pub roles: Vec<String>,
    pub tags: Vec<String>,
    /// The agent's trust tier, when the caller knows it (a gateway that
    /// verified the agent's token, say). A tier the policy declares for
    /// the agent wins over it.
    pub tier: Option<crate::Tier>,
    pub token: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub context: BTreeMap<String, Value>,
    /// `None`: now.
    pub at: Option<jiff::Timestamp>,
    pub tokens: u64,
    /// The delegation chain, outermost first, ending with `agent`.
    pub chain: Vec<String>,
    /// The caller's id for the run this request belongs to: recorded in
    /// the audit log, never used to decide.
    pub trace_id: Option<String>,
}

impl Request {
    #[must_use]
    pub fn new(agent: &str, action: &str) -> Request {
        Request {
            agent: agent.to_owned(),
            action: action.to_owned(),
            ..Request::default()
        }
    }
}

/// A malformed request; the message is lowercase and names the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError {
    pub message: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RequestError {}

/// A request's `tier` as written (the JSON field, the Python keyword):
/// one of the four tiers' names, or an error saying which they are.
///
/// # Errors
/// When `text` names no tier.
pub fn parse_tier(text: &str) -> Result<crate::Tier, RequestError> {
    crate::Tier::parse(text).ok_or_else(|| {
        RequestError::new(format!(
            "`tier` `{text}` is not a tier: use `untrusted`, `verified`, `trusted` or `privileged`"
        ))
    })
}

impl RequestError {
    pub(crate) fn new(message: impl Into<String>) -> RequestError {
        RequestError {
            message: message.into(),
        }
    }
}

impl Request {
    /// Checks that the request is well formed: `agent` and `action` are not
    /// empty (nor only spaces), no agent of `chain` is, and a `chain` ends
    /// with `agent` (the last agent of a chain is the one acting).
    ///
    /// # Errors
    /// The first problem found, naming the field.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.chain.iter().any(|a| a.trim().is_empty()) {
            return Err(RequestError::new("`chain` must not hold an empty agent id"));
        }
        if let Some(last) = self.chain.last()
            && *last != self.agent
        {
            return Err(RequestError::new(format!(
                "`agent` is `{}` but the chain ends with `{last}`; the last agent of `chain` is the one acting",
                self.agent
            )));
        }
        if self.agent.trim().is_empty() {
            return Err(RequestError::new("`agent` must not be empty"));
        }
        if self.action.trim().is_empty() {
            return Err(RequestError::new("`action` must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_requests_are_named() {
        let ok = Request::new("a", "tool:call");
        assert_eq!(ok.validate(), Ok(()));
        let msg = |r: Request| r.validate().err().map(|e| e.message);
        assert_eq!(
            msg(Request::new(" ", "x")).as_deref(),
            Some("`agent` must not be empty")
        );
        assert_eq!(
            msg(Request::new("a", "")).as_deref(),
            Some("`action` must not be empty")
        );
        let mut chained = Request::new("b", "x");
        chained.chain = vec!["a".into(), "c".into()];
        assert!(msg(chained.clone()).is_some_and(|m| m.contains("ends with `c`")));
        chained.chain = vec!["".into(), "b".into()];
        assert!(msg(chained.clone()).is_some_and(|m| m.contains("empty agent id")));
        chained.chain = vec!["a".into(), "b".into()];
        assert_eq!(chained.validate(), Ok(()));
    }
}
