//! Limits shared through a real Redis server: several runtimes (each with
//! its own connections, as separate agent processes have) allow exactly a
//! limit between them, and an unreachable Redis denies by default.
//!
//! Starts `redis-server` (from Debian's `redis-server` package; `.ci/run`
//! installs it) on a loopback port of its own. Without it the test fails
//! and says so; set `WRIT_SKIP_REDIS=1` to skip it knowingly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use writ::{Source, compile};
use writ_runtime::{Effect, OnStoreFailure, RedisStore, Request, Runtime};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Option<Server> {
    if std::env::var_os("WRIT_SKIP_REDIS").is_some() {
        return None;
    }
    let port = 20_000 + u16::try_from(std::process::id() % 20_000).unwrap();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}): install it (apt-get install redis-server) or set WRIT_SKIP_REDIS=1")
        });
    let server = Server { child, port };
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
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

#[test]
fn processes_sharing_redis_allow_exactly_the_limit_and_fail_closed() {
    let Some(server) = start() else {
        eprintln!("WRIT_SKIP_REDIS is set: skipped");
        return;
    };
    let url = format!("redis://127.0.0.1:{}/", server.port);
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
