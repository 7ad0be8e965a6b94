//! The writ language against the YAML front ends: every example policy
//! exists in both forms and both lower to the same IR; conversion both ways
//! keeps the meaning; the examples are formatted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::{Path, PathBuf};

use writ::lang::{convert, fmt, is_writ_file};
use writ::{Source, compile};
use writ_diagnostics::FileId;
use writ_ir::PolicySet;

fn examples() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn policy_yaml_files() -> Vec<PathBuf> {
    examples()
        .into_iter()
        .filter(|p| {
            let n = p.to_string_lossy();
            (n.ends_with(".yaml") || n.ends_with(".yml")) && !n.ends_with(".decisions.yaml")
        })
        .collect()
}

fn set_of(name: &str, text: &str) -> PolicySet {
    let comp = compile(
        &[Source {
            name: name.to_owned(),
            text: text.to_owned(),
        }],
        None,
    );
    assert!(
        !comp.has_errors(),
        "{name} has errors: {:?}\n{text}",
        comp.diagnostics
    );
    comp.set.unwrap()
}

fn assert_same(a: &PolicySet, b: &PolicySet, what: &str) {
    let (x, y) = (convert::normalized(a), convert::normalized(b));
    if x != y {
        let diff: Vec<String> = x
            .lines()
            .zip(y.lines())
            .filter(|(l, r)| l != r)
            .take(5)
            .map(|(l, r)| format!("  - {l}\n  + {r}"))
            .collect();
        panic!(
            "{what}: IR differs\n{}\n--- full left:\n{x}\n--- full right:\n{y}",
            diff.join("\n")
        );
    }
}

fn writ_twin(yaml: &Path) -> PathBuf {
    let name = yaml.file_name().unwrap().to_string_lossy().to_string();
    let stem = name.trim_end_matches(".yaml").trim_end_matches(".yml");
    yaml.with_file_name(format!("{stem}.writ"))
}

#[test]
fn every_example_exists_in_both_forms_with_the_same_ir() {
    let yamls = policy_yaml_files();
    assert!(
        yamls.len() >= 9,
        "expected the example policies, found {yamls:?}"
    );
    for yaml in yamls {
        let twin = writ_twin(&yaml);
        let y = std::fs::read_to_string(&yaml).unwrap();
        let w = std::fs::read_to_string(&twin).unwrap_or_else(|_| {
            panic!(
                "{} has no writ-language twin {}",
                yaml.display(),
                twin.display()
            )
        });
        let a = set_of(&yaml.to_string_lossy(), &y);
        let b = set_of(&twin.to_string_lossy(), &w);
        assert_same(&a, &b, &format!("{} vs {}", yaml.display(), twin.display()));
    }
}

#[test]
fn writ_examples_are_formatted() {
    for p in examples()
        .into_iter()
        .filter(|p| is_writ_file(&p.to_string_lossy()))
    {
        let text = std::fs::read_to_string(&p).unwrap();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        let out = fmt::format(&text, &stem).unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
        assert_eq!(
            out,
            text,
            "{} is not formatted (run `writ fmt` on it)",
            p.display()
        );
    }
}

/// YAML → writ → YAML keeps the meaning, and comments come along.
#[test]
fn yaml_examples_convert_to_writ_and_back() {
    for yaml in policy_yaml_files() {
        let name = yaml.to_string_lossy().to_string();
        let text = std::fs::read_to_string(&yaml).unwrap();
        let original = set_of(&name, &text);
        let comments = convert::yaml_comments(FileId(0), &text);
        let n_comments = comments.len();
        let w = convert::to_writ(&original, &text, comments).unwrap();
        let from_writ = set_of("converted.writ", &w);
        assert_same(&original, &from_writ, &format!("{name} → writ\n{w}"));
        let parsed = writ::lang::parse::parse(FileId(0), &w);
        assert_eq!(
            parsed.file.comments.len(),
            n_comments,
            "{name}: comments lost\n{w}"
        );
        // The conversion is already in canonical layout.
        assert_eq!(
            fmt::format(&w, "converted").unwrap(),
            w,
            "{name}: conversion not formatted"
        );
        match convert::to_yaml(&from_writ, &parsed.file.comments) {
            Ok(y2) => {
                let back = set_of("back.yaml", &y2);
                assert_same(&original, &back, &format!("{name} → writ → yaml\n{y2}"));
            }
            // Only dialect features the YAML schema has no words for.
            Err(u) => assert!(
                u.message.contains("cannot keep its name")
                    || u.message.contains("every agent")
                    || u.message.contains("any case")
                    || u.message.contains("derives a constraint"),
                "{name}: {u:?}"
            ),
        }
    }
}

/// writ → YAML → writ keeps the meaning.
#[test]
fn writ_examples_convert_to_yaml_and_back() {
    for p in examples()
        .into_iter()
        .filter(|p| is_writ_file(&p.to_string_lossy()))
    {
        let text = std::fs::read_to_string(&p).unwrap();
        let original = set_of(&p.to_string_lossy(), &text);
        let comments = writ::lang::lexer::lex(FileId(0), &text).comments;
        let Ok(y) = convert::to_yaml(&original, &comments) else {
            continue;
        };
        let back = set_of("back.yaml", &y);
        assert_same(&original, &back, &format!("{} → yaml\n{y}", p.display()));
        let ycomments = convert::yaml_comments(FileId(0), &y);
        assert_eq!(
            ycomments.len(),
            comments.len(),
            "{}: comments lost\n{y}",
            p.display()
        );
    }
}

