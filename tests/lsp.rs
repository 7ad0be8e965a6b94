//! The language server driven through its LSP interface, with the
//! compiler's analyzer: every feature on fixture files, responses
//! snapshotted (`tests/snapshots/lsp__*.snap`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::sync::Arc;

use futures::StreamExt;
use serde_json::{Value, json};
use tower::{Service, ServiceExt};
use tower_lsp_server::LspService;
use tower_lsp_server::jsonrpc::Request;
use writ_lsp::Backend;

struct Harness {
    service: LspService<Backend>,
    messages: tokio::sync::mpsc::UnboundedReceiver<Value>,
    next_id: i64,
}

fn fixture(name: &str) -> (String, String) {
    let path = std::fs::canonicalize(format!("tests/fixtures/lsp/{name}")).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    (format!("file://{}", path.display()), text)
}

impl Harness {
    async fn start() -> Harness {
        let (service, mut socket) = writ_lsp::service(Arc::new(writ::ide::WritAnalyzer::default()));
        let (tx, messages) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(req) = socket.next().await {
                let v = serde_json::to_value(&req).unwrap();
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut h = Harness {
            service,
            messages,
            next_id: 0,
        };
        let init = h.request("initialize", json!({"capabilities": {}})).await;
        assert!(init["capabilities"]["hoverProvider"].as_bool().unwrap());
        h.notify("initialized", json!({})).await;
        h
    }

    async fn request(&mut self, method: &'static str, params: Value) -> Value {
        self.next_id += 1;
        let req = Request::build(method)
            .id(self.next_id)
            .params(params)
            .finish();
        let resp = self
            .service
            .ready()
            .await
            .unwrap()
            .call(req)
            .await
            .unwrap()
            .expect("a response");
        let (_, result) = resp.into_parts();
        result.unwrap_or_else(|e| json!({"error": e.message}))
    }

    async fn notify(&mut self, method: &'static str, params: Value) {
        let req = Request::build(method).params(params).finish();
        let resp = self.service.ready().await.unwrap().call(req).await.unwrap();
        assert!(resp.is_none());
    }

    async fn open(&mut self, name: &str) -> (String, String) {
        let (uri, text) = fixture(name);
        let language = if name.ends_with(".writ") {
            "writ"
        } else {
            "yaml"
        };
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}),
        )
        .await;
        (uri, text)
    }

    /// The next diagnostics published for `uri`.
    async fn diagnostics(&mut self, uri: &str) -> Value {
        loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(10), self.messages.recv())
                .await
                .expect("diagnostics within 10 s")
                .expect("the server is running");
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri {
                return m["params"].clone();
            }
        }
    }
}

/// Line and UTF-16 column of the first occurrence of `needle` (plus `skip`
/// characters).
fn pos(text: &str, needle: &str, skip: usize) -> Value {
    let at = text.find(needle).unwrap() + skip;
    let line = text[..at].matches('\n').count();
    let col = text[..at]
        .rsplit('\n')
        .next()
        .unwrap()
        .encode_utf16()
        .count();
    json!({"line": line, "character": col})
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn redact_uris(v: &Value, uri: &str) -> Value {
    let v: Value = serde_json::from_str(&v.to_string().replace(uri, "file:///FIXTURE")).unwrap();
    sorted(&redact_docs_links(&v))
}

/// The docs links point into the checkout the server was built from
/// (`file:///.../docs/diagnostics/W0104.md`), which differs per machine:
/// written `file:///WRIT/docs/diagnostics/W0104.md` in snapshots.
fn redact_docs_links(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("file://") && s.contains("/docs/diagnostics/") => {
            let at = s.find("/docs/diagnostics/").unwrap();
            Value::String(format!("file:///WRIT{}", &s[at..]))
        }
        Value::Array(a) => Value::Array(a.iter().map(redact_docs_links).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), redact_docs_links(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Objects with their keys in order, whether or not some crate in the
/// build turns on serde_json's `preserve_order`.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[test]
fn diagnostics_arrive_on_open_and_follow_versioned_edits() {
    runtime().block_on(async {
        let mut h = Harness::start().await;
        let (uri, _) = h.open("broken.writ").await;
        let d = h.diagnostics(&uri).await;
        assert_eq!(d["version"], 1);
        insta::assert_json_snapshot!("broken_diagnostics", redact_uris(&d, &uri));

        // A stale edit (version 1 again) is ignored; version 2 fixes it.
        h.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": 1},
                   "contentChanges": [{"text": "garbage {{{"}]}),
        )
        .await;
        h.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": 2},
                   "contentChanges": [{"range": {"start": {"line": 3, "character": 2}, "end": {"line": 3, "character": 7}}, "text": "roles"}]}),
        )
        .await;
        let d = h.diagnostics(&uri).await;
        assert_eq!(d["version"], 2);
        assert_eq!(d["diagnostics"], json!([]), "fixed by the edit: {d}");
    });
}

