//! Differential tests: the compiled bundle (writ-runtime) and the reference
//! evaluator (writ-eval) must give the same decision, rule, policy, reason,
//! risk and retry time for random policies and random request sequences.
//!
//! The generator covers the whole language, and aims at the inputs where
//! engines drift apart:
//!
//! - globs of every shape (exact, `lit*`, `*lit`, inner `*`, `?`, classes,
//!   negated classes, ranges, alternatives, escapes) over an alphabet with
//!   multi-byte characters and newlines, and request strings made *from*
//!   the policy's globs (a matching string, then sometimes one edit), plus
//!   empty and very long strings;
//! - every condition form (`==`, `!=`, orderings, `in`, `not in`,
//!   `contains`, `matches`, `exists`, time, weekday, `and`/`or`/`not`);
//! - context shapes: flat dotted keys, nested maps, both (equal or not),
//!   lists, maps, null, values of the wrong type, and NaN or infinities
//!   put into the request through the Rust API;
//! - rule limits (per agent and shared) and agent, role and every-agent
//!   limits (requests and tokens, `on` a pattern, several per entry, an
//!   agent and a role of the same name), with request times stepping
//!   across window edges to the millisecond;
//! - delegation chains, `delegates`, ceilings, tiers, tags, tokens;
//! - two files merged, and the same policy in writ's YAML schema;
//! - the seed dialects (MeshGuard, Aegis, Sekuire): every example policy
//!   with generated requests.
//!
//! A policy the compiler refuses is counted, and the test fails if more
//! than a small share are refused (a generator that mostly writes broken
//! policies compares nothing). The test prints how many policies and
//! decisions it compared, and checks that the interesting outcomes
//! (limits reached, NaN refused, each effect) really happened.
//!
//! `WRIT_DIFF_POLICIES=20000 cargo test --release --test differential`
//! runs a longer campaign; `WRIT_DIFF_SEED` picks another seed (see
//! docs/testing.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::fmt::Write as _;

use writ::{Source, compile};
use writ_eval::{Evaluator, Request};

const REQUESTS_PER_POLICY: usize = 40;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: small, fast, and reproducible from one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Characters globs and request strings are made of: ASCII, separators,
/// two-, three- and four-byte characters, a newline and other control
/// characters (reasons quote them, and both engines must write them alike
/// in JSON), uppercase letters
/// (hosts fold ASCII case only: `É` and the Kelvin sign must not fold) and
/// glob syntax (escaped in patterns).
const ALPHABET: &[char] = &[
    'a', 'b', 'c', 'x', 'A', 'É', '\u{212a}', ':', '.', '-', '_', 'é', 'ß', '😀', '\n', '\u{c}',
    '\u{8}', '*', '?', ',',
];

#[derive(Clone, Debug)]
enum G {
    Lit(char),
    Star,
    Any,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
    Alt(Vec<Vec<G>>),
}

fn gen_glob(rng: &mut Rng, depth: u32) -> Vec<G> {
    let len = 1 + rng.below(5);
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let g = match rng.below(10) {
            // About one literal in eight is a run of 8 to 20 characters
            // (uppercase among them), so that glob sets' keys span whole
            // words of their hash, folded or not.
            0..=3 if rng.chance(12) => {
                let n = 8 + rng.below(13);
                out.extend((0..n).map(|_| G::Lit(*rng.pick(&['a', 'b', 'A', '.', 'é']))));
                continue;
            }
            0..=3 => G::Lit(*rng.pick(ALPHABET)),
            4 | 5 => G::Star,
            6 => G::Any,
            7 => {
                let members = ['a', 'b', 'é', '\n', 'x', '😀'];
                let mut items = Vec::new();
                for _ in 0..1 + rng.below(2) {
                    if rng.chance(30) {
                        items.push(('a', 'c'));
                    } else {
                        let c = *rng.pick(&members);
                        items.push((c, c));
                    }
                }
                G::Class {
                    negated: rng.chance(40),
                    items,
                }
            }
            8 if depth == 0 => {
                let n = 2 + rng.below(2);
                G::Alt(
                    (0..n)
                        .map(|_| {
                            if rng.chance(15) {
                                Vec::new()
                            } else {
                                gen_glob(rng, 1)
                            }
                        })
                        .collect(),
                )
            }
            _ => G::Lit(*rng.pick(&['a', 'b', 'é'])),
        };
        out.push(g);
    }
    out
}

fn glob_text(g: &[G]) -> String {
    let mut s = String::new();
    for t in g {
        match t {
            G::Lit(c) => {
                if "*?[]{}\\,".contains(*c) {
                    s.push('\\');
                }
                s.push(*c);
            }
            G::Star => s.push('*'),
            G::Any => s.push('?'),
            G::Class { negated, items } => {
                s.push('[');
                if *negated {
                    s.push('!');
                }
                for (lo, hi) in items {
                    s.push(*lo);
                    if lo != hi {
                        s.push('-');
                        s.push(*hi);
                    }
                }
                s.push(']');
            }
            G::Alt(alts) => {
                s.push('{');
                for (i, a) in alts.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&glob_text(a));
                }
                s.push('}');
            }
        }
    }
    s
}

/// A string the glob matches (when `exact`), else sometimes one edit off.
fn instance(rng: &mut Rng, g: &[G]) -> String {
    let mut s = String::new();
    for t in g {
        match t {
            G::Lit(c) => s.push(*c),
            G::Star => {
                for _ in 0..rng.below(4) {
                    s.push(*rng.pick(ALPHABET));
                }
            }
            G::Any => s.push(*rng.pick(ALPHABET)),
            G::Class { negated, items } => {
                let inside = |c: char| items.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                let want = !*negated;
                let mut c = *rng.pick(ALPHABET);
                for _ in 0..8 {
                    if inside(c) == want {
                        break;
                    }
                    c = if want {
                        items[0].0
                    } else {
                        *rng.pick(ALPHABET)
                    };
                }
                s.push(c);
            }
            G::Alt(alts) => {
                let alt = &alts[rng.below(alts.len())];
                s.push_str(&instance(rng, alt));
            }
        }
    }
    if rng.chance(25) {
        mutate(rng, &mut s);
    }
    s
}

