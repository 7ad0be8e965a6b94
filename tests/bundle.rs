//! Bundles: integrity, signatures, corruption, and the CLI around them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::process::Command;

use writ::{Source, compile};
use writ_runtime::{CHECKSUM_LEN, LoadError, Runtime, SignatureError, checksum, read_model};

const POLICY: &str = r#"policy "small" { default deny }
agent "bot" { roles [support] tools allow ["lookup_*", refund] }
rule lookups: allow "tool:call" on "lookup_*"
rule refunds: allow "tool:call" on refund
  for roles [support]
  when amount <= 100
  because "small refunds for {agent}"
rule hosts: allow "net:connect" on hosts "*.Example.com"
"#;

fn bundle(sign: Option<&[u8; 32]>) -> Vec<u8> {
    let sources = vec![Source {
        name: "small.writ".into(),
        text: POLICY.into(),
    }];
    let comp = compile(&sources, None);
    writ::bundle::compile(comp.checked_set().unwrap(), &sources, sign).unwrap()
}

fn bundle_of(text: &str) -> Vec<u8> {
    let sources = vec![Source {
        name: "p.writ".into(),
        text: text.into(),
    }];
    let comp = compile(&sources, None);
    writ::bundle::compile(comp.checked_set().unwrap(), &sources, None).unwrap()
}

/// The bundle with its format version replaced and its checksum re-sealed.
fn with_version(bytes: &[u8], version: u32) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[8..12].copy_from_slice(&version.to_le_bytes());
    let body_len = u32::from_le_bytes(out[12..16].try_into().unwrap()) as usize;
    let sum = checksum(&out[..16 + body_len]);
    out[16 + body_len..16 + body_len + CHECKSUM_LEN].copy_from_slice(&sum);
    out
}

/// A bundle of format `version` holding `model`, sealed as the compiler
/// seals one.
fn sealed_as(model: &writ_runtime::Model, version: u32) -> Vec<u8> {
    let body = model.encode();
    let mut out = writ_runtime::MAGIC.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&body);
    let sum = checksum(&out);
    out.extend_from_slice(&sum);
    out.push(0);
    out
}

