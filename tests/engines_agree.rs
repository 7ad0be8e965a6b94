//! Named regressions for the ways the runtime and the reference evaluator
//! were found to disagree (issue 19), several of them in the direction of
//! allowing. Each runs the policy through both engines, asserts that they
//! give the same decision JSON for every request, and asserts the decision
//! the semantics in docs/language.md ("Semantics") require, so a bug
//! shared by both engines fails too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::collections::BTreeMap;

use writ::{Source, compile};
use writ_eval::{Evaluator, Request};

const NOW: &str = "2025-01-15T12:00:00Z";

/// Compiles `policy` (a `.writ` file), decides every request in order in
/// both engines (limits are stateful; each request carries its own `at`
/// or is decided at [`NOW`]), checks they agree, and returns each decision
/// as JSON.
fn both(policy: &str, requests: &[String]) -> Vec<serde_json::Value> {
    both_named("t.writ", policy, requests)
}

fn both_named(name: &str, policy: &str, requests: &[String]) -> Vec<serde_json::Value> {
    both_sources(&[(name, policy)], requests)
}

fn effects(decisions: &[serde_json::Value]) -> Vec<&str> {
    decisions
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect()
}

fn req(action: &str, target: &str, context: &serde_json::Value) -> String {
    serde_json::json!({"agent": "a", "action": action, "target": target, "context": context})
        .to_string()
}

const OPEN: &str = "policy \"p\" {\n  default allow\n}\n";

#[test]
fn divergence_1_glob_star_matches_newlines() {
    let policy = format!("{OPEN}rule rm: deny \"tool:call\" on \"rm*f\"\n");
    let d = both(
        &policy,
        &[
            req("tool:call", "rm\n-rf", &serde_json::json!({})),
            req("tool:call", "rm -rf", &serde_json::json!({})),
            req("tool:call", "rm -rx", &serde_json::json!({})),
        ],
    );
    assert_eq!(effects(&d), ["deny", "deny", "allow"]);
    // `?` and classes match a newline too.
    let policy = format!("{OPEN}rule q: deny \"tool:call\" on \"a?b[!x]c\"\n");
    let d = both(
        &policy,
        &[req("tool:call", "a\nb\nc", &serde_json::json!({}))],
    );
    assert_eq!(effects(&d), ["deny"]);
}

#[test]
fn divergence_2_question_mark_and_classes_match_one_character() {
    let policy = format!(
        "{OPEN}rule drop: deny \"tool:call\" on \"drop_?\"\nrule cls: deny \"tool:call\" on \"x[!a]y\"\nrule emoji: deny \"tool:call\" on \"[é😀]z\"\n"
    );
    let d = both(
        &policy,
        &[
            req("tool:call", "drop_é", &serde_json::json!({})),
            req("tool:call", "drop_😀", &serde_json::json!({})),
            req("tool:call", "drop_", &serde_json::json!({})),
            req("tool:call", "drop_éé", &serde_json::json!({})),
            req("tool:call", "xéy", &serde_json::json!({})),
            req("tool:call", "xay", &serde_json::json!({})),
            req("tool:call", "😀z", &serde_json::json!({})),
            req("tool:call", "éz", &serde_json::json!({})),
        ],
    );
    assert_eq!(
        effects(&d),
        [
            "deny", "deny", "allow", "allow", "deny", "allow", "deny", "deny"
        ]
    );
}

#[test]
fn divergence_2_aegis_dialect_blocks_a_multibyte_character() {
    // agent-aegis 1.0.0 (fnmatch) blocks `drop_é` under `drop_?`.
    let policy = "version: \"1\"\ndefaults:\n  risk_level: low\n  approval: auto\nrules:\n  - name: no_drop\n    match:\n      type: \"drop_?\"\n    approval: block\n";
    let d = both_named(
        "aegis.yaml",
        policy,
        &[
            serde_json::json!({"agent": "a", "action": "drop_é"}).to_string(),
            serde_json::json!({"agent": "a", "action": "drop_ab"}).to_string(),
        ],
    );
    assert_eq!(effects(&d), ["deny", "allow"]);
}

