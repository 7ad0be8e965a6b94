//! Limit counts in Redis (feature `redis`), so that several agent
//! processes share their limits.
//!
//! Each limit and agent (each limit alone, for a rule limit shared by all
//! agents) is a sorted set holding one entry per amount allowed in its
//! sliding window (score: the time in milliseconds; member: the time, a
//! nonce and the amount), beside a string key holding the sum of those
//! amounts and one holding the latest time an amount was taken at. One
//! Lua script checks every limit a decision touches and takes
//! them all or none, so the store is exact under concurrency across
//! processes, as [`crate::InProcess`] is across threads. Keys expire with
//! their window.
//!
//! The window is the in-process store's ([`crate::limiter::Window`]): an
//! entry stamped `t` counts at every time in `[t, t + window)`, and has
//! aged out at `now` once `t + window <= now` (scores `<= now - window`,
//! inclusive). A limit of N allows at most N in any such window, and a
//! refusal's `retry_after` is exact: the time until enough of the oldest
//! entries age out for the amount to fit (the whole window when the amount
//! is more than the limit, and never fits), rounded up to whole seconds.
//! The same limit twice in one decision counts both amounts, as in
//! process.
//!
//! As in process, a look changes nothing: a peek, and the check of every
//! amount a call takes, skip aged entries instead of dropping them. They
//! are dropped only from the windows an amount is added to, once every
//! amount of the call fits (a call that does not fit changes nothing).
//! An amount of 0 changes nothing. And time never runs backwards within a window: every call
//! counts at `now` or the latest time an amount was taken at in that
//! window, whichever is later (kept in its own key, beside the set, even
//! when that amount's entry has been dropped), and new entries are
//! stamped with that time, so a request dated before others already
//! counted (a batch replayed with earlier times, another process's
//! clock) is counted as if it came with the latest of them. The three
//! keys expire when the newest entry ages out.
//!
//! A call's cost does not grow with the limit: the sum is kept up to date
//! (entries that age out are read once, as they are dropped, to subtract
//! their amounts: amortised, one read per entry ever added), so a call
//! that fits is a few O(log N) commands, plus a read of the aged entries
//! not yet dropped (none for a count of requests). A refusal looks only at
//! the oldest entries still in the window: for a count of requests (every
//! amount 1, seen when the sum equals the number of entries) the one
//! entry that must age out is read by its rank, in O(log N); for a token
//! budget the oldest entries are read until enough would age out, which
//! for a limit that is not over its count (the count lowered by a reload)
//! is no more entries than the amount asked for. A sum that is missing or
//! does not match its set (a set written before sums were kept, or a key
//! evicted) is recomputed once from the set.
//!
//! When Redis cannot be reached (or answers too slowly: each call has a
//! timeout) the store answers [`Refusal::Unavailable`], and the runtime
//! denies by default ([`crate::OnStoreFailure`]).

use std::sync::Mutex;
use std::time::Duration;

use crate::limiter::{Acquire, LimitKind, LimitStore, Refusal};

/// Checks every item i (KEYS[3i - 2]: its sorted set, KEYS[3i - 1]: the
/// sum of its amounts, KEYS[3i]: the latest time an amount was taken at;
/// ARGV: now, nonce, peek flag, then per item window_ms, count, amount);
/// when all fit and this is not a peek, adds them. Returns {0, 0} or
/// {index (1-based), retry_ms}.
const SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local nonce = ARGV[2]
local peek = ARGV[3] == '1'
local items = #KEYS / 3
local function raw(i, k) return ARGV[3 + (i - 1) * 3 + k] end
local function arg(i, k) return tonumber(raw(i, k)) end
local function amount_of(member) return tonumber(string.match(member, ':(%d+)$')) end
local function int(x) return string.format('%d', x) end

-- Time never runs backwards within a window: now, or the latest time an
-- amount was taken at (kept in l when its entries have aged out).
local function clamp(l)
  local latest = tonumber(redis.call('GET', l))
  if latest and latest > now then return latest end
  return now
end

-- The sum of the amounts in z (kept in t) and the number of entries. A
-- sum that is missing or cannot be (every amount is at least 1: the set
-- predates sums, or a key was lost) is summed again, once, here.
local function sum(z, t)
  local total = tonumber(redis.call('GET', t))
  local card = redis.call('ZCARD', z)
  if card == 0 then
    if total then redis.call('DEL', t) end
    return 0, 0
  end
  if not total or total < card then
    total = 0
    local all = redis.call('ZRANGE', z, 0, -1)
    for k = 1, #all do total = total + amount_of(all[k]) end
    redis.call('SET', t, int(total))
    local ttl = redis.call('PTTL', z)
    if ttl > 0 then redis.call('PEXPIRE', t, ttl) end
  end
  return total, card
end

