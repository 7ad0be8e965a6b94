//! Rate limits and token budgets in the runtime: exact under concurrency,
//! only allowed decisions consume, counts shared through a store and kept
//! across a reload.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use writ::{Source, compile};
use writ_runtime::{Effect, InProcess, OnStoreFailure, Reason, Request, Runtime};

fn runtime(policy: &str) -> Runtime {
    let sources = [Source {
        name: "limits.writ".to_owned(),
        text: policy.to_owned(),
    }];
    let comp = compile(&sources, None);
    let set = comp
        .checked_set()
        .unwrap_or_else(|| panic!("{:?}", comp.diagnostics));
    let bytes = writ::bundle::compile(set, &sources, None).unwrap();
    Runtime::from_vec(bytes).unwrap()
}

const POLICY: &str = r#"
policy "limits" {
  default deny
}

agent "a" {
  limit 5000 tokens per hour
}

agent "b" { }

rule calls: allow "tool:call" on "x"
  limit 1000 per hour

rule budget: allow "model:call"

rule refused: deny "tool:call" on "forbidden"
"#;

fn request(agent: &str, action: &str, target: Option<&str>, tokens: u64) -> Request {
    Request {
        target: target.map(str::to_owned),
        tokens,
        at: Some("2026-01-01T10:00:00Z".parse().unwrap()),
        ..Request::new(agent, action)
    }
}

/// Runs `per_thread` requests on each of `threads` threads; the number
/// allowed.
fn hammer(rt: &Arc<Runtime>, threads: usize, per_thread: usize, req: &Request) -> usize {
    let allowed = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..threads {
            let rt = Arc::clone(rt);
            let allowed = Arc::clone(&allowed);
            s.spawn(move || {
                let mut mine = 0;
                for _ in 0..per_thread {
                    if rt.check(req).effect == Effect::Allow {
                        mine += 1;
                    }
                }
                allowed.fetch_add(mine, Ordering::Relaxed);
            });
        }
    });
    allowed.load(Ordering::Relaxed)
}

#[test]
fn eight_threads_allow_exactly_the_limit() {
    let rt = Arc::new(runtime(POLICY));
    let req = request("b", "tool:call", Some("x"), 0);
    assert_eq!(hammer(&rt, 8, 100_000, &req), 1000);
    // Full: the reason names the limit and says when to retry.
    let d = rt.check(&req);
    assert_eq!(d.effect, Effect::Deny);
    assert!(
        d.reason_text(&req)
            .unwrap()
            .contains("rate limit `1000/hour` of rule `calls`")
    );
    assert!(d.retry_after_s.is_some_and(|s| s > 0 && s <= 3600));
    // Counted per agent: another agent still has its own 1000.
    let other = request("a", "tool:call", Some("x"), 0);
    assert_eq!(hammer(&rt, 4, 500, &other), 1000);
}

#[test]
fn token_budgets_are_exact_and_only_allowed_decisions_consume() {
    let rt = Arc::new(runtime(POLICY));
    // Denied requests by the same agent consume nothing.
    let denied = request("a", "tool:call", Some("forbidden"), 100);
    assert_eq!(hammer(&rt, 2, 1000, &denied), 0);
    // 5000 tokens per hour, 7 per request: 714 fit, under contention.
    let req = request("a", "model:call", None, 7);
    assert_eq!(hammer(&rt, 8, 10_000, &req), 714);
    let d = rt.check(&req);
    assert!(
        d.reason_text(&req).unwrap().contains("tokens limit"),
        "{:?}",
        d.reason_text(&req)
    );
}

#[test]
fn a_shared_store_keeps_counts_across_runtimes() {
    let store = Arc::new(InProcess::new());
    let first = runtime(POLICY).with_limit_store(store.clone(), OnStoreFailure::Deny);
    let req = request("b", "tool:call", Some("x"), 0);
    for _ in 0..600 {
        assert_eq!(first.check(&req).effect, Effect::Allow);
    }
    // A reloaded bundle (here: the same policy with another rule added
    // before it) keeps counting the rule by its name.
    let reloaded = runtime(&POLICY.replace(
        "rule calls:",
        "rule other: deny \"tool:call\" on \"y\"\n\nrule calls:",
    ))
    .with_limit_store(store, OnStoreFailure::Deny);
    let rt = Arc::new(reloaded);
    assert_eq!(hammer(&rt, 4, 1000, &req), 400);
}

/// A store that is never reachable.
#[derive(Debug)]
struct Down;

impl writ_runtime::LimitStore for Down {
    fn peek(
        &self,
        _: &writ_runtime::limiter::Acquire<'_>,
        _: i64,
    ) -> Result<(), writ_runtime::limiter::Refusal> {
        Err(writ_runtime::limiter::Refusal::Unavailable(
            "connection refused".to_owned(),
        ))
    }
    fn acquire(
        &self,
        _: &[writ_runtime::limiter::Acquire<'_>],
        _: i64,
    ) -> Result<(), writ_runtime::limiter::Refusal> {
        Err(writ_runtime::limiter::Refusal::Unavailable(
            "connection refused".to_owned(),
        ))
    }
}

#[test]
fn an_unreachable_store_denies_by_default_and_allows_when_told() {
    let req = request("b", "tool:call", Some("x"), 0);
    let closed = runtime(POLICY).with_limit_store(Arc::new(Down), OnStoreFailure::Deny);
    let d = closed.check(&req);
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.reason_text(&req).unwrap().contains("connection refused"));
    // Named by the rule whose limit could not be counted.
    assert_eq!(d.rule, Some("calls"));
    // Requests that meet no limit never ask the store.
    let free = request("b", "tool:call", Some("forbidden"), 0);
    assert!(
        closed
            .check(&free)
            .reason_text(&free)
            .is_none_or(|r| !r.contains("store"))
    );
    let open = runtime(POLICY).with_limit_store(Arc::new(Down), OnStoreFailure::Allow);
    assert_eq!(open.check(&req).effect, Effect::Allow);
}

