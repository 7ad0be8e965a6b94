//! Inputs for writ's benchmarks, and the timing loop of those that print
//! their own tables.

pub mod shapes;
pub mod timing;

use std::fmt::Write as _;

/// [`generated_policy_with`] with exact target names.
#[must_use]
pub fn generated_policy(rules: usize) -> String {
    generated_policy_with(rules, false)
}

/// A generated policy of `rules` rules over twenty agents (roles, tiers,
/// tool lists, limits), each rule with a condition, a role, a time window
/// or a reason. With `globs`, rule targets cycle through every glob shape
/// (prefix, suffix, inner `*`, `?`, class, alternatives, and host patterns
/// that ignore case) instead of exact names.
#[must_use]
pub fn generated_policy_with(rules: usize, globs: bool) -> String {
    let mut s = String::with_capacity(rules * 120);
    s.push_str("# generated for benchmarks\npolicy \"bench\" {\n  combine first-match\n  default deny risk medium\n  timezone \"Europe/Paris\"\n}\n\n");
    for a in 0..20 {
        let _ = writeln!(
            s,
            "agent \"agent-{a}\" {{\n  roles [role-{}]\n  tier trusted\n  tools allow [\"lookup_*\", \"tool_{a}\"]\n  limit 100 requests per minute\n}}\n",
            a % 5
        );
    }
    for i in 0..rules {
        let effect = ["allow", "deny", "approve"][i % 3];
        if globs {
            let _ = match i % 7 {
                0 => writeln!(s, "rule r{i}: {effect} \"tool:call\" on \"tool_{i}_*\""),
                1 => writeln!(s, "rule r{i}: {effect} \"tool:call\" on \"*_{i}_read\""),
                2 => writeln!(s, "rule r{i}: {effect} \"tool:call\" on \"a*b{i}\""),
                3 => writeln!(s, "rule r{i}: {effect} \"tool:call\" on \"q?x{i}\""),
                4 => writeln!(s, "rule r{i}: {effect} \"tool:call\" on \"[ab]c{i}\""),
                5 => writeln!(
                    s,
                    "rule r{i}: {effect} \"tool:call\" on \"{{get,put}}_{i}\""
                ),
                _ => writeln!(
                    s,
                    "rule r{i}: {effect} \"net:connect\" on hosts \"*.h{i}.Example.com\""
                ),
            };
        } else {
            let _ = writeln!(
                s,
                "rule r{i}: {effect} \"tool:call\" on \"tool_{}\"",
                i % 97
            );
        }
        match i % 4 {
            0 => {
                let _ = writeln!(s, "  when amount <= {} and currency in [USD, EUR]", i % 500);
            }
            1 => {
                let _ = writeln!(
                    s,
                    "  for roles [role-{}]\n  when not (customer.tier == gold) or labels contains vip",
                    i % 5
                );
            }
            2 => {
                let _ = writeln!(
                    s,
                    "  when time in \"09:00-17:00\" and weekday in [mon, tue, wed]\n  limit {} per hour",
                    1 + i % 50
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "  when email matches \"*@example.com\"\n  risk high\n  because \"Rule {i} needs {{agent}} to ask\""
                );
            }
        }
        s.push('\n');
    }
    s
}

/// A policy in the writ language with `agents` agents, each delegating to
/// `fanout` others (so `agents * fanout` delegation edges), twenty roles,
/// and rules that give each role different tools, with the ceiling `none`
/// so that the privilege-escalation check runs over every edge.
#[must_use]
pub fn delegation_policy(agents: usize, fanout: usize) -> String {
    let mut s = String::with_capacity(agents * 90);
    s.push_str(
        "policy \"graph\" {\n  ceiling none\n  max_delegation_depth 8\n  entry_agents [a0]\n}\n\n",
    );
    for i in 0..agents {
        let targets: Vec<String> = (1..=fanout)
            .map(|k| format!("a{}", (i * 7 + k * 13 + k * k) % agents))
            .filter(|t| *t != format!("a{i}"))
            .collect();
        let _ = writeln!(
            s,
            "agent \"a{i}\" {{\n  roles [r{}]\n  delegates [{}]\n}}\n",
            i % 20,
            targets.join(", ")
        );
    }
    s.push_str("rule handoffs: allow \"agent:delegate\"\n\n");
    for r in 0..40 {
        let _ = writeln!(
            s,
            "rule tool_{r}: allow \"tool:call\" on \"tool_{r}\"\n  for roles [r{}]\n",
            r % 20
        );
    }
    s
}

