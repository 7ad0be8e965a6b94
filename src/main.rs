//! The `writ` command line. Only this file (and `src/cli/`) touches the
//! terminal: reading arguments and stdin, printing, exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}
