//! The parser lalrpop generates from `grammar/writ.lalrpop` (see the top-level `build.rs`).
#![allow(
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unimplemented,
    missing_debug_implementations,
    unused,
    unused_qualifications
)]

include!(concat!(env!("OUT_DIR"), "/writ.rs"));
