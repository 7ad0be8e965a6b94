//! Masking: context values whose key matches a configured pattern are
//! replaced by `"***"` before a record is sealed, at every depth.

use std::collections::BTreeMap;

use crate::Value;

/// What a masked value becomes.
pub const MASKED: &str = "***";

/// Key patterns: globs with `*` (any run) and `?` (one character),
/// matched against the whole key, ASCII letters in any case.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mask {
    patterns: Vec<Vec<u8>>,
    /// Answers for keys seen before: the same few keys come back in
    /// every record (bounded, so odd keys cannot grow it without end).
    seen: rustc_hash::FxHashMap<Box<str>, bool>,
}

/// How many keys' answers are kept.
const SEEN_LIMIT: usize = 4096;

impl Mask {
    pub(crate) fn new(patterns: &[String]) -> Mask {
        Mask {
            patterns: patterns
                .iter()
                .map(|p| p.bytes().map(|b| b.to_ascii_lowercase()).collect())
                .collect(),
            seen: rustc_hash::FxHashMap::default(),
        }
    }

    pub(crate) fn matches(&self, key: &str) -> bool {
        self.patterns.iter().any(|p| glob(p, key.as_bytes()))
    }

    fn matches_cached(&mut self, key: &str) -> bool {
        if let Some(&m) = self.seen.get(key) {
            return m;
        }
        let m = self.matches(key);
        if self.seen.len() < SEEN_LIMIT {
            self.seen.insert(key.into(), m);
        }
        m
    }

    /// Masks a context in place: a value under a matching key becomes
    /// `"***"`; maps (also inside lists) are masked by their own keys.
    pub(crate) fn apply(&mut self, map: &mut BTreeMap<String, Value>) {
        if self.patterns.is_empty() {
            return;
        }
        for (k, v) in map.iter_mut() {
            if self.matches_cached(k) {
                *v = Value::String(MASKED.to_owned());
            } else {
                self.apply_value(v);
            }
        }
    }

    fn apply_value(&mut self, v: &mut Value) {
        match v {
            Value::Map(m) => self.apply(m),
            Value::List(items) => {
                for item in items {
                    self.apply_value(item);
                }
            }
            _ => {}
        }
    }
}

/// Glob match of a lowercase pattern against text, ASCII case-insensitive:
/// the classic linear algorithm that backtracks to the last `*` only.
pub(crate) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let tc = text.get(t).map(u8::to_ascii_lowercase);
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(&pc) if pc == b'?' || Some(pc) == tc => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern.get(p..).unwrap_or(&[]).iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Mask::new(&[p.to_owned()]).matches(t)
    }

    #[test]
    fn globs_match_whole_keys_in_any_case() {
        assert!(m("password", "Password"));
        assert!(!m("password", "password2"));
        assert!(m("*token*", "access_TOKEN_v2"));
        assert!(m("*token*", "token"));
        assert!(!m("*token*", "tok"));
        assert!(m("api_?ey", "API_KEY"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("*", ""));
        assert!(!m("", "x"));
    }

    #[test]
    fn nested_maps_are_masked_by_key() {
        let mut mask = Mask::new(&["secret".to_owned()]);
        let mut inner = BTreeMap::new();
        inner.insert("secret".to_owned(), Value::Number(1.0));
        inner.insert("name".to_owned(), Value::String("n".into()));
        let mut ctx = BTreeMap::new();
        ctx.insert(
            "list".to_owned(),
            Value::List(vec![Value::Map(inner.clone())]),
        );
        ctx.insert("map".to_owned(), Value::Map(inner));
        mask.apply(&mut ctx);
        let Some(Value::Map(m)) = ctx.get("map") else {
            unreachable!()
        };
        assert_eq!(m.get("secret"), Some(&Value::String(MASKED.into())));
        assert_eq!(m.get("name"), Some(&Value::String("n".into())));
        let Some(Value::List(l)) = ctx.get("list") else {
            unreachable!()
        };
        assert_eq!(
            l.first(),
            Some(&Value::Map(m.clone())),
            "maps inside lists are masked too"
        );
    }
}
