//! Property tests of the writ language (proptest):
//! - the parser never panics or hangs, whatever the input;
//! - `fmt` is idempotent, and `parse(fmt(x))` lowers to the same IR as `x`;
//! - `convert` round-trips YAML → writ → YAML to the same IR.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use writ::lang::{convert, fmt, parse};
use writ::{Source, compile};
use writ_diagnostics::FileId;

/// Runs `f` on another thread and fails if it panics or takes more than
/// a few seconds (a hang).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: took more than 10 s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// Cases per property: the given default, or `PROPTEST_CASES` when set
/// (for longer local runs).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn writ_source(text: &str) -> Vec<Source> {
    vec![Source {
        name: "prop.writ".to_owned(),
        text: text.to_owned(),
    }]
}

// ---------------------------------------------------------------------
// Arbitrary input

const FRAGMENTS: &[&str] = &[
    "policy",
    "agent",
    "role",
    "every",
    "rule",
    "allow",
    "deny",
    "approve",
    "version",
    "default",
    "combine",
    "timezone",
    "risk",
    "because",
    "roles",
    "tier",
    "tags",
    "models",
    "tools",
    "hosts",
    "block",
    "limit",
    "per",
    "shared",
    "on",
    "as",
    "for",
    "agents",
    "tiers",
    "when",
    "require",
    "and",
    "or",
    "not",
    "in",
    "matches",
    "contains",
    "exists",
    "time",
    "weekday",
    "true",
    "false",
    "null",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    ":",
    ".",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "x",
    "amount",
    "first-match",
    "\"tool:call\"",
    "\"unterminated",
    "\"esc\\q\"",
    "12",
    "-3.5",
    "1.2.3",
    "7k",
    "#c\n",
    "\n",
    "$",
    ";",
    "=",
    "'",
    "\u{e9}",
    "\u{0}",
    "\"a\\u{zz}\"",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(FRAGMENTS),
            prop::sample::select(&[" ", "\n", "", "  "][..]),
        ),
        0..80,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(t, sep)| format!("{t}{sep}"))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_or_hangs_on_any_text(text in any::<String>()) {
        let t = text.clone();
        within("parse", move || parse::parse(FileId(0), &t));
        let t = text.clone();
        within("compile", move || compile(&writ_source(&t), None).diagnostics.len());
    }

    #[test]
    fn parser_never_panics_or_hangs_on_token_soup(text in token_soup()) {
        let t = text.clone();
        let parsed = within("parse", move || parse::parse(FileId(0), &t));
        // Every diagnostic points into the file.
        for d in &parsed.diagnostics {
            let span = d.span().unwrap();
            prop_assert!(span.end as usize <= text.len(), "{d:?} outside {text:?}");
        }
        let t = text.clone();
        within("compile", move || compile(&writ_source(&t), None).diagnostics.len());
        let t = text.clone();
        within("fmt", move || fmt::format(&t, "prop").is_ok());
    }
}

// ---------------------------------------------------------------------
// Well-formed policies, with comments and irregular layout

fn sep() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&[" ", "\n  ", "\n", "  ", "\n\n    "][..])
}

fn comment() -> impl Strategy<Value = String> {
    prop::option::of(prop::sample::select(
        &["note", "why: audit", "TODO", ""][..],
    ))
    .prop_map(|c| c.map_or_else(String::new, |c| format!("# {c}\n")))
}

fn field() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "amount",
            "currency",
            "customer.tier",
            "labels",
            "risk",
            "ticket.priority",
            "target",
            "\"time\"",
            "a.\"b c\"",
        ][..],
    )
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        (-1000i32..1000).prop_map(|n| n.to_string()),
        Just("1.5".to_owned()),
        Just("USD".to_owned()),
        Just("\"two words\"".to_owned()),
        Just("\"quote \\\" and \\\\\"".to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
    ]
}

fn list() -> impl Strategy<Value = String> {
    prop::collection::vec(scalar(), 0..4).prop_map(|v| format!("[{}]", v.join(", ")))
}

