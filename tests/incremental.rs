//! Incremental reading (what the language server does on every edit) gives
//! exactly what reading from scratch gives: after any sequence of edits,
//! the lowered file, every span and every diagnostic are the same, and
//! the parts that did not change are reused rather than read again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use proptest::prelude::*;
use writ::lang::{self, incremental};
use writ::{Cache, Source, compile, compile_with};
use writ_diagnostics::FileId;

/// Every `.writ` file of the examples and the fixtures, broken ones too.
fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        "examples",
        "examples/seeds",
        "tests/fixtures/writ",
        "tests/fixtures/lsp",
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "writ") {
                out.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    assert!(
        out.len() >= 10,
        "the corpus is the repository's .writ files"
    );
    out
}

/// One edit: replace `len` bytes at `at` (a fraction of the text) by `insert`.
#[derive(Clone, Debug)]
struct Edit {
    at: f64,
    len: usize,
    insert: String,
}

fn edit() -> impl Strategy<Value = Edit> {
    let pieces = prop::sample::select(vec![
        "",
        "7",
        "x",
        " ",
        "\n",
        "\"",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "#",
        "rule ",
        "\nrule r: ",
        "\nagent a {\n",
        "when amount > 1",
        "and",
        "policy ",
        "\npolicy p {\n}\n",
        "é",
    ]);
    (0.0..1.0f64, 0usize..6, pieces).prop_map(|(at, len, insert)| Edit {
        at,
        len,
        insert: insert.to_owned(),
    })
}

fn boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, e: &Edit) {
    // The float-to-index conversion is the point: a position in the text.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "small test sizes"
    )]
    let start = boundary(text, (e.at * text.len() as f64) as usize);
    let end = boundary(text, start + e.len);
    text.replace_range(start..end, &e.insert);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn edits_read_incrementally_as_from_scratch(
        file in 0usize..64,
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let corpus = corpus();
        let mut text = corpus[file % corpus.len()].clone();
        let mut cache = incremental::ReadCache::default();
        let _ = incremental::read(&mut cache, FileId(0), &text, "p");
        for e in &edits {
            apply(&mut text, e);
            let again = incremental::read(&mut cache, FileId(0), &text, "p");
            let fresh = lang::read(FileId(0), &text, "p");
            prop_assert_eq!(&again.0, &fresh.0, "after {:?} on\n{}", e, text);
            prop_assert_eq!(&again.1, &fresh.1, "after {:?} on\n{}", e, text);
        }
    }

    #[test]
    fn edits_compile_incrementally_as_from_scratch(
        file in 0usize..64,
        edits in prop::collection::vec(edit(), 1..5),
    ) {
        let corpus = corpus();
        let mut text = corpus[file % corpus.len()].clone();
        let mut cache = Cache::default();
        let source = |text: &str| [Source { name: "edited.writ".to_owned(), text: text.to_owned() }];
        let _ = compile_with(&mut cache, &source(&text), None);
        for e in &edits {
            apply(&mut text, e);
            let again = compile_with(&mut cache, &source(&text), None);
            let fresh = compile(&source(&text), None);
            prop_assert_eq!(&again.diagnostics, &fresh.diagnostics);
            prop_assert_eq!(&again.set, &fresh.set);
            prop_assert_eq!(&again.shadows, &fresh.shadows);
        }
    }
}

fn rules(n: usize) -> String {
    let mut s = String::from("policy \"p\" {\n  default deny\n}\n\n");
    for i in 0..n {
        s.push_str(&format!(
            "rule r{i}: allow \"tool:call\" on \"t{i}\"\n  when amount <= {i}\n\n"
        ));
    }
    s
}

#[test]
fn an_edit_rereads_only_its_item_and_the_header() {
    let mut text = rules(50);
    let mut cache = incremental::ReadCache::default();
    let _ = incremental::read(&mut cache, FileId(0), &text, "p");
    assert_eq!(cache.reused(), 0, "a new cache reads everything");
    // The leading comment-less part is the header (read every time) and 50 rules.
    assert_eq!(cache.len(), 50);

    // Type one character inside rule r3: every later rule moves by a byte.
    let at = text.find("amount <= 3\n").unwrap() + "amount <= ".len();
    text.insert(at, '9');
    let (file, diags) = incremental::read(&mut cache, FileId(0), &text, "p");
    assert_eq!(cache.reused(), 49);
    assert!(diags.is_empty(), "{diags:?}");
    let fresh = lang::read(FileId(0), &text, "p");
    assert_eq!(file, fresh.0);
    let r49 = file.rules.iter().find(|r| r.name.value == "r49").unwrap();
    assert_eq!(&text[r49.span.start as usize..][..9], "rule r49:");

    // The same text again: nothing is read.
    let _ = incremental::read(&mut cache, FileId(0), &text, "p");
    assert_eq!(cache.reused(), 50);

    // Another file id: the cache starts over (spans name their file).
    let _ = incremental::read(&mut cache, FileId(1), &text, "p");
    assert_eq!(cache.reused(), 0);
}

#[test]
fn a_part_written_twice_is_read_for_both_places() {
    let rule = "rule same: allow \"x\"\n\n";
    let text = format!("{rule}{rule}");
    let mut cache = incremental::ReadCache::default();
    let (file, diags) = incremental::read(&mut cache, FileId(0), &text, "p");
    assert_eq!(file.rules.len(), 2);
    assert_ne!(file.rules[0].span, file.rules[1].span);
    assert_eq!(diags, lang::read(FileId(0), &text, "p").1);
}
