//! Hot reload: bundles swap atomically under load, a bad bundle keeps the
//! last good one (and says why), the watcher reloads a changed file, and
//! limits carry over a reload.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking: unwrap, expect, panic and indexing say what broke"
)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use writ::{Source, compile};
use writ_runtime::{Effect, Engine, Request, Runtime};

/// A bundle whose one rule `name` decides `effect` for `tool:call`.
fn bundle(name: &str, effect: &str) -> Vec<u8> {
    let text = format!(
        "policy \"p\" {{\n  default deny\n}}\n\nrule {name}: {effect} \"tool:call\"\n  limit 1000000 per hour\n"
    );
    let sources = [Source {
        name: "p.writ".to_owned(),
        text,
    }];
    let comp = compile(&sources, None);
    writ::bundle::compile(comp.checked_set().unwrap(), &sources, None).unwrap()
}

fn req() -> Request {
    Request::new("a", "tool:call")
}

#[test]
fn swaps_under_load_never_mix_two_bundles() {
    let a = bundle("from_a", "allow");
    let b = bundle("from_b", "deny");
    let engine = Arc::new(Engine::new(Runtime::from_vec(a.clone()).unwrap()));
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new((0usize, 0usize)));
    std::thread::scope(|s| {
        for _ in 0..3 {
            let (engine, stop, seen) = (Arc::clone(&engine), Arc::clone(&stop), Arc::clone(&seen));
            s.spawn(move || {
                let (mut na, mut nb) = (0, 0);
                let r = req();
                while !stop.load(Ordering::Relaxed) {
                    engine.decide(&r, |d| match (d.effect, d.rule) {
                        (Effect::Allow, Some("from_a")) => na += 1,
                        (Effect::Deny, Some("from_b")) => nb += 1,
                        other => panic!("a decision from no single bundle: {other:?}"),
                    });
                }
                let mut s = seen.lock().unwrap();
                s.0 += na;
                s.1 += nb;
            });
        }
        // Swap for a while, so that the deciding threads run between swaps.
        let start = Instant::now();
        let mut i = 0;
        while i < 400 || start.elapsed() < Duration::from_millis(300) {
            let bytes = if i % 2 == 0 { &b } else { &a };
            engine.replace(Runtime::from_vec(bytes.clone()).unwrap());
            std::thread::sleep(Duration::from_micros(200));
            i += 1;
        }
        stop.store(true, Ordering::Relaxed);
    });
    let (na, nb) = *seen.lock().unwrap();
    assert!(na > 0 && nb > 0, "both bundles served: {na} / {nb}");
}

#[test]
fn a_bad_bundle_keeps_the_last_good_one() {
    let dir = tempdir();
    let path = dir.join("p.wbundle");
    std::fs::write(&path, bundle("good", "allow")).unwrap();
    let engine = Engine::load(&path, None).unwrap();
    // Half a bundle, as a reader may see a file mid-write.
    let next = bundle("next", "deny");
    std::fs::write(&path, &next[..next.len() / 2]).unwrap();
    let err = engine.reload(&path).unwrap_err();
    assert!(
        err.to_string().contains("checksum") || err.to_string().contains("corrupt"),
        "{err}"
    );
    assert!(
        engine
            .last_error()
            .unwrap()
            .contains("still serving the last good bundle")
    );
    engine.decide(&req(), |d| assert_eq!(d.rule, Some("good")));
    // The complete file loads and clears the error.
    std::fs::write(&path, &next).unwrap();
    engine.reload(&path).unwrap();
    assert_eq!(engine.last_error(), None);
    engine.decide(&req(), |d| assert_eq!(d.rule, Some("next")));
    // A missing file is refused the same way.
    assert!(engine.reload(dir.join("missing.wbundle")).is_err());
    engine.decide(&req(), |d| assert_eq!(d.rule, Some("next")));
}

#[test]
fn the_watcher_reloads_a_changed_file_once_it_is_quiet() {
    let dir = tempdir();
    let path = dir.join("p.wbundle");
    std::fs::write(&path, bundle("first", "allow")).unwrap();
    let engine = Arc::new(Engine::load(&path, None).unwrap());
    let outcomes = Arc::new(Mutex::new(Vec::<bool>::new()));
    let heard = Arc::clone(&outcomes);
    let watcher = engine
        .watch(&path, Duration::from_millis(150), move |r| {
            heard.lock().unwrap().push(r.is_ok());
        })
        .unwrap();
    // A writer that writes in pieces: the debounce waits for it to finish.
    let second = bundle("second", "deny");
    let (head, tail) = second.split_at(second.len() / 2);
    std::fs::write(&path, head).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let mut all = head.to_vec();
    all.extend_from_slice(tail);
    std::fs::write(&path, &all).unwrap();
    wait_until(|| engine.runtime().check(&req()).rule == Some("second"));
    // Replace by rename, as deploy tools do.
    let tmp = dir.join("p.wbundle.tmp");
    std::fs::write(&tmp, bundle("third", "allow")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    wait_until(|| engine.runtime().check(&req()).rule == Some("third"));
    // Garbage: refused, the last good bundle stays.
    let before = outcomes.lock().unwrap().len();
    std::fs::write(&path, b"not a bundle").unwrap();
    wait_until(|| outcomes.lock().unwrap().len() > before);
    assert_eq!(outcomes.lock().unwrap().last(), Some(&false));
    assert_eq!(engine.runtime().check(&req()).rule, Some("third"));
    drop(watcher);
}

#[test]
fn limits_carry_over_a_reload() {
    let text = |rule: &str| {
        format!(
            "rule {rule}: deny \"other\"\n\nrule counted: allow \"tool:call\"\n  limit 10 per hour\n"
        )
    };
    let build = |t: String| {
        let sources = [Source {
            name: "p.writ".to_owned(),
            text: t,
        }];
        let comp = compile(&sources, None);
        Runtime::from_vec(
            writ::bundle::compile(comp.checked_set().unwrap(), &sources, None).unwrap(),
        )
        .unwrap()
    };
    let engine = Engine::new(build(text("x")));
    let allowed = AtomicUsize::new(0);
    let count = |engine: &Engine| {
        for _ in 0..6 {
            engine.decide(&req(), |d| {
                if d.effect == Effect::Allow {
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    };
    count(&engine);
    engine.replace(build(text("y")));
    count(&engine);
    assert_eq!(allowed.load(Ordering::Relaxed), 10);
}

fn wait_until(mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tempdir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "writ-reload-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
