//! `writ test`: policy unit tests, table-driven, in YAML next to policies.
//!
//! A test file (`NAME.test.yaml`, or the older `NAME.decisions.yaml`) names
//! its policy files (by default the policy next to it with the same stem)
//! and lists cases: a request and the decision expected. Cases run in order
//! against one evaluator, so limits carry from case to case as in
//! `writ eval --requests`; `isolated: true` gives every case a fresh one.
//! The file is read through writ's YAML tree, so every problem in it is
//! reported with file, line and column, and a file that cannot be read
//! never passes. The format is documented in `docs/testing.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use writ::engine::SourceEngine;
use writ::testfile::Expect;
use writ_eval::{Explanation, Step};

use super::eval::{steps, summary};
use super::print_diagnostics;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test files, or directories searched (recursively) for
    /// `*.test.yaml` and `*.decisions.yaml`. Default: the current directory.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Also list every rule that decided no case, with its location, and
    /// the share of rules that did.
    #[arg(long)]
    pub coverage: bool,
    /// Write a JUnit XML report to FILE (for CI systems).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Run only the cases whose name contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub run: Option<String>,
}

/// The result of one case.
struct CaseResult {
    name: String,
    at: String,
    time: Duration,
    failure: Option<String>,
}

/// The result of one test file.
struct SuiteResult {
    display: String,
    cases: Vec<CaseResult>,
    /// Set when the file or its policy could not be used.
    error: Option<String>,
    time: Duration,
}

/// A rule of a tested policy, for coverage: where it is, and whether it decided a case.
struct Covered {
    file: String,
    line: u32,
    name: String,
    reached: bool,
}

