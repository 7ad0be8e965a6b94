//! Filling a shared limit through a real Redis server (issue 19): the cost
//! of one limited decision must not grow with the limit.
//!
//! `cargo bench -p writ-bench --bench redis_limits` (sizes may be given:
//! `-- 1000 4000`; the default is 1,000, 16,000 and 100,000)
//!
//! Starts `redis-server` (Debian's `redis-server` package) on a free
//! loopback port, without persistence, and for each size N:
//!
//! - `fill`: N decisions on a rule `limit N per hour shared`, from eight
//!   agents in turn, one after the other (`Runtime::check`: the store's
//!   peek and its acquire, each one call of the Lua script); every one
//!   must be allowed. Timed one by one: the total, the median, p99 and
//!   the worst call, and the median of the last 1,000 (a full window).
//! - `full`: 1,000 more decisions on the full limit, all denied, each
//!   computing its exact `retry_after`.
//! - `redis`: Redis's own time per script call over the fill
//!   (`INFO commandstats`, `evalsha`), the single-threaded server time
//!   that every process sharing the limit waits behind, and the number of
//!   script calls per decision (one for a first-match rule's limit, which
//!   is only taken; two when the limit is looked at while deciding, then
//!   taken).
//!
//! Then the same for a token budget of N entries (amounts 1 to 9 in turn,
//! `limit T tokens per hour` on an agent entry), whose denials walk the
//! oldest entries until enough would age out.
//!
//! The store's call timeout is the default 250 ms, so a call slower than
//! that would be denied: the fill checks that none is.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use writ_runtime::{Effect, OnStoreFailure, RedisStore, Request, Runtime};

#[path = "../../tests/support/redis.rs"]
mod redis_server;
use redis_server::Redis as Server;

fn start() -> Server {
    Server::start(None)
}

/// `redis-cli` on the server (from the same Debian package).
fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Redis's `evalsha` calls and microseconds per call since the last reset.
fn server_calls(port: u16) -> Option<(f64, f64)> {
    let stats = cli(port, &["INFO", "commandstats"]);
    let line = stats.lines().find(|l| l.starts_with("cmdstat_evalsha:"))?;
    let field = |name: &str| -> Option<f64> {
        line.split([',', ':'])
            .find_map(|f| f.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    Some((field("calls=")?, field("usec_per_call=")?))
}

fn runtime(policy: &str, url: &str, prefix: &str) -> Runtime {
    let store = RedisStore::open(url)
        .expect("redis URL")
        .with_prefix(prefix);
    Runtime::from_vec(writ_bench::compile_bundle(policy))
        .expect("bundle")
        .with_limit_store(Arc::new(store), OnStoreFailure::Deny)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "bench sizes and timings fit"
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

/// Runs `reqs` in turn `n` times, each timed; asserts each effect.
fn timed(rt: &Runtime, reqs: &[Request], n: usize, effect: Effect) -> (Duration, Vec<Duration>) {
    let mut times = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let req = &reqs[i % reqs.len()];
        let t = Instant::now();
        let d = rt.check(req);
        times.push(t.elapsed());
        assert_eq!(
            d.effect,
            effect,
            "decision {i} of {n}: {:?}",
            d.reason_text(req)
        );
        if effect == Effect::Deny {
            assert!(d.retry_after_s.is_some(), "a full limit says when to retry");
        }
    }
    (start.elapsed(), times)
}

fn report(label: &str, n: usize, server: &Server, rt: &Runtime, reqs: &[Request]) {
    cli(server.port, &["CONFIG", "RESETSTAT"]);
    let (total, times) = timed(rt, reqs, n, Effect::Allow);
    let redis = server_calls(server.port);
    let last = {
        let mut v = times[times.len().saturating_sub(1000)..].to_vec();
        v.sort_unstable();
        percentile(&v, 0.5)
    };
    let mut sorted = times;
    sorted.sort_unstable();
    let (_, full) = timed(rt, reqs, 1000, Effect::Deny);
    let mut full = full;
    full.sort_unstable();
    println!(
        "{label} n={n}: fill {:.3} s, per call median {} p99 {} max {}, last 1,000 median {}; \
         full (denied) median {} p99 {}; redis {}",
        total.as_secs_f64(),
        us(percentile(&sorted, 0.5)),
        us(percentile(&sorted, 0.99)),
        us(percentile(&sorted, 1.0)),
        us(last),
        us(percentile(&full, 0.5)),
        us(percentile(&full, 0.99)),
        redis.map_or_else(
            || "?".to_owned(),
            #[allow(clippy::cast_precision_loss, reason = "timings in floating point")]
            |(calls, us)| format!(
                "{:.1} script calls per decision, {us:.1} us each",
                calls / n as f64
            )
        ),
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 16_000, 100_000]
    } else {
        sizes
    };
    let server = start();
    let url = server.url();
    println!(
        "redis_limits: {}",
        cli(server.port, &["INFO", "server"])
            .lines()
            .find(|l| l.starts_with("redis_version"))
            .unwrap_or("?")
            .trim()
    );
    for &n in &sizes {
        let rt = runtime(
            &format!("rule calls: allow \"tool:call\"\n  limit {n} per hour shared\n"),
            &url,
            &format!("bench-requests-{n}"),
        );
        let reqs: Vec<Request> = (0..8)
            .map(|a| Request::new(&format!("agent-{a}"), "tool:call"))
            .collect();
        report("requests", n, &server, &rt, &reqs);

        // Amounts 1 to 9 in turn: n entries hold 5n tokens, less the
        // rest of a last round of nine.
        let tokens: u64 = (0..n as u64).map(|i| i % 9 + 1).sum();
        let rt = runtime(
            &format!(
                "agent \"a\" {{\n  limit {tokens} tokens per hour\n}}\n\nrule calls: allow \"model:call\"\n"
            ),
            &url,
            &format!("bench-tokens-{n}"),
        );
        let reqs: Vec<Request> = (1..=9)
            .map(|t| Request {
                tokens: t,
                ..Request::new("a", "model:call")
            })
            .collect();
        report("tokens", n, &server, &rt, &reqs);
    }
}
