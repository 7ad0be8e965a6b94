//! The workloads of the `shapes` bench (issue 22): N rules whose patterns
//! all have one shape, each rule scoped one way, and the requests that hit
//! the last rule or miss them all.
//!
//! Rule `i` of a workload allows the actions matching its shape's pattern
//! (a host shape: `net:connect` on the hosts matching it) when
//! `amount < 100`, for whom its scope says. Every pattern carries the
//! number `i`, so exactly one rule matches [`Workload::hit`]: the last;
//! [`Workload::miss`] is the same request written with `n` instead, a near
//! miss sharing every literal with the patterns that no rule matches.
//! The peers' versions (Cedar) are built from the same [`Shape`] and
//! [`Scope`] so every engine sees one workload.

use std::fmt::Write as _;

/// The shape of a rule's pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `tool:x<i>`
    Exact,
    /// `tool:p<i>:*`
    Prefix,
    /// `*:s<i>`
    Suffix,
    /// `a*b<i>`
    Inner,
    /// `q?x<i>`
    Question,
    /// `[ab]c<i>`
    Class,
    /// `{get,put}_<i>`
    Alternation,
    /// `net:connect` on hosts `*.h<i>.example.com`, matched in any case.
    Host,
    /// Every shape above in one bucket, rule `i` of the shape
    /// `MIXED[(n - 1 - i) % 8]`, so the last rule is an inner `*`.
    Mix,
}

/// The shapes a mixture cycles through, the last rule's first.
const MIXED: [Shape; 8] = [
    Shape::Inner,
    Shape::Exact,
    Shape::Prefix,
    Shape::Suffix,
    Shape::Question,
    Shape::Class,
    Shape::Alternation,
    Shape::Host,
];

impl Shape {
    /// Every shape, in the order the tables print them.
    pub const ALL: [Shape; 9] = [
        Shape::Exact,
        Shape::Prefix,
        Shape::Suffix,
        Shape::Inner,
        Shape::Question,
        Shape::Class,
        Shape::Alternation,
        Shape::Host,
        Shape::Mix,
    ];

    /// The shape's name in tables and in `WRIT_BENCH_SHAPES`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Shape::Exact => "exact",
            Shape::Prefix => "prefix",
            Shape::Suffix => "suffix",
            Shape::Inner => "inner",
            Shape::Question => "question",
            Shape::Class => "class",
            Shape::Alternation => "alternation",
            Shape::Host => "host",
            Shape::Mix => "mix",
        }
    }

    /// The pattern of rule 7, as tables show it.
    #[must_use]
    pub fn example(self) -> &'static str {
        match self {
            Shape::Exact => "tool:x7",
            Shape::Prefix => "tool:p7:*",
            Shape::Suffix => "*:s7",
            Shape::Inner => "a*b7",
            Shape::Question => "q?x7",
            Shape::Class => "[ab]c7",
            Shape::Alternation => "{get,put}_7",
            Shape::Host => "hosts *.h7.example.com",
            Shape::Mix => "all eight",
        }
    }

    /// The shape of rule `i` of `n`: itself, or for a mixture the shape
    /// the mixture gives that rule.
    #[must_use]
    pub fn of_rule(self, n: usize, i: usize) -> Shape {
        match self {
            Shape::Mix => MIXED[(n.saturating_sub(1).saturating_sub(i)) % MIXED.len()],
            other => other,
        }
    }

    /// The pattern of rule `i` (for [`Shape::Host`], the host pattern).
    /// For a mixture, use [`Shape::of_rule`] first.
    #[must_use]
    pub fn pattern(self, i: usize) -> String {
        self.forms(i).0
    }

    /// A string the pattern of rule `i` matches and no other rule's does
    /// (for [`Shape::Host`], a host in capitals, which only a matcher that
    /// ignores case matches).
    #[must_use]
    pub fn matching(self, i: usize) -> String {
        self.forms(i).1
    }

    /// The pattern of rule `i` and a string it matches.
    fn forms(self, i: usize) -> (String, String) {
        match self {
            Shape::Exact => (format!("tool:x{i}"), format!("tool:x{i}")),
            Shape::Prefix => (format!("tool:p{i}:*"), format!("tool:p{i}:run")),
            Shape::Suffix => (format!("*:s{i}"), format!("run:s{i}")),
            Shape::Inner | Shape::Mix => (format!("a*b{i}"), format!("a_x_b{i}")),
            Shape::Question => (format!("q?x{i}"), format!("qZx{i}")),
            Shape::Class => (format!("[ab]c{i}"), format!("bc{i}")),
            Shape::Alternation => (format!("{{get,put}}_{i}"), format!("put_{i}")),
            Shape::Host => (
                format!("*.h{i}.example.com"),
                format!("API.H{i}.EXAMPLE.COM"),
            ),
        }
    }
}

