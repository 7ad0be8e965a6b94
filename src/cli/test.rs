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
use writ::inputs::TEST_SUFFIXES as SUFFIXES;
use writ_diagnostics::{FileId, SourceFile, Span};
use writ_eval::{Decision, Explanation, Request, Step};
use writ_ir::{Dialect, Effect, Risk};
use writ_yaml::tree::{Kind, Node};

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

/// A problem with a test file: where, and what.
struct InputError {
    at: String,
    message: String,
}

/// One test file, read.
struct Suite {
    policies: Vec<PathBuf>,
    dialect: Option<Dialect>,
    now: Option<jiff::Timestamp>,
    isolated: bool,
    cases: Vec<Case>,
}

struct Case {
    name: String,
    at: String,
    request: Request,
    request_text: String,
    repeat: u32,
    expect: Expect,
}

/// What a case expects. `Some(None)` is an explicit `null`: the decision
/// must not carry the field (e.g. `rule: null`: no rule decided).
#[derive(Default)]
struct Expect {
    decision: Option<Effect>,
    rule: Option<Option<String>>,
    policy: Option<Option<String>>,
    reason: Option<Option<String>>,
    reason_contains: Option<String>,
    risk: Option<Option<Risk>>,
    retry_after_s: Option<Option<u64>>,
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
    let suite = match read_suite(path) {
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
            let mismatch = compare(&case.expect, &decision);
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

/// How the decision differs from the expectation; `None` when it does not.
fn compare(e: &Expect, d: &Decision) -> Option<Vec<String>> {
    fn opt<T: std::fmt::Display>(v: Option<&T>) -> String {
        v.map_or_else(|| "null".to_owned(), |v| format!("`{v}`"))
    }
    let mut out = Vec::new();
    if let Some(want) = e.decision
        && want != d.effect
    {
        out.push(format!("decision is {}, expected {want}", d.effect));
    }
    if let Some(want) = &e.rule
        && *want != d.rule
    {
        out.push(format!(
            "rule is {}, expected {}",
            opt(d.rule.as_ref()),
            opt(want.as_ref())
        ));
    }
    if let Some(want) = &e.policy
        && *want != d.policy
    {
        out.push(format!(
            "policy is {}, expected {}",
            opt(d.policy.as_ref()),
            opt(want.as_ref())
        ));
    }
    if let Some(want) = &e.reason
        && *want != d.reason
    {
        out.push(format!(
            "reason is {}, expected {}",
            opt(d.reason.as_ref()),
            opt(want.as_ref())
        ));
    }
    if let Some(want) = &e.reason_contains
        && !d.reason.as_ref().is_some_and(|r| r.contains(want.as_str()))
    {
        out.push(format!(
            "reason is {}, expected it to contain `{want}`",
            opt(d.reason.as_ref())
        ));
    }
    if let Some(want) = &e.risk
        && *want != d.risk
    {
        out.push(format!(
            "risk is {}, expected {}",
            opt(d.risk.as_ref()),
            opt(want.as_ref())
        ));
    }
    if let Some(want) = &e.retry_after_s
        && *want != d.retry_after_s
    {
        out.push(format!(
            "retry_after_s is {}, expected {}",
            opt(d.retry_after_s.as_ref()),
            opt(want.as_ref())
        ));
    }
    (!out.is_empty()).then_some(out)
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

// ---- reading test files ----

/// Reads a test file, collecting every problem in it.
fn read_suite(path: &Path) -> Result<Suite, Vec<InputError>> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![InputError {
            at: display.clone(),
            message: format!("cannot read the test file: {e}"),
        }]
    })?;
    let source = SourceFile::new(display.clone(), text);
    let mut r = Reader {
        source: &source,
        errors: Vec::new(),
    };
    let root = match writ_yaml::tree::parse(FileId(0), &source) {
        Ok(Some(root)) => root,
        Ok(None) => {
            return Err(vec![InputError {
                at: format!("{display}:1:1"),
                message: "the test file is empty; it needs `cases`".to_owned(),
            }]);
        }
        Err(d) => {
            let at = d
                .labels
                .first()
                .map_or_else(|| format!("{display}:1:1"), |l| r.at(l.span));
            return Err(vec![InputError {
                at,
                message: format!("not valid YAML: {}", d.message),
            }]);
        }
    };
    let suite = r.suite(path, &root);
    if r.errors.is_empty()
        && let Some(suite) = suite
    {
        Ok(suite)
    } else {
        Err(r.errors)
    }
}

