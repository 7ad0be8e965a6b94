//! `writ audit verify` and `writ audit query` on logs written by the
//! runtime's audit log (JSON Lines and SQLite). The log itself is tested in
//! `crates/writ-runtime/tests/audit.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::Value as Json;
use writ_audit::{AuditLog, AuditRecord};
use writ_runtime::{Effect, Risk, Value};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("writ-cli-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Six decisions, a minute apart from 2025-01-15T15:00:00Z: agents
/// alternate, actions `tool:call`/`model:use`, every third a deny.
fn record(i: i64) -> AuditRecord {
    let mut context = BTreeMap::new();
    context.insert("amount".to_owned(), Value::Number(10.0 * i as f64));
    context.insert("password".to_owned(), Value::String("hunter2".to_owned()));
    AuditRecord {
        time_ms: 1_736_953_200_000 + (i - 1) * 60_000,
        trace_id: Some(format!("t{i}")),
        agent: if i % 2 == 1 {
            "billing-agent"
        } else {
            "triage-agent"
        }
        .to_owned(),
        chain: Vec::new(),
        action: if i <= 4 { "tool:call" } else { "model:use" }.to_owned(),
        target: Some(format!("target-{i}")),
        context,
        decision: if i % 3 == 0 {
            Effect::Deny
        } else {
            Effect::Allow
        },
        rule: Some(format!("rule_{i}")),
        reason: Some("because, \"quoted\"".to_owned()),
        risk: Some(Risk::Medium),
        retry_after_s: None,
        revision: Arc::from("rev1"),
    }
}

fn fill(log: AuditLog) {
    for i in 1..=6 {
        log.record(&record(i));
    }
    log.shutdown().unwrap();
}

fn writ(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn verify_reports_intact_and_tampered_logs_with_exit_codes() {
    let dir = temp_dir("verify");
    let log = dir.join("audit.jsonl");
    fill(AuditLog::jsonl(&log).unwrap());
    let out = writ(&["audit", "verify", s(&log)]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("6 records, intact"),
        "{}",
        stdout(&out)
    );

    // Edit record 2 and delete record 5.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let edited = lines[1].replace("target-2", "target-X");
    lines[1] = &edited;
    lines.remove(4);
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out = writ(&["audit", "verify", s(&log)]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("line 2 (seq 2, id "), "{report}");
    assert!(report.contains("edited"), "{report}");
    assert!(report.contains("seq 5 is missing"), "{report}");
    assert!(report.contains("NOT intact"), "{report}");

    let out = writ(&["audit", "verify", s(&dir.join("missing.jsonl"))]);
    assert_eq!(out.status.code(), Some(2));

    // A file that is not an audit log at all (a typo in the path) is said
    // once, as an error (exit 2), not as one problem per line.
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let out = writ(&["audit", "verify", readme]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("not an audit log") && err.contains("README.md"),
        "{err}"
    );
    // But a log of which one record still reads is a damaged log: every
    // other line is reported (exit 1).
    let one = dir.join("one.jsonl");
    let first = text.lines().next().unwrap();
    std::fs::write(&one, format!("{first}\ngarbage\nmore garbage\n")).unwrap();
    let out = writ(&["audit", "verify", s(&one)]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("line 2") && report.contains("line 3"),
        "{report}"
    );
}

#[test]
fn verify_and_query_read_sqlite_whatever_the_name() {
    let dir = temp_dir("sqlite");
    // Named .jsonl on purpose: the format is told by the magic bytes.
    let db = dir.join("audit-db.jsonl");
    fill(AuditLog::sqlite(&db).unwrap());
    assert!(
        std::fs::read(&db)
            .unwrap()
            .starts_with(b"SQLite format 3\0")
    );
    let out = writ(&["audit", "verify", s(&db)]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("6 records, intact"));
    let out = writ(&[
        "audit",
        "query",
        s(&db),
        "--decision",
        "deny",
        "--export",
        "jsonl",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let seqs: Vec<u64> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<Json>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [3, 6]);
}

#[test]
fn prune_removes_what_is_old_enough_and_refuses_json_lines() {
    let dir = temp_dir("prune");
    let db = dir.join("audit.db");
    fill(AuditLog::sqlite(&db).unwrap());
    fill(AuditLog::sqlite(&db).unwrap());
    // Both batches were written just now: a day's retention keeps them.
    let out = writ(&["audit", "prune", s(&db), "--older-than", "1d"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("nothing pruned"), "{}", stdout(&out));
    let out = writ(&["audit", "verify", s(&db)]);
    assert!(
        stdout(&out).contains("12 records, intact"),
        "{}",
        stdout(&out)
    );
    // Everything written before a time to come goes.
    let out = writ(&["audit", "prune", s(&db), "--before", "2999-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).contains(
            "pruned 12 records written before 2999-01-01T00:00:00Z; the log now starts after seq 12"
        ),
        "{}",
        stdout(&out)
    );
    let out = writ(&["audit", "verify", s(&db)]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("0 records, intact; pruned through seq 12 (12 records"),
        "{}",
        stdout(&out)
    );
    // The log goes on from the anchor.
    fill(AuditLog::sqlite(&db).unwrap());
    let out = writ(&["audit", "verify", s(&db)]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("6 records, intact; pruned through seq 12"));

    // A JSON Lines log, a bad age, and no age: exit 2 with a sentence.
    let jsonl = dir.join("audit.jsonl");
    fill(AuditLog::jsonl(&jsonl).unwrap());
    for (args, says) in [
        (vec![s(&jsonl), "--older-than", "1d"], "rotate it"),
        (vec![s(&db), "--older-than", "90x"], "write days as `90d`"),
        (vec![s(&db)], "--older-than"),
        (
            vec![
                s(&db),
                "--older-than",
                "1d",
                "--before",
                "2025-01-01T00:00:00Z",
            ],
            "cannot be used with",
        ),
    ] {
        let out = writ(&[&["audit", "prune"][..], &args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 6);
}

#[test]
fn query_prints_a_table_and_filters() {
    let dir = temp_dir("query");
    let log = dir.join("audit.jsonl");
    fill(AuditLog::jsonl(&log).unwrap());

    let out = writ(&["audit", "query", s(&log)]);
    assert_eq!(out.status.code(), Some(0));
    let table = stdout(&out);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 7, "{table}");
    assert!(rows[0].starts_with("TIME"), "{table}");
    for col in [
        "DECISION", "AGENT", "ACTION", "TARGET", "RULE", "RISK", "ID",
    ] {
        assert!(rows[0].contains(col), "{table}");
    }
    assert!(
        rows[1].starts_with("2025-01-15T15:00:00.000Z  allow"),
        "{table}"
    );
    assert!(
        rows[3].contains("deny") && rows[3].contains("rule_3"),
        "{table}"
    );
    assert!(!table.contains("hunter2"));

    let seqs = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["audit", "query", s(&log), "--export", "jsonl"];
        all.extend_from_slice(args);
        let out = writ(&all);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        stdout(&out)
            .lines()
            .map(|l| {
                serde_json::from_str::<Json>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(seqs(&[]), [1, 2, 3, 4, 5, 6]);
    assert_eq!(seqs(&["--agent", "triage-agent"]), [2, 4, 6]);
    assert_eq!(seqs(&["--action", "model:*"]), [5, 6]);
    assert_eq!(seqs(&["--decision", "allow"]), [1, 2, 4, 5]);
    assert_eq!(seqs(&["--decision", "approve"]), Vec::<u64>::new());
    assert_eq!(
        seqs(&[
            "--since",
            "2025-01-15T15:02:00Z",
            "--until",
            "2025-01-15T15:04:00Z"
        ]),
        [3, 4]
    );
    assert_eq!(seqs(&["--limit", "2"]), [5, 6], "the most recent");
    assert_eq!(
        seqs(&[
            "--agent",
            "billing-agent",
            "--action",
            "tool:*",
            "--limit",
            "1"
        ]),
        [3]
    );

    let out = writ(&["audit", "query", s(&log), "--decision", "maybe"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap rejects an unknown decision"
    );
}

#[test]
fn query_exports_jsonl_that_verifies_and_csv() {
    let dir = temp_dir("export");
    let log = dir.join("audit.jsonl");
    fill(AuditLog::jsonl(&log).unwrap());

    // The whole log exported as JSONL is the log: it verifies.
    let out = writ(&["audit", "query", s(&log), "--export", "jsonl"]);
    let copy = dir.join("copy.jsonl");
    std::fs::write(&copy, stdout(&out)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        std::fs::read_to_string(&log).unwrap()
    );

    let out = writ(&[
        "audit",
        "query",
        s(&log),
        "--export",
        "csv",
        "--agent",
        "triage-agent",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let csv = stdout(&out);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "seq,id,time,trace_id,agent,chain,action,target,decision,rule,reason,risk,retry_after_s,revision,context"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[1].starts_with("2,"), "{csv}");
    assert!(
        lines[1].contains(
            ",2025-01-15T15:01:00.000Z,t2,triage-agent,[],tool:call,target-2,allow,rule_2,\"because, \"\"quoted\"\"\",medium,,rev1,"
        ),
        "{csv}"
    );
    assert!(
        lines[1].ends_with("\"{\"\"amount\"\":20,\"\"password\"\":\"\"***\"\"}\""),
        "{csv}"
    );
}

/// `record_decision` packs a request and its decision straight into the
/// queue: what it writes is what `record(&AuditRecord::from_decision(..))`
/// writes, and nothing of an earlier decision (a target, trace id, rule,
/// reason, chain or context key) survives into a later one.
#[test]
fn decisions_recorded_from_requests_carry_nothing_over() {
    use writ_audit::{AuditOptions, JsonlSink};
    let sources = [writ::Source {
        name: "recycle.writ".to_owned(),
        text: r#"
policy "recycle" { default deny }
rule delegate: allow "agent:delegate"
rule lookups: allow "tool:call" on "lookup"
  because "lookups are fine"
rule big_refund: deny "tool:call" on "refund"
  when amount > 100
"#
        .to_owned(),
    }];
    let comp = writ::compile(&sources, None);
    let set = comp
        .checked_set()
        .unwrap_or_else(|| panic!("{:?}", comp.diagnostics));
    let rt = writ_runtime::Runtime::from_vec(writ::bundle::compile(set, &sources, None).unwrap())
        .unwrap();
    let revision = writ_audit::revision_of(rt.header());
    let requests: Vec<writ_runtime::Request> = (0..40)
        .map(|i| {
            let mut r = writ_runtime::Request::new(
                if i % 3 == 0 { "a" } else { "billing-agent" },
                "tool:call",
            );
            if i % 2 == 0 {
                r.target = Some(if i % 4 == 0 { "lookup" } else { "refund" }.to_owned());
                r.trace_id = Some(format!("trace-{i}"));
                r.chain = vec!["triage".to_owned(), r.agent.clone()];
                r.context
                    .insert("amount".to_owned(), Value::Number(f64::from(i) * 10.0));
                r.context
                    .insert(format!("key{i}"), Value::String("x".to_owned()));
            }
            r
        })
        .collect();
    let dir = temp_dir("recycle");
    // Small batches: buffers are reused many times.
    let options = AuditOptions {
        batch_size: 2,
        ..AuditOptions::default()
    };
    let moved = AuditLog::new(
        JsonlSink::open(dir.join("moved.jsonl")).unwrap(),
        options.clone(),
    )
    .unwrap();
    let filled =
        AuditLog::new(JsonlSink::open(dir.join("filled.jsonl")).unwrap(), options).unwrap();
    for (i, req) in requests.iter().enumerate() {
        let d = rt.check(req);
        let t = 1_736_953_200_000 + i as i64;
        moved.record(&AuditRecord::from_decision(req, &d, revision.clone(), t));
        filled.record_decision(req, &d, &revision, t);
        if i % 5 == 0 {
            // Let the writer catch up and hand buffers back.
            filled.flush().unwrap();
        }
    }
    moved.shutdown().unwrap();
    filled.shutdown().unwrap();
    let read = |name: &str| -> Vec<Json> {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: Json = serde_json::from_str(l).unwrap();
                for k in ["id", "hash", "prev"] {
                    v.as_object_mut().unwrap().remove(k);
                }
                v
            })
            .collect()
    };
    let (a, b) = (read("moved.jsonl"), read("filled.jsonl"));
    assert_eq!(a.len(), 40);
    assert_eq!(a, b);
    // The requests differ in what they carry, so the test means something.
    assert_eq!(a[1]["target"], Json::Null);
    assert_eq!(
        a[2]["reason"].as_str().map(|r| r.contains("100")),
        Some(false)
    );
    assert_eq!(a[4]["rule"], "lookups");
    assert_eq!(a[4]["chain"][0], "triage");
    assert_eq!(a[14]["rule"], "big_refund");
    assert_eq!(a[5]["rule"], Json::Null);
    // The context as the request had it, values of every shape.
    for (req, rec) in requests.iter().zip(&a) {
        let want: Json = req
            .context
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        assert_eq!(rec["context"], want);
    }
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) if n.fract() == 0.0 => Json::from(*n as i64),
        Value::Number(n) => Json::from(*n),
        Value::String(s) => Json::String(s.clone()),
        Value::List(l) => Json::Array(l.iter().map(value_json).collect()),
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// A log written by someone who wants to fool whoever reads it: a newline in
/// an agent name (a fake row), colour and OSC 8 hyperlink escapes in a
/// target, a C1 control and a right-to-left override, spreadsheet formulas
/// in a trace id, a reason and an agent, and one target of 100 KB among
/// many short records.
fn hostile_log(dir: &Path) -> (PathBuf, Vec<AuditRecord>) {
    let log = dir.join("hostile.jsonl");
    let mut records = Vec::new();
    for i in 1..=200 {
        let mut r = record(i);
        match i {
            1 => r.agent = "billing-agent\n2025-01-15T15:00:00.000Z  allow     root".to_owned(),
            2 => {
                r.target = Some(
                    "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example/\x07click me\x1b]8;;\x07"
                        .to_owned(),
                );
            }
            3 => r.trace_id = Some("=cmd|' /C calc'!A0".to_owned()),
            4 => r.target = Some("A".repeat(100_000)),
            5 => {
                r.action = "tool:\u{9b}2J".to_owned();
                r.rule = Some("rule\u{202e}txt.exe".to_owned());
                r.reason = Some("+SUM(1,2)".to_owned());
            }
            6 => r.agent = "@agent\t-1".to_owned(),
            _ => {}
        }
        records.push(r);
    }
    let audit = AuditLog::jsonl(&log).unwrap();
    for r in &records {
        audit.record(r);
    }
    audit.shutdown().unwrap();
    (log, records)
}

/// Bytes a terminal acts on: C0 but the newline ending each line, DEL, and
/// the C1 and bidirectional controls as UTF-8.
fn terminal_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

#[test]
fn query_table_escapes_and_caps_logged_text() {
    let dir = temp_dir("hostile-table");
    let (log, _) = hostile_log(&dir);
    let out = writ(&["audit", "query", s(&log)]);
    assert_eq!(out.status.code(), Some(0));
    let table = stdout(&out);
    assert_eq!(terminal_controls(&table), Vec::<char>::new());
    let rows: Vec<&str> = table.lines().collect();
    // A header and one line per record: the newline made no fake row.
    assert_eq!(rows.len(), 201, "{}", &table[..2000]);
    assert!(
        rows[1].contains("billing-agent\\n2025-01-15T15:00:00.000Z  allow     root"),
        "{}",
        rows[1]
    );
    // Escaped, the hyperlink is longer than the cap: cut, never mid-escape.
    assert!(
        rows[2].contains("\\x1b[31mred\\x1b[0m \\x1b]8;;https://evil.example/\\x07click m…"),
        "{}",
        rows[2]
    );
    assert!(rows[5].contains("tool:\\u{9b}2J"), "{}", rows[5]);
    assert!(rows[5].contains("rule\\u{202e}txt.exe"), "{}", rows[5]);
    assert!(rows[6].contains("@agent\\t-1"), "{}", rows[6]);
    // The 100 KB target shows as its first 59 characters and an ellipsis,
    // and no column is wider than 60: the table is bounded by rows × cap.
    let cut = format!("{}…", "A".repeat(59));
    assert!(rows[4].contains(&format!("{cut}  ")), "{}", rows[4]);
    assert!(!table.contains(&"A".repeat(60)));
    for row in &rows {
        assert!(row.chars().count() <= 8 * (60 + 2), "{row}");
    }
    assert!(table.len() < 201 * 8 * 62 * 2, "{} bytes", table.len());

    let out = writ(&["audit", "query", s(&log), "--limit", "197"]);
    let limited = stdout(&out);
    assert_eq!(limited.lines().count(), 198);
    assert!(limited.lines().nth(1).unwrap().contains(&cut), "{limited}");
}

#[test]
fn query_exports_hostile_logs_as_neutral_csv_and_exact_jsonl() {
    let dir = temp_dir("hostile-export");
    let (log, records) = hostile_log(&dir);

    // JSONL: the log's own lines, byte for byte.
    let out = writ(&["audit", "query", s(&log), "--export", "jsonl"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, std::fs::read(&log).unwrap());
    let out = writ(&[
        "audit",
        "query",
        s(&log),
        "--export",
        "jsonl",
        "--limit",
        "197",
    ]);
    let lines: Vec<Vec<u8>> = std::fs::read(&log)
        .unwrap()
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(out.stdout, lines[3..].concat());

    // CSV: every cell a spreadsheet would run as a formula starts with `'`,
    // and otherwise the cells hold the logged text, quoted where needed.
    let out = writ(&["audit", "query", s(&log), "--export", "csv"]);
    assert_eq!(out.status.code(), Some(0));
    let rows = parse_csv(&stdout(&out));
    assert_eq!(rows.len(), 201);
    for row in &rows {
        assert_eq!(row.len(), 15, "{row:?}");
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
    }
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    assert_eq!(rows[1][col("agent")], records[0].agent);
    assert_eq!(rows[2][col("target")], records[1].target.clone().unwrap());
    assert_eq!(rows[3][col("trace_id")], "'=cmd|' /C calc'!A0");
    assert_eq!(rows[4][col("target")].len(), 100_000);
    assert_eq!(rows[5][col("reason")], "'+SUM(1,2)");
    assert_eq!(rows[5][col("rule")], "rule\u{202e}txt.exe");
    assert_eq!(rows[6][col("agent")], "'@agent\t-1");
}

/// An RFC 4180 reader: quoted cells may hold commas, quotes and newlines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        cell.is_empty() && row.is_empty() && !quoted,
        "unterminated CSV"
    );
    rows
}

#[test]
fn verify_escapes_ids_read_from_a_forged_line() {
    let dir = temp_dir("hostile-verify");
    let log = dir.join("audit.jsonl");
    fill(AuditLog::jsonl(&log).unwrap());
    let text = std::fs::read_to_string(&log).unwrap();
    // The id is read up to the next quote, unchecked: forge one that sets
    // the terminal's title with a raw OSC sequence.
    let id_at = text.find("\"id\":\"").unwrap() + 6;
    let forged = format!("{}\x1b]0;pwned\x07{}", &text[..id_at], &text[id_at..]);
    std::fs::write(&log, forged).unwrap();
    let out = writ(&["audit", "verify", s(&log)]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("\\x1b]0;pwned\\x07"), "{report}");
    assert_eq!(terminal_controls(&report), Vec::<char>::new());
}
