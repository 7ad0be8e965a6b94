//! Did-you-mean suggestions for misspelled names and keys.

/// The candidate closest to `word`, if it is close enough to be a plausible
/// typo (Jaro-Winkler ≥ 0.8, or a small edit distance for short words).
#[must_use]
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(&'a str, f64)> = None;
    for cand in candidates {
        let c = cand.to_ascii_lowercase();
        let jw = strsim::jaro_winkler(&lower, &c);
        let lev = strsim::levenshtein(&lower, &c);
        let close = jw >= 0.8
            || (lev <= 2 && c.len() > 2)
            || c.replace(['_', '-'], "") == lower.replace(['_', '-'], "");
        if close && best.is_none_or(|(_, s)| jw > s) {
            best = Some((cand, jw));
        }
    }
    best.map(|(c, _)| c)
}

/// The help for a word outside a closed set: the closest word when there
/// is a plausible one, else the whole set after `intro`.
#[must_use]
pub fn did_you_mean_or_list(word: &str, candidates: &[&str], intro: &str) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "{intro} {}",
            candidates
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// E0204 for a word of a closed set (an effect, a risk level, a tier...)
/// that is not one of `words`; every front end reports it the same way.
#[must_use]
pub fn invalid_word(
    span: crate::Span,
    value: &str,
    what: &str,
    words: &[&str],
) -> crate::Diagnostic {
    crate::Diagnostic::new(
        crate::Code::InvalidValue,
        span,
        format!("`{value}` is not a valid {what}"),
    )
    .with_label_message(format!("expected one of {}", words.join(", ")))
    .with_help(did_you_mean_or_list(value, words, "use one of"))
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_keys_only() {
        let keys = [
            "effect",
            "action",
            "actions",
            "conditions",
            "constraints",
            "reason",
        ];
        assert_eq!(did_you_mean("efect", keys), Some("effect"));
        assert_eq!(did_you_mean("condtions", keys), Some("conditions"));
        assert_eq!(did_you_mean("Reason", keys), Some("reason"));
        assert_eq!(did_you_mean("zzzzzz", keys), None);
    }

    #[test]
    fn separators_do_not_matter() {
        assert_eq!(
            did_you_mean("risklevel", ["risk_level", "approval"]),
            Some("risk_level")
        );
    }
}
