//! How Aegis files lower: each form agent-aegis 1.0.0 accepts, and each it
//! would mishandle that writ refuses.

use writ_diagnostics::{Code, FileId, SourceFile};
use writ_ir::{CmpOp, Condition, Effect, PolicyFile, Risk, Value, Weekday};

fn lower(text: &str) -> (Option<PolicyFile>, Vec<Code>) {
    let source = SourceFile::new("t.yaml", text);
    let lowered = crate::lower(FileId(0), &source, Some(writ_ir::Dialect::Aegis), "t");
    let codes = lowered.diagnostics.iter().map(|d| d.code).collect();
    (lowered.file, codes)
}

fn rules(text: &str) -> PolicyFile {
    let (file, codes) = lower(text);
    assert!(codes.is_empty(), "{codes:?}");
    file.unwrap_or_else(|| panic!("no file"))
}

fn codes(text: &str) -> Vec<Code> {
    lower(text).1
}

fn one_rule(conditions: &str) -> String {
    format!(
        "rules:\n  - name: r\n    match: {{ type: a }}\n    conditions:\n{conditions}    approval: auto\n"
    )
}

#[test]
fn weekdays_are_iso_numbers() {
    let f = rules(&one_rule("      weekdays: [1, 5, 7.0]\n"));
    let Some(Some(Condition::Weekdays { days, .. })) =
        f.rules.first().map(|r| r.condition.as_ref())
    else {
        panic!("{:?}", f.rules);
    };
    let listed: Vec<Weekday> = Weekday::ALL
        .into_iter()
        .filter(|d| days.contains(*d))
        .collect();
    assert_eq!(listed, [Weekday::Monday, Weekday::Friday, Weekday::Sunday]);
    // Names, 0, 8, booleans and strings never match in Aegis: refused.
    for bad in ["[mon]", "[0]", "[8]", "[true]", "[\"1\"]", "\"12345\"", "3"] {
        let c = codes(&one_rule(&format!("      weekdays: {bad}\n")));
        assert!(
            c == [Code::InvalidWeekday] || c == [Code::WrongType],
            "{bad}: {c:?}"
        );
    }
}

#[test]
fn times_read_as_python_reads_them() {
    for (t, secs) in [
        ("\"18:00\"", 18 * 3600),
        ("\"9:5\"", 9 * 3600 + 5 * 60),
        ("\" 07:30:99\"", 7 * 3600 + 30 * 60),
        ("08:00", 8 * 3600),
    ] {
        let f = rules(&one_rule(&format!("      time_after: {t}\n")));
        let Some(Some(Condition::Time { window, .. })) =
            f.rules.first().map(|r| r.condition.as_ref())
        else {
            panic!("{t}");
        };
        assert_eq!(window.start, writ_ir::TimeOfDay::from_seconds(secs), "{t}");
    }
    // PyYAML reads an unquoted 18:00 as 1080, on which Aegis fails.
    assert_eq!(
        codes(&one_rule("      time_after: 18:00\n")),
        [Code::InvalidTime]
    );
    assert_eq!(
        codes(&one_rule("      time_before: \"24:00\"\n")),
        [Code::InvalidTime]
    );
    assert_eq!(
        codes(&one_rule("      time_before: \"18\"\n")),
        [Code::InvalidTime]
    );
}

#[test]
fn absent_keys_take_aegis_defaults() {
    let f = rules(
        "rules:\n  - {}\n  - name: \"\"\n    match: { type: \"w*\", target: db }\n  - name: x\n    match: { type: a }\n",
    );
    let names: Vec<&str> = f.rules.iter().map(|r| r.name.value.as_str()).collect();
    assert_eq!(names, ["rule_0", "w*@db", "x"]);
    assert!(f.rules.iter().all(|r| r.effect.value == Effect::Approve));
    assert!(
        f.rules
            .iter()
            .all(|r| r.risk.as_ref().map(|r| r.value) == Some(Risk::Medium))
    );
    assert_eq!(
        f.rules
            .first()
            .and_then(|r| r.actions.first())
            .map(|p| p.as_str()),
        Some("*")
    );
    assert_eq!(
        f.settings.default_effect.map(|e| e.value),
        Some(Effect::Deny)
    );
    assert_eq!(f.settings.default_risk.map(|r| r.value), Some(Risk::Medium));
}

