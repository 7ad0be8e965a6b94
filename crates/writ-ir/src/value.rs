//! Values compared by conditions and carried in request contexts.

use std::collections::BTreeMap;
use std::fmt;

/// A literal in a policy or a value in a request context.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Equality as policies mean it: numbers compare numerically, lists and
    /// maps structurally, and nothing equals a value of another kind.
    #[must_use]
    pub fn loosely_equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => a == b,
            (a, b) => a == b,
        }
    }

    /// The name of the value's kind, for messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A dotted path into the request context, e.g. `customer.tier`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<String>);

impl Path {
    /// Splits on `.`; a key that itself contains dots is looked up whole
    /// first by [`Path::lookup`].
    #[must_use]
    pub fn parse(text: &str) -> Path {
        Path(text.split('.').map(str::to_owned).collect())
    }

    #[must_use]
    pub fn single(key: &str) -> Path {
        Path(vec![key.to_owned()])
    }

    /// Reads the path from a context map. A path of several segments
    /// (`a.b`) has two readings: the whole dotted text as one key
    /// (`{"a.b": 1}`) and nested maps (`{"a": {"b": 1}}`). When only one
    /// is present it is the value; when both are present and equal, that
    /// value; when both are present and differ, the path is
    /// [`Found::Ambiguous`] (a condition on it cannot be judged). Mixed
    /// forms (`{"a.b": {"c": 1}}` for `a.b.c`) are not read.
    #[must_use]
    pub fn find<'a>(&self, context: &'a BTreeMap<String, Value>) -> Found<'a> {
        let nested = self.nested(context);
        if self.0.len() < 2 {
            return nested.map_or(Found::Missing, Found::Value);
        }
        match (context.get(&self.0.join(".")), nested) {
            (Some(flat), Some(nested)) if !flat.loosely_equals(nested) => Found::Ambiguous,
            (Some(v), _) | (None, Some(v)) => Found::Value(v),
            (None, None) => Found::Missing,
        }
    }

    fn nested<'a>(&self, context: &'a BTreeMap<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        let mut cur = context.get(first)?;
        for key in rest {
            match cur {
                Value::Map(m) => cur = m.get(key)?,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// The value at the path, `None` when it is missing or ambiguous.
    #[must_use]
    pub fn lookup<'a>(&self, context: &'a BTreeMap<String, Value>) -> Option<&'a Value> {
        match self.find(context) {
            Found::Value(v) => Some(v),
            Found::Missing | Found::Ambiguous => None,
        }
    }
}

/// What a path reads from a context.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Found<'a> {
    Missing,
    Value(&'a Value),
    /// The flat key and the nested maps hold different values.
    Ambiguous,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_walks_maps_and_prefers_whole_keys() {
        let mut inner = BTreeMap::new();
        inner.insert("tier".to_owned(), Value::String("gold".into()));
        let mut ctx = BTreeMap::new();
        ctx.insert("customer".to_owned(), Value::Map(inner));
        ctx.insert("a.b".to_owned(), Value::Number(1.0));
        assert_eq!(
            Path::parse("customer.tier").lookup(&ctx),
            Some(&Value::String("gold".into()))
        );
        assert_eq!(Path::parse("a.b").lookup(&ctx), Some(&Value::Number(1.0)));
        assert_eq!(Path::parse("customer.missing").lookup(&ctx), None);
        assert_eq!(Path::parse("a.b.c").lookup(&ctx), None);
    }

    #[test]
    fn a_flat_and_a_nested_reading_that_differ_are_ambiguous() {
        let mut ctx = BTreeMap::new();
        ctx.insert("a.b".to_owned(), Value::Number(1.0));
        let mut inner = BTreeMap::new();
        inner.insert("b".to_owned(), Value::Number(2.0));
        ctx.insert("a".to_owned(), Value::Map(inner.clone()));
        assert_eq!(Path::parse("a.b").find(&ctx), Found::Ambiguous);
        inner.insert("b".to_owned(), Value::Number(1.0));
        ctx.insert("a".to_owned(), Value::Map(inner));
        assert_eq!(
            Path::parse("a.b").find(&ctx),
            Found::Value(&Value::Number(1.0))
        );
        assert_eq!(Path::parse("a.c").find(&ctx), Found::Missing);
    }
}
