//! `writ serve`, the real binary, driven over HTTP on loopback.
//!
//! - Scale out: three servers sharing one `redis-server` allow exactly a
//!   rule's limit between them, per agent and shared by all agents, under
//!   concurrent clients; the rest are denied with a retry.
//! - Redis goes away: a server denies, naming the limit store, and counts
//!   the failure in `/metrics`; one started with `--on-store-failure
//!   allow` allows; both count again once Redis is back.
//! - Redis stops answering: decisions that count a limit wait for the
//!   store's timeout, and the rest of the server does not wait with them.
//! - Reload under load: while clients ask, the policy file flips between
//!   two policies; every answer comes whole from one of them (its rule
//!   always with its revision), and a broken file keeps the last good one.
//! - Signed bundles: a bundle swapped for an unsigned, foreign-signed or
//!   damaged one is refused on SIGHUP and the old one keeps answering; a
//!   server does not start on an unsigned bundle with `--verify`.
//! - Audit retention: a server started with `--audit-retention-days 1`
//!   removes the batches written days ago, keeps those written now (even
//!   with decision times in the past), counts them in `/metrics`, and the
//!   log still verifies from its anchor; a JSON Lines log is kept whole,
//!   with a warning.
//!
//! Each server listens on a port the system picks (`--port 0`; the test
//! reads the address from the server's log line), keeps its registry and
//! audit log in the test's own temporary directory, and is killed when
//! the test drops it. A test using Redis runs a `redis-server` of its own
//! (`tests/support/redis_harness.rs` says what happens without one).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/redis_harness.rs"]
mod redis_harness;
#[path = "support/redis.rs"]
mod redis_server;
use redis_server::Redis;

/// The tests, by name, and whether each needs `redis-server`.
const TESTS: &[(&str, bool, fn())] = &[
    (
        "three_servers_sharing_redis_allow_exactly_the_limit",
        true,
        three_servers_sharing_redis_allow_exactly_the_limit,
    ),
    (
        "redis_down_denies_naming_the_store_or_allows_when_told",
        true,
        redis_down_denies_naming_the_store_or_allows_when_told,
    ),
    (
        "a_redis_that_stops_answering_does_not_stall_the_server",
        false,
        a_redis_that_stops_answering_does_not_stall_the_server,
    ),
    (
        "reload_under_load_answers_from_one_revision_at_a_time",
        false,
        reload_under_load_answers_from_one_revision_at_a_time,
    ),
    (
        "a_bundle_not_signed_by_the_key_is_refused",
        false,
        a_bundle_not_signed_by_the_key_is_refused,
    ),
    (
        "audit_retention_prunes_what_was_written_long_ago",
        false,
        audit_retention_prunes_what_was_written_long_ago,
    ),
    #[cfg(target_os = "linux")]
    (
        "the_audit_logs_threads_run_below_the_servers",
        false,
        the_audit_logs_threads_run_below_the_servers,
    ),
];

fn main() -> std::process::ExitCode {
    redis_harness::run(TESTS, "`writ serve` sharing limits through Redis")
}

