//! The delegation graph: each check on a small graph, snapshots of the
//! diagnostics and drawings, the CLI, and a property of the strict ceiling.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use writ::{Compilation, Source, compile};
use writ_diagnostics::Code;
use writ_eval::{Evaluator, Request};
use writ_ir::Effect;

fn comp(text: &str) -> Compilation {
    compile(
        &[Source {
            name: "graph.writ".to_owned(),
            text: text.to_owned(),
        }],
        None,
    )
}

/// The delegation graph's findings (other lints, such as an agent that
/// declares nothing, are tested elsewhere).
fn findings(text: &str) -> Vec<(Code, String)> {
    comp(text)
        .diagnostics
        .iter()
        .filter(|d| {
            let c = d.code.as_str();
            c.starts_with("E05") || c.starts_with("W02") || c.starts_with("E03")
        })
        .map(|d| (d.code, d.message.clone()))
        .collect()
}

fn codes(text: &str) -> Vec<Code> {
    findings(text).into_iter().map(|(c, _)| c).collect()
}

#[test]
fn undeclared_delegates_are_errors_with_did_you_mean() {
    let c =
        comp("agent \"triage-agent\" { delegates [billing-agnet] }\nagent \"billing-agent\" {}\n");
    let d = c
        .diagnostics
        .iter()
        .find(|d| d.code == Code::UnknownDelegate)
        .expect("E0501");
    assert!(d.message.contains("`billing-agnet`"), "{}", d.message);
    assert_eq!(d.help.as_deref(), Some("did you mean `billing-agent`?"));
    // Declaring it fixes it.
    assert!(codes("agent \"a\" { delegates [b] }\nagent \"b\" {}\n").is_empty());
}

#[test]
fn rule_targets_nobody_declares_are_warnings_only_when_agents_are_declared() {
    let with_agents =
        "agent \"a\" {}\nrule h: allow \"agent:delegate\" on ghost\n  for agents [a]\n";
    assert_eq!(codes(with_agents), vec![Code::UndeclaredDelegate]);
    // A file of rules only (MeshGuard's delegation policy) has no registry.
    let rules_only = "rule h: allow \"agent:delegate\" on ghost\n  for agents [a]\n";
    assert!(codes(rules_only).is_empty());
}

#[test]
fn cycles_are_named_in_full() {
    let f = findings(
        "agent \"a\" { delegates [b] }\nagent \"b\" { delegates [c] }\nagent \"c\" { delegates [a] }\n",
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, Code::DelegationCycle);
    assert_eq!(f[0].1, "delegation cycle: `a` → `b` → `c` → `a`");
    // Breaking the cycle removes the warning.
    assert!(
        codes("agent \"a\" { delegates [b] }\nagent \"b\" { delegates [c] }\nagent \"c\" {}\n")
            .is_empty()
    );
}

#[test]
fn unreachable_agents_are_reported_only_with_entry_agents() {
    let base = "agent \"front\" { delegates [middle] }\nagent \"middle\" {}\nagent \"orphan\" {}\n";
    assert!(codes(base).is_empty());
    let f = findings(&format!("policy \"p\" {{ entry_agents [front] }}\n{base}"));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, Code::UnreachableAgent);
    assert!(f[0].1.contains("`orphan`"));
}

#[test]
fn chains_longer_than_the_maximum_are_errors() {
    let chain = "agent \"a\" { delegates [b] }\nagent \"b\" { delegates [c] }\nagent \"c\" { delegates [d] }\nagent \"d\" {}\n";
    let f = findings(&format!(
        "policy \"p\" {{ max_delegation_depth 2 }}\n{chain}"
    ));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, Code::ChainTooLong);
    assert!(
        f[0].1.contains("`a` → `b` → `c` → `d` has 3 hops"),
        "{}",
        f[0].1
    );
    assert!(
        codes(&format!(
            "policy \"p\" {{ max_delegation_depth 3 }}\n{chain}"
        ))
        .is_empty()
    );
}

const ESCALATION: &str = r#"policy "p" { ceiling CEILING }
agent "triage-agent" {
  roles [triage]
  delegates [billing-agent]
}
agent "billing-agent" { roles [billing] }
rule refunds: allow "tool:call" on refund
  for roles [billing]
