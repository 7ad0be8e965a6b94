//! The CLI contract: exit codes, output formats, batch behaviour.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn writ(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_writ"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        // A command may exit without reading its stdin (an argument error):
        // then the pipe is closed, which is no failure of the test.
        let written = child.stdin.take().unwrap().write_all(input.as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    let out = child.wait_with_output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(101),
        "writ panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn check_passes_clean_policies_and_fails_broken_ones() {
    let ok = writ(
        &[
            "check",
            "examples/support.yaml",
            "examples/seeds/sekuire.yml",
        ],
        None,
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stderr(&ok).contains("checked 2 files: 0 errors, 0 warnings"));

    let bad = writ(&["check", "tests/fixtures/yaml/unknown-keys.yaml"], None);
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(
        err.contains("[E0103] Error: unknown key `efect` in a MeshGuard rule"),
        "{err}"
    );
    assert!(
        err.contains("tests/fixtures/yaml/unknown-keys.yaml:5:5"),
        "{err}"
    );
    assert!(err.contains("did you mean `effect`?"), "{err}");
}

#[test]
fn check_json_gives_code_file_line_column_and_help() {
    let out = writ(
        &[
            "check",
            "--format",
            "json",
            "tests/fixtures/yaml/bad-rate.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let diags: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let first = &diags[0];
    assert_eq!(first["code"], "E0203");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["file"], "tests/fixtures/yaml/bad-rate.yaml");
    assert_eq!(first["line"], 5);
    assert_eq!(first["column"], 19);
    assert!(first["message"].as_str().unwrap().contains("fortnight"));
    assert!(first["help"].as_str().is_some());
    assert_eq!(first["docs"], "docs/diagnostics/E0203.md");
}

#[test]
fn deny_warnings_turns_warnings_into_failure() {
    let plain = writ(&["check", "tests/fixtures/yaml/empty-lists.yaml"], None);
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    assert!(stderr(&plain).contains("W0102"));
    let strict = writ(
        &[
            "check",
            "--deny-warnings",
            "tests/fixtures/yaml/empty-lists.yaml",
        ],
        None,
    );
    assert_eq!(strict.status.code(), Some(1));
}

#[test]
fn missing_file_is_a_diagnostic_not_a_crash() {
    let out = writ(&["check", "does/not/exist.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("E0001"), "{}", stderr(&out));
}

#[test]
fn dialect_override_reads_the_file_as_that_dialect() {
    let out = writ(
        &[
            "check",
            "--dialect",
            "meshguard",
            "examples/seeds/aegis-policy.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown key `defaults` in a MeshGuard policy"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn eval_prints_one_decision_with_every_contract_field() {
    let req = r#"{"agent":"support-bot","tags":["openai"],"action":"write:refund","context":{"amount":500}}"#;
    let out = writ(
        &[
            "eval",
            "examples/seeds/meshguard-openai-support.yaml",
            "--request",
            req,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let d: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        d,
        serde_json::json!({
            "decision": "deny",
            "rule": "deny_write_refund",
            "policy": "openai-support-agent-policy",
            "reason": "Refunds over $100 require manager approval",
            "risk": null,
            "retry_after_s": null
        })
    );
}

#[test]
fn eval_batch_answers_every_line_in_order_and_flags_malformed_ones() {
    let lines = [
        r#"{"agent":"a","action":"model:use","target":"gpt-4o","at":"2025-01-01T00:00:00Z"}"#,
        r#"{"agent":"a","action":"#,
        r#"{"agent":"a","action":"model:use","target":"gpt-3.5-turbo"}"#,
        r#"{"agent":"a","actoin":"model:use"}"#,
        r#"{"agent":"a","action":"model:use","at":"yesterday"}"#,
    ];
    let out = writ(
        &["eval", "examples/seeds/sekuire.yml", "--requests", "-"],
        Some(&lines.join("\n")),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a malformed line makes the exit status 1"
    );
    let got: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got[0]["decision"], "allow");
    assert!(
        got[1]["error"]
            .as_str()
            .unwrap()
            .contains("malformed request")
    );
    assert_eq!(got[2]["rule"], "model_blocked");
    assert!(
        got[3]["error"].as_str().unwrap().contains("actoin"),
        "{}",
        got[3]
    );
    assert!(
        got[4]["error"].as_str().unwrap().contains("`at`"),
        "{}",
        got[4]
    );
}

#[test]
fn eval_batch_shares_rate_limit_state() {
    let line =
        r#"{"agent":"a","action":"model:use","target":"gpt-4o","at":"2025-01-01T00:00:00Z"}"#;
    let input = [line; 11].join("\n");
    let path = std::env::temp_dir().join(format!("writ-batch-{}.jsonl", std::process::id()));
    std::fs::write(&path, input).unwrap();
    let out = writ(
        &[
            "eval",
            "examples/seeds/sekuire.yml",
            "--requests",
            path.to_str().unwrap(),
        ],
        None,
    );
    std::fs::remove_file(&path).ok();
    assert_eq!(out.status.code(), Some(0));
    let decisions: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(decisions[..10].iter().all(|d| d["decision"] == "allow"));
    assert_eq!(decisions[10]["decision"], "deny");
    assert_eq!(decisions[10]["retry_after_s"], 60);
}

#[test]
fn eval_refuses_a_policy_with_errors() {
    let out = writ(
        &[
            "eval",
            "tests/fixtures/yaml/bad-glob.yaml",
            "--request",
            r#"{"agent":"a","action":"tool:a"}"#,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).is_empty(),
        "no decision may be printed for a broken policy"
    );
    assert!(stderr(&out).contains("E0201"));
}

#[test]
fn eval_merges_files_in_order() {
    let req = r#"{"agent":"ops","action":"delete_table"}"#;
    let out = writ(
        &[
            "eval",
            "examples/seeds/aegis-prod-overrides.yaml",
            "examples/seeds/aegis-base-policy.yaml",
            "--request",
            req,
        ],
        None,
    );
    let d: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(d["rule"], "prod_block_deletes");
    let other = writ(
        &[
            "eval",
            "examples/seeds/aegis-base-policy.yaml",
            "--request",
            req,
        ],
        None,
    );
    let d: serde_json::Value = serde_json::from_str(stdout(&other).trim()).unwrap();
    assert_eq!(d["decision"], "approve");
}

#[test]
fn junk_requests_never_crash_and_never_allow() {
    let junk = [
        "",
        "null",
        "[]",
        "42",
        "\"str\"",
        "{}",
        r#"{"agent":""}"#,
        r#"{"agent":"a","action":""}"#,
        r#"{"agent":1,"action":"x"}"#,
        r#"{"agent":"a","action":"x","tokens":-1}"#,
        r#"{"agent":"a","action":"x","tokens":1e400}"#,
        r#"{"agent":"a","action":"x","context":[]}"#,
        r#"{"agent":"a","action":"x","roles":"admin"}"#,
        "\u{1}",
        "{\"agent\":\"a\",\"action\":\"x\"",
    ];
    for j in junk {
        let out = writ(&["eval", "examples/support.yaml", "--request", j], None);
        let text = stdout(&out);
        assert!(
            !text.contains("\"allow\""),
            "junk {j:?} was allowed: {text}"
        );
        assert_eq!(out.status.code(), Some(1), "junk {j:?}: {text}");
        assert!(
            text.contains("\"error\""),
            "junk {j:?} got no error line: {text}"
        );
    }
}

/// A scratch directory under the target dir, fresh for each test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn fmt_rewrites_checks_and_refuses_broken_files() {
    let dir = scratch("fmt");
    let messy = dir.join("messy.writ");
    std::fs::write(
        &messy,
        "# keep me\nrule   refunds :allow \"tool:call\"   on refund when amount<=100 # small\n  limit 20 per hour\n",
    )
    .unwrap();
    let path = messy.to_str().unwrap();
    let check = writ(&["fmt", "--check", path], None);
    assert_eq!(
        check.status.code(),
        Some(1),
        "an unformatted file fails --check"
    );
    assert!(stderr(&check).contains("is not formatted"));
    assert!(
        std::fs::read_to_string(&messy)
            .unwrap()
            .contains("refunds :allow"),
        "--check must not write"
    );
    let fmt = writ(&["fmt", path], None);
    assert_eq!(fmt.status.code(), Some(0), "{}", stderr(&fmt));
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "# keep me\nrule refunds: allow \"tool:call\" on refund\n  when amount <= 100  # small\n  limit 20 per hour\n"
    );
    assert_eq!(writ(&["fmt", "--check", path], None).status.code(), Some(0));

    let broken = dir.join("broken.writ");
    std::fs::write(&broken, "rule r allow \"x\"\n").unwrap();
    let out = writ(&["fmt", broken.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("E0401"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&broken).unwrap(),
        "rule r allow \"x\"\n"
    );

    let yaml = writ(&["fmt", "examples/support.yaml"], None);
    assert_eq!(yaml.status.code(), Some(1));
    assert!(stderr(&yaml).contains("writ convert"));

    let piped = writ(&["fmt", "-"], Some("rule   r: deny \"x\"\n"));
    assert_eq!(stdout(&piped), "rule r: deny x\n", "words print bare");
}

#[test]
fn convert_goes_both_ways_and_the_results_check() {
    let dir = scratch("convert");
    let to_writ = writ(
        &[
            "convert",
            "examples/seeds/meshguard-delegation.yaml",
            "--to",
            "writ",
        ],
        None,
    );
    assert_eq!(to_writ.status.code(), Some(0), "{}", stderr(&to_writ));
    let text = stdout(&to_writ);
    assert!(text.contains("rule "), "{text}");
    let out = dir.join("support.yaml");
    let to_yaml = writ(
        &[
            "convert",
            "examples/support.writ",
            "--to",
            "yaml",
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(to_yaml.status.code(), Some(0), "{}", stderr(&to_yaml));
    let yaml = std::fs::read_to_string(&out).unwrap();
    assert!(
        yaml.starts_with("# writ's own language"),
        "comments come along:\n{yaml}"
    );
    assert!(yaml.contains("writ: 1"));
    let check = writ(&["check", out.to_str().unwrap()], None);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    // A decision is the same through either form.
    let req = r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":79.99,"currency":"USD"},"at":"2025-01-15T15:00:00Z"}"#;
    let a = writ(&["eval", "examples/support.writ", "--request", req], None);
    let b = writ(&["eval", out.to_str().unwrap(), "--request", req], None);
    assert_eq!(stdout(&a), stdout(&b));
    assert!(stdout(&a).contains("\"decision\":\"allow\""));
    // What the YAML schema cannot say is refused, not dropped.
    let sekuire = writ(
        &["convert", "examples/seeds/sekuire.writ", "--to", "yaml"],
        None,
    );
    assert_eq!(sekuire.status.code(), Some(1));
    assert!(
        stderr(&sekuire).contains("keep this policy in the writ language"),
        "{}",
        stderr(&sekuire)
    );
    // A policy with errors is not converted.
    let bad = writ(
        &[
            "convert",
            "tests/fixtures/yaml/bad-rate.yaml",
            "--to",
            "writ",
        ],
        None,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).is_empty());
}

#[test]
fn eval_takes_delegation_chains() {
    let lines = concat!(
        r#"{"chain":["triage-agent","billing-agent"],"action":"tool:call","target":"refund","context":{"amount":40}}"#,
        "\n",
        r#"{"chain":["triage-agent","research-agent"],"action":"net:connect","target":"example.com"}"#,
        "\n",
        r#"{"agent":"ledger-agent","chain":["triage-agent","billing-agent"],"action":"tool:call"}"#,
        "\n",
    );
    let out = writ(
        &["eval", "examples/delegation.writ", "--requests", "-"],
        Some(lines),
    );
    let got: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0]["decision"], "allow");
    assert_eq!(got[1]["decision"], "deny");
    assert!(
        got[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("strict ceiling")
    );
    assert!(
        got[2]["error"]
            .as_str()
            .unwrap()
            .contains("the chain ends with `billing-agent`"),
        "{}",
        got[2]
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a malformed line makes the batch fail"
    );
}

/// `writ eval ... | head -1`: once the reader has gone, writ stops quietly
/// with exit 0, as Unix tools do, instead of panicking ("failed printing to
/// stdout: Broken pipe", exit 101). The batch's output (about 9 MB) is far
/// more than a pipe holds, so writ is still writing when the reader goes.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::io::BufRead as _;
    let dir = std::env::temp_dir().join(format!("writ-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let requests = dir.join("requests.jsonl");
    let line = r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":500}}"#;
    std::fs::write(&requests, format!("{line}\n").repeat(50_000)).unwrap();
    let policy = format!("{}/examples/support.writ", env!("CARGO_MANIFEST_DIR"));
    let cases: [Vec<&str>; 3] = [
        vec!["eval", &policy, "--requests", requests.to_str().unwrap()],
        vec!["plan", &policy, requests.to_str().unwrap()],
        vec![
            "eval",
            "--explain",
            &policy,
            "--requests",
            requests.to_str().unwrap(),
        ],
    ];
    for args in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{args:?}: no output");
        // The reader is dropped here: the pipe is closed.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `writ plan`'s usage names its two kinds of argument once each.
#[test]
fn plan_usage_names_policies_then_requests() {
    let out = writ(&["plan", "--help"], None);
    let text = stdout(&out);
    assert!(
        text.contains("Usage: writ plan [OPTIONS] <POLICY>... <REQUESTS>"),
        "{text}"
    );
}

/// A directory stands for its policy files, test files named among
/// policies are left out with one note, and `-` reads the policy (YAML or
/// the writ language) from stdin.
#[test]
fn check_reads_directories_stdin_and_leaves_test_files_out() {
    // The README's glob picks up the decision tables next to the policies.
    let mut args = vec!["check".to_owned(), "--format".into(), "json".into()];
    let mut tables = 0;
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seeds")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".yaml") {
            tables += usize::from(name.ends_with(".decisions.yaml"));
            args.push(format!("examples/seeds/{name}"));
        }
    }
    assert!(tables > 1);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = writ(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("note: left out").count(), 1, "{err}");
    assert!(
        err.contains(&format!("left out {tables} test files")),
        "{err}"
    );

    // A directory: its policy files, not its subdirectories nor test files.
    let dir = std::env::temp_dir().join(format!("writ-check-dir-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::copy("examples/support.writ", dir.join("support.writ")).unwrap();
    std::fs::copy("examples/seeds/sekuire.yml", dir.join("sekuire.yml")).unwrap();
    std::fs::copy(
        "examples/support.decisions.yaml",
        dir.join("support.decisions.yaml"),
    )
    .unwrap();
    std::fs::write(dir.join("sub/broken.yaml"), "not: [a policy").unwrap();
    let out = writ(&["check", dir.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("checked 2 files"), "{}", stderr(&out));
    let empty = dir.join("sub/empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = writ(&["check", empty.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("holds no policy file"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // stdin, in either syntax; errors name `<stdin>`.
    let text = std::fs::read_to_string("examples/support.writ").unwrap();
    let out = writ(&["check", "-"], Some(&text));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let yaml = std::fs::read_to_string("examples/support.yaml").unwrap();
    let out = writ(&["check", "-"], Some(&yaml));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = writ(
        &["check", "-"],
        Some("writ: 1\nrules:\n  - effect: alow\n    action: x\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("<stdin>:3:"), "{}", stderr(&out));
    // stdin cannot be both the policy and the requests.
    let out = writ(&["eval", "-", "--requests", "-"], Some(&text));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// `--quiet` keeps warnings off stderr (the MeshGuard seed has many), but
/// never errors.
#[test]
fn eval_quiet_prints_errors_only() {
    let req = r#"{"agent":"a","token":"tok_support_t1_x","action":"web_search:execute"}"#;
    let policy = "examples/seeds/meshguard-support-agents.yaml";
    let loud = writ(&["eval", policy, "--request", req], None);
    assert!(stderr(&loud).contains("Warning"), "{}", stderr(&loud));
    let quiet = writ(&["eval", "--quiet", policy, "--request", req], None);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(stderr(&quiet).is_empty(), "{}", stderr(&quiet));
    assert_eq!(stdout(&quiet), stdout(&loud));
    let broken = writ(
        &["eval", "--quiet", "-", "--request", req],
        Some("writ: 1\nrules:\n  - effect: alow\n    action: x\n"),
    );
    assert_eq!(broken.status.code(), Some(1));
    assert!(stderr(&broken).contains("alow"), "{}", stderr(&broken));
}
