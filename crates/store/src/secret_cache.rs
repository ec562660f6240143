//! A per-process cache of `(tenant, path)` → the secret row and its newest active version, still
//! sealed (the cache never holds a plaintext value). It serves [`crate::Store::get_secret_value`] and
//! [`crate::Store::get_secret_values`] without a database round trip.
//!
//! Coherence: only valid where this process is the database's only writer (SQLite: the store opens
//! the file, and every mutation goes through [`crate::Store::apply`] of this process). PostgreSQL
//! nodes share their database, so the PostgreSQL store has no cache.
//!
//! The writer calls [`SecretCache::invalidate`] for every path a committed batch touched (or
//! [`SecretCache::clear`] when it cannot tell), *after* the commit and *before* any request of the
//! batch is answered, so an acknowledged write is never followed by a stale read. A reader that
//! missed fills the cache only if no invalidation happened between its snapshot of the epoch and its
//! insert ([`SecretCache::fill`]); otherwise it might store a row read before a commit that the
//! invalidation already ran for.

use crate::model::{SecretRow, VersionRow};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};

/// What a cached read returns: the secret and its newest active version (none when every version is
/// deleted).
pub type Cached = (SecretRow, Option<VersionRow>);

/// Default bound of the cache's (estimated) memory; `SCAIVAULT_SECRET_CACHE_MB` overrides it.
pub const DEFAULT_MAX_BYTES: usize = 8 << 20;

type Key = (String, String);

struct Slot {
    value: Cached,
    /// What the entry is estimated to take (keys, strings, sealed value, map overhead).
    bytes: usize,
    /// Set by a hit; the clock hand clears it once before evicting the entry.
    referenced: bool,
    /// Matches the ring entry that owns this slot (a key re-inserted after an invalidation gets a
    /// new one; the stale ring entry is skipped).
    generation: u64,
}

struct Inner {
    map: HashMap<Key, Slot>,
    /// Insertion order for the clock: (key, generation).
    ring: VecDeque<(Key, u64)>,
    bytes: usize,
    generation: u64,
    /// Bumped by every invalidation.
    epoch: u64,
}

/// Bounded by bytes with CLOCK (second-chance) eviction: a full cache evicts the oldest entries not
/// read since the hand last passed them, so hot secrets stay while a scan of many paths passes through.
pub struct SecretCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

impl Default for SecretCache {
    fn default() -> Self {
        SecretCache::with_capacity(DEFAULT_MAX_BYTES)
    }
}

fn estimate(row: &Cached) -> usize {
    let (s, v) = row;
    let opt = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    let strings = 2 * (s.tenant_id.len() + s.path.len())
        + s.secret_type.len()
        + s.metadata.len()
        + opt(&s.rotation_policy_id)
        + opt(&s.secret_policy_id)
        + s.created_by.len()
        + s.updated_by.len()
        + opt(&s.deleted_by)
        + opt(&s.restored_by);
    let version = v.as_ref().map_or(0, |v| {
        v.sealed.wrapped_dek.len()
            + v.sealed.ciphertext.len()
            + v.created_by.len()
            + opt(&v.deleted_by)
            + opt(&v.restored_by)
    });
    // Fixed parts, the ring entry, and roughly 16 bytes of allocator overhead per heap block.
    std::mem::size_of::<Slot>()
        + std::mem::size_of::<(Key, Key)>()
        + std::mem::size_of::<(Key, u64)>()
        + strings
        + version
        + 16 * 12
}

impl Inner {
    fn insert(&mut self, row: Cached, max_bytes: usize) {
        let bytes = estimate(&row);
        if bytes > max_bytes {
            return;
        }
        let key = (row.0.tenant_id.clone(), row.0.path.clone());
        self.generation += 1;
        let generation = self.generation;
        if let Some(old) = self.map.insert(
            key.clone(),
            Slot {
                value: row,
                bytes,
                referenced: false,
                generation,
            },
        ) {
            self.bytes -= old.bytes;
        }
        self.bytes += bytes;
        self.ring.push_back((key, generation));
        self.evict(max_bytes);
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= old.bytes;
        }
    }

    fn evict(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes {
            let Some((key, generation)) = self.ring.pop_front() else {
                break;
            };
            let Some(slot) = self.map.get_mut(&key) else {
                continue;
            };
            if slot.generation != generation {
                continue;
            }
            if slot.referenced {
                slot.referenced = false;
                self.ring.push_back((key, generation));
                continue;
            }
            self.remove(&key);
        }
        // Stale ring entries (invalidated keys) must not pile up.
        if self.ring.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.ring
                .retain(|(k, g)| map.get(k).is_some_and(|s| s.generation == *g));
        }
    }
}