fn atom() -> impl Strategy<Value = String> {
    let ord = prop::sample::select(&["<", "<=", ">", ">="][..]);
    prop_oneof![
        (field(), ord, -100i32..100).prop_map(|(f, o, n)| format!("{f} {o} {n}")),
        (field(), prop::sample::select(&["==", "!="][..]), scalar())
            .prop_map(|(f, o, v)| format!("{f} {o} {v}")),
        (field(), list()).prop_map(|(f, l)| format!("{f} in {l}")),
        (field(), list()).prop_map(|(f, l)| format!("{f} not in {l}")),
        field().prop_map(|f| format!("{f} matches \"*@example.com\"")),
        (field(), scalar()).prop_map(|(f, v)| format!("{f} contains {v}")),
        field().prop_map(|f| format!("{f} exists")),
        prop::sample::select(&["\"09:00-17:00\"", "\"22:00-06:00\""][..])
            .prop_map(|w| format!("time in {w}")),
        Just("weekday in [sat, sun]".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), sep(), inner.clone()).prop_map(|(a, s, b)| format!("{a}{s}and {b}")),
            (inner.clone(), sep(), inner.clone()).prop_map(|(a, s, b)| format!("{a}{s}or {b}")),
            inner.clone().prop_map(|a| format!("not {a}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

fn clause() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "on refund",
                "on [\"lookup_*\", refund]",
                "on hosts \"*.Example.com\""
            ][..]
        )
        .prop_map(str::to_owned),
        prop::sample::select(
            &[
                "for roles [billing]",
                "for agents a0 tiers [trusted]",
                "for tags [x]"
            ][..]
        )
        .prop_map(str::to_owned),
        expr().prop_map(|e| format!("when {e}")),
        (
            1u32..500,
            prop::sample::select(&["second", "minute", "hour", "day"][..]),
            prop::sample::select(&["", " shared"][..])
        )
            .prop_map(|(n, u, shared)| format!("limit {n} per {u}{shared}")),
        prop::sample::select(&["risk low", "risk critical"][..]).prop_map(str::to_owned),
        Just("because \"Refunds over $100 need {agent}\"".to_owned()),
        Just("require stores or store in [vs_a, \"vs b\"]".to_owned()),
        Just("require target in [a, b] as \"allowed_targets\"".to_owned()),
    ]
}

fn rule(i: usize) -> impl Strategy<Value = String> {
    (
        comment(),
        prop::bool::ANY,
        prop::sample::select(&["allow", "deny", "approve"][..]),
        prop::sample::select(&["\"tool:call\"", "[\"model:use\", \"net:*\"]", "x"][..]),
        prop::collection::vec((sep(), clause(), comment()), 0..4),
    )
        .prop_map(move |(c, named, effect, actions, clauses)| {
            let mut s = c;
            s.push_str("rule ");
            if named {
                s.push_str(&format!("r{i}: "));
            }
            s.push_str(&format!("{effect} {actions}"));
            // At most one of each clause that may appear once.
            let mut seen = std::collections::HashSet::new();
            for (sep, cl, com) in clauses {
                let kw = cl.split(' ').next().unwrap_or("").to_owned();
                if matches!(kw.as_str(), "on" | "risk" | "limit" | "because") && !seen.insert(kw) {
                    continue;
                }
                s.push_str(sep);
                s.push_str(&cl);
                if !com.is_empty() {
                    s.push_str("  ");
                    s.push_str(com.trim_end());
                    s.push('\n');
                }
            }
            s.push('\n');
            s
        })
}

fn agent(i: usize) -> impl Strategy<Value = String> {
    let entries = prop::sample::subsequence(
        vec![
            "roles [billing, \"two words\"]",
            "tier trusted",
            "tags [x]",
            "token_prefix \"tok_\"",
            "models allow [\"gpt-4.1-*\"]",
            "models block [\"gpt-3.5-*\"] as \"blocked_models\"",
            "hosts allow [\"*.example.com\"]",
            "require_tls true",
            "limit 5 requests per minute",
            "limit 100 tokens per hour on \"model:use\" as \"tokens_per_hour\"",
            "delegates [a1]",
        ],
        0..6,
    );
    (
        comment(),
        prop::sample::select(&["agent", "role"][..]),
        entries,
        sep(),
    )
        .prop_map(move |(c, kind, entries, sep)| {
            let entries: Vec<&str> = entries
                .into_iter()
                .filter(|e| {
                    kind == "agent"
                        || !(e.starts_with("roles")
                            || e.starts_with("tier")
                            || e.starts_with("tags"))
                })
                .collect();
            format!("{c}{kind} \"a{i}\" {{{sep}{}{sep}}}\n", entries.join(sep))
        })
}

