//! Subcommands of the `writ` binary.

/// `print!` to stdout; a closed stdout ends the command quietly (see
/// [`stdout_failed`]).
macro_rules! out {
    ($($t:tt)*) => {
        $crate::cli::write_stdout(format_args!($($t)*))
    };
}

/// `println!` to stdout; a closed stdout ends the command quietly.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($t)*)))
    };
}

/// `writeln!` to a stdout handle: a closed stdout ends the command quietly.
macro_rules! wln {
    ($out:expr, $($t:tt)*) => {
        if let Err(e) = writeln!($out, $($t)*) {
            $crate::cli::stdout_failed(&e)
        }
    };
}

mod audit;
mod check;
mod compile;
mod convert;
mod eval;
mod fmt;
mod graph;
mod plan;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use writ_ir::Dialect;

/// writ: a policy language toolchain for AI agents.
#[derive(Debug, Parser)]
#[command(name = "writ", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check policy files and report every problem found.
    ///
    /// Exits 0 when there are no errors, 1 when there are (or when there are
    /// warnings and --deny-warnings is given).
    Check(check::Args),
    /// Evaluate requests against policies and print one JSON decision per request.
    ///
    /// Exits 0 when every request was answered, 1 when a policy has errors or
    /// a request line was malformed (that line gets {"error": ...}).
    Eval(eval::Args),
    /// Format `.writ` files in place (canonical layout, comments kept).
    ///
    /// The result is parsed again and must mean the same, or the file is
    /// left alone. With --check, nothing is written and the exit code is 1
    /// when a file is not formatted.
    Fmt(fmt::Args),
    /// Convert a policy: YAML (any dialect) to the writ language, or the
    /// writ language to writ's YAML schema. Prints to stdout unless -o.
    ///
    /// The result is checked to mean the same as the original.
    Convert(convert::Args),
    /// Draw the delegation graph (agents, roles, permitted delegations with
    /// their conditions; privilege-escalating edges in red).
    Graph(graph::Args),
    /// Compile policies into a bundle for the runtime (checksummed; signed
    /// with --sign). Exits 1 when the policy has errors.
    Compile(compile::CompileArgs),
    /// Make an Ed25519 key pair for signing bundles.
    Keygen(compile::KeygenArgs),
    /// Describe a bundle: header, revision, sizes, signature. Exits 1 when
    /// the bundle fails any check.
    Inspect(compile::InspectArgs),
    /// Run policy tests (`*.test.yaml`, `*.decisions.yaml`): each case's
    /// request against its policy, the decision compared with the expected one.
    ///
    /// Exits 0 when every case passes, 1 when one fails, 2 when a test file
    /// or its policy cannot be used. --coverage lists rules no case reached;
    /// --junit writes a report for CI systems.
    Test(test::Args),
    /// Dry-run a JSON Lines batch of requests: a table of what would happen
    /// to each (decision, rule, risk), with totals. Nothing is executed.
    ///
    /// Exits 0 when every request was decided, 1 when the policy has errors
    /// or a request line is malformed.
    Plan(plan::Args),
    /// Verify or query an audit log (JSON Lines or SQLite): `writ audit
    /// verify LOG` checks the hash chain and names edited, deleted or
    /// reordered records; `writ audit query LOG` lists decisions, filtered.
    Audit(audit::Args),
    /// Run the language server over stdin and stdout (for editors).
    Lsp,
}

/// `--dialect`: which YAML dialect to read; detected when absent.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DialectArg {
    Writ,
    Meshguard,
    Aegis,
    Sekuire,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Dialect {
        match d {
            DialectArg::Writ => Dialect::Writ,
            DialectArg::Meshguard => Dialect::MeshGuard,
            DialectArg::Aegis => Dialect::Aegis,
            DialectArg::Sekuire => Dialect::Sekuire,
        }
    }
}

/// Policy files and how to read them; shared by the subcommands.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Policy files, merged in order: rules of the first file come first.
    #[arg(required = true, value_name = "POLICY")]
    pub files: Vec<PathBuf>,
    /// Read every file in this dialect instead of detecting it.
    #[arg(long, value_enum)]
    pub dialect: Option<DialectArg>,
}

impl PolicyArgs {
    fn compile(&self) -> writ::Compilation {
        writ::compile_files(&self.files, self.dialect.map(Dialect::from))
    }
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Compile(args) => compile::compile(&args),
        Command::Keygen(args) => compile::keygen(&args),
        Command::Inspect(args) => compile::inspect(&args),
        Command::Test(args) => test::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Lsp => {
            match writ_lsp::serve_stdio(std::sync::Arc::new(writ::ide::WritAnalyzer::default())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("writ lsp: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Writes to stdout (see [`stdout_failed`] for a failed write).
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(&e);
    }
}

/// Ends the command after a write to stdout failed. A closed pipe (`writ
/// check ... | head -1`) is how a reader says it has read enough: exit 0
/// quietly, as Unix tools do, instead of Rust's "failed printing to stdout"
/// panic. Any other failure (a full disk) is an error: exit 1, saying so.
pub(crate) fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(1);
}

/// True when diagnostics on stderr should be colored.
fn stderr_color() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints diagnostics to stderr, in color when stderr is a terminal.
fn print_diagnostics(comp: &writ::Compilation) {
    let color = stderr_color();
    for d in &comp.diagnostics {
        eprint!("{}", writ::render::to_text(d, &comp.sources, color));
    }
}
