//! Any bytes as JSON request lines: parsing never panics, and every
//! request the reader accepts gets the same decision from the runtime
//! and from the reference evaluator, in each example policy (the lines in
//! order, so that limits carry from one to the next in both).
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_eval::Request;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let requests: Vec<Request> = text
        .lines()
        .take(32)
        .filter_map(|line| Request::from_json(line).ok())
        .collect();
    if requests.is_empty() {
        return;
    }
    for example in writ_fuzz::examples() {
        writ_fuzz::decide_alike(example.set(), &example.bundle, &requests, &|| {
            format!("policy {}", example.name)
        });
    }
});