#[test]
fn the_quick_fix_applies_the_did_you_mean() {
    runtime().block_on(async {
        let mut h = Harness::start().await;
        let (uri, text) = h.open("broken.writ").await;
        h.diagnostics(&uri).await;
        let p = pos(&text, "rolez", 1);
        let actions = h
            .request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": uri}, "range": {"start": p, "end": p}, "context": {"diagnostics": []}}),
            )
            .await;
        let fix = &actions[0];
        assert_eq!(fix["title"], "Replace with `roles`");
        assert_eq!(fix["kind"], "quickfix");
        let edit = &fix["edit"]["changes"][&uri][0];
        assert_eq!(edit["newText"], "roles");
        assert_eq!(edit["range"]["start"], pos(&text, "rolez", 0));
    });
}

#[test]
fn hover_definition_references_and_rename() {
    runtime().block_on(async {
        let mut h = Harness::start().await;
        let (uri, text) = h.open("shop.writ").await;
        let d = h.diagnostics(&uri).await;
        insta::assert_json_snapshot!("shop_diagnostics", redact_uris(&d, &uri));

        let td = json!({"uri": uri});
        let hover = h
            .request("textDocument/hover", json!({"textDocument": td, "position": pos(&text, "rule lookups", 6)}))
            .await;
        insta::assert_snapshot!("hover_rule", hover["contents"]["value"].as_str().unwrap());
        let hover = h
            .request("textDocument/hover", json!({"textDocument": td, "position": pos(&text, "rule lookup_orders", 6)}))
            .await;
        assert!(
            hover["contents"]["value"].as_str().unwrap().contains("shadowed by `lookups`"),
            "{hover}"
        );
        let hover = h
            .request("textDocument/hover", json!({"textDocument": td, "position": pos(&text, "\"billing-agent\" {", 1)}))
            .await;
        insta::assert_snapshot!("hover_agent", hover["contents"]["value"].as_str().unwrap());
        let hover = h
            .request("textDocument/hover", json!({"textDocument": td, "position": pos(&text, "delegates", 2)}))
            .await;
        assert!(hover["contents"]["value"].as_str().unwrap().starts_with("**`delegates`**"));

        // From a use in `delegates [..]` to the declaration.
        let use_at = pos(&text, "[billing-agent]", 3);
        let def = h
            .request("textDocument/definition", json!({"textDocument": td, "position": use_at}))
            .await;
        assert_eq!(def[0]["range"]["start"], pos(&text, "billing-agent\" {", 0));
        let refs = h
            .request(
                "textDocument/references",
                json!({"textDocument": td, "position": use_at, "context": {"includeDeclaration": true}}),
            )
            .await;
        assert_eq!(refs.as_array().unwrap().len(), 4, "declaration, delegates and two rules: {refs}");

        let prep = h
            .request("textDocument/prepareRename", json!({"textDocument": td, "position": use_at}))
            .await;
        assert_eq!(prep["placeholder"], "billing-agent");
        let edit = h
            .request(
                "textDocument/rename",
                json!({"textDocument": td, "position": use_at, "newName": "payments-agent"}),
            )
            .await;
        let edits = edit["changes"][&uri].as_array().unwrap();
        assert_eq!(edits.len(), 4);
        // A name that would need quotes where it stands bare is refused.
        let refused = h
            .request(
                "textDocument/rename",
                json!({"textDocument": td, "position": use_at, "newName": "payments agent"}),
            )
            .await;
        assert!(refused["error"].as_str().unwrap().contains("letters, digits"), "{refused}");
        assert!(edits.iter().all(|e| e["newText"] == "payments-agent"));
        // Applying the edits gives a policy that still checks.
        let mut renamed = text.clone();
        let mut spans: Vec<(usize, usize)> = edits
            .iter()
            .map(|e| {
                let off = |p: &Value| {
                    let line = p["line"].as_u64().unwrap() as usize;
                    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
                    start + p["character"].as_u64().unwrap() as usize
                };
                (off(&e["range"]["start"]), off(&e["range"]["end"]))
            })
            .collect();
        spans.sort_unstable();
        for (s, e) in spans.into_iter().rev() {
            renamed.replace_range(s..e, "payments-agent");
        }
        assert!(!renamed.contains("billing-agent"));
        let comp = writ::compile(&[writ::Source { name: "shop.writ".into(), text: renamed }], None);
        assert!(!comp.has_errors(), "{:?}", comp.diagnostics);
    });
}