#[test]
fn words_are_read_as_python_reads_them() {
    // `Approval(v)` is exact; `RiskLevel[v.upper()]` ignores case.
    assert_eq!(codes("rules:\n  - approval: Auto\n"), [Code::InvalidValue]);
    let f = rules("rules:\n  - approval: block\n    risk_level: HiGh\n");
    assert_eq!(
        f.rules
            .first()
            .and_then(|r| r.risk.as_ref())
            .map(|r| r.value),
        Some(Risk::High)
    );
}

#[test]
fn agents_are_exact_ids_and_globs_are_refused() {
    let f = rules("rules:\n  - match: { agent: bot-1 }\n");
    let agents: Vec<&str> = f
        .rules
        .iter()
        .flat_map(|r| r.scope.agents.iter().map(|a| a.value.as_str()))
        .collect();
    assert_eq!(agents, ["bot-1"]);
    assert_eq!(
        codes("rules:\n  - match: { agent: \"bot-*\" }\n"),
        [Code::CannotJudge]
    );
}

#[test]
fn what_writ_cannot_judge_is_refused() {
    assert_eq!(
        codes(&one_rule("      semantic: destructive\n")),
        [Code::CannotJudge]
    );
    assert_eq!(
        codes("plan_rules: { sequence_patterns: [] }\nrules: []\n"),
        [Code::CannotJudge]
    );
    assert_eq!(
        codes(&one_rule("      param_matches: { cmd: \"rm.*-rf\" }\n")),
        [Code::CannotJudge]
    );
    assert_eq!(codes(&one_rule("      magic: 1\n")), [Code::UnknownKey]);
    assert_eq!(
        codes("rules:\n  - match: { type: [a, b] }\n"),
        [Code::WrongType]
    );
    assert_eq!(
        codes(&one_rule("      param_gt: { n: [1] }\n")),
        [Code::InvalidOperand]
    );
}

#[test]
fn python_equality_and_flat_parameter_names() {
    let f = rules(&one_rule("      param_eq: { a.b: 1, flag: yes }\n"));
    let Some(Some(Condition::All(parts))) = f.rules.first().map(|r| r.condition.as_ref()) else {
        panic!("{:?}", f.rules);
    };
    let [
        Condition::In { field, values, .. },
        Condition::In { values: flag, .. },
    ] = parts.as_slice()
    else {
        panic!("{parts:?}");
    };
    assert_eq!(field.to_string(), "a.b");
    assert!(matches!(field, writ_ir::Field::Context(p) if p.0.len() == 1));
    assert_eq!(values, &[Value::Number(1.0), Value::Bool(true)]);
    // PyYAML reads an unquoted `yes` as true.
    assert_eq!(flag, &[Value::Bool(true), Value::Number(1.0)]);
}

#[test]
fn a_rule_that_can_fail_in_aegis_gets_a_deny_rule_before_it() {
    let f = rules(&one_rule(
        "      param_eq: { k: x }\n      param_gt: { n: 5 }\n",
    ));
    let names: Vec<(&str, Effect)> = f
        .rules
        .iter()
        .map(|r| (r.name.value.as_str(), r.effect.value))
        .collect();
    assert_eq!(names, [("r_error", Effect::Deny), ("r", Effect::Allow)]);
    // Only comparisons that can fail get one.
    let f = rules(&one_rule("      param_eq: { k: x }\n"));
    assert_eq!(f.rules.len(), 1);
    let Some(Condition::Compare { op: CmpOp::Eq, .. }) =
        f.rules.first().and_then(|r| r.condition.as_ref())
    else {
        panic!("{:?}", f.rules);
    };
}
