//! `writ eval`: decide requests against policies.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use writ::engine::SourceEngine;
use writ_diagnostics::{SourceMap, Span};
use writ_eval::{Decision, Explanation, Outcome, Request, Step, Written};

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
    /// Explain each decision for people instead of printing JSON: the
    /// checks before the rules, then every rule in order with why it did
    /// not apply (the pattern, scope list or innermost failing condition,
    /// at file:line:column) or what it decided. Not for bundles.
    #[arg(long)]
    pub explain: bool,
    /// Print no warnings about the policy (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Decides requests one at a time: always by the runtime (sources are
/// compiled in memory), so what `writ eval` says is what agents decide.
enum Decider<'p> {
    Sources(Box<SourceEngine<'p>>),
    /// The runtime decides; the reference evaluator explains in text.
    Explain(Box<SourceEngine<'p>>, &'p SourceMap),
    Bundle(Box<writ_runtime::Runtime>),
}

impl Decider<'_> {
    /// The answer to print, and whether it is sound (false when the
    /// engines disagreed: a bug in writ, and a failure).
    fn decide(&mut self, req: &Request) -> (String, bool) {
        match self {
            Decider::Sources(e) => (e.check(req, jiff::Timestamp::now()).to_json(), true),
            Decider::Explain(e, sources) => {
                let (decision, why, disagreement) = e.explain(req, jiff::Timestamp::now());
                let text = render(&decision, &why, sources, "");
                match disagreement {
                    Some(d) => {
                        eprintln!("error: {d}");
                        (format!("error: {d}\n{text}"), false)
                    }
                    None => (text, true),
                }
            }
            Decider::Bundle(rt) => (rt.check(req).to_json(req), true),
        }
    }
}