#[test]
fn divergence_3_dotted_context_keys_read_flat_and_nested() {
    let policy = format!("{OPEN}rule guard: deny \"tool:call\" when a.b == x\n");
    let flat = serde_json::json!({"a.b": "x"});
    let nested = serde_json::json!({"a": {"b": "x"}});
    let both_same = serde_json::json!({"a.b": "x", "a": {"b": "x"}});
    let both_differ = serde_json::json!({"a.b": "y", "a": {"b": "x"}});
    let neither = serde_json::json!({"a": {"c": "x"}});
    let d = both(
        &policy,
        &[
            req("tool:call", "t", &flat),
            req("tool:call", "t", &nested),
            req("tool:call", "t", &both_same),
            // Two readings that differ cannot be judged: the deny applies.
            req("tool:call", "t", &both_differ),
            req("tool:call", "t", &neither),
        ],
    );
    assert_eq!(effects(&d), ["deny", "deny", "deny", "deny", "allow"]);
    // ... and an allow guarded by an ambiguous path does not allow.
    let policy = "policy \"p\" {\n  default deny\n}\nrule ok: allow \"tool:call\" when a.b == x\n";
    let d = both(
        policy,
        &[
            req("tool:call", "t", &flat),
            req("tool:call", "t", &both_differ),
        ],
    );
    assert_eq!(effects(&d), ["allow", "deny"]);
}

fn timed(agent: &str, action: &str, at: jiff::Timestamp) -> String {
    serde_json::json!({"agent": agent, "action": action, "at": at.to_string()}).to_string()
}

fn count_allowed(d: &[serde_json::Value]) -> usize {
    effects(d).iter().filter(|e| **e == "allow").count()
}

#[test]
fn divergence_4_each_limit_of_an_entry_has_its_own_window() {
    let start: jiff::Timestamp = "2025-01-15T10:00:00Z".parse().unwrap();
    let every = |n: i64, secs: i64| -> Vec<String> {
        (0..n)
            .map(|i| {
                timed(
                    "a",
                    "tool:call",
                    start + jiff::SignedDuration::from_secs(i * secs),
                )
            })
            .collect()
    };
    let policy =
        |limits: &str| format!("{OPEN}agent \"a\" {{\n{limits}}}\nrule all: allow \"*\"\n");
    // 20 requests 2 s apart under 5 per day and 1000 per second: 5.
    let d = both(
        &policy("  limit 5 requests per day\n  limit 1000 requests per second\n"),
        &every(20, 2),
    );
    assert_eq!(count_allowed(&d), 5);
    // 1000 per minute and 10 per hour, one a second: 10.
    let d = both(
        &policy("  limit 1000 requests per minute\n  limit 10 requests per hour\n"),
        &every(20, 1),
    );
    assert_eq!(count_allowed(&d), 10);
    // Two limits on different actions count their own actions only.
    let policy2 = policy(
        "  limit 3 requests per hour on \"tool:call\"\n  limit 3 requests per hour on \"model:use\"\n",
    );
    let mut reqs = every(3, 1);
    reqs.extend((0..3).map(|i| {
        timed(
            "a",
            "model:use",
            start + jiff::SignedDuration::from_secs(10 + i),
        )
    }));
    reqs.push(timed(
        "a",
        "tool:call",
        start + jiff::SignedDuration::from_secs(20),
    ));
    let d = both(&policy2, &reqs);
    assert_eq!(
        effects(&d),
        ["allow", "allow", "allow", "allow", "allow", "allow", "deny"]
    );
}