"#;

#[test]
fn privilege_escalation_names_the_hop_and_a_witness() {
    let f = findings(&ESCALATION.replace("CEILING", "none"));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, Code::PrivilegeEscalation);
    assert!(
        f[0].1
            .contains("`triage-agent` may not take `tool:call` on `refund`")
            && f[0].1.contains("delegate to `billing-agent`")
            && f[0].1.contains("rule `refunds`"),
        "{}",
        f[0].1
    );
    // The strict ceiling enforces it at runtime: nothing to warn about.
    assert!(codes(&ESCALATION.replace("CEILING", "strict")).is_empty());
    // When the delegator may do it too, nothing escalates.
    let both = ESCALATION
        .replace("CEILING", "none")
        .replace("for roles [billing]", "for roles [billing, triage]");
    assert!(codes(&both).is_empty());
}

#[test]
fn edges_come_from_every_form() {
    let c = comp(
        r#"agent "a" { delegates [b] }
agent "b" {}
agent "c" {}
rule to_c: allow "agent:delegate" on c
  for agents [b]
rule handoff: allow "handoff:Billing Specialist"
  for agents [c]
rule meshguard_style: allow "agent:delegate"
  for agents [c]
  require target in [a] as "allowed_targets"
rule outside_the_ceiling: allow "agent:delegate" on c
  for agents [a]
"#,
    );
    let set = c.set.as_ref().unwrap();
    let g = writ_graph::build(set);
    let mut edges: Vec<String> = g
        .graph
        .edge_indices()
        .map(|e| {
            let (x, y) = g.graph.edge_endpoints(e).unwrap();
            format!(
                "{} -> {}: {}",
                g.graph[x].name,
                g.graph[y].name,
                g.graph[e].label()
            )
        })
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        vec![
            "a -> b: delegates",
            "b -> c: rule to_c",
            "c -> Billing Specialist: handoff rule handoff",
            "c -> a: rule meshguard_style",
        ]
    );
}

fn report(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let c = compile(
        &[Source {
            name: path.file_name().unwrap().to_string_lossy().to_string(),
            text: text.clone(),
        }],
        None,
    );
    let mut out = format!(
        "--- source\n{text}\n--- diagnostics ({})\n",
        c.diagnostics.len()
    );
    for d in &c.diagnostics {
        out.push_str(&writ::render::to_text(d, &c.sources, false));
    }
    if let Some(set) = &c.set {
        let g = writ_graph::build(set);
        let esc = writ_graph::escalations(set, &g);
        let _ = write!(out, "--- dot\n{}", writ_graph::draw::dot(&g, &esc));
    }
    out
}

#[test]
fn graph_fixtures() {
    insta::glob!("fixtures/graph/*.writ", |path| {
        insta::assert_snapshot!(report(path));
    });
}

