//! `writ audit`: verify and query audit logs, JSON Lines or SQLite (told
//! apart by the file's first bytes, not its name).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value as Json;
use writ_audit::{self as audit, Problem, VerifyReport};

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
    ///
    /// Logged text is treated as untrusted: the table shows control and
    /// bidirectional characters as escapes (`\n`, `\x1b`, `\u{202e}`) and
    /// cuts each cell at 60 characters; CSV puts `'` before a cell that
    /// starts like a formula (`=`, `+`, `-`, `@`, tab, CR, NUL); JSON Lines
    /// are the log's lines, byte for byte.
    Query(QueryArgs),
    /// Remove an SQLite log's oldest records, keeping it verifiable.
    ///
    /// Removes every batch of records written before the cutoff, oldest
    /// first, up to the first batch that is not that old, and records the
    /// last removed record's number and hash as the log's anchor: `writ
    /// audit verify` then checks the chain from there. JSON Lines logs
    /// cannot be pruned in place: rotate them. Exits 0 after pruning
    /// (nothing to remove included), 2 when the log cannot be pruned.
    Prune {
        /// The log: an SQLite database.
        #[arg(value_name = "DB")]
        log: PathBuf,
        /// Remove records older than this: a number of days (`90d`) or
        /// hours (`12h`).
        #[arg(long, value_name = "AGE", value_parser = parse_age, required_unless_present = "before", conflicts_with = "before")]
        older_than: Option<u64>,
        /// Remove records written before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        before: Option<jiff::Timestamp>,
    },
}

/// An age as milliseconds: `90d` or `12h` (a whole number of days or
/// hours).
fn parse_age(text: &str) -> Result<u64, String> {
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    let per = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "`{text}` is not an age: write days as `90d` or hours as `12h`"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .ok_or_else(|| format!("`{text}` is not an age: write days as `90d` or hours as `12h`"))
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
        AuditCommand::Prune {
            log,
            older_than,
            before,
        } => prune(log, *older_than, *before),
    }
}