impl SecretCache {
    /// A cache holding at most about `max_bytes` (0: caches nothing).
    pub fn with_capacity(max_bytes: usize) -> SecretCache {
        SecretCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                ring: VecDeque::new(),
                bytes: 0,
                generation: 0,
                epoch: 0,
            }),
            max_bytes,
        }
    }

    /// The epoch to pass to [`SecretCache::fill`]: take it before reading the database.
    pub fn epoch(&self) -> u64 {
        self.inner.lock().epoch
    }

    pub fn get(&self, tenant: &str, path: &str) -> Option<Cached> {
        if self.max_bytes == 0 {
            return None;
        }
        // A (String, String) key cannot be looked up by (&str, &str) without allocating; the
        // allocation is cheaper than a second map layer per tenant.
        let key = (tenant.to_owned(), path.to_owned());
        let mut g = self.inner.lock();
        let slot = g.map.get_mut(&key)?;
        slot.referenced = true;
        Some(slot.value.clone())
    }

    /// Stores rows read from the database, unless an invalidation happened since `epoch`.
    pub fn fill(&self, epoch: u64, rows: impl IntoIterator<Item = Cached>) {
        if self.max_bytes == 0 {
            return;
        }
        let mut g = self.inner.lock();
        if g.epoch != epoch {
            return;
        }
        for row in rows {
            g.insert(row, self.max_bytes);
        }
    }

    /// Forgets the given paths (after their batch committed).
    pub fn invalidate<'a>(&self, keys: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut g = self.inner.lock();
        g.epoch = g.epoch.wrapping_add(1);
        for (t, p) in keys {
            g.remove(&(t.to_owned(), p.to_owned()));
        }
    }

    /// Stores rows the writer itself just committed (after [`SecretCache::invalidate`] of the batch).
    pub fn put(&self, rows: impl IntoIterator<Item = Cached>) {
        if self.max_bytes == 0 {
            return;
        }
        let mut g = self.inner.lock();
        for row in rows {
            g.insert(row, self.max_bytes);
        }
    }

    /// Forgets everything (after a commit whose touched paths are not known).
    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.epoch = g.epoch.wrapping_add(1);
        g.map.clear();
        g.ring.clear();
        g.bytes = 0;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().map.len()
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaivault_crypto::SealedValue;

    fn row(t: &str, p: &str, v: i64) -> Cached {
        (
            SecretRow {
                tenant_id: t.into(),
                path: p.into(),
                secret_type: "kv".into(),
                current_version: v,
                max_versions: 10,
                metadata: "{}".into(),
                created_at: 1,
                updated_at: 1,
                expires_at: None,
                rotation_policy_id: None,
                secret_policy_id: None,
                created_by: "x".into(),
                updated_by: "x".into(),
                deleted_at: None,
                deleted_by: None,
                recoverable_until: None,
                restored_at: None,
                restored_by: None,
            },
            Some(VersionRow {
                version: v,
                sealed: SealedValue {
                    wrapped_dek: vec![1],
                    ciphertext: vec![2],
                },
                created_at: 1,
                created_by: "x".into(),
                deleted_at: None,
                deleted_by: None,
                restored_at: None,
                restored_by: None,
            }),
        )
    }

    #[test]
    fn fill_get_invalidate() {
        let c = SecretCache::default();
        assert!(c.get("t", "a").is_none());
        c.fill(c.epoch(), [row("t", "a", 1), row("t", "b", 1)]);
        assert_eq!(c.get("t", "a").unwrap().0.current_version, 1);
        assert!(c.get("u", "a").is_none(), "tenants are separate");
        c.invalidate([("t", "a")]);
        assert!(c.get("t", "a").is_none());
        assert!(c.get("t", "b").is_some());
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn a_fill_racing_an_invalidation_is_dropped() {
        let c = SecretCache::default();
        let before = c.epoch();
        // A reader took the epoch, read version 1 from the database; a write of version 2 commits
        // and invalidates before the reader fills: the stale row must not land.
        c.invalidate([("t", "a")]);
        c.fill(before, [row("t", "a", 1)]);
        assert!(c.get("t", "a").is_none());
        c.fill(c.epoch(), [row("t", "a", 2)]);
        assert_eq!(c.get("t", "a").unwrap().0.current_version, 2);
    }

    #[test]
    fn bounded_by_bytes_and_keeps_what_is_read() {
        let one = estimate(&row("t", "p00000", 1));
        let c = SecretCache::with_capacity(one * 100);
        c.fill(c.epoch(), [row("t", "hot", 1)]);
        for i in 0..1_000 {
            c.fill(c.epoch(), [row("t", &format!("p{i:05}"), 1)]);
            // A secret read all the time survives a scan of many others.
            assert!(
                c.get("t", "hot").is_some(),
                "hot entry evicted after {i} inserts"
            );
        }
        assert!(c.bytes() <= one * 100, "{} > {}", c.bytes(), one * 100);
        assert!(
            c.len() > 50,
            "the cache should stay nearly full: {}",
            c.len()
        );
        // Sizes are accounted on removal too.
        c.invalidate([("t", "hot")]);
        c.clear();
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn reinsert_after_invalidate_is_accounted_once() {
        let c = SecretCache::with_capacity(1 << 20);
        for _ in 0..100 {
            c.fill(c.epoch(), [row("t", "a", 1)]);
            c.invalidate([("t", "a")]);
        }
        c.fill(c.epoch(), [row("t", "a", 2)]);
        c.put([row("t", "a", 3)]);
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes(), estimate(&row("t", "a", 3)));
        assert_eq!(c.get("t", "a").unwrap().0.current_version, 3);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let c = SecretCache::with_capacity(0);
        c.fill(c.epoch(), [row("t", "a", 1)]);
        c.put([row("t", "b", 1)]);
        assert!(c.get("t", "a").is_none() && c.get("t", "b").is_none());
    }
}