fn mutate(rng: &mut Rng, s: &mut String) {
    let mut chars: Vec<char> = s.chars().collect();
    let at = rng.below(chars.len() + 1);
    match rng.below(3) {
        0 => chars.insert(at, *rng.pick(ALPHABET)),
        1 if at < chars.len() => {
            chars.remove(at);
        }
        _ if at < chars.len() => chars[at] = *rng.pick(ALPHABET),
        _ => chars.push(*rng.pick(ALPHABET)),
    }
    *s = chars.into_iter().collect();
}

/// A string in a `.writ` file.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// Realistic action names (ceilings read some of them) beside random ones.
const ACTIONS: &[&str] = &[
    "*",
    "tool:call",
    "model:use",
    "net:connect",
    "agent:delegate",
    "handoff:b",
    "read:x",
    "write:doc",
];
const AGENTS: &[&str] = &["a", "b", "c", "ops", "ghost"];
const ROLES: &[&str] = &["support", "billing", "ops"];
const FIELDS: &[&str] = &[
    "amount",
    "currency",
    "a.b",
    "a.b.c",
    "labels",
    "name",
    "ticket.priority",
];
const NUMBERS: &[&str] = &["0", "100", "-1", "0.5", "99.99", "1e20", "9007199254740993"];
const WORDS: &[&str] = &["x", "USD", "vip", "\"é\\n\"", "\"\"", "true", "null", "5"];
const UNITS: &[&str] = &["second", "minute", "hour", "day"];

/// Everything a generated policy holds that requests are made from.
#[derive(Default)]
struct Vocab {
    actions: Vec<Vec<G>>,
    targets: Vec<Vec<G>>,
    strings: Vec<String>,
}

fn pattern(rng: &mut Rng, vocab: &mut Vec<Vec<G>>, fixed: &[&str]) -> String {
    if rng.chance(35) {
        let f = *rng.pick(fixed);
        vocab.push(f.chars().map(G::Lit).collect());
        return quote(f);
    }
    let mut g = gen_glob(rng, 0);
    // Exact, prefix and suffix shapes are compiled apart from glob programs.
    match rng.below(6) {
        0 => g.retain(|t| matches!(t, G::Lit(_))),
        1 => {
            g.retain(|t| matches!(t, G::Lit(_)));
            g.push(G::Star);
        }
        2 => {
            g.retain(|t| matches!(t, G::Lit(_)));
            g.insert(0, G::Star);
        }
        _ => {}
    }
    if g.is_empty() {
        g.push(G::Lit('a'));
    }
    let text = glob_text(&g);
    vocab.push(g);
    quote(&text)
}

fn atom(rng: &mut Rng, vocab: &mut Vocab) -> String {
    let f = *rng.pick(FIELDS);
    match rng.below(12) {
        0 | 1 => format!(
            "{f} {} {}",
            rng.pick(&["<", "<=", ">", ">="]),
            rng.pick(NUMBERS)
        ),
        2 | 3 => {
            let v = if rng.chance(50) {
                (*rng.pick(NUMBERS)).to_owned()
            } else {
                (*rng.pick(WORDS)).to_owned()
            };
            format!("{f} {} {v}", rng.pick(&["==", "!="]))
        }
        4 => {
            let items: Vec<String> = (0..1 + rng.below(3))
                .map(|_| {
                    if rng.chance(50) {
                        (*rng.pick(NUMBERS)).to_owned()
                    } else {
                        (*rng.pick(WORDS)).to_owned()
                    }
                })
                .collect();
            format!(
                "{f} {}in [{}]",
                if rng.chance(40) { "not " } else { "" },
                items.join(", ")
            )
        }
        5 => format!(
            "{f} contains {}",
            if rng.chance(50) {
                rng.pick(WORDS)
            } else {
                rng.pick(NUMBERS)
            }
        ),
        6 | 7 => {
            let mut globs = Vec::new();
            let p = pattern(rng, &mut globs, &["x*", "*@example.com"]);
            for g in &globs {
                vocab.strings.push(glob_text(g));
                let s = instance(rng, g);
                vocab.strings.push(s);
            }
            let field = if rng.chance(30) { "target" } else { f };
            format!("{field} matches {p}")
        }
        8 => format!("{f} exists"),
        9 => format!(
            "time in {}",
            rng.pick(&["\"09:00-17:00\"", "\"22:00-06:00\"", "\"10:00-10:01\""])
        ),
        10 => format!(
            "weekday in [{}]",
            rng.pick(&["sat, sun", "wed", "mon, tue, wed, thu, fri"])
        ),
        _ => (*rng.pick(&["true", "false", "target == x"])).to_owned(),
    }
}

fn condition(rng: &mut Rng, vocab: &mut Vocab, depth: u32) -> String {
    if depth == 0 || rng.chance(40) {
        return atom(rng, vocab);
    }
    match rng.below(3) {
        0 => format!(
            "({} and {})",
            condition(rng, vocab, depth - 1),
            condition(rng, vocab, depth - 1)
        ),
        1 => format!(
            "({} or {})",
            condition(rng, vocab, depth - 1),
            condition(rng, vocab, depth - 1)
        ),
        _ => format!("not ({})", condition(rng, vocab, depth - 1)),
    }
}

fn entry_limits(rng: &mut Rng, vocab: &mut Vocab, s: &mut String) {
    for _ in 0..rng.below(4) {
        let metric = if rng.chance(70) { "requests" } else { "tokens" };
        let n = if metric == "tokens" {
            10 + rng.below(40)
        } else {
            1 + rng.below(4)
        };
        let _ = write!(s, "  limit {n} {metric} per {}", rng.pick(UNITS));
        if rng.chance(30) {
            let p = pattern(rng, &mut vocab.actions, ACTIONS);
            let _ = write!(s, " on {p}");
        }
        s.push('\n');
    }
}

