//! Any bytes as a bundle: loading never panics, and a bundle that loads
//! decodes in full and decides the fixed requests without panicking.
//! (The checksum stops almost every change here; `bundle_resealed` gets
//! past it.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    writ_fuzz::load_and_decide(data);
});
