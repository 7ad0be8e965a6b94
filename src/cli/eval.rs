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
    /// With a bundle (`.wbundle`): require a valid signature by this public
    /// key (a file written by `writ keygen`, `NAME.pub`).
    #[arg(long, value_name = "PUBKEY")]
    pub verify: Option<PathBuf>,
}

/// Decides requests one at a time, by the reference evaluator or a bundle.
enum Decider<'p> {
    Reference(Evaluator<'p>),
    Bundle(Box<writ_runtime::Runtime>),
}

impl Decider<'_> {
    fn decide(&mut self, req: &Request) -> String {
        match self {
            Decider::Reference(e) => e.check(req, jiff::Timestamp::now()).to_json(),
            Decider::Bundle(rt) => {
                let r = writ::bundle::runtime_request(req);
                rt.check(&r).to_json(&r)
            }
        }
    }
}

pub fn run(args: &Args) -> ExitCode {
    let bundles: Vec<&PathBuf> = args
        .policy
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "wbundle"))
        .collect();
    if !bundles.is_empty() {
        let [bundle] = bundles.as_slice() else {
            eprintln!(
                "error: give one bundle (a bundle already holds every policy file it was compiled from)"
            );
            return ExitCode::FAILURE;
        };
        if args.policy.files.len() > 1 {
            eprintln!("error: give either one bundle or policy files, not both");
            return ExitCode::FAILURE;
        }
        let rt = match super::compile::load_bundle(bundle, args.verify.as_deref()) {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: {}: {e}", bundle.display());
                return ExitCode::FAILURE;
            }
        };
        return answer_all(args, Decider::Bundle(Box::new(rt)));
    }
    if args.verify.is_some() {
        eprintln!("error: --verify checks a bundle's signature; give a `.wbundle` file");
        return ExitCode::FAILURE;
    }
    let comp = args.policy.compile();
    if comp.has_errors() || !comp.diagnostics.is_empty() {
        print_diagnostics(&comp);
    }
    let Some(set) = comp.checked_set() else {
        eprintln!("error: the policy has errors; no request was evaluated");
        return ExitCode::FAILURE;
    };
    answer_all(args, Decider::Reference(Evaluator::new(set)))
}

fn answer_all(args: &Args, mut decider: Decider<'_>) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut ok = true;
    let mut answer = |line: &str, out: &mut dyn Write| -> bool {
        let text = match Request::from_json(line) {
            Ok(req) => decider.decide(&req),
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
