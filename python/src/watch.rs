//! `watch=True`: reload when a policy file changes, once the files have
//! been quiet for a moment (an editor's save or a deploy's rename ends in
//! one reload). Works for bundles and sources alike: the engine reloads
//! its whole spec, and a bad new policy keeps the old one.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak, mpsc};
use std::time::Duration;

use notify::Watcher as _;

use crate::Inner;

/// How long the files must be quiet before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Watches an engine's files; dropping it stops the thread.
pub struct Watcher {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn absolute_dir(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

impl Watcher {
    /// Starts watching every file of `inner`'s spec.
    ///
    /// # Errors
    /// When a directory cannot be watched or the thread cannot start.
    pub fn start(inner: &Arc<Inner>) -> Result<Watcher, String> {
        let files: HashSet<(PathBuf, OsString)> = inner
            .spec
            .paths
            .iter()
            .filter_map(|p| Some((absolute_dir(p), p.file_name()?.to_os_string())))
            .collect();
        let dirs: HashSet<PathBuf> = files.iter().map(|(d, _)| d.clone()).collect();
        let (tx, rx) = mpsc::channel::<()>();
        let wanted = files.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                let hit = event.paths.iter().any(|p| {
                    let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
                        return false;
                    };
                    wanted.contains(&(dir.to_path_buf(), name.to_os_string()))
                });
                if hit {
                    let _ = tx.send(());
                }
            })
            .map_err(|e| format!("cannot watch the policy files: {e}"))?;
        for dir in &dirs {
            watcher
                .watch(dir, notify::RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        }
        let weak: Weak<Inner> = Arc::downgrade(inner);
        let thread = std::thread::Builder::new()
            .name("writ-py-reload".to_owned())
            .spawn(move || {
                // Ends when the watcher (and so the sender) is dropped.
                while rx.recv().is_ok() {
                    loop {
                        match rx.recv_timeout(DEBOUNCE) {
                            Ok(()) => {}
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    let Some(inner) = weak.upgrade() else { return };
                    // The outcome is kept in `last_reload_error`.
                    let _ = inner.reload();
                }
            })
            .map_err(|e| format!("cannot start the watcher thread: {e}"))?;
        Ok(Watcher {
            watcher: Some(watcher),
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.watcher.take());
        if let Some(t) = self.thread.take() {
            // The engine can be dropped by the watcher thread itself (it
            // held the last reference for a reload): never join oneself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}
