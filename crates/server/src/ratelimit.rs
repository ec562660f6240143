//! Per-identity rate limits: one token bucket per (identity, category), refilled continuously at the
//! category's per-minute rate, with the per-minute limit as burst capacity. In memory on this node.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Read,
    Write,
    Delete,
    List,
    BatchRead,
    BatchMetadata,
    AuditQuery,
    AuditExport,
    Policy,
    PolicyTest,
    IdentityRead,
    Whoami,
    Admin,
}

impl Category {
    pub const ALL: [Category; 13] = [
        Category::Read,
        Category::Write,
        Category::Delete,
        Category::List,
        Category::BatchRead,
        Category::BatchMetadata,
        Category::AuditQuery,
        Category::AuditExport,
        Category::Policy,
        Category::PolicyTest,
        Category::IdentityRead,
        Category::Whoami,
        Category::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Read => "read",
            Category::Write => "write",
            Category::Delete => "delete",
            Category::List => "list",
            Category::BatchRead => "batch_read",
            Category::BatchMetadata => "batch_metadata",
            Category::AuditQuery => "audit_query",
            Category::AuditExport => "audit_export",
            Category::Policy => "policy",
            Category::PolicyTest => "policy_test",
            Category::IdentityRead => "identity_read",
            Category::Whoami => "whoami",
            Category::Admin => "admin",
        }
    }

    /// The documented per-minute defaults of the managed service.
    pub fn default_per_minute(self) -> u32 {
        match self {
            Category::Read => 1000,
            Category::Write
            | Category::Delete
            | Category::List
            | Category::BatchRead
            | Category::BatchMetadata => 100,
            Category::AuditQuery | Category::Policy => 50,
            Category::AuditExport => 5,
            Category::PolicyTest => 200,
            Category::IdentityRead => 100,
            Category::Whoami => 300,
            Category::Admin => 100,
        }
    }

    /// Which bucket a request draws from.
    pub fn of(method: &axum::http::Method, path: &str) -> Category {
        use axum::http::Method;
        let p = path.trim_start_matches("/v1/");
        if p.starts_with("auth/whoami") || p.starts_with("auth/introspect") {
            return Category::Whoami;
        }
        // Creating an export is the expensive call; listing and polling jobs are queries.
        if p == "audit/export" || p.starts_with("audit/export/") {
            return Category::AuditExport;
        }
        if p.starts_with("audit/") {
            return Category::AuditQuery;
        }
        if p == "policies/test" {
            return Category::PolicyTest;
        }
        if p.starts_with("policies") {
            return Category::Policy;
        }
        if p.starts_with("identity/") {
            return Category::IdentityRead;
        }
        if p == "secrets/batch" {
            return Category::BatchRead;
        }
        if p == "secrets/batch/metadata" {
            return Category::BatchMetadata;
        }
        if p == "secrets"
            || p.ends_with("/metadata") && *method == Method::GET
            || p.ends_with("/versions")
        {
            return Category::List;
        }
        if p.starts_with("secrets/") {
            return match *method {
                Method::GET | Method::HEAD => Category::Read,
                Method::DELETE => Category::Delete,
                _ => Category::Write,
            };
        }
        Category::Admin
    }
}

/// Limits per category, from defaults plus `SCAIVAULT_RATE_LIMITS` overrides ("read=5000,write=500";
/// `0` disables a category's limit).
#[derive(Debug, Clone)]
pub struct Limits(HashMap<Category, u32>);

impl Limits {
    pub fn parse(spec: Option<&str>) -> Result<Limits, String> {
        let mut m: HashMap<Category, u32> = Category::ALL
            .iter()
            .map(|c| (*c, c.default_per_minute()))
            .collect();
        for part in spec
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}' is not category=limit"))?;
            let n: u32 = v
                .trim()
                .parse()
                .map_err(|_| format!("'{v}' is not a per-minute number"))?;
            if k.trim() == "all" {
                m.values_mut().for_each(|x| *x = n);
                continue;
            }
            let c = Category::ALL
                .iter()
                .find(|c| c.name() == k.trim())
                .ok_or_else(|| format!("unknown rate-limit category '{k}'"))?;
            m.insert(*c, n);
        }
        Ok(Limits(m))
    }

    pub fn get(&self, c: Category) -> u32 {
        self.0
            .get(&c)
            .copied()
            .unwrap_or_else(|| c.default_per_minute())
    }
}