fn names(rng: &mut Rng, pool: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for _ in 0..1 + rng.below(2) {
        let n = (*rng.pick(pool)).to_owned();
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// One generated policy: its files, and what requests are made from.
fn policy(rng: &mut Rng) -> (Vec<String>, Vocab) {
    let mut vocab = Vocab::default();
    let mut head = String::new();
    let _ = write!(
        head,
        "policy \"p\" {{\n  combine {}\n  default {} risk medium\n",
        rng.pick(&["first-match", "deny-overrides"]),
        rng.pick(&["deny", "allow", "approve"])
    );
    if rng.chance(40) {
        head.push_str("  timezone \"Europe/Paris\"\n");
    }
    if rng.chance(40) {
        let _ = writeln!(head, "  ceiling {}", rng.pick(&["none", "strict"]));
    }
    if rng.chance(30) {
        let _ = writeln!(head, "  max_delegation_depth {}", 2 + rng.below(2));
    }
    head.push_str("}\n");
    // Sometimes a minimal policy: a few rules of one action and nothing
    // else (the smallest records a bundle can hold).
    if rng.chance(4) {
        for i in 0..1 + rng.below(3) {
            let _ = writeln!(
                head,
                "rule r{i}: {} {}",
                rng.pick(&["allow", "deny", "approve"]),
                pattern(rng, &mut vocab.actions, &["*", "a"])
            );
        }
        return (vec![head], vocab);
    }
    let mut items: Vec<String> = Vec::new();
    // Agents and roles; `ops` may be both.
    let declared: Vec<&str> = ["a", "b", "ops"]
        .into_iter()
        .filter(|_| rng.chance(60))
        .collect();
    for &name in &declared {
        let mut s = format!("agent \"{name}\" {{\n");
        if rng.chance(60) {
            let _ = writeln!(s, "  roles [{}]", names(rng, ROLES).join(", "));
        }
        if rng.chance(50) {
            let _ = writeln!(
                s,
                "  tier {}",
                rng.pick(&["trusted", "verified", "privileged"])
            );
        }
        if rng.chance(40) {
            s.push_str("  tags [x]\n");
        }
        for list in ["tools", "models", "hosts"] {
            if rng.chance(20) {
                let kind = if rng.chance(50) { "allow" } else { "block" };
                let p = pattern(
                    rng,
                    &mut vocab.targets,
                    &["refund", "gpt-4", "api.example.com"],
                );
                let _ = writeln!(s, "  {list} {kind} [{p}]");
            }
        }
        if rng.chance(15) {
            s.push_str("  require_tls true\n");
        }
        let others: Vec<&str> = declared.iter().copied().filter(|d| *d != name).collect();
        if !others.is_empty() && rng.chance(40) {
            let _ = writeln!(s, "  delegates [{}]", names(rng, &others).join(", "));
        }
        entry_limits(rng, &mut vocab, &mut s);
        s.push_str("}\n");
        items.push(s);
    }
    for role in ROLES {
        if rng.chance(30) {
            let mut s = format!("role \"{role}\" {{\n");
            if rng.chance(30) {
                s.push_str("  token_prefix \"tok_\"\n");
            }
            entry_limits(rng, &mut vocab, &mut s);
            s.push_str("}\n");
            items.push(s);
        }
    }
    if rng.chance(20) {
        let mut s = String::from("every agent {\n");
        entry_limits(rng, &mut vocab, &mut s);
        if s.lines().count() == 1 {
            s.push_str("  limit 3 requests per minute\n");
        }
        s.push_str("}\n");
        items.push(s);
    }
    // Now and then a policy with a large bucket: more rules than the
    // runtime's principal index takes (16), most on the first rule's
    // actions and most scoped, so that buckets are split by agent and
    // role and requests take the split paths (rules found by target
    // across principals, a principal's share, the default's explanation
    // widened from the narrowed buckets).
    let big = rng.chance(6);
    let count = if big {
        17 + rng.below(32)
    } else {
        1 + rng.below(8)
    };
    let mut shared_actions: Option<Vec<String>> = None;
    for i in 0..count {
        let mut s = format!("rule r{i}: {} [", rng.pick(&["allow", "deny", "approve"]));
        let actions: Vec<String> = match &shared_actions {
            Some(a) if rng.chance(80) => a.clone(),
            _ => (0..1 + rng.below(2))
                .map(|_| pattern(rng, &mut vocab.actions, ACTIONS))
                .collect(),
        };
        if big && shared_actions.is_none() {
            shared_actions = Some(actions.clone());
        }
        s.push_str(&actions.join(", "));
        s.push(']');
        if rng.chance(60) {
            let hosts = rng.chance(15);
            let targets: Vec<String> = (0..1 + rng.below(2))
                .map(|_| {
                    pattern(
                        rng,
                        &mut vocab.targets,
                        &["refund", "doc", "api.example.com", "b"],
                    )
                })
                .collect();
            let _ = write!(
                s,
                "\n  on {}[{}]",
                if hosts { "hosts " } else { "" },
                targets.join(", ")
            );
        }
        if rng.chance(if big { 70 } else { 30 }) {
            let _ = write!(
                s,
                "\n  {}",
                rng.pick(&[
                    "for agents [a]",
                    "for agents [ops, b]",
                    "for roles [support]",
                    "for roles [billing, ops]",
                    "for tiers [trusted]",
                    "for tags [x]"
                ])
            );
        }
        if rng.chance(65) {
            let c = condition(rng, &mut vocab, 3);
            let _ = write!(s, "\n  when {c}");
        }
        if rng.chance(8) {
            s.push_str("\n  require stores or store in [vs_a, vs_b]");
        }
        if rng.chance(25) {
            let _ = write!(s, "\n  limit {} per {}", 1 + rng.below(3), rng.pick(UNITS));
            if rng.chance(30) {
                s.push_str(" shared");
            }
        }
        if rng.chance(30) {
            let _ = write!(s, "\n  risk {}", rng.pick(&["low", "high"]));
        }
        if rng.chance(30) {
            let _ = write!(
                s,
                "\n  because {}",
                rng.pick(&["\"because {agent} did {action} on {target}\"", "\"plain\""])
            );
        }
        s.push('\n');
        items.push(s);
    }
    // Two files merged, sometimes: the second without a policy block.
    if rng.chance(30) && items.len() > 1 {
        let cut = 1 + rng.below(items.len() - 1);
        let second = items.split_off(cut);
        (vec![head + &items.concat(), second.concat()], vocab)
    } else {
        (vec![head + &items.concat()], vocab)
    }
}

/// An adversarial string: from the policy's globs, or edge cases.
fn string(rng: &mut Rng, globs: &[Vec<G>], fixed: &[&str]) -> String {
    match rng.below(10) {
        0..=5 if !globs.is_empty() => {
            let g = &globs[rng.below(globs.len())];
            instance(rng, g)
        }
        6 => String::new(),
        7 => {
            let base = (*rng.pick(fixed)).to_owned();
            base.repeat(1 + rng.below(300))
        }
        8 => {
            let mut s = String::new();
            for _ in 0..rng.below(6) {
                s.push(*rng.pick(ALPHABET));
            }
            s
        }
        _ => (*rng.pick(fixed)).to_owned(),
    }
}

fn value(rng: &mut Rng, vocab: &Vocab) -> serde_json::Value {
    use serde_json::json;
    match rng.below(9) {
        0 | 1 => {
            let n: f64 = *rng.pick(&[0.0, -0.0, 100.0, 100.5, 99.99, -1.0, 0.5, 1e20, 5.0]);
            json!(n)
        }
        2 => json!(9_007_199_254_740_993u64),
        3 | 4 => {
            let s = if !vocab.strings.is_empty() && rng.chance(50) {
                rng.pick(&vocab.strings).clone()
            } else {
                (*rng.pick(&["x", "USD", "vip", "é\n", "", "5", "high", "vs_a"])).to_owned()
            };
            json!(s)
        }
        5 => json!(rng.chance(50)),
        6 => serde_json::Value::Null,
        7 => json!([rng.pick(&["vip", "x", "USD"]), 5, "é\n"]),
        _ => json!({"b": "x", "c": 5}),
    }
}

/// Puts a value at a dotted path: flat, nested, both, or both differing.
fn place(
    rng: &mut Rng,
    ctx: &mut serde_json::Map<String, serde_json::Value>,
    path: &str,
    v: serde_json::Value,
    vocab: &Vocab,
) {
    let segs: Vec<&str> = path.split('.').collect();
    let nested = |ctx: &mut serde_json::Map<String, serde_json::Value>, v: serde_json::Value| {
        let mut cur = ctx;
        for s in &segs[..segs.len() - 1] {
            let slot = cur
                .entry((*s).to_owned())
                .or_insert_with(|| serde_json::json!({}));
            if !slot.is_object() {
                *slot = serde_json::json!({});
            }
            cur = slot.as_object_mut().unwrap();
        }
        cur.insert((*segs.last().unwrap()).to_owned(), v);
    };
    if segs.len() == 1 {
        ctx.insert(path.to_owned(), v);
        return;
    }
    match rng.below(5) {
        0 | 1 => nested(ctx, v),
        2 => {
            ctx.insert(path.to_owned(), v);
        }
        3 => {
            ctx.insert(path.to_owned(), v.clone());
            nested(ctx, v);
        }
        _ => {
            ctx.insert(path.to_owned(), v);
            let other = value(rng, vocab);
            nested(ctx, other);
        }
    }
}

/// One request; `at` advances the sequence's clock across window edges.
fn request(rng: &mut Rng, vocab: &Vocab, clock: &mut i64) -> String {
    let mut ctx = serde_json::Map::new();
    for f in FIELDS {
        if rng.chance(55) {
            let v = value(rng, vocab);
            place(rng, &mut ctx, f, v, vocab);
        }
    }
    if rng.chance(40) {
        ctx.insert("scheme".into(), "https".into());
    }
    if rng.chance(20) {
        ctx.insert(
            rng.pick(&["stores", "store"]).to_string(),
            serde_json::json!(rng.pick(&["vs_a", "vs_c"])),
        );
    }
    let step: i64 = *rng.pick(&[
        0, 1, 999, 1000, 1001, 59_999, 60_000, 3_599_999, 3_600_000, 86_400_000, 250,
    ]);
    *clock += step;
    let mut action = string(rng, &vocab.actions, ACTIONS);
    if action.trim().is_empty() {
        // Requests need an action (the JSON reader refuses a blank one).
        action = "tool:call".to_owned();
    }
    let mut req = serde_json::json!({
        "action": action,
        "context": ctx,
        "tokens": rng.below(30),
    });
    if rng.chance(97) {
        let at = jiff::Timestamp::from_millisecond(*clock).unwrap();
        req["at"] = at.to_string().into();
    }
    let roles: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(ROLES)).collect();
    req["roles"] = serde_json::json!(roles);
    if rng.chance(15) {
        let n = 2 + rng.below(2);
        let chain: Vec<&str> = (0..n).map(|_| *rng.pick(AGENTS)).collect();
        req["chain"] = serde_json::json!(chain);
    } else {
        req["agent"] = (*rng.pick(AGENTS)).into();
    }
    if rng.chance(80) {
        req["target"] = string(
            rng,
            &vocab.targets,
            &["refund", "doc", "b", "API.Example.COM", "gpt-4"],
        )
        .into();
    }
    if rng.chance(15) {
        req["token"] = (*rng.pick(&["tok_1", "other"])).into();
    }
    // A caller's tier (a gateway's, from a verified token): it counts only
    // for an agent the policy gives no tier.
    if rng.chance(30) {
        req["tier"] = (*rng.pick(&["untrusted", "verified", "trusted", "privileged"])).into();
    }
    if rng.chance(20) {
        req["tags"] = serde_json::json!([rng.pick(&["x", "y"])]);
    }
    req.to_string()
}

/// Puts a NaN or an infinity into a parsed request, as the Rust API allows.
fn poison(rng: &mut Rng, req: &mut Request) {
    let v = *rng.pick(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    let key = (*rng.pick(&["amount", "a"])).to_owned();
    let value = if key == "a" {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "b".to_owned(),
            writ_runtime::Value::List(vec![writ_runtime::Value::Number(v)]),
        );
        writ_runtime::Value::Map(m)
    } else {
        writ_runtime::Value::Number(v)
    };
    req.context.insert(key, value);
}

#[derive(Default, Debug)]
struct Tally {
    policies: u64,
    refused: u64,
    yaml_twins: u64,
    decisions: u64,
    allow: u64,
    deny: u64,
    approve: u64,
    limited: u64,
    non_finite: u64,
    disagreements: u64,
}

/// Decides every request in both engines and compares; returns each
/// decision's JSON.
fn compare(
    sources: &[Source],
    requests: &[(String, bool)],
    seed: &mut Rng,
    tally: &mut Tally,
    label: &str,
) -> Option<Vec<String>> {
    let comp = compile(sources, None);
    let Some(set) = comp.checked_set() else {
        if std::env::var("WRIT_DIFF_SHOW_REFUSED").is_ok() {
            for d in &comp.diagnostics {
                eprintln!("refused: {} {}", d.code.as_str(), d.message);
            }
        }
        return None;
    };
    let bytes = match writ::bundle::compile(set, sources, None) {
        Ok(b) => b,
        Err(e) => panic!("{label}: compile failed: {e}\n{}", show(sources)),
    };
    let rt = writ_runtime::Runtime::from_bytes(&bytes)
        .unwrap_or_else(|e| panic!("{label}: load failed: {e}\n{}", show(sources)));
    let mut reference = Evaluator::new(set);
    let now = "2025-01-15T12:00:00Z".parse().unwrap();
    let mut out = Vec::with_capacity(requests.len());
    for (json, poisoned) in requests {
        let mut req = Request::from_json(json).unwrap();
        if *poisoned {
            poison(seed, &mut req);
        }
        let expected = reference.check(&req, now).to_json();
        let got = rt.check_at(&req, now).to_json(&req);
        if got != expected {
            let report = format!(
                "{label}: the engines disagree\nrequest {json} (NaN put in: {poisoned})\nruntime:   {got}\nreference: {expected}\n{}",
                show(sources)
            );
            if let Ok(dir) = std::env::var("WRIT_DIFF_DUMP") {
                let dir = std::path::Path::new(&dir);
                let lines: Vec<&str> = requests.iter().map(|(r, _)| r.as_str()).collect();
                std::fs::write(dir.join("requests.jsonl"), lines.join("\n")).unwrap();
                for s in sources {
                    std::fs::write(dir.join(s.name.replace('/', "_")), &s.text).unwrap();
                }
            }
            // WRIT_DIFF_KEEP_GOING=1: count every disagreement (one per
            // policy: limits may drift apart after it) and fail at the end.
            assert!(std::env::var("WRIT_DIFF_KEEP_GOING").is_ok(), "{report}");
            if tally.disagreements < 40 {
                eprintln!("{report}\n");
            }
            tally.disagreements += 1;
            return Some(out);
        }
        tally.decisions += 1;
        let d: serde_json::Value = serde_json::from_str(&got).unwrap();
        match d["decision"].as_str() {
            Some("allow") => tally.allow += 1,
            Some("approve") => tally.approve += 1,
            _ => tally.deny += 1,
        }
        if d["retry_after_s"].is_u64() {
            tally.limited += 1;
        }
        if d["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not a finite number"))
        {
            tally.non_finite += 1;
        }
        out.push(got);
    }
    Some(out)
}

