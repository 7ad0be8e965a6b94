//! The agent registry: agents created over the admin API, with their tier
//! and tags, in SQLite (`DB_PATH`). Revoking an agent takes effect on its
//! next request: every request looks its agent up. Every admin change is
//! also written to the `admin_log` table (who changed what, when).
//!
//! Look-ups are cached in memory. The cache is emptied by every change
//! this process makes, and by every change another process makes to the
//! same database: each look-up first asks SQLite's `data_version`, which
//! moves when another connection commits. So a revocation made through
//! any `writ serve` sharing the file holds on the agent's next request.
//!
//! Asking `data_version` takes and drops SQLite's file locks (about 2 µs,
//! a tenth of a `/proxy/check`). So a look-up first reads the header of
//! the WAL index (the first 96 bytes of the `-shm` file: the two copies of
//! the header every commit rewrites, its change counter included, before
//! the commit is visible), and asks only when those bytes moved since it
//! last asked. When the file cannot be read, every look-up asks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

/// MeshGuard's other names for tiers, to writ's.
#[must_use]
pub fn tier_name(text: &str) -> Option<&'static str> {
    match text.trim().to_ascii_lowercase().as_str() {
        "untrusted" | "unverified" | "anonymous" | "sandboxed" => Some("untrusted"),
        "verified" | "basic" => Some("verified"),
        "trusted" => Some("trusted"),
        "privileged" => Some("privileged"),
        _ => None,
    }
}

/// A registered agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub tier: String,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub revoked: bool,
}

/// A registry failure (answered 500, and logged).
#[derive(Debug)]
pub struct RegistryError(pub String);

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RegistryError {}

