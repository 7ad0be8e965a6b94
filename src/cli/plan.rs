//! `writ plan`: a dry run of a batch of requests, as a table with totals.
//!
//! Requests are decided in order by the reference evaluator, limits shared
//! across the batch as in `writ eval --requests`; nothing is executed. The
//! table shows, per request, who asks for what and what would happen
//! (decision, rule, risk), then totals per decision and per risk.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use writ::engine::SourceEngine;
use writ_eval::{Decision, Request};
use writ_ir::{Dialect, Effect, Risk};

use super::{DialectArg, print_diagnostics};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy files, merged in order (a directory stands for its policy
    /// files; `-` reads stdin).
    #[arg(required = true, value_name = "POLICY")]
    pub policies: Vec<PathBuf>,
    /// The JSON Lines file of requests (`-` for stdin), e.g. `writ plan
    /// support.writ requests.jsonl`.
    #[arg(value_name = "REQUESTS")]
    pub requests: PathBuf,
    /// Read every policy file in this dialect instead of detecting it.
    #[arg(long, value_enum)]
    pub dialect: Option<DialectArg>,
    /// Print no warnings about the policy (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// `table` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The time of requests without `at` (RFC 3339); default: now.
    #[arg(long, value_name = "TIME")]
    pub now: Option<jiff::Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// One line of the requests file, decided or not.
struct Row {
    line: usize,
    request: Option<Request>,
    outcome: Result<Decision, String>,
}

pub fn run(args: &Args) -> ExitCode {
    let (requests, policies) = (&args.requests, &args.policies);
    if requests.as_os_str() == "-" && policies.iter().any(|f| f.as_os_str() == "-") {
        eprintln!(
            "error: `-` names stdin for both the policy and the requests; give one of them as a file"
        );
        return ExitCode::from(2);
    }
    let comp = super::compile_policies(policies, args.dialect.map(Dialect::from));
    if comp.has_errors() || !args.quiet {
        print_diagnostics(&comp, args.quiet);
    }
    let Some(set) = comp.checked_set() else {
        eprintln!("error: the policy has errors; no request was evaluated");
        return ExitCode::FAILURE;
    };
    let reader: Box<dyn BufRead> = if requests.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(requests) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", requests.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    // The runtime decides, as agents would.
    let mut eval = match SourceEngine::new(set, &comp) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let row = match line {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => match Request::from_json(&line) {
                Ok(req) => Row {
                    line: n,
                    outcome: Ok(eval.check(&req, now)),
                    request: Some(req),
                },
                Err(e) => Row {
                    line: n,
                    request: None,
                    outcome: Err(e.message),
                },
            },
            Err(e) => Row {
                line: n,
                request: None,
                outcome: Err(format!("cannot read: {e}")),
            },
        };
        rows.push(row);
    }
    let mut ok = true;
    for r in &rows {
        if let Err(e) = &r.outcome {
            eprintln!("{}:{}: error: {e}", requests.display(), r.line);
            ok = false;
        }
    }
    match args.format {
        Format::Table => out!("{}", table(&rows)),
        Format::Json => outln!("{}", json(&rows)),
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn who(req: &Request) -> String {
    if req.chain.len() > 1 {
        req.chain.join(" → ")
    } else {
        req.agent.clone()
    }
}

/// Counts per decision and per risk (`none` when a decision carries no risk).
fn totals(rows: &[Row]) -> (BTreeMap<&'static str, usize>, BTreeMap<&'static str, usize>) {
    let mut decisions = BTreeMap::new();
    let mut risks = BTreeMap::new();
    for r in rows {
        match &r.outcome {
            Ok(d) => {
                *decisions.entry(d.effect.as_str()).or_insert(0) += 1;
                *risks
                    .entry(d.risk.map_or("none", Risk::as_str))
                    .or_insert(0) += 1;
            }
            Err(_) => *decisions.entry("error").or_insert(0) += 1,
        }
    }
    (decisions, risks)
}

fn table(rows: &[Row]) -> String {
    let header = ["#", "agent", "action", "target", "decision", "rule", "risk"];
    let mut cells: Vec<[String; 7]> = vec![header.map(str::to_owned)];
    for r in rows {
        let (agent, action, target) = r.request.as_ref().map_or_else(
            || ("-".to_owned(), "-".to_owned(), "-".to_owned()),
            |q| {
                (
                    who(q),
                    q.action.clone(),
                    q.target.clone().unwrap_or_else(|| "-".to_owned()),
                )
            },
        );
        let (decision, rule, risk) = match &r.outcome {
            Ok(d) => (
                d.effect.as_str().to_uppercase(),
                d.rule.clone().unwrap_or_else(|| "-".to_owned()),
                d.risk.map_or("-", Risk::as_str).to_owned(),
            ),
            Err(e) => (
                "ERROR".to_owned(),
                format!("line {}: {e}", r.line),
                "-".to_owned(),
            ),
        };
        cells.push([
            r.line.to_string(),
            agent,
            action,
            target,
            decision,
            rule,
            risk,
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i == 0 {
                line.push_str(&format!("{c:>w$}"));
            } else {
                line.push_str(&format!("  {c:<w$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let (decisions, risks) = totals(rows);
    let order = ["allow", "approve", "deny", "error"];
    let by_decision: Vec<String> = order
        .iter()
        .filter_map(|k| decisions.get(k).map(|n| format!("{n} {k}")))
        .collect();
    let risk_order = ["low", "medium", "high", "critical", "none"];
    let by_risk: Vec<String> = risk_order
        .iter()
        .filter_map(|k| risks.get(k).map(|n| format!("{n} {k}")))
        .collect();
    out.push_str(&format!(
        "\n{} requests: {}\nrisk: {}\n",
        rows.len(),
        if by_decision.is_empty() {
            "none".to_owned()
        } else {
            by_decision.join(", ")
        },
        if by_risk.is_empty() {
            "none".to_owned()
        } else {
            by_risk.join(", ")
        }
    ));
    out
}

fn json(rows: &[Row]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut item = serde_json::Map::new();
            item.insert("line".to_owned(), serde_json::json!(r.line));
            if let Some(q) = &r.request {
                item.insert("agent".to_owned(), serde_json::json!(q.agent));
                item.insert("action".to_owned(), serde_json::json!(q.action));
                item.insert("target".to_owned(), serde_json::json!(q.target));
                if q.chain.len() > 1 {
                    item.insert("chain".to_owned(), serde_json::json!(q.chain));
                }
            }
            match &r.outcome {
                Ok(d) => {
                    let decision =
                        serde_json::from_str(&d.to_json()).unwrap_or(serde_json::Value::Null);
                    item.insert("decision".to_owned(), decision);
                }
                Err(e) => {
                    item.insert("error".to_owned(), serde_json::json!(e));
                }
            }
            serde_json::Value::Object(item)
        })
        .collect();
    let (decisions, risks) = totals(rows);
    let mut by_decision = serde_json::Map::new();
    for e in [Effect::Allow, Effect::Approve, Effect::Deny] {
        by_decision.insert(
            e.as_str().to_owned(),
            serde_json::json!(decisions.get(e.as_str()).copied().unwrap_or(0)),
        );
    }
    by_decision.insert(
        "error".to_owned(),
        serde_json::json!(decisions.get("error").copied().unwrap_or(0)),
    );
    serde_json::json!({
        "requests": items,
        "totals": { "requests": rows.len(), "decisions": by_decision, "risk": risks },
    })
}