struct Reader<'s> {
    source: &'s SourceFile,
    errors: Vec<InputError>,
}

const FILE_KEYS: [&str; 5] = ["policies", "dialect", "now", "isolated", "cases"];
const CASE_KEYS: [&str; 4] = ["name", "request", "repeat", "expect"];
const EXPECT_KEYS: [&str; 7] = [
    "decision",
    "rule",
    "policy",
    "reason",
    "reason_contains",
    "risk",
    "retry_after_s",
];

impl Reader<'_> {
    fn at(&self, span: Span) -> String {
        let lc = self.source.line_col(span.start);
        format!("{}:{}:{}", self.source.name(), lc.line, lc.column)
    }

    fn error(&mut self, span: Span, message: String) {
        let at = self.at(span);
        self.errors.push(InputError { at, message });
    }

    /// Checks that `node` is a mapping with only `allowed` keys.
    fn map<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<&'n [(writ_yaml::tree::Key, Node)]> {
        let Some(map) = node.as_map() else {
            self.error(
                node.span,
                format!("{what} must be a mapping, found {}", node.type_name()),
            );
            return None;
        };
        for (k, _) in map {
            if !allowed.contains(&k.text.as_str()) {
                let help = writ_diagnostics::did_you_mean_or_list(&k.text, allowed, "the keys are");
                self.error(
                    k.span,
                    format!("unknown key `{}` in {what}; {help}", k.text),
                );
            }
        }
        Some(map)
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.error(
                    node.span,
                    format!("{what} must be a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A string, or `null` for "must be absent".
    fn nullable(&mut self, node: &Node, what: &str) -> Option<Option<String>> {
        match &node.kind {
            Kind::Null => Some(None),
            Kind::Str(s) => Some(Some(s.clone())),
            _ => {
                self.error(
                    node.span,
                    format!(
                        "{what} must be a string or null, found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }

    fn suite(&mut self, path: &Path, root: &Node) -> Option<Suite> {
        let map = self.map(root, "the test file", &FILE_KEYS)?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut policies = Vec::new();
        match root.get("policies") {
            Some(node) => match &node.kind {
                Kind::Seq(items) if !items.is_empty() => {
                    for item in items {
                        if let Some(p) = self.string(item, "a policy file") {
                            let file = dir.join(&p);
                            if !file.is_file() {
                                self.error(
                                    item.span,
                                    format!("policy file `{}` does not exist", file.display()),
                                );
                            }
                            policies.push(file);
                        }
                    }
                }
                Kind::Str(p) => policies.push(dir.join(p)),
                _ => self.error(
                    node.span,
                    "`policies` must be a non-empty list of policy files, relative to the test file"
                        .to_owned(),
                ),
            },
            None => match default_policy(path) {
                Ok(p) => policies.push(p),
                Err(message) => self.error(Span::file_start(FileId(0)), message),
            },
        }
        let dialect = root.get("dialect").and_then(|node| {
            let text = self.string(node, "`dialect`")?;
            let d = Dialect::parse(&text);
            if d.is_none() {
                self.error(
                    node.span,
                    format!(
                        "unknown dialect `{text}`; the dialects are `writ`, `meshguard`, `aegis`, `sekuire`"
                    ),
                );
            }
            d
        });
        let now = root.get("now").and_then(|node| {
            let text = self.string(node, "`now`")?;
            match text.parse::<jiff::Timestamp>() {
                Ok(t) => Some(t),
                Err(e) => {
                    self.error(
                        node.span,
                        format!(
                            "`now` must be an RFC 3339 time such as `2025-01-15T12:00:00Z`: {e}"
                        ),
                    );
                    None
                }
            }
        });
        let isolated = match root.get("isolated").map(|n| (&n.kind, n.span)) {
            None => false,
            Some((Kind::Bool(b), _)) => *b,
            Some((_, span)) => {
                self.error(span, "`isolated` must be true or false".to_owned());
                false
            }
        };
        let mut cases = Vec::new();
        match map.iter().find(|(k, _)| k.text == "cases") {
            None => self.error(
                root.span,
                "the test file has no `cases`; add a list of cases, each with `name`, `request` and `expect`".to_owned(),
            ),
            Some((_, node)) => match &node.kind {
                Kind::Seq(items) if !items.is_empty() => {
                    for item in items {
                        if let Some(case) = self.case(item) {
                            cases.push(case);
                        }
                    }
                }
                _ => self.error(
                    node.span,
                    format!(
                        "`cases` must be a non-empty list, found {}",
                        node.type_name()
                    ),
                ),
            },
        }
        Some(Suite {
            policies,
            dialect,
            now,
            isolated,
            cases,
        })
    }

    fn case(&mut self, node: &Node) -> Option<Case> {
        self.map(node, "a case", &CASE_KEYS)?;
        let at = self.at(node.span);
        let name = match node.get("name") {
            Some(n) => self.string(n, "a case's `name`"),
            None => {
                self.error(node.span, "the case has no `name`".to_owned());
                None
            }
        };
        let request = match node.get("request") {
            Some(n) => self.request(n),
            None => {
                self.error(node.span, "the case has no `request`".to_owned());
                None
            }
        };
        let repeat = match node.get("repeat").map(|n| (&n.kind, n.span)) {
            None => Some(1),
            Some((Kind::Int(n), _)) if (1..=100_000).contains(n) => u32::try_from(*n).ok(),
            Some((_, span)) => {
                self.error(
                    span,
                    "`repeat` must be a whole number from 1 to 100000".to_owned(),
                );
                None
            }
        };
        let expect = match node.get("expect") {
            Some(n) => self.expect(n),
            None => {
                self.error(
                    node.span,
                    "the case has no `expect`; add e.g. `expect: { decision: allow }`".to_owned(),
                );
                None
            }
        };
        let (request, request_text) = request?;
        Some(Case {
            name: name?,
            at,
            request,
            request_text,
            repeat: repeat?,
            expect: expect?,
        })
    }

    /// A request: the same fields as `writ eval` reads in JSON.
    fn request(&mut self, node: &Node) -> Option<(Request, String)> {
        let Some(map) = node.as_map() else {
            self.error(
                node.span,
                format!(
                    "`request` must be a mapping (agent, action, target, context, ...), found {}",
                    node.type_name()
                ),
            );
            return None;
        };
        let json = match to_json(node) {
            Ok(_) => json_text(node),
            Err((span, message)) => {
                self.error(span, message);
                return None;
            }
        };
        match Request::from_json(&json) {
            Ok(req) => Some((req, json)),
            Err(e) => {
                // Point at the field the message is about, when it names
                // one; the JSON position in the message is of the JSON made
                // from the YAML, so it goes.
                let message = e
                    .message
                    .rfind(" at line ")
                    .map_or(e.message.as_str(), |i| {
                        e.message.get(..i).unwrap_or(&e.message)
                    });
                let span = map
                    .iter()
                    .find(|(k, _)| message.contains(&format!("field `{}`", k.text)))
                    .or_else(|| {
                        map.iter()
                            .find(|(k, _)| message.contains(&format!("`{}`", k.text)))
                    })
                    .map_or(node.span, |(k, _)| k.span);
                self.error(span, format!("bad request: {message}"));
                None
            }
        }
    }

    fn expect(&mut self, node: &Node) -> Option<Expect> {
        let map = self.map(node, "`expect`", &EXPECT_KEYS)?;
        let mut e = Expect::default();
        let before = self.errors.len();
        for (k, v) in map {
            match k.text.as_str() {
                "decision" => {
                    let text = self.string(v, "`decision`");
                    e.decision = text.as_deref().and_then(Effect::parse);
                    if let (Some(t), None) = (&text, e.decision) {
                        self.error(
                            v.span,
                            format!("unknown decision `{t}`; the decisions are `allow`, `deny`, `approve`"),
                        );
                    }
                }
                "rule" => e.rule = self.nullable(v, "`rule`"),
                "policy" => e.policy = self.nullable(v, "`policy`"),
                "reason" => e.reason = self.nullable(v, "`reason`"),
                "reason_contains" => e.reason_contains = self.string(v, "`reason_contains`"),
                "risk" => match self.nullable(v, "`risk`") {
                    Some(None) => e.risk = Some(None),
                    Some(Some(t)) => match Risk::parse(&t) {
                        Some(r) => e.risk = Some(Some(r)),
                        None => self.error(
                            v.span,
                            format!(
                                "unknown risk `{t}`; the risks are `low`, `medium`, `high`, `critical`"
                            ),
                        ),
                    },
                    None => {}
                },
                "retry_after_s" => match &v.kind {
                    Kind::Null => e.retry_after_s = Some(None),
                    Kind::Int(n) if *n >= 0 => e.retry_after_s = u64::try_from(*n).ok().map(Some),
                    _ => self.error(
                        v.span,
                        "`retry_after_s` must be a whole number of seconds or null".to_owned(),
                    ),
                },
                _ => {}
            }
        }
        if node.get("decision").is_none() {
            self.error(
                node.span,
                "`expect` must name a `decision` (allow, deny or approve)".to_owned(),
            );
        }
        (self.errors.len() == before).then_some(e)
    }
}

/// The policy a test file tests when it names none: the file next to it
/// with the same stem, `.writ` first, then `.yaml`, `.yml`.
fn default_policy(path: &Path) -> Result<PathBuf, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name.trim_end_matches(".yaml").trim_end_matches(".yml"));
    let tried: Vec<PathBuf> = ["writ", "yaml", "yml"]
        .iter()
        .map(|ext| path.with_file_name(format!("{stem}.{ext}")))
        .collect();
    tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        format!(
            "the test file names no `policies` and there is no {} next to it; add `policies: [FILE, ...]`",
            tried
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// A YAML node as JSON text with keys in the order written (whatever
/// serde_json's map order), for messages and [`Request::from_json`]. Call
/// [`to_json`] first: it rejects what JSON cannot hold.
fn json_text(node: &Node) -> String {
    match &node.kind {
        Kind::Null => "null".to_owned(),
        Kind::Bool(b) => b.to_string(),
        Kind::Int(n) => n.to_string(),
        Kind::Float(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| "null".to_owned(), |n| n.to_string())
        }
        Kind::Str(s) => serde_json::Value::String(s.clone()).to_string(),
        Kind::Seq(items) => format!(
            "[{}]",
            items.iter().map(json_text).collect::<Vec<_>>().join(",")
        ),
        Kind::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!(
                    "{}:{}",
                    serde_json::Value::String(k.text.clone()),
                    json_text(v)
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A YAML node as JSON, for [`Request::from_json`].
fn to_json(node: &Node) -> Result<serde_json::Value, (Span, String)> {
    use serde_json::Value as J;
    Ok(match &node.kind {
        Kind::Null => J::Null,
        Kind::Bool(b) => J::Bool(*b),
        Kind::Int(n) => J::from(*n),
        Kind::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).ok_or((
            node.span,
            format!("`{f}` is not a number a request can carry"),
        ))?,
        Kind::Str(s) => J::String(s.clone()),
        Kind::Seq(items) => J::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Kind::Map(entries) => {
            let mut obj = serde_json::Map::new();
            for (k, v) in entries {
                obj.insert(k.text.clone(), to_json(v)?);
            }
            J::Object(obj)
        }
    })
}

// ---- JUnit XML ----

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