#[test]
fn divergence_4_an_agent_and_a_role_of_the_same_name_count_apart() {
    let start: jiff::Timestamp = "2025-01-15T10:00:00Z".parse().unwrap();
    let policy = format!(
        "{OPEN}agent \"ops\" {{\n  roles [ops]\n  limit 3 requests per hour\n}}\nrole \"ops\" {{\n  limit 3 requests per hour\n}}\nrule all: allow \"*\"\n"
    );
    let reqs: Vec<String> = (0..6)
        .map(|i| {
            timed(
                "ops",
                "tool:call",
                start + jiff::SignedDuration::from_secs(i),
            )
        })
        .collect();
    let d = both(&policy, &reqs);
    // Each request is counted once by the agent's limit and once by the
    // role's: three fit in both.
    assert_eq!(count_allowed(&d), 3);
}

#[test]
fn divergence_5_windows_are_exact() {
    let start: jiff::Timestamp = "2025-01-15T10:00:00Z".parse().unwrap();
    let policy = format!("{OPEN}rule capped: allow \"tool:call\"\n  limit 30 per hour\n");
    let mut reqs: Vec<String> = (0..30)
        .map(|i| timed("a", "tool:call", start + jiff::SignedDuration::from_secs(i)))
        .collect();
    // 11:00:10: the requests of 10:00:00..=10:00:10 have left the window.
    reqs.push(timed(
        "a",
        "tool:call",
        start + jiff::SignedDuration::from_secs(3610),
    ));
    // At 11:00:10 eleven entries aged out and one was taken: ten left.
    for i in 0..11 {
        reqs.push(timed(
            "a",
            "tool:call",
            start + jiff::SignedDuration::from_secs(3610) + jiff::SignedDuration::from_millis(i),
        ));
    }
    let d = both(&policy, &reqs);
    assert_eq!(count_allowed(&d), 30 + 1 + 10);
    // The 11th after 11:00:10 waits for 10:00:11 + 1 h: exactly 1 s.
    let last = d.last().unwrap();
    assert_eq!(last["decision"], "deny");
    assert_eq!(last["retry_after_s"], 1);
}

fn nan_request(v: f64) -> Request {
    let mut r = Request::new("a", "tool:call");
    r.target = Some("refund".into());
    let mut ctx = BTreeMap::new();
    ctx.insert("amount".to_owned(), writ_runtime::Value::Number(v));
    r.context = ctx;
    r
}

#[test]
fn divergence_6_nan_and_infinities_through_the_rust_api_are_denied() {
    let policy = "policy \"p\" {\n  default deny\n}\nrule big: deny \"tool:call\" when amount > 100\nrule rest: allow \"tool:call\"\n";
    let sources = vec![Source {
        name: "t.writ".into(),
        text: policy.into(),
    }];
    let comp = compile(&sources, None);
    let set = comp.checked_set().unwrap();
    let rt =
        writ_runtime::Runtime::from_bytes(&writ::bundle::compile(set, &sources, None).unwrap())
            .unwrap();
    let mut reference = Evaluator::new(set);
    let now = NOW.parse().unwrap();
    let mut compared = 0;
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let r = nan_request(v);
        let expected = reference.check(&r, now).to_json();
        let got = rt.check_at(&r, now).to_json(&r);
        assert_eq!(got, expected);
        let d: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(d["decision"], "deny", "{v}");
        assert!(
            d["reason"]
                .as_str()
                .unwrap()
                .contains("not a finite number"),
            "{got}"
        );
        compared += 1;
    }
    // -0 is 0, and a number is never denied for being large.
    for v in [-0.0, 1e300, 50.0] {
        let r = nan_request(v);
        let expected = reference.check(&r, now).to_json();
        let got = rt.check_at(&r, now).to_json(&r);
        assert_eq!(got, expected);
        compared += 1;
    }
    assert_eq!(compared, 6);
}

