//! A policy and a request sequence built from the fuzzer's bytes, for the
//! `differential` target.
//!
//! The same ground as `tests/differential.rs` (whose generator draws from
//! a seeded PRNG), driven by the input instead: every choice reads the
//! next byte, so libFuzzer's coverage feedback steers the grammar, and an
//! exhausted input makes the smallest choice everywhere (a short input is
//! a small policy). Globs are written together with strings they match,
//! and requests are made from those strings (sometimes one edit off), so
//! that rules are reached.

use std::fmt::Write as _;

use libfuzzer_sys::arbitrary::Unstructured;

/// The fuzzer's bytes as a source of choices.
pub struct Choices<'a>(Unstructured<'a>);

impl<'a> Choices<'a> {
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Choices(Unstructured::new(data))
    }

    /// A number below `n` (0 once the input is used up).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.0.int_in_range(0..=n - 1).unwrap_or(0)
    }

    /// True `percent` times in 100 (false once the input is used up).
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) + percent >= 100
    }

    pub fn pick<'x, T>(&mut self, xs: &'x [T]) -> &'x T {
        let i = self.below(xs.len());
        xs.get(i)
            .unwrap_or_else(|| unreachable!("pick from an empty slice"))
    }

    /// Up to `max` (at least `min`) repetitions.
    pub fn count(&mut self, min: usize, max: usize) -> usize {
        min + self.below(max - min + 1)
    }
}

/// Glob and request characters: ASCII, separators, a letter hosts fold,
/// two- and four-byte characters, a newline, and glob syntax (escaped in
/// patterns).
const CHARS: &[char] = &[
    'a', 'b', 'x', 'A', ':', '.', '-', '_', 'é', 'ß', '😀', '\n', '*', '?', ',', '{', '[', '\\',
];

/// A glob as text, and strings it matches.
struct Glob {
    text: String,
    matches: Vec<String>,
}

/// Appends `c` to a pattern, escaped where it is glob syntax.
fn literal(pattern: &mut String, c: char) {
    if "*?[]{}\\,".contains(c) {
        pattern.push('\\');
    }
    pattern.push(c);
}

/// One glob: a run of pieces, each appended to the pattern and to two
/// strings it matches. With `shape`: 0 exact, 1 `lit*`, 2 `*lit`, else any
/// (the compiler treats the first three apart from glob programs).
fn glob(c: &mut Choices, shape: usize, nested: bool) -> Glob {
    let mut text = String::new();
    let mut matches = vec![String::new(), String::new()];
    if shape == 2 {
        text.push('*');
        matches[1].push('😀');
    }
    for _ in 0..c.count(1, 5) {
        let piece = if shape <= 2 { 0 } else { c.below(7) };
        match piece {
            1 => {
                text.push('*');
                for m in &mut matches {
                    for _ in 0..c.below(3) {
                        m.push(*c.pick(CHARS));
                    }
                }
            }
            2 => {
                text.push('?');
                for m in &mut matches {
                    m.push(*c.pick(CHARS));
                }
            }
            3 => {
                // A class: a member or a range, maybe negated.
                let negated = c.chance(30);
                let (lo, hi) = *c.pick(&[
                    ('a', 'c'),
                    ('é', 'é'),
                    ('\n', '\n'),
                    ('😀', '😀'),
                    ('x', 'x'),
                ]);
                text.push('[');
                if negated {
                    text.push('!');
                }
                text.push(lo);
                if lo != hi {
                    text.push('-');
                    text.push(hi);
                }
                text.push(']');
                for m in &mut matches {
                    m.push(if negated { 'ß' } else { hi });
                }
            }
            4 if !nested => {
                // Alternatives, one of them maybe empty.
                let alts: Vec<Glob> = (0..c.count(2, 3))
                    .map(|_| {
                        if c.chance(15) {
                            Glob {
                                text: String::new(),
                                matches: vec![String::new(), String::new()],
                            }
                        } else {
                            glob(c, 3, true)
                        }
                    })
                    .collect();
                text.push('{');
                let texts: Vec<&str> = alts.iter().map(|a| a.text.as_str()).collect();
                text.push_str(&texts.join(","));
                text.push('}');
                for (i, m) in matches.iter_mut().enumerate() {
                    let alt = c.pick(&alts);
                    m.push_str(alt.matches.get(i).map_or("", String::as_str));
                }
            }
            _ => {
                let ch = *c.pick(CHARS);
                literal(&mut text, ch);
                for m in &mut matches {
                    m.push(ch);
                }
            }
        }
    }
    if shape == 1 {
        text.push('*');
        matches[1].push_str("é\n");
    }
    Glob { text, matches }
}