-- Drops the entries of z that have aged out (scores <= cutoff) and
-- subtracts them from the sum in t.
local function trim(z, t, cutoff)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', int(cutoff))
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', z, '-inf', int(cutoff))
    if tonumber(redis.call('GET', t)) then
      local s = 0
      for k = 1, #gone do s = s + amount_of(gone[k]) end
      redis.call('DECRBY', t, int(s))
    end
  end
  sum(z, t)
end

-- Whether `amount` more fits in z at `at` (0), else how long until it
-- would. Changes nothing (but a lost sum): entries that have aged out
-- (scores <= at - window) are skipped, not dropped.
local function fits(z, t, window, count, amount, at)
  local total, card = sum(z, t)
  local cutoff = int(at - window)
  local aged = redis.call('ZCOUNT', z, '-inf', cutoff)
  local used = total
  if aged > 0 then
    if total == card then
      -- Every amount is 1.
      used = total - aged
    else
      local gone = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
      for k = 1, #gone do used = used - amount_of(gone[k]) end
    end
  end
  if used + amount <= count then return 0 end
  if amount > count then return window end
  local need = used + amount - count
  if total == card then
    -- Every amount is 1: the need-th oldest entry that has not aged out.
    local r = int(aged + need - 1)
    local e = redis.call('ZRANGE', z, r, r, 'WITHSCORES')
    if #e == 0 then return window end
    return math.max(tonumber(e[2]) + window - at, 1)
  end
  local from, batch = aged, 16
  while true do
    local e = redis.call('ZRANGE', z, int(from), int(from + batch - 1), 'WITHSCORES')
    if #e == 0 then return window end
    for k = 1, #e, 2 do
      need = need - amount_of(e[k])
      if need <= 0 then return math.max(tonumber(e[k + 1]) + window - at, 1) end
    end
    from = from + batch
    if batch < 1024 then batch = batch * 2 end
  end
end

-- Every amount is checked first, changing nothing; what has aged out is
-- dropped only from windows an amount is then added to.
for i = 1, items do
  local z, t, l = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local window, count, amount = arg(i, 1), arg(i, 2), arg(i, 3)
  local at = clamp(l)
  -- The same limit earlier in this call: its amounts count too.
  for j = 1, i - 1 do
    if KEYS[3 * j - 2] == z then amount = amount + arg(j, 3) end
  end
  local w = fits(z, t, window, count, amount, at)
  if w > 0 then return {i, w} end
end
if not peek then
  for i = 1, items do
    local z, t, l = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
    local window = arg(i, 1)
    if arg(i, 3) > 0 then
      local at = clamp(l)
      trim(z, t, at - window)
      redis.call('ZADD', z, int(at), int(at) .. ':' .. nonce .. ':' .. i .. ':' .. raw(i, 3))
      redis.call('INCRBY', t, raw(i, 3))
      redis.call('SET', l, int(at))
      -- Kept until the entry ages out (later than now's window when
      -- the entry was taken at a later time).
      local ttl = int(window + at - now)
      redis.call('PEXPIRE', z, ttl)
      redis.call('PEXPIRE', t, ttl)
      redis.call('PEXPIRE', l, ttl)
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

/// A Redis URL the client cannot use.
#[derive(Debug)]
pub struct RedisUrlError {
    pub url: String,
    pub source: redis::RedisError,
}

impl std::fmt::Display for RedisUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis URL `{}`: {}", self.url, self.source)
    }
}

impl std::error::Error for RedisUrlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`), keys under `writ:limit:`.
    /// Nothing is connected yet: the first request that meets a limit
    /// connects (and a failed connection is retried on the next one).
    ///
    /// # Errors
    /// When the URL is malformed.
    pub fn open(url: &str) -> Result<RedisStore, RedisUrlError> {
        let client = redis::Client::open(url).map_err(|source| RedisUrlError {
            url: url.to_owned(),
            source,
        })?;
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

    /// The item's sorted set, the key holding the sum of its amounts, and
    /// the key holding the latest time an amount was taken at.
    fn keys(&self, item: &Acquire<'_>) -> [String; 3] {
        let kind = match item.scope.kind() {
            LimitKind::Rule => "rule",
            LimitKind::RuleShared => "rule-shared",
            LimitKind::Agent => "agent",
        };
        // Length-prefixed, so that no name can run into the next part.
        let rest = format!(
            "{}:{}:{}:{}:{}",
            item.scope.name().len(),
            item.scope.name(),
            item.scope.sub().len(),
            item.scope.sub(),
            item.agent
        );
        // The set's third part is a length (digits), the sum's `sum`, the
        // latest time's `latest`: no limit's set is another's sum or
        // latest time, whatever the agent's name.
        [
            format!("{}:{kind}:{rest}", self.prefix),
            format!("{}:{kind}:sum:{rest}", self.prefix),
            format!("{}:{kind}:latest:{rest}", self.prefix),
        ]
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
            for key in self.keys(item) {
                call.key(key);
            }
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