/// Highest per-minute limit a tenant override may set (0 still means unlimited).
pub const MAX_PER_MINUTE: u64 = 10_000_000;

/// A tenant's overrides of the node-wide limits, as stored on the tenant: `{"read": 5000, "write": 0}`.
/// Only the categories named are overridden; `0` lifts that category's limit for the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantLimits(HashMap<Category, u32>);

impl TenantLimits {
    pub fn from_json(v: &serde_json::Value) -> Result<TenantLimits, String> {
        let obj = v
            .as_object()
            .ok_or("must be an object of category: per-minute limit")?;
        let mut m = HashMap::new();
        for (k, v) in obj {
            let c = Category::ALL
                .iter()
                .find(|c| c.name() == k)
                .ok_or_else(|| format!("unknown rate-limit category '{k}'"))?;
            let n = v
                .as_u64()
                .filter(|n| *n <= MAX_PER_MINUTE)
                .ok_or_else(|| format!("'{k}' must be an integer from 0 to {MAX_PER_MINUTE}"))?;
            m.insert(
                *c,
                u32::try_from(n).map_err(|_| format!("'{k}' is too large"))?,
            );
        }
        Ok(TenantLimits(m))
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut pairs: Vec<_> = self.0.iter().map(|(c, n)| (c.name(), *n)).collect();
        pairs.sort_unstable();
        serde_json::Value::Object(
            pairs
                .into_iter()
                .map(|(k, n)| (k.to_owned(), serde_json::Value::from(n)))
                .collect(),
        )
    }

    pub fn get(&self, c: Category) -> Option<u32> {
        self.0.get(&c).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// What a take left behind, for the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix time at which the bucket is full again.
    pub reset_unix: u64,
    /// Seconds until one token is available (when refused).
    pub retry_after: u64,
}

const SHARDS: usize = 16;

pub struct RateLimiter {
    limits: Limits,
    shards: Vec<Mutex<HashMap<(String, Category), Bucket>>>,
    shared: Option<SharedBuckets>,
}

fn shard_of(key: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0)
}

impl RateLimiter {
    pub fn new(limits: Limits) -> RateLimiter {
        RateLimiter {
            limits,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            shared: None,
        }
    }

    /// Keeps the buckets in Redis (`REDIS_URL`), so every node sharing it enforces one budget.
    pub fn with_redis(mut self, url: &str, prefix: &str) -> Result<RateLimiter, String> {
        let client = redis::Client::open(url).map_err(|e| format!("REDIS_URL: {e}"))?;
        self.shared = Some(SharedBuckets {
            client,
            prefix: prefix.to_owned(),
            conn: tokio::sync::Mutex::new(None),
            down_until: Mutex::new(None),
            script: redis::Script::new(TAKE_LUA),
        });
        Ok(self)
    }

    /// [`RateLimiter::take`], from the shared buckets when Redis is configured. If Redis cannot be
    /// reached the local buckets decide (rate limiting never fails closed) and it is retried after
    /// [`REDIS_RETRY`].
    ///
    /// `tenant` overrides the node-wide limit of the category when it names it.
    pub async fn take_shared(
        &self,
        who: &str,
        c: Category,
        n: u32,
        force: bool,
        tenant: Option<&TenantLimits>,
    ) -> Decision {
        let limit = self.limit_of(c, tenant);
        if let (Some(shared), true) = (&self.shared, limit > 0) {
            match shared.take(who, c, limit, n, force).await {
                Ok(d) => return d,
                Err(e) => shared.failed(&e),
            }
        }
        self.take_limited(who, c, n, force, limit)
    }

    fn limit_of(&self, c: Category, tenant: Option<&TenantLimits>) -> u32 {
        tenant
            .and_then(|t| t.get(c))
            .unwrap_or_else(|| self.limits.get(c))
    }

