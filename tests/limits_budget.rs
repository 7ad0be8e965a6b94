//! Bounded resources: the glob programs of a policy's patterns (E0209:
//! alternatives that make too many globs, a program or all of them over
//! their size limits) and the size of its text (E0002) are checked by the
//! driver, so `writ check`, the editor and `writ compile` give one
//! verdict, and every size limit can be raised through its environment
//! variable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use writ::{Cache, Limits, Source, compile_with};
use writ_diagnostics::Code;

fn writ(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_writ"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("WRIT_MAX_POLICY_SIZE")
        .env_remove("WRIT_AUTOMATON_LIMIT")
        .env_remove("WRIT_AUTOMATA_BUDGET")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_ne!(out.status.code(), Some(101), "writ panicked: {out:?}");
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("writ-budget-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Nine alternatives of two: 512 globs, over the 256 one pattern may
/// stand for.
const NINE: &str = "{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}{o,p}{q,r}";

/// 40 rules whose targets each make 512 globs.
fn blowup() -> String {
    let mut text = String::from("policy \"p\" {\n  default deny\n}\n");
    for i in 0..40 {
        text += &format!("rule r{i}: allow \"tool:call\" on \"{NINE}{i}*\"\n");
    }
    text
}

/// `writ check --format json`: the codes, and the first diagnostic.
fn check_json(path: &str, env: &[(&str, &str)]) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = writ(&["check", "--format", "json", path], env);
    let diags: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out.status.code(), diags)
}

fn codes(diags: &[serde_json::Value]) -> Vec<&str> {
    diags.iter().map(|d| d["code"].as_str().unwrap()).collect()
}

#[test]
fn check_and_compile_refuse_exploding_globs_with_one_code() {
    let path = temp("blowup.writ", &blowup());
    let path = path.to_str().unwrap();
    let (status, diags) = check_json(path, &[]);
    assert_eq!(status, Some(1));
    assert!(!diags.is_empty());
    assert!(codes(&diags).iter().all(|c| *c == "E0209"), "{diags:?}");
    let first = &diags[0];
    assert_eq!(first["line"], 4);
    assert_eq!(first["column"], 31, "the span of the pattern: {first}");
    let message = first["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("\"{NINE}0*\" of rule `r0` make 512 globs"))
            && message.contains("256"),
        "{message}"
    );
    assert!(
        first["help"]
            .as_str()
            .unwrap()
            .contains("split the pattern")
    );
    // Each pattern is refused where it is written.
    assert_eq!(diags.len(), 40);

    let bundle = temp("blowup.wbundle", "");
    std::fs::remove_file(&bundle).unwrap();
    let out = writ(&["compile", path, "-o", bundle.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("[E0209]"), "{err}");
    assert!(err.contains("no bundle written"), "{err}");
    assert!(!bundle.exists());
}

#[test]
fn one_exploding_glob_fails_check_not_only_compile() {
    let path = temp(
        "one.writ",
        "rule lookups: allow \"tool:call\" on \"lookup_?\"\n\
         rule long_ids: deny \"tool:call\" on \"{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}{o,p}{q,r}\"\n",
    );
    let (status, diags) = check_json(path.to_str().unwrap(), &[]);
    assert_eq!(status, Some(1));
    assert_eq!(codes(&diags), ["E0209"]);
    assert_eq!(diags[0]["line"], 2);
    assert!(
        diags[0]["message"]
            .as_str()
            .unwrap()
            .contains("rule `long_ids`")
    );
}

fn sources(text: &str) -> Vec<Source> {
    vec![Source {
        name: "p.writ".to_owned(),
        text: text.to_owned(),
    }]
}

fn error_codes(comp: &writ::Compilation) -> Vec<Code> {
    comp.diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.code)
        .collect()
}

