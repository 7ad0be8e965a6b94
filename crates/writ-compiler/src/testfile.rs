//! Policy test files (`NAME.test.yaml`, or the older `NAME.decisions.yaml`;
//! docs/testing.md): the one reader of the format, for `writ test` and the
//! repository's own decision-table test. A file names its policies (by
//! default the policy with its stem next to it), an optional dialect, the
//! time of requests without `at`, whether each case starts with fresh
//! limits (`isolated`), and its cases: a request (the request JSON of
//! `writ eval`, written in YAML) and the decision expected.

use std::path::{Path, PathBuf};

use writ_diagnostics::{FileId, SourceFile, Span};
use writ_eval::{Decision, Request};
use writ_ir::{Dialect, Effect, Risk};
use writ_yaml::tree::{Kind, Node};

use crate::inputs::TEST_SUFFIXES as SUFFIXES;

/// A problem with a test file: where, and what.
#[derive(Debug)]
pub struct InputError {
    /// `file:line:col`, or the file alone.
    pub at: String,
    pub message: String,
}

/// One test file, read.
#[derive(Debug)]
pub struct Suite {
    pub policies: Vec<PathBuf>,
    pub dialect: Option<Dialect>,
    pub now: Option<jiff::Timestamp>,
    pub isolated: bool,
    pub cases: Vec<Case>,
}

/// One case: a request and what its decision must be.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    /// Where the case is written: `file:line:col`.
    pub at: String,
    pub request: Request,
    /// The request as one line of JSON, for reports.
    pub request_text: String,
    pub repeat: u32,
    pub expect: Expect,
}

/// What a case expects. `Some(None)` is an explicit `null`: the decision
/// must not carry the field (e.g. `rule: null`: no rule decided).
#[derive(Debug, Default)]
pub struct Expect {
    pub decision: Option<Effect>,
    pub rule: Option<Option<String>>,
    pub policy: Option<Option<String>>,
    pub reason: Option<Option<String>>,
    pub reason_contains: Option<String>,
    pub risk: Option<Option<Risk>>,
    pub retry_after_s: Option<Option<u64>>,
}

impl Expect {
    /// How `d` differs from this expectation, one sentence per field;
    /// `None` when it does not.
    #[must_use]
    pub fn mismatches(&self, d: &Decision) -> Option<Vec<String>> {
        let e = self;
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
}

/// Reads a test file, collecting every problem in it.
///
/// # Errors
/// Every problem found, each with its place.
pub fn read(path: &Path) -> Result<Suite, Vec<InputError>> {
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
