//! `writ eval`: decide requests against policies.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use writ_eval::{Evaluator, Request};

use super::{PolicyArgs, print_diagnostics};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["request", "requests"])))]
pub struct Args {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// One request as JSON, e.g. '{"agent":"a","action":"tool:call","target":"search"}'.
    #[arg(long, value_name = "JSON")]
    pub request: Option<String>,
    /// A JSON Lines file of requests (`-` for stdin); one decision per line, in order.
    #[arg(long, value_name = "FILE")]
    pub requests: Option<PathBuf>,
}

pub fn run(args: &Args) -> ExitCode {
    let comp = args.policy.compile();
    if comp.has_errors() || !comp.diagnostics.is_empty() {
        print_diagnostics(&comp);
    }
    let Some(set) = comp.checked_set() else {
        eprintln!("error: the policy has errors; no request was evaluated");
        return ExitCode::FAILURE;
    };
    let mut evaluator = Evaluator::new(set);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut ok = true;
    let mut answer = |line: &str, out: &mut dyn Write| -> bool {
        let text = match Request::from_json(line) {
            Ok(req) => evaluator.check(&req, jiff::Timestamp::now()).to_json(),
            Err(e) => {
                let err = serde_json::json!({ "error": e.message });
                let _ = writeln!(out, "{err}");
                return false;
            }
        };
        let _ = writeln!(out, "{text}");
        true
    };
    if let Some(json) = &args.request {
        ok &= answer(json, &mut out);
    }
    if let Some(path) = &args.requests {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            match std::fs::File::open(path) {
                Ok(f) => Box::new(std::io::BufReader::new(f)),
                Err(e) => {
                    eprintln!("error: cannot read `{}`: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
        };
        for (n, line) in reader.lines().enumerate() {
            match line {
                Ok(line) if line.trim().is_empty() => {}
                Ok(line) => ok &= answer(&line, &mut out),
                Err(e) => {
                    let err =
                        serde_json::json!({ "error": format!("line {}: cannot read: {e}", n + 1) });
                    let _ = writeln!(out, "{err}");
                    ok = false;
                }
            }
        }
    }
    let _ = out.flush();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
