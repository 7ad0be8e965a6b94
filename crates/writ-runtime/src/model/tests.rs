//! Tests of the bundle model's encoding: every shape of record written
//! and read back, by the decoder and the load-time check alike.

use super::*;

fn record(limit: Option<Rate>, limit_shared: bool) -> Vec<u8> {
    let rule = Rule {
        name: "r".to_owned(),
        policy: 0,
        effect: Effect::Allow,
        risk: None,
        actions: vec![Pattern::Any],
        targets: Vec::new(),
        targets_case_insensitive: false,
        scope: Scope::default(),
        condition: None,
        constraints: Vec::new(),
        limit,
        limit_shared,
        reason: None,
    };
    let mut w = Writer::default();
    w_rule(&mut w, &rule, None);
    w.out
}

fn decodes(bytes: &[u8]) -> Result<Rule, LoadError> {
    let scanned = scan_rule(
        &mut Reader::new(bytes),
        1,
        &[],
        |_, r| r.map_or(Ok(()), |r| crate::glob::r_glob(r, &mut ())),
        &mut Vec::new(),
        &mut Vec::new(),
    );
    let decoded = r_rule(&mut Reader::new(bytes), |_| {
        Err(LoadError::Corrupt("no conditions".to_owned()))
    });
    assert_eq!(
        scanned.is_ok(),
        decoded.is_ok(),
        "scanner and decoder disagree"
    );
    decoded
}

/// A rule with each optional part present when its bit of `parts` is.
fn rule_with(parts: u16) -> Rule {
    let on = |bit: u16| parts & bit != 0;
    let named = |bit: u16, name: &str| {
        if on(bit) {
            vec![name.to_owned()]
        } else {
            Vec::new()
        }
    };
    let field = Field::Context(vec!["a".to_owned(), "b".to_owned()]);
    Rule {
        name: "r".to_owned(),
        policy: 0,
        effect: Effect::Approve,
        risk: on(RISK).then_some(Risk::High),
        actions: vec![Pattern::Prefix("tool:".to_owned()), Pattern::Any],
        targets: if on(TARGETS) {
            vec![
                Pattern::Exact("t".to_owned()),
                Pattern::Suffix("s".to_owned()),
            ]
        } else {
            Vec::new()
        },
        targets_case_insensitive: on(CASE_INSENSITIVE),
        scope: Scope {
            agents: named(AGENTS, "a1"),
            roles: named(ROLES, "r1"),
            tiers: if on(TIERS) {
                vec![Tier::Verified, Tier::Privileged]
            } else {
                Vec::new()
            },
            tags: named(TAGS, "g"),
        },
        condition: on(CONDITION).then(|| Condition {
            atoms: vec![
                Atom::Compare {
                    field: field.clone(),
                    op: CompareOp::Le,
                    value: Value::Number(3.0),
                },
                Atom::Weekdays { mask: 3 },
            ],
            code: vec![Op::Atom(0), Op::Atom(1), Op::Any(2)],
        }),
        constraints: if on(CONSTRAINTS) {
            vec![Constraint {
                name: "c".to_owned(),
                field: Field::Target,
                alternate: Some(field),
                values: vec![Value::List(vec![Value::Null, Value::Bool(true)])],
            }]
        } else {
            Vec::new()
        },
        limit: on(LIMIT).then_some(Rate {
            count: 2,
            unit: RateUnit::Day,
        }),
        limit_shared: on(LIMIT) && on(SHARED_LIMIT),
        reason: on(REASON).then(|| "why".to_owned()),
    }
}

