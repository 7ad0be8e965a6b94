//! Any bytes as a `.writ` file: the front end (and the formatter) never
//! panic; a policy without errors compiles into a bundle that loads, and
//! the bundle decides the fixed requests as the reference evaluator does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ::Source;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = writ::lang::fmt::format(&text, "f.writ");
    let sources = [Source {
        name: "f.writ".into(),
        text,
    }];
    writ_fuzz::compile_and_decide(&sources, None, writ_fuzz::requests());
});
