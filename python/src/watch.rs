//! `watch=True`: reload when a policy file changes, once the files have
//! been quiet for a moment (an editor's save, a deploy that writes in
//! place or renames a new file over the old one: one reload). Works for
//! bundles and sources alike: the engine reloads its whole spec, and a bad
//! new policy keeps the old one.
//!
//! The files are polled (their size, modification time and inode, and
//! their content while the modification time is recent, for file systems
//! with coarse timestamps) rather than watched through the OS: a poll of a
//! few files every 100 ms costs nothing measurable, needs no dependency
//! (a file-watching crate would change the features of crates the `writ`
//! library shares, and so rebuild it for the wheel), and sees a file
//! replaced by a rename like any other change.

use std::hash::{Hash as _, Hasher as _};
use std::path::PathBuf;
use std::sync::{Arc, Weak, mpsc};
use std::time::{Duration, Instant, SystemTime};

use crate::Inner;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_millis(100);
/// How long the files must be quiet before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(150);
/// Files modified less than this long ago are also compared by content.
const RECENT: Duration = Duration::from_secs(3);

/// Watches an engine's files; dropping it stops the thread.
#[derive(Debug)]
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What is known of one file: `None` when it cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    /// A hash of the content, taken while the file is recent.
    content: Option<u64>,
}

fn look(path: &PathBuf) -> Option<Seen> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok();
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    let recent = modified
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_none_or(|age| age < RECENT);
    let content = if recent {
        std::fs::read(path).ok().map(|bytes| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            h.finish()
        })
    } else {
        None
    };
    Some(Seen {
        len: meta.len(),
        modified,
        inode,
        content,
    })
}

/// Equal unless something changed; a content hash counts only when both
/// sides have one (a file that stopped being recent did not change).
fn same(a: Option<Seen>, b: Option<Seen>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.len == b.len
                && a.modified == b.modified
                && a.inode == b.inode
                && match (a.content, b.content) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                }
        }
        _ => false,
    }
}

/// The state of some files, taken before they are loaded so that a change
/// made while loading is seen.
#[derive(Debug)]
pub struct Snapshot(Vec<Option<Seen>>);

impl Snapshot {
    #[must_use]
    pub fn take(paths: &[PathBuf]) -> Snapshot {
        Snapshot(paths.iter().map(look).collect())
    }
}

impl Watcher {
    /// Starts watching every file of `inner`'s spec, from `before`.
    ///
    /// # Errors
    /// When the thread cannot start.
    pub fn start(inner: &Arc<Inner>, before: Snapshot) -> Result<Watcher, String> {
        let paths = inner.spec.paths.clone();
        let weak: Weak<Inner> = Arc::downgrade(inner);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("writ-py-watch".to_owned())
            .spawn(move || {
                let mut seen: Vec<Option<Seen>> = before.0;
                let mut changed_at: Option<Instant> = None;
                // Ends when the Watcher is dropped (the sender goes).
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL) {
                    let now: Vec<Option<Seen>> = paths.iter().map(look).collect();
                    if now.iter().zip(&seen).any(|(a, b)| !same(*a, *b)) {
                        changed_at = Some(Instant::now());
                    }
                    seen = now;
                    if changed_at.is_some_and(|t| t.elapsed() >= DEBOUNCE) {
                        changed_at = None;
                        let Some(inner) = weak.upgrade() else { return };
                        // The outcome is kept in `last_reload_error`.
                        let _ = inner.reload();
                    }
                }
            })
            .map_err(|e| format!("cannot start the watcher thread: {e}"))?;
        Ok(Watcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            // The engine can be dropped by the watcher thread itself (it
            // held the last reference for a reload): never join oneself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}