/// The decision workload in the writ language (the same as the peers', see
/// `src/peers.rs`): `n` rules, each allowing actions matching
/// `tool:search_web_<i>:*` for role `analyst` when `amount < 100`.
#[must_use]
pub fn decision_policy(n: usize) -> String {
    let mut s = String::with_capacity(n * 80);
    s.push_str("policy \"bench\" { default deny }\n\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "rule r{i}: allow \"tool:search_web_{i}:*\"\n  for roles [analyst]\n  when amount < 100\n"
        );
    }
    s
}

/// Compiles writ-language text into bundle bytes, as `writ compile` does.
///
/// # Panics
/// When the generated policy does not compile (a bug in the generator).
#[must_use]
pub fn compile_bundle(text: &str) -> Vec<u8> {
    compile_timed(text).bytes
}

/// A policy compiled by [`compile_timed`].
#[derive(Debug)]
pub struct Compiled {
    pub bytes: Vec<u8>,
    /// Seconds from the text to the bundle's bytes: parse, lower, checks,
    /// programs, lints, bundle.
    pub seconds: f64,
    /// The default limits refused the policy's glob programs (E0209): it was
    /// compiled again without a budget for all glob programs together, and
    /// `seconds` is that second compilation's.
    pub over_budget: bool,
}

/// Compiles writ-language text through the entry points `writ compile`
/// uses (`writ_compiler::compile`, then `bundle::compile_with` with the
/// glob programs the checks built), timing it. A policy over the glob programs
/// budget is compiled again with the budget lifted (see
/// [`Compiled::over_budget`]), so that benches can still measure it.
///
/// # Panics
/// When the generated policy has errors other than E0209 (a bug in the
/// generator).
#[must_use]
pub fn compile_timed(text: &str) -> Compiled {
    let sources = vec![writ_compiler::Source {
        name: "bench.writ".to_owned(),
        text: text.to_owned(),
    }];
    let started = std::time::Instant::now();
    let comp = writ_compiler::compile(&sources, None);
    if let Some(bytes) = bundle_of(&comp, &sources) {
        return Compiled {
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            over_budget: false,
        };
    }
    let refused = comp
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .all(|d| d.code == writ_diagnostics::Code::PatternTooBig);
    assert!(
        refused,
        "bench policy has errors: {:?}",
        comp.diagnostics.iter().find(|d| d.is_error())
    );
    let limits = writ_compiler::Limits {
        programs: usize::MAX,
        ..writ_compiler::Limits::current()
    };
    let started = std::time::Instant::now();
    let comp = writ_compiler::compile_with(
        &mut writ_compiler::Cache::with_limits(limits),
        &sources,
        None,
    );
    let Some(bytes) = bundle_of(&comp, &sources) else {
        panic!(
            "bench policy has errors without an programs budget: {:?}",
            comp.diagnostics.iter().find(|d| d.is_error())
        );
    };
    Compiled {
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        over_budget: true,
    }
}

/// The bundle of a compilation without errors.
fn bundle_of(
    comp: &writ_compiler::Compilation,
    sources: &[writ_compiler::Source],
) -> Option<Vec<u8>> {
    let set = comp.checked_set()?;
    match writ_compiler::bundle::compile_with(set, sources, None, &comp.programs) {
        Ok(b) => Some(b),
        Err(e) => panic!("bench policy does not compile: {e}"),
    }
}