#[test]
fn divergence_7_rules_of_a_lone_star_compile_into_a_loadable_bundle() {
    let policy = "policy \"p\" {\n  default deny\n}\nrule a: deny \"*\"\nrule b: allow \"*\"\nrule c: approve \"*\"\n";
    let d = both(policy, &[req("x", "y", &serde_json::json!({}))]);
    assert_eq!(effects(&d), ["deny"]);
}

#[test]
fn a_guard_on_a_value_of_the_wrong_type_fails_closed() {
    let policy = "policy \"p\" {\n  default deny\n}\nrule big: deny \"tool:call\" when amount > 100\nrule small: allow \"tool:call\" when amount <= 100 or not (name matches \"x*\")\n";
    let d = both(
        policy,
        &[
            // A string where a number is compared: the deny applies.
            req("tool:call", "t", &serde_json::json!({"amount": "1000"})),
            req("tool:call", "t", &serde_json::json!({"amount": [1000]})),
            req("tool:call", "t", &serde_json::json!({"amount": true})),
            // A missing value is false: the deny does not apply, nor
            // `amount <= 100`; `not (name matches ..)` on a missing name
            // holds.
            req("tool:call", "t", &serde_json::json!({})),
            // `matches` on a number cannot be judged: `not` of it neither,
            // and an allow needs a condition that holds.
            req("tool:call", "t", &serde_json::json!({"name": 5})),
            req("tool:call", "t", &serde_json::json!({"amount": 5})),
        ],
    );
    assert_eq!(
        effects(&d),
        ["deny", "deny", "deny", "allow", "deny", "allow"]
    );
}

#[test]
fn a_look_at_a_limit_changes_nothing_and_time_never_runs_backwards_in_a_window() {
    // Found by a 40,000-policy campaign: a YAML twin (roles listed before
    // agents) decided one request otherwise, because looking at the role's
    // limit while deciding dropped an entry that a later request, dated
    // earlier, still counted. Declaration order must not matter.
    let agent = "agent \"a\" {\n  roles [billing]\n  tools allow [x]\n}\n";
    let role = "role \"billing\" {\n  limit 1 requests per hour\n}\n";
    let rule = "rule all: allow \"*\"\n";
    let at = |t: &str| format!("2025-01-15T{t}:00Z");
    let reqs: Vec<String> = [
        ("x", "10:00"),
        ("y", "12:00"),
        ("x", "10:30"),
        ("x", "11:00"),
    ]
    .iter()
    .map(|(target, t)| {
        serde_json::json!({"agent": "a", "action": "tool:call", "target": target, "at": at(t)})
            .to_string()
    })
    .collect();
    let agent_first = both(&format!("{OPEN}{agent}{role}{rule}"), &reqs);
    let role_first = both(&format!("{OPEN}{role}{agent}{rule}"), &reqs);
    for d in [&agent_first, &role_first] {
        // 10:30 is taken at 10:00's time or later: the 10:00 request still
        // counts, for 30 more minutes; at 11:00 it has left.
        assert_eq!(effects(d), ["allow", "deny", "deny", "allow"], "{d:?}");
        assert_eq!(d[2]["retry_after_s"], 1800);
    }
}

/// Both engines on several sources (merged in order): each request decided
/// by the compiled bundle and by the reference evaluator, which must agree;
/// the decisions as JSON.
fn both_sources(sources: &[(&str, &str)], requests: &[impl AsRef<str>]) -> Vec<serde_json::Value> {
    let sources: Vec<Source> = sources
        .iter()
        .map(|(name, text)| Source {
            name: (*name).into(),
            text: (*text).into(),
        })
        .collect();
    let comp = compile(&sources, None);
    let set = comp
        .checked_set()
        .unwrap_or_else(|| panic!("policy has errors: {:?}", comp.diagnostics));
    let bytes = writ::bundle::compile(set, &sources, None).unwrap();
    let rt = writ_runtime::Runtime::from_bytes(&bytes).unwrap();
    let mut reference = Evaluator::new(set);
    let now = NOW.parse().unwrap();
    requests
        .iter()
        .map(|json| {
            let json = json.as_ref();
            let req = Request::from_json(json).unwrap();
            let expected = reference.check(&req, now).to_json();
            let got = rt.check_at(&req, now).to_json(&req);
            let texts: Vec<&str> = sources.iter().map(|s| s.text.as_str()).collect();
            assert_eq!(
                got,
                expected,
                "engines disagree on {json}\npolicy:\n{}",
                texts.join("\n---\n")
            );
            serde_json::from_str(&got).unwrap()
        })
        .collect()
}

