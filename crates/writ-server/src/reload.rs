//! Reloading: on SIGHUP, on a change of a policy file or the bundle
//! (watched, with changes that come together taken as one), and by
//! polling a bundle URL with its ETag (as OPA's bundle service does).
//! Each reload swaps the whole policy at once or keeps the last good one.

use std::sync::Arc;
use std::time::Duration;

use crate::Shared;
use crate::policy::Source;

/// Keeps the file watcher alive.
pub struct Watcher {
    _inner: Option<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

fn report(what: &str, result: Result<Arc<crate::policy::Loaded>, crate::policy::LoadFailure>) {
    match result {
        Ok(l) => eprintln!("writ serve: {what}: now serving revision {}", l.revision),
        Err(e) => eprintln!("writ serve: {what}: reload refused: {e}"),
    }
}

/// Starts the SIGHUP listener, the watcher and the poller the
/// configuration asks for.
pub fn start(state: &Shared) -> Watcher {
    #[cfg(unix)]
    {
        let s = Arc::clone(state);
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                if let Source::Fetched { .. } = s.policies.source() {
                    poll_once(&s, &mut None).await;
                } else {
                    let p = Arc::clone(&s.policies);
                    let r = tokio::task::spawn_blocking(move || p.reload(None)).await;
                    if let Ok(r) = r {
                        report("SIGHUP", r);
                    }
                }
            }
        });
    }
    if let Source::Fetched { .. } = state.policies.source() {
        let s = Arc::clone(state);
        tokio::spawn(async move {
            let mut etag = None;
            loop {
                tokio::time::sleep(s.config.bundle_poll).await;
                poll_once(&s, &mut etag).await;
            }
        });
        return Watcher { _inner: None };
    }
    if !state.config.watch {
        return Watcher { _inner: None };
    }
    Watcher {
        _inner: watch(state),
    }
}

fn watch(state: &Shared) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let own = own_files(&state.config);
    let mut w = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        if let Ok(e) = e
            && !e.kind.is_access()
            && !e.paths.iter().all(|p| is_own(&own, p))
        {
            let _ = tx.send(());
        }
    })
    .ok()?;
    for path in state.policies.watched() {
        // A file is watched through its directory, so that an editor's
        // replace-by-rename is seen too.
        let target = if path.is_dir() {
            path.clone()
        } else {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(
                    || std::path::PathBuf::from("."),
                    std::path::Path::to_path_buf,
                )
        };
        if let Err(e) = w.watch(&target, notify::RecursiveMode::NonRecursive) {
            eprintln!("writ serve: cannot watch {}: {e}", target.display());
        }
    }
    let s = Arc::clone(state);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Changes that come together are one reload.
            tokio::time::sleep(Duration::from_millis(100)).await;
            while rx.try_recv().is_ok() {}
            let before = s.policies.current().revision.clone();
            let p = Arc::clone(&s.policies);
            if let Ok(r) = tokio::task::spawn_blocking(move || p.reload(None)).await {
                match &r {
                    Ok(l) if l.revision == before => {}
                    _ => report("file change", r),
                }
            }
        }
    });
    Some(w)
}

/// The names of the files the server itself writes: the audit log and
/// the registry (SQLite adds `-wal`, `-shm` and `-journal` to them).
fn own_files(config: &crate::Config) -> Vec<std::ffi::OsString> {
    [&config.audit_path, &config.db_path]
        .into_iter()
        .filter_map(|p| p.file_name().map(std::ffi::OsStr::to_owned))
        .collect()
}

/// Whether a change at `path` is the server's own writing (when its audit
/// log or registry sits beside the policy, as the defaults in the working
/// directory do): every decision would otherwise recompile the policy.
/// Only the name is compared (the watched directories hold the policy); a
/// policy file is never the server's own.
fn is_own(own: &[std::ffi::OsString], path: &std::path::Path) -> bool {
    let Some(name) = path.file_name() else {
        return false;
    };
    let name = name.to_string_lossy();
    !writ_compiler::inputs::is_policy_file(&name)
        && own
            .iter()
            .any(|o| name.starts_with(o.to_string_lossy().as_ref()))
}

async fn poll_once(s: &Shared, etag: &mut Option<String>) {
    let Source::Fetched { url, .. } = s.policies.source() else {
        return;
    };
    let mut req = s.http.get(url);
    if let Some(tag) = etag.as_deref() {
        req = req.header(reqwest::header::IF_NONE_MATCH, tag);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("writ serve: polling {url}: {e}");
            return;
        }
    };
    if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
        return;
    }
    if !resp.status().is_success() {
        eprintln!("writ serve: polling {url}: HTTP {}", resp.status());
        return;
    }
    let tag = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(bytes) = resp.bytes().await else {
        return;
    };
    let p = Arc::clone(&s.policies);
    if let Ok(r) = tokio::task::spawn_blocking(move || p.reload(Some(bytes.to_vec()))).await {
        if r.is_ok() {
            *etag = tag;
        }
        report("bundle poll", r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_servers_own_files_are_told_apart_from_the_policy() {
        let config = crate::Config {
            audit_path: "logs/writ-audit.db".into(),
            db_path: "writ-serve.db".into(),
            ..crate::Config::default()
        };
        let own = own_files(&config);
        for path in [
            "./writ-audit.db",
            "/srv/policies/writ-audit.db-wal",
            "writ-serve.db-journal",
        ] {
            assert!(is_own(&own, Path::new(path)), "{path}");
        }
        for path in ["./policy.writ", "/srv/writ-serve.db.yaml", "audit.db", "/"] {
            assert!(!is_own(&own, Path::new(path)), "{path}");
        }
    }
}
