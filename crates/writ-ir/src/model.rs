//! The policy set: settings, agents, rules, and the small closed enums they use.

use std::fmt;

use writ_diagnostics::{FileId, Span};

use crate::{Condition, Field, Pattern, Value};

/// A value with the span of the source it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }

    /// The value changed by `f`, at the same span.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            span: self.span,
        }
    }
}

/// Index of a rule in [`PolicySet::rules`]; rule order is evaluation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

/// Index of an agent entry in [`PolicySet::agents`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub u32);

/// Index of a source policy in [`PolicySet::policies`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(pub u32);

macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident { $( $variant:ident = $word:literal ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $variant, )* }

        impl $name {
            /// Every variant, in order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The word used in policies and JSON.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $word, )* }
            }

            /// Parses the word (ASCII case-insensitive).
            #[must_use]
            pub fn parse(word: &str) -> Option<$name> {
                let w = word.trim().to_ascii_lowercase();
                $name::ALL.iter().copied().find(|v| v.as_str() == w)
            }

            /// Every accepted word, for messages and completion.
            #[must_use]
            pub fn words() -> Vec<&'static str> {
                $name::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum! {
    /// What a rule (or the policy default) decides.
    Effect { Allow = "allow", Deny = "deny", Approve = "approve" }
}
word_enum! {
    /// Risk level of a rule or decision, ordered low to critical.
    Risk { Low = "low", Medium = "medium", High = "high", Critical = "critical" }
}
word_enum! {
    /// Trust tier of an agent, ordered least to most trusted.
    Tier { Untrusted = "untrusted", Verified = "verified", Trusted = "trusted", Privileged = "privileged" }
}
word_enum! {
    /// How the decisions of several matching rules combine.
    Combining { FirstMatch = "first-match", DenyOverrides = "deny-overrides" }
}
word_enum! {
    /// What an action taken on behalf of a delegation chain must satisfy:
    /// `strict`, every agent in the chain must be allowed the action itself;
    /// `none`, only the acting agent's permissions count.
    Ceiling { Strict = "strict", None = "none" }
}
word_enum! {
    /// Which front end a policy was read with.
    Dialect { Writ = "writ", MeshGuard = "meshguard", Aegis = "aegis", Sekuire = "sekuire" }
}
word_enum! {
    /// Window unit of a rate.
    RateUnit { Second = "second", Minute = "minute", Hour = "hour", Day = "day" }
}
word_enum! {
    /// What an agent-level limit counts.
    Metric { Requests = "requests", Tokens = "tokens" }
}

impl RateUnit {
    #[must_use]
    pub fn seconds(self) -> u64 {
        match self {
            RateUnit::Second => 1,
            RateUnit::Minute => 60,
            RateUnit::Hour => 3600,
            RateUnit::Day => 86_400,
        }
    }
}

/// At most `count` per sliding `unit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub unit: RateUnit,
}

impl Rate {
    /// Parses `30/hour`, `30/h`, `10 per minute`, `5/sec`.
    ///
    /// # Errors
    /// The unit or number that is wrong (`Display`: a lowercase sentence).
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        let t = text.trim();
        let (n, unit) = t
            .split_once('/')
            .or_else(|| t.split_once(" per "))
            .ok_or_else(|| RateError::NotARate(text.to_owned()))?;
        let count: u64 = n.trim().parse().map_err(|_| RateError::NotANumber {
            number: n.trim().to_owned(),
            text: text.to_owned(),
        })?;
        if count == 0 {
            return Err(RateError::Zero(text.to_owned()));
        }
        let unit = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" | "seconds" => RateUnit::Second,
            "m" | "min" | "minute" | "minutes" => RateUnit::Minute,
            "h" | "hr" | "hour" | "hours" => RateUnit::Hour,
            "d" | "day" | "days" => RateUnit::Day,
            other => {
                return Err(RateError::UnknownUnit {
                    unit: other.to_owned(),
                    text: text.to_owned(),
                });
            }
        };
        Ok(Rate { count, unit })
    }
}

/// Why a rate does not parse; each variant holds the text as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateError {
    NotARate(String),
    NotANumber { number: String, text: String },
    Zero(String),
    UnknownUnit { unit: String, text: String },
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateError::NotARate(t) => {
                write!(f, "`{t}` is not a rate; write `N/unit`, e.g. `30/hour`")
            }
            RateError::NotANumber { number, text } => {
                write!(f, "`{number}` is not a whole number in the rate `{text}`")
            }
            RateError::Zero(t) => {
                write!(f, "the rate `{t}` allows nothing; use a deny rule instead")
            }
            RateError::UnknownUnit { unit, text } => write!(
                f,
                "unknown rate unit `{unit}` in `{text}`; use second, minute, hour or day"
            ),
        }
    }
}

impl std::error::Error for RateError {}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.unit)
    }
}

