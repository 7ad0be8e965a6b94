//! The bundle's vocabulary: every coded field of a bundle as a closed
//! enum, with its byte written once, here.
//!
//! The compiler maps its IR's enums to these and the runtime matches on
//! their variants; neither side spells a code as a number. Reading a byte
//! that is no code of its kind is [`LoadError::UnknownCode`]: a corrupt
//! bundle is refused, never guessed at (the model is regex-automata's
//! `util/wire.rs`).

use crate::error::LoadError;

/// Declares a closed enum of one-byte codes: the variants, the byte of
/// each (written once, in the declaration), `to_byte`, `from_byte` and the
/// list of every variant.
macro_rules! codes {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $byte:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, in byte order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The byte that stands for this variant in a bundle.
            #[must_use]
            pub const fn to_byte(self) -> u8 {
                match self {
                    $($name::$variant => $byte,)+
                }
            }

            /// The variant a bundle's byte stands for.
            ///
            /// # Errors
            /// [`LoadError::UnknownCode`] for a byte that stands for none.
            pub const fn from_byte(byte: u8) -> Result<$name, LoadError> {
                match byte {
                    $($byte => Ok($name::$variant),)+
                    _ => Err(LoadError::UnknownCode { what: $what, byte }),
                }
            }
        }
    };
}

codes! {
    /// What a rule or the policy default decides.
    Effect, "effect" {
        Allow = 0,
        Deny = 1,
        Approve = 2,
    }
}

impl Effect {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
            Effect::Approve => "approve",
        }
    }
}

codes! {
    /// A rule's or the default's risk level, ordered.
    Risk, "risk" {
        Low = 0,
        Medium = 1,
        High = 2,
        Critical = 3,
    }
}

impl Risk {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }
}

codes! {
    /// An agent's trust tier, ordered (a principal with several entries
    /// has the highest).
    Tier, "tier" {
        Untrusted = 0,
        Verified = 1,
        Trusted = 2,
        Privileged = 3,
    }
}

impl Tier {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Untrusted => "untrusted",
            Tier::Verified => "verified",
            Tier::Trusted => "trusted",
            Tier::Privileged => "privileged",
        }
    }

    /// The tier named `name` (lowercase, as policies write it).
    #[must_use]
    pub fn parse(name: &str) -> Option<Tier> {
        Tier::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

codes! {
    /// The window of a rate.
    RateUnit, "rate unit" {
        Second = 0,
        Minute = 1,
        Hour = 2,
        Day = 3,
    }
}

impl RateUnit {
    /// The window's length in seconds.
    #[must_use]
    pub fn seconds(self) -> u64 {
        match self {
            RateUnit::Second => 1,
            RateUnit::Minute => 60,
            RateUnit::Hour => 3600,
            RateUnit::Day => 86_400,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RateUnit::Second => "second",
            RateUnit::Minute => "minute",
            RateUnit::Hour => "hour",
            RateUnit::Day => "day",
        }
    }
}

codes! {
    /// What an agent entry's limit counts.
    Metric, "metric" {
        Requests = 0,
        Tokens = 1,
    }
}

impl Metric {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Requests => "requests",
            Metric::Tokens => "tokens",
        }
    }
}

codes! {
    /// Whom an agent entry describes.
    Subject, "subject" {
        /// One agent, by name.
        Agent = 0,
        /// Every agent that has the role.
        Role = 1,
        /// Every agent.
        Everyone = 2,
    }
}

codes! {
    /// How a policy's rules combine.
    Combining, "combining" {
        FirstMatch = 0,
        DenyOverrides = 1,
    }
}

codes! {
    /// A comparison of a condition.
    CompareOp, "comparison" {
        Eq = 0,
        Ne = 1,
        Lt = 2,
        Le = 3,
        Gt = 4,
        Ge = 5,
    }
}

codes! {
    /// The kind of a value that follows.
    ValueTag, "value tag" {
        Null = 0,
        Bool = 1,
        Number = 2,
        String = 3,
        List = 4,
        Map = 5,
    }
}

codes! {
    /// The kind of a pattern that follows.
    PatternTag, "pattern tag" {
        Exact = 0,
        Prefix = 1,
        Suffix = 2,
        Any = 3,
        // 4 was a serialized DFA (formats 2 to 4); never reused.
        Glob = 5,
    }
}

codes! {
    /// One unit of a glob's variant (see [`crate::glob`]).
    GlobUnitTag, "glob unit" {
        Lit = 0,
        Any = 1,
        Star = 2,
        Class = 3,
    }
}

codes! {
    /// What a condition or constraint reads.
    FieldTag, "field tag" {
        Target = 0,
        Context = 1,
    }
}