/// A string in a `.writ` file.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
    out.push('"');
    out
}

const ACTIONS: &[&str] = &[
    "tool:call",
    "model:use",
    "net:connect",
    "agent:delegate",
    "handoff:b",
    "read:x",
];
const TARGETS: &[&str] = &["refund", "doc", "b", "api.example.com", "gpt-4"];
const AGENTS: &[&str] = &["a", "b", "ops", "c"];
const ROLES: &[&str] = &["support", "billing", "ops"];
const FIELDS: &[&str] = &[
    "amount",
    "currency",
    "a.b",
    "a.b.c",
    "tags",
    "ticket.priority",
];
const NUMBERS: &[&str] = &["0", "100", "-1", "0.5", "99.99", "1e20", "9007199254740993"];
const WORDS: &[&str] = &["x", "USD", "vip", "\"é\\n\"", "\"\"", "true", "null", "7"];
const UNITS: &[&str] = &["second", "minute", "hour", "day"];

/// What requests are made from: the strings the policy's globs match.
#[derive(Default)]
struct Names {
    actions: Vec<String>,
    targets: Vec<String>,
    strings: Vec<String>,
}

/// A quoted pattern: a fixed name, or a generated glob whose matching
/// strings go into `into`.
fn pattern(c: &mut Choices, into: &mut Vec<String>, fixed: &[&str]) -> String {
    if c.chance(30) {
        let name = *c.pick(fixed);
        into.push(name.to_owned());
        return quoted(name);
    }
    let shape = c.below(6);
    let g = glob(c, shape, false);
    into.extend(g.matches);
    if g.text.is_empty() {
        return quoted("a");
    }
    quoted(&g.text)
}

fn value_word(c: &mut Choices) -> &'static str {
    let pool = if c.chance(50) { NUMBERS } else { WORDS };
    pool[c.below(pool.len())]
}

fn atom(c: &mut Choices, names: &mut Names) -> String {
    let field = *c.pick(FIELDS);
    match c.below(11) {
        0 => format!(
            "{field} {} {}",
            c.pick(&["<", "<=", ">", ">="]),
            c.pick(NUMBERS)
        ),
        1 => format!("{field} {} {}", c.pick(&["==", "!="]), value_word(c)),
        2 => {
            let items: Vec<&str> = (0..c.count(1, 3)).map(|_| value_word(c)).collect();
            let not = if c.chance(40) { "not " } else { "" };
            format!("{field} {not}in [{}]", items.join(", "))
        }
        3 => format!("{field} contains {}", value_word(c)),
        4 | 5 => {
            let p = pattern(c, &mut names.strings, &["x*", "*@example.com"]);
            let subject = if c.chance(30) { "target" } else { field };
            format!("{subject} matches {p}")
        }
        6 => format!("{field} exists"),
        7 => format!(
            "time in {}",
            c.pick(&["\"09:00-17:00\"", "\"22:00-06:00\"", "\"12:00-12:01\""])
        ),
        8 => format!(
            "weekday in [{}]",
            c.pick(&["sat, sun", "wed", "mon, tue, wed, thu, fri"])
        ),
        _ => (*c.pick(&["true", "false", "target == b"])).to_owned(),
    }
}