/// MeshGuard's `appliesTo` (tiers, agent ids and tags: each list given
/// must match) and `delegation` (`maxDepth`, `permissionCeiling`).
#[test]
fn meshguard_applies_to_and_delegation_keys_decide_alike() {
    let policy = r#"
name: scoped
appliesTo:
  trustTiers: [verified, trusted]
  agentIds: [a, b, c, d]
  tags: [prod]
rules:
  - effect: allow
    actions: ["read:*", "write:notes", "agent:delegate"]
defaultEffect: deny
delegation:
  maxDepth: 2
  permissionCeiling: ["read:*", "agent:*"]
"#;
    let agents = r#"
agent "a" { tier verified tags [prod] }
agent "b" { tier trusted tags [prod] }
agent "c" { tier privileged tags [prod] }
agent "d" { tier verified }
agent "e" { tier verified tags [prod] }
"#;
    let d = both_sources(
        &[("p.yaml", policy), ("agents.writ", agents)],
        &[
            // In scope: every list matches.
            r#"{"agent":"a","action":"read:x"}"#,
            r#"{"agent":"b","action":"write:notes"}"#,
            // A tier outside `trustTiers`.
            r#"{"agent":"c","action":"read:x"}"#,
            // Without the tag (not declared, not in the request).
            r#"{"agent":"d","action":"read:x"}"#,
            // ... or with it in the request.
            r#"{"agent":"d","tags":["prod"],"action":"read:x"}"#,
            // Not in `agentIds`, though tier and tag match.
            r#"{"agent":"e","action":"read:x"}"#,
            // Through a chain: inside the ceiling, then outside it (the
            // same action is allowed without the chain).
            r#"{"chain":["a","b"],"action":"read:x"}"#,
            r#"{"chain":["a","b"],"action":"write:notes"}"#,
            // Delegating further is bounded by the depth, not the ceiling.
            r#"{"chain":["a","b"],"action":"agent:delegate","target":"a"}"#,
            r#"{"chain":["a","b","a"],"action":"agent:delegate","target":"b"}"#,
            r#"{"chain":["a","b","a","b"],"action":"read:x"}"#,
        ],
    );
    assert_eq!(
        effects(&d),
        [
            "allow", "allow", "deny", "deny", "allow", "deny", "allow", "deny", "allow", "deny",
            "deny"
        ]
    );
    assert_eq!(
        d[7]["reason"],
        "`write:notes` is not in permissionCeiling: an agent acting through a delegation chain may take only the actions it lists"
    );
    assert!(
        d[9]["reason"]
            .as_str()
            .unwrap()
            .contains("more than max_delegation_depth 2"),
        "{}",
        d[9]
    );
    assert!(
        d[10]["reason"]
            .as_str()
            .unwrap()
            .contains("3 hops (a → b → a → b)"),
        "{}",
        d[10]
    );

    // The ceilings of every file bound chains together.
    let second = "name: second\ndefaultEffect: deny\nrules:\n  - effect: deny\n    actions: [\"none\"]\ndelegation:\n  permissionCeiling: [\"read:public*\"]\n";
    let d = both_sources(
        &[
            ("p.yaml", policy),
            ("q.yaml", second),
            ("agents.writ", agents),
        ],
        &[
            r#"{"chain":["a","b"],"action":"read:public_page"}"#,
            r#"{"chain":["a","b"],"action":"read:secret"}"#,
            r#"{"agent":"b","action":"read:secret"}"#,
        ],
    );
    assert_eq!(effects(&d), ["allow", "deny", "allow"]);
}

