//! `writ check`: report every problem in policy files.

use std::process::ExitCode;

use writ_diagnostics::Severity;

use super::{PolicyArgs, print_diagnostics};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Output format for diagnostics.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Print the lowered IR (for debugging policies and front ends).
    #[arg(long)]
    pub dump_ir: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: &Args) -> ExitCode {
    let comp = args.policy.compile();
    match args.format {
        Format::Json => outln!(
            "{}",
            writ::render::to_json(&comp.diagnostics, &comp.sources)
        ),
        Format::Text => {
            print_diagnostics(&comp, false);
            let (e, w) = (comp.count(Severity::Error), comp.count(Severity::Warning));
            let files = writ::inputs::policy_paths(&args.policy.files).files.len();
            let plural = |n: usize, s: &str| {
                if n == 1 {
                    format!("{n} {s}")
                } else {
                    format!("{n} {s}s")
                }
            };
            eprintln!(
                "checked {}: {}, {}",
                plural(files, "file"),
                plural(e, "error"),
                plural(w, "warning")
            );
        }
    }
    if args.dump_ir
        && let Some(set) = &comp.set
    {
        let at = |span: writ_diagnostics::Span| {
            comp.sources
                .location(span)
                .map_or_else(String::new, |(f, lc)| {
                    format!("{f}:{}:{}", lc.line, lc.column)
                })
        };
        out!("{}", writ_ir::dump(set, &at));
    }
    let failed = comp.has_errors() || (args.deny_warnings && comp.count(Severity::Warning) > 0);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