fn condition(c: &mut Choices, names: &mut Names, depth: u32) -> String {
    if depth == 0 || !c.chance(50) {
        return atom(c, names);
    }
    match c.below(3) {
        0 => {
            let (l, r) = (
                condition(c, names, depth - 1),
                condition(c, names, depth - 1),
            );
            format!("({l} and {r})")
        }
        1 => {
            let (l, r) = (
                condition(c, names, depth - 1),
                condition(c, names, depth - 1),
            );
            format!("({l} or {r})")
        }
        _ => format!("not ({})", condition(c, names, depth - 1)),
    }
}

/// Limit lines of an agent, a role or `every agent`.
fn limits(c: &mut Choices, names: &mut Names, out: &mut String) {
    for _ in 0..c.below(3) {
        let tokens = c.chance(30);
        let n = if tokens {
            10 + c.below(40)
        } else {
            1 + c.below(3)
        };
        let metric = if tokens { "tokens" } else { "requests" };
        let _ = write!(out, "  limit {n} {metric} per {}", c.pick(UNITS));
        if c.chance(30) {
            let p = pattern(c, &mut names.actions, ACTIONS);
            let _ = write!(out, " on {p}");
        }
        out.push('\n');
    }
}

/// One or two distinct names from `pool`.
fn some(c: &mut Choices, pool: &[&str]) -> String {
    let first = *c.pick(pool);
    let second = *c.pick(pool);
    if c.chance(40) && first != second {
        format!("{first}, {second}")
    } else {
        first.to_owned()
    }
}

/// A generated policy: one or two files (the second without a policy
/// block), and the names its requests are made from.
pub struct Policy {
    pub files: Vec<String>,
    names: Names,
}