/// Globs that need glob programs, some written twice, some ignoring case.
const SMALL: &str = "\
agent \"a\" {
  hosts allow [\"api.example.com\", \"*.internal.example.com\"]
  limit 10 requests per minute on \"tool:{read,list}\"
}
rule lookups: allow \"tool:call\" on [\"lookup_?\", \"report_[0-9]\"]
rule again: allow \"tool:call\" on \"lookup_?\" when path matches \"/srv/*/x?\"
rule net: allow \"net:connect\" on hosts \"API.example.com\"
rule plain: allow \"tool:call\" on [\"exact\", \"pre*\", \"*suf\", \"*\"]
";

#[test]
fn a_policy_at_the_budget_edge_passes_and_a_byte_less_is_refused() {
    let roomy = Limits {
        programs: usize::MAX,
        ..Limits::default()
    };
    let comp = compile_with(&mut Cache::with_limits(roomy), &sources(SMALL), None);
    assert!(!comp.has_errors(), "{:?}", comp.diagnostics);
    let total = comp.programs.total();
    assert!(total > 0);

    let edge = Limits {
        programs: total,
        ..Limits::default()
    };
    let comp = compile_with(&mut Cache::with_limits(edge), &sources(SMALL), None);
    assert!(comp.checked_set().is_some(), "{:?}", comp.diagnostics);
    let bytes = writ::bundle::compile_with(
        comp.checked_set().unwrap(),
        &comp.owned_sources(),
        None,
        &comp.programs,
    )
    .unwrap();
    writ_runtime::Runtime::from_bytes(&bytes).unwrap();

    let under = Limits {
        programs: total - 1,
        ..Limits::default()
    };
    let comp = compile_with(&mut Cache::with_limits(under), &sources(SMALL), None);
    assert_eq!(error_codes(&comp), [Code::PatternTooBig]);
    assert!(comp.checked_set().is_none());
    // The bundle compiler holds the same line on a set checked elsewhere.
    let set = compile_with(&mut Cache::with_limits(roomy), &sources(SMALL), None)
        .set
        .unwrap();
    let err = writ::bundle::compile_with(
        &set,
        &sources(SMALL),
        None,
        &writ::bundle::Programs::new(under),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            writ::bundle::CompileError::PatternTooBig { .. }
                | writ::bundle::CompileError::BudgetExceeded { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("E0209"), "{err}");

    // The same through the CLI and the environment variable.
    let path = temp("small.writ", SMALL);
    let path = path.to_str().unwrap();
    let bundle = temp("small.wbundle", "");
    let at = total.to_string();
    let below = (total - 1).to_string();
    for cmd in [
        vec!["check", path],
        vec!["compile", path, "-o", bundle.to_str().unwrap()],
    ] {
        let ok = writ(&cmd, &[("WRIT_AUTOMATA_BUDGET", &at)]);
        assert_eq!(ok.status.code(), Some(0), "{cmd:?}: {}", stderr(&ok));
        let refused = writ(&cmd, &[("WRIT_AUTOMATA_BUDGET", &below)]);
        assert_eq!(refused.status.code(), Some(1), "{cmd:?}");
        assert!(stderr(&refused).contains("[E0209]"), "{}", stderr(&refused));
        assert!(stderr(&refused).contains("over the budget"));
    }
}

/// Rules whose glob programs take some 2.1 MiB each (256 variants of a
/// literal of 8,600 characters): seven fit in the default budget of
/// 16 MiB, an eighth does not.
fn big_globs(n: usize) -> String {
    let long = "x".repeat(8_600);
    (0..n)
        .map(|i| {
            format!("rule r{i}: allow \"tool:call\" on \"{{a,b}}{{c,d}}{{e,f}}{{g,h}}{{i,j}}{{k,l}}{{m,n}}{{o,p}}{i}{long}*\"\n")
        })
        .collect()
}

#[test]
fn the_default_budget_holds_seven_big_programs_not_eight() {
    let comp = writ::compile(&sources(&big_globs(7)), None);
    assert!(!comp.has_errors(), "{:?}", comp.diagnostics);
    let total = comp.programs.total();
    assert!(
        total > 14 << 20 && total <= writ::bundle::PROGRAMS_BUDGET,
        "{total}"
    );
    let comp = writ::compile(&sources(&big_globs(8)), None);
    assert_eq!(error_codes(&comp), [Code::PatternTooBig]);
    let d = &comp.diagnostics[0];
    assert!(d.message.contains("16 MiB"), "{}", d.message);
    assert!(d.message.contains("rule `r7`"), "{}", d.message);
}

#[test]
fn the_editor_cache_builds_each_program_once_and_agrees() {
    let mut cache = Cache::default();
    let first = compile_with(&mut cache, &sources(SMALL), None);
    let again = compile_with(&mut cache, &sources(SMALL), None);
    assert_eq!(first.diagnostics, again.diagnostics);
    assert_eq!(first.programs.total(), again.programs.total());
    // Distinct (text, case) pairs: lookup_?, report_[0-9], /srv/*/x?,
    // tool:{read,list}, and three host patterns.
    assert_eq!(again.programs.len(), 7);
    // An edit that drops a rule forgets its programs; one that adds an
    // exploding glob is refused as from scratch.
    let edited = SMALL.replace(
        "rule again",
        &format!("rule bad: deny \"x\" on \"{NINE}\"\nrule again"),
    );
    let cached = compile_with(&mut cache, &sources(&edited), None);
    let fresh = writ::compile(&sources(&edited), None);
    assert_eq!(cached.diagnostics, fresh.diagnostics);
    assert_eq!(error_codes(&cached), [Code::PatternTooBig]);
}

#[test]
fn a_policy_over_the_size_limit_is_not_read() {
    let text = String::new() + &"rule r: allow \"tool:call\" on \"lookup_*\"\n".repeat(100);
    let small = Limits {
        source: 1024,
        ..Limits::default()
    };
    let comp = compile_with(&mut Cache::with_limits(small), &sources(&text), None);
    assert_eq!(error_codes(&comp), [Code::PolicyTooLarge]);
    assert!(comp.set.is_none());

    let path = temp("large.writ", &text.replace("rule r:", "rule"));
    let path = path.to_str().unwrap();
    let (status, diags) = check_json(path, &[("WRIT_MAX_POLICY_SIZE", "1KiB")]);
    assert_eq!(status, Some(1));
    assert_eq!(codes(&diags), ["E0002"]);
    assert!(
        diags[0]["help"]
            .as_str()
            .unwrap()
            .contains("WRIT_MAX_POLICY_SIZE")
    );
    let out = writ(
        &["compile", path, "-o", "/dev/null"],
        &[("WRIT_MAX_POLICY_SIZE", "1KiB")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("[E0002]"));
    let (status, _) = check_json(path, &[("WRIT_MAX_POLICY_SIZE", "64 KiB")]);
    assert_eq!(status, Some(0));
}

#[test]
fn a_limit_set_to_nonsense_is_an_error() {
    let path = temp("fine.writ", SMALL);
    let (status, diags) = check_json(path.to_str().unwrap(), &[("WRIT_AUTOMATA_BUDGET", "lots")]);
    assert_eq!(status, Some(1));
    assert_eq!(codes(&diags), ["E0209"]);
    assert!(diags[0]["message"].as_str().unwrap().contains("`lots`"));
}

#[test]
fn sizes_parse_and_print() {
    assert_eq!(writ::parse_size("1048576"), Some(1 << 20));
    assert_eq!(writ::parse_size("64MiB"), Some(64 << 20));
    assert_eq!(writ::parse_size("512 kb"), Some(512 << 10));
    assert_eq!(writ::parse_size("2G"), Some(2 << 30));
    assert_eq!(writ::parse_size("1.5MiB"), None);
    assert_eq!(writ::parse_size(""), None);
    assert_eq!(writ::parse_size("MiB"), None);
    assert_eq!(writ::parse_size("99999999999999999999"), None);
    assert_eq!(writ::bundle::size(4 << 20), "4 MiB");
    assert_eq!(writ::bundle::size(1536), "1.5 KiB");
    assert_eq!(writ::bundle::size(10), "10 bytes");
}
