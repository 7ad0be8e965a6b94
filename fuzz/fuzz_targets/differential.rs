//! A small policy and a request sequence built from the input
//! (`writ_fuzz::grammar`): the runtime decides each request as the
//! reference evaluator does. Policies the compiler refuses are skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ::Source;
use writ_eval::Request;
use writ_fuzz::grammar::{self, Choices};

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let policy = grammar::policy(&mut c);
    let mut clock = 1_736_935_198_000; // 2025-01-15T09:59:58Z
    let requests: Vec<Request> = grammar::requests(&mut c, &policy, &mut clock)
        .into_iter()
        .map(|(json, poisoned)| {
            let mut req = Request::from_json(&json)
                .unwrap_or_else(|e| panic!("the generator wrote a bad request: {e}: {json}"));
            if poisoned {
                grammar::poison(&mut c, &mut req);
            }
            req
        })
        .collect();
    let sources: Vec<Source> = policy
        .files
        .iter()
        .enumerate()
        .map(|(i, text)| Source {
            name: format!("p{i}.writ"),
            text: text.clone(),
        })
        .collect();
    writ_fuzz::compile_and_decide(&sources, None, &requests);
});
