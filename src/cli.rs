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
mod serve;
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
    /// Serve decisions over HTTP: writ's JSON API and MeshGuard's wire
    /// protocol (its clients work unchanged), with the audit log, an agent
    /// registry, reload on SIGHUP and on change, and Prometheus metrics.
    ///
    /// Flags win over MeshGuard's environment variables (PORT, HOST, MODE,
    /// JWT_SECRET, ADMIN_TOKEN, PROXY_TARGET, POLICIES_DIR, DB_PATH,
    /// AUDIT_RETENTION_DAYS, METRICS_ENABLED), which win over --config.
    /// See docs/server.md.
    Serve(Box<serve::Args>),
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
    /// A directory stands for the policy files in it (`.writ`, `.yaml`,
    /// `.yml`, sorted by name; test files left out); `-` reads stdin.
    #[arg(required = true, value_name = "POLICY")]
    pub files: Vec<PathBuf>,
    /// Read every file in this dialect instead of detecting it.
    #[arg(long, value_enum)]
    pub dialect: Option<DialectArg>,
}

impl PolicyArgs {
    fn compile(&self) -> writ::Compilation {
        compile_policies(&self.files, self.dialect.map(Dialect::from))
    }
}

/// Compiles the policy paths of a command line (see
/// [`writ::inputs::policy_paths`]): test files named among them are left
/// out, with a note; a directory without policy files, or `-` given twice,
/// is an error (E0001), and stdin is read once for `-`.
fn compile_policies(paths: &[PathBuf], dialect: Option<Dialect>) -> writ::Compilation {
    use std::io::Read as _;
    let expanded = writ::inputs::policy_paths(paths);
    match expanded.skipped_tests.as_slice() {
        [] => {}
        [one] => eprintln!(
            "note: left out `{}`: a test file, not a policy (`writ test` runs it)",
            one.display()
        ),
        many @ [first, ..] => eprintln!(
            "note: left out {} test files (`{}`, ...): they are not policies (`writ test` runs them)",
            many.len(),
            first.display()
        ),
    }
    let dashes = expanded
        .files
        .iter()
        .filter(|p| p.as_os_str() == "-")
        .count();
    let mut stdin = None;
    let mut problems: Vec<(String, String, &str)> = Vec::new();
    if dashes > 1 {
        problems.push((
            "-".to_owned(),
            "`-` is given more than once: stdin can be read only once".to_owned(),
            "give `-` once",
        ));
    } else if dashes == 1 {
        let mut text = String::new();
        match std::io::stdin().read_to_string(&mut text) {
            Ok(_) => stdin = Some(text),
            Err(e) => problems.push((
                "-".to_owned(),
                format!("cannot read stdin: {e}"),
                "pipe UTF-8 policy text into writ",
            )),
        }
    }
    for d in &expanded.empty_dirs {
        problems.push((
            d.display().to_string(),
            format!(
                "`{}` holds no policy file (`.writ`, `.yaml`, `.yml`)",
                d.display()
            ),
            "name the policy files, or the directory that holds them (subdirectories are not searched)",
        ));
    }
    if expanded.files.is_empty() && problems.is_empty() {
        let name = paths
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        problems.push((
            name,
            "no policy file was given, only test files".to_owned(),
            "name the policy files; `writ test` runs test files",
        ));
    }
    let mut comp = writ::compile_paths(&expanded.files, stdin.as_deref(), dialect);
    for (name, message, help) in problems {
        comp.input_error(&name, &message, help);
    }
    comp
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
        Command::Serve(args) => serve::run(&args),
        Command::Lsp => {
            match writ_lsp::serve_stdio(std::sync::Arc::new(writ::ide::WritAnalyzer::default())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
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

/// Prints diagnostics to stderr, in color when stderr is a terminal; only
/// errors when `errors_only` (`--quiet`).
fn print_diagnostics(comp: &writ::Compilation, errors_only: bool) {
    let color = stderr_color();
    for d in &comp.diagnostics {
        if errors_only && d.severity != writ_diagnostics::Severity::Error {
            continue;
        }
        eprint!("{}", writ::render::to_text(d, &comp.sources, color));
    }
}