codes! {
    /// The kind of a condition's atom that follows.
    AtomTag, "condition tag" {
        Compare = 0,
        In = 1,
        Glob = 2,
        Contains = 3,
        Exists = 4,
        Time = 5,
        Weekdays = 6,
    }
}

codes! {
    /// The kind of an instruction of a condition's postfix code.
    OpTag, "op tag" {
        Atom = 0,
        All = 1,
        Any = 2,
        Not = 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code of one enum: its bytes are distinct, each reads back as
    /// itself, and every other byte is refused as an unknown code.
    fn round_trips<T: Copy + PartialEq + std::fmt::Debug>(
        all: &[T],
        to: fn(T) -> u8,
        from: fn(u8) -> Result<T, LoadError>,
        what: &str,
    ) {
        let bytes: Vec<u8> = all.iter().map(|v| to(*v)).collect();
        let mut distinct = bytes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            all.len(),
            "{what}: two variants share a byte"
        );
        for v in all {
            assert_eq!(from(to(*v)), Ok(*v), "{what}");
        }
        for b in 0..=u8::MAX {
            if !bytes.contains(&b) {
                let e = from(b).err();
                assert!(
                    matches!(e, Some(LoadError::UnknownCode { byte, .. }) if byte == b),
                    "{what}: byte {b}"
                );
                assert!(
                    e.is_some_and(|e| e.to_string().contains(&format!("unknown {what} {b}"))),
                    "{what}: byte {b}"
                );
            }
        }
    }

    #[test]
    fn every_code_round_trips_and_unknown_bytes_are_refused() {
        round_trips(Effect::ALL, Effect::to_byte, Effect::from_byte, "effect");
        round_trips(Risk::ALL, Risk::to_byte, Risk::from_byte, "risk");
        round_trips(Tier::ALL, Tier::to_byte, Tier::from_byte, "tier");
        round_trips(
            RateUnit::ALL,
            RateUnit::to_byte,
            RateUnit::from_byte,
            "rate unit",
        );
        round_trips(Metric::ALL, Metric::to_byte, Metric::from_byte, "metric");
        round_trips(
            Subject::ALL,
            Subject::to_byte,
            Subject::from_byte,
            "subject",
        );
        round_trips(
            Combining::ALL,
            Combining::to_byte,
            Combining::from_byte,
            "combining",
        );
        round_trips(
            CompareOp::ALL,
            CompareOp::to_byte,
            CompareOp::from_byte,
            "comparison",
        );
        round_trips(
            ValueTag::ALL,
            ValueTag::to_byte,
            ValueTag::from_byte,
            "value tag",
        );
        round_trips(
            PatternTag::ALL,
            PatternTag::to_byte,
            PatternTag::from_byte,
            "pattern tag",
        );
        round_trips(
            GlobUnitTag::ALL,
            GlobUnitTag::to_byte,
            GlobUnitTag::from_byte,
            "glob unit",
        );
        round_trips(
            FieldTag::ALL,
            FieldTag::to_byte,
            FieldTag::from_byte,
            "field tag",
        );
        round_trips(
            AtomTag::ALL,
            AtomTag::to_byte,
            AtomTag::from_byte,
            "condition tag",
        );
        round_trips(OpTag::ALL, OpTag::to_byte, OpTag::from_byte, "op tag");
    }

    /// The bytes are the format's: a bundle written before these enums
    /// existed reads the same (format 2 to 4 bundles depend on it).
    #[test]
    fn codes_keep_the_bytes_of_the_format() {
        assert_eq!(
            Effect::ALL.iter().map(|e| e.to_byte()).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(Effect::from_byte(1), Ok(Effect::Deny));
        assert_eq!(Risk::Critical.to_byte(), 3);
        assert_eq!(Tier::Privileged.to_byte(), 3);
        assert_eq!(RateUnit::Day.to_byte(), 3);
        assert_eq!(Metric::Tokens.to_byte(), 1);
        assert_eq!(Subject::Everyone.to_byte(), 2);
        assert_eq!(Combining::DenyOverrides.to_byte(), 1);
        assert_eq!(CompareOp::Ge.to_byte(), 5);
        assert_eq!(ValueTag::Map.to_byte(), 5);
        assert_eq!(PatternTag::Glob.to_byte(), 5);
        assert_eq!(AtomTag::Weekdays.to_byte(), 6);
        assert_eq!(OpTag::Not.to_byte(), 3);
        // Ordered enums order as their levels do.
        assert!(Risk::Low < Risk::Critical && Tier::Untrusted < Tier::Privileged);
    }
}
