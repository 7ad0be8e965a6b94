//! Requests in their JSON form (feature `json`): the one reader of the
//! request JSON that the CLI, `writ test` files and every test use, so
//! that a request means the same wherever it is written.

use serde::Deserialize;

use crate::Value;
use crate::request::{Request, RequestError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRequest {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    token: Option<String>,
    action: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    context: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    tokens: Option<u64>,
    #[serde(default)]
    chain: Vec<String>,
    #[serde(default)]
    trace_id: Option<String>,
}

fn to_value(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, Value::Number),
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(a) => Value::List(a.into_iter().map(to_value).collect()),
        serde_json::Value::Object(o) => {
            Value::Map(o.into_iter().map(|(k, v)| (k, to_value(v))).collect())
        }
    }
}

impl Request {
    /// Parses the JSON form: `{"agent", "action"}` required; `roles`, `tags`,
    /// `tier`, `token`, `target`, `context`, `at` (RFC 3339), `tokens`, `chain`,
    /// `trace_id` optional. With a `chain` (outermost agent first), `agent` may be left
    /// out: the chain's last element acts; when both are given, `agent` must
    /// be that last element. Unknown fields are errors, so a misspelt
    /// `contxt` is not silently dropped.
    ///
    /// # Errors
    /// When the text is not JSON, a field has the wrong type or is unknown,
    /// a required field is missing or empty, or `at` is not an RFC 3339 time.
    pub fn from_json(text: &str) -> Result<Request, RequestError> {
        let wire: WireRequest = serde_json::from_str(text).map_err(|e| RequestError {
            message: clean_serde(&e),
        })?;
        let agent = match (wire.agent, wire.chain.last()) {
            (Some(a), _) => a,
            (None, Some(last)) => last.clone(),
            (None, None) => {
                return Err(RequestError::new(
                    "malformed request: missing request field `agent`",
                ));
            }
        };
        let at = match wire.at {
            None => None,
            Some(s) => Some(s.parse::<jiff::Timestamp>().map_err(|e| RequestError {
                message: format!(
                    "`at` is not an RFC 3339 time (`{s}`): {e}; write e.g. `2025-01-15T10:23:01Z`"
                ),
            })?),
        };
        let tier = match wire.tier {
            None => None,
            Some(t) => Some(crate::Tier::parse(&t).ok_or_else(|| {
                RequestError::new(format!(
                    "`tier` `{t}` is not a tier: use `untrusted`, `verified`, `trusted` or `privileged`"
                ))
            })?),
        };
        let req = Request {
            agent,
            roles: wire.roles,
            tags: wire.tags,
            tier,
            token: wire.token,
            action: wire.action,
            target: wire.target,
            context: wire
                .context
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, to_value(v)))
                .collect(),
            at,
            tokens: wire.tokens.unwrap_or(0),
            chain: wire.chain,
            trace_id: wire.trace_id,
        };
        req.validate()?;
        Ok(req)
    }
}

fn clean_serde(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg
        .replace("unknown field", "unknown request field")
        .replace("missing field", "missing request field");
    format!("malformed request: {msg}")
}