    /// Takes `n` tokens from this node's bucket under the node's limits. With `force`, takes them even
    /// into debt (work already done, e.g. the N reads of a batch), so the next requests wait.
    pub fn take(&self, who: &str, c: Category, n: u32, force: bool) -> Decision {
        self.take_limited(who, c, n, force, self.limits.get(c))
    }

    /// [`RateLimiter::take`] from a bucket of `limit` per minute.
    fn take_limited(&self, who: &str, c: Category, n: u32, force: bool, limit: u32) -> Decision {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        if limit == 0 {
            return Decision {
                allowed: true,
                limit: 0,
                remaining: 0,
                reset_unix: now_unix,
                retry_after: 0,
            };
        }
        let cap = f64::from(limit);
        let rate = cap / 60.0;
        let mut shard = self.shards[shard_of(who)].lock();
        if shard.len() > 200_000 {
            // Idle buckets are full buckets: dropping them loses nothing.
            shard.retain(|_, b| b.last.elapsed() < Duration::from_secs(120));
        }
        let b = shard.entry((who.to_owned(), c)).or_insert(Bucket {
            tokens: cap,
            last: Instant::now(),
        });
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(cap);
        b.last = now;
        let want = f64::from(n);
        let allowed = b.tokens >= want;
        if allowed || force {
            b.tokens -= want;
        }
        let remaining = if b.tokens <= 0.0 {
            0
        } else {
            b.tokens.floor() as u32
        };
        let to_full = ((cap - b.tokens) / rate).ceil().max(0.0) as u64;
        let retry_after = if allowed {
            0
        } else {
            ((want - b.tokens) / rate).ceil().max(1.0) as u64
        };
        Decision {
            allowed,
            limit,
            remaining,
            reset_unix: now_unix + to_full,
            retry_after,
        }
    }
}

/// How long the local buckets stand in after Redis failed.
pub const REDIS_RETRY: Duration = Duration::from_secs(5);
/// Longest wait for Redis per request before the local buckets decide.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// One atomic take from a token bucket kept as a Redis hash, refilled by Redis's own clock (so node
/// clocks do not matter). Returns {allowed, tokens left, now}.
const TAKE_LUA: &str = r"
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local force = ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= want then allowed = 1 end
if allowed == 1 or force then tokens = tokens - want end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 60)
return {allowed, tostring(tokens), tostring(math.floor(now))}
";

struct SharedBuckets {
    client: redis::Client,
    prefix: String,
    conn: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
    down_until: Mutex<Option<Instant>>,
    script: redis::Script,
}