#[test]
fn outline_folding_tokens_formatting_and_completion() {
    runtime().block_on(async {
        let mut h = Harness::start().await;
        let (uri, text) = h.open("shop.writ").await;
        h.diagnostics(&uri).await;
        let td = json!({"uri": uri});
        let symbols = h.request("textDocument/documentSymbol", json!({"textDocument": td})).await;
        insta::assert_json_snapshot!("shop_symbols", sorted(&symbols));
        let folds = h.request("textDocument/foldingRange", json!({"textDocument": td})).await;
        assert!(folds.as_array().unwrap().len() >= 4, "{folds}");
        let tokens = h.request("textDocument/semanticTokens/full", json!({"textDocument": td})).await;
        let data = tokens["data"].as_array().unwrap();
        assert_eq!(data.len() % 5, 0);
        // The first token is the comment on line 0, the second `policy`.
        assert_eq!(&data[..5], &[json!(0), json!(0), json!(58), json!(3), json!(0)]);
        assert_eq!(&data[5..10], &[json!(1), json!(0), json!(6), json!(0), json!(0)]);

        // Formatting a formatted file changes nothing; a messy one is fixed.
        let edits = h.request("textDocument/formatting", json!({"textDocument": td, "options": {"tabSize": 2, "insertSpaces": true}})).await;
        assert_eq!(edits, json!([]));
        h.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": text.replace("  roles [support]\n  tools", "roles   [support]\n        tools")}]}),
        )
        .await;
        h.diagnostics(&uri).await;
        let edits = h.request("textDocument/formatting", json!({"textDocument": td, "options": {"tabSize": 2, "insertSpaces": true}})).await;
        assert_eq!(edits[0]["newText"].as_str().unwrap(), text);

        let complete = |v: &Value| -> Vec<String> {
            v.as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap().to_owned()).collect()
        };
        let after_risk = h.request("textDocument/completion", json!({"textDocument": td, "position": pos(&text, "risk high", 5)})).await;
        assert_eq!(complete(&after_risk), ["low", "medium", "high", "critical"]);
        let in_agents = h.request("textDocument/completion", json!({"textDocument": td, "position": pos(&text, "for agents [", 12)})).await;
        assert_eq!(complete(&in_agents), ["billing-agent", "triage-agent"]);
        let in_string = h.request("textDocument/completion", json!({"textDocument": td, "position": pos(&text, "allow \"tool:call\"", 7)})).await;
        assert_eq!(complete(&in_string), ["tool:call"]);
    });
}

#[test]
fn yaml_policies_get_diagnostics_keys_and_a_conversion() {
    runtime().block_on(async {
        let mut h = Harness::start().await;
        let (uri, text) = h.open("aegis.yaml").await;
        let d = h.diagnostics(&uri).await;
        let codes: Vec<&str> = d["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["W0104", "W0104"], "the seed's two shadowed block rules: {d}");
        // The link opens: the page in this checkout, as a file URL.
        let href = d["diagnostics"][0]["codeDescription"]["href"].as_str().unwrap();
        let path = href.strip_prefix("file://").unwrap_or_else(|| panic!("{href}"));
        assert!(path.ends_with("docs/diagnostics/W0104.md") && std::path::Path::new(path).is_file(), "{href}");
        let td = json!({"uri": uri});
        // Keys of an Aegis rule, at the start of a new key in the first rule.
        let at = pos(&text, "    match:", 4);
        let keys = h.request("textDocument/completion", json!({"textDocument": td, "position": at})).await;
        let labels: Vec<&str> = keys.as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap()).collect();
        assert!(labels.contains(&"risk_level") && labels.contains(&"approval"), "{labels:?}");
        let actions = h.request("textDocument/codeAction", json!({"textDocument": td, "range": {"start": at, "end": at}, "context": {"diagnostics": []}})).await;
        let convert = actions.as_array().unwrap().iter().find(|a| a["kind"] == "refactor.rewrite").unwrap();
        let args = convert["command"]["arguments"].clone();
        let writ_text = h.request("workspace/executeCommand", json!({"command": "writ.convertToWrit", "arguments": args})).await;
        assert!(writ_text.as_str().unwrap().contains("rule write_ops: approve"), "{writ_text}");
        // A YAML file that is not a policy gets no diagnostics.
        let other = uri.replace("aegis.yaml", "not-a-policy.yaml");
        h.notify("textDocument/didOpen", json!({"textDocument": {"uri": other, "languageId": "yaml", "version": 1, "text": "name: ci\non: push\n"}})).await;
        let d = h.diagnostics(&other).await;
        assert_eq!(d["diagnostics"], json!([]));
    });
}

