//! `schemas/writ-policy.schema.json` must describe what the writ front end
//! accepts: every key used by the writ-schema examples is a property the
//! JSON Schema allows at that place, and misspelt keys are rejected by both.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::path::Path;

use serde_json::Value;

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/$defs/");
            resolve(&root["$defs"][name], root)
        }
        None => schema,
    }
}

/// Whether the schema's `type` (when it has one) takes the value's kind.
fn fits(schema: &Value, doc: &Value) -> bool {
    let kind = match doc {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::Null => "null",
    };
    match schema.get("type") {
        Some(Value::String(t)) => t == kind || (t == "integer" && kind == "number"),
        Some(Value::Array(ts)) => ts.iter().any(|t| t == kind),
        _ => true,
    }
}

/// Collects `path: key` for every mapping key the schema does not allow.
fn walk(doc: &Value, schema: &Value, root: &Value, path: &str, bad: &mut Vec<String>) {
    let schema = resolve(schema, root);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        // The options of the document's type; when none takes it, what the
        // first of them found.
        let mut first = None;
        for o in options.iter().filter(|o| fits(resolve(o, root), doc)) {
            let mut trial = Vec::new();
            walk(doc, o, root, path, &mut trial);
            if trial.is_empty() {
                return;
            }
            first.get_or_insert(trial);
        }
        bad.extend(first.unwrap_or_default());
        return;
    }
    match doc {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
            for (k, v) in map {
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    walk(v, p, root, &format!("{path}.{k}"), bad);
                } else if let Some(extra) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    walk(v, extra, root, &format!("{path}.{k}"), bad);
                } else if closed {
                    bad.push(format!("{path}: {k}"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(v, item, root, &format!("{path}[{i}]"), bad);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn writ_examples_use_only_keys_the_json_schema_allows() {
    let root_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root_dir.join("schemas/writ-policy.schema.json")).unwrap(),
    )
    .unwrap();
    let mut bad = Vec::new();
    let mut seen = 0;
    for file in ["examples/support.yaml", "examples/deny-overrides.yaml"] {
        let doc: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(root_dir.join(file)).unwrap()).unwrap();
        walk(&doc, &schema, &schema, file, &mut bad);
        seen += 1;
    }
    assert_eq!(seen, 2);
    assert!(bad.is_empty(), "keys missing from the JSON Schema: {bad:?}");
}

#[test]
fn the_json_schema_rejects_what_the_front_end_rejects() {
    let root_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root_dir.join("schemas/writ-policy.schema.json")).unwrap(),
    )
    .unwrap();
    let doc: Value = serde_saphyr::from_str(
        "writ: 1\npolcy: {}\nrules:\n  - effect: allow\n    action: x\n    efect: deny\n",
    )
    .unwrap();
    let mut bad = Vec::new();
    walk(&doc, &schema, &schema, "doc", &mut bad);
    assert_eq!(bad, ["doc: polcy", "doc.rules[0]: efect"]);

    // A rule limit: `N/unit`, or a mapping of `rate` and `shared`.
    let doc: Value = serde_saphyr::from_str(
        "writ: 1\nagents:\n  a:\n    limits: { requests: 1/hour, shard: true }\n\
         rules:\n  - effect: allow\n    action: x\n    limit: 3/hour\n\
         \x20 - effect: allow\n    action: x\n    limit: { rate: 3/hour, shared: true }\n\
         \x20 - effect: allow\n    action: x\n    limit: { rate: 3/hour, shard: true }\n",
    )
    .unwrap();
    let mut bad = Vec::new();
    walk(&doc, &schema, &schema, "doc", &mut bad);
    assert_eq!(
        bad,
        ["doc.agents.a.limits: shard", "doc.rules[2].limit: shard"]
    );
}
