//! Masking: context values whose key matches a configured pattern are
//! replaced by `"***"` before a record is sealed, at every depth.

/// What a masked value becomes.
pub const MASKED: &str = "***";

/// Key patterns: globs with `*` (any run) and `?` (one character),
/// matched against the whole key, ASCII letters in any case.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mask {
    patterns: Vec<Vec<u8>>,
    /// Answers for keys seen before: the same few keys come back in
    /// every record (bounded, so odd keys cannot grow it without end).
    seen: rustc_hash::FxHashMap<Box<[u8]>, bool>,
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

    pub(crate) fn matches(&self, key: &[u8]) -> bool {
        self.patterns.iter().any(|p| glob(p, key))
    }

    fn matches_cached(&mut self, key: &[u8]) -> bool {
        if let Some(&m) = self.seen.get(key) {
            return m;
        }
        let m = self.matches(key);
        if self.seen.len() < SEEN_LIMIT {
            self.seen.insert(key.into(), m);
        }
        m
    }

    /// Whether a value under `key` is written as `"***"`.
    pub(crate) fn masks(&mut self, key: &[u8]) -> bool {
        !self.patterns.is_empty() && self.matches_cached(key)
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
    use std::collections::BTreeMap;

    use super::*;
    use writ_runtime::Value;

    fn m(p: &str, t: &str) -> bool {
        Mask::new(&[p.to_owned()]).matches(t.as_bytes())
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
        ctx.insert(
            "secret".to_owned(),
            Value::List(vec![Value::Map(BTreeMap::new()), Value::Null]),
        );
        let mut packed = Vec::new();
        crate::queue::push_map_for_tests(&mut packed, &ctx);
        let mut out = Vec::new();
        let mut r = crate::queue::Reader::new(&packed);
        let written = crate::canonical::push_packed_map(&mut out, &mut r, &mut |k| mask.masks(k));
        assert_eq!(written, Some(()));
        assert!(r.is_empty(), "a masked list is skipped whole");
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"list":[{"name":"n","secret":"***"}],"map":{"name":"n","secret":"***"},"secret":"***"}"#
        );
        assert!(!Mask::new(&[]).masks(b"secret"));
    }
}