/// A rule's limit: at most `rate.count` allowed decisions of the rule per
/// sliding `rate.unit`, counted per acting agent or, when `shared`, once
/// for every agent together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleLimit {
    pub rate: Rate,
    /// One count for all agents (`limit N per UNIT shared`); `false`: each
    /// acting agent has its own.
    pub shared: bool,
}

impl RuleLimit {
    /// A limit counted per acting agent.
    #[must_use]
    pub fn per_agent(rate: Rate) -> RuleLimit {
        RuleLimit {
            rate,
            shared: false,
        }
    }
}

/// `20/hour`, or `20/hour shared`.
impl fmt::Display for RuleLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rate)?;
        if self.shared {
            f.write_str(" shared")?;
        }
        Ok(())
    }
}

/// A policy-wide setting and where it was set (`None`: the built-in default).
#[derive(Clone, Debug, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    pub span: Option<Span>,
}

/// The time zone conditions are evaluated in.
#[derive(Clone, Debug, PartialEq)]
pub struct Timezone {
    pub name: String,
    pub tz: jiff::tz::TimeZone,
}

impl Timezone {
    #[must_use]
    pub fn utc() -> Timezone {
        Timezone {
            name: "UTC".to_owned(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    /// The help for a name that is not a time zone: the closest known
    /// name when there is a plausible one.
    #[must_use]
    pub fn suggestion(name: &str) -> String {
        let names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .collect();
        match writ_diagnostics::did_you_mean(name, names.iter().map(String::as_str)) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "use an IANA time zone name such as `UTC` or `Europe/Paris`".to_owned(),
        }
    }

    /// Looks an IANA name up in the bundled time zone database.
    #[must_use]
    pub fn get(name: &str) -> Option<Timezone> {
        jiff::tz::TimeZone::get(name).ok().map(|tz| Timezone {
            name: name.to_owned(),
            tz,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub combining: Setting<Combining>,
    pub default_effect: Setting<Effect>,
    pub default_risk: Option<Spanned<Risk>>,
    pub default_reason: Option<Spanned<String>>,
    pub timezone: Setting<Timezone>,
    /// The longest delegation chain allowed, in hops; `None`: unbounded.
    pub max_delegation_depth: Option<Spanned<u32>>,
    /// The permission ceiling for chains (default `strict`).
    pub ceiling: Setting<Ceiling>,
    /// The most a request made through a delegation chain may do: its
    /// action must match a pattern of every list (MeshGuard
    /// `delegation.permissionCeiling`, one list per file that gives one).
    /// Empty: no such bound. Requests to delegate further are bounded by
    /// the depth and the hops instead.
    pub ceiling_actions: Vec<NamedList>,
    /// Agents where chains start; when given, agents no chain from them
    /// can reach are reported.
    pub entry_agents: Option<Spanned<Vec<Spanned<String>>>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            combining: Setting {
                value: Combining::FirstMatch,
                span: None,
            },
            default_effect: Setting {
                value: Effect::Deny,
                span: None,
            },
            default_risk: None,
            default_reason: None,
            timezone: Setting {
                value: Timezone::utc(),
                span: None,
            },
            max_delegation_depth: None,
            ceiling: Setting {
                value: Ceiling::Strict,
                span: None,
            },
            ceiling_actions: Vec::new(),
            entry_agents: None,
        }
    }
}

/// One source file's policy header.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub id: PolicyId,
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub dialect: Dialect,
    pub file: FileId,
}

/// Which requesting agents an [`Agent`] entry bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The agent whose id is the entry's id (writ `agents:`).
    Agent,
    /// Every agent holding the role named by the entry's id (MeshGuard `agents:`).
    Role,
    /// Every agent (a Sekuire file governs the whole client).
    Everyone,
}

/// A list of patterns with the source key it came from, so that reasons
/// name the list as the author wrote it (`model_allowlist`, `blocked_tools`).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedList {
    pub key: String,
    pub patterns: Vec<Pattern>,
    pub span: Span,
}

impl NamedList {
    #[must_use]
    pub fn matches(&self, candidate: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(candidate))
    }
}

/// An allow list and a block list; the block list is checked first.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AccessList {
    pub allow: Option<NamedList>,
    pub block: Option<NamedList>,
}

/// A ceiling on an agent's allowed decisions (or the tokens they report).
#[derive(Clone, Debug, PartialEq)]
pub struct AgentLimit {
    pub key: String,
    pub metric: Metric,
    pub rate: Rate,
    /// Only decisions on actions matching this count; `None`: all actions.
    pub actions: Option<Pattern>,
    pub span: Span,
}

/// An agent, or a role profile, with its ceilings.
///
/// Ceilings (model, tool and host lists, limits) are checked before any rule:
/// a request outside them is denied with a reason naming the list or limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    pub id: AgentId,
    pub name: Spanned<String>,
    pub subject: Subject,
    pub policy: PolicyId,
    pub roles: Vec<Spanned<String>>,
    pub tier: Option<Spanned<Tier>>,
    pub tags: Vec<Spanned<String>>,
    /// A request whose `token` starts with this gets this entry's role.
    pub token_prefix: Option<Spanned<String>>,
    pub models: AccessList,
    pub tools: AccessList,
    pub hosts: AccessList,
    pub require_tls: Option<Spanned<bool>>,
    pub limits: Vec<AgentLimit>,
    pub delegates: Vec<Spanned<String>>,
    pub span: Span,
}

