//! Requests in their JSON form (feature `json`): the one reader of the
//! request JSON that the CLI, `writ test` files and every test use, so
//! that a request means the same wherever it is written.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

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
    context: Option<WireMap>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    tokens: Option<u64>,
    #[serde(default)]
    chain: Vec<String>,
    #[serde(default)]
    trace_id: Option<String>,
}

/// A JSON object read straight into the runtime's values (no
/// `serde_json::Value` in between): numbers become `f64` as
/// `serde_json::Number::as_f64` makes them, and a repeated key keeps its
/// last value, as `serde_json::Map` does. serde_json's nesting limit
/// still applies: it is the deserializer's.
struct WireMap(BTreeMap<String, Value>);

/// One JSON value as a runtime value.
struct WireValue(Value);

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "as serde_json::Number::as_f64 converts"
    )]
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "as serde_json::Number::as_f64 converts"
    )]
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        WireValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(WireValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        MapVisitor.visit_map(map).map(Value::Map)
    }
}

struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = BTreeMap<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((k, WireValue(v))) = map.next_entry::<String, WireValue>()? {
            out.insert(k, v);
        }
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for WireValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WireValue, D::Error> {
        d.deserialize_any(ValueVisitor).map(WireValue)
    }
}

impl<'de> Deserialize<'de> for WireMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WireMap, D::Error> {
        d.deserialize_map(MapVisitor).map(WireMap)
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
            Some(t) => Some(crate::request::parse_tier(&t)?),
        };
        let req = Request {
            agent,
            roles: wire.roles,
            tags: wire.tags,
            tier,
            token: wire.token,
            action: wire.action,
            target: wire.target,
            context: wire.context.map(|m| m.0).unwrap_or_default(),
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

#[cfg(test)]
mod wire_tests {
    use super::*;

    /// The context as it was read before `WireMap`: through
    /// `serde_json::Value`.
    fn through_serde_value(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, Value::Number),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => {
                Value::List(a.into_iter().map(through_serde_value).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.into_iter()
                    .map(|(k, v)| (k, through_serde_value(v)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn the_context_reads_as_serde_json_values_would() {
        let contexts = [
            r#"{}"#,
            r#"{"a":1,"b":-2,"c":1.5,"d":1e308,"e":-0.0,"f":18446744073709551615,"g":-9223372036854775808}"#,
            r#"{"s":"x\"y\\z\u00e9\ud83d\ude00","n":null,"t":true,"u":false}"#,
            r#"{"a.b":{"c":[1,[2,{"d":null}],"e"]},"":""}"#,
            r#"{"k":1,"k":2,"k":{"x":3}}"#,
            r#"{"big":123456789012345678901234567890,"tiny":5e-324,"exp":2E+3}"#,
            r#"{"list":[],"map":{},"deep":[[[[[[[[[[{"x":[1]}]]]]]]]]]]}"#,
        ];
        let mut compared = 0;
        for ctx in contexts {
            let text = format!(r#"{{"agent":"a","action":"x:y","context":{ctx}}}"#);
            let req = Request::from_json(&text).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
            let want = match serde_json::from_str::<serde_json::Value>(ctx) {
                Ok(v) => through_serde_value(v),
                Err(e) => panic!("{ctx}: {e}"),
            };
            assert_eq!(Value::Map(req.context.clone()), want, "{ctx}");
            compared += 1;
        }
        assert_eq!(compared, contexts.len());
        // `null` is no context; anything but an object is refused.
        let none = Request::from_json(r#"{"agent":"a","action":"x:y","context":null}"#);
        assert!(none.is_ok_and(|r| r.context.is_empty()));
        for bad in ["[1]", "1", "\"x\"", "true"] {
            let text = format!(r#"{{"agent":"a","action":"x:y","context":{bad}}}"#);
            let err = Request::from_json(&text).err().map(|e| e.message);
            assert!(
                err.as_deref().is_some_and(|m| m.contains("expected a map")),
                "{bad}: {err:?}"
            );
        }
        // serde_json's nesting limit holds for the runtime's values too.
        let deep = format!(
            r#"{{"agent":"a","action":"x:y","context":{{"d":{}1{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let err = Request::from_json(&deep).err().map(|e| e.message);
        assert!(
            err.as_deref()
                .is_some_and(|m| m.contains("recursion limit")),
            "{err:?}"
        );
    }
}