// ---------------------------------------------------------------------------
// Temporary directories, redis-server and writ serve.

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("writ-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `text` to `path` at once: written beside it, then renamed over
/// it (as an editor or a deploy does), so a reader never sees half a file.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A running `writ serve`, killed when dropped.
struct Serve {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

/// Why a server did not start: its exit status (if it exited) and log.
#[derive(Debug)]
struct StartFailure {
    status: Option<ExitStatus>,
    log: String,
}

/// Variables `writ serve` reads (MeshGuard's): unset, so that the test's
/// environment does not change the servers'.
const SERVER_ENV: &[&str] = &[
    "HOST",
    "PORT",
    "MODE",
    "POLICIES_DIR",
    "JWT_SECRET",
    "ADMIN_TOKEN",
    "PROXY_TARGET",
    "DB_PATH",
    "AUDIT_RETENTION_DAYS",
    "METRICS_ENABLED",
];

impl Serve {
    /// `writ serve ARGS` on a free loopback port, its registry and audit
    /// log in `dir` (named by `name`).
    fn start(dir: &TempDir, name: &str, args: &[&str]) -> Serve {
        Serve::try_start(dir, name, args)
            .unwrap_or_else(|f| panic!("writ serve {name} did not start ({f:?})"))
    }

    fn try_start(dir: &TempDir, name: &str, args: &[&str]) -> Result<Serve, StartFailure> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_writ"));
        command
            .arg("serve")
            .args(args)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .arg("--db-path")
            .arg(dir.path(&format!("{name}-registry.db")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if !args.contains(&"--audit-path") {
            command
                .arg("--audit-path")
                .arg(dir.path(&format!("{name}-audit.jsonl")));
        }
        for var in SERVER_ENV {
            command.env_remove(var);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            // Reads the log to its end (so the server never blocks on a
            // full pipe), telling the address once it is listening.
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix("writ serve: listening on http://")
                        && let Some(addr) = rest.split_whitespace().next()
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let status = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => return Ok(Serve { child, addr, log }),
            // The log ended: the server is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(child.wait().unwrap()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        };
        // The reader has read the whole log (it sent nothing and ended).
        let log = log.lock().unwrap().clone();
        Err(StartFailure { status, log })
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn get(&self, path: &str) -> Response {
        http(self.addr, "GET", path, "")
    }

    /// `POST /v1/check`: the decision and the revision that made it.
    fn check(&self, request: &Value) -> (Value, String) {
        let r = http(self.addr, "POST", "/v1/check", &request.to_string());
        assert_eq!(r.status, 200, "{}\n{}", r.body, self.log());
        let revision = r
            .header("x-writ-revision")
            .unwrap_or_else(|| panic!("no X-Writ-Revision header: {:?}", r.headers))
            .to_owned();
        (r.json(), revision)
    }

    fn policy(&self) -> Value {
        let r = self.get("/v1/policy");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    fn metrics(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    /// Sends SIGHUP (the server reloads).
    fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -HUP: {status}");
    }

    /// Asks `/v1/policy` until `done` holds of it (10 s at most).
    fn wait_policy(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let p = self.policy();
            if done(&p) {
                return p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waited 10 s for {what}: {p}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGTERM, as a service manager would; it must
    /// exit cleanly.
    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM: {status}");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}\n{}", self.log());
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "writ serve did not stop on SIGTERM\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// A small HTTP/1.1 client: one request per connection.

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let response = Response {
        status,
        headers,
        body: body.to_owned(),
    };
    assert!(
        response.header("transfer-encoding").is_none(),
        "a chunked answer (this client reads Content-Length answers): {response:?}"
    );
    if let Some(n) = response.header("content-length") {
        assert_eq!(
            n.parse::<usize>().unwrap(),
            response.body.len(),
            "{response:?}"
        );
    }
    response
}

fn request(agent: &str, action: &str) -> Value {
    serde_json::json!({ "agent": agent, "action": action, "target": "t", "context": {} })
}

/// The sum of a Prometheus counter's samples whose labels include `labels`
/// (`name{...} value` lines; `labels` as written, e.g. `outcome="allow"`).
fn counter(metrics: &str, name: &str, labels: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            series == &name
                || series
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('{'))
                    .is_some_and(|rest| rest.contains(labels))
        })
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum()
}

// ---------------------------------------------------------------------------
// The tests.

/// Both rules of the scale-out test: one counting each agent, one counting
/// all agents together.
const LIMITED: &str = "\
rule calls: allow \"tool:call\"
  limit 50 per hour

rule models: allow \"model:use\"
  limit 30 per hour shared

rule free: allow \"agent:delegate\"
";

/// `threads` clients, each sending `per_thread` requests round-robin over
/// `servers` (thread `i` as agent `agent(i)`); returns every decision.
fn hammer(
    servers: &[Serve],
    threads: usize,
    per_thread: usize,
    agent: impl Fn(usize) -> String + Sync,
    action: &str,
) -> Vec<Value> {
    let decisions = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for i in 0..threads {
            let (decisions, agent) = (&decisions, &agent);
            s.spawn(move || {
                let req = request(&agent(i), action);
                for j in 0..per_thread {
                    let (d, _) = servers[(i + j) % servers.len()].check(&req);
                    decisions.lock().unwrap().push(d);
                }
            });
        }
    });
    decisions.into_inner().unwrap()
}

fn three_servers_sharing_redis_allow_exactly_the_limit() {
    let dir = TempDir::new("scale-out");
    let redis = Redis::start(None);
    let policy = dir.path("limits.writ");
    std::fs::write(&policy, LIMITED).unwrap();
    let url = redis.url();
    let servers: Vec<Serve> = (0..3)
        .map(|i| {
            Serve::start(
                &dir,
                &format!("s{i}"),
                &[policy.to_str().unwrap(), "--limits", &url, "--no-watch"],
            )
        })
        .collect();

    let (threads, per_thread) = (6, 40);
    let mut compared = 0;
    // One agent from six clients over three servers: 50 in all.
    let decisions = hammer(
        &servers,
        threads,
        per_thread,
        |_| "a".to_owned(),
        "tool:call",
    );
    let allowed = decisions
        .iter()
        .filter(|d| d["decision"] == "allow")
        .count();
    assert_eq!(allowed, 50, "allowed of {}", decisions.len());
    for d in decisions.iter().filter(|d| d["decision"] != "allow") {
        assert_eq!(d["decision"], "deny", "{d}");
        assert_eq!(d["rule"], "calls", "{d}");
        assert_eq!(
            d["reason"], "rate limit `50/hour` of rule `calls` reached for agent `a`",
            "{d}"
        );
        let retry = d["retry_after_s"].as_u64().unwrap_or(0);
        assert!((1..=3600).contains(&retry), "{d}");
    }
    compared += decisions.len();
    // Another agent has its own count.
    for s in &servers {
        let (d, _) = s.check(&request("b", "tool:call"));
        assert_eq!(d["decision"], "allow", "{d}");
        compared += 1;
    }

    // Six agents, one limit shared by all of them: 30 in all.
    let decisions = hammer(
        &servers,
        threads,
        per_thread,
        |i| format!("agent-{i}"),
        "model:use",
    );
    let shared_allowed = decisions
        .iter()
        .filter(|d| d["decision"] == "allow")
        .count();
    assert_eq!(shared_allowed, 30, "allowed of {}", decisions.len());
    for d in decisions.iter().filter(|d| d["decision"] != "allow") {
        assert_eq!(
            d["reason"], "rate limit `30/hour` of rule `models` (shared by all agents) reached",
            "{d}"
        );
        let retry = d["retry_after_s"].as_u64().unwrap_or(0);
        assert!((1..=3600).contains(&retry), "{d}");
    }
    compared += decisions.len();

    // The servers' metrics add up to what the clients saw.
    let metrics: Vec<String> = servers.iter().map(Serve::metrics).collect();
    let sum = |labels: &str| -> u64 {
        metrics
            .iter()
            .map(|m| counter(m, "writ_decisions_total", labels))
            .sum()
    };
    let all_allowed = u64::try_from(allowed + 3 + shared_allowed).unwrap();
    assert_eq!(sum("outcome=\"allow\""), all_allowed, "{metrics:?}");
    assert_eq!(
        sum("outcome=\"rate_limited\""),
        u64::try_from(compared).unwrap() - all_allowed,
        "{metrics:?}"
    );
    for m in &metrics {
        assert_eq!(counter(m, "writ_limit_store_failures_total", ""), 0, "{m}");
    }
    eprintln!(
        "scale out: {compared} decisions from 3 servers compared: {allowed} + {shared_allowed} allowed of limits 50 and 30 (+3 of another agent)"
    );
}

fn redis_down_denies_naming_the_store_or_allows_when_told() {
    let dir = TempDir::new("redis-down");
    let redis = Redis::start(None);
    let port = redis.port;
    let policy = dir.path("limits.writ");
    std::fs::write(&policy, LIMITED).unwrap();
    let url = redis.url();
    let p = policy.to_str().unwrap();
    // Both start while Redis is up (neither needs it to start: the store
    // connects on the first decision that counts).
    let closed = Serve::start(&dir, "closed", &[p, "--limits", &url, "--no-watch"]);
    let open = Serve::start(
        &dir,
        "open",
        &[
            p,
            "--limits",
            &url,
            "--on-store-failure",
            "allow",
            "--no-watch",
        ],
    );
    let req = request("a", "tool:call");
    let mut compared = 0;
    for s in [&closed, &open] {
        let (d, _) = s.check(&req);
        assert_eq!(d["decision"], "allow", "{d}");
        compared += 1;
    }

    drop(redis);
    for _ in 0..3 {
        let (d, _) = closed.check(&req);
        assert_eq!(d["decision"], "deny", "{d}");
        assert_eq!(d["rule"], "calls", "{d}");
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("the limit store cannot be reached (redis: "),
            "{reason}"
        );
        assert!(d["retry_after_s"].is_null(), "{d}");
        let (d, _) = open.check(&req);
        assert_eq!(d["decision"], "allow", "{d}");
        assert_eq!(d["rule"], "calls", "{d}");
        compared += 2;
    }
    // A rule without a limit does not need the store.
    let (d, _) = closed.check(&request("a", "agent:delegate"));
    assert_eq!(
        (d["decision"].as_str(), d["rule"].as_str()),
        (Some("allow"), Some("free")),
        "{d}"
    );
    compared += 1;
    let m = closed.metrics();
    assert_eq!(counter(&m, "writ_limit_store_failures_total", ""), 3, "{m}");
    assert_eq!(
        counter(&m, "writ_decisions_total", "outcome=\"deny\""),
        3,
        "{m}"
    );
    assert_eq!(
        counter(&m, "writ_decisions_total", "outcome=\"allow\""),
        2,
        "{m}"
    );
    // Allowing anyway is still a failure to count.
    let m = open.metrics();
    assert_eq!(counter(&m, "writ_limit_store_failures_total", ""), 3, "{m}");
    assert_eq!(
        counter(&m, "writ_decisions_total", "outcome=\"allow\""),
        4,
        "{m}"
    );

    // Redis back (empty, on the same port): both count again.
    let _redis = Redis::start(Some(port));
    for s in [&closed, &open] {
        let (d, _) = s.check(&req);
        assert_eq!(d["decision"], "allow", "{d}\n{}", s.log());
        compared += 1;
    }
    for s in [&closed, &open] {
        let m = s.metrics();
        assert_eq!(counter(&m, "writ_limit_store_failures_total", ""), 3, "{m}");
    }
    eprintln!("redis down: {compared} decisions compared");
}

fn a_redis_that_stops_answering_does_not_stall_the_server() {
    // A "Redis" that takes connections and never answers (a network
    // partition, a hung server): each limited decision waits for the
    // store's timeout (250 ms), one after the other.
    let hole = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let url = format!("redis://{}/", hole.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in hole.incoming() {
            match c {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
    });
    let dir = TempDir::new("stalled");
    let policy = dir.path("limits.writ");
    std::fs::write(&policy, LIMITED).unwrap();
    let server = Serve::start(
        &dir,
        "stalled",
        &[policy.to_str().unwrap(), "--limits", &url, "--no-watch"],
    );
    // More waiting decisions than the server has worker threads on most
    // machines: about 4 s of them in all.
    let waiting = 16;
    let mut compared = 0;
    std::thread::scope(|s| {
        let checks: Vec<_> = (0..waiting)
            .map(|i| {
                let server = &server;
                s.spawn(move || server.check(&request(&format!("agent-{i}"), "tool:call")).0)
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        // Meanwhile the server answers what needs no limit at once.
        for _ in 0..3 {
            let t = Instant::now();
            assert_eq!(server.get("/health").status, 200);
            let (d, _) = server.check(&request("a", "agent:delegate"));
            assert_eq!(d["rule"], "free", "{d}");
            compared += 1;
            assert!(
                t.elapsed() < Duration::from_millis(1500),
                "/health and an unlimited decision took {:?} while Redis did not answer",
                t.elapsed()
            );
        }
        for c in checks {
            let d = c.join().unwrap();
            assert_eq!(d["decision"], "deny", "{d}");
            let reason = d["reason"].as_str().unwrap();
            assert!(
                reason.starts_with("the limit store cannot be reached (redis: "),
                "{reason}"
            );
            compared += 1;
        }
    });
    let m = server.metrics();
    assert_eq!(
        counter(&m, "writ_limit_store_failures_total", ""),
        waiting,
        "{m}"
    );
    eprintln!("stalled redis: {compared} decisions compared");
}

/// Policy A and policy B of the reload test: the same action, each with
/// its own policy, rule and reason.
fn reload_policy(which: char) -> String {
    format!(
        "policy \"policy-{which}\" {{\n  version \"1\"\n}}\n\n\
         rule rule_{which}: allow \"tool:call\"\n  because \"from policy {which}\"\n"
    )
}

fn reload_under_load_answers_from_one_revision_at_a_time() {
    let dir = TempDir::new("reload");
    let file = dir.path("p.writ");
    let (a, b) = (reload_policy('a'), reload_policy('b'));
    std::fs::write(&file, &a).unwrap();
    // Reloads on the file's change (watched).
    let server = Serve::start(&dir, "reload", &[file.to_str().unwrap()]);
    let rev_a = server.policy()["revision"].as_str().unwrap().to_owned();

    let stop = AtomicBool::new(false);
    let seen: Mutex<Vec<(String, Value)>> = Mutex::new(Vec::new());
    let flips: u64 = 8;
    let mut rev_b = None;
    std::thread::scope(|s| {
        for i in 0..3 {
            let (server, stop, seen) = (&server, &stop, &seen);
            s.spawn(move || {
                let req = request(&format!("agent-{i}"), "tool:call");
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (d, revision) = server.check(&req);
                    mine.push((revision, d));
                }
                seen.lock().unwrap().extend(mine);
            });
        }
        for flip in 0..flips {
            let (text, want) = if flip % 2 == 0 {
                (&b, rev_b.clone())
            } else {
                (&a, Some(rev_a.clone()))
            };
            let before = server.policy()["revision"].as_str().unwrap().to_owned();
            replace(&file, text.as_bytes());
            let p = server.wait_policy("the file's change to be served", |p| {
                let r = p["revision"].as_str().unwrap();
                r != before && want.as_deref().is_none_or(|w| r == w)
            });
            rev_b.get_or_insert_with(|| p["revision"].as_str().unwrap().to_owned());
            // Some answers from this revision before the next flip.
            std::thread::sleep(Duration::from_millis(150));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let rev_b = rev_b.unwrap();
    assert_ne!(rev_a, rev_b);

    // Every answer whole from A or from B: each revision always with its
    // own policy, rule and reason.
    let seen = seen.into_inner().unwrap();
    let mut by_revision: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (revision, d) in &seen {
        assert_eq!(d["decision"], "allow", "{d}");
        let whole = format!("{} {} {}", d["policy"], d["rule"], d["reason"]);
        by_revision.entry(revision).or_default().insert(whole);
    }
    let whole =
        |c: char| BTreeSet::from([format!("\"policy-{c}\" \"rule_{c}\" \"from policy {c}\"")]);
    assert_eq!(
        by_revision,
        BTreeMap::from([(rev_a.as_str(), whole('a')), (rev_b.as_str(), whole('b'))]),
        "answers by revision"
    );
    let p = server.policy();
    assert!(p["reloads"].as_u64().unwrap() >= flips, "{p}");
    assert_eq!(p["failed_reloads"], 0, "{p}");
    assert!(p["last_reload_error"].is_null(), "{p}");
    let mut compared = seen.len();

    // Deciding does not reload: the audit log and the registry are in the
    // watched directory, and they change with every decision.
    std::thread::sleep(Duration::from_millis(300));
    let reloads = server.policy()["reloads"].clone();
    for _ in 0..100 {
        let (d, revision) = server.check(&request("agent-0", "tool:call"));
        assert_eq!(
            (d["rule"].as_str(), revision.as_str()),
            (Some("rule_a"), rev_a.as_str())
        );
        compared += 1;
    }
    std::thread::sleep(Duration::from_millis(300));
    let p = server.policy();
    assert_eq!(
        p["reloads"], reloads,
        "reloaded on the audit log's changes: {p}"
    );

    // A broken file: refused, and A (the last good one) keeps answering.
    assert_eq!(p["revision"], rev_a.as_str());
    replace(&file, b"rule broken: allow\n");
    let p = server.wait_policy("the broken file to be refused", |p| {
        !p["last_reload_error"].is_null()
    });
    let error = p["last_reload_error"].as_str().unwrap();
    assert!(
        error.starts_with("the policy has errors:\n") && error.contains("p.writ:"),
        "{error}"
    );
    assert!(
        error.ends_with(&format!("; still serving revision {rev_a}")),
        "{error}"
    );
    assert_eq!(p["revision"], rev_a.as_str(), "{p}");
    assert_eq!(p["failed_reloads"], 1, "{p}");
    for _ in 0..20 {
        let (d, revision) = server.check(&request("agent-0", "tool:call"));
        assert_eq!(revision, rev_a);
        assert_eq!(d["rule"], "rule_a", "{d}");
        compared += 1;
    }
    // Fixed: served again, and the error is gone.
    replace(&file, b.as_bytes());
    let p = server.wait_policy("the fixed file to be served", |p| {
        p["revision"] == rev_b.as_str()
    });
    assert!(p["last_reload_error"].is_null(), "{p}");
    let (d, revision) = server.check(&request("agent-0", "tool:call"));
    assert_eq!(
        (d["rule"].as_str(), revision.as_str()),
        (Some("rule_b"), rev_b.as_str())
    );
    compared += 1;
    server.terminate();
    eprintln!("reload under load: {compared} decisions compared over {flips} reloads");
}

/// Runs `writ ARGS`; it must succeed.
fn writ(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "writ {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn a_bundle_not_signed_by_the_key_is_refused() {
    let dir = TempDir::new("bundle");
    let path = |name: &str| dir.path(name).to_str().unwrap().to_owned();
    writ(&["keygen", "-o", &path("key")]);
    writ(&["keygen", "-o", &path("other")]);
    for which in ['a', 'b', 'c'] {
        std::fs::write(dir.path(&format!("{which}.writ")), reload_policy(which)).unwrap();
    }
    // a and b signed by the key, c unsigned and signed by another key.
    for (src, out, key) in [
        ("a.writ", "a.wbundle", Some("key")),
        ("b.writ", "b.wbundle", Some("key")),
        ("c.writ", "c-unsigned.wbundle", None),
        ("c.writ", "c-other.wbundle", Some("other")),
    ] {
        let (src, out) = (path(src), path(out));
        let mut args = vec!["compile", &src, "-o", &out];
        let key = key.map(&path);
        if let Some(k) = &key {
            args.extend(["--sign", k]);
        }
        writ(&args);
    }
    let served = dir.path("served.wbundle");
    std::fs::copy(dir.path("a.wbundle"), &served).unwrap();
    let (served_s, pubkey) = (path("served.wbundle"), path("key.pub"));
    // Reloads on SIGHUP only.
    let server = Serve::start(
        &dir,
        "bundle",
        &["--bundle", &served_s, "--verify", &pubkey, "--no-watch"],
    );
    let mut compared = 0;
    let mut expect = |rule: &str, revision: &str| {
        let (d, r) = server.check(&request("agent", "tool:call"));
        assert_eq!(
            (d["rule"].as_str(), r.as_str()),
            (Some(rule), revision),
            "{d}"
        );
        compared += 1;
    };
    let rev_a = server.policy()["revision"].as_str().unwrap().to_owned();
    expect("rule_a", &rev_a);

    // Another bundle signed by the key: served.
    replace(&served, &std::fs::read(dir.path("b.wbundle")).unwrap());
    server.hangup();
    let p = server.wait_policy("the signed bundle to be served", |p| p["reloads"] == 1);
    let rev_b = p["revision"].as_str().unwrap().to_owned();
    assert_ne!(rev_a, rev_b);
    expect("rule_b", &rev_b);

    // Unsigned, signed by another key, damaged: refused, b keeps answering.
    let mut damaged = std::fs::read(dir.path("a.wbundle")).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x55;
    let wrong: [(&str, Vec<u8>); 3] = [
        (
            "unsigned",
            std::fs::read(dir.path("c-unsigned.wbundle")).unwrap(),
        ),
        (
            "signed by another key",
            std::fs::read(dir.path("c-other.wbundle")).unwrap(),
        ),
        ("damaged", damaged),
    ];
    for (n, (what, bytes)) in wrong.iter().enumerate() {
        replace(&served, bytes);
        server.hangup();
        let p = server.wait_policy(what, |p| p["failed_reloads"] == n + 1);
        let error = p["last_reload_error"].as_str().unwrap_or("");
        assert!(
            error.starts_with(&format!("{served_s}: "))
                && error.ends_with(&format!("; still serving revision {rev_b}")),
            "{what}: {error}"
        );
        assert_eq!(p["revision"], rev_b.as_str(), "{what}: {p}");
        assert_eq!(p["reloads"], 1, "{what}: {p}");
        eprintln!("bundle {what}: {error}");
        expect("rule_b", &rev_b);
    }
    drop(server);

    // No start on an unsigned bundle when a key is given.
    std::fs::copy(dir.path("c-unsigned.wbundle"), &served).unwrap();
    let failure = Serve::try_start(
        &dir,
        "unsigned",
        &["--bundle", &served_s, "--verify", &pubkey, "--no-watch"],
    )
    .err()
    .expect("writ serve started on an unsigned bundle with --verify");
    let status = failure.status.expect("writ serve did not exit");
    assert!(!status.success() && status.code().is_some(), "{status}");
    assert!(
        failure.log.starts_with(&format!("error: {served_s}: ")),
        "{}",
        failure.log
    );
    eprintln!("unsigned bundle at start: {}", failure.log.trim());
    eprintln!("signed bundle: {compared} decisions compared");
}

/// Runs `writ ARGS` (which may fail): its exit code and standard output.
fn writ_output(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn audit_retention_prunes_what_was_written_long_ago() {
    let dir = TempDir::new("retention");
    std::fs::write(dir.path("p.writ"), "rule free: allow \"tool:call\"\n").unwrap();
    let (policy, db) = (dir.path("p.writ"), dir.path("audit.db"));
    let (policy, db_s) = (policy.to_str().unwrap(), db.to_str().unwrap());
    // Five decisions by a server that keeps everything...
    let server = Serve::start(
        &dir,
        "keep",
        &[policy, "--audit-path", db_s, "--audit-retention-days", "0"],
    );
    for _ in 0..5 {
        server.check(&request("agent", "tool:call"));
    }
    server.terminate();
    // ...written, as far as the log can tell, three days ago.
    let days_ago = writ_audit::now_ms() - 3 * 86_400_000;
    let aged = rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE audit_batch SET written_ms = ?1", [days_ago])
        .unwrap();
    assert!(aged >= 1, "the first server wrote no batch");

    // A server that keeps one day prunes them at start. What it decides
    // itself, with decision times a year ago, was written now: kept.
    let server = Serve::start(
        &dir,
        "prune",
        &[policy, "--audit-path", db_s, "--audit-retention-days", "1"],
    );
    let mut old = request("agent", "tool:call");
    old["at"] = Value::from("2025-01-15T15:00:00Z");
    for _ in 0..3 {
        server.check(&old);
    }
    let start = Instant::now();
    while counter(&server.metrics(), "writ_audit_pruned_records_total", "") < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "waited 10 s for the prune\n{}\n{}",
            server.metrics(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        counter(&server.metrics(), "writ_audit_pruned_records_total", ""),
        5
    );
    assert_eq!(
        counter(&server.metrics(), "writ_audit_prune_failures_total", ""),
        0
    );
    assert!(
        server
            .log()
            .contains("pruned 5 records written over 1 day ago; it now starts after seq 5"),
        "{}",
        server.log()
    );
    server.terminate();
    let (code, out) = writ_output(&["audit", "verify", db_s]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("3 records, intact; pruned through seq 5 (5 records"),
        "{out}"
    );
    let (code, out) = writ_output(&["audit", "query", db_s, "--export", "jsonl"]);
    assert_eq!(code, Some(0), "{out}");
    let seqs: Vec<u64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![6, 7, 8]);

    // A JSON Lines log is never pruned, and the server says so.
    let server = Serve::start(&dir, "jsonl", &[policy]);
    assert!(
        server.log().contains("is JSON Lines and is kept whole"),
        "{}",
        server.log()
    );
    server.terminate();
}

/// The nice value of each thread of process `pid`, by thread name.
#[cfg(target_os = "linux")]
fn threads_nice(pid: u32) -> Vec<(String, i32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // After `(comm)`: the state is field 3, the nice value field 19.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        found.push((
            comm.trim().to_owned(),
            rest.split(' ').nth(16).unwrap().parse().unwrap(),
        ));
    }
    found
}

/// The audit log's threads run at a higher nice value than the threads
/// that decide (19 by default; `--audit-nice N`), so that writing the
/// log gives way to answering.
#[cfg(target_os = "linux")]
fn the_audit_logs_threads_run_below_the_servers() {
    let dir = TempDir::new("audit-nice");
    std::fs::write(dir.path("p.writ"), "rule free: allow \"tool:call\"\n").unwrap();
    let policy = dir.path("p.writ");
    let policy = policy.to_str().unwrap();
    for (name, args, step) in [
        ("default", &[][..], 19),
        ("five", &["--audit-nice", "5"][..], 5),
        ("zero", &["--audit-nice", "0"][..], 0),
    ] {
        let mut all = vec![policy];
        all.extend_from_slice(args);
        let server = Serve::start(&dir, name, &all);
        let (answer, _) = server.check(&request("agent", "tool:call"));
        assert_eq!(answer["decision"], "allow");
        // The answer may come before the log's threads have run: wait
        // (5 s at most) for them to set their nice value.
        let start = Instant::now();
        let (threads, main) = loop {
            let threads = threads_nice(server.child.id());
            let main = threads
                .iter()
                .find(|(n, _)| n == "writ")
                .unwrap_or_else(|| panic!("no main thread in {threads:?}"))
                .1;
            let want = (main + step).min(19);
            let audit = threads.iter().filter(|(n, _)| n.starts_with("writ-audit"));
            if audit.clone().count() > 0 && audit.clone().all(|(_, n)| *n == want)
                || start.elapsed() > Duration::from_secs(5)
            {
                break (threads, main);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let audit: Vec<_> = threads
            .iter()
            .filter(|(n, _)| n.starts_with("writ-audit"))
            .collect();
        assert!(!audit.is_empty(), "{name}: {threads:?}");
        for (n, nice) in &audit {
            assert_eq!(*nice, (main + step).min(19), "{name}: {n} in {threads:?}");
        }
        for (n, nice) in threads.iter().filter(|(n, _)| n.starts_with("tokio")) {
            assert_eq!(*nice, main, "{name}: {n} decides at the server's priority");
        }
        server.terminate();
    }
    // A step past 19 is refused.
    assert!(
        Serve::try_start(&dir, "twenty", &[policy, "--audit-nice", "20"]).is_err(),
        "--audit-nice 20 was accepted"
    );
}
