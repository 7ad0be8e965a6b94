//! `writ test`, `writ plan` and `writ eval --explain` through the binary, on
//! the policies under `tests/fixtures/writ-test/` and the examples.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::process::{Command, Output, Stdio};

fn writ(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

const DIR: &str = "tests/fixtures/writ-test";

fn fixture(name: &str) -> String {
    format!("{DIR}/{name}")
}

#[test]
fn every_example_passes_under_writ_test() {
    let out = writ(&["test", "examples"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("test result: ok."), "{text}");
    assert!(!text.contains('✗'), "{text}");
    // Every decision table and test file under examples/ was run.
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let name = p.to_string_lossy().to_string();
                if p.is_dir() {
                    count(&p)
                } else {
                    usize::from(name.ends_with(".decisions.yaml") || name.ends_with(".test.yaml"))
                }
            })
            .sum()
    }
    let files = count(std::path::Path::new("examples"));
    assert!(files >= 14, "{files}");
    assert!(text.contains(&format!("{files} file(s)")), "{text}");
}

#[test]
fn passing_tests_exit_zero_and_coverage_lists_unreached_rules() {
    let out = writ(&[
        "test",
        "--coverage",
        &fixture("refunds.test.yaml"),
        &fixture("isolated.test.yaml"),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("  ✓ a small refund"), "{text}");
    assert!(
        text.contains("test result: ok. 8 passed; 0 failed; 8 total"),
        "{text}"
    );
    assert!(
        text.contains("coverage: 4 of 5 rules decided at least one case (80.0%)"),
        "{text}"
    );
    assert!(
        text.contains("not reached: never_tested  tests/fixtures/writ-test/refunds.writ:27"),
        "{text}"
    );
    assert!(!text.contains("not reached: lookups"), "{text}");
}

#[test]
fn a_failing_case_shows_expected_actual_and_the_rules_considered() {
    let out = writ(&["test", &fixture("failing.test.yaml")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    for want in [
        "  ✓ passes",
        "  ✗ expects <allow> & gets deny (tests/fixtures/writ-test/failing.test.yaml:7:5)",
        r#"request:  {"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":40,"currency":"GBP"}}"#,
        "expected: allow by rule `refund_small`",
        "actual:   deny by no rule of policy `refunds`, risk medium",
        "mismatch: decision is deny, expected allow",
        "mismatch: rule is null, expected `refund_small`",
        "rules considered:",
        "condition `currency in [\"USD\", \"EUR\"]` failed (tests/fixtures/writ-test/refunds.writ:16:26): `currency` is the string \"GBP\"",
        "target `refund` matches none of `lookup_*` (tests/fixtures/writ-test/refunds.writ:11:36)",
        "no rule decided: the policy default is deny (tests/fixtures/writ-test/refunds.writ:4:11)",
        "test result: FAILED. 1 passed; 1 failed; 2 total",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn a_malformed_test_file_is_reported_with_locations_and_never_passes() {
    let out = writ(&["test", &fixture("malformed.test.yaml")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "malformed.test.yaml:3:1: error: unknown key `casez` in the test file; did you mean `cases`?",
        "malformed.test.yaml:7:25: error: unknown decision `maybe`",
        "malformed.test.yaml:9:59: error: bad request: malformed request: unknown request field `contxt`",
        "malformed.test.yaml:11:5: error: the case has no `name`",
        "malformed.test.yaml:12:13: error: `expect` must name a `decision`",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("at line 1 column"), "{err}");
    assert!(stdout(&out).contains("test result: FAILED."));

    let yaml = writ(&["test", &fixture("bad-yaml.test.yaml")]);
    assert_eq!(yaml.status.code(), Some(2));
    assert!(
        stderr(&yaml).contains("bad-yaml.test.yaml:3:11: error: not valid YAML"),
        "{}",
        stderr(&yaml)
    );
}

#[test]
fn bad_inputs_around_the_test_file_are_errors_not_passes() {
    let dir = std::env::temp_dir().join(format!("writ-test-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let case = "cases:\n  - name: a\n    request: { agent: a, action: x }\n    expect: { decision: deny }\n";
    let cases: [(&str, String, &str); 6] = [
        ("orphan.test.yaml", case.to_owned(), "names no `policies`"),
        (
            "missing.test.yaml",
            format!("policies: [nope.writ]\n{case}"),
            "policy file",
        ),
        ("empty.test.yaml", String::new(), "the test file is empty"),
        (
            "nocases.test.yaml",
            "policies: [p.writ]\ncases: []\n".to_owned(),
            "`cases` must be a non-empty list",
        ),
        (
            "badnow.test.yaml",
            format!("policies: [p.writ]\nnow: yesterday\n{case}"),
            "`now` must be an RFC 3339 time",
        ),
        (
            "broken-policy.test.yaml",
            format!("policies: [broken.writ]\n{case}"),
            "has errors; no case was run",
        ),
    ];
    std::fs::write(dir.join("p.writ"), "rule r: allow x\n").unwrap();
    std::fs::write(dir.join("broken.writ"), "rule r: allow\n").unwrap();
    for (name, text, want) in &cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = writ(&["test", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{name}: {}", stderr(&out));
    }
    // A directory without test files is an error too, not an empty pass.
    let empty = dir.join("none");
    std::fs::create_dir_all(&empty).unwrap();
    let out = writ(&["test", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no test files"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_selects_cases_by_name() {
    let out = writ(&["test", "--run", "large", &fixture("refunds.test.yaml")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1 passed; 0 failed; 1 total"), "{text}");
}

/// An element: its name, its attributes and its text content.
type Element = (String, Vec<(String, String)>, String);

/// A small XML well-formedness check: one root, balanced tags, quoted
/// attributes, escaped `<` and `&`, known entities. Returns the element
/// names with their attributes, in document order.
fn parse_xml(text: &str) -> Vec<Element> {
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let end = rest[i..].find(';').expect("unterminated entity") + i;
            let entity = &rest[i + 1..end];
            out.push(match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                e if e.starts_with('#') => char::from_u32(e[1..].parse().unwrap()).unwrap(),
                e => panic!("unknown entity &{e};"),
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
    let body = text
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut elements: Vec<Element> = Vec::new();
    let mut open_index: Vec<usize> = Vec::new();
    let mut rest = body;
    let mut roots = 0;
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let content = &rest[..lt];
        if stack.is_empty() {
            assert!(
                content.trim().is_empty(),
                "text outside the root: {content:?}"
            );
        } else if let Some(&i) = open_index.last() {
            elements[i].2.push_str(&unescape(content));
        }
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        let gt = rest.find('>').expect("unterminated tag");
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched close tag");
            open_index.pop();
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, mut attrs_text) = tag.split_once(' ').unwrap_or((tag, ""));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad element name {name:?}"
        );
        let mut attrs = Vec::new();
        loop {
            attrs_text = attrs_text.trim_start();
            if attrs_text.is_empty() {
                break;
            }
            let (key, after) = attrs_text
                .split_once("=\"")
                .expect("attribute without quotes");
            let close = after.find('"').expect("unterminated attribute");
            let value = &after[..close];
            assert!(!value.contains('<'), "raw < in attribute");
            attrs.push((key.to_owned(), unescape(value)));
            attrs_text = &after[close + 1..];
        }
        if stack.is_empty() {
            roots += 1;
        }
        elements.push((name.to_owned(), attrs, String::new()));
        if !self_closing {
            stack.push(name.to_owned());
            open_index.push(elements.len() - 1);
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    assert_eq!(roots, 1, "one root element");
    elements
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> &'a str {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map_or_else(|| panic!("no attribute {key}"), |(_, v)| v.as_str())
}

#[test]
fn junit_reports_are_well_formed_and_escaped() {
    let dir = std::env::temp_dir().join(format!("writ-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.xml");
    let out = writ(&[
        "test",
        "--junit",
        report.to_str().unwrap(),
        &fixture("failing.test.yaml"),
        &fixture("refunds.test.yaml"),
        &fixture("malformed.test.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let xml = std::fs::read_to_string(&report).unwrap();
    let elements = parse_xml(&xml);
    let (root, root_attrs, _) = &elements[0];
    assert_eq!(root, "testsuites");
    assert_eq!(attr(root_attrs, "failures"), "1");
    assert_eq!(attr(root_attrs, "errors"), "1");
    assert_eq!(attr(root_attrs, "tests"), "9");
    let suites: Vec<_> = elements.iter().filter(|e| e.0 == "testsuite").collect();
    assert_eq!(suites.len(), 3);
    let cases: Vec<_> = elements.iter().filter(|e| e.0 == "testcase").collect();
    assert_eq!(cases.len(), 9);
    let failing = cases
        .iter()
        .find(|c| attr(&c.1, "name") == "expects <allow> & gets deny")
        .expect("the failing case, its name unescaped back");
    assert_eq!(
        attr(&failing.1, "classname"),
        "tests/fixtures/writ-test/failing.test.yaml"
    );
    let failure = elements
        .iter()
        .find(|e| e.0 == "failure")
        .expect("a failure element");
    assert_eq!(
        attr(&failure.1, "message"),
        "decision is deny, expected allow"
    );
    assert!(failure.2.contains("expected: allow by rule `refund_small`"));
    assert!(failure.2.contains("refunds.writ:16:26"));
    let error = elements
        .iter()
        .find(|e| e.0 == "error")
        .expect("an error element");
    assert!(error.2.contains("unknown key `casez`"), "{}", error.2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plan_prints_a_table_with_totals() {
    let out = writ(&[
        "plan",
        &fixture("refunds.writ"),
        &fixture("requests.jsonl"),
        "--now",
        "2025-01-15T12:00:00Z",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "#  agent          action     target           decision  rule                risk"
    );
    assert_eq!(
        lines[3],
        "3  billing-agent  tool:call  refund           DENY      refund_large        high"
    );
    assert_eq!(
        lines[5],
        "5  billing-agent  model:use  gpt-4.1          DENY      -                   medium"
    );
    assert!(
        text.contains(
            "5 requests: 2 allow, 1 approve, 2 deny\nrisk: 1 low, 2 medium, 1 high, 1 critical"
        ),
        "{text}"
    );

    let json = writ(&[
        "plan",
        "--format",
        "json",
        &fixture("refunds.writ"),
        &fixture("requests.jsonl"),
    ]);
    assert_eq!(json.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(v["totals"]["requests"], 5);
    assert_eq!(v["totals"]["decisions"]["deny"], 2);
    assert_eq!(v["totals"]["risk"]["critical"], 1);
    assert_eq!(v["requests"][3]["decision"]["rule"], "delete_needs_human");
}

#[test]
fn plan_reports_a_malformed_line_and_fails() {
    let dir = std::env::temp_dir().join(format!("writ-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let requests = dir.join("r.jsonl");
    std::fs::write(
        &requests,
        "{\"agent\":\"a\",\"action\":\"tool:call\",\"target\":\"lookup_x\"}\n{\"agent\": 3}\n",
    )
    .unwrap();
    let out = writ(&["plan", &fixture("refunds.writ"), requests.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("r.jsonl:2: error: "),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("2 requests: 1 allow, 1 error"),
        "{}",
        stdout(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_explain_names_every_rule_and_why() {
    let out = writ(&[
        "eval",
        "--explain",
        &fixture("refunds.writ"),
        "--request",
        r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":500,"currency":"USD"},"at":"2025-01-15T12:00:00Z"}"#,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for want in [
        "decision: deny by rule `refund_large` of policy `refunds`, risk high: Refunds over $100 need a manager",
        "✗ lookups       tests/fixtures/writ-test/refunds.writ:11:1  target `refund` matches none of `lookup_*`",
        "✗ refund_small  tests/fixtures/writ-test/refunds.writ:14:1  condition `amount <= 100` failed (tests/fixtures/writ-test/refunds.writ:16:8): `amount` is `500`",
        "→ refund_large  tests/fixtures/writ-test/refunds.writ:19:1  applied: deny (decided)",
        "not looked at (an earlier rule decided under first-match): delete_needs_human, never_tested",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn explain_says_when_a_deny_applied_because_its_guard_cannot_be_judged() {
    let out = writ(&[
        "eval",
        "--explain",
        &fixture("refunds.writ"),
        "--request",
        r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":"500","currency":"USD"},"at":"2025-01-15T12:00:00Z"}"#,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for want in [
        "decision: deny by rule `refund_large`",
        "condition `amount <= 100` cannot be judged (tests/fixtures/writ-test/refunds.writ:16:8): `amount` is the string \"500\", not a number; an allow applies only when its condition holds",
        "applied: deny (decided), because its condition cannot be judged: `amount > 100` (tests/fixtures/writ-test/refunds.writ:21:8): `amount` is the string \"500\", not a number",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("`amount <= 100` failed"), "{text}");
}

/// Issue 20: a value's type is shown where it is why a condition failed,
/// and only there.
#[test]
fn explain_shows_a_values_type_when_the_type_is_why_a_condition_failed() {
    // The explanation of one request on examples/support.writ.
    let explain = |request: &str| {
        let out = writ(&[
            "eval",
            "--explain",
            "examples/support.writ",
            "--request",
            request,
        ]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        text
    };
    let cases: [(&str, &[&str]); 3] = [
        (
            r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":50,"currency":5},"at":"2025-01-15T15:00:00Z"}"#,
            // `in` on strings, given a number: false, and the type is why.
            &[
                "condition `currency in [\"USD\", \"EUR\"]` failed (examples/support.writ:48:26): `currency` is the number 5, not a string",
                "→ no rule decided",
            ],
        ),
        (
            r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":50,"currency":"GBP"},"at":"2025-01-15T15:00:00Z"}"#,
            // A number where numbers are meant: no type, the value is why.
            &[
                "condition `amount > 100` failed (examples/support.writ:53:8): `amount` is `50`\n",
                "`currency` is the string \"GBP\"\n",
            ],
        ),
        (
            r#"{"agent":"triage-agent","action":"tool:call","target":"delete_customer"}"#,
            // The default decision's reason names the rule the agent's
            // scope left out.
            &[
                "decision: deny by no rule of policy `support`, risk medium: rule `delete_needs_human` matches action `tool:call` on `delete_customer` but applies only to agents of tier `trusted` or `privileged`, and agent `triage-agent` is of tier `verified`; the policy default is deny",
            ],
        ),
    ];
    for (request, wants) in cases {
        let text = explain(request);
        for want in wants {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}

#[test]
fn explain_covers_ceilings_scopes_limits_and_deny_overrides() {
    let ceiling = writ(&[
        "eval",
        "--explain",
        "examples/support.writ",
        "--request",
        r#"{"agent":"billing-agent","action":"tool:call","target":"shell"}"#,
    ]);
    let text = stdout(&ceiling);
    assert!(
        text.contains("✗ ceiling (examples/support.writ:")
            && text.contains("tool `shell` is not in tools.allow of agent `billing-agent`; no rule was considered"),
        "{text}"
    );
    let scope = writ(&[
        "eval",
        "--explain",
        "examples/support.writ",
        "--request",
        r#"{"agent":"triage-agent","action":"tool:call","target":"delete_customer"}"#,
    ]);
    let text = stdout(&scope);
    assert!(
        text.contains("scope tiers: `verified` not in `trusted` (examples/support.writ:"),
        "{text}"
    );
    // Under deny-overrides every rule is looked at; the weaker ones are overridden.
    let overrides = writ(&[
        "eval",
        "--explain",
        "examples/deny-overrides.writ",
        "--request",
        r#"{"agent":"a","action":"tool:pay_invoice","context":{"environment":"production"}}"#,
    ]);
    let text = stdout(&overrides);
    assert_eq!(overrides.status.code(), Some(0), "{text}");
    assert!(!text.contains("not looked at"), "{text}");
    assert!(
        text.contains("✗ tools_allowed     examples/deny-overrides.writ:8:1  applied: allow, overridden by a stronger decision"),
        "{text}"
    );
    assert!(
        text.contains(
            "→ no_production     examples/deny-overrides.writ:13:1  applied: deny (decided)"
        ),
        "{text}"
    );
    // A rule's limit (2 per hour), reached on the third refund.
    let dir = std::env::temp_dir().join(format!("writ-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let requests = dir.join("r.jsonl");
    let refund = r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":1,"currency":"EUR"},"at":"2025-01-15T12:00:00Z"}"#;
    std::fs::write(&requests, format!("{refund}\n{refund}\n{refund}\n")).unwrap();
    let limit = writ(&[
        "eval",
        "--explain",
        &fixture("refunds.writ"),
        "--requests",
        requests.to_str().unwrap(),
    ]);
    let text = stdout(&limit);
    assert_eq!(
        text.matches("applied: allow (decided)").count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("→ refund_small  tests/fixtures/writ-test/refunds.writ:14:1  applied, but its limit `2/hour` is reached (tests/fixtures/writ-test/refunds.writ:17:"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_is_refused_for_bundles() {
    let out = writ(&[
        "eval",
        "--explain",
        "policy.wbundle",
        "--request",
        r#"{"agent":"a","action":"b"}"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--explain needs the policy files"));
}

/// The test file shown in `docs/testing.md` passes against `examples/support.writ`.
#[test]
fn the_documented_test_file_passes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/testing.md")).unwrap();
    let start = page
        .find("```yaml\n# support.test.yaml\n")
        .expect("the example");
    let body = &page[start + "```yaml\n".len()..];
    let body = &body[..body.find("```").unwrap()];
    let dir = std::env::temp_dir().join(format!("writ-doc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root.join("examples/support.writ"), dir.join("support.writ")).unwrap();
    std::fs::write(dir.join("support.test.yaml"), body).unwrap();
    let out = writ(&["test", dir.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("5 passed; 0 failed"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--run` leaves cases out of the report, not out of the run: the cases
/// before a selected one still count toward its limits, so it gets the
/// decision a full run gives it (the third refund of a two-per-hour limit
/// is refused whether or not the first two are selected).
#[test]
fn run_gives_selected_cases_the_results_of_a_full_run() {
    let full = writ(&["test", &fixture("limited.test.yaml")]);
    assert_eq!(full.status.code(), Some(0), "{}", stdout(&full));
    assert!(
        stdout(&full).contains("3 passed; 0 failed; 3 total"),
        "{}",
        stdout(&full)
    );
    let third = writ(&["test", "--run", "third", &fixture("limited.test.yaml")]);
    let text = stdout(&third);
    assert_eq!(third.status.code(), Some(0), "{text}");
    assert!(text.contains("1 passed; 0 failed; 1 total"), "{text}");
    assert!(!text.contains("first refund"), "{text}");
}