pub fn run(args: &Args) -> ExitCode {
    let started = Instant::now();
    let roots = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    let mut unusable = false;
    for root in &roots {
        if root.is_dir() {
            let before = files.len();
            find(root, &mut files);
            if files.len() == before {
                eprintln!(
                    "error: no test files (`*.test.yaml`, `*.decisions.yaml`) under `{}`",
                    root.display()
                );
                unusable = true;
            }
        } else {
            files.push(root.clone());
        }
    }
    let mut results = Vec::new();
    let mut coverage: Vec<Covered> = Vec::new();
    for file in &files {
        let result = run_file(file, args, &mut coverage);
        if let Some(e) = &result.error {
            eprintln!("{e}");
            unusable = true;
        }
        results.push(result);
    }
    let passed = results
        .iter()
        .flat_map(|r| &r.cases)
        .filter(|c| c.failure.is_none())
        .count();
    let failed = results
        .iter()
        .flat_map(|r| &r.cases)
        .filter(|c| c.failure.is_some())
        .count();
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let elapsed = started.elapsed();
    let verdict = if failed == 0 && !unusable {
        "ok"
    } else {
        "FAILED"
    };
    let mut line = format!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; {} total",
        passed + failed
    );
    if errors > 0 {
        let _ = write!(line, "; {errors} unusable test file(s)");
    }
    let _ = write!(line, "; {} file(s) in {}", results.len(), seconds(elapsed));
    outln!("{line}");
    if args.coverage {
        print_coverage(&coverage);
    }
    if let Some(path) = &args.junit {
        let xml = junit(&results, elapsed);
        if let Err(e) = std::fs::write(path, xml) {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if unusable {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn seconds(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// Test files under a directory, sorted, skipping hidden directories and `target`.
fn find(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if p.is_dir() {
            if !name.starts_with('.') && name != "target" {
                find(&p, out);
            }
        } else if writ::inputs::is_test_file(&name) {
            out.push(p);
        }
    }
}

fn print_coverage(coverage: &[Covered]) {
    let total = coverage.len();
    let reached = coverage.iter().filter(|c| c.reached).count();
    #[expect(clippy::cast_precision_loss, reason = "rule counts are far below 2^52")]
    let share = if total == 0 {
        100.0
    } else {
        reached as f64 * 100.0 / total as f64
    };
    outln!("\ncoverage: {reached} of {total} rules decided at least one case ({share:.1}%)");
    let width = coverage
        .iter()
        .filter(|c| !c.reached)
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    for c in coverage.iter().filter(|c| !c.reached) {
        outln!("  not reached: {:<width$}  {}:{}", c.name, c.file, c.line);
    }
}

/// Reads, runs and prints one test file.
fn run_file(path: &Path, args: &Args, coverage: &mut Vec<Covered>) -> SuiteResult {
    let started = Instant::now();
    let display = path.display().to_string();
    let unusable = |error: String| SuiteResult {
        display: display.clone(),
        cases: Vec::new(),
        error: Some(error),
        time: started.elapsed(),
    };
    let suite = match writ::testfile::read(path) {
        Ok(s) => s,
        Err(errors) => {
            let text = errors
                .iter()
                .map(|e| format!("{}: error: {}", e.at, e.message))
                .collect::<Vec<_>>()
                .join("\n");
            return unusable(text);
        }
    };
    let comp = writ::compile_files(&suite.policies, suite.dialect);
    // Warnings are `writ check`'s business; errors explain why nothing ran.
    if comp.has_errors() {
        print_diagnostics(&comp, false);
    }
    let Some(set) = comp.checked_set() else {
        return unusable(format!(
            "{display}: error: the policy ({}) has errors; no case was run",
            suite
                .policies
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    // Rules are keyed by file and name, so two test files of one policy add up.
    let mut rule_files = std::collections::HashMap::new();
    for rule in &set.rules {
        let (file, line) = comp
            .sources
            .location(rule.span)
            .map_or_else(|| ("?".to_owned(), 0), |(f, lc)| (f, lc.line));
        if !coverage
            .iter()
            .any(|c| c.file == file && c.name == rule.name.value)
        {
            coverage.push(Covered {
                file: file.clone(),
                line,
                name: rule.name.value.clone(),
                reached: false,
            });
        }
        rule_files.insert(rule.name.value.clone(), file);
    }
    let names: Vec<String> = suite
        .policies
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    outln!("{display} ({})", names.join(", "));
    let now = suite.now.unwrap_or_else(jiff::Timestamp::now);
    // The runtime decides (what agents run); the reference evaluator
    // explains, and a difference between them fails the case.
    let mut eval = match SourceEngine::new(set, &comp) {
        Ok(e) => e,
        Err(e) => {
            return SuiteResult {
                display,
                cases: Vec::new(),
                error: Some(e.to_string()),
                time: started.elapsed(),
            };
        }
    };
    let mut results = Vec::new();
    for case in &suite.cases {
        if suite.isolated
            && let Err(e) = eval.reset()
        {
            return SuiteResult {
                display,
                cases: results,
                error: Some(e.to_string()),
                time: started.elapsed(),
            };
        }
        // A case `--run` leaves out is still decided, by both engines and
        // unreported: its allowed decisions count toward the limits of the
        // cases after it, so each selected case gets the decision it gets in
        // a full run.
        if args.run.as_ref().is_some_and(|r| !case.name.contains(r)) {
            for _ in 0..case.repeat {
                let _ = eval.explain(&case.request, now);
            }
            continue;
        }
        let case_started = Instant::now();
        let mut failure = None;
        for run in 1..=case.repeat {
            let (decision, why, disagreement) = eval.explain(&case.request, now);
            if let Some(rule) = decided_rule(&why)
                && let Some(file) = rule_files.get(rule)
                && let Some(c) = coverage
                    .iter_mut()
                    .find(|c| c.name == rule && c.file == *file)
            {
                c.reached = true;
            }
            let mismatch = case.expect.mismatches(&decision);
            if failure.is_none() && (mismatch.is_some() || disagreement.is_some()) {
                let mismatch = mismatch.unwrap_or_default();
                let mut text = String::new();
                if case.repeat > 1 {
                    let _ = writeln!(text, "run {run} of {}", case.repeat);
                }
                let _ = writeln!(text, "request:  {}", case.request_text);
                let _ = writeln!(text, "expected: {}", expected_text(&case.expect));
                let _ = writeln!(text, "actual:   {}", summary(&decision));
                for m in &mismatch {
                    let _ = writeln!(text, "mismatch: {m}");
                }
                if let Some(d) = &disagreement {
                    let _ = writeln!(text, "error: {d}");
                }
                let _ = writeln!(text, "rules considered:");
                text.push_str(&steps(&why, &comp.sources, "  "));
                failure = Some(text);
            }
        }
        match &failure {
            None => outln!("  ✓ {}", case.name),
            Some(text) => {
                outln!("  ✗ {} ({})", case.name, case.at);
                for line in text.lines() {
                    outln!("      {line}");
                }
            }
        }
        results.push(CaseResult {
            name: case.name.clone(),
            at: case.at.clone(),
            time: case_started.elapsed(),
            failure,
        });
    }
    SuiteResult {
        display,
        cases: results,
        error: None,
        time: started.elapsed(),
    }
}

/// The rule that decided, according to the explanation.
fn decided_rule(why: &Explanation) -> Option<&str> {
    why.steps.iter().find_map(|s| match s {
        Step::Rule(r) if r.decided => Some(r.name.as_str()),
        _ => None,
    })
}

fn expected_text(e: &Expect) -> String {
    let mut parts = Vec::new();
    if let Some(d) = e.decision {
        parts.push(d.to_string());
    }
    match &e.rule {
        Some(Some(r)) => parts.push(format!("by rule `{r}`")),
        Some(None) => parts.push("by no rule".to_owned()),
        None => {}
    }
    let mut text = parts.join(" ");
    match &e.policy {
        Some(Some(p)) => {
            let _ = write!(text, ", policy `{p}`");
        }
        Some(None) => text.push_str(", no policy"),
        None => {}
    }
    match &e.risk {
        Some(Some(r)) => {
            let _ = write!(text, ", risk {r}");
        }
        Some(None) => text.push_str(", no risk"),
        None => {}
    }
    match &e.retry_after_s {
        Some(Some(s)) => {
            let _ = write!(text, ", retry after {s}s");
        }
        Some(None) => text.push_str(", no retry time"),
        None => {}
    }
    match &e.reason {
        Some(Some(r)) => {
            let _ = write!(text, ": {r}");
        }
        Some(None) => text.push_str(", no reason"),
        None => {}
    }
    if let Some(r) = &e.reason_contains {
        let _ = write!(text, ", reason containing `{r}`");
    }
    text
}

/// JUnit XML: `testsuites` > `testsuite` per file > `testcase` per case,
/// with `failure` (a mismatch) or `error` (an unusable file).
fn junit(results: &[SuiteResult], elapsed: Duration) -> String {
    let tests: usize = results
        .iter()
        .map(|r| r.cases.len() + usize::from(r.error.is_some()))
        .sum();
    let failures = results
        .iter()
        .flat_map(|r| &r.cases)
        .filter(|c| c.failure.is_some())
        .count();
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"writ test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.6}\">",
        elapsed.as_secs_f64()
    );
    for r in results {
        let suite_failures = r.cases.iter().filter(|c| c.failure.is_some()).count();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{suite_failures}\" errors=\"{}\" skipped=\"0\" time=\"{:.6}\">",
            attr(&r.display),
            r.cases.len() + usize::from(r.error.is_some()),
            usize::from(r.error.is_some()),
            r.time.as_secs_f64()
        );
        if let Some(e) = &r.error {
            let _ = writeln!(
                x,
                "    <testcase name=\"(test file)\" classname=\"{}\" time=\"0\">\n      <error message=\"the test file cannot be used\" type=\"input\">{}</error>\n    </testcase>",
                attr(&r.display),
                escape(e)
            );
        }
        for c in &r.cases {
            let _ = write!(
                x,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" time=\"{:.6}\"",
                attr(&c.name),
                attr(&r.display),
                attr(&c.at),
                c.time.as_secs_f64()
            );
            match &c.failure {
                None => x.push_str("/>\n"),
                Some(f) => {
                    let first = f
                        .lines()
                        .find(|l| l.starts_with("mismatch: "))
                        .map_or("the decision differs", |l| {
                            l.trim_start_matches("mismatch: ")
                        });
                    let _ = writeln!(
                        x,
                        ">\n      <failure message=\"{}\" type=\"mismatch\">{}</failure>\n    </testcase>",
                        attr(first),
                        escape(f)
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// Escapes text for an XML attribute (line breaks and tabs as character
/// references, so they survive attribute normalization).
fn attr(s: &str) -> String {
    escape_xml(s, true)
}

/// Escapes text for XML element content.
fn escape(s: &str) -> String {
    escape_xml(s, false)
}

/// Characters XML 1.0 cannot hold (most control characters) become `?`.
fn escape_xml(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' if attribute => {
                let _ = write!(out, "&#{};", u32::from(ch));
            }
            '\n' | '\t' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{attr, escape};

    #[test]
    fn escape_handles_markup_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;?\n"
        );
        assert_eq!(attr("a\nb"), "a&#10;b");
    }
}
