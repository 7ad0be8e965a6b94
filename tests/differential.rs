//! Differential tests: the compiled bundle (writ-runtime) and the reference
//! evaluator (writ-eval) must give the same decision, rule, policy, reason,
//! risk and retry time for random policies and random request sequences.
//!
//! Each proptest case is one random policy and a sequence of random
//! requests (limits are stateful, so both sides see the same sequence).
//! By default 2,000 policies × 50 requests = 100,000 decisions compared;
//! `WRIT_DIFF_POLICIES=20000 cargo test --release --test differential`
//! runs a longer campaign (see docs/testing.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;

use proptest::prelude::*;
use writ::{Source, compile};
use writ_eval::{Evaluator, Request};

const REQUESTS_PER_POLICY: usize = 50;

fn policies() -> u32 {
    std::env::var("WRIT_DIFF_POLICIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

const ACTIONS: &[&str] = &[
    "\"tool:call\"",
    "\"read:*\"",
    "\"*:write\"",
    "\"re?d:*\"",
    "\"{read,write}:doc\"",
    "\"[rw]*\"",
    "\"*\"",
    "\"model:use\"",
    "\"net:connect\"",
    "\"agent:delegate\"",
    "\"handoff:b\"",
];
const TARGETS: &[&str] = &[
    "refund",
    "\"lookup_*\"",
    "\"*.example.com\"",
    "hosts \"*.Example.com\"",
    "[refund, doc]",
    "\"d?c\"",
];
const AGENTS: &[&str] = &["a", "b", "c", "ghost"];
const ROLES: &[&str] = &["support", "billing", "ops"];

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(&["<", "<=", ">", ">=", "==", "!="][..]),
            -5i32..200
        )
            .prop_map(|(op, n)| format!("amount {op} {n}")),
        prop::sample::select(
            &[
                "currency in [USD, EUR]",
                "currency not in [USD]",
                "currency == USD"
            ][..]
        )
        .prop_map(str::to_owned),
        Just("labels contains vip".to_owned()),
        Just("email matches \"*@example.com\"".to_owned()),
        Just("ticket.priority in [high, urgent]".to_owned()),
        Just("amount exists".to_owned()),
        Just("target matches \"lookup_*\"".to_owned()),
        prop::sample::select(&["\"09:00-17:00\"", "\"22:00-06:00\""][..])
            .prop_map(|w| format!("time in {w}")),
        Just("weekday in [sat, sun]".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    atom().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} and {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

fn rule(i: usize) -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["allow", "deny", "approve"][..]),
        prop::sample::subsequence(ACTIONS.to_vec(), 1..3),
        prop::option::of(prop::sample::select(TARGETS)),
        prop::option::of(prop::sample::select(
            &[
                "for agents [a]",
                "for roles [support]",
                "for roles [billing, ops]",
                "for tiers [trusted]",
                "for tags [x]",
            ][..],
        )),
        prop::option::of(expr()),
        // A limit of 1 to 3 per minute, per agent or shared by all agents.
        prop::option::of((1u32..4, prop::bool::ANY)),
        prop::option::of(prop::sample::select(&["low", "high"][..])),
        prop::option::of(prop::sample::select(
            &["\"because {agent} did {action} on {target}\"", "\"plain\""][..],
        )),
        prop::bool::weighted(0.15),
        prop::bool::ANY,
    )
        .prop_map(
            move |(
                effect,
                actions,
                target,
                scope,
                cond,
                limit,
                risk,
                reason,
                constraint,
                named,
            )| {
                let mut s = String::from("rule ");
                if named {
                    let _ = write!(s, "r{i}: ");
                }
                let _ = write!(s, "{effect} [{}]", actions.join(", "));
                if let Some(t) = target {
                    let _ = write!(s, "\n  on {t}");
                }
                if let Some(sc) = scope {
                    let _ = write!(s, "\n  {sc}");
                }
                if let Some(c) = cond {
                    let _ = write!(s, "\n  when {c}");
                }
                if constraint {
                    s.push_str("\n  require stores or store in [vs_a, vs_b]");
                }
                if let Some((n, shared)) = limit {
                    let _ = write!(s, "\n  limit {n} per minute");
                    if shared {
                        s.push_str(" shared");
                    }
                }
                if let Some(r) = risk {
                    let _ = write!(s, "\n  risk {r}");
                }
                if let Some(r) = reason {
                    let _ = write!(s, "\n  because {r}");
                }
                s.push('\n');
                s
            },
        )
}