/// Format 5 carries globs as glob programs; this runtime reads format 5
/// only (older bundles carry DFAs it cannot run), and formats it does not
/// know are refused by their version, never read.
#[test]
fn bundle_formats_are_checked_by_version() {
    let shared = bundle_of("rule refund: allow \"tool:call\"\n  limit 2 per hour shared\n");
    assert_eq!(
        writ_runtime::read_header(&shared).unwrap().format_version,
        writ_runtime::FORMAT_VERSION
    );
    assert_eq!(writ_runtime::FORMAT_VERSION, 5);
    let model = read_model(&shared).unwrap();
    assert!(model.rules[0].limit_shared && model.rules[0].limit.is_some());
    let rt = Runtime::from_bytes(&shared).unwrap();
    let allowed = |rt: &Runtime, agent: &str| {
        decide(
            rt,
            &format!(r#"{{"agent":"{agent}","action":"tool:call"}}"#),
        )
        .contains("\"allow\"")
    };
    assert!(allowed(&rt, "a") && allowed(&rt, "b") && !allowed(&rt, "c"));

    let model = read_model(&bundle(None)).unwrap();
    assert_eq!(model.settings.default_policy, Some(0));
    let new = Runtime::from_bytes(&bundle(None)).unwrap();
    let by_default = r#"{"agent":"bot","action":"file:read"}"#;
    assert!(decide(&new, by_default).contains(r#""policy":"small""#));
    // The same body sealed again as the compiler seals it loads.
    assert!(Runtime::from_bytes(&sealed_as(&model, 5)).is_ok());
    for v in [0, 1, 2, 3, 4, 6] {
        let e = Runtime::from_bytes(&with_version(&shared, v)).err();
        assert_eq!(e, Some(LoadError::UnsupportedVersion(v)));
        assert!(e.unwrap().to_string().contains("reads format 5 only"));
    }
    // A default policy that names no policy of the bundle is corrupt.
    let mut bad = model.clone();
    bad.settings.default_policy = Some(7);
    assert!(matches!(
        Runtime::from_bytes(&sealed_as(&bad, 5)).err(),
        Some(LoadError::Corrupt(_))
    ));
    assert!(read_model(&sealed_as(&bad, 5)).is_err());
}

/// Format 4 ends the body with the action ceilings of delegated requests
/// (MeshGuard's `delegation.permissionCeiling`) when there are any; a body
/// without them is format 3's.
#[test]
fn action_ceilings_travel_in_the_bundle() {
    let sources = vec![Source {
        name: "p.yaml".into(),
        text: "name: p\ndefaultEffect: allow\nrules:\n  - effect: deny\n    actions: [\"x\"]\ndelegation:\n  permissionCeiling: [\"read:*\"]\n".into(),
    }];
    let comp = compile(&sources, None);
    let bytes = writ::bundle::compile(comp.checked_set().unwrap(), &sources, None).unwrap();
    let model = read_model(&bytes).unwrap();
    let lists: Vec<(&str, usize)> = model
        .settings
        .ceiling_actions
        .iter()
        .map(|l| (l.key.as_str(), l.patterns.len()))
        .collect();
    assert_eq!(lists, [("permissionCeiling", 1)]);
    let rt = Runtime::from_bytes(&bytes).unwrap();
    assert!(decide(&rt, r#"{"chain":["a","b"],"action":"read:x"}"#).contains("\"allow\""));
    assert!(
        decide(&rt, r#"{"chain":["a","b"],"action":"write:x"}"#)
            .contains("not in permissionCeiling")
    );
    assert!(decide(&rt, r#"{"agent":"b","action":"write:x"}"#).contains("\"allow\""));
    // Without a ceiling the body has no such section.
    assert!(
        read_model(&bundle(None))
            .unwrap()
            .settings
            .ceiling_actions
            .is_empty()
    );
}

fn decide(rt: &Runtime, json: &str) -> String {
    let req = writ_eval::Request::from_json(json).unwrap();
    rt.check_at(&req, "2025-01-15T12:00:00Z".parse().unwrap())
        .to_json(&req)
}

#[test]
fn a_bundle_decides_like_its_policy() {
    let rt = Runtime::from_bytes(&bundle(None)).unwrap();
    assert_eq!(rt.rule_count(), 3);
    let d = decide(
        &rt,
        r#"{"agent":"bot","action":"tool:call","target":"refund","context":{"amount":40}}"#,
    );
    assert_eq!(
        d,
        r#"{"decision":"allow","rule":"refunds","policy":"small","reason":"small refunds for bot","risk":null,"retry_after_s":null}"#
    );
    let d = decide(
        &rt,
        r#"{"agent":"bot","action":"tool:call","target":"delete"}"#,
    );
    assert!(
        d.contains("\"decision\":\"deny\"") && d.contains("is not in tools.allow"),
        "{d}"
    );
    let d = decide(
        &rt,
        r#"{"agent":"x","action":"net:connect","target":"API.example.COM"}"#,
    );
    assert!(
        d.contains("\"rule\":\"hosts\""),
        "hosts match in any case: {d}"
    );
}

/// Every single-byte change and every truncation is rejected: the checksum
/// covers everything, and nothing panics on the way.
#[test]
fn corrupt_and_truncated_bundles_are_rejected() {
    let good = bundle(None);
    assert!(Runtime::from_bytes(&good).is_ok());
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        assert!(
            Runtime::from_bytes(&bad).is_err(),
            "flipping byte {i} was accepted"
        );
    }
    for len in 0..good.len() {
        assert!(
            Runtime::from_bytes(&good[..len]).is_err(),
            "a bundle cut at {len} bytes was accepted"
        );
    }
}

/// Past the checksum, the decoder itself never panics: corrupt each byte
/// of the body and re-seal the checksum, as an attacker who can write the
/// file could. The runtime checks rule records at load with a scanner and
/// decodes them on first use with the full decoder: it must accept only
/// what the full decoder accepts, and every rule it accepts must decode.
#[test]
fn the_decoder_survives_resealed_corruption() {
    survives_resealed_corruption(&bundle(None));
    // A rule limit shared by all agents sets a rule flag of its own.
    survives_resealed_corruption(&bundle_of(&format!(
        "{POLICY}rule shared: allow \"tool:call\" on refund\n  limit 3 per hour shared\n"
    )));
    // Action globs are checked where the action index reads them, once:
    // a new glob as it is added, and one seen before (by its text) as it
    // is skipped.
    survives_resealed_corruption(&bundle_of(&format!(
        "{POLICY}rule globbed: allow \"t?ol:{{call,run}}\" on refund\n\
         rule again: deny \"t?ol:{{call,run}}\" on \"[a-c]*\"\n"
    )));
}

fn survives_resealed_corruption(good: &[u8]) {
    let good = good.to_vec();
    let body_len = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
    let mut rejected = 0;
    for i in 16..16 + body_len {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            let sum = checksum(&bad[..16 + body_len]);
            bad[16 + body_len..16 + body_len + CHECKSUM_LEN].copy_from_slice(&sum);
            let decoded = read_model(&bad);
            if let Ok(rt) = Runtime::from_bytes(&bad) {
                assert!(
                    decoded.is_ok(),
                    "byte {i} ^ {flip:#x}: the runtime loaded what the decoder rejects: {:?}",
                    decoded.err()
                );
                rt.prepare_all().unwrap_or_else(|e| {
                    panic!("byte {i} ^ {flip:#x}: loaded, but a rule does not decode: {e}")
                });
                // A change that still decodes (a letter in a name) must
                // still give a well-formed decision.
                let d = decide(
                    &rt,
                    r#"{"agent":"bot","action":"tool:call","target":"refund","context":{"amount":40}}"#,
                );
                assert!(d.starts_with("{\"decision\":"), "{d}");
            } else {
                rejected += 1;
            }
        }
    }
    assert!(
        rejected > body_len,
        "most corruptions are structural: {rejected}"
    );
}

/// Rules are decoded on first use: a bundle decides the same whether its
/// rules were prepared up front or as requests came.
#[test]
fn lazily_prepared_rules_decide_like_eagerly_prepared_ones() {
    let bytes = bundle(None);
    let lazy = Runtime::from_bytes(&bytes).unwrap();
    let eager = Runtime::from_bytes(&bytes).unwrap();
    eager.prepare_all().unwrap();
    for json in [
        r#"{"agent":"bot","action":"tool:call","target":"refund","context":{"amount":40}}"#,
        r#"{"agent":"bot","action":"tool:call","target":"refund","context":{"amount":400}}"#,
        r#"{"agent":"bot","action":"tool:call","target":"lookup_order"}"#,
        r#"{"agent":"x","action":"net:connect","target":"api.example.com"}"#,
        r#"{"agent":"x","action":"net:connect","target":"example.org"}"#,
    ] {
        assert_eq!(decide(&lazy, json), decide(&eager, json), "{json}");
    }
}

#[test]
fn signatures_are_checked() {
    let (secret, public) = writ::bundle::keygen().unwrap();
    let (_, other) = writ::bundle::keygen().unwrap();
    let signed = bundle(Some(&secret));
    assert!(Runtime::from_bytes_verified(&signed, &public).is_ok());
    assert_eq!(
        Runtime::from_bytes_verified(&signed, &other).err(),
        Some(LoadError::Signature(SignatureError::Mismatch))
    );
    assert_eq!(
        Runtime::from_bytes_verified(&bundle(None), &public).err(),
        Some(LoadError::Signature(SignatureError::Unsigned))
    );
    // Re-signing a changed body with another key does not pass either.
    let (secret2, _) = writ::bundle::keygen().unwrap();
    let forged = bundle(Some(&secret2));
    assert!(Runtime::from_bytes_verified(&forged, &public).is_err());
    // A signed bundle loads without verification too (integrity only).
    assert!(Runtime::from_bytes(&signed).is_ok());
}

#[test]
fn compile_inspect_and_eval_from_the_command_line() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bundle-cli");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_writ");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(101), "writ panicked");
        out
    };
    let key = dir.join("key");
    let bundle = dir.join("support.wbundle");
    assert!(
        run(&["keygen", "-o", key.to_str().unwrap()])
            .status
            .success()
    );
    let c = run(&[
        "compile",
        "examples/support.writ",
        "-o",
        bundle.to_str().unwrap(),
        "--sign",
        key.to_str().unwrap(),
    ]);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let pubkey = format!("{}.pub", key.display());
    let i = run(&["inspect", bundle.to_str().unwrap(), "--verify", &pubkey]);
    let text = String::from_utf8(i.stdout).unwrap();
    assert!(
        text.contains("rules:         9") && text.contains("signed, verified"),
        "{text}"
    );
    let req = r#"{"agent":"billing-agent","action":"tool:call","target":"refund","context":{"amount":79.99,"currency":"USD"},"at":"2025-01-15T15:00:00Z"}"#;
    let from_bundle = run(&[
        "eval",
        bundle.to_str().unwrap(),
        "--verify",
        &pubkey,
        "--request",
        req,
    ]);
    let from_source = run(&["eval", "examples/support.writ", "--request", req]);
    assert!(from_bundle.status.success());
    assert_eq!(from_bundle.stdout, from_source.stdout);
    // A tampered bundle is refused with a clear error and no decision.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let bad = dir.join("bad.wbundle");
    std::fs::write(&bad, &bytes).unwrap();
    let e = run(&["eval", bad.to_str().unwrap(), "--request", req]);
    assert_eq!(e.status.code(), Some(1));
    assert!(e.stdout.is_empty());
    assert!(String::from_utf8_lossy(&e.stderr).contains("checksum mismatch"));
    let e = run(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(e.status.code(), Some(1));
    // Compiling a policy with errors writes nothing.
    let none = dir.join("none.wbundle");
    let c = run(&[
        "compile",
        "tests/fixtures/yaml/bad-rate.yaml",
        "-o",
        none.to_str().unwrap(),
    ]);
    assert_eq!(c.status.code(), Some(1));
    assert!(!none.exists());
}

/// Compiles `text`, decides every request (JSON, as `writ eval` reads it)
/// with the bundle's runtime and with the reference evaluator, and asserts
/// they agree; returns how many the runtime allowed.
fn decides_as_the_reference(text: &str, requests: &[serde_json::Value]) -> usize {
    let sources = vec![Source {
        name: "index.writ".into(),
        text: text.to_owned(),
    }];
    let comp = compile(&sources, None);
    let set = comp.checked_set().unwrap();
    let rt = Runtime::from_bytes(&writ::bundle::compile(set, &sources, None).unwrap()).unwrap();
    let mut reference = writ_eval::Evaluator::new(set);
    let now = "2025-01-15T12:00:00Z".parse().unwrap();
    let mut allowed = 0;
    for json in requests {
        let json = json.to_string();
        let req = writ_eval::Request::from_json(&json).unwrap();
        let got = rt.check_at(&req, now);
        allowed += usize::from(got.effect == writ_runtime::Effect::Allow);
        assert_eq!(
            got.to_json(&req),
            reference.check(&req, now).to_json(),
            "{json}"
        );
    }
    allowed
}

/// Many rules on one action, each for another agent or role: the runtime
/// indexes them by principal, and still decides as the reference does.
#[test]
fn rules_for_other_principals_are_indexed_away_and_decide_the_same() {
    let mut text = String::from("policy \"many\" { default deny }\n");
    for i in 0..60 {
        text.push_str(&format!(
            "rule a{i}: allow \"tool:call\" on \"t{i}\"\n  for agents [agent{i}]\n"
        ));
        text.push_str(&format!(
            "rule r{i}: approve \"tool:call\"\n  for roles [role{i}]\n  when amount > {i}\n"
        ));
    }
    text.push_str("rule everyone: deny \"tool:call\" on secret\n");
    let mut requests = Vec::new();
    for agent in ["agent0", "agent7", "agent59", "nobody"] {
        for role in ["role3", "role59", "none"] {
            for target in ["t7", "t59", "secret", "other"] {
                for amount in [0, 10, 100] {
                    requests.push(serde_json::json!({
                        "agent": agent, "roles": [role], "action": "tool:call",
                        "target": target, "context": {"amount": amount}
                    }));
                }
            }
        }
    }
    assert!(decides_as_the_reference(&text, &requests) > 0);
}

/// Long lists of rules on one action, most naming exact targets: the
/// runtime indexes them by target (within a principal's share of a large
/// bucket, and in a small bucket), and still decides as the reference
/// does — with rules of target patterns, of target lists and of no target
/// between them, under each combining mode.
#[test]
fn rules_for_other_targets_are_indexed_away_and_decide_the_same() {
    for combine in ["first-match", "deny-overrides"] {
        let mut text = format!("policy \"targets\" {{\n  combine {combine}\n  default deny\n}}\n");
        // "net:connect": 40 rules, split by role, 10 per role.
        for i in 0..40 {
            let role = i % 4;
            let (effect, on) = match i % 10 {
                3 => ("deny", "\"*.internal\"".to_owned()),
                5 => ("approve", format!("[\"h{i}.com\", \"shared.com\"]")),
                7 => ("allow", String::new()),
                _ => ("allow", format!("\"h{i}.com\"")),
            };
            let on = if on.is_empty() {
                on
            } else {
                format!(" on {on}")
            };
            text.push_str(&format!(
                "rule n{i}: {effect} \"net:connect\"{on}\n  for roles [role{role}]\n  when amount > {}\n",
                i % 3
            ));
        }
        // "tool:call": 12 rules, not split by principal.
        for i in 0..12 {
            let effect = if i % 4 == 1 { "deny" } else { "allow" };
            let on = if i == 6 {
                " on \"t*\"".to_owned()
            } else {
                format!(" on t{i}")
            };
            text.push_str(&format!("rule t{i}: {effect} \"tool:call\"{on}\n"));
        }
        let mut requests = Vec::new();
        for role in ["role0", "role1", "role3", "none"] {
            for (action, targets) in [
                (
                    "net:connect",
                    &[
                        "h0.com",
                        "h9.com",
                        "h15.com",
                        "shared.com",
                        "x.internal",
                        "h4.com",
                        "other",
                        "",
                    ][..],
                ),
                ("tool:call", &["t0", "t1", "t6", "t11", "tz", "u", ""][..]),
            ] {
                for target in targets {
                    for amount in [0, 1, 5] {
                        let mut req = serde_json::json!({
                            "agent": "a", "roles": [role], "action": action,
                            "context": {"amount": amount}
                        });
                        if !target.is_empty() {
                            req["target"] = serde_json::json!(target);
                        }
                        requests.push(req);
                    }
                }
            }
        }
        let allowed = decides_as_the_reference(&text, &requests);
        assert!(
            allowed > 10,
            "{combine}: the requests reach allowing rules ({allowed})"
        );
    }
}

/// `net:connect` requests of every agent, on every target (`""` for
/// none), with every amount in the context.
fn connect_requests(agents: &[&str], targets: &[&str], amounts: &[i64]) -> Vec<serde_json::Value> {
    let mut requests = Vec::new();
    for agent in agents {
        for target in targets {
            for amount in amounts {
                let mut req = serde_json::json!({
                    "agent": agent, "action": "net:connect",
                    "context": {"amount": amount}
                });
                if !target.is_empty() {
                    req["target"] = serde_json::json!(target);
                }
                requests.push(req);
            }
        }
    }
    requests
}

/// An action reached through several buckets split by principal: a
/// request none of the agent's own rules decides is explained by a rule of
/// another agent, found by widening the narrowed buckets (up to four) or
/// by a second pass over the whole index (more) — the same rule as the
/// reference names.
#[test]
fn defaults_explained_across_narrowed_buckets_decide_the_same() {
    let patterns = [
        "net:connect",
        "net:*",
        "*:connect",
        "n?t:connect",
        "ne[st]:connect",
        "{net,web}:connect",
    ];
    for kept in [1, 2, 4, 5, 6] {
        let mut text = String::from("policy \"narrowed\" { default deny }\n");
        for (p, pattern) in patterns.iter().take(kept).enumerate() {
            for i in 0..20 {
                let effect = ["allow", "deny", "approve"][(i + p) % 3];
                let on = match i % 4 {
                    0 => format!(" on \"h{i}.com\""),
                    1 => " on \"*.shared.com\"".to_owned(),
                    2 => format!(" on \"[hx]{i}.org\""),
                    _ => String::new(),
                };
                text.push_str(&format!(
                    "rule p{p}r{i}: {effect} \"{pattern}\"{on}\n  for agents [agent{i}]\n  when amount > {p}\n"
                ));
            }
        }
        let requests = connect_requests(
            &["agent0", "agent1", "agent6", "agent19", "nobody"],
            &[
                "h0.com",
                "h4.com",
                "a.shared.com",
                "x2.org",
                "h6.org",
                "none",
                "",
            ],
            &[0, 3, 9],
        );
        let allowed = decides_as_the_reference(&text, &requests);
        assert!(allowed > 0, "{kept} patterns: some request is allowed");
        // The defaults name rules of other agents: the widened candidates
        // reach them.
        let rt = Runtime::from_bytes(&bundle_of(&text)).unwrap();
        let req = writ_runtime::Request::from_json(
            r#"{"agent":"nobody","action":"net:connect","target":"h4.com","context":{"amount":9}}"#,
        )
        .unwrap();
        let got = rt.check_at(&req, "2025-01-15T12:00:00Z".parse().unwrap());
        let reason = got.reason_text(&req).unwrap_or_default().into_owned();
        assert!(
            reason.starts_with("rule `p") && reason.contains("not to agent `nobody`"),
            "{kept} patterns: {reason}"
        );
    }
}

/// A bucket split by principal takes the rules of any principal that a
/// target selects when they are few (their targets then count as
/// matched), and the principal's share when many share the target: both
/// decide as the reference does, and a rule found under two of its
/// targets is decided once (its limit counted once).
#[test]
fn rules_found_by_target_across_principals_decide_the_same() {
    for combine in ["first-match", "deny-overrides"] {
        let mut text = format!("policy \"shared\" {{\n  combine {combine}\n  default deny\n}}\n");
        for i in 0..40 {
            let effect = ["allow", "approve", "allow", "deny"][i % 4];
            // Every rule names `shared.com` (more rules than the few taken
            // by target), some `*.internal` too; each has its own host.
            let on = if i % 5 == 0 {
                format!("[\"h{i}.com\", \"shared.com\", \"*.internal\", \"*{i}.com\"]")
            } else {
                format!("[\"h{i}.com\", \"shared.com\"]")
            };
            text.push_str(&format!(
                "rule n{i}: {effect} \"net:connect\" on {on}\n  for agents [agent{i}]\n  when amount > {}\n",
                i % 3
            ));
        }
        // Rules of one agent for another host: in the agent's share of
        // the bucket when `shared.com` is asked, where it must not match.
        for i in (0..40).step_by(5) {
            text.push_str(&format!(
                "rule solo{i}: deny \"net:connect\" on \"solo{i}.com\"\n  for agents [agent{i}]\n"
            ));
        }
        text.push_str("rule once: allow \"net:connect\" on [\"twice.com\", \"*.com\"]\n  for agents [agent7]\n  limit 2 per hour\n");
        let requests = connect_requests(
            &["agent0", "agent5", "agent7", "agent9", "agent10", "nobody"],
            &[
                "h0.com",
                "h5.com",
                "h10.com",
                "shared.com",
                "solo5.com",
                "x.internal",
                "twice.com",
                "other",
                "",
            ],
            &[0, 1, 5],
        );
        let allowed = decides_as_the_reference(&text, &requests);
        assert!(
            allowed > 5,
            "{combine}: some requests are allowed ({allowed})"
        );
        // `twice.com` is both of rule `once`'s targets: two requests use
        // its limit of two, and the third is refused by it.
        let rt = Runtime::from_bytes(&bundle_of(&text)).unwrap();
        let req = writ_runtime::Request::from_json(
            r#"{"agent":"agent7","action":"net:connect","target":"twice.com","context":{"amount":0}}"#,
        )
        .unwrap();
        let now = "2025-01-15T12:00:00Z".parse().unwrap();
        let effects: Vec<bool> = (0..3)
            .map(|_| rt.check_at(&req, now).is_allowed())
            .collect();
        assert_eq!(effects, [true, true, false], "{combine}");
        let third = rt.check_at(&req, now);
        assert_eq!(third.rule, Some("once"), "{combine}");
    }
}

/// Prefixes and suffixes of many distinct lengths take the rolling-hash
/// path of the action index; it must find the same rules.
#[test]
fn many_affix_lengths_decide_the_same() {
    let mut text = String::from("policy \"affixes\" { default deny }\n");
    for i in 0..12 {
        let stem = "x".repeat(i + 1);
        text.push_str(&format!(
            "rule p{i}: allow \"{stem}:*\"\n  when amount < {i}\n"
        ));
        text.push_str(&format!(
            "rule s{i}: approve \"*:{stem}\"\n  when amount >= {i}\n"
        ));
    }
    let mut requests = Vec::new();
    for action in [
        "x:a",
        "xxxxx:b",
        "xxxxxxxxxxxx:c",
        "a:xxxxxxx",
        "xx:xxx",
        "y:y",
        "xxxxxxxxxxxxx:d",
    ] {
        for amount in [0, 3, 20] {
            requests.push(
                serde_json::json!({"agent": "a", "action": action, "context": {"amount": amount}}),
            );
        }
    }
    assert!(decides_as_the_reference(&text, &requests) > 0);
}

/// `writ keygen` never replaces a key unless told to (bundles signed with
/// the old key would stop verifying), and the secret key is readable by its
/// owner only.
#[test]
fn keygen_keeps_existing_keys_and_writes_the_secret_key_private() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("keygen-cli");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("release-key");
    let keygen = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(["keygen", "-o", key.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(101), "writ panicked");
        out
    };
    assert!(keygen(&[]).status.success());
    let first = std::fs::read(&key).unwrap();
    let first_pub = std::fs::read(dir.join("release-key.pub")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "secret key mode {mode:o}");
    }
    // Again: refused, nothing changed.
    let again = keygen(&[]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&key).unwrap(), first);
    assert_eq!(
        std::fs::read(dir.join("release-key.pub")).unwrap(),
        first_pub
    );
    // Only the public key left over: refused too (it would be replaced).
    std::fs::remove_file(&key).unwrap();
    assert_eq!(keygen(&[]).status.code(), Some(1));
    assert!(!key.exists());
    // --force replaces both, and a secret key that had become readable by
    // others is private again.
    std::fs::write(&key, "old").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    assert!(keygen(&["--force"]).status.success());
    assert_ne!(std::fs::read(&key).unwrap(), b"old");
    assert_ne!(
        std::fs::read(dir.join("release-key.pub")).unwrap(),
        first_pub
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "secret key mode after --force {mode:o}");
    }
}

