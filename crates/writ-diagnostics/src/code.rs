//! The one table of diagnostic codes.
//!
//! Codes come in blocks by phase and are never reused: once a code has been
//! published its meaning is fixed, and a retired code stays in this table.
//! Every code has a page `docs/diagnostics/<CODE>.md` with a wrong example
//! and its fix; a test in the root package keeps the table and the pages in
//! step.

use crate::Severity;

/// The phase a diagnostic comes from; it decides the code block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// E00xx: reading files.
    Input,
    /// E01xx: YAML syntax and document shape.
    Syntax,
    /// E02xx: values (globs, times, rates, enums, numbers).
    Value,
    /// E03xx: names (duplicates, references).
    Names,
    /// E04xx: the writ language's tokens and grammar.
    Language,
    /// E05xx: the delegation graph.
    Graph,
    /// W01xx: merge and lint warnings.
    Lint,
    /// W02xx: delegation graph warnings.
    GraphLint,
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $phase:ident, $sev:ident, $title:literal; )*) => {
        /// A stable diagnostic code such as `E0103`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( $variant, )* }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The code as printed, e.g. `"E0103"`.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            /// A short title, lowercase, used as the heading of the docs page.
            #[must_use]
            pub fn title(self) -> &'static str {
                match self { $( Code::$variant => $title, )* }
            }

            #[must_use]
            pub fn phase(self) -> Phase {
                match self { $( Code::$variant => Phase::$phase, )* }
            }

            /// The severity this code is reported with.
            #[must_use]
            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev, )* }
            }
        }
    };
}

codes! {
    Io = "E0001", Input, Error, "file cannot be read";
    PolicyTooLarge = "E0002", Input, Error, "policy too large";
    YamlSyntax = "E0101", Syntax, Error, "yaml syntax error";
    EmptyPolicy = "E0102", Syntax, Error, "empty policy file";
    UnknownKey = "E0103", Syntax, Error, "unknown key";
    WrongType = "E0104", Syntax, Error, "value has the wrong type";
    MissingKey = "E0105", Syntax, Error, "required key is missing";
    UnknownDialect = "E0106", Syntax, Error, "policy dialect cannot be detected";
    DuplicateKey = "E0107", Syntax, Error, "duplicate key";
    UnsupportedKey = "E0108", Syntax, Error, "key writ does not support";
    InvalidGlob = "E0201", Value, Error, "invalid glob pattern";
    InvalidTime = "E0202", Value, Error, "invalid time of day or time window";
    InvalidRate = "E0203", Value, Error, "invalid rate";
    InvalidValue = "E0204", Value, Error, "value is not one of the allowed words";
    UnknownTimezone = "E0205", Value, Error, "unknown time zone";
    InvalidWeekday = "E0206", Value, Error, "invalid weekday";
    InvalidOperand = "E0207", Value, Error, "condition value does not fit its operator";
    InvalidNumber = "E0208", Value, Error, "invalid number";
    PatternTooBig = "E0209", Value, Error, "pattern matchers over their limit";
    CannotJudge = "E0210", Value, Error, "a dialect construct writ cannot judge";
    DuplicateRuleName = "E0301", Names, Error, "duplicate rule name";
    DuplicateAgent = "E0302", Names, Error, "agent or role declared twice";
    UnexpectedToken = "E0401", Language, Error, "syntax error";
    UnterminatedString = "E0402", Language, Error, "unterminated string";
    InvalidCharacter = "E0403", Language, Error, "character not allowed here";
    InvalidEscape = "E0404", Language, Error, "invalid escape in a string";
    MisplacedSetting = "E0405", Language, Error, "setting not allowed in this block";
    DuplicateSetting = "E0406", Language, Error, "setting given twice";
    TooDeep = "E0407", Language, Error, "nesting too deep";
    SharedAgentLimit = "E0408", Language, Error, "`shared` on a limit that is not a rule's";
    UnknownDelegate = "E0501", Graph, Error, "delegates list or entry agent names an undeclared agent";
    ChainTooLong = "E0502", Graph, Error, "delegation chain longer than the maximum depth";
    IgnoredDefaults = "W0101", Lint, Warning, "defaults of a later file are ignored";
    EmptyList = "W0102", Lint, Warning, "empty list never matches";
    LimitNeverCounts = "W0103", Lint, Warning, "limit on a rule that never allows";
    ShadowedRule = "W0104", Lint, Warning, "rule shadowed by an earlier rule";
    UnusedAgent = "W0105", Lint, Warning, "agent has no effect";
    ImpossibleCondition = "W0106", Lint, Warning, "condition can never hold";
    EmptyCondition = "W0107", Lint, Warning, "empty condition always holds";
    UndeclaredScopeName = "W0108", Lint, Warning, "rule scope names an agent, role or tag that looks misspelled";
    UndeclaredDelegate = "W0201", GraphLint, Warning, "rule delegates to an undeclared agent or role";
    DelegationCycle = "W0202", GraphLint, Warning, "delegation cycle";
    UnreachableAgent = "W0203", GraphLint, Warning, "agent unreachable from the entry agents";
    PrivilegeEscalation = "W0204", GraphLint, Warning, "privilege escalation through delegation";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_in_their_phase_block() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} listed twice");
            let prefix = match code.phase() {
                Phase::Input => "E00",
                Phase::Syntax => "E01",
                Phase::Value => "E02",
                Phase::Names => "E03",
                Phase::Language => "E04",
                Phase::Lint => "W01",
                Phase::Graph => "E05",
                Phase::GraphLint => "W02",
            };
            assert!(
                code.as_str().starts_with(prefix),
                "{code} outside its block"
            );
            let is_warning = code.as_str().starts_with('W');
            assert_eq!(is_warning, code.severity() == Severity::Warning, "{code}");
        }
    }
}