#[test]
fn the_code_lens_decides_the_requests_file_next_to_the_policy() {
    runtime().block_on(async {
        let mut h = Harness::start().await;
        let (uri, _) = h.open("shop.writ").await;
        h.diagnostics(&uri).await;
        let lens = h
            .request(
                "textDocument/codeLens",
                json!({"textDocument": {"uri": uri}}),
            )
            .await;
        assert_eq!(
            lens[0]["command"]["title"],
            "shop.requests.jsonl: 1 allow · 1 deny · 1 approve · 1 invalid"
        );
        let args = lens[0]["command"]["arguments"].clone();
        let out = h
            .request(
                "workspace/executeCommand",
                json!({"command": "writ.evaluateRequests", "arguments": args}),
            )
            .await;
        let decisions: Vec<&str> = out
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].as_str().unwrap())
            .collect();
        assert_eq!(decisions, ["allow", "approve", "deny", "error"]);
        assert!(
            out[0]["detail"]
                .as_str()
                .unwrap()
                .contains("\"rule\":\"refunds\"")
        );
    });
}

/// Every analyzer entry point on every example, and on damaged copies of
/// them, at many cursor positions: no panic, and ranges stay in the text.
#[test]
fn the_analyzer_survives_every_example_and_damaged_copies_at_every_position() {
    use writ_lsp::Analyzer as _;
    let analyzer = writ::ide::WritAnalyzer::default();
    let mut files = Vec::new();
    for dir in [
        "examples",
        "examples/seeds",
        "tests/fixtures/writ",
        "tests/fixtures/yaml",
    ] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.to_string_lossy().into_owned();
            if (name.ends_with(".writ") || name.ends_with(".yaml") || name.ends_with(".yml"))
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                files.push((name, text));
            }
        }
    }
    assert!(files.len() > 20);
    let ws = writ_lsp::analysis::Workspace {
        agents: vec!["bot".into()],
        roles: vec!["support".into()],
        actions: vec!["tool:call".into()],
    };
    let mut seed = 7u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (name, text) in &files {
        // The file, then three damaged copies: a cut, a removed line, a
        // doubled span.
        let mut variants = vec![text.clone()];
        let cut = |t: &str, at: usize| t.get(..at).map(str::to_owned);
        let n = text.len().max(1);
        for _ in 0..3 {
            let at = (next() as usize) % n;
            if let Some(c) = cut(text, at) {
                variants.push(c);
            }
        }
        if let Some(i) = text.find('\n') {
            variants.push(text[i + 1..].to_owned());
        }
        for v in &variants {
            let a = analyzer.analyze(name, v);
            for d in &a.diagnostics {
                assert!(
                    d.range.start <= d.range.end && d.range.end <= v.len(),
                    "{name}: {d:?}"
                );
                for f in &d.fixes {
                    assert!(v.get(f.range.clone()).is_some(), "{name}: fix {f:?}");
                }
            }
            for r in &a.references {
                assert!(v.get(r.range.clone()).is_some(), "{name}: {r:?}");
            }
            let mut at = 0;
            while at <= v.len() {
                if v.is_char_boundary(at) {
                    let _ = analyzer.hover(name, v, at);
                    let _ = analyzer.complete(name, v, at, &ws);
                }
                at += 1 + (next() as usize) % 400;
            }
            let _ = analyzer.format(name, v);
        }
    }
}

#[test]
fn an_exploding_glob_is_an_error_in_the_editor_as_in_check() {
    runtime().block_on(async {
        let mut h = Harness::start().await;
        let (uri, text) = h.open("blowup.writ").await;
        let d = h.diagnostics(&uri).await;
        let diags = d["diagnostics"].as_array().unwrap();
        assert_eq!(diags.len(), 1, "{d}");
        assert_eq!(diags[0]["code"], "E0209");
        assert_eq!(diags[0]["severity"], 1);
        assert_eq!(diags[0]["range"]["start"], pos(&text, "\"{a,b}", 0));
        let message = diags[0]["message"].as_str().unwrap();
        assert!(message.contains("rule `long_ids`"), "{message}");

        // A prefix needs no glob program: the error goes.
        let line = text.lines().position(|l| l.contains("\"{a,b}")).unwrap();
        let end = text.lines().nth(line).unwrap().len();
        h.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": 2},
                   "contentChanges": [{"range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": end}},
                                       "text": "rule long_ids: deny \"tool:call\" on \"id-*\""}]}),
        )
        .await;
        let d = h.diagnostics(&uri).await;
        assert_eq!(d["version"], 2);
        assert_eq!(d["diagnostics"], json!([]), "{d}");
    });
}
