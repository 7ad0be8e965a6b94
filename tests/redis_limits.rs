//! Limits shared through a real Redis server: several runtimes (each with
//! its own connections, as separate agent processes have) allow exactly a
//! limit between them, and an unreachable Redis denies by default.
//!
//! The store's semantics are the in-process store's: a limit of N fills
//! to exactly N whatever N (20,000 here: a call's cost does not grow with
//! the limit), and a refusal's `retry_after` is the exact time until
//! enough of the oldest amounts age out, for token budgets too (checked
//! by hand and against [`InProcess`] on the same calls).
//!
//! Each test starts its own `redis-server` on a free loopback port; when
//! there is none the tests show as ignored, or fail under `tests/run`
//! (see `tests/support/redis_harness.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use writ::{Source, compile};
use writ_runtime::limiter::{Acquire, LimitKind, Refusal, Scope};
use writ_runtime::model::Rate;
use writ_runtime::{Effect, InProcess, LimitStore, OnStoreFailure, RedisStore, Request, Runtime};

#[path = "support/redis_harness.rs"]
mod redis_harness;
#[path = "support/redis.rs"]
mod redis_server;
use redis_server::Redis as Server;

/// A store on `server`, its keys under `prefix`.
fn store(server: &Server, prefix: &str) -> RedisStore {
    RedisStore::open(&server.url()).unwrap().with_prefix(prefix)
}

/// The tests, by name (each needs `redis-server`).
const TESTS: &[(&str, bool, fn())] = &[
    (
        "processes_sharing_redis_allow_exactly_the_limit_and_fail_closed",
        true,
        processes_sharing_redis_allow_exactly_the_limit_and_fail_closed,
    ),
    (
        "a_twenty_thousand_request_limit_fills_exactly",
        true,
        a_twenty_thousand_request_limit_fills_exactly,
    ),
    (
        "retry_after_is_exact_with_mixed_amounts",
        true,
        retry_after_is_exact_with_mixed_amounts,
    ),
    (
        "a_lost_or_wrong_sum_is_summed_again_from_the_entries",
        true,
        a_lost_or_wrong_sum_is_summed_again_from_the_entries,
    ),
];

fn main() -> std::process::ExitCode {
    redis_harness::run(TESTS, "limits shared through Redis")
}

/// A server of the test's own.
fn start() -> Server {
    Server::start(None)
}

fn runtime(url: &str, prefix: &str, on_failure: OnStoreFailure) -> Runtime {
    runtime_of(
        "rule calls: allow \"tool:call\"\n  limit 1000 per hour\n",
        url,
        prefix,
        on_failure,
    )
}

fn runtime_of(text: &str, url: &str, prefix: &str, on_failure: OnStoreFailure) -> Runtime {
    let sources = [Source {
        name: "p.writ".to_owned(),
        text: text.to_owned(),
    }];
    let comp = compile(&sources, None);
    let bytes = writ::bundle::compile(comp.checked_set().unwrap(), &sources, None).unwrap();
    let store = RedisStore::open(url).unwrap().with_prefix(prefix);
    Runtime::from_vec(bytes)
        .unwrap()
        .with_limit_store(Arc::new(store), on_failure)
}