/// Parses a comma-separated list of names (`WRIT_BENCH_SHAPES`,
/// `WRIT_BENCH_SCOPES`) against `all`; `None` when one is not among them.
#[must_use]
pub fn parse_names<T: Copy>(list: &str, all: &[T], name: fn(T) -> &'static str) -> Option<Vec<T>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|wanted| all.iter().copied().find(|t| name(*t) == wanted))
        .collect()
}

/// The tiers of the tier scope, rule `i` for `TIERS[i % 4]`.
pub const TIERS: [&str; 4] = ["untrusted", "verified", "trusted", "privileged"];

/// Whom each rule is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every agent.
    Any,
    /// `for agents [ag<i>]`
    Agent,
    /// `for roles [r<i>]`
    Role,
    /// `for tiers [TIERS[i % 4]]`, the agents `bot-<tier>` declared.
    Tier,
    /// `for tags [t<i>]`
    Tag,
}

impl Scope {
    /// Every scope, in the order the tables print them.
    pub const ALL: [Scope; 5] = [
        Scope::Any,
        Scope::Agent,
        Scope::Role,
        Scope::Tier,
        Scope::Tag,
    ];

    /// The scope's name in tables and in `WRIT_BENCH_SCOPES`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Scope::Any => "any",
            Scope::Agent => "agent",
            Scope::Role => "role",
            Scope::Tier => "tier",
            Scope::Tag => "tag",
        }
    }
}

/// The request a bench sends, before an engine's own form of it.
#[derive(Clone, Debug)]
pub struct Probe {
    pub agent: String,
    pub roles: Vec<String>,
    pub tags: Vec<String>,
    pub action: String,
    pub target: Option<String>,
    /// The number in the request's pattern: the rule it was written for
    /// (`n` for a miss).
    pub rule: usize,
}

/// The amount every request carries (the rules allow `amount < 100`).
pub const AMOUNT: i64 = 50;

impl Probe {
    /// The writ request, dated so that no clock is read.
    #[must_use]
    pub fn request(&self) -> writ_runtime::Request {
        let mut context = std::collections::BTreeMap::new();
        context.insert(
            "amount".to_owned(),
            writ_runtime::Value::Number(AMOUNT as f64),
        );
        writ_runtime::Request {
            agent: self.agent.clone(),
            roles: self.roles.clone(),
            tags: self.tags.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            context,
            at: Some(jiff::Timestamp::UNIX_EPOCH),
            ..writ_runtime::Request::default()
        }
    }
}

/// N rules of one shape and one scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Workload {
    pub shape: Shape,
    pub scope: Scope,
    pub n: usize,
}

impl Workload {
    /// The policy in the writ language.
    #[must_use]
    pub fn policy(&self) -> String {
        let mut s = String::with_capacity(self.n * 90 + 256);
        s.push_str("policy \"shapes\" { default deny }\n\n");
        if self.scope == Scope::Tier {
            for tier in TIERS {
                let _ = writeln!(s, "agent \"bot-{tier}\" {{ tier {tier} }}\n");
            }
        }
        for i in 0..self.n {
            let shape = self.shape.of_rule(self.n, i);
            let pattern = shape.pattern(i);
            match shape {
                Shape::Host => {
                    let _ = writeln!(s, "rule r{i}: allow \"net:connect\" on hosts \"{pattern}\"");
                }
                _ => {
                    let _ = writeln!(s, "rule r{i}: allow \"{pattern}\"");
                }
            }
            match self.scope {
                Scope::Any => {}
                Scope::Agent => {
                    let _ = writeln!(s, "  for agents [ag{i}]");
                }
                Scope::Role => {
                    let _ = writeln!(s, "  for roles [r{i}]");
                }
                Scope::Tier => {
                    let _ = writeln!(s, "  for tiers [{}]", TIERS[i % TIERS.len()]);
                }
                Scope::Tag => {
                    let _ = writeln!(s, "  for tags [t{i}]");
                }
            }
            s.push_str("  when amount < 100\n\n");
        }
        s
    }

    /// The request only the last rule allows.
    #[must_use]
    pub fn hit(&self) -> Probe {
        self.probe(self.n.saturating_sub(1))
    }

    /// The near miss: the last rule's principal, the pattern's string for
    /// rule `n`, which does not exist.
    #[must_use]
    pub fn miss(&self) -> Probe {
        self.probe(self.n)
    }