impl From<rusqlite::Error> for RegistryError {
    fn from(e: rusqlite::Error) -> Self {
        RegistryError(format!("agent registry: {e}"))
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tier TEXT NOT NULL,
    tags TEXT NOT NULL,
    token_sha256 TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS agents_token ON agents (token_sha256);
CREATE TABLE IF NOT EXISTS admin_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    action TEXT NOT NULL,
    agent_id TEXT,
    detail TEXT NOT NULL
);
";

/// The most look-ups each cache holds; a full cache is emptied (tokens
/// that name no agent are cached too, and anyone can send those).
const CACHE_MAX: usize = 10_000;

/// The registry (one connection, held briefly per call).
#[derive(Debug)]
pub struct Registry {
    db: Mutex<Db>,
}

/// The bytes of the WAL index a commit rewrites: its header, twice.
const SHM_HEADER: usize = 96;

#[derive(Debug)]
struct Db {
    conn: Connection,
    /// `PRAGMA data_version` when the caches were filled.
    version: i64,
    /// The WAL index (`<db>-shm`), and its header when `version` was read.
    shm: Option<std::fs::File>,
    shm_seen: Option<[u8; SHM_HEADER]>,
    by_id: HashMap<String, Option<Agent>>,
    by_token: HashMap<String, Option<Agent>>,
}

impl Db {
    /// The WAL index's header now, when it can be read.
    fn shm_header(&self) -> Option<[u8; SHM_HEADER]> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt as _;
            let mut now = [0u8; SHM_HEADER];
            self.shm.as_ref()?.read_exact_at(&mut now, 0).ok()?;
            Some(now)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// Empties the caches when another connection has committed since
    /// they were filled: asks SQLite when the WAL index's header moved
    /// (read before asking, so a commit in between shows next time).
    fn check_version(&mut self) -> Result<(), RegistryError> {
        let header = self.shm_header();
        if header.is_some() && header == self.shm_seen {
            return Ok(());
        }
        self.shm_seen = header;
        let v: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if v != self.version {
            self.clear();
            self.version = v;
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.by_id.clear();
        self.by_token.clear();
    }
}

/// The cached look-up of `key`, or `query`'s answer (then cached).
fn cached(
    cache: &mut HashMap<String, Option<Agent>>,
    key: &str,
    query: impl FnOnce() -> Result<Option<Agent>, RegistryError>,
) -> Result<Option<Agent>, RegistryError> {
    if let Some(hit) = cache.get(key) {
        return Ok(hit.clone());
    }
    let found = query()?;
    if cache.len() >= CACHE_MAX {
        cache.clear();
    }
    cache.insert(key.to_owned(), found.clone());
    Ok(found)
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn row_to_agent(row: &rusqlite::Row<'_>) -> rusqlite::Result<Agent> {
    let tags: String = row.get(3)?;
    let revoked: Option<String> = row.get(6)?;
    Ok(Agent {
        id: row.get(0)?,
        name: row.get(1)?,
        tier: row.get(2)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        revoked: revoked.is_some(),
    })
}

const COLUMNS: &str = "id, name, tier, tags, created_at, updated_at, revoked_at";

impl Registry {
    /// Opens (creating) the registry at `path`.
    ///
    /// # Errors
    /// When the database cannot be opened or set up.
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        let db = Connection::open(path)
            .map_err(|e| RegistryError(format!("{}: {e}", path.display())))?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.execute_batch(SCHEMA)?;
        // Open while this connection is: SQLite keeps it.
        let shm = db
            .path()
            .filter(|p| !p.is_empty())
            .and_then(|p| std::fs::File::open(format!("{p}-shm")).ok());
        Ok(Registry {
            db: Mutex::new(Db {
                conn: db,
                version: i64::MIN,
                shm,
                shm_seen: None,
                by_id: HashMap::new(),
                by_token: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Db> {
        match self.db.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Runs `f` on the connection; what it may have changed empties the
    /// caches (this connection's own commits do not move `data_version`).
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut db = self.lock();
        let out = f(&db.conn);
        db.clear();
        out
    }

    /// Adds an agent; `token_sha256` when its token is opaque.
    ///
    /// # Errors
    /// A database failure.
    pub fn create(
        &self,
        name: &str,
        tier: &str,
        tags: &[String],
        token_sha256: Option<&str>,
    ) -> Result<Agent, RegistryError> {
        let id = format!("agent_{}", random_hex(12));
        let created = now();
        let tags_json = serde_json::to_string(tags).unwrap_or_else(|_| "[]".to_owned());
        self.with(|db| {
            db.execute(
                "INSERT INTO agents (id, name, tier, tags, token_sha256, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, name, tier, tags_json, token_sha256, created],
            )?;
            log(db, "create", Some(&id), &format!("name={name} tier={tier} tags={tags_json}"))?;
            Ok(())
        })?;
        Ok(Agent {
            id,
            name: name.to_owned(),
            tier: tier.to_owned(),
            tags: tags.to_vec(),
            created_at: created,
            updated_at: None,
            revoked: false,
        })
    }

    /// # Errors
    /// A database failure.
    pub fn get(&self, id: &str) -> Result<Option<Agent>, RegistryError> {
        let mut guard = self.lock();
        guard.check_version()?;
        let Db { conn, by_id, .. } = &mut *guard;
        cached(by_id, id, || {
            let mut st =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM agents WHERE id = ?1"))?;
            Ok(st.query_row(params![id], row_to_agent).optional()?)
        })
    }

    /// The agent an opaque token was issued to.
    ///
    /// # Errors
    /// A database failure.
    pub fn by_token(&self, token_sha256: &str) -> Result<Option<Agent>, RegistryError> {
        let mut guard = self.lock();
        guard.check_version()?;
        let Db { conn, by_token, .. } = &mut *guard;
        cached(by_token, token_sha256, || {
            let mut st = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM agents WHERE token_sha256 = ?1"
            ))?;
            Ok(st
                .query_row(params![token_sha256], row_to_agent)
                .optional()?)
        })
    }

    /// Every agent not revoked, oldest first.
    ///
    /// # Errors
    /// A database failure.
    pub fn list(&self) -> Result<Vec<Agent>, RegistryError> {
        let db = self.lock();
        let mut st = db.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM agents WHERE revoked_at IS NULL ORDER BY created_at, id"
        ))?;
        let rows = st.query_map([], row_to_agent)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Changes an agent's name, tier or tags; `None` when there is no such
    /// (live) agent.
    ///
    /// # Errors
    /// A database failure.
    pub fn update(
        &self,
        id: &str,
        name: Option<&str>,
        tier: Option<&str>,
        tags: Option<&[String]>,
    ) -> Result<Option<Agent>, RegistryError> {
        let Some(mut agent) = self.get(id)? else {
            return Ok(None);
        };
        if agent.revoked {
            return Ok(None);
        }
        if let Some(n) = name {
            n.clone_into(&mut agent.name);
        }
        if let Some(t) = tier {
            t.clone_into(&mut agent.tier);
        }
        if let Some(t) = tags {
            agent.tags = t.to_vec();
        }
        let updated = now();
        let tags_json = serde_json::to_string(&agent.tags).unwrap_or_else(|_| "[]".to_owned());
        self.with(|db| {
            db.execute(
                "UPDATE agents SET name = ?2, tier = ?3, tags = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, agent.name, agent.tier, tags_json, updated],
            )?;
            log(
                db,
                "update",
                Some(id),
                &format!("name={} tier={} tags={tags_json}", agent.name, agent.tier),
            )?;
            Ok(())
        })?;
        agent.updated_at = Some(updated);
        Ok(Some(agent))
    }

    /// Revokes an agent for good; false when there was no such agent.
    ///
    /// # Errors
    /// A database failure.
    pub fn revoke(&self, id: &str) -> Result<bool, RegistryError> {
        self.with(|db| {
            let n = db.execute(
                "UPDATE agents SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now()],
            )?;
            if n > 0 {
                log(db, "revoke", Some(id), "")?;
            }
            Ok(n > 0)
        })
    }
}

fn log(
    db: &Connection,
    action: &str,
    agent: Option<&str>,
    detail: &str,
) -> Result<(), RegistryError> {
    db.execute(
        "INSERT INTO admin_log (time, action, agent_id, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now(), action, agent, detail],
    )?;
    Ok(())
}

/// `n` random bytes as hex (from the OS's generator).
#[must_use]
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The OS generator failing is not recoverable for ids and tokens; a
    // time-derived fallback would be guessable, so the bytes stay zero
    // and the caller's uniqueness constraint refuses a repeat.
    let _ = getrandom::fill(&mut bytes);
    crate::policy::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of its own for a test, and a database path in it.
    fn fresh_db(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("writ-registry-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("r.db");
        (dir, path)
    }

    #[test]
    fn agents_are_created_listed_updated_and_revoked() {
        let (dir, path) = fresh_db("plain");
        let r = Registry::open(&path).unwrap_or_else(|e| unreachable!("{e}"));
        let a = r
            .create("support", "verified", &["prod".to_owned()], Some("abc"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let b = r
            .create("billing", "trusted", &[], None)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_ne!(a.id, b.id);
        assert_eq!(
            r.by_token("abc").ok().flatten().map(|x| x.id),
            Some(a.id.clone())
        );
        assert_eq!(r.list().map(|l| l.len()).ok(), Some(2));
        let u = r
            .update(&a.id, None, Some("privileged"), None)
            .ok()
            .flatten();
        assert_eq!(u.map(|x| x.tier), Some("privileged".to_owned()));
        assert_eq!(r.revoke(&a.id).ok(), Some(true));
        assert_eq!(r.revoke(&a.id).ok(), Some(false));
        assert!(r.get(&a.id).ok().flatten().is_some_and(|x| x.revoked));
        assert_eq!(r.list().map(|l| l.len()).ok(), Some(1));
        assert!(
            r.update(&a.id, Some("x"), None, None)
                .ok()
                .flatten()
                .is_none()
        );
        // Reopened, it remembers.
        drop(r);
        let r = Registry::open(&path).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(r.get(&a.id).ok().flatten().is_some_and(|x| x.revoked));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Look-ups are cached, yet a change shows on the next look-up:
    /// one made through the same registry, and one made by another
    /// process's registry on the same file (two connections here).
    #[test]
    fn cached_look_ups_see_every_change_at_once() {
        let (dir, path) = fresh_db("cache");
        let open = || Registry::open(&path).unwrap_or_else(|e| unreachable!("{e}"));
        let (here, there) = (open(), open());
        let a = here
            .create("support", "verified", &[], Some("tok"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let tier = |r: &Registry| r.get(&a.id).ok().flatten().map(|x| x.tier);
        let revoked = |r: &Registry| r.by_token("tok").ok().flatten().map(|x| x.revoked);
        // Both cache the agent.
        for r in [&here, &there] {
            assert_eq!(tier(r).as_deref(), Some("verified"));
            assert_eq!(revoked(r), Some(false));
            assert_eq!(tier(r).as_deref(), Some("verified"));
        }
        assert_eq!(here.lock().by_id.len(), 1, "the look-up is cached");
        // A change through one registry shows through both.
        let _ = here.update(&a.id, None, Some("trusted"), None);
        assert_eq!(tier(&here).as_deref(), Some("trusted"));
        assert_eq!(tier(&there).as_deref(), Some("trusted"));
        assert_eq!(there.revoke(&a.id).ok(), Some(true));
        assert_eq!(revoked(&there), Some(true));
        assert_eq!(revoked(&here), Some(true));
        // An unknown token is cached as unknown, and the cache is bounded.
        for i in 0..CACHE_MAX + 5 {
            assert_eq!(here.by_token(&format!("unknown-{i}")).ok(), Some(None));
        }
        assert!(here.lock().by_token.len() <= CACHE_MAX);
        // The WAL index's header is read, and SQLite asked only when it
        // moved; any writer moves it (here a bare connection).
        assert!(here.lock().shm.is_some(), "the -shm file is read");
        let b = here
            .create("billing", "trusted", &[], Some("tok-b"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let seen = |r: &Registry| r.by_token("tok-b").ok().flatten().map(|x| x.revoked);
        assert_eq!(seen(&here), Some(false));
        assert_eq!(seen(&here), Some(false));
        let header = here.lock().shm_seen;
        assert!(header.is_some());
        let bare = Connection::open(&path).unwrap_or_else(|e| unreachable!("{e}"));
        let _ = bare.execute(
            "UPDATE agents SET revoked_at = 'now' WHERE id = ?1",
            params![b.id],
        );
        assert_eq!(seen(&here), Some(true));
        assert_ne!(here.lock().shm_seen, header);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tier_names_of_other_tools_map_to_writs() {
        assert_eq!(tier_name("Unverified"), Some("untrusted"));
        assert_eq!(tier_name("trusted"), Some("trusted"));
        assert_eq!(tier_name("root"), None);
    }
}
