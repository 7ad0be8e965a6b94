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

/// The declared name that `word`, which nothing declares, is almost surely
/// a misspelling of: one edit away (two for names of eight characters or
/// more, none under four), or equal but for case and `-`/`_`; never a name
/// that differs from it only in digits (`tier-1` and `tier-2` are two
/// names). Stricter than [`did_you_mean`], which helps with a word already
/// known to be wrong: this one decides whether to warn at all, about names
/// (agents, roles, tags) that may also come from requests.
#[must_use]
pub fn typo_of<'a, I>(word: &str, declared: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let fold = |s: &str| s.to_lowercase().replace('_', "-");
    let digitless = |s: &str| {
        s.chars()
            .filter(|c| !c.is_ascii_digit())
            .collect::<String>()
    };
    let w = fold(word);
    let mut best: Option<(&'a str, usize)> = None;
    for cand in declared {
        let c = fold(cand);
        if cand == word || digitless(&c) == digitless(&w) && c != w {
            continue;
        }
        let d = strsim::levenshtein(&w, &c);
        let allowed = match w.chars().count().min(c.chars().count()) {
            0..4 => 0,
            4..8 => 1,
            _ => 2,
        };
        if d <= allowed && best.is_none_or(|(_, b)| d < b) {
            best = Some((cand, d));
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
    fn a_typo_is_one_edit_away_or_two_in_a_long_name() {
        use super::typo_of;
        let declared = ["billing-agent", "triage-agent", "ops", "tier-1", "support"];
        assert_eq!(typo_of("biling-agent", declared), Some("billing-agent"));
        assert_eq!(typo_of("billing-agnet", declared), Some("billing-agent"));
        assert_eq!(typo_of("Billing_Agent", declared), Some("billing-agent"));
        assert_eq!(typo_of("suport", declared), Some("support"));
        assert_eq!(typo_of("OPS", declared), Some("ops"));
        // Short names are too close to one another to tell a typo.
        assert_eq!(typo_of("opss", declared), None);
        // Declared names, names far from any, and names that differ only
        // in digits are not typos.
        assert_eq!(typo_of("billing-agent", declared), None);
        assert_eq!(typo_of("research-agent", declared), None);
        assert_eq!(typo_of("sre", declared), None);
        assert_eq!(typo_of("tier-2", declared), None);
        assert_eq!(typo_of("tier-12", declared), None);
        // Two edits in a short name are a different name.
        assert_eq!(typo_of("supprt2", declared), None);
        assert_eq!(typo_of("anything", std::iter::empty()), None);
    }

    #[test]
    fn separators_do_not_matter() {
        assert_eq!(
            did_you_mean("risklevel", ["risk_level", "approval"]),
            Some("risk_level")
        );
    }
}
