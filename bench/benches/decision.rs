//! writ's runtime against Cedar, regorus and casbin-rs, in one run, on the
//! same workload (see `src/peers.rs`): N rules "allow actions matching
//! `tool:search_web_<i>:*` for role analyst when amount < 100", a hit on
//! the last rule and a miss. Also: compile time and bundle size, bundle
//! load time, and decisions per second on two threads.
//!
//! `cargo bench -p writ-bench --bench decision` (set `WRIT_BENCH_NS=10,100`
//! to choose N, `WRIT_BENCH_PEERS=0` to skip the peers,
//! `WRIT_BENCH_PEERS_MAX` for the largest N the peers run at; 10,000 by
//! default).
//!
//! Each number is the median of 21 timed batches (after a warm-up batch),
//! each batch long enough to take about 10 ms; the peers are measured with
//! the same loop so the ratios compare like with like. (criterion, used
//! for the other benches, has no way to print ratios across engines.)

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

#[path = "../src/peers.rs"]
mod peers;

use writ_bench::timing::{median_load_us, median_ns};
use writ_runtime::{Request, Runtime, Value};

/// One size's rows: engine, hit ns, miss ns.
type Rows = Vec<(String, f64, f64)>;

fn request(action: &str) -> Request {
    let mut context = BTreeMap::new();
    context.insert("amount".to_owned(), Value::Number(50.0));
    Request {
        agent: "alice".to_owned(),
        roles: vec!["analyst".to_owned()],
        action: action.to_owned(),
        context,
        at: Some(jiff::Timestamp::UNIX_EPOCH),
        ..Request::default()
    }
}

fn ns_list() -> Vec<usize> {
    std::env::var("WRIT_BENCH_NS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1_000, 10_000, 100_000])
}

fn main() {
    let with_peers = std::env::var("WRIT_BENCH_PEERS").map_or(true, |v| v != "0");
    let ns = ns_list();
    // Peers scan every rule: past 10k rules one decision takes tens of
    // milliseconds and setting them up takes minutes; raise with
    // WRIT_BENCH_PEERS_MAX=100000.
    let peer_max: usize = std::env::var("WRIT_BENCH_PEERS_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut table: Vec<(usize, Rows)> = Vec::new();
    let mut compile_rows = Vec::new();
    let mut floor_row = Vec::new();
    for &n in &ns {
        let text = writ_bench::decision_policy(n);
        let t = Instant::now();
        let bytes = writ_bench::compile_bundle(&text);
        let compile_s = t.elapsed().as_secs_f64();
        // Load time: `Runtime::from_vec` of the file's bytes, median of 51.
        let load_us = median_load_us(&bytes, 51);
        let rt = Arc::new(Runtime::from_bytes(&bytes).expect("bundle loads"));
        let hit = request(&peers::hit_action(n));
        let miss = request(peers::MISS_ACTION);
        assert!(rt.check(&hit).is_allowed(), "writ: the hit must be allowed");
        assert!(
            !rt.check(&miss).is_allowed(),
            "writ: the miss must be denied"
        );
        let mut rows = Vec::new();
        let w_hit = median_ns(|| {
            black_box(rt.check(black_box(&hit)).effect);
        });
        let w_miss = median_ns(|| {
            black_box(rt.check(black_box(&miss)).effect);
        });
        rows.push(("writ".to_owned(), w_hit, w_miss));
        // The same, building the request per call as the peers do.
        let action = peers::hit_action(n);
        let w_hit_built = median_ns(|| {
            let r = request(black_box(&action));
            black_box(rt.check(&r).effect);
        });
        let w_miss_built = median_ns(|| {
            let r = request(black_box(peers::MISS_ACTION));
            black_box(rt.check(&r).effect);
        });
        rows.push((
            "writ (request built per call)".to_owned(),
            w_hit_built,
            w_miss_built,
        ));
        // The floor: one hash lookup and one compare.
        let set: std::collections::HashSet<String> =
            (0..n).map(|i| format!("tool:search_web_{i}:run")).collect();
        let floor = median_ns(|| {
            let a = black_box(action.as_str());
            black_box(set.contains(a) && black_box(50) < 100);
        });
        floor_row.push((n, floor));
        // Two threads sharing one runtime.
        let per_thread = 2_000_000u64;
        let t = Instant::now();
        let handles: Vec<_> = (0..2)
            .map(|k| {
                let rt = Arc::clone(&rt);
                let req = if k == 0 { hit.clone() } else { miss.clone() };
                std::thread::spawn(move || {
                    for _ in 0..per_thread {
                        black_box(rt.check(black_box(&req)).effect);
                    }
                })
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
        let per_sec = (2 * per_thread) as f64 / t.elapsed().as_secs_f64();
        compile_rows.push((n, compile_s, bytes.len(), load_us, per_sec));
        if with_peers {
            for setup in [
                peers::cedar as fn(usize) -> peers::Peer,
                peers::cedar_grouped,
                peers::regorus,
                peers::casbin,
            ] {
                if n > peer_max {
                    continue;
                }
                let mut peer = setup(n);
                let h = median_ns(|| {
                    black_box((peer.decide)(true));
                });
                let m = median_ns(|| {
                    black_box((peer.decide)(false));
                });
                rows.push((peer.name.to_owned(), h, m));
            }
        }
        table.push((n, rows));
        eprintln!("done N = {n}");
    }

    // Principal indexing: 10,000 rules on the same action, one per agent.
    let mut per_agent = String::from("policy \"per-agent\" { default deny }\n");
    for i in 0..10_000 {
        per_agent.push_str(&format!(
            "rule a{i}: allow \"tool:call\"\n  for agents [agent{i}]\n  when amount < 100\n"
        ));
    }
    let rt = Runtime::from_bytes(&writ_bench::compile_bundle(&per_agent)).expect("loads");
    let mut req = request("tool:call");
    req.agent = "agent9999".to_owned();
    assert!(rt.check(&req).is_allowed());
    let per_agent_ns = median_ns(|| {
        black_box(rt.check(black_box(&req)).effect);
    });

    println!("\nmedian ns per decision (hit on the last rule / miss)\n");
    println!("| engine | N | hit ns | miss ns | writ is faster (hit) |");
    println!("|---|---:|---:|---:|---:|");
    for (n, rows) in &table {
        let writ_hit = rows.first().map_or(f64::NAN, |r| r.1);
        for (name, h, m) in rows {
            let ratio = if name == "writ" {
                "—".to_owned()
            } else {
                format!("{:.0}×", h / writ_hit)
            };
            println!("| {name} | {n} | {h:.0} | {m:.0} | {ratio} |");
        }
    }
    println!("\n10,000 rules on one action, one per agent (principal index): {per_agent_ns:.0} ns");
    println!("\n| floor (HashSet::contains + compare) | N | ns |\n|---|---:|---:|");
    for (n, f) in &floor_row {
        println!("| floor | {n} | {f:.0} |");
    }
    println!(
        "\n| N | compile | bundle size | load | decisions/s on 2 threads |\n|---:|---:|---:|---:|---:|"
    );
    for (n, c, size, load, per_sec) in &compile_rows {
        println!(
            "| {n} | {:.3} s | {:.1} KiB | {load:.1} µs | {:.1} M |",
            c,
            *size as f64 / 1024.0,
            per_sec / 1e6
        );
    }
}