// Issue 20: a default decision names what actually stopped the request. A
// rule whose action matched but whose scope left the agent out is named,
// with the list and what the agent lacks, and so is its policy; else the
// policy whose default applied. Ceiling decisions name the entry's policy.

/// One decision of both engines for a request given as JSON.
fn one(name: &str, policy: &str, request: serde_json::Value) -> serde_json::Value {
    both_named(name, policy, &[request.to_string()]).remove(0)
}

#[test]
fn a_meshguard_policy_applying_to_tags_says_the_agent_has_neither_tag() {
    let policy = include_str!("../examples/seeds/meshguard-openai-support.yaml");
    let untagged = one(
        "meshguard.yaml",
        policy,
        serde_json::json!({"agent": "support-bot", "action": "read:customer_data"}),
    );
    assert_eq!(untagged["decision"], "deny");
    assert_eq!(untagged["rule"], serde_json::Value::Null);
    assert_eq!(untagged["policy"], "openai-support-agent-policy");
    assert_eq!(
        untagged["reason"],
        "rule `allow_read_customer_data` matches action `read:customer_data` but applies only to agents tagged `openai` or `support`, and agent `support-bot` has neither; the policy default is deny"
    );
    // Another tag is no better; the tags the policy wants are the cure.
    let other = one(
        "meshguard.yaml",
        policy,
        serde_json::json!({"agent": "support-bot", "tags": ["internal"], "action": "read:customer_data"}),
    );
    assert_eq!(other["reason"], untagged["reason"]);
    let tagged = one(
        "meshguard.yaml",
        policy,
        serde_json::json!({"agent": "support-bot", "tags": ["support"], "action": "read:customer_data"}),
    );
    assert_eq!(tagged["decision"], "allow");
    // An action no rule names keeps the plain sentence, and names the
    // policy whose default applied.
    let unknown = one(
        "meshguard.yaml",
        policy,
        serde_json::json!({"agent": "support-bot", "action": "write:nothing"}),
    );
    assert_eq!(
        unknown["reason"],
        "no rule matched action `write:nothing`; the policy default is deny"
    );
    assert_eq!(unknown["policy"], "openai-support-agent-policy");
}

const SCOPED: &str = r#"policy "support" {
  default deny
}

agent "triage-agent" {
  tier verified
}

agent "billing-agent" {
  roles [billing]
  tier trusted
  tools allow [refund, "lookup_*"]
  limit 1 requests per hour
}

rule block_wipe: deny "tool:call" on wipe
  for agents [ops-agent]
rule wipe: allow "tool:call" on wipe
  for agents [ops-agent, root-agent]
rule refunds: allow "tool:call" on refund
  for roles [billing, finance]
rule deletes: approve "tool:call" on delete_customer
  for tiers [trusted, privileged]
rule lookups: allow "tool:call" on "lookup_*"
"#;

/// One decision of both engines on [`SCOPED`] for `agent` calling a tool.
fn scoped(policy: &str, agent: &str, tool: &str) -> serde_json::Value {
    one(
        "t.writ",
        policy,
        serde_json::json!({"agent": agent, "action": "tool:call", "target": tool}),
    )
}

#[test]
fn a_writ_rule_for_roles_says_the_agent_has_neither_role() {
    let d = scoped(SCOPED, "triage-agent", "refund");
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["policy"], "support");
    assert_eq!(
        d["reason"],
        "rule `refunds` matches action `tool:call` on `refund` but applies only to agents with role `billing` or `finance`, and agent `triage-agent` has neither; the policy default is deny"
    );
}