/// A policy's revision (in its bundle and every audit record) identifies
/// its content, not how its path was spelled: the same file compiled as
/// `examples/support.writ`, `./support.writ` and by its absolute path gives
/// the same bundle, byte for byte; another text or file name gives another.
#[test]
fn the_revision_names_the_content_not_the_path() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("revision-cli");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let absolute = format!("{root}/examples/support.writ");
    let spellings = [
        (root.to_owned(), "examples/support.writ"),
        (format!("{root}/examples"), "./support.writ"),
        ("/".to_owned(), absolute.as_str()),
    ];
    let mut bundles = Vec::new();
    for (i, (cwd, path)) in spellings.iter().enumerate() {
        let out = dir.join(format!("{i}.wbundle"));
        let c = Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(["compile", path, "-o", out.to_str().unwrap()])
            .current_dir(cwd)
            .output()
            .unwrap();
        assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
        bundles.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(bundles[0], bundles[1]);
    assert_eq!(bundles[0], bundles[2]);

    let text = std::fs::read_to_string(&absolute).unwrap();
    let rev = |name: &str, text: &str| {
        writ::bundle::revision(&[Source {
            name: name.into(),
            text: text.into(),
        }])
    };
    assert_eq!(
        rev("examples/support.writ", &text),
        rev("/srv/policies/support.writ", &text)
    );
    assert_eq!(rev("a\\b\\support.writ", &text), rev("support.writ", &text));
    assert_ne!(rev("support.writ", &text), rev("support2.writ", &text));
    assert_ne!(
        rev("support.writ", &text),
        rev("support.writ", &format!("{text}\n"))
    );
}

#[test]
fn an_unreadable_file_keeps_its_io_error() {
    let missing = std::env::temp_dir().join(format!("writ-no-such-{}.wbundle", std::process::id()));
    let Err(LoadError::Io(e)) = Runtime::load(&missing) else {
        panic!("a missing file must be an I/O error");
    };
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(e.path(), missing.as_path());
    let err = LoadError::Io(e);
    assert!(std::error::Error::source(&err).is_some());
    assert!(err.to_string().starts_with("cannot read bundle: "), "{err}");
}
