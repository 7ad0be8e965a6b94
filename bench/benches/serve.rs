//! `writ serve` over HTTP (issue 23, "Speed"): throughput and latency of
//! the decision gateway against the HTTP floor and agent-aegis's server.
//!
//! `cargo bench -p writ-bench --bench serve`
//!
//! On a machine with 2 cores or more, every server runs pinned to core 0
//! (`taskset -c 0`) and the load generator, `oha`, to core 1, over
//! loopback with keep-alive. The bench starts every target, then measures
//!
//! - the most each answers, in `WRIT_BENCH_ROUNDS` rounds (3) in which
//!   the targets take turns (a VM's speed drifts by tens of percent over
//!   minutes: a ratio of two runs taken a minute apart is worth more than
//!   one of runs ten minutes apart): a 2 s warm-up, then
//!   `WRIT_BENCH_CONNECTIONS` connections (64) for `WRIT_BENCH_SECONDS`
//!   seconds (10), with the requests/s and the p50 and p99 latencies, and
//!   the server's CPU use (if under ~95 %, the load generator, not the
//!   server, was the limit). A ratio to the floor or to agent-aegis is
//!   the median of the rounds' ratios;
//! - the p99 at half its median round's rate (`oha -q`), twice: with latency counted
//!   from when each request was due (`--latency-correction`: a stall
//!   delays the requests behind it, and they count it), and from when
//!   each was sent; for writ's targets, the floor's at the same rate too
//!   (on a VM, oha's own schedule slips by milliseconds: the floor's p99
//!   from when due is over 2 ms at 30,000 req/s, so that measure is of
//!   the machine; the target is judged from when sent, beside the
//!   floor's);
//!
//! and counts errors: connection errors and any answer but the expected
//! status. Targets:
//!
//! - (a) the HTTP floor: `http_floor` (src/bin/http_floor.rs), an axum
//!   endpoint answering a constant decision, on the same runtime;
//! - (b) `writ serve` `POST /v1/check`, examples/support.writ, the
//!   README's request (no tokens);
//! - (c) `writ serve` `GET /proxy/check`, MeshGuard's protocol:
//!   examples/seeds/meshguard-openai-support.yaml, an HS256 JWT issued by
//!   `POST /admin/agents` and verified (and its agent looked up in the
//!   registry) on every call, action `read:customer_data`;
//! - (d) agent-aegis 1.0.0's own server, `POST /api/v1/evaluate`, under
//!   uvicorn (one worker, uvloop, httptools, no access log), the seed
//!   policy examples/seeds/aegis-policy.yaml. Needs a Python with
//!   `agent-aegis[server]==1.0.0 uvicorn uvloop httptools` in
//!   `WRIT_BENCH_AEGIS_PYTHON`; skipped with a note otherwise.
//!
//! (a)–(c) run once per runtime in `WRIT_BENCH_RUNTIMES` (`default,1`):
//! `default` is tokio's multi-thread runtime as `writ serve` starts it
//! (pinned to one core: one worker, plus the thread that accepts), `N` is
//! `--threads N` (1: a current-thread runtime). Every decision of `writ
//! serve` goes to its audit log in a temporary folder (SQLite, the
//! default; JSON Lines with `WRIT_BENCH_AUDIT=jsonl`), whose writer
//! threads share core 0 with the server.
//!
//! Programs: `oha` from `WRIT_BENCH_OHA`, else PATH, else ~/.cargo/bin
//! (`cargo install oha --locked`); `writ` from `WRIT_CLI`, else built
//! with `cargo build --release --locked -p writ`.
//!
//! Prints a markdown table and the ratios to the targets: writ / floor
//! ≥ 70 % (also per CPU second, for when oha could not keep the floor
//! busy), writ / aegis ≥ 20×, p99 at half rate from when sent ≤ 2 ms. Exits non-zero
//! when a run had errors.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const SERVER_CPU: &str = "0";
const LOAD_CPU: &str = "1";

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; a filter is not supported.
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("serve bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the bench was told.
struct Settings {
    seconds: u64,
    /// How many times each target's most is measured, the targets taking
    /// turns (`WRIT_BENCH_ROUNDS`, 3).
    rounds: usize,
    connections: u32,
    oha: PathBuf,
    writ: PathBuf,
    floor: PathBuf,
    aegis_python: Option<PathBuf>,
    runtimes: Vec<Option<u16>>,
    /// `WRIT_BENCH_AUDIT=jsonl`: writ serve's audit log in JSON Lines.
    jsonl_audit: bool,
    root: PathBuf,
    tmp: PathBuf,
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|_| format!("{name}={v}: expected a number")),
        _ => Ok(default),
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn find_oha() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("WRIT_BENCH_OHA").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    on_path("oha")
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(PathBuf::from(home).join(".cargo/bin/oha")).filter(|p| p.is_file())
        })
        .ok_or_else(|| {
            "oha not found: install it (`cargo install oha --locked`, about 4 minutes) or set WRIT_BENCH_OHA".to_owned()
        })
}

