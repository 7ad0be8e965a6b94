//! `writ graph`: draw the delegation graph.

use std::process::ExitCode;

use super::{PolicyArgs, print_diagnostics};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Output format: Graphviz DOT, Mermaid, or JSON for tools.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
    Json,
}

pub fn run(args: &Args) -> ExitCode {
    let comp = args.policy.compile();
    print_diagnostics(&comp, false);
    // Graph findings (an undeclared target, a chain too long) are what the
    // drawing is for; only a policy that did not lower at all is refused.
    let Some(set) = &comp.set else {
        eprintln!("error: the policy could not be read; nothing drawn");
        return ExitCode::FAILURE;
    };
    let graph = writ_graph::build(set);
    // Escalating edges are highlighted whatever the ceiling: under `strict`
    // they are what the ceiling stops.
    let esc = writ_graph::escalations(set, &graph);
    let out = match args.format {
        Format::Dot => writ_graph::draw::dot(&graph, &esc),
        Format::Mermaid => writ_graph::draw::mermaid(&graph, &esc),
        Format::Json => writ_graph::draw::json(&graph, &esc),
    };
    out!("{out}");
    ExitCode::SUCCESS
}