    fn probe(&self, rule: usize) -> Probe {
        let last = self.n.saturating_sub(1);
        let shape = self.shape.of_rule(self.n, last);
        let (action, target) = match shape {
            Shape::Host => ("net:connect".to_owned(), Some(shape.matching(rule))),
            _ => (shape.matching(rule), None),
        };
        let (agent, roles, tags) = match self.scope {
            Scope::Any => ("alice".to_owned(), Vec::new(), Vec::new()),
            Scope::Agent => (format!("ag{last}"), Vec::new(), Vec::new()),
            Scope::Role => ("alice".to_owned(), vec![format!("r{last}")], Vec::new()),
            Scope::Tier => (
                format!("bot-{}", TIERS[last % TIERS.len()]),
                Vec::new(),
                Vec::new(),
            ),
            Scope::Tag => ("alice".to_owned(), Vec::new(), vec![format!("t{last}")]),
        };
        Probe {
            agent,
            roles,
            tags,
            action,
            target,
            rule,
        }
    }
}

/// The per-agent policy of issue 22's compile table: `n / 10` agents
/// `ag<k>` of role `r<k>`, each with ten rules on exact targets, five for
/// the agent and five for its role.
#[must_use]
pub fn per_agent_policy(n: usize) -> String {
    let mut s = String::with_capacity(n * 80 + 64);
    s.push_str("policy \"per-agent\" { default deny }\n\n");
    for k in 0..n / 10 {
        let _ = writeln!(s, "agent \"ag{k}\" {{ roles [r{k}] }}\n");
        for j in 0..10 {
            let who = if j < 5 { "agents [ag" } else { "roles [r" };
            let _ = writeln!(
                s,
                "rule a{k}_{j}: allow \"tool:call\" on \"t{j}\"\n  for {who}{k}]\n  when amount < 100\n"
            );
        }
    }
    s
}

/// The adversarial patterns of the worst-case workload, the last rule's
/// first: stars and literals the request repeats, so that a matcher that
/// backtracks, or tries each pattern at each position, pays for it.
const ADVERSARIAL: [&str; 5] = [
    "*a*a*a*b",
    "a*a*a*a*c",
    "*aa*aa?a*d",
    "*{a,aa}*a*e",
    "*[ab]*a*f",
];

/// Where the worst-case workload's patterns stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `allow "<pattern>"`
    Action,
    /// `allow "tool:call" on "<pattern>"`
    Target,
    /// `allow "tool:call" when note matches "<pattern>"`
    Context,
}

impl Field {
    pub const ALL: [Field; 3] = [Field::Action, Field::Target, Field::Context];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Field::Action => "action",
            Field::Target => "target",
            Field::Context => "context `matches`",
        }
    }
}

/// The worst-case workload: `n` rules whose patterns cycle through
/// [`ADVERSARIAL`], each ending with its number, in `field`.
#[must_use]
pub fn adversarial_policy(field: Field, n: usize) -> String {
    let mut s = String::with_capacity(n * 70 + 64);
    s.push_str("policy \"worst\" { default deny }\n\n");
    for i in 0..n {
        let pattern = format!(
            "{}{i}",
            ADVERSARIAL[(n.saturating_sub(1).saturating_sub(i)) % ADVERSARIAL.len()]
        );
        let _ = match field {
            Field::Action => writeln!(s, "rule w{i}: allow \"{pattern}\"\n"),
            Field::Target => writeln!(s, "rule w{i}: allow \"tool:call\" on \"{pattern}\"\n"),
            Field::Context => writeln!(
                s,
                "rule w{i}: allow \"tool:call\" when note matches \"{pattern}\"\n"
            ),
        };
    }
    s
}

/// The worst-case request of `len` bytes in `field`: `a` repeated, which
/// every pattern's literals share; for a hit it ends with `b<n - 1>`, which
/// only the last rule (`*a*a*a*b<n - 1>`) matches.
#[must_use]
pub fn adversarial_request(field: Field, n: usize, len: usize, hit: bool) -> writ_runtime::Request {
    let tail = if hit {
        format!("b{}", n.saturating_sub(1))
    } else {
        String::new()
    };
    let mut text = "a".repeat(len.saturating_sub(tail.len()));
    text.push_str(&tail);
    let mut req = writ_runtime::Request::new("alice", "tool:call");
    req.at = Some(jiff::Timestamp::UNIX_EPOCH);
    match field {
        Field::Action => req.action = text,
        Field::Target => req.target = Some(text),
        Field::Context => {
            req.context
                .insert("note".to_owned(), writ_runtime::Value::String(text));
        }
    }
    req
}