fn header() -> impl Strategy<Value = String> {
    prop::option::of(prop::sample::subsequence(
        vec![
            "version \"1.0\"",
            "description \"generated\"",
            "combine deny-overrides",
            "default approve risk high because \"ask {agent}\"",
            "timezone \"Europe/Paris\"",
        ],
        0..5,
    ))
    .prop_map(|h| {
        h.map_or_else(String::new, |entries| {
            format!(
                "# header\n\npolicy \"gen\" {{\n{}\n}}\n",
                entries.join("\n")
            )
        })
    })
}

fn policy() -> impl Strategy<Value = String> {
    (
        header(),
        prop::collection::vec(agent(0), 0..2),
        prop::collection::vec(rule(0), 1..5),
        comment(),
    )
        .prop_map(|(h, agents, rules, trailing)| {
            let mut s = h;
            for (i, a) in agents.iter().enumerate() {
                s.push_str(&a.replace("\"a0\"", &format!("\"a{i}\"")));
            }
            for (i, r) in rules.iter().enumerate() {
                s.push_str(&r.replace("rule r0:", &format!("rule r{i}:")));
            }
            s.push_str(&trailing);
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(192), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fmt_is_idempotent_and_keeps_the_meaning(src in policy()) {
        let parsed = parse::parse(FileId(0), &src);
        prop_assert!(parsed.syntax_ok(), "generator made a syntax error: {:?}\n{src}", parsed.diagnostics);
        let out = fmt::format(&src, "prop").map_err(|e| TestCaseError::fail(format!("{e:?}\n{src}")))?;
        let again = fmt::format(&out, "prop").map_err(|e| TestCaseError::fail(format!("{e:?}\n{out}")))?;
        prop_assert_eq!(&again, &out, "not idempotent; input:\n{}", src);
        let reparsed = parse::parse(FileId(0), &out);
        prop_assert_eq!(fmt::meaning(&reparsed.file, "prop"), fmt::meaning(&parsed.file, "prop"));
        prop_assert_eq!(reparsed.file.comments.len(), parsed.file.comments.len());
    }

    #[test]
    fn convert_round_trips_yaml_to_writ_to_yaml(src in policy()) {
        let comp = compile(&writ_source(&src), None);
        let Some(set) = comp.checked_set() else {
            // Duplicate names and the like: not a conversion question.
            return Ok(());
        };
        let comments = writ::lang::lexer::lex(FileId(0), &src).comments;
        // A YAML policy to start from (when the YAML schema can say it).
        // (About two thirds of generated policies can be said in YAML; the
        // rest use `as` labels, `on hosts` or operator-named keys.)
        let Ok(yaml1) = convert::to_yaml(set, &comments) else { return Ok(()) };
        let c1 = compile(&[Source { name: "one.yaml".into(), text: yaml1.clone() }], None);
        let s1 = c1.checked_set().ok_or_else(|| TestCaseError::fail(format!("{:?}\n{yaml1}", c1.diagnostics)))?;
        prop_assert_eq!(convert::normalized(s1), convert::normalized(set));
        // YAML → writ
        let ycomments = convert::yaml_comments(FileId(0), &yaml1);
        prop_assert_eq!(ycomments.len(), comments.len(), "comments lost:\n{}", yaml1);
        let writ2 = convert::to_writ(s1, &yaml1, ycomments).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let c2 = compile(&writ_source(&writ2), None);
        let s2 = c2.checked_set().ok_or_else(|| TestCaseError::fail(format!("{:?}\n{writ2}", c2.diagnostics)))?;
        prop_assert_eq!(convert::normalized(s2), convert::normalized(s1), "\n{}\n{}", yaml1, writ2);
        // → YAML again
        let wcomments = writ::lang::lexer::lex(FileId(0), &writ2).comments;
        let yaml2 = convert::to_yaml(s2, &wcomments).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let c3 = compile(&[Source { name: "two.yaml".into(), text: yaml2.clone() }], None);
        let s3 = c3.checked_set().ok_or_else(|| TestCaseError::fail(format!("{:?}\n{yaml2}", c3.diagnostics)))?;
        prop_assert_eq!(convert::normalized(s3), convert::normalized(s1), "\n{}\n{}", yaml1, yaml2);
    }
}
