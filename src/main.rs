//! The `writ` command line. Only this file (and `src/cli/`) touches the
//! terminal: reading arguments and stdin, printing, exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the compiler allocates many
/// small nodes per rule, and the language server recompiles on every edit
/// (a 5,000-rule file's edit-to-diagnostics time drops by a third; see
/// BENCHMARKS.md). Only the binary chooses: the libraries leave the choice
/// to whoever embeds them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}
