//! What the fuzz targets share: the example policies compiled once, the
//! requests every bundle is asked, re-sealing a changed bundle, and the
//! checks each target makes (the runtime decides as the reference
//! evaluator; a bundle the runtime loads decodes in full).
//!
//! The targets are in `fuzz_targets/`; docs/testing.md says how to run
//! them.

use std::sync::OnceLock;

use writ::{Compilation, Source, compile};
use writ_eval::{Evaluator, Request};
use writ_ir::{Dialect, PolicySet};
use writ_runtime::Runtime;

pub mod grammar;

/// The time requests without `at` are decided at (a Wednesday, noon UTC).
#[must_use]
pub fn now() -> jiff::Timestamp {
    static NOW: OnceLock<jiff::Timestamp> = OnceLock::new();
    *NOW.get_or_init(|| {
        jiff::Timestamp::from_second(1_736_942_400).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    })
}

/// An example policy, compiled once: its sources, the compilation (the
/// reference evaluator reads its set) and its bundle.
pub struct Example {
    pub name: &'static str,
    pub sources: Vec<Source>,
    pub compilation: Compilation,
    pub bundle: Vec<u8>,
}

impl Example {
    /// The checked policy set.
    ///
    /// # Panics
    /// Never: [`examples`] keeps only examples that compile.
    #[must_use]
    pub fn set(&self) -> &PolicySet {
        self.compilation
            .checked_set()
            .unwrap_or_else(|| panic!("{} has errors", self.name))
    }
}

/// Every example policy of the repository that the targets start from:
/// the writ language and each YAML dialect.
const EXAMPLES: &[(&str, &str)] = &[
    ("support.writ", include_str!("../../examples/support.writ")),
    (
        "delegation.writ",
        include_str!("../../examples/delegation.writ"),
    ),
    (
        "delegation-open.writ",
        include_str!("../../examples/delegation-open.writ"),
    ),
    (
        "deny-overrides.writ",
        include_str!("../../examples/deny-overrides.writ"),
    ),
    (
        "meshguard-delegation.yaml",
        include_str!("../../examples/seeds/meshguard-delegation.yaml"),
    ),
    (
        "aegis-policy.yaml",
        include_str!("../../examples/seeds/aegis-policy.yaml"),
    ),
    (
        "sekuire.yml",
        include_str!("../../examples/seeds/sekuire.yml"),
    ),
];

/// The examples, compiled and bundled on first use.
///
/// # Panics
/// When an example does not compile: the repository's tests fail then too.
pub fn examples() -> &'static [Example] {
    static ALL: OnceLock<Vec<Example>> = OnceLock::new();
    ALL.get_or_init(|| {
        EXAMPLES
            .iter()
            .map(|&(name, text)| {
                let sources = vec![Source {
                    name: name.to_owned(),
                    text: text.to_owned(),
                }];
                let compilation = compile(&sources, None);
                let set = compilation
                    .checked_set()
                    .unwrap_or_else(|| panic!("the example {name} has errors"));
                let bundle = writ::bundle::compile(set, &sources, None)
                    .unwrap_or_else(|e| panic!("the example {name} does not compile: {e}"));
                Example {
                    name,
                    sources,
                    compilation,
                    bundle,
                }
            })
            .collect()
    })
}

/// Requests every bundle is asked: names of the examples, a chain, a
/// token, limits met by repeating one, a context with nested values.
const REQUESTS: &[&str] = &[
    r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":79.99,"currency":"USD"}}"#,
    r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":79.99,"currency":"USD"}}"#,
    r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":500,"currency":"USD"},"at":"2025-01-15T04:00:00Z"}"#,
    r#"{"agent":"triage-agent","token":"tok_billing_42","action":"tool:call","target":"lookup_customer","tokens":20}"#,
    r#"{"chain":["orchestrator","billing-agent"],"action":"tool:call","target":"delete_customer"}"#,
    r#"{"agent":"a","roles":["support"],"action":"net:connect","target":"API.Example.COM","context":{"a":{"b":[1,"x"]},"a.b":5}}"#,
    r#"{"agent":"bot","action":"model:use","target":"gpt-4","tags":["x"],"at":"2025-01-18T23:59:59.999Z"}"#,
    r#"{"agent":"é😀","action":"agent:delegate","target":"b\n","context":{"amount":-0.0,"name":"x*"}}"#,
];

/// [`REQUESTS`], parsed.
///
/// # Panics
/// When one is malformed (a bug in this file).
pub fn requests() -> &'static [Request] {
    static ALL: OnceLock<Vec<Request>> = OnceLock::new();
    ALL.get_or_init(|| {
        REQUESTS
            .iter()
            .map(|j| Request::from_json(j).unwrap_or_else(|e| panic!("{j}: {e}")))
            .collect()
    })
}