fn prune(path: &Path, older_than: Option<u64>, before: Option<jiff::Timestamp>) -> ExitCode {
    let cutoff = match (before, older_than) {
        (Some(t), _) => t.as_millisecond(),
        (None, Some(age)) => audit::now_ms().saturating_sub(i64::try_from(age).unwrap_or(i64::MAX)),
        (None, None) => audit::now_ms(),
    };
    match audit::Format::detect(path) {
        Ok(audit::Format::Sqlite) => {}
        Ok(_) => {
            eprintln!(
                "error: {}: a JSON Lines log cannot be pruned in place (its chain starts at its first line): rotate it, or write the log to SQLite (a `.db` path)",
                path.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    match audit::prune_sqlite(path, cutoff) {
        Ok(report) => {
            let cut = jiff::Timestamp::from_millisecond(cutoff)
                .map_or_else(|_| cutoff.to_string(), |t| t.to_string());
            match &report.anchor {
                Some(a) if report.rows > 0 => outln!(
                    "{}: pruned {} records written before {cut}; the log now starts after seq {} (hash {})",
                    path.display(),
                    report.records,
                    a.through_seq,
                    a.hash
                ),
                _ => outln!(
                    "{}: nothing was written before {cut}; nothing pruned",
                    path.display()
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn verify(path: &Path) -> ExitCode {
    // The format is told by the file's content (`writ_audit::Format`).
    match audit::verify(path) {
        Ok(mut report) => {
            escape_ids(&mut report);
            outln!("{}: {report}", path.display());
            if report.is_intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The decision ids a report quotes are read from the log, up to the next
/// quote and unchecked (the record may be forged): escaped and capped like
/// a table cell before they are printed.
fn escape_ids(report: &mut VerifyReport) {
    for problem in &mut report.problems {
        let at = match problem {
            Problem::Edited(at) | Problem::Duplicate(at) => at,
            Problem::Malformed { at, .. }
            | Problem::ChainBroken { at, .. }
            | Problem::OutOfOrder { at, .. } => at,
            Problem::Missing { .. } | Problem::BadAnchor { .. } => continue,
        };
        if let Some(id) = &mut at.id {
            *id = terminal_text(id, CELL_CAP);
        }
    }
}

/// Why a query stopped early.
enum Stop {
    /// The log could not be read, or `--action` is not a glob.
    Input(String),
    /// Writing the output failed (a closed pipe, say).
    Output(std::io::Error),
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Stop {
        Stop::Output(e)
    }
}

/// Calls `each` with every complete record of the log, one at a time, as
/// its canonical JSON line without the newline. A JSONL file is read line by
/// line, so a long line is held once and only while it is looked at; its
/// final line without a newline (cut short by a crash) is left out.
fn each_line(path: &Path, mut each: impl FnMut(&[u8]) -> Result<(), Stop>) -> Result<(), Stop> {
    use std::io::BufRead as _;
    let unreadable = |e: std::io::Error| Stop::Input(format!("{}: {e}", path.display()));
    let format = audit::Format::detect(path).map_err(|e| Stop::Input(e.to_string()))?;
    if format == audit::Format::Sqlite {
        // Streamed: one batch's lines held at a time, whatever the log's
        // size. The first error stops the walk and is returned.
        let mut stopped = None;
        audit::sqlite_in_order(path, |l| match each(l.as_bytes()) {
            Ok(()) => std::ops::ControlFlow::Continue(()),
            Err(e) => {
                stopped = Some(e);
                std::ops::ControlFlow::Break(())
            }
        })
        .map_err(|e| Stop::Input(e.to_string()))?;
        return stopped.map_or(Ok(()), Err);
    }
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).map_err(unreadable)?);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(unreadable)? == 0 {
            return Ok(());
        }
        let Some(line) = buf.strip_suffix(b"\n") else {
            eprintln!(
                "warning: {}: the final line is incomplete (a write cut short); skipped",
                path.display()
            );
            return Ok(());
        };
        each(line)?;
    }
}

fn query(q: &QueryArgs) -> ExitCode {
    match run_query(q) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is not an error worth reporting.
        Err(Stop::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Stop::Output(e)) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::from(2)
        }
        Err(Stop::Input(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The filters of a query, ready to test records with.
struct Filter<'q> {
    q: &'q QueryArgs,
    action: Option<globset::GlobMatcher>,
}

impl<'q> Filter<'q> {
    fn new(q: &'q QueryArgs) -> Result<Filter<'q>, Stop> {
        let action = match &q.action {
            Some(glob) => Some(
                globset::Glob::new(glob)
                    .map_err(|e| Stop::Input(format!("bad --action glob `{glob}`: {e}")))?
                    .compile_matcher(),
            ),
            None => None,
        };
        Ok(Filter { q, action })
    }

    fn admits(&self, rec: &Json) -> bool {
        let q = self.q;
        let s = |k: &str| rec.get(k).and_then(Json::as_str);
        if q.agent.as_deref().is_some_and(|a| s("agent") != Some(a))
            || self
                .action
                .as_ref()
                .is_some_and(|m| !m.is_match(s("action").unwrap_or("")))
            || q.decision
                .is_some_and(|d| s("decision") != Some(d.as_str()))
        {
            return false;
        }
        if q.since.is_none() && q.until.is_none() {
            return true;
        }
        let Some(t) = s("time").and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
            return false;
        };
        !(q.since.is_some_and(|since| t < since) || q.until.is_some_and(|until| t >= until))
    }
}

/// What one matching record becomes in the chosen output.
enum Row {
    /// A JSONL line as the log holds it, or a CSV row; newline included.
    Text(Vec<u8>),
    /// A table row: each cell escaped and capped ([`terminal_text`]).
    Cells([String; TABLE_COLUMNS.len()]),
}

impl Row {
    fn new(export: Option<Export>, line: &[u8], rec: &Json) -> Row {
        match export {
            Some(Export::Jsonl) => {
                let mut text = Vec::with_capacity(line.len() + 1);
                text.extend_from_slice(line);
                text.push(b'\n');
                Row::Text(text)
            }
            Some(Export::Csv) => Row::Text(csv_row(rec).into_bytes()),
            None => Row::Cells(TABLE_COLUMNS.map(|(_, k)| terminal_text(&text(rec, k), CELL_CAP))),
        }
    }
}

fn run_query(q: &QueryArgs) -> Result<(), Stop> {
    let filter = Filter::new(q)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if matches!(q.export, Some(Export::Csv)) {
        writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    }
    // An export without `--limit` goes out record by record. A table needs
    // its column widths first and `--limit` the last N, so those rows are
    // kept: at most N, and a table's cells are capped, so what is held is
    // bounded by rows × columns × the cap, never by the longest field.
    let stream = q.export.is_some() && q.limit.is_none();
    let mut kept: VecDeque<Row> = VecDeque::new();
    let mut total = 0usize;
    each_line(&q.log, |line| {
        total += 1;
        let Ok(rec) = serde_json::from_slice::<Json>(line) else {
            eprintln!("warning: record {total} is not JSON; skipped");
            return Ok(());
        };
        if !filter.admits(&rec) {
            return Ok(());
        }
        let row = Row::new(q.export, line, &rec);
        match (stream, row) {
            (true, Row::Text(text)) => out.write_all(&text)?,
            (_, row) => {
                kept.push_back(row);
                if q.limit.is_some_and(|n| kept.len() > n) {
                    kept.pop_front();
                }
            }
        }
        Ok(())
    })?;
    if q.export.is_none() {
        eprintln!("{} of {total} records", kept.len());
        table(&kept, &mut out)?;
    } else {
        for row in &kept {
            if let Row::Text(text) = row {
                out.write_all(text)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// A field as text: strings as they are, `null` as empty, others as JSON.
fn text<'r>(rec: &'r Json, key: &str) -> Cow<'r, str> {
    match rec.get(key) {
        None | Some(Json::Null) => Cow::Borrowed(""),
        Some(Json::String(s)) => Cow::Borrowed(s),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

/// The widest a table cell gets, in characters, `…` included. Logged fields
/// can be as long as a caller made them; the table shows their start.
const CELL_CAP: usize = 60;

/// Logged text made safe to show on a terminal, at most `cap` characters.
///
/// Whoever wrote a record chose its agent name, target and trace id, so
/// nothing of them may act on the terminal: control characters (C0, DEL,
/// C1: a newline would start a fake row, ESC starts colour and OSC
/// sequences), bidirectional controls (U+202E would show text reversed) and
/// the Unicode line and paragraph separators are written as escapes (`\n`,
/// `\x1b`, `\u{202e}`), and a backslash as `\\`, so that an escape seen
/// always means the character and never text that looks like one. Past the
/// cap the text is cut, never inside an escape, and ends with `…`. The work
/// is bounded by the cap, not by the text's length.
fn terminal_text(s: &str, cap: usize) -> String {
    let mut out = String::new();
    let mut width = 0;
    // The length `out` had at the last point that left room for the `…`.
    let mut room = 0;
    for c in s.chars() {
        if width < cap {
            room = out.len();
        }
        if is_unsafe_on_terminal(c) {
            let before = out.len();
            push_escape(&mut out, c);
            // An escape is ASCII: as many characters as bytes.
            width += out.len() - before;
        } else {
            out.push(c);
            width += 1;
        }
        if width > cap {
            out.truncate(room);
            out.push('…');
            return out;
        }
    }
    out
}

/// Control characters (C0, DEL, C1), the bidirectional controls, the line
/// and paragraph separators, and the backslash that starts every escape.
fn is_unsafe_on_terminal(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `\\`, `\n`, `\r`, `\t`, `\x1b` for the rest of C0 and DEL, `\u{202e}`
/// for the others.
fn push_escape(out: &mut String, c: char) {
    use std::fmt::Write as _;
    let _ = match c {
        '\\' => out.write_str("\\\\"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\0'..='\x1f' | '\x7f' => write!(out, "\\x{:02x}", u32::from(c)),
        _ => write!(out, "\\u{{{:x}}}", u32::from(c)),
    };
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

/// One record as a CSV row, newline included.
fn csv_row(rec: &Json) -> String {
    let mut row = String::new();
    for (i, k) in CSV_COLUMNS.iter().enumerate() {
        if i > 0 {
            row.push(',');
        }
        csv_field(&text(rec, k), &mut row);
    }
    row.push('\n');
    row
}

/// Appends one CSV cell. A cell a spreadsheet would take for a formula
/// (starting with `=`, `+`, `-`, `@`, a tab, a carriage return or NUL) gets
/// a `'` in front, OWASP's advice against CSV injection; the rest of the
/// text is kept as logged. Then RFC 4180: quoted when it holds a comma,
/// quote or line break, and also a semicolon or tab, which some
/// spreadsheets split on, so that no cell can begin inside another.
fn csv_field(s: &str, out: &mut String) {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r', '\0']);
    let quoted = s.contains([',', '"', '\n', '\r', ';', '\t']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    if quoted {
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
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

/// Writes the rows as a table, each column as wide as its widest cell
/// (cells are capped, so no column is wider than [`CELL_CAP`]).
fn table(rows: &VecDeque<Row>, out: &mut impl Write) -> std::io::Result<()> {
    let cells = || {
        rows.iter().filter_map(|r| match r {
            Row::Cells(cells) => Some(cells),
            Row::Text(_) => None,
        })
    };
    let header = TABLE_COLUMNS.map(|(h, _)| h);
    let mut widths = header.map(str::len);
    for row in cells() {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = String::new();
    let mut write_line = |cells: &mut dyn Iterator<Item = &str>| {
        line.clear();
        for (cell, w) in cells.zip(&widths) {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(cell.chars().count()) + 2,
            ));
        }
        writeln!(out, "{}", line.trim_end())
    };
    write_line(&mut header.into_iter())?;
    for row in cells() {
        write_line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{csv_field, terminal_text};

    #[test]
    fn terminal_text_escapes_controls_and_caps() {
        assert_eq!(terminal_text("plain", 60), "plain");
        assert_eq!(
            terminal_text("a\nb\x1b[31mc\u{9b}d\u{202e}e\\", 60),
            "a\\nb\\x1b[31mc\\u{9b}d\\u{202e}e\\\\"
        );
        assert_eq!(terminal_text("\x7f\t\r\0", 60), "\\x7f\\t\\r\\x00");
        assert_eq!(terminal_text("abcdef", 4), "abc…");
        assert_eq!(terminal_text("abcd", 4), "abcd");
        assert_eq!(terminal_text("ééééé", 4), "ééé…");
        // An escape is never cut in half.
        assert_eq!(terminal_text("ab\x1bcdef", 5), "ab…");
        let long = "x".repeat(100_000);
        assert_eq!(terminal_text(&long, 60).chars().count(), 60);
    }

    #[test]
    fn csv_fields_are_neutralised_and_quoted() {
        let field = |s: &str| {
            let mut out = String::new();
            csv_field(s, &mut out);
            out
        };
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-1"), "'-1");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\tx"), "\"'\tx\"");
        assert_eq!(field("=a,\"b\""), "\"'=a,\"\"b\"\"\"");
        assert_eq!(field("a;=b"), "\"a;=b\"");
        assert_eq!(field("a=b"), "a=b");
    }
}