/// Builds a policy from the next bytes.
pub fn policy(c: &mut Choices) -> Policy {
    let mut names = Names::default();
    let mut head = format!(
        "policy \"p\" {{\n  combine {}\n  default {} risk medium\n",
        c.pick(&["first-match", "deny-overrides"]),
        c.pick(&["deny", "allow", "approve"])
    );
    if c.chance(30) {
        head.push_str("  timezone \"Europe/Paris\"\n");
    }
    if c.chance(30) {
        let _ = writeln!(head, "  ceiling {}", c.pick(&["none", "strict"]));
    }
    if c.chance(20) {
        let _ = writeln!(head, "  max_delegation_depth {}", c.count(1, 3));
    }
    head.push_str("}\n");
    let mut items = Vec::new();
    let declared: Vec<&str> = ["a", "b", "ops"]
        .into_iter()
        .filter(|_| c.chance(50))
        .collect();
    for &agent in &declared {
        let mut s = format!("agent \"{agent}\" {{\n");
        if c.chance(50) {
            let _ = writeln!(s, "  roles [{}]", some(c, ROLES));
        }
        if c.chance(40) {
            let _ = writeln!(
                s,
                "  tier {}",
                c.pick(&["trusted", "verified", "privileged"])
            );
        }
        if c.chance(30) {
            s.push_str("  tags [x]\n");
        }
        for list in ["tools", "models", "hosts"] {
            if c.chance(20) {
                let kind = if c.chance(50) { "allow" } else { "block" };
                let p = pattern(c, &mut names.targets, TARGETS);
                let _ = writeln!(s, "  {list} {kind} [{p}]");
            }
        }
        if c.chance(10) {
            s.push_str("  require_tls true\n");
        }
        let others: Vec<&str> = declared.iter().copied().filter(|d| *d != agent).collect();
        if !others.is_empty() && c.chance(40) {
            let _ = writeln!(s, "  delegates [{}]", some(c, &others));
        }
        limits(c, &mut names, &mut s);
        s.push_str("}\n");
        items.push(s);
    }
    for role in ROLES {
        if c.chance(25) {
            let mut s = format!("role \"{role}\" {{\n");
            if c.chance(30) {
                s.push_str("  token_prefix \"tok_\"\n");
            }
            limits(c, &mut names, &mut s);
            s.push_str("}\n");
            items.push(s);
        }
    }
    if c.chance(15) {
        let mut s = String::from("every agent {\n");
        limits(c, &mut names, &mut s);
        s.push_str("  limit 3 requests per minute\n}\n");
        items.push(s);
    }
    for i in 0..c.count(1, 6) {
        let effect = *c.pick(&["allow", "deny", "approve"]);
        let actions: Vec<String> = (0..c.count(1, 2))
            .map(|_| pattern(c, &mut names.actions, ACTIONS))
            .collect();
        let mut s = format!("rule r{i}: {effect} [{}]", actions.join(", "));
        if c.chance(60) {
            let hosts = if c.chance(15) { "hosts " } else { "" };
            let targets: Vec<String> = (0..c.count(1, 2))
                .map(|_| pattern(c, &mut names.targets, TARGETS))
                .collect();
            let _ = write!(s, "\n  on {hosts}[{}]", targets.join(", "));
        }
        if c.chance(30) {
            let scope = *c.pick(&[
                "for agents [a]",
                "for agents [ops, b]",
                "for roles [support]",
                "for roles [billing, ops]",
                "for tiers [trusted]",
                "for tags [x]",
            ]);
            let _ = write!(s, "\n  {scope}");
        }
        if c.chance(60) {
            let _ = write!(s, "\n  when {}", condition(c, &mut names, 3));
        }
        if c.chance(8) {
            s.push_str("\n  require stores or store in [vs_a, vs_b]");
        }
        if c.chance(25) {
            let _ = write!(s, "\n  limit {} per {}", c.count(1, 3), c.pick(UNITS));
            if c.chance(30) {
                s.push_str(" shared");
            }
        }
        if c.chance(25) {
            let _ = write!(s, "\n  risk {}", c.pick(&["low", "high", "critical"]));
        }
        if c.chance(25) {
            let because = *c.pick(&["\"{agent} did {action} on {target}\"", "\"plain\""]);
            let _ = write!(s, "\n  because {because}");
        }
        s.push('\n');
        items.push(s);
    }
    let files = if items.len() > 1 && c.chance(25) {
        let second = items.split_off(c.count(1, items.len() - 1));
        vec![head + &items.concat(), second.concat()]
    } else {
        vec![head + &items.concat()]
    };
    Policy { files, names }
}

/// A request string: one the policy's globs match (sometimes one edit
/// off), a fixed name, empty, long, or random characters.
fn string(c: &mut Choices, made: &[String], fixed: &[&str]) -> String {
    let mut s = match c.below(8) {
        0..=3 if !made.is_empty() => c.pick(made).clone(),
        4 => String::new(),
        5 => c.pick(fixed).repeat(c.count(2, 200)),
        6 => (0..c.below(6)).map(|_| *c.pick(CHARS)).collect(),
        _ => (*c.pick(fixed)).to_owned(),
    };
    if c.chance(20) {
        let mut chars: Vec<char> = s.chars().collect();
        let at = c.below(chars.len() + 1);
        match c.below(3) {
            0 => chars.insert(at, *c.pick(CHARS)),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ => chars.push(*c.pick(CHARS)),
        }
        s = chars.into_iter().collect();
    }
    s
}

fn value(c: &mut Choices, names: &Names) -> serde_json::Value {
    use serde_json::json;
    match c.below(8) {
        0 | 1 => json!(*c.pick(&[0.0, -0.0, 100.0, 100.5, 99.99, -1.0, 0.5, 1e20, 7.0])),
        2 => json!(9_007_199_254_740_993u64),
        3 | 4 => json!(string(
            c,
            &names.strings,
            &["x", "USD", "vip", "é\n", "7", "vs_a"]
        )),
        5 => json!(c.chance(50)),
        6 => serde_json::Value::Null,
        _ => json!([*c.pick(&["vip", "x", "USD"]), 7, {"b": "x"}]),
    }
}