fn show(sources: &[Source]) -> String {
    sources
        .iter()
        .map(|s| format!("--- {}\n{}", s.name, s.text))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_bundle_decides_like_the_reference_evaluator() {
    let policies = env_u64("WRIT_DIFF_POLICIES", 2_500);
    let seed = env_u64("WRIT_DIFF_SEED", 0x5EED_0019);
    let mut tally = Tally::default();
    // WRIT_DIFF_ONLY=N replays policy N of the seed alone.
    let only = std::env::var("WRIT_DIFF_ONLY")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    for n in 0..policies {
        if only.is_some_and(|o| o != n) {
            continue;
        }
        let mut rng = Rng(seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
        let (files, vocab) = policy(&mut rng);
        let sources: Vec<Source> = files
            .iter()
            .enumerate()
            .map(|(i, text)| Source {
                name: format!("p{n}_{i}.writ"),
                text: text.clone(),
            })
            .collect();
        let mut clock = 1_736_935_198_000i64; // 2025-01-15T09:59:58Z
        let requests: Vec<(String, bool)> = (0..REQUESTS_PER_POLICY)
            .map(|_| (request(&mut rng, &vocab, &mut clock), rng.chance(3)))
            .collect();
        tally.policies += 1;
        let label = format!("policy {n} (seed {seed:#x})");
        let Some(decided) = compare(&sources, &requests, &mut rng, &mut tally, &label) else {
            tally.refused += 1;
            continue;
        };
        // The same policy in writ's YAML schema decides the same way.
        // (After a disagreement, in WRIT_DIFF_KEEP_GOING mode, `decided`
        // is cut short: no twin then.)
        if sources.len() == 1 && decided.len() == requests.len() && rng.chance(20) {
            let comp = compile(&sources, None);
            let set = comp.checked_set().unwrap();
            if let Ok(yaml) = writ::lang::convert::to_yaml(set, &[]) {
                let twin = vec![Source {
                    name: format!("p{n}.yaml"),
                    text: yaml,
                }];
                let again =
                    compare(&twin, &requests, &mut rng, &mut tally, &label).unwrap_or_else(|| {
                        panic!("{label}: the YAML twin does not compile\n{}", show(&twin))
                    });
                // The effects agree. (Reasons may name another limit: the
                // schema lists roles before agents, so a request over
                // both an agent's and a role's limit names the first.)
                let effect = |j: &String| {
                    serde_json::from_str::<serde_json::Value>(j).unwrap()["decision"].clone()
                };
                let a: Vec<_> = again.iter().map(effect).collect();
                let d: Vec<_> = decided.iter().map(effect).collect();
                if a != d {
                    let i = a.iter().zip(&d).position(|(x, y)| x != y).unwrap_or(0);
                    // WRIT_DIFF_DUMP=DIR writes the policy, its twin and the
                    // requests, to replay with `writ eval --requests`.
                    if let Ok(dir) = std::env::var("WRIT_DIFF_DUMP") {
                        let dir = std::path::Path::new(&dir);
                        let lines: Vec<&str> = requests.iter().map(|(r, _)| r.as_str()).collect();
                        std::fs::write(dir.join("requests.jsonl"), lines.join("\n")).unwrap();
                        std::fs::write(dir.join("policy.writ"), &sources[0].text).unwrap();
                        std::fs::write(dir.join("twin.yaml"), &twin[0].text).unwrap();
                    }
                    let report = format!(
                        "{label}: the YAML twin decides otherwise at request {i}: {}\ntwin:   {}\nsource: {}\n{}\n{}",
                        requests[i].0,
                        again[i],
                        decided[i],
                        show(&twin),
                        show(&sources)
                    );
                    assert!(std::env::var("WRIT_DIFF_KEEP_GOING").is_ok(), "{report}");
                    eprintln!("{report}\n");
                    tally.disagreements += 1;
                }
                tally.yaml_twins += 1;
            }
        }
    }
    println!("differential: {tally:?}");
    assert_eq!(tally.disagreements, 0, "the engines disagreed: {tally:?}");
    let compared = tally.policies - tally.refused;
    assert!(
        tally.refused * 20 <= tally.policies,
        "more than 5% of generated policies were refused: {tally:?}"
    );
    assert!(compared * REQUESTS_PER_POLICY as u64 <= tally.decisions);
    if policies >= 500 && only.is_none() {
        // The generator reaches the outcomes that matter.
        for (what, n) in [
            ("allow", tally.allow),
            ("deny", tally.deny),
            ("approve", tally.approve),
            ("limits reached", tally.limited),
            ("NaN refused", tally.non_finite),
            ("YAML twins", tally.yaml_twins),
        ] {
            assert!(n >= 20, "only {n} decisions of kind {what}: {tally:?}");
        }
    }
}

/// A YAML string (JSON's double-quoted form is valid YAML).
fn yq(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn glob_pattern(rng: &mut Rng, vocab: &mut Vec<Vec<G>>, fixed: &[&str]) -> String {
    // `pattern` quotes for the writ language; undo it for YAML.
    let mut g = gen_glob(rng, 0);
    if rng.chance(35) {
        let f = *rng.pick(fixed);
        g = f.chars().map(G::Lit).collect();
    }
    let text = glob_text(&g);
    vocab.push(g);
    yq(&text)
}

fn yaml_value(rng: &mut Rng, vocab: &Vocab) -> String {
    match rng.below(4) {
        0 => (*rng.pick(&["0", "100", "-1", "99.99", "1e20"])).to_owned(),
        1 if !vocab.strings.is_empty() => yq(&vocab.strings[rng.below(vocab.strings.len())]),
        _ => {
            let words: &[&str] = &["x", "USD", "vip", "é\n", "5"];
            yq(words[rng.below(words.len())])
        }
    }
}

/// The glob as fnmatch can write it (no escapes, no `{a,b}`): alternatives
/// become their first choice, a class with a character fnmatch reads
/// otherwise its first member, and a character glob_text would escape a
/// class of its own (`[*]`, `[]]`).
fn to_fnmatch(g: Vec<G>) -> Vec<G> {
    let special = |c: char| "]!^-\\[".contains(c);
    g.into_iter()
        .flat_map(|t| match t {
            G::Alt(mut alts) if !alts.is_empty() => to_fnmatch(alts.swap_remove(0)),
            G::Alt(_) => Vec::new(),
            G::Class { items, .. } if items.iter().any(|&(lo, hi)| special(lo) || special(hi)) => {
                to_fnmatch(
                    items
                        .first()
                        .map(|&(lo, _)| G::Lit(lo))
                        .into_iter()
                        .collect(),
                )
            }
            G::Lit(c) if "*?[]{}\\,".contains(c) => vec![G::Class {
                negated: false,
                items: vec![(c, c)],
            }],
            other => vec![other],
        })
        .collect()
}

/// An Aegis pattern (fnmatch) and what it matches.
fn fnmatch_pattern(rng: &mut Rng, vocab: &mut Vec<Vec<G>>, fixed: &[&str]) -> String {
    let mut g = gen_glob(rng, 0);
    if rng.chance(35) {
        g = rng.pick(fixed).chars().map(G::Lit).collect();
    }
    let g = to_fnmatch(g);
    let mut text = glob_text(&g);
    if text.is_empty() {
        text.push('*');
        vocab.push(vec![G::Star]);
    } else {
        vocab.push(g);
    }
    yq(&text)
}

/// A policy in the Aegis dialect, as agent-aegis 1.0.0 reads it: fnmatch
/// patterns, optional keys (approval, name, match), agents, ISO weekdays,
/// Python's comparisons (booleans as 0 and 1, strings ordered) and the
/// regular expressions `param_matches` can take; comparisons that can fail
/// in Aegis give their rule a guard rule.
fn aegis(rng: &mut Rng) -> (String, Vocab) {
    let mut vocab = Vocab::default();
    let approvals = ["auto", "approve", "block"];
    let risks = ["low", "medium", "high", "critical", "HIGH"];
    let mut s = String::from("version: \"1\"\n");
    if rng.chance(80) {
        let _ = write!(
            s,
            "defaults:\n  risk_level: {}\n  approval: {}\n",
            rng.pick(&risks),
            rng.pick(&approvals)
        );
    }
    s.push_str("rules:\n");
    for i in 0..1 + rng.below(6) {
        let mut lines = Vec::new();
        if rng.chance(70) {
            lines.push(format!("name: r{i}"));
        }
        let mut m = Vec::new();
        if rng.chance(85) {
            m.push(format!(
                "type: {}",
                fnmatch_pattern(rng, &mut vocab.actions, ACTIONS)
            ));
        }
        if rng.chance(50) {
            m.push(format!(
                "target: {}",
                fnmatch_pattern(rng, &mut vocab.targets, &["refund", "doc", "*"])
            ));
        }
        if rng.chance(15) {
            m.push(format!("agent: {}", rng.pick(AGENTS)));
        }
        if !m.is_empty() {
            lines.push(format!("match: {{ {} }}", m.join(", ")));
        }
        if rng.chance(60) {
            let mut conds = Vec::new();
            let mut used = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let key = *rng.pick(&[
                    "param_eq",
                    "param_gt",
                    "param_lt",
                    "param_gte",
                    "param_lte",
                    "param_contains",
                    "param_matches",
                    "time_after",
                    "time_before",
                    "weekdays",
                ]);
                if used.contains(&key) {
                    continue;
                }
                used.push(key);
                let field = rng.pick(FIELDS);
                conds.push(match key {
                    "time_after" | "time_before" => format!(
                        "{key}: \"{}\"",
                        rng.pick(&["08:00", "18:00", "12:30", "9:5", "00:00"])
                    ),
                    "weekdays" => {
                        let days: Vec<String> = (1..=7)
                            .filter(|_| rng.chance(40))
                            .map(|d| d.to_string())
                            .collect();
                        format!("weekdays: [{}]", days.join(", "))
                    }
                    "param_matches" => {
                        let (re, example) = *rng.pick(&[
                            ("\"\"", "x"),
                            ("\"^x\"", "xy"),
                            ("\"x$\"", "ax"),
                            ("\"^a.c$\"", "abc"),
                            ("\"[0-9]\"", "a5"),
                            ("\"^[^x]\"", "y"),
                            ("\"a?b\"", "b"),
                            ("\"é\"", "é\n"),
                            ("'\\.'", "a.b"),
                        ]);
                        vocab.strings.push(example.to_owned());
                        format!("param_matches: {{ {field}: {re} }}")
                    }
                    "param_eq" | "param_contains" => {
                        let v = if rng.chance(30) {
                            (*rng.pick(&["true", "false", "1", "0", "null", "[1, x]"])).to_owned()
                        } else {
                            yaml_value(rng, &vocab)
                        };
                        format!("{key}: {{ {field}: {v} }}")
                    }
                    _ => format!(
                        "{key}: {{ {field}: {} }}",
                        rng.pick(&["0", "100", "-1", "99.99", "true", "\"m\"", "\"USD\""])
                    ),
                });
            }
            lines.push(format!("conditions: {{ {} }}", conds.join(", ")));
        }
        if rng.chance(70) {
            lines.push(format!("risk_level: {}", rng.pick(&risks)));
        }
        if rng.chance(85) {
            lines.push(format!("approval: {}", rng.pick(&approvals)));
        }
        if lines.is_empty() {
            lines.push("description: everything".to_owned());
        }
        for (n, line) in lines.iter().enumerate() {
            let _ = writeln!(s, "{}{line}", if n == 0 { "  - " } else { "    " });
        }
    }
    (s, vocab)
}

/// A policy in the MeshGuard dialect.
fn meshguard(rng: &mut Rng) -> (String, Vocab) {
    let mut vocab = Vocab::default();
    let mut s = String::from("name: p\nversion: \"1.0\"\n");
    if rng.chance(40) {
        // Each list given must match; the tiers come from the agents
        // `meshguard_agents` declares.
        s.push_str("appliesTo:\n");
        let mut any = false;
        if rng.chance(50) {
            s.push_str("  tags:\n    - x\n");
            any = true;
        }
        if rng.chance(50) {
            let tiers: Vec<&str> = (0..1 + rng.below(2))
                .map(|_| *rng.pick(&["verified", "trusted", "privileged", "anonymous"]))
                .collect();
            let _ = writeln!(s, "  trustTiers: [{}]", tiers.join(", "));
            any = true;
        }
        if !any || rng.chance(40) {
            let ids: Vec<&str> = (0..1 + rng.below(3)).map(|_| *rng.pick(AGENTS)).collect();
            let _ = writeln!(s, "  agentIds: [{}]", ids.join(", "));
        }
    }
    if rng.chance(35) {
        s.push_str("delegation:\n");
        if rng.chance(60) {
            let _ = writeln!(s, "  maxDepth: {}", 1 + rng.below(2));
        }
        let ceiling: Vec<String> = (0..1 + rng.below(2))
            .map(|_| glob_pattern(rng, &mut vocab.actions, ACTIONS))
            .collect();
        let _ = writeln!(s, "  permissionCeiling: [{}]", ceiling.join(", "));
    }
    if rng.chance(60) {
        let _ = writeln!(
            s,
            "agents:\n  support:\n    rate_limits:\n      requests_per_{}: {}",
            rng.pick(&["minute", "hour"]),
            1 + rng.below(3)
        );
    }
    s.push_str("rules:\n");
    for _ in 0..1 + rng.below(6) {
        let _ = write!(
            s,
            "  - effect: {}\n    actions:\n      - {}\n",
            rng.pick(&["allow", "deny", "approve", "require_approval"]),
            glob_pattern(rng, &mut vocab.actions, ACTIONS)
        );
        if rng.chance(60) {
            s.push_str("    conditions:\n");
            match rng.below(4) {
                0 => {
                    let _ = writeln!(s, "      amount_max: {}", rng.pick(&["100", "0.5", "-1"]));
                }
                1 => {
                    let _ = writeln!(
                        s,
                        "      amount_min: {}",
                        rng.pick(&["100.01", "0", "1e20"])
                    );
                }
                2 => {
                    let _ = writeln!(
                        s,
                        "      time_range: \"{}\"",
                        rng.pick(&["09:00-18:00", "22:00-06:00"])
                    );
                }
                _ => {
                    let v = yaml_value(rng, &vocab);
                    let _ = writeln!(
                        s,
                        "      {}: {v}",
                        rng.pick(&["currency", "name", "labels"])
                    );
                }
            }
        }
        if rng.chance(20) {
            let _ = writeln!(
                s,
                "    constraints:\n      rate_limit: \"{}/{}\"",
                1 + rng.below(2),
                rng.pick(&["minute", "hour", "hour"])
            );
        }
        if rng.chance(30) {
            s.push_str("    reason: \"plain\"\n");
        }
    }
    let _ = writeln!(s, "defaultEffect: {}", rng.pick(&["allow", "deny"]));
    (s, vocab)
}

/// Agents with tiers and tags, for a MeshGuard policy's `appliesTo`
/// (a request carries no tier).
fn meshguard_agents(rng: &mut Rng) -> Source {
    let mut text = String::new();
    for a in AGENTS {
        if rng.chance(70) {
            let _ = write!(
                text,
                "agent \"{a}\" {{ tier {}",
                rng.pick(&["untrusted", "verified", "trusted", "privileged"])
            );
            if rng.chance(40) {
                text.push_str(" tags [x]");
            }
            text.push_str(" }\n");
        }
    }
    Source {
        name: "agents.writ".to_owned(),
        text,
    }
}

#[test]
fn the_seed_dialects_decide_alike_in_both_engines() {
    let policies = env_u64("WRIT_DIFF_POLICIES", 2_500) / 5;
    let seed = env_u64("WRIT_DIFF_SEED", 0x5EED_0019) ^ 0xD1A1;
    let mut tally = Tally::default();
    for n in 0..policies {
        let mut rng = Rng(seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
        let (name, (text, vocab)) = if n % 2 == 0 {
            (format!("p{n}.aegis.yaml"), aegis(&mut rng))
        } else {
            (format!("p{n}.meshguard.yaml"), meshguard(&mut rng))
        };
        let mut sources = vec![Source { name, text }];
        if n % 2 == 1 && rng.chance(70) {
            sources.push(meshguard_agents(&mut rng));
        }
        let mut clock = 1_736_935_198_000i64;
        let requests: Vec<(String, bool)> = (0..REQUESTS_PER_POLICY)
            .map(|_| {
                let mut r: serde_json::Value =
                    serde_json::from_str(&request(&mut rng, &vocab, &mut clock)).unwrap();
                if rng.chance(50) {
                    r["tags"] = serde_json::json!(["x"]);
                }
                (r.to_string(), rng.chance(3))
            })
            .collect();
        tally.policies += 1;
        let label = format!("dialect policy {n} (seed {seed:#x})");
        if compare(&sources, &requests, &mut rng, &mut tally, &label).is_none() {
            tally.refused += 1;
        }
    }
    println!("dialects: {tally:?}");
    assert_eq!(tally.disagreements, 0, "the engines disagreed: {tally:?}");
    assert!(
        tally.refused * 20 <= tally.policies,
        "more than 5% of generated dialect policies were refused: {tally:?}"
    );
    if policies >= 100 {
        for (what, n) in [
            ("allow", tally.allow),
            ("deny", tally.deny),
            ("approve", tally.approve),
            ("limits reached", tally.limited),
        ] {
            assert!(n >= 20, "only {n} decisions of kind {what}: {tally:?}");
        }
    }
}

/// Every example and seed policy (each YAML dialect, and the writ
/// language) with generated requests.
#[test]
fn the_example_policies_decide_alike_in_both_engines() {
    let mut tally = Tally::default();
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["examples", "examples/seeds", "examples/python"] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.to_string_lossy().to_string();
            if (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".writ"))
                && !name.ends_with(".decisions.yaml")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut rng = Rng(env_u64("WRIT_DIFF_SEED", 0x5EED_0019));
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let sources = vec![Source {
            name: path.to_string_lossy().into(),
            text: text.clone(),
        }];
        // Requests from the names the file mentions.
        let mut vocab = Vocab::default();
        for word in
            text.split(|c: char| c == '"' || c.is_whitespace() || c == ',' || c == '[' || c == ']')
        {
            if word.len() > 1 && !word.starts_with('#') {
                let g: Vec<G> = word
                    .chars()
                    .map(|c| {
                        if c == '*' {
                            G::Star
                        } else if c == '?' {
                            G::Any
                        } else {
                            G::Lit(c)
                        }
                    })
                    .collect();
                vocab.actions.push(g.clone());
                vocab.targets.push(g);
                vocab.strings.push(word.to_owned());
            }
        }
        let mut clock = 1_736_935_198_000i64;
        let requests: Vec<(String, bool)> = (0..300)
            .map(|_| {
                let mut r: serde_json::Value =
                    serde_json::from_str(&request(&mut rng, &vocab, &mut clock)).unwrap();
                // The file's own agent names.
                if r.get("agent").is_some() && rng.chance(60) {
                    let words: Vec<&String> = vocab
                        .strings
                        .iter()
                        .filter(|w| w.contains("agent") || w.contains("bot"))
                        .collect();
                    if !words.is_empty() {
                        r["agent"] = words[rng.below(words.len())].clone().into();
                    }
                }
                (r.to_string(), rng.chance(2))
            })
            .collect();
        tally.policies += 1;
        let label = path.display().to_string();
        if compare(&sources, &requests, &mut rng, &mut tally, &label).is_none() {
            panic!("{label} does not compile");
        }
    }
    println!("examples: {} files, {tally:?}", files.len());
    assert!(files.len() >= 20, "{} files", files.len());
    assert_eq!(tally.decisions, 300 * files.len() as u64);
}