/// Decides `requests` in order with a fresh runtime on `bundle` and a
/// fresh reference evaluator on `set` (limits carry from one request to
/// the next in both) and panics when a decision differs. `what` describes
/// the policy for the message.
///
/// # Panics
/// When the engines disagree, or the bundle does not load.
pub fn decide_alike(
    set: &PolicySet,
    bundle: &[u8],
    requests: &[Request],
    what: &dyn Fn() -> String,
) {
    let rt = Runtime::from_bytes(bundle)
        .unwrap_or_else(|e| panic!("the compiled bundle does not load: {e}\n{}", what()));
    let mut reference = Evaluator::new(set);
    let now = now();
    for (i, req) in requests.iter().enumerate() {
        let expected = reference.check(req, now).to_json();
        let got = rt.check_at(req, now).to_json(req);
        assert_eq!(
            got,
            expected,
            "the runtime (left) and the reference evaluator (right) disagree on request {i}: {req:?}\n{}",
            what()
        );
    }
}

/// What the text and grammar targets do with sources: compile them; when
/// they have no errors, compile the bundle (as `writ compile` does, with
/// the glob programs the check built), which must succeed and load, and decide
/// `requests` in both engines.
///
/// # Panics
/// When compiling a policy without errors into a bundle fails (the check
/// refuses what the bundle cannot hold, E0209, so compile must not), or on
/// any check of [`decide_alike`].
pub fn compile_and_decide(sources: &[Source], dialect: Option<Dialect>, requests: &[Request]) {
    let comp = compile(sources, dialect);
    let Some(set) = comp.checked_set() else {
        return;
    };
    let show = || show(sources, dialect);
    let bytes =
        writ::bundle::compile_with(set, sources, None, &comp.programs).unwrap_or_else(|e| {
            panic!(
                "a policy without errors does not compile into a bundle: {e}\n{}",
                show()
            )
        });
    decide_alike(set, &bytes, requests, &show);
}

/// The sources, for a failure message.
#[must_use]
pub fn show(sources: &[Source], dialect: Option<Dialect>) -> String {
    let mut out = format!("dialect: {dialect:?}\n");
    for s in sources {
        out.push_str(&format!("--- {}\n{}\n", s.name, s.text));
    }
    out
}

/// Where the body starts: after magic (8), format version (4) and body
/// length (4).
pub const BODY_START: usize = 16;

/// The body of a well-formed bundle.
#[must_use]
pub fn body(bundle: &[u8]) -> &[u8] {
    let len = bundle
        .get(12..16)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u32::from_le_bytes(b) as usize);
    bundle.get(BODY_START..BODY_START + len).unwrap_or_default()
}

/// A bundle around `body`, sealed as the compiler seals one (header, body
/// length, XXH3-128 checksum, no signature), so that a changed body gets
/// past the integrity check to the decoder.
#[must_use]
pub fn seal(body: &[u8], format_version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(BODY_START + body.len() + writ_runtime::CHECKSUM_LEN + 1);
    out.extend_from_slice(writ_runtime::MAGIC);
    out.extend_from_slice(&format_version.to_le_bytes());
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(body);
    let sum = writ_runtime::checksum(&out);
    out.extend_from_slice(&sum);
    out.push(0);
    out
}

/// What the bundle targets do with bytes: load them; when the runtime
/// accepts them, the full decoder must too, every rule must decode
/// (`prepare_all`), and the fixed requests must get the same decisions
/// from rules decoded on first use and from rules decoded up front.
/// Whatever the bytes, nothing panics.
///
/// # Panics
/// When one of those checks fails.
pub fn load_and_decide(bytes: &[u8]) {
    let Ok(lazy) = Runtime::from_bytes(bytes) else {
        return;
    };
    if let Err(e) = writ_runtime::read_model(bytes) {
        panic!("the runtime loaded a bundle that the full decoder rejects: {e}");
    }
    let now = now();
    let lazily: Vec<String> = requests()
        .iter()
        .map(|req| lazy.check_at(req, now).to_json(req))
        .collect();
    let Ok(eager) = Runtime::from_bytes(bytes) else {
        panic!("a bundle loaded once and not twice");
    };
    if let Err(e) = eager.prepare_all() {
        panic!("the runtime loaded a bundle with a rule that does not decode: {e}");
    }
    for (req, lazily) in requests().iter().zip(&lazily) {
        let eagerly = eager.check_at(req, now).to_json(req);
        assert_eq!(
            &eagerly, lazily,
            "rules decoded up front (left) and on first use (right) decide differently: {req:?}"
        );
    }
}