/// Every combination of a rule record's optional parts is written,
/// then read back the same by the decoder, and accepted by the
/// load-time check, which reports the same names.
#[test]
fn every_shape_of_rule_record_round_trips() {
    for parts in 0..=ALL_FLAGS {
        if parts & SHARED_LIMIT != 0 && parts & LIMIT == 0 {
            continue;
        }
        let rule = rule_with(parts);
        let model = Model {
            writ_version: "0".to_owned(),
            revision: [0; 32],
            policies: vec!["p".to_owned()],
            settings: Settings {
                combining: Combining::DenyOverrides,
                default_effect: Effect::Deny,
                default_risk: Some(Risk::Low),
                default_reason: None,
                timezone: "UTC".to_owned(),
                tzif: Vec::new(),
                max_delegation_depth: None,
                ceiling_strict: false,
                ceiling_actions: Vec::new(),
                default_policy: Some(0),
            },
            agents: Vec::new(),
            rules: vec![rule.clone()],
            graph: Vec::new(),
        };
        let bytes = model.encode();
        let decoded = Model::decode(&bytes).unwrap_or_else(|e| panic!("parts {parts:#x}: {e}"));
        assert_eq!(decoded.rules, vec![rule.clone()], "parts {parts:#x}");
        // The load-time check over the same bytes.
        let prelude = Prelude::read(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let mut r = prelude.reader(&bytes).unwrap_or_else(|e| panic!("{e}"));
        Head::read(&mut r).unwrap_or_else(|e| panic!("{e}"));
        let mut flags = Vec::new();
        for _ in 0..r.count(2).unwrap_or_else(|e| panic!("{e}")) {
            flags.push(scan_condition_entry(&mut r).unwrap_or_else(|e| panic!("{e}")));
        }
        assert_eq!(r.count(1).ok(), Some(1));
        let (mut names, mut targets, mut actions) = (Vec::new(), Vec::new(), 0);
        let scan = scan_rule(
            &mut r,
            1,
            &flags,
            |_, r| {
                actions += 1;
                r.map_or(Ok(()), |r| crate::glob::r_glob(r, &mut ()))
            },
            &mut names,
            &mut targets,
        )
        .unwrap_or_else(|e| panic!("parts {parts:#x}: {e}"));
        assert_eq!(actions, 2);
        let text = |s: &Span| r.text(*s).map(str::to_owned).ok();
        let scanned: Vec<_> = names.iter().filter_map(text).collect();
        let mut expected = rule.scope.agents.clone();
        expected.extend(rule.scope.roles.iter().cloned());
        assert_eq!(scanned, expected, "parts {parts:#x}");
        assert_eq!(scan.has_clock, rule.condition.is_some());
        // Every target pattern but `*` is handed to the target index.
        let indexed = (!rule.targets.is_empty()).then_some(rule.targets.len());
        assert_eq!(scan.indexed_targets, indexed);
        assert_eq!(targets.len(), rule.targets.len());
    }
}

/// A rule record whose coded byte is no code is refused with a typed
/// error, by the decoder and the load-time check alike.
#[test]
fn unknown_codes_in_a_rule_record_are_refused() {
    let rule = Rule {
        risk: Some(Risk::Low),
        scope: Scope {
            tiers: vec![Tier::Trusted],
            ..Scope::default()
        },
        ..rule_with(0)
    };
    let mut w = Writer::default();
    w_rule(&mut w, &rule, None);
    // name (len, byte), policy, effect, two flag bytes, risk, then the
    // action count and the first action's pattern tag.
    let effect_at = 3;
    let risk_at = 6;
    let pattern_at = 8;
    let tier_at = w.out.len() - 1;
    for (at, what, byte) in [
        (effect_at, "effect", 3),
        (risk_at, "risk", 4),
        (pattern_at, "pattern tag", 9),
        (tier_at, "tier", 4),
    ] {
        let mut bad = w.out.clone();
        if let Some(b) = bad.get_mut(at) {
            *b = byte;
        }
        let e = decodes(&bad).err();
        assert_eq!(e, Some(LoadError::UnknownCode { what, byte }), "{what}");
    }
    assert!(decodes(&w.out).is_ok());
}

#[test]
fn a_shared_limit_is_a_flag_of_a_rule_with_a_limit() {
    let rate = Rate {
        count: 3,
        unit: RateUnit::Minute,
    };
    let shared = decodes(&record(Some(rate), true)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((shared.limit, shared.limit_shared), (Some(rate), true));
    let own = decodes(&record(Some(rate), false)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((own.limit, own.limit_shared), (Some(rate), false));
    // Without a limit the flag is not written, and a record that has it
    // anyway is corrupt.
    let none = record(None, true);
    assert!(
        !decodes(&none)
            .unwrap_or_else(|e| panic!("{e}"))
            .limit_shared
    );
    // name (len, byte), policy, effect, then the flags.
    let mut made_shared = record(Some(rate), false);
    made_shared[5] |= (SHARED_LIMIT >> 8) as u8;
    assert!(decodes(&made_shared).is_ok_and(|r| r.limit_shared));
    let mut bad = none;
    bad[5] |= (SHARED_LIMIT >> 8) as u8;
    assert!(decodes(&bad).is_err());
}
