//! `writ audit`: verify and query audit logs, JSON Lines or SQLite (told
//! apart by the file's first bytes, not its name).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value as Json;
use writ_runtime::audit::{self, VerifyReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check a log's hash chain and name every record that was edited,
    /// deleted or reordered.
    ///
    /// Exits 0 when the log is intact (a final line cut short by a crash is
    /// reported but is not tampering), 1 when it is not, 2 when it cannot
    /// be read.
    Verify {
        /// The log: a JSON Lines file or an SQLite database.
        #[arg(value_name = "FILE|DB")]
        log: PathBuf,
    },
    /// List recorded decisions, filtered: a table, or JSON Lines or CSV.
    Query(QueryArgs),
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The log: a JSON Lines file or an SQLite database.
    #[arg(value_name = "FILE|DB")]
    pub log: PathBuf,
    /// Only this agent's decisions.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only actions matching this glob (`tool:*`).
    #[arg(long, value_name = "GLOB")]
    pub action: Option<String>,
    /// Only this decision.
    #[arg(long, value_enum)]
    pub decision: Option<DecisionArg>,
    /// Only decisions at or after this time (RFC 3339, e.g. 2025-01-15T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<jiff::Timestamp>,
    /// Only decisions before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<jiff::Timestamp>,
    /// At most N records: the most recent N that match.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print the matching records as JSON Lines (the log's own lines) or
    /// CSV instead of a table.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub export: Option<Export>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DecisionArg {
    Allow,
    Deny,
    Approve,
}

impl DecisionArg {
    fn as_str(self) -> &'static str {
        match self {
            DecisionArg::Allow => "allow",
            DecisionArg::Deny => "deny",
            DecisionArg::Approve => "approve",
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Export {
    Jsonl,
    Csv,
}

pub fn run(args: &Args) -> ExitCode {
    match &args.command {
        AuditCommand::Verify { log } => verify(log),
        AuditCommand::Query(q) => query(q),
    }
}

/// True when the file starts with SQLite's magic header.
fn is_sqlite(path: &Path) -> std::io::Result<bool> {
    use std::io::Read as _;
    let mut magic = [0u8; 16];
    let mut f = std::fs::File::open(path)?;
    let mut read = 0;
    while read < magic.len() {
        let Some(rest) = magic.get_mut(read..) else {
            break;
        };
        match f.read(rest)? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read == magic.len() && &magic == b"SQLite format 3\0")
}

fn verify(path: &Path) -> ExitCode {
    let report: Result<VerifyReport, String> = match is_sqlite(path) {
        Ok(true) => audit::verify_sqlite(path).map_err(|e| e.to_string()),
        Ok(false) => audit::verify_jsonl(path).map_err(|e| e.to_string()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    };
    match report {
        Ok(report) => {
            println!("{}: {report}", path.display());
            if report.is_intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("writ audit verify: {e}");
            ExitCode::from(2)
        }
    }
}

/// The log's records as canonical JSON lines. A JSONL file's final line
/// without a newline (cut short by a crash) is left out.
fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    if is_sqlite(path).map_err(|e| format!("{}: {e}", path.display()))? {
        return audit::read_sqlite(path).map_err(|e| e.to_string());
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.pop();
        eprintln!(
            "writ audit query: {}: the final line is incomplete (a write cut short); skipped",
            path.display()
        );
    }
    Ok(lines
        .into_iter()
        .map(|mut l| {
            l.pop();
            l
        })
        .collect())
}

fn query(q: &QueryArgs) -> ExitCode {
    match run_query(q) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writ audit query: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_query(q: &QueryArgs) -> Result<(), String> {
    let action = match &q.action {
        Some(glob) => Some(
            globset::Glob::new(glob)
                .map_err(|e| format!("bad --action glob `{glob}`: {e}"))?
                .compile_matcher(),
        ),
        None => None,
    };
    let lines = read_lines(&q.log)?;
    let total = lines.len();
    let mut matched: Vec<(String, Json)> = Vec::new();
    for (i, line) in lines.into_iter().enumerate() {
        let Ok(rec) = serde_json::from_str::<Json>(&line) else {
            eprintln!("writ audit query: record {} is not JSON; skipped", i + 1);
            continue;
        };
        let s = |k: &str| rec.get(k).and_then(Json::as_str);
        if q.agent.as_deref().is_some_and(|a| s("agent") != Some(a))
            || action
                .as_ref()
                .is_some_and(|m| !m.is_match(s("action").unwrap_or("")))
            || q.decision
                .is_some_and(|d| s("decision") != Some(d.as_str()))
        {
            continue;
        }
        if q.since.is_some() || q.until.is_some() {
            let Some(t) = s("time").and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
                continue;
            };
            if q.since.is_some_and(|since| t < since) || q.until.is_some_and(|until| t >= until) {
                continue;
            }
        }
        matched.push((line, rec));
    }
    if let Some(limit) = q.limit {
        let skip = matched.len().saturating_sub(limit);
        matched.drain(..skip);
    }
    let out = match q.export {
        Some(Export::Jsonl) => matched.iter().map(|(l, _)| format!("{l}\n")).collect(),
        Some(Export::Csv) => csv(&matched),
        None => {
            eprintln!("{} of {total} records", matched.len());
            table(&matched)
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = stdout.write_all(out.as_bytes());
    Ok(())
}

/// A field as text: strings as they are, `null` as empty, others as JSON.
fn text(rec: &Json, key: &str) -> String {
    match rec.get(key) {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

const CSV_COLUMNS: [&str; 15] = [
    "seq",
    "id",
    "time",
    "trace_id",
    "agent",
    "chain",
    "action",
    "target",
    "decision",
    "rule",
    "reason",
    "risk",
    "retry_after_s",
    "revision",
    "context",
];

fn csv(records: &[(String, Json)]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for (_, rec) in records {
        let row: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|k| csv_field(&text(rec, k)))
            .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180: quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

const TABLE_COLUMNS: [(&str, &str); 8] = [
    ("TIME", "time"),
    ("DECISION", "decision"),
    ("AGENT", "agent"),
    ("ACTION", "action"),
    ("TARGET", "target"),
    ("RULE", "rule"),
    ("RISK", "risk"),
    ("ID", "id"),
];

fn table(records: &[(String, Json)]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|(_, rec)| TABLE_COLUMNS.iter().map(|(_, k)| text(rec, k)).collect())
        .collect();
    let mut widths: Vec<usize> = TABLE_COLUMNS.iter().map(|(h, _)| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (cell, w) in cells.zip(&widths) {
            l.push_str(cell);
            l.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(cell.chars().count()) + 2,
            ));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut TABLE_COLUMNS.iter().map(|(h, _)| *h));
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}