#[test]
fn a_rule_for_agents_names_them_and_the_one_that_asked() {
    // Two rules leave `triage-agent` out; the one that would have allowed
    // is named, not the deny before it.
    let d = scoped(SCOPED, "triage-agent", "wipe");
    assert_eq!(d["policy"], "support");
    assert_eq!(
        d["reason"],
        "rule `wipe` matches action `tool:call` on `wipe` but applies only to agents `ops-agent` or `root-agent`, not to agent `triage-agent`; the policy default is deny"
    );
    // Under an allow default, the deny is the one that would have differed.
    let open = SCOPED.replace("default deny", "default allow");
    let d = scoped(&open, "triage-agent", "wipe");
    assert_eq!(d["decision"], "allow");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("rule `block_wipe` matches action `tool:call` on `wipe` but applies only to agent `ops-agent`, not to agent `triage-agent`"),
        "{d}"
    );
}

#[test]
fn a_rule_for_tiers_names_the_agents_tier_or_its_lack_of_one() {
    let declared = scoped(SCOPED, "triage-agent", "delete_customer");
    assert_eq!(declared["policy"], "support");
    assert_eq!(
        declared["reason"],
        "rule `deletes` matches action `tool:call` on `delete_customer` but applies only to agents of tier `trusted` or `privileged`, and agent `triage-agent` is of tier `verified`; the policy default is deny"
    );
    let undeclared = scoped(SCOPED, "stranger", "delete_customer");
    assert!(
        undeclared["reason"]
            .as_str()
            .unwrap()
            .contains("and agent `stranger` has no tier;"),
        "{undeclared}"
    );
}

#[test]
fn a_ceiling_decision_names_the_entrys_policy() {
    let listed = scoped(SCOPED, "billing-agent", "wipe");
    assert_eq!(listed["decision"], "deny");
    assert_eq!(listed["policy"], "support");
    assert_eq!(
        listed["reason"],
        "tool `wipe` is not in tools.allow of agent `billing-agent`"
    );
    let at = |s: &str| {
        serde_json::json!({"agent": "billing-agent", "action": "tool:call", "target": "lookup_order", "at": s}).to_string()
    };
    let d = both(
        SCOPED,
        &[at("2025-01-15T10:00:00Z"), at("2025-01-15T10:00:01Z")],
    );
    assert_eq!(effects(&d), ["allow", "deny"]);
    assert_eq!(d[1]["policy"], "support");
    assert!(
        d[1]["reason"].as_str().unwrap().contains("limit"),
        "{}",
        d[1]
    );
}

#[test]
fn a_default_decision_names_the_policy_whose_default_applied() {
    let d = one(
        "t.writ",
        SCOPED,
        serde_json::json!({"agent": "billing-agent", "action": "file:read"}),
    );
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["rule"], serde_json::Value::Null);
    assert_eq!(d["policy"], "support");
    assert_eq!(
        d["reason"],
        "no rule matched action `file:read`; the policy default is deny"
    );
    // The only policy names the built-in default as its own; a reason of
    // the author's replaces the sentence, and the rule is still named by
    // its policy.
    let builtin =
        "policy \"lone\" {\n  version \"1\"\n}\nrule r: allow \"tool:call\"\n  for roles [x]\n";
    let d = one(
        "t.writ",
        builtin,
        serde_json::json!({"agent": "a", "action": "file:read"}),
    );
    assert_eq!(
        (&d["decision"], &d["policy"]),
        (&serde_json::json!("deny"), &serde_json::json!("lone"))
    );
    let told = "policy \"told\" {\n  default deny because \"ask the desk\"\n}\nrule r: allow \"tool:call\"\n  for roles [x]\n";
    let d = one(
        "t.writ",
        told,
        serde_json::json!({"agent": "a", "action": "tool:call"}),
    );
    assert_eq!(d["reason"], "ask the desk");
    assert_eq!(d["policy"], "told");
}