fn processes_sharing_redis_allow_exactly_the_limit_and_fail_closed() {
    let server = start();
    let url = server.url();
    // Three "processes", each with its own store and connection.
    let runtimes: Vec<Arc<Runtime>> = (0..3)
        .map(|_| Arc::new(runtime(&url, "t1", OnStoreFailure::Deny)))
        .collect();
    let req = Request::new("a", "tool:call");
    let allowed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for rt in &runtimes {
            for _ in 0..2 {
                let (rt, req, allowed) = (Arc::clone(rt), &req, &allowed);
                s.spawn(move || {
                    for _ in 0..400 {
                        if rt.check(req).effect == Effect::Allow {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        }
    });
    assert_eq!(allowed.load(Ordering::Relaxed), 1000);
    let d = runtimes[0].check(&req);
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.retry_after_s.is_some_and(|s| (1..=3600).contains(&s)));
    // Another agent has its own count.
    assert_eq!(
        runtimes[1].check(&Request::new("b", "tool:call")).effect,
        Effect::Allow
    );

    // A limit shared by all agents: three processes, six agents, 500 in
    // all; and the same rule's per-agent counts (prefix `t1`, above) are
    // kept apart from its shared count.
    let shared: Vec<Arc<Runtime>> = (0..3)
        .map(|_| {
            Arc::new(runtime_of(
                "rule calls: allow \"tool:call\"\n  limit 500 per hour shared\n",
                &url,
                "t1",
                OnStoreFailure::Deny,
            ))
        })
        .collect();
    let allowed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for (i, rt) in shared.iter().enumerate() {
            for j in 0..2 {
                let (rt, allowed) = (Arc::clone(rt), &allowed);
                s.spawn(move || {
                    let req = Request::new(&format!("agent-{i}-{j}"), "tool:call");
                    for _ in 0..300 {
                        if rt.check(&req).effect == Effect::Allow {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        }
    });
    assert_eq!(allowed.load(Ordering::Relaxed), 500);
    let d = shared[2].check(&req);
    assert_eq!(
        d.reason_text(&req).unwrap(),
        "rate limit `500/hour` of rule `calls` (shared by all agents) reached"
    );
    assert_eq!(
        runtimes[0].check(&Request::new("c", "tool:call")).effect,
        Effect::Allow
    );

    // Redis goes away: deny, naming it; or allow when told to.
    let closed = runtime(&url, "t2", OnStoreFailure::Deny);
    let open = runtime(&url, "t2", OnStoreFailure::Allow);
    drop(server);
    let d = closed.check(&req);
    assert_eq!(d.effect, Effect::Deny);
    assert!(
        d.reason_text(&req).unwrap().contains("redis"),
        "{:?}",
        d.reason_text(&req)
    );
    assert_eq!(open.check(&req).effect, Effect::Allow);
}

/// A time in milliseconds (2027-01-15, a fixed instant) plus `ms`.
fn at_ms(ms: i64) -> i64 {
    1_800_000_000_000 + ms
}

fn a_twenty_thousand_request_limit_fills_exactly() {
    let server = start();
    let url = server.url();
    let rt = runtime_of(
        "rule calls: allow \"tool:call\"\n  limit 20000 per hour shared\n",
        &url,
        "fill",
        OnStoreFailure::Deny,
    );
    let request = |agent: usize, ms: i64| Request {
        at: Some(jiff::Timestamp::from_millisecond(at_ms(ms)).unwrap()),
        ..Request::new(&format!("agent-{}", agent % 4), "tool:call")
    };
    // Half at the start, half half an hour later, from four agents.
    let minute = 60_000;
    for i in 0..20_000 {
        let ms = if i < 10_000 { 0 } else { 30 * minute };
        let d = rt.check(&request(i, ms));
        assert_eq!(
            d.effect,
            Effect::Allow,
            "request {i}: {:?}",
            d.reason_text(&request(i, ms))
        );
    }
    // Full: the next is denied until the first half ages out, at one hour.
    let d = rt.check(&request(0, 40 * minute));
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.retry_after_s, Some(20 * 60));
    let d = rt.check(&request(1, 60 * minute - 1));
    assert_eq!((d.effect, d.retry_after_s), (Effect::Deny, Some(1)));
    // An entry stamped t counts until t + window, not at it.
    for i in 0..10_000 {
        assert_eq!(
            rt.check(&request(i, 60 * minute)).effect,
            Effect::Allow,
            "{i}"
        );
    }
    let d = rt.check(&request(2, 60 * minute));
    assert_eq!((d.effect, d.retry_after_s), (Effect::Deny, Some(30 * 60)));
}

static TOKENS: std::sync::LazyLock<Scope> =
    std::sync::LazyLock::new(|| Scope::new(LimitKind::Agent, "a", "tokens"));
static CALLS: std::sync::LazyLock<Scope> =
    std::sync::LazyLock::new(|| Scope::new(LimitKind::Agent, "a", "requests"));

fn tokens(count: u64, amount: u64) -> Acquire<'static> {
    Acquire {
        scope: &TOKENS,
        agent: "a",
        rate: Rate {
            count,
            unit: writ_runtime::vocab::RateUnit::Minute,
        },
        amount,
    }
}

fn calls(count: u64) -> Acquire<'static> {
    Acquire {
        scope: &CALLS,
        agent: "a",
        rate: Rate {
            count,
            unit: writ_runtime::vocab::RateUnit::Minute,
        },
        amount: 1,
    }
}

fn full(index: usize, retry_after_s: u64) -> Result<(), Refusal> {
    Err(Refusal::Full {
        index,
        retry_after_s,
    })
}

/// Both stores answer the same, and that answer is `expected`.
fn both(
    stores: &[&dyn LimitStore; 2],
    call: impl Fn(&dyn LimitStore) -> Result<(), Refusal>,
    expected: Result<(), Refusal>,
) {
    assert_eq!(call(stores[0]), expected, "redis");
    assert_eq!(call(stores[1]), expected, "in process");
}

fn retry_after_is_exact_with_mixed_amounts() {
    let server = start();
    let redis = store(&server, "mixed");
    let local = InProcess::new();
    let stores: [&dyn LimitStore; 2] = [&redis, &local];
    let s = 1000;
    let take = |items: Vec<Acquire<'static>>, ms: i64| {
        move |st: &dyn LimitStore| st.acquire(&items, at_ms(ms))
    };
    let peek =
        |amount: u64, ms: i64| move |st: &dyn LimitStore| st.peek(&tokens(100, amount), at_ms(ms));

    // 100 tokens a minute: 30, 50 and 20 taken ten seconds apart.
    both(&stores, take(vec![tokens(100, 30)], 0), Ok(()));
    both(&stores, take(vec![tokens(100, 50)], 10 * s), Ok(()));
    both(&stores, take(vec![tokens(100, 20)], 20 * s), Ok(()));
    // Full: the wait is until enough of the oldest amounts age out.
    both(&stores, peek(1, 30 * s), full(0, 30));
    both(&stores, peek(30, 30 * s), full(0, 30));
    both(&stores, peek(31, 30 * s), full(0, 40));
    both(&stores, peek(80, 30 * s), full(0, 40));
    both(&stores, peek(81, 30 * s), full(0, 50));
    both(&stores, peek(100, 30 * s), full(0, 50));
    // More than the limit never fits: the whole window.
    both(&stores, peek(101, 30 * s), full(0, 60));
    // Rounded up to whole seconds, at least one.
    both(&stores, peek(25, 30 * s + 500), full(0, 30));
    both(&stores, peek(1, 60 * s - 1), full(0, 1));
    // At t + window an entry has aged out: its 30 fit again, not 31.
    both(&stores, peek(30, 60 * s), Ok(()));
    both(&stores, peek(31, 60 * s), full(0, 10));

    // The same limit twice in one call counts both amounts, and a call
    // that does not fit takes nothing (at 60 s, 70 are used).
    both(
        &stores,
        take(vec![tokens(100, 20), tokens(100, 15)], 60 * s),
        full(1, 10),
    );
    both(
        &stores,
        take(vec![tokens(100, 25), tokens(100, 80)], 60 * s),
        full(1, 60),
    );
    both(&stores, peek(30, 60 * s), Ok(()));
    // All or nothing across limits: the requests limit is full, so the
    // tokens are not taken either.
    both(&stores, take(vec![calls(1)], 60 * s), Ok(()));
    both(
        &stores,
        take(vec![tokens(100, 10), calls(1)], 61 * s),
        full(1, 59),
    );
    both(&stores, peek(30, 61 * s), Ok(()));
    both(
        &stores,
        take(vec![calls(2), tokens(100, 20), tokens(100, 10)], 61 * s),
        Ok(()),
    );
    // Used: 50 (10 s), 20 (20 s), 20 and 10 (61 s).
    both(&stores, peek(1, 62 * s), full(0, 8));
    both(&stores, peek(51, 62 * s), full(0, 18));
    both(&stores, peek(71, 62 * s), full(0, 59));
    // A lower count after a reload: more must age out than is asked for.
    both(
        &stores,
        |st: &dyn LimitStore| st.peek(&tokens(60, 11), at_ms(62 * s)),
        full(0, 18),
    );
    both(
        &stores,
        |st: &dyn LimitStore| st.peek(&calls(1), at_ms(62 * s)),
        full(0, 59),
    );

    // Then many calls, alike in both stores: amounts 1 to 20 on the
    // tokens limit (its count sometimes lowered), the requests limit,
    // both in one call, the same limit twice, and peeks, at times 0 to 3
    // seconds apart in steps of 100 ms.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut ms = 120 * s;
    let (mut allowed, mut refused) = (0, 0);
    for i in 0..3_000 {
        ms += i64::try_from(next(31)).unwrap() * 100;
        // One call in eight dated up to 40 s back (a batch replayed with
        // earlier times, another process's clock): taken at the latest
        // time already taken at, in both stores.
        let when = if next(8) == 0 {
            ms - i64::try_from(next(400)).unwrap() * 100
        } else {
            ms
        };
        let count = if next(10) == 0 { 200 } else { 300 };
        let calls_count = if next(10) == 0 { 12 } else { 20 };
        let amount = next(20) + 1;
        let items = match next(6) {
            0 => vec![calls(calls_count)],
            1 => vec![tokens(count, amount), calls(calls_count)],
            2 => vec![tokens(count, amount), tokens(count, next(20) + 1)],
            _ => vec![tokens(count, amount)],
        };
        let (r, l) = if next(4) == 0 {
            (
                redis.peek(&items[0], at_ms(when)),
                local.peek(&items[0], at_ms(when)),
            )
        } else {
            (
                redis.acquire(&items, at_ms(when)),
                local.acquire(&items, at_ms(when)),
            )
        };
        assert_eq!(r, l, "call {i} at {when} ms ({ms} ms): {items:?}");
        if r.is_ok() {
            allowed += 1;
        } else {
            refused += 1;
        }
    }
    // Both outcomes were seen many times.
    assert!(allowed > 300 && refused > 300, "{allowed} {refused}");
}

/// `redis-cli` on the test's server (from the same Debian package).
fn cli(server: &Server, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &server.port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn a_lost_or_wrong_sum_is_summed_again_from_the_entries() {
    let server = start();
    let redis = store(&server, "lost");
    let s = 1000;
    for (amount, ms) in [(30, 0), (50, 10 * s), (20, 20 * s)] {
        redis.acquire(&[tokens(100, amount)], at_ms(ms)).unwrap();
    }
    let sum = "lost:agent:sum:1:a:6:tokens:a";
    assert_eq!(cli(&server, &["GET", sum]), "100");
    let ttl: i64 = cli(&server, &["PTTL", sum]).parse().unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");
    // Without its sum (a set from before sums were kept, or a key
    // evicted), and with one below the number of entries: summed again.
    for broken in [vec!["DEL", sum], vec!["SET", sum, "2"]] {
        cli(&server, &broken);
        assert_eq!(
            redis.peek(&tokens(100, 31), at_ms(30 * s)),
            full(0, 40),
            "{broken:?}"
        );
        assert_eq!(cli(&server, &["GET", sum]), "100");
    }
    // A look changes nothing; what ages out leaves the sum when an amount
    // is taken; a set gone takes its sum with it.
    assert_eq!(redis.peek(&tokens(100, 30), at_ms(60 * s)), Ok(()));
    assert_eq!(cli(&server, &["GET", sum]), "100");
    assert_eq!(redis.acquire(&[tokens(100, 30)], at_ms(60 * s)), Ok(()));
    assert_eq!(cli(&server, &["GET", sum]), "100");
    assert_eq!(redis.peek(&tokens(100, 1), at_ms(61 * s)), full(0, 9));
    cli(&server, &["DEL", "lost:agent:1:a:6:tokens:a"]);
    assert_eq!(redis.peek(&tokens(100, 100), at_ms(60 * s)), Ok(()));
    assert_eq!(cli(&server, &["EXISTS", sum]), "0");
}
