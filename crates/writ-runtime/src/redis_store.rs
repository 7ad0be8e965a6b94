//! Limit counts in Redis (feature `redis`), so that several agent
//! processes share their limits.
//!
//! Each limit and agent (each limit alone, for a rule limit shared by all
//! agents) is a sorted set of the amounts allowed in its sliding window (score: the time in milliseconds). One Lua script checks
//! every limit a decision touches and takes them all or none, so the store
//! is exact under concurrency across processes, as [`crate::InProcess`] is
//! across threads. Keys expire with their window.
//!
//! When Redis cannot be reached (or answers too slowly: each call has a
//! timeout) the store answers [`Refusal::Unavailable`], and the runtime
//! denies by default ([`crate::OnStoreFailure`]).

use std::sync::Mutex;
use std::time::Duration;

use crate::limiter::{Acquire, LimitKind, LimitStore, Refusal};

/// Checks every item (KEYS[i], ARGV: now, nonce, peek flag, then per item
/// window_ms, count, amount); when all fit and this is not a peek, adds
/// them. Returns {0, 0} or {index (1-based), retry_ms}.
const SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local nonce = ARGV[2]
local peek = ARGV[3] == '1'
local function arg(i, k) return tonumber(ARGV[3 + (i - 1) * 3 + k]) end
local function amount_of(member) return tonumber(string.match(member, ':(%d+)$')) end
for i = 1, #KEYS do
  local window, count, amount = arg(i, 1), arg(i, 2), arg(i, 3)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local members = redis.call('ZRANGE', KEYS[i], 0, -1, 'WITHSCORES')
  local used = 0
  for j = 1, i - 1 do
    if KEYS[j] == KEYS[i] then used = used + arg(j, 3) end
  end
  for k = 1, #members, 2 do used = used + amount_of(members[k]) end
  if used + amount > count then
    if amount > count then return {i, window} end
    local remaining = used
    for k = 1, #members, 2 do
      remaining = remaining - amount_of(members[k])
      if remaining + amount <= count then
        return {i, tonumber(members[k + 1]) + window - now}
      end
    end
    return {i, window}
  end
end
if not peek then
  for i = 1, #KEYS do
    local window, amount = arg(i, 1), arg(i, 3)
    if amount > 0 then
      redis.call('ZADD', KEYS[i], now, now .. ':' .. nonce .. ':' .. i .. ':' .. amount)
      redis.call('PEXPIRE', KEYS[i], window)
    end
  end
end
return {0, 0}
";

/// Limit counts in a Redis server.
pub struct RedisStore {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    nonce: std::sync::atomic::AtomicU64,
    instance: u64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`), keys under `writ:limit:`.
    /// Nothing is connected yet: the first request that meets a limit
    /// connects (and a failed connection is retried on the next one).
    ///
    /// # Errors
    /// When the URL is malformed.
    pub fn open(url: &str) -> Result<RedisStore, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis URL `{url}`: {e}"))?;
        let instance = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            ^ u64::from(std::process::id()).rotate_left(32);
        Ok(RedisStore {
            client,
            connection: Mutex::new(None),
            script: redis::Script::new(SCRIPT),
            prefix: "writ:limit".to_owned(),
            timeout: Duration::from_millis(250),
            nonce: std::sync::atomic::AtomicU64::new(0),
            instance,
        })
    }

    /// Keys start with `prefix` (to share one Redis between policies).
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> RedisStore {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// How long a call may take before the store counts as unreachable.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> RedisStore {
        self.timeout = timeout;
        self
    }

    fn key(&self, item: &Acquire<'_>) -> String {
        let kind = match item.scope.kind() {
            LimitKind::Rule => "rule",
            LimitKind::RuleShared => "rule-shared",
            LimitKind::Agent => "agent",
        };
        // Length-prefixed, so that no name can run into the next part.
        format!(
            "{}:{kind}:{}:{}:{}:{}:{}",
            self.prefix,
            item.scope.name().len(),
            item.scope.name(),
            item.scope.sub().len(),
            item.scope.sub(),
            item.agent
        )
    }

    fn run(&self, items: &[Acquire<'_>], now_ms: i64, peek: bool) -> Result<(), Refusal> {
        let mut guard = match self.connection.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.is_none() {
            let con = self
                .client
                .get_connection_with_timeout(self.timeout)
                .map_err(|e| Refusal::Unavailable(format!("redis: {e}")))?;
            con.set_read_timeout(Some(self.timeout))
                .and_then(|()| con.set_write_timeout(Some(self.timeout)))
                .map_err(|e| Refusal::Unavailable(format!("redis: {e}")))?;
            *guard = Some(con);
        }
        let Some(con) = guard.as_mut() else {
            return Err(Refusal::Unavailable("redis: not connected".to_owned()));
        };
        let nonce = self
            .nonce
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut call = self.script.prepare_invoke();
        for item in items {
            call.key(self.key(item));
        }
        call.arg(now_ms)
            .arg(format!("{:x}-{nonce}", self.instance))
            .arg(if peek { "1" } else { "0" });
        for item in items {
            let window_ms = item.rate.seconds().saturating_mul(1000);
            call.arg(window_ms).arg(item.rate.count).arg(item.amount);
        }
        let answer: Result<(i64, i64), redis::RedisError> = call.invoke(con);
        match answer {
            Ok((0, _)) => Ok(()),
            Ok((index, retry_ms)) => Err(Refusal::Full {
                index: usize::try_from(index.saturating_sub(1)).unwrap_or(0),
                retry_after_s: u64::try_from(retry_ms.max(1))
                    .unwrap_or(1)
                    .div_ceil(1000)
                    .max(1),
            }),
            Err(e) => {
                // Reconnect next time.
                *guard = None;
                Err(Refusal::Unavailable(format!("redis: {e}")))
            }
        }
    }
}

impl LimitStore for RedisStore {
    fn peek(&self, item: &Acquire<'_>, now_ms: i64) -> Result<(), Refusal> {
        self.run(std::slice::from_ref(item), now_ms, true)
    }

    fn acquire(&self, items: &[Acquire<'_>], now_ms: i64) -> Result<(), Refusal> {
        if items.is_empty() {
            return Ok(());
        }
        self.run(items, now_ms, false)
    }
}