pub fn run(args: &Args) -> ExitCode {
    if args
        .requests
        .as_deref()
        .is_some_and(|r| r.as_os_str() == "-")
        && args.policy.files.iter().any(|f| f.as_os_str() == "-")
    {
        eprintln!(
            "error: `-` names stdin for both the policy and `--requests`; give one of them as a file"
        );
        return ExitCode::from(2);
    }
    let bundles: Vec<&PathBuf> = args
        .policy
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "wbundle"))
        .collect();
    if !bundles.is_empty() {
        if args.explain {
            eprintln!(
                "error: --explain needs the policy files (a bundle holds no spans); give the files the bundle was compiled from"
            );
            return ExitCode::FAILURE;
        }
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
    if comp.has_errors() || !args.quiet {
        print_diagnostics(&comp, args.quiet);
    }
    let Some(set) = comp.checked_set() else {
        eprintln!("error: the policy has errors; no request was evaluated");
        return ExitCode::FAILURE;
    };
    let engine = match SourceEngine::new(set, &comp) {
        Ok(e) => Box::new(e),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.explain {
        return answer_all(args, Decider::Explain(engine, &comp.sources));
    }
    answer_all(args, Decider::Sources(engine))
}

fn answer_all(args: &Args, mut decider: Decider<'_>) -> ExitCode {
    let explain = matches!(decider, Decider::Explain(..));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut ok = true;
    let mut answer = |line: &str, out: &mut dyn Write| -> bool {
        let (text, sound) = match Request::from_json(line) {
            Ok(req) => decider.decide(&req),
            Err(e) => {
                let err = serde_json::json!({ "error": e.message });
                wln!(out, "{err}");
                return false;
            }
        };
        if explain {
            wln!(out, "request: {}", line.trim());
            wln!(out, "{text}");
        } else {
            wln!(out, "{text}");
        }
        sound
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
                    wln!(out, "{err}");
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

/// `file:line:column` of a span's start, or `?` when it has none.
pub(super) fn location(sources: &SourceMap, span: Option<Span>) -> String {
    span.and_then(|s| sources.location(s)).map_or_else(
        || "?".to_owned(),
        |(file, lc)| format!("{file}:{}:{}", lc.line, lc.column),
    )
}

fn written_list(sources: &SourceMap, list: &[Written]) -> String {
    list.iter()
        .map(|w| format!("`{}` ({})", w.text, location(sources, w.span)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A one-line summary of a decision: effect, rule, risk, reason.
pub(super) fn summary(d: &Decision) -> String {
    let mut out = d.effect.to_string();
    match &d.rule {
        Some(rule) => out.push_str(&format!(" by rule `{rule}`")),
        None => out.push_str(" by no rule"),
    }
    if let Some(p) = &d.policy {
        out.push_str(&format!(" of policy `{p}`"));
    }
    if let Some(r) = d.risk {
        out.push_str(&format!(", risk {r}"));
    }
    if let Some(s) = d.retry_after_s {
        out.push_str(&format!(", retry after {s}s"));
    }
    if let Some(r) = &d.reason {
        out.push_str(&format!(": {r}"));
    }
    out
}

/// Renders a decision and its explanation for people, every line prefixed
/// with `indent`. Rules skipped under first-match are folded into one line.
pub(super) fn render(d: &Decision, why: &Explanation, sources: &SourceMap, indent: &str) -> String {
    format!(
        "{indent}decision: {}\n{}",
        summary(d),
        steps(why, sources, indent)
    )
}

/// The steps of an explanation, one line each, indented by `indent` and two spaces.
pub(super) fn steps(why: &Explanation, sources: &SourceMap, indent: &str) -> String {
    let mut out = String::new();
    let width = why
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Rule(r) if r.outcome != Outcome::Skipped => Some(r.name.chars().count()),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut skipped = Vec::new();
    for step in &why.steps {
        let line = match step {
            Step::Chain { reason } => format!("✗ delegation chain: {reason}"),
            Step::ChainApproval { reason } => {
                format!("! delegation chain: an allow becomes approve: {reason}")
            }
            Step::Principal { reason } => format!("✗ principal: {reason}"),
            Step::Ceiling { reason, span } => {
                format!(
                    "✗ ceiling ({}): {reason}; no rule was considered",
                    location(sources, *span)
                )
            }
            Step::Default { effect, span, .. } => format!(
                "→ no rule decided: the policy default is {effect} ({})",
                location(sources, *span)
            ),
            Step::Rule(r) => {
                let head = format!(
                    "{:<width$}  {}",
                    r.name,
                    location(sources, Some(r.span)),
                    width = width
                );
                let mark = if r.decided { "→" } else { "✗" };
                let text = match &r.outcome {
                    Outcome::Skipped => {
                        skipped.push(r.name.clone());
                        continue;
                    }
                    Outcome::Applied(effect) if r.decided => match &r.unjudged {
                        None => format!("applied: {effect} (decided)"),
                        Some((part, actual)) => format!(
                            "applied: {effect} (decided), because its condition cannot be judged: `{}` ({}): {actual}; a deny or an approval applies unless its condition is false",
                            part.text,
                            location(sources, part.span)
                        ),
                    },
                    Outcome::Applied(effect) => {
                        format!("applied: {effect}, overridden by a stronger decision")
                    }
                    Outcome::Action { action, patterns } => format!(
                        "action `{action}` matches none of {}",
                        written_list(sources, patterns)
                    ),
                    Outcome::Target { target, patterns } => format!(
                        "target {} matches none of {}",
                        target
                            .as_ref()
                            .map_or_else(|| "(none)".to_owned(), |t| format!("`{t}`")),
                        written_list(sources, patterns)
                    ),
                    Outcome::Scope { list, wanted, have } => format!(
                        "scope {}: {} not in {}",
                        list.as_str(),
                        if have.is_empty() {
                            "the principal has none".to_owned()
                        } else {
                            have.iter()
                                .map(|h| format!("`{h}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        written_list(sources, wanted)
                    ),
                    Outcome::Condition {
                        failed,
                        actual,
                        unjudged: false,
                    } => format!(
                        "condition `{}` failed ({}): {actual}",
                        failed.text,
                        location(sources, failed.span)
                    ),
                    Outcome::Condition {
                        failed,
                        actual,
                        unjudged: true,
                    } => format!(
                        "condition `{}` cannot be judged ({}): {actual}; an allow applies only when its condition holds",
                        failed.text,
                        location(sources, failed.span)
                    ),
                    Outcome::Constraint { failed, reason } => format!(
                        "applied, but constraint `{}` failed ({}): {reason}; deny{}",
                        failed.text,
                        location(sources, failed.span),
                        if r.decided { " (decided)" } else { "" }
                    ),
                    Outcome::Limit {
                        failed,
                        retry_after_s,
                    } => format!(
                        "applied, but its limit `{}` is reached ({}), retry after {retry_after_s}s; deny{}",
                        failed.text,
                        location(sources, failed.span),
                        if r.decided { " (decided)" } else { "" }
                    ),
                };
                format!("{mark} {head}  {text}")
            }
        };
        out.push_str(&format!("{indent}  {line}\n"));
    }
    if !skipped.is_empty() {
        out.push_str(&format!(
            "{indent}  - not looked at (an earlier rule decided under first-match): {}\n",
            skipped.join(", ")
        ));
    }
    out
}