fn policy() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["first-match", "deny-overrides"][..]),
        prop::sample::select(&["deny", "allow", "approve"][..]),
        prop::bool::ANY,
        prop::option::of(prop::sample::select(&["none", "strict"][..])),
        prop::option::of(1u32..3),
        prop::collection::vec(rule(0), 1..8),
        prop::bool::ANY,
    )
        .prop_map(|(combine, default, paris, ceiling, depth, rules, agents)| {
            let mut s = format!("policy \"p\" {{\n  combine {combine}\n  default {default} risk medium\n");
            if paris {
                s.push_str("  timezone \"Europe/Paris\"\n");
            }
            if let Some(c) = ceiling {
                let _ = writeln!(s, "  ceiling {c}");
            }
            if let Some(d) = depth {
                let _ = writeln!(s, "  max_delegation_depth {d}");
            }
            s.push_str("}\n");
            if agents {
                s.push_str(concat!(
                    "agent \"a\" {\n  roles [support]\n  tier trusted\n  tags [x]\n  tools allow [\"lookup_*\", refund, \"d?c\"]\n  delegates [b]\n}\n",
                    "agent \"b\" {\n  roles [billing]\n  models block [\"gpt-3*\"]\n  hosts allow [\"*.example.com\"]\n  require_tls true\n  limit 3 requests per minute\n}\n",
                    "role \"ops\" {\n  token_prefix \"tok_ops_\"\n  limit 20 tokens per minute on \"model:use\"\n}\n",
                ));
            }
            for (i, r) in rules.iter().enumerate() {
                s.push_str(&r.replacen("rule r0:", &format!("rule r{i}:"), 1));
            }
            s
        })
}

fn request() -> impl Strategy<Value = String> {
    (
        prop::sample::select(AGENTS),
        prop::sample::subsequence(ROLES.to_vec(), 0..2),
        prop::sample::select(
            &[
                "tool:call",
                "read:x",
                "read:doc",
                "write:doc",
                "rxd:1",
                "a:write",
                "model:use",
                "net:connect",
                "agent:delegate",
                "handoff:b",
                "zzz",
            ][..],
        ),
        prop::option::of(prop::sample::select(
            &[
                "refund",
                "lookup_1",
                "doc",
                "api.example.com",
                "API.EXAMPLE.COM",
                "gpt-3.5",
                "b",
                "c",
            ][..],
        )),
        prop::option::of(0i32..150),
        prop::option::of(prop::sample::select(&["USD", "EUR", "GBP"][..])),
        prop::sample::select(
            &[
                "2025-01-15T08:30:00Z",
                "2025-01-15T12:00:00Z",
                "2025-01-18T23:30:00Z",
                "2025-01-19T05:00:00Z",
            ][..],
        ),
        prop::option::of(prop::sample::select(
            &[
                "[\"a\", \"b\"]",
                "[\"b\", \"a\"]",
                "[\"a\", \"b\", \"c\"]",
                "[\"ghost\", \"a\"]",
            ][..],
        )),
        prop::option::of(prop::sample::select(&["tok_ops_1", "tok_other"][..])),
        (prop::bool::ANY, prop::bool::ANY, 0u32..30),
    )
        .prop_map(
            |(
                agent,
                roles,
                action,
                target,
                amount,
                currency,
                at,
                chain,
                token,
                (vip, https, tokens),
            )| {
                let mut ctx = serde_json::Map::new();
                if let Some(a) = amount {
                    ctx.insert("amount".into(), a.into());
                }
                if let Some(c) = currency {
                    ctx.insert("currency".into(), c.into());
                }
                if vip {
                    ctx.insert("labels".into(), serde_json::json!(["vip", "x"]));
                    ctx.insert("email".into(), "ann@example.com".into());
                    ctx.insert("ticket".into(), serde_json::json!({"priority": "high"}));
                    ctx.insert("stores".into(), serde_json::json!(["vs_a"]));
                } else {
                    ctx.insert("store".into(), "vs_c".into());
                }
                if https {
                    ctx.insert("scheme".into(), "https".into());
                }
                let mut req = serde_json::json!({
                    "action": action, "roles": roles, "context": ctx, "at": at, "tokens": tokens,
                });
                match chain {
                    Some(c) => req["chain"] = serde_json::from_str(c).unwrap(),
                    None => req["agent"] = agent.into(),
                }
                if let Some(t) = target {
                    req["target"] = t.into();
                }
                if let Some(t) = token {
                    req["token"] = t.into();
                }
                req.to_string()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: policies(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_bundle_decides_like_the_reference_evaluator(
        src in policy(),
        requests in prop::collection::vec(request(), REQUESTS_PER_POLICY),
    ) {
        let sources = vec![Source { name: "diff.writ".into(), text: src.clone() }];
        let comp = compile(&sources, None);
        let Some(set) = comp.checked_set() else {
            // Generated names can collide with explicit ones; nothing to compare.
            return Ok(());
        };
        let bytes = writ::bundle::compile(set, &sources, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let rt = writ_runtime::Runtime::from_bytes(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut reference = Evaluator::new(set);
        let now = "2025-01-15T12:00:00Z".parse().unwrap();
        for json in &requests {
            let req = Request::from_json(json).unwrap();
            let expected = reference.check(&req, now).to_json();
            let r = writ::bundle::runtime_request(&req);
            let got = rt.check_at(&r, now).to_json(&r);
            prop_assert_eq!(&got, &expected, "request {}\npolicy:\n{}", json, src);
        }
    }
}