/// `writ` from `WRIT_CLI`, or the release binary, built now.
fn find_writ(root: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("WRIT_CLI").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("serve bench: cargo build --release --locked -p writ");
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "writ",
            "--bin",
            "writ",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo: {e}"))?;
    if !out.status.success() {
        return Err("cargo build -p writ failed".to_owned());
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["target"]["name"] == "writ")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built no `writ` executable".to_owned())
}

fn settings() -> Result<Settings, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_owned();
    let runtimes = std::env::var("WRIT_BENCH_RUNTIMES")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "default,1".to_owned())
        .split(',')
        .map(|r| match r.trim() {
            "default" => Ok(None),
            n => n
                .parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| {
                    format!("WRIT_BENCH_RUNTIMES: `{n}` is not `default` or a thread count")
                }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tmp = std::env::temp_dir().join(format!("writ-bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    Ok(Settings {
        seconds: env_num("WRIT_BENCH_SECONDS", 10)?,
        rounds: env_num("WRIT_BENCH_ROUNDS", 3usize)?.max(1),
        connections: env_num("WRIT_BENCH_CONNECTIONS", 64)?,
        oha: find_oha()?,
        writ: find_writ(&root)?,
        floor: PathBuf::from(env!("CARGO_BIN_EXE_http_floor")),
        aegis_python: std::env::var_os("WRIT_BENCH_AEGIS_PYTHON")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        runtimes,
        jsonl_audit: match std::env::var("WRIT_BENCH_AUDIT").as_deref() {
            Ok("jsonl") => true,
            Ok("sqlite" | "") | Err(_) => false,
            Ok(other) => return Err(format!("WRIT_BENCH_AUDIT={other}: sqlite or jsonl")),
        },
        root,
        tmp,
    })
}

/// A server the bench started; stopped (SIGTERM, then SIGKILL) on drop.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `program args` pinned to the server's core; waits for
    /// `listening on http://ADDR` on its stderr, or (with `port`) for its
    /// port to take connections.
    fn start(
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        clear_env: bool,
        port: Option<u16>,
        cwd: &Path,
    ) -> Result<Server, String> {
        let mut cmd = Command::new("taskset");
        cmd.arg("-c")
            .arg(SERVER_CPU)
            .arg(program)
            .args(args)
            .current_dir(cwd);
        if clear_env {
            cmd.env_clear();
            if let Some(path) = std::env::var_os("PATH") {
                cmd.env("PATH", path);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(i) = line.find("listening on http://") {
                        let addr = line[i + "listening on http://".len()..]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        let _ = tx.send(addr);
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push(line);
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut server = Server {
            child,
            addr: String::new(),
            log,
        };
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before listening:\n{}",
                    program.display(),
                    server.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen within 60 s:\n{}",
                    program.display(),
                    server.log_text()
                ));
            }
            match port {
                None => {
                    if let Ok(addr) = rx.recv_timeout(Duration::from_millis(100)) {
                        server.addr = addr;
                        return Ok(server);
                    }
                }
                Some(p) => {
                    let addr = format!("127.0.0.1:{p}");
                    if TcpStream::connect(&addr).is_ok() {
                        server.addr = addr;
                        return Ok(server);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on loopback (for servers that cannot report theirs).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {out}"))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// What a load is made of.
struct Load {
    method: &'static str,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// The status every answer must have.
    status: u16,
    /// What the answer to a first request must hold.
    expect: &'static str,
}

/// The README's request to `POST /v1/check`.
fn native_load(expect: &'static str) -> Load {
    Load {
        method: "POST",
        path: "/v1/check",
        headers: Vec::new(),
        body: Some(README_REQUEST.to_owned()),
        status: 200,
        expect,
    }
}

/// One oha run, read from its JSON.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    rps: f64,
    p50_s: f64,
    p99_s: f64,
    requests: u64,
    errors: u64,
    /// The server's CPU time over the run's wall time.
    cpu: f64,
    /// How busy the server's core was (the server and anything else).
    server_core: f64,
    /// How busy the load generator's core was.
    load_core: f64,
}

/// (busy, total) jiffies of each core, from /proc/stat.
fn core_times() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .map(|l| {
            let n: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|f| f.parse().ok())
                .collect();
            let total: u64 = n.iter().take(8).sum();
            // idle and iowait are not busy.
            let idle = n.get(3).unwrap_or(&0) + n.get(4).unwrap_or(&0);
            (total - idle, total)
        })
        .collect()
}

fn busy(before: &[(u64, u64)], after: &[(u64, u64)], core: &str) -> f64 {
    let i: usize = core.parse().unwrap_or(0);
    match (before.get(i), after.get(i)) {
        (Some(a), Some(b)) if b.1 > a.1 => (b.0 - a.0) as f64 / (b.1 - a.1) as f64,
        _ => f64::NAN,
    }
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

fn oha(
    s: &Settings,
    load: &Load,
    url: &str,
    seconds: u64,
    // A rate, and whether latency counts from when a request was due.
    rate: Option<(f64, bool)>,
    pid: u32,
) -> Result<Run, String> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", LOAD_CPU])
        .arg(&s.oha)
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "--worker-threads",
            "1",
        ])
        .arg("-w")
        .args(["-z", &format!("{seconds}s")])
        .args(["-c", &s.connections.to_string()])
        .args(["-m", load.method]);
    if let Some((q, due)) = rate {
        cmd.args(["-q", &format!("{q:.0}")]);
        if due {
            cmd.arg("--latency-correction");
        }
    }
    for (k, v) in &load.headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    if let Some(b) = &load.body {
        cmd.args(["-T", "application/json", "-d", b]);
    }
    cmd.arg(url);
    let ticks0 = cpu_ticks(pid);
    let cores0 = core_times();
    let t0 = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("oha: {e}"))?;
    let wall = t0.elapsed().as_secs_f64();
    let ticks1 = cpu_ticks(pid);
    let cores1 = core_times();
    if !out.status.success() {
        return Err(format!(
            "oha failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("oha's JSON: {e}: {}", String::from_utf8_lossy(&out.stdout)))?;
    let num = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let mut requests = 0;
    let mut errors = 0;
    if let Some(codes) = v["statusCodeDistribution"].as_object() {
        for (code, n) in codes {
            let n = n.as_u64().unwrap_or(0);
            requests += n;
            if code.parse::<u16>().ok() != Some(load.status) {
                errors += n;
            }
        }
    }
    if let Some(errs) = v["errorDistribution"].as_object() {
        for (what, n) in errs {
            let n = n.as_u64().unwrap_or(0);
            eprintln!("  oha error: {what} ×{n}");
            errors += n;
        }
    }
    let cpu = match (ticks0, ticks1) {
        (Some(a), Some(b)) => (b - a) as f64 / clock_ticks() / wall,
        _ => f64::NAN,
    };
    Ok(Run {
        rps: num("/summary/requestsPerSec"),
        p50_s: num("/latencyPercentiles/p50"),
        p99_s: num("/latencyPercentiles/p99"),
        requests,
        errors,
        cpu,
        server_core: busy(&cores0, &cores1, SERVER_CPU),
        load_core: busy(&cores0, &cores1, LOAD_CPU),
    })
}

/// A started server and the load it is measured with.
struct Target {
    key: char,
    name: String,
    runtime: String,
    server: Server,
    load: Load,
}

impl Target {
    /// Checks a first answer.
    fn check(&self) -> Result<(), String> {
        let load = &self.load;
        let body = load.body.as_deref().unwrap_or("");
        let (status, answer) = http(
            &self.server.addr,
            load.method,
            load.path,
            &load.headers,
            body,
        )?;
        if status != load.status || !answer.contains(load.expect) {
            return Err(format!(
                "({}) {}: {} {} answered {status}: {answer}",
                self.key, self.name, load.method, load.path
            ));
        }
        Ok(())
    }

    /// The most it answers: warmed up, then measured.
    fn max(&self, s: &Settings, round: usize) -> Result<Run, String> {
        eprintln!(
            "serve bench: round {}/{}: ({}) {} [{}]",
            round + 1,
            s.rounds,
            self.key,
            self.name,
            self.runtime
        );
        let url = self.server.url(self.load.path);
        oha(
            s,
            &self.load,
            &url,
            s.seconds.min(2),
            None,
            self.server.pid(),
        )?;
        let max = oha(s, &self.load, &url, s.seconds, None, self.server.pid())?;
        eprintln!(
            "  max: {:.0} req/s, p50 {}, p99 {}, {} errors; CPU: server {:.0} %, its core {:.0} %, oha's core {:.0} %",
            max.rps,
            time(max.p50_s),
            time(max.p99_s),
            max.errors,
            max.cpu * 100.0,
            max.server_core * 100.0,
            max.load_core * 100.0
        );
        Ok(max)
    }

    /// Its p99 at `rate`: from when each request was due, and from when
    /// each was sent.
    fn halves(&self, s: &Settings, rate: f64) -> Result<[Run; 2], String> {
        let url = self.server.url(self.load.path);
        let mut halves = [Run::default(); 2];
        for (due, half) in [true, false].into_iter().zip(&mut halves) {
            *half = oha(
                s,
                &self.load,
                &url,
                s.seconds,
                Some((rate, due)),
                self.server.pid(),
            )?;
            eprintln!(
                "  ({}) at {rate:.0} req/s, latency from when {}: {:.0} req/s, p50 {}, p99 {}, {} errors, server CPU {:.0} %",
                self.key,
                if due { "due" } else { "sent" },
                half.rps,
                time(half.p50_s),
                time(half.p99_s),
                half.errors,
                half.cpu * 100.0
            );
        }
        Ok(halves)
    }
}

/// A measured target: the most it answers in each round, and its p99 at
/// half its median round's rate.
struct Row {
    key: char,
    name: String,
    runtime: String,
    threads: usize,
    /// Each round's most, in round order.
    rounds: Vec<Run>,
    /// The median round (by requests/s).
    max: Run,
    /// At half `max`'s rate, latency from when each request was due.
    half: Run,
    /// The same, from when each was sent.
    half_sent: Run,
    /// For writ's targets: the floor at the same rate, from when due and
    /// from when sent (what the machine and oha alone add at that rate).
    floor_same_rate: Option<[Run; 2]>,
}

impl Row {
    fn errors(&self) -> u64 {
        self.rounds.iter().map(|r| r.errors).sum::<u64>()
            + self.half.errors
            + self.half_sent.errors
            + self
                .floor_same_rate
                .map_or(0, |[due, sent]| due.errors + sent.errors)
    }
}

/// The round with the median requests/s.
fn median_run(runs: &[Run]) -> Run {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|x, y| x.rps.total_cmp(&y.rps));
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `w`'s requests/s over `base`'s, round by round (each pair measured
/// minutes apart at most, on a machine whose speed drifts): the median
/// and the range. `per_cpu`: per CPU second instead.
fn ratios(w: &Row, base: &Row, per_cpu: bool) -> (f64, f64, f64) {
    let each: Vec<f64> = w
        .rounds
        .iter()
        .zip(&base.rounds)
        .map(|(x, y)| {
            if per_cpu {
                (x.rps / x.cpu) / (y.rps / y.cpu)
            } else {
                x.rps / y.rps
            }
        })
        .collect();
    let lo = each.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = each.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(each), lo, hi)
}

fn time(s: f64) -> String {
    if s.is_nan() {
        "–".to_owned()
    } else if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

fn runtime_name(threads: Option<u16>) -> String {
    match threads {
        None => "multi-thread (default)".to_owned(),
        Some(1) => "current-thread (`--threads 1`)".to_owned(),
        Some(n) => format!("multi-thread, {n} workers (`--threads {n}`)"),
    }
}

fn threads_args(threads: Option<u16>) -> Vec<String> {
    threads
        .map(|n| vec!["--threads".to_owned(), n.to_string()])
        .unwrap_or_default()
}

/// The README's request, at the time CI asks it (the policy allows refunds
/// on weekdays, in New York's working hours).
const README_REQUEST: &str = r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":79.99,"currency":"USD"},"at":"2025-01-15T15:00:00Z"}"#;

fn floor(s: &Settings, threads: Option<u16>) -> Result<Target, String> {
    let server = Server::start(&s.floor, &threads_args(threads), &[], true, None, &s.tmp)?;
    let load = native_load(r#""decision":"allow""#);
    Ok(Target {
        key: 'a',
        name: "HTTP floor (axum, constant JSON)".to_owned(),
        runtime: runtime_name(threads),
        server,
        load,
    })
}

fn writ_args(s: &Settings, dir: &Path, policy: &str, threads: Option<u16>) -> Vec<String> {
    let mut args = vec![
        "serve".to_owned(),
        s.root.join(policy).display().to_string(),
        "--port".to_owned(),
        "0".to_owned(),
        "--no-watch".to_owned(),
        "--db-path".to_owned(),
        dir.join("writ-serve.db").display().to_string(),
        "--audit-path".to_owned(),
        dir.join(if s.jsonl_audit {
            "writ-audit.jsonl"
        } else {
            "writ-audit.db"
        })
        .display()
        .to_string(),
    ];
    args.extend(threads_args(threads));
    args
}

/// A folder name's part for a runtime (the servers run side by side).
fn dir_suffix(threads: Option<u16>) -> String {
    threads.map_or_else(|| "default".to_owned(), |n| n.to_string())
}

fn fresh_dir(s: &Settings, name: &str) -> Result<PathBuf, String> {
    let dir = s.tmp.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn writ_native(s: &Settings, threads: Option<u16>) -> Result<Target, String> {
    let dir = fresh_dir(s, &format!("native-{}", dir_suffix(threads)))?;
    let server = Server::start(
        &s.writ,
        &writ_args(s, &dir, "examples/support.writ", threads),
        &[],
        true,
        None,
        &dir,
    )?;
    let load = native_load(r#""decision":"allow","rule":"refund_small""#);
    Ok(Target {
        key: 'b',
        name: "`writ serve` `POST /v1/check`".to_owned(),
        runtime: runtime_name(threads),
        server,
        load,
    })
}

fn writ_meshguard(s: &Settings, threads: Option<u16>) -> Result<Target, String> {
    let dir = fresh_dir(s, &format!("meshguard-{}", dir_suffix(threads)))?;
    let secret = format!(
        "bench-secret-{}-0123456789abcdef0123456789",
        std::process::id()
    );
    let admin = "bench-admin-token".to_owned();
    let server = Server::start(
        &s.writ,
        &writ_args(
            s,
            &dir,
            "examples/seeds/meshguard-openai-support.yaml",
            threads,
        ),
        &[("JWT_SECRET", secret), ("ADMIN_TOKEN", admin.clone())],
        true,
        None,
        &dir,
    )?;
    let (status, body) = http(
        &server.addr,
        "POST",
        "/admin/agents",
        &[("X-Admin-Token".to_owned(), admin)],
        r#"{"name":"bench","trustTier":"verified","tags":["openai","support"]}"#,
    )?;
    let token = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["token"].as_str().map(str::to_owned))
        .filter(|_| (200..300).contains(&status))
        .ok_or_else(|| format!("POST /admin/agents answered {status}: {body}"))?;
    let check = |token: &str| {
        vec![
            ("Authorization".to_owned(), format!("Bearer {token}")),
            (
                "X-MeshGuard-Action".to_owned(),
                "read:customer_data".to_owned(),
            ),
        ]
    };
    // A token that does not verify is refused: the check is real.
    let (status, _) = http(
        &server.addr,
        "GET",
        "/proxy/check",
        &check(&format!("{token}x")),
        "",
    )?;
    if status != 401 {
        return Err(format!("a bad signature was answered {status}, not 401"));
    }
    let load = Load {
        method: "GET",
        path: "/proxy/check",
        headers: check(&token),
        body: None,
        status: 200,
        expect: r#""allowed":true"#,
    };
    Ok(Target {
        key: 'c',
        name: "`writ serve` `GET /proxy/check` (JWT)".to_owned(),
        runtime: runtime_name(threads),
        server,
        load,
    })
}

const AEGIS_APP: &str = r#"# Written by writ's serve bench: agent-aegis's app, no dashboard, no audit DB.
import os
from aegis.server.app import create_app

app = create_app(policy_path=os.environ["AEGIS_POLICY"], enable_dashboard=False)
"#;

const AEGIS_REQUEST: &str = r#"{"action_type":"search_docs","target":"web"}"#;

fn aegis(s: &Settings, python: &Path) -> Result<Target, String> {
    let probe = Command::new(python)
        .args([
            "-c",
            "import aegis.server.app, uvicorn, uvloop, httptools; import importlib.metadata as m; print(m.version('agent-aegis'))",
        ])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    let version = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
    if !probe.status.success() {
        return Err(format!(
            "{} cannot import agent-aegis's server, uvicorn, uvloop and httptools: {}",
            python.display(),
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    if version != "1.0.0" {
        eprintln!("serve bench: note: agent-aegis {version}, not 1.0.0");
    }
    let dir = fresh_dir(s, "aegis")?;
    std::fs::write(dir.join("aegis_bench_app.py"), AEGIS_APP)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = free_port()?;
    let args: Vec<String> = [
        "-m",
        "uvicorn",
        "aegis_bench_app:app",
        "--app-dir",
        &dir.display().to_string(),
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    let policy = s.root.join("examples/seeds/aegis-policy.yaml");
    let server = Server::start(
        python,
        &args,
        &[("AEGIS_POLICY", policy.display().to_string())],
        false,
        Some(port),
        // agent-aegis opens aegis_audit.db where it starts.
        &dir,
    )?;
    let load = Load {
        method: "POST",
        path: "/api/v1/evaluate",
        headers: Vec::new(),
        body: Some(AEGIS_REQUEST.to_owned()),
        status: 200,
        expect: r#""is_allowed":true"#,
    };
    Ok(Target {
        key: 'd',
        name: format!("agent-aegis {version} `POST /api/v1/evaluate` (uvicorn)"),
        runtime: "uvloop, 1 worker".to_owned(),
        server,
        load,
    })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}); load average {load}")
}

fn version_of(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn run() -> Result<bool, String> {
    if std::thread::available_parallelism().map_or(0, usize::from) < 2 {
        return Err(
            "this bench pins the server and oha to two different cores: it needs 2".to_owned(),
        );
    }
    if on_path("taskset").is_none() {
        return Err("taskset not found (util-linux)".to_owned());
    }
    let s = settings()?;
    eprintln!(
        "serve bench: {} ({}), {} s a run, {} connections; machine: {}",
        s.oha.display(),
        version_of(&s.oha),
        s.seconds,
        s.connections,
        machine()
    );
    let mut targets = Vec::new();
    let mut notes = Vec::new();
    for &threads in &s.runtimes {
        targets.push(floor(&s, threads)?);
        targets.push(writ_native(&s, threads)?);
        targets.push(writ_meshguard(&s, threads)?);
    }
    match &s.aegis_python {
        Some(py) => match aegis(&s, py) {
            Ok(t) => targets.push(t),
            Err(e) => notes.push(format!("(d) agent-aegis skipped: {e}")),
        },
        None => notes.push(
            "(d) agent-aegis skipped: set WRIT_BENCH_AEGIS_PYTHON to a Python with `agent-aegis[server]==1.0.0 uvicorn uvloop httptools`".to_owned(),
        ),
    }
    for t in &targets {
        t.check()?;
    }
    // The targets take turns, round after round: the machine's speed
    // drifts over minutes, and a ratio of two runs a minute apart is
    // worth more than one of runs ten minutes apart.
    let mut maxes: Vec<Vec<Run>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 0..s.rounds {
        for (t, runs) in targets.iter().zip(&mut maxes) {
            runs.push(t.max(&s, round)?);
        }
    }
    let mut rows = Vec::new();
    for (t, runs) in targets.iter().zip(maxes) {
        let max = median_run(&runs);
        let [half, half_sent] = t.halves(&s, max.rps / 2.0)?;
        let floor_same_rate = match targets
            .iter()
            .find(|f| f.key == 'a' && f.runtime == t.runtime)
        {
            Some(f) if matches!(t.key, 'b' | 'c') => {
                eprintln!("  the floor at ({})'s rate:", t.key);
                Some(f.halves(&s, max.rps / 2.0)?)
            }
            _ => None,
        };
        rows.push(Row {
            key: t.key,
            name: t.name.clone(),
            runtime: t.runtime.clone(),
            threads: threads_of(t.server.pid()),
            rounds: runs,
            max,
            half,
            half_sent,
            floor_same_rate,
        });
    }
    drop(targets);
    let _ = std::fs::remove_dir_all(&s.tmp);

    println!();
    println!(
        "`writ serve` over HTTP: server on core {SERVER_CPU}, oha on core {LOAD_CPU} (1 thread), {} connections, keep-alive, {} s a run; writ's audit log {}; machine: {}",
        s.connections,
        s.seconds,
        if s.jsonl_audit {
            "JSON Lines"
        } else {
            "SQLite"
        },
        machine()
    );
    println!();
    println!(
        "| | target | runtime | threads | req/s (median round) | each round | p50 | p99 | p99 at half rate: from when due / sent | errors | CPU at max: server / its core / oha's core |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let each: Vec<String> = r.rounds.iter().map(|x| format!("{:.0}", x.rps)).collect();
        println!(
            "| ({}) | {} | {} | {} | {:.0} | {} | {} | {} | {} / {} | {} | {:.0} / {:.0} / {:.0} % |",
            r.key,
            r.name,
            r.runtime,
            r.threads,
            r.max.rps,
            each.join(", "),
            time(r.max.p50_s),
            time(r.max.p99_s),
            time(r.half.p99_s),
            time(r.half_sent.p99_s),
            r.errors(),
            r.max.cpu * 100.0,
            r.max.server_core * 100.0,
            r.max.load_core * 100.0
        );
    }
    println!();
    let find =
        |key: char, runtime: &str| rows.iter().find(|r| r.key == key && r.runtime == runtime);
    let aegis_row = rows.iter().find(|r| r.key == 'd');
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    for &threads in &s.runtimes {
        let rt = runtime_name(threads);
        let Some(a) = find('a', &rt) else { continue };
        for key in ['b', 'c'] {
            let Some(w) = find(key, &rt) else { continue };
            let (floor_ratio, lo, hi) = ratios(w, a, false);
            let (per_cpu, _, _) = ratios(w, a, true);
            let [floor_due, floor_sent] = w.floor_same_rate.unwrap_or_default();
            println!(
                "- ({key}) [{rt}]: writ / floor {:.0} % (median of {} rounds, {:.0}–{:.0} %; target ≥ 70 %: {}), {:.0} % per CPU second; p99 at half rate ({:.0} req/s) {} from when sent (target ≤ 2 ms: {}), {} from when due; the floor at the same rate: {} from when sent, {} from when due (writ − floor, from when due: {:+.2} ms)",
                floor_ratio * 100.0,
                w.rounds.len(),
                lo * 100.0,
                hi * 100.0,
                verdict(floor_ratio >= 0.7),
                per_cpu * 100.0,
                w.max.rps / 2.0,
                time(w.half_sent.p99_s),
                verdict(w.half_sent.p99_s <= 0.002),
                time(w.half.p99_s),
                time(floor_sent.p99_s),
                time(floor_due.p99_s),
                (w.half.p99_s - floor_due.p99_s) * 1e3
            );
            if let Some(d) = aegis_row {
                let (x, lo, hi) = ratios(w, d, false);
                println!(
                    "  writ / aegis {x:.1}× (median of {} rounds, {lo:.1}–{hi:.1}×; target ≥ 20×: {})",
                    w.rounds.len(),
                    verdict(x >= 20.0)
                );
            }
        }
    }
    let mut ok = true;
    for r in &rows {
        if r.max.server_core - r.max.cpu > 0.1 {
            println!(
                "- note: ({}) [{}]: other processes took {:.0} % of the server's core during its run: the machine was busy",
                r.key,
                r.runtime,
                (r.max.server_core - r.max.cpu) * 100.0
            );
        } else if r.max.cpu < 0.9 && r.max.load_core > 0.9 {
            println!(
                "- note: ({}) [{}] used {:.0} % of its core at the most it answered while oha's core was {:.0} % busy: the load generator was the limit, so this req/s is a lower bound (at that CPU cost, a whole core would answer about {:.0} req/s)",
                r.key,
                r.runtime,
                r.max.cpu * 100.0,
                r.max.load_core * 100.0,
                r.max.rps / r.max.cpu
            );
        }
        if r.errors() > 0 || r.rounds.iter().any(|x| x.requests == 0) {
            ok = false;
            println!(
                "- ERRORS: ({}) [{}]: {} of {} answers at the most (all rounds), {} of {} and {} of {} at half rate",
                r.key,
                r.runtime,
                r.rounds.iter().map(|x| x.errors).sum::<u64>(),
                r.rounds.iter().map(|x| x.requests).sum::<u64>(),
                r.half.errors,
                r.half.requests,
                r.half_sent.errors,
                r.half_sent.requests
            );
        }
    }
    for n in notes {
        println!("- {n}");
    }
    Ok(ok)
}