#[test]
fn the_graph_command_draws_every_format() {
    let bin = env!("CARGO_BIN_EXE_writ");
    let run = |format: &str| {
        let out = std::process::Command::new(bin)
            .args([
                "graph",
                "tests/fixtures/graph/escalation.writ",
                "--format",
                format,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap()
    };
    let dot = run("dot");
    assert!(dot.starts_with("digraph delegation {"));
    assert!(dot.contains("ESCALATES: `tool:call` on `refund`"), "{dot}");
    let mermaid = run("mermaid");
    assert!(mermaid.starts_with("flowchart LR"));
    assert!(mermaid.contains("linkStyle"));
    let json: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    let edges = json["edges"].as_array().unwrap();
    assert!(
        edges
            .iter()
            .any(|e| e["escalates"] == "`tool:call` on `refund`")
    );
    assert_eq!(json["nodes"].as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------------
// Property: under the strict ceiling, a chain is never allowed an action
// that any agent in it is denied on its own.

const AGENTS: [&str; 4] = ["a0", "a1", "a2", "a3"];
const ACTIONS: [&str; 3] = ["tool:call", "net:connect", "model:use"];

fn policy() -> impl Strategy<Value = String> {
    let rule = (
        prop::sample::select(&["allow", "deny", "approve"][..]),
        prop::sample::select(&ACTIONS[..]),
        prop::option::of(prop::sample::subsequence(AGENTS.to_vec(), 1..3)),
        prop::option::of(0i32..10),
    );
    (
        prop::collection::vec(
            prop::option::of(prop::sample::subsequence(AGENTS.to_vec(), 0..4)),
            4,
        ),
        prop::collection::vec(rule, 1..6),
        prop::option::of(1u32..4),
    )
        .prop_map(|(delegates, rules, depth)| {
            let mut s = String::from("policy \"p\" {\n  ceiling strict\n");
            if let Some(d) = depth {
                let _ = writeln!(s, "  max_delegation_depth {d}");
            }
            s.push_str("}\n");
            for (a, d) in AGENTS.iter().zip(&delegates) {
                match d {
                    Some(list) => {
                        let _ = writeln!(s, "agent \"{a}\" {{ delegates [{}] }}", list.join(", "));
                    }
                    None => {
                        let _ = writeln!(s, "agent \"{a}\" {{}}");
                    }
                }
            }
            s.push_str("rule hand: allow \"agent:delegate\"\n");
            for (i, (effect, action, who, cond)) in rules.iter().enumerate() {
                let _ = write!(s, "rule r{i}: {effect} \"{action}\"");
                if let Some(who) = who {
                    let _ = write!(s, "\n  for agents [{}]", who.join(", "));
                }
                if let Some(n) = cond {
                    let _ = write!(s, "\n  when n < {n}");
                }
                s.push('\n');
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_strict_ceiling_never_allows_what_a_member_is_denied(
        src in policy(),
        chain in prop::collection::vec(prop::sample::select(&AGENTS[..]), 2..5),
        action in prop::sample::select(&ACTIONS[..]),
        n in 0i32..10,
    ) {
        let c = comp(&src);
        // Static findings (a chain past the maximum, a cycle) do not matter
        // here: the evaluator must hold the property on any policy it gets.
        let set = c.set.as_ref().ok_or_else(|| TestCaseError::fail(format!("{:?}\n{src}", c.diagnostics)))?;
        let now = "2025-01-15T12:00:00Z".parse().unwrap();
        let mut eval = Evaluator::new(set);
        let json = serde_json::json!({ "chain": chain, "action": action, "context": { "n": n } });
        let chained = eval.check(&Request::from_json(&json.to_string()).unwrap(), now);
        for member in &chain {
            let alone = serde_json::json!({ "agent": member, "action": action, "context": { "n": n } });
            let own = eval.check(&Request::from_json(&alone.to_string()).unwrap(), now);
            if own.effect == Effect::Deny {
                prop_assert_eq!(chained.effect, Effect::Deny, "`{}` alone is denied but the chain {:?} is not\n{}", member, chain, src);
            }
            if own.effect == Effect::Approve {
                prop_assert_ne!(chained.effect, Effect::Allow, "`{}` alone needs approval but the chain {:?} is allowed\n{}", member, chain, src);
            }
        }
    }
}

/// The pictures in docs/delegation.md are made from these DOT files; they
/// must be what `writ graph` draws today.
#[test]
fn the_docs_pictures_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (policy, dot_file) in [
        (
            "examples/seeds/meshguard-support-agents.yaml",
            "docs/images/support-agents.dot",
        ),
        (
            "examples/delegation-open.writ",
            "docs/images/delegation-open.dot",
        ),
    ] {
        let c = writ::compile_files(&[root.join(policy)], None);
        let set = c.set.as_ref().unwrap();
        let g = writ_graph::build(set);
        let esc = writ_graph::escalations(set, &g);
        let drawn = writ_graph::draw::dot(&g, &esc);
        let committed = std::fs::read_to_string(root.join(dot_file)).unwrap();
        assert_eq!(
            committed, drawn,
            "{dot_file} is stale: run `writ graph {policy} > {dot_file}` and re-render the SVG with `dot -Tsvg`"
        );
        let svg = root.join(dot_file.replace(".dot", ".svg"));
        assert!(svg.exists(), "{} is missing", svg.display());
    }
}
