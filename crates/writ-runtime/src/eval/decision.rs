//! A decision and its reason, as the runtime hands them out: the reason
//! is rendered only when asked for.

use super::*;

/// A decision's reason, rendered only when asked for (so that deciding
/// does not allocate).
#[derive(Clone, Debug, PartialEq)]
pub enum Reason<'b> {
    None,
    /// A reason template from the bundle: `{action}`, `{target}` and
    /// `{agent}` are filled in from the request.
    Template(&'b str),
    /// The default decision's sentence naming the action.
    NoRule,
    Text(String),
    /// A limit is full; its sentence names the request's agent.
    Limit(super::limits::FullLimit<'b>),
}

/// The answer to a request. Borrowed names point into the runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision<'b> {
    pub effect: Effect,
    pub rule: Option<&'b str>,
    pub policy: Option<&'b str>,
    pub reason: Reason<'b>,
    pub risk: Option<Risk>,
    pub retry_after_s: Option<u64>,
    /// When the decision was made: the clock the runtime read (or was
    /// given, with `check_at`), in Unix milliseconds — not the request's
    /// `at`. What the audit log records.
    pub time_ms: i64,
    pub(super) default_effect: Effect,
    /// No rule, agent list, limit or chain check decided: the default did.
    pub(super) defaulted: bool,
}

impl Decision<'_> {
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// True when the policy's default decided: no rule applied to the
    /// request (rules whose scope left the agent out do not apply, though
    /// the reason names them), and no agent list, limit or chain check
    /// refused it. An adapter asking several forms of one action (writ's
    /// `agent:delegate`, MeshGuard's `handoff:<name>`) uses it to tell a
    /// form the policy says nothing about from one it decides.
    #[must_use]
    pub fn is_default(&self) -> bool {
        self.defaulted
    }

    /// The reason as text, for the request the decision was made for.
    #[must_use]
    pub fn reason_text(&self, req: &crate::request::Request) -> Option<Cow<'_, str>> {
        match &self.reason {
            Reason::None => None,
            Reason::Template(t) => Some(expand(t, req)),
            Reason::NoRule => Some(Cow::Owned(crate::reason::no_rule(
                &req.action,
                &req.agent,
                None,
                self.default_effect,
            ))),
            Reason::Text(s) => Some(Cow::Borrowed(s.as_str())),
            Reason::Limit(l) => Some(Cow::Owned(l.sentence(&req.agent))),
        }
    }

    /// The decision as one line of JSON, the same shape as `writ eval`.
    #[must_use]
    pub fn to_json(&self, req: &crate::request::Request) -> String {
        self.to_json_with_reason(self.reason_text(req).as_deref())
    }

    /// [`Decision::to_json`] with the reason already made
    /// ([`Decision::reason_text`] for the same request), for a caller
    /// that needs it elsewhere too.
    #[must_use]
    pub fn to_json_with_reason(&self, reason: Option<&str>) -> String {
        fn field(out: &mut String, name: &str, v: Option<&str>) {
            out.push_str(",\"");
            out.push_str(name);
            out.push_str("\":");
            match v {
                Some(s) => crate::json_text::push_str(out, s),
                None => out.push_str("null"),
            }
        }
        let mut out = String::with_capacity(
            112 + self.rule.map_or(0, str::len)
                + self.policy.map_or(0, str::len)
                + reason.map_or(0, str::len),
        );
        out.push_str("{\"decision\":\"");
        out.push_str(self.effect.as_str());
        out.push('"');
        field(&mut out, "rule", self.rule);
        field(&mut out, "policy", self.policy);
        field(&mut out, "reason", reason);
        field(&mut out, "risk", self.risk.map(Risk::as_str));
        match self.retry_after_s {
            Some(s) => {
                use std::fmt::Write as _;
                let _ = write!(out, ",\"retry_after_s\":{s}}}");
            }
            None => out.push_str(",\"retry_after_s\":null}"),
        }
        out
    }
}

pub(super) fn expand<'a>(template: &'a str, req: &crate::request::Request) -> Cow<'a, str> {
    if !template.contains('{') {
        return Cow::Borrowed(template);
    }
    Cow::Owned(
        template
            .replace("{action}", &req.action)
            .replace("{target}", req.target.as_deref().unwrap_or(""))
            .replace("{agent}", &req.agent),
    )
}