/// A rule limit shared by all agents: read from both forms, formatted back,
/// and converted both ways; the word `shared` elsewhere is diagnosed.
#[test]
fn shared_rule_limits_read_format_and_convert() {
    let writ_text = r#"rule refunds: allow "tool:call" on refund
  limit 1000   per day   shared

rule lookups: allow "tool:call" on lookup
  limit 3 per hour
"#;
    let formatted = fmt::format(writ_text, "shared").unwrap();
    assert_eq!(
        formatted,
        "rule refunds: allow \"tool:call\" on refund\n  limit 1000 per day shared\n\n\
         rule lookups: allow \"tool:call\" on lookup\n  limit 3 per hour\n"
    );
    assert_eq!(fmt::format(&formatted, "shared").unwrap(), formatted);
    let from_writ = set_of("shared.writ", writ_text);
    let limits: Vec<_> = from_writ
        .rules
        .iter()
        .map(|r| r.limit.as_ref().unwrap().value)
        .collect();
    assert!(limits[0].shared && !limits[1].shared);
    assert_eq!(limits[0].rate.count, 1000);

    let yaml_text = r"writ: 1
rules:
  - name: refunds
    effect: allow
    action: tool:call
    target: refund
    limit: { rate: 1000/day, shared: true }
  - name: lookups
    effect: allow
    action: tool:call
    target: lookup
    limit: 3/hour
";
    let from_yaml = set_of("shared.yaml", yaml_text);
    assert_same(&from_writ, &from_yaml, "writ vs yaml");

    // writ → YAML: the mapping form only where the limit is shared.
    let y = convert::to_yaml(&from_writ, &[]).unwrap();
    assert!(y.contains("limit: { rate: 1000/day, shared: true }"), "{y}");
    assert!(y.contains("limit: 3/hour\n"), "{y}");
    assert_same(&from_writ, &set_of("back.yaml", &y), "writ → yaml");
    // YAML → writ.
    let w = convert::to_writ(&from_yaml, yaml_text, Vec::new()).unwrap();
    assert!(w.contains("limit 1000 per day shared\n"), "{w}");
    assert_same(&from_yaml, &set_of("back.writ", &w), "yaml → writ");

    // `shared: false` is the per-agent limit.
    let unshared = set_of(
        "unshared.yaml",
        "writ: 1\nrules:\n  - effect: allow\n    action: x\n    limit: { rate: 3/hour, shared: false }\n",
    );
    assert!(!unshared.rules[0].limit.as_ref().unwrap().value.shared);

    // `shared` is a keyword: a name spelled so is quoted, and still works
    // in brackets and as a condition field.
    set_of(
        "names.writ",
        "rule allow \"tool:call\" on \"shared\"\n  for tags [shared]\n  when shared == true\n",
    );
}

fn codes(name: &str, text: &str) -> Vec<writ_diagnostics::Code> {
    let comp = compile(
        &[Source {
            name: name.to_owned(),
            text: text.to_owned(),
        }],
        None,
    );
    comp.diagnostics.iter().map(|d| d.code).collect()
}

#[test]
fn shared_where_it_has_no_meaning_is_an_error() {
    use writ_diagnostics::Code;
    for block in ["agent \"a\"", "role \"r\"", "every agent"] {
        let text = format!("{block} {{\n  limit 10 requests per minute shared\n}}\n");
        assert_eq!(
            codes("a.writ", &text),
            vec![Code::SharedAgentLimit],
            "{text}"
        );
    }
    // In YAML an agent limit has no `shared` key; a rule limit's mapping
    // takes `rate` and `shared` only, and needs `rate`.
    let agent =
        "writ: 1\nagents:\n  a:\n    limits:\n      - requests: 10/minute\n        shared: true\n";
    assert_eq!(codes("a.yaml", agent), vec![Code::UnknownKey]);
    let rule = |limit: &str| {
        format!("writ: 1\nrules:\n  - effect: allow\n    action: x\n    limit: {limit}\n")
    };
    assert_eq!(
        codes("a.yaml", &rule("{ rate: 3/hour, shared: yes-please }")),
        vec![Code::WrongType]
    );
    assert_eq!(
        codes("a.yaml", &rule("{ rate: 3/hour, shard: true }")),
        vec![Code::UnknownKey]
    );
    assert_eq!(
        codes("a.yaml", &rule("{ shared: true }")),
        vec![Code::MissingKey]
    );
    assert_eq!(
        codes("a.yaml", &rule("{ rate: 3/fortnight, shared: true }")),
        vec![Code::InvalidRate]
    );
    assert_eq!(codes("a.yaml", &rule("[3/hour]")), vec![Code::WrongType]);
}
