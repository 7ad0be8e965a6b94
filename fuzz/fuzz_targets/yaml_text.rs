//! Any bytes as a YAML policy, read in the dialect the first byte picks
//! (detected, writ's schema, MeshGuard, Aegis, Sekuire): the front ends
//! never panic; a policy without errors compiles into a bundle that loads
//! and decides the fixed requests as the reference evaluator does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ::Source;
use writ_ir::Dialect;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let all = Dialect::ALL;
    let dialect = all.get(usize::from(first) % (all.len() + 1)).copied();
    let sources = [Source {
        name: "f.yaml".into(),
        text: String::from_utf8_lossy(rest).into_owned(),
    }];
    writ_fuzz::compile_and_decide(&sources, dialect, writ_fuzz::requests());
});