impl SharedBuckets {
    fn failed(&self, e: &str) {
        let mut d = self.down_until.lock();
        if d.is_none_or(|t| t <= Instant::now()) {
            tracing::warn!(site = "RL0001", error = %e, "Redis rate-limit buckets unavailable; using this node's buckets for {} s", REDIS_RETRY.as_secs());
        }
        *d = Some(Instant::now() + REDIS_RETRY);
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, String> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT)
            .set_number_of_retries(1);
        let c = tokio::time::timeout(
            REDIS_TIMEOUT * 4,
            self.client.get_connection_manager_with_config(cfg),
        )
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        *guard = Some(c.clone());
        Ok(c)
    }

    async fn take(
        &self,
        who: &str,
        c: Category,
        limit: u32,
        n: u32,
        force: bool,
    ) -> Result<Decision, String> {
        if self.down_until.lock().is_some_and(|t| t > Instant::now()) {
            return Err("marked down".into());
        }
        let mut conn = self.connection().await?;
        let cap = f64::from(limit);
        let rate = cap / 60.0;
        let key = format!(
            "{}rl:{}:{}",
            self.prefix,
            who.replace('\u{0}', ":"),
            c.name()
        );
        let mut inv = self.script.key(key);
        inv.arg(limit)
            .arg(rate)
            .arg(n)
            .arg(if force { "1" } else { "0" });
        let (allowed, tokens, now): (i64, String, i64) =
            tokio::time::timeout(REDIS_TIMEOUT, inv.invoke_async(&mut conn))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?;
        let tokens: f64 = tokens.parse().map_err(|_| "bad script answer".to_owned())?;
        let allowed = allowed == 1;
        let want = f64::from(n);
        let remaining = if tokens <= 0.0 {
            0
        } else {
            tokens.floor() as u32
        };
        let to_full = ((cap - tokens) / rate).ceil().max(0.0) as u64;
        let retry_after = if allowed {
            0
        } else {
            ((want - tokens) / rate).ceil().max(1.0) as u64
        };
        Ok(Decision {
            allowed,
            limit,
            remaining,
            reset_unix: u64::try_from(now).unwrap_or(0) + to_full,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn categories() {
        assert_eq!(
            Category::of(&Method::GET, "/v1/secrets/a/b"),
            Category::Read
        );
        assert_eq!(Category::of(&Method::GET, "/v1/secrets"), Category::List);
        assert_eq!(
            Category::of(&Method::GET, "/v1/secrets/a/metadata"),
            Category::List
        );
        assert_eq!(
            Category::of(&Method::PATCH, "/v1/secrets/a/metadata"),
            Category::Write
        );
        assert_eq!(
            Category::of(&Method::POST, "/v1/secrets/batch"),
            Category::BatchRead
        );
        assert_eq!(
            Category::of(&Method::DELETE, "/v1/secrets/a"),
            Category::Delete
        );
        assert_eq!(
            Category::of(&Method::GET, "/v1/audit/logs"),
            Category::AuditQuery
        );
        assert_eq!(
            Category::of(&Method::POST, "/v1/audit/export"),
            Category::AuditExport
        );
        assert_eq!(
            Category::of(&Method::GET, "/v1/audit/exports/exp_1"),
            Category::AuditQuery
        );
        assert_eq!(
            Category::of(&Method::GET, "/v1/auth/whoami"),
            Category::Whoami
        );
    }

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let rl = RateLimiter::new(Limits::parse(Some("write=3")).unwrap());
        let take = |who: &str, n: u32, force: bool| rl.take(who, Category::Write, n, force);
        for i in 0..3 {
            let d = take("a", 1, false);
            assert!(d.allowed, "{i}");
            assert_eq!(d.remaining, 2 - i);
        }
        let d = take("a", 1, false);
        assert!(!d.allowed && d.retry_after >= 1);
        assert!(take("b", 1, false).allowed, "buckets are per identity");
        let d = take("c", 10, true);
        assert!(!d.allowed && d.remaining == 0);
        assert!(
            !take("c", 1, false).allowed,
            "forced debt blocks the next request"
        );
    }

    #[test]
    fn tenant_overrides() {
        let rl = RateLimiter::new(Limits::parse(Some("write=3")).unwrap());
        let t = TenantLimits::from_json(&serde_json::json!({"write": 1, "read": 0})).unwrap();
        assert_eq!(rl.limit_of(Category::Write, Some(&t)), 1);
        assert_eq!(rl.limit_of(Category::Read, Some(&t)), 0);
        assert_eq!(
            rl.limit_of(Category::List, Some(&t)),
            100,
            "unnamed categories keep the node's limit"
        );
        assert_eq!(rl.limit_of(Category::Write, None), 3);
        assert_eq!(t.to_json(), serde_json::json!({"read": 0, "write": 1}));
        for bad in [
            serde_json::json!([1]),
            serde_json::json!({"nope": 1}),
            serde_json::json!({"read": -1}),
            serde_json::json!({"read": 1.5}),
            serde_json::json!({"read": "5"}),
            serde_json::json!({"read": MAX_PER_MINUTE + 1}),
        ] {
            assert!(TenantLimits::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_overrides() {
        let l = Limits::parse(Some("read=5, all=7")).unwrap();
        assert_eq!(l.get(Category::Read), 7);
        assert!(Limits::parse(Some("nope=1")).is_err());
        assert!(Limits::parse(Some("read=x")).is_err());
        assert_eq!(Limits::parse(None).unwrap().get(Category::Read), 1000);
    }
}