#[test]
fn the_rule_a_scope_left_out_is_found_where_the_index_splits_rules_by_agent_and_target() {
    // Twenty rules of one action: the runtime's index splits them by agent
    // and by exact target, so the request's own candidates do not hold the
    // rule its scope left out; the default decision looks at all of them.
    let mut policy = "policy \"many\" {\n  default deny\n}\n".to_owned();
    for i in 0..20 {
        policy.push_str(&format!(
            "rule r{i}: allow \"tool:call\" on t{i}\n  for agents [a{i}]\n"
        ));
    }
    let asks = |agent: &str| {
        serde_json::json!({"agent": agent, "action": "tool:call", "target": "t7"}).to_string()
    };
    let d = both(&policy, &[asks("x"), asks("a7")]);
    assert_eq!(effects(&d), ["deny", "allow"]);
    assert_eq!(d[0]["policy"], "many");
    assert_eq!(
        d[0]["reason"],
        "rule `r7` matches action `tool:call` on `t7` but applies only to agent `a7`, not to agent `x`; the policy default is deny"
    );
}

/// Many rules on one action, with targets of every shape: the runtime's
/// index files them by target (exact names in a table, other patterns in a
/// glob set) and by principal, and must still find every rule the
/// reference finds.
#[test]
fn long_lists_of_rules_are_indexed_by_every_target_shape() {
    let mut policy = String::from("policy \"p\" {\n  default deny\n  combine first-match\n}\n");
    let shapes = [
        "t{i}",
        "p{i}_*",
        "*_s{i}",
        "a*b{i}",
        "q?x{i}",
        "[ab]c{i}",
        "{get,put}_{i}",
        "*k{i}*",
        "?",
    ];
    let mut requests = Vec::new();
    for i in 0..12 {
        for (n, shape) in shapes.iter().enumerate() {
            let target = shape.replace("{i}", &i.to_string());
            let effect = if (i + n) % 3 == 0 { "deny" } else { "allow" };
            let scope = match (i + n) % 4 {
                0 => " for agents [\"bot\"]",
                1 => " for roles [\"ops\"]",
                _ => "",
            };
            policy += &format!("rule r{i}_{n}: {effect} \"tool:call\" on \"{target}\"{scope}\n");
        }
        policy += &format!(
            "rule h{i}: allow \"net:connect\" on hosts \"*.h{i}.example.com\"\n\
             rule hx{i}: deny \"net:connect\" on hosts \"api.x{i}.example.com\"\n"
        );
        for target in [
            format!("t{i}"),
            format!("p{i}_z"),
            format!("z_s{i}"),
            format!("azzb{i}"),
            format!("qéx{i}"),
            format!("bc{i}"),
            format!("put_{i}"),
            format!("zk{i}z"),
            "x".to_owned(),
            format!("t{i}x"),
            format!("cc{i}"),
        ] {
            for (agent, roles) in [("bot", "[]"), ("eve", "[\"ops\"]"), ("amy", "[]")] {
                requests.push(format!(
                    r#"{{"agent":"{agent}","roles":{roles},"action":"tool:call","target":"{target}"}}"#
                ));
            }
        }
        for host in [
            format!("API.H{i}.Example.com"),
            format!("api.x{i}.example.com"),
            format!("API.X{i}.EXAMPLE.COM"),
            format!("h{i}.example.com"),
        ] {
            requests.push(format!(
                r#"{{"agent":"bot","action":"net:connect","target":"{host}"}}"#
            ));
        }
    }
    let decisions = both(&policy, &requests);
    let e = effects(&decisions);
    let allowed = e.iter().filter(|x| **x == "allow").count();
    let denied_by_rule = decisions
        .iter()
        .filter(|d| d["decision"] == "deny" && !d["rule"].is_null())
        .count();
    println!(
        "compared {} decisions: {allowed} allowed, {denied_by_rule} denied by a rule",
        decisions.len()
    );
    assert!(
        allowed > 100 && denied_by_rule > 50,
        "{allowed} {denied_by_rule}"
    );
}