/// A context: each field absent, at its dotted key, nested, or both (the
/// two equal or not).
fn context(c: &mut Choices, names: &Names) -> serde_json::Map<String, serde_json::Value> {
    let mut ctx = serde_json::Map::new();
    for field in FIELDS {
        if !c.chance(50) {
            continue;
        }
        let v = value(c, names);
        let how = if field.contains('.') { c.below(4) } else { 0 };
        if how != 1 {
            ctx.insert((*field).to_owned(), v.clone());
        }
        if how >= 1 {
            let nested = if how == 3 { value(c, names) } else { v };
            let mut path = field.split('.').collect::<Vec<_>>();
            let last = path.pop().unwrap_or_default();
            let mut cur = &mut ctx;
            for seg in path {
                let slot = cur
                    .entry(seg.to_owned())
                    .or_insert_with(|| serde_json::json!({}));
                if !slot.is_object() {
                    *slot = serde_json::json!({});
                }
                let Some(map) = slot.as_object_mut() else {
                    unreachable!("made an object above")
                };
                cur = map;
            }
            cur.insert(last.to_owned(), nested);
        }
    }
    if c.chance(20) {
        ctx.insert(
            (*c.pick(&["stores", "store"])).to_owned(),
            serde_json::json!(*c.pick(&["vs_a", "vs_c"])),
        );
    }
    ctx
}

/// A request sequence for `p`, as JSON lines; `clock` (milliseconds)
/// steps across window edges. Each request comes with whether to put a
/// NaN into its context through the Rust API.
pub fn requests(c: &mut Choices, p: &Policy, clock: &mut i64) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for _ in 0..c.count(1, 12) {
        *clock += *c.pick(&[
            0, 1, 999, 1_000, 59_999, 60_000, 3_599_999, 3_600_000, 86_400_000,
        ]);
        let mut action = string(c, &p.names.actions, ACTIONS);
        if action.trim().is_empty() {
            action = "tool:call".to_owned();
        }
        let mut req = serde_json::json!({
            "action": action,
            "context": context(c, &p.names),
            "tokens": c.below(30),
        });
        if !c.chance(5) {
            let at =
                jiff::Timestamp::from_millisecond(*clock).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            req["at"] = at.to_string().into();
        }
        let roles: Vec<&str> = (0..c.below(3)).map(|_| *c.pick(ROLES)).collect();
        req["roles"] = serde_json::json!(roles);
        if c.chance(15) {
            let chain: Vec<&str> = (0..c.count(2, 3)).map(|_| *c.pick(AGENTS)).collect();
            req["chain"] = serde_json::json!(chain);
        } else {
            req["agent"] = (*c.pick(AGENTS)).into();
        }
        if c.chance(80) {
            req["target"] = string(c, &p.names.targets, TARGETS).into();
        }
        if c.chance(15) {
            req["token"] = (*c.pick(&["tok_1", "other"])).into();
        }
        if c.chance(10) {
            req["tags"] = serde_json::json!(["x"]);
        }
        out.push((req.to_string(), c.chance(3)));
    }
    out
}

/// A NaN or an infinity, as the Rust API lets a caller put one in.
pub fn poison(c: &mut Choices, req: &mut writ_eval::Request) {
    let v = *c.pick(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    if c.chance(50) {
        req.context
            .insert("amount".to_owned(), writ_runtime::Value::Number(v));
    } else {
        let mut inner = std::collections::BTreeMap::new();
        inner.insert(
            "b".to_owned(),
            writ_runtime::Value::List(vec![writ_runtime::Value::Number(v)]),
        );
        req.context
            .insert("a".to_owned(), writ_runtime::Value::Map(inner));
    }
}
