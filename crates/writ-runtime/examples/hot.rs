//! Profiling helper: decide one request many times, or with `--load` as
//! the action load the bundle many times (`perf record`).
//!
//! `hot BUNDLE ACTION [TARGET [AGENT]]`
use std::collections::BTreeMap;
use writ_runtime::{Request, Runtime, Value};

fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let action = std::env::args().nth(2).unwrap_or_default();
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    if action == "--load" {
        // Load the bundle many times (for profiling start-up).
        let mut rules = 0usize;
        for _ in 0..2_000u32 {
            if let Ok(rt) = Runtime::from_bytes(std::hint::black_box(&bytes)) {
                rules += rt.rule_count();
            }
        }
        println!("{rules}");
        return;
    }
    let Ok(rt) = Runtime::from_bytes(&bytes) else {
        return;
    };
    let mut context = BTreeMap::new();
    context.insert("amount".to_owned(), Value::Number(50.0));
    let mut rest = std::env::args().skip(3);
    let target = rest.next();
    let agent = rest.next().unwrap_or_else(|| "alice".to_owned());
    let req = Request {
        agent,
        target,
        roles: vec!["analyst".to_owned()],
        action,
        context,
        at: Some(jiff::Timestamp::UNIX_EPOCH),
        ..Request::default()
    };
    let mut allowed = 0u64;
    for _ in 0..20_000_000u64 {
        if std::hint::black_box(rt.check(std::hint::black_box(&req))).is_allowed() {
            allowed += 1;
        }
    }
    println!("{allowed}");
}