const SHARED: &str = r#"
policy "shared" {
  default deny
}

rule refund: allow "tool:call" on refund
  limit 3 per minute shared

rule lookup: allow "tool:call" on lookup
  limit 3 per minute
"#;

#[test]
fn a_shared_rule_limit_holds_all_agents_together_to_n() {
    let rt = runtime(SHARED);
    let allowed = |agent: &str, target: &str, n: usize| {
        let req = request(agent, "tool:call", Some(target), 0);
        (0..n)
            .filter(|_| rt.check(&req).effect == Effect::Allow)
            .count()
    };
    // Shared: two agents together get 3.
    assert_eq!(allowed("a", "refund", 2), 2);
    assert_eq!(allowed("b", "refund", 5), 1);
    assert_eq!(allowed("a", "refund", 1), 0);
    let req = request("c", "tool:call", Some("refund"), 0);
    let d = rt.check(&req);
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.rule, Some("refund"));
    assert_eq!(
        d.reason_text(&req).unwrap(),
        "rate limit `3/minute` of rule `refund` (shared by all agents) reached"
    );
    assert!(d.retry_after_s.is_some_and(|s| (1..=60).contains(&s)));
    // Not shared: each agent gets 3.
    assert_eq!(allowed("a", "lookup", 5), 3);
    assert_eq!(allowed("b", "lookup", 5), 3);
    let req = request("b", "tool:call", Some("lookup"), 0);
    let d = rt.check(&req);
    assert_eq!(
        d.reason_text(&req).unwrap(),
        "rate limit `3/minute` of rule `lookup` reached for agent `b`"
    );
    // The sentence is written when asked for, not while deciding.
    assert!(matches!(d.reason, Reason::Limit(_)), "{:?}", d.reason);
}

#[test]
fn a_shared_limit_is_exact_across_threads_and_agents() {
    let rt = Arc::new(runtime(
        "rule refund: allow \"tool:call\" on refund\n  limit 1000 per hour shared\n",
    ));
    let allowed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (rt, allowed) = (Arc::clone(&rt), &allowed);
            s.spawn(move || {
                // Each thread cycles through its own three agents.
                let reqs: Vec<Request> = (0..3)
                    .map(|i| request(&format!("agent-{t}-{i}"), "tool:call", Some("refund"), 0))
                    .collect();
                let mut mine = 0;
                for i in 0..30_000 {
                    if rt.check(&reqs[i % 3]).effect == Effect::Allow {
                        mine += 1;
                    }
                }
                allowed.fetch_add(mine, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(allowed.load(Ordering::Relaxed), 1000);
}

#[test]
fn shared_and_per_agent_counts_of_one_rule_stay_apart_in_a_store() {
    // The same rule name, counted per agent by one bundle and shared by the
    // next (a reload), through one store: the counts do not mix.
    let store = Arc::new(InProcess::new());
    let per_agent = runtime("rule refund: allow \"tool:call\"\n  limit 3 per hour\n")
        .with_limit_store(store.clone(), OnStoreFailure::Deny);
    let shared = runtime("rule refund: allow \"tool:call\"\n  limit 3 per hour shared\n")
        .with_limit_store(store, OnStoreFailure::Deny);
    let req = request("a", "tool:call", None, 0);
    for _ in 0..3 {
        assert_eq!(per_agent.check(&req).effect, Effect::Allow);
    }
    assert_eq!(per_agent.check(&req).effect, Effect::Deny);
    for agent in ["a", "b", "c"] {
        assert_eq!(
            shared.check(&request(agent, "tool:call", None, 0)).effect,
            Effect::Allow
        );
    }
    assert_eq!(shared.check(&req).effect, Effect::Deny);
    // The per-agent counts are where they were.
    assert_eq!(
        per_agent.check(&request("b", "tool:call", None, 0)).effect,
        Effect::Allow
    );
    assert_eq!(per_agent.check(&req).effect, Effect::Deny);
}

#[test]
fn peeking_takes_nothing_from_a_limit_but_sees_it_full() {
    let rt = runtime(POLICY);
    let req = request("b", "tool:call", Some("x"), 0);
    let now: jiff::Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
    for _ in 0..5_000 {
        assert_eq!(rt.peek_at(&req, now).effect, Effect::Allow);
    }
    // Nothing was taken: the limit's 1,000 are all there.
    for _ in 0..1000 {
        assert_eq!(rt.check(&req).effect, Effect::Allow);
    }
    assert_eq!(rt.check(&req).effect, Effect::Deny);
    // A full limit refuses a peek too, with the same reason.
    let peeked = rt.peek_at(&req, now);
    assert_eq!(peeked.effect, Effect::Deny);
    assert_eq!(peeked.rule, Some("calls"));
    assert_eq!(peeked.reason_text(&req), rt.check(&req).reason_text(&req));
}
