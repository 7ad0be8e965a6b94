//! A runtime that can be replaced while it serves (feature `reload`).
//!
//! [`Engine`] holds the current [`Runtime`] behind an atomic pointer
//! (`arc-swap`): a decision runs entirely on the bundle that was current
//! when it started, and a new bundle becomes current in one store, so no
//! request is ever answered by a half-loaded policy. A bundle that fails to
//! load (bad checksum, bad signature, a file caught mid-write) never
//! replaces the current one: the engine keeps the last good bundle and
//! says why. Every runtime the engine installs counts limits in the
//! engine's one store, so limits carry over a reload.
//!
//! [`Engine::watch`] reloads a bundle file when it changes, after the file
//! has been quiet for a debounce interval.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::error::{IoError, LoadError};
use crate::request::Request;
use crate::{Decision, LimitStore, OnStoreFailure, Runtime};

/// The current bundle, replaceable while requests are being decided.
/// `Send + Sync`: share it behind an `Arc`.
pub struct Engine {
    current: ArcSwap<Runtime>,
    store: Arc<dyn LimitStore>,
    on_failure: OnStoreFailure,
    public_key: Option<[u8; 32]>,
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("revision", &self.current.load().header().revision)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine serving `runtime`. Limits are counted in the runtime's
    /// store (set one with [`Runtime::with_limit_store`] first to share
    /// counts with other processes), and every bundle installed later
    /// counts in the same store.
    #[must_use]
    pub fn new(runtime: Runtime) -> Engine {
        let store = runtime.limit_store();
        let on_failure = runtime.on_store_failure();
        Engine {
            current: ArcSwap::from_pointee(runtime),
            store,
            on_failure,
            public_key: None,
            last_error: Mutex::new(None),
        }
    }

    /// An engine serving the bundle at `path`; with `public_key`, this and
    /// every later bundle must carry a valid signature by it.
    ///
    /// # Errors
    /// When the file cannot be read or the bundle does not load.
    pub fn load(path: impl AsRef<Path>, public_key: Option<[u8; 32]>) -> Result<Engine, LoadError> {
        let runtime = read(path.as_ref(), public_key.as_ref())?;
        Ok(Engine::new(runtime).with_public_key(public_key))
    }

    /// Requires every bundle installed by [`Engine::reload`] to be signed
    /// by `public_key`.
    #[must_use]
    pub fn with_public_key(mut self, public_key: Option<[u8; 32]>) -> Engine {
        self.public_key = public_key;
        self
    }

    /// Decides `req` on the current bundle and hands the decision to `f`
    /// (the decision borrows the bundle, which stays alive for the call
    /// even if a reload replaces it meanwhile).
    pub fn decide<R>(&self, req: &Request, f: impl FnOnce(&Decision<'_>) -> R) -> R {
        let runtime = self.current.load();
        let decision = runtime.check(req);
        f(&decision)
    }

    /// The current bundle.
    #[must_use]
    pub fn runtime(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    /// Makes `runtime` current (counting limits in the engine's store).
    pub fn replace(&self, runtime: Runtime) {
        let runtime = runtime.with_limit_store(Arc::clone(&self.store), self.on_failure);
        self.current.store(Arc::new(runtime));
    }

    /// Loads the bundle at `path` and makes it current. On failure the
    /// current bundle stays, and [`Engine::last_error`] says why.
    ///
    /// # Errors
    /// Why the new bundle was refused.
    pub fn reload(&self, path: impl AsRef<Path>) -> Result<(), LoadError> {
        let path = path.as_ref();
        match read(path, self.public_key.as_ref()) {
            Ok(runtime) => {
                self.replace(runtime);
                self.set_error(None);
                Ok(())
            }
            Err(e) => {
                self.set_error(Some(format!(
                    "{}: {e}; still serving the last good bundle",
                    path.display()
                )));
                Err(e)
            }
        }
    }

    /// Why the last reload was refused, if it was (cleared by a good one).
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        match self.last_error.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_error(&self, e: Option<String>) {
        match self.last_error.lock() {
            Ok(mut g) => *g = e,
            Err(p) => *p.into_inner() = e,
        }
    }

    /// Reloads `path` whenever it changes, once it has been quiet for
    /// `debounce` (writers that truncate then write, or write a temporary
    /// file and rename it over, both end in one reload). `on_reload` hears
    /// every attempt's outcome. Watching stops when the [`Watcher`] is
    /// dropped.
    ///
    /// # Errors
    /// When the file's directory cannot be watched.
    pub fn watch(
        self: &Arc<Self>,
        path: impl AsRef<Path>,
        debounce: Duration,
        on_reload: impl Fn(&Result<(), LoadError>) + Send + 'static,
    ) -> Result<Watcher, WatchError> {
        use notify::Watcher as _;
        let path = path.as_ref().to_path_buf();
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."))
            .to_path_buf();
        let name = path.file_name().map(std::ffi::OsStr::to_os_string);
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                if event
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(std::ffi::OsStr::to_os_string) == name)
                {
                    let _ = tx.send(());
                }
            })
            .map_err(|e| WatchError::Watch {
                dir: dir.clone(),
                error: e,
            })?;
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| WatchError::Watch {
                dir: dir.clone(),
                error: e,
            })?;
        let engine = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("writ-reload".to_owned())
            .spawn(move || {
                // Ends when the watcher (and so the sender) is dropped.
                while rx.recv().is_ok() {
                    // Wait until the file has been quiet for `debounce`.
                    loop {
                        match rx.recv_timeout(debounce) {
                            Ok(()) => {}
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    on_reload(&engine.reload(&path));
                }
            })
            .map_err(WatchError::Thread)?;
        Ok(Watcher {
            watcher: Some(watcher),
            thread: Some(thread),
        })
    }
}

/// Why a file could not be watched.
#[derive(Debug)]
pub enum WatchError {
    /// The file's directory could not be watched.
    Watch { dir: PathBuf, error: notify::Error },
    /// The reload thread could not be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::Watch { dir, error } => {
                write!(
                    f,
                    "cannot watch the bundle's directory {}: {error}",
                    dir.display()
                )
            }
            WatchError::Thread(e) => write!(f, "cannot start the reload thread: {e}"),
        }
    }
}

impl std::error::Error for WatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WatchError::Watch { error, .. } => Some(error),
            WatchError::Thread(e) => Some(e),
        }
    }
}

/// Watches a bundle file for an [`Engine`]; dropping it stops watching
/// (and waits for a reload in progress to finish).
pub struct Watcher {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropping the watcher drops the event sender: the thread ends.
        drop(self.watcher.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read(path: &Path, public_key: Option<&[u8; 32]>) -> Result<Runtime, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io(IoError::new(path, e)))?;
    match public_key {
        Some(key) => Runtime::from_bytes_verified(&bytes, key),
        None => Runtime::from_vec(bytes),
    }
}