impl Agent {
    /// An entry with every list empty.
    #[must_use]
    pub fn new(
        id: AgentId,
        name: Spanned<String>,
        subject: Subject,
        policy: PolicyId,
        span: Span,
    ) -> Agent {
        Agent {
            id,
            name,
            subject,
            policy,
            roles: Vec::new(),
            tier: None,
            tags: Vec::new(),
            token_prefix: None,
            models: AccessList::default(),
            tools: AccessList::default(),
            hosts: AccessList::default(),
            require_tls: None,
            limits: Vec::new(),
            delegates: Vec::new(),
            span,
        }
    }
}

/// Which principals a rule applies to. Each non-empty list must match (a
/// principal matches a list when it matches any entry); empty lists don't
/// restrict.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scope {
    pub agents: Vec<Spanned<String>>,
    pub roles: Vec<Spanned<String>>,
    pub tiers: Vec<Spanned<Tier>>,
    pub tags: Vec<Spanned<String>>,
}

impl Scope {
    #[must_use]
    pub fn is_everyone(&self) -> bool {
        self.agents.is_empty()
            && self.roles.is_empty()
            && self.tiers.is_empty()
            && self.tags.is_empty()
    }
}

/// A check that applies once a rule's conditions hold: when it fails the
/// rule denies, with a reason naming the value and the constraint.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    /// As written, e.g. `allowed_stores`.
    pub name: String,
    /// Every value of this field must be in `values`.
    pub field: Field,
    /// Looked up when `field` is absent (`store` for `stores`).
    pub alternate: Option<Field>,
    pub values: Vec<Value>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: RuleId,
    pub name: Spanned<String>,
    /// True when the author gave no name and writ made one.
    pub generated_name: bool,
    pub policy: PolicyId,
    pub effect: Spanned<Effect>,
    pub risk: Option<Spanned<Risk>>,
    /// The rule applies when any of these matches the action.
    pub actions: Vec<Pattern>,
    /// Empty: any target (or none). Otherwise any of these must match.
    pub targets: Vec<Pattern>,
    pub scope: Scope,
    pub condition: Option<Condition>,
    pub constraints: Vec<Constraint>,
    /// At most this many allowed decisions of this rule per agent (or, when
    /// shared, for all agents together).
    pub limit: Option<Spanned<RuleLimit>>,
    pub reason: Option<Spanned<String>>,
    pub span: Span,
}

/// Everything the evaluator needs: merged settings, agents and ordered rules.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PolicySet {
    pub policies: Vec<Policy>,
    pub settings: Settings,
    pub agents: Vec<Agent>,
    pub rules: Vec<Rule>,
}

impl PolicySet {
    #[must_use]
    pub fn policy(&self, id: PolicyId) -> Option<&Policy> {
        self.policies.get(id.0 as usize)
    }

    /// The policy whose default decision applies when no rule decides: the
    /// first policy of the file that set the default, or, when no file set
    /// it, the only policy (whose default is then the built-in one). `None`
    /// for the built-in default of several policies.
    #[must_use]
    pub fn default_policy(&self) -> Option<&Policy> {
        match self.settings.default_effect.span {
            Some(span) => self.policies.iter().find(|p| p.file == span.file),
            None => match self.policies.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units_and_reject_bad_ones() {
        assert_eq!(
            Rate::parse("30/hour"),
            Ok(Rate {
                count: 30,
                unit: RateUnit::Hour
            })
        );
        assert_eq!(
            Rate::parse("10 per minute"),
            Ok(Rate {
                count: 10,
                unit: RateUnit::Minute
            })
        );
        assert_eq!(
            Rate::parse("5/s"),
            Ok(Rate {
                count: 5,
                unit: RateUnit::Second
            })
        );
        assert!(Rate::parse("30/fortnight").is_err_and(|e| e.to_string().contains("fortnight")));
        assert!(Rate::parse("x/hour").is_err());
        assert!(Rate::parse("0/hour").is_err());
        assert!(Rate::parse("30").is_err());
    }

    #[test]
    fn word_enums_round_trip() {
        for e in Effect::ALL {
            assert_eq!(Effect::parse(e.as_str()), Some(*e));
        }
        assert_eq!(
            Combining::parse("Deny-Overrides"),
            Some(Combining::DenyOverrides)
        );
        assert_eq!(Risk::parse("severe"), None);
        assert!(Risk::Low < Risk::Critical);
    }

    #[test]
    fn timezones_come_from_the_bundled_database() {
        assert!(Timezone::get("Europe/Paris").is_some());
        assert!(Timezone::get("Mars/Olympus").is_none());
    }
}
