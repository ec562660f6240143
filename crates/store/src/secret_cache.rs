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
use std::collections::HashMap;

/// What a cached read returns: the secret and its newest active version (none when every version is
/// deleted).
pub type Cached = (SecretRow, Option<VersionRow>);

/// Bounded: at most this many entries (each a few hundred bytes); when full, the cache is emptied
/// and refills with what is read next.
const MAX_ENTRIES: usize = 8_192;

struct Inner {
    map: HashMap<(String, String), Cached>,
    /// Bumped by every invalidation.
    epoch: u64,
}

pub struct SecretCache {
    inner: Mutex<Inner>,
}

impl Default for SecretCache {
    fn default() -> Self {
        SecretCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                epoch: 0,
            }),
        }
    }
}

impl SecretCache {
    /// The epoch to pass to [`SecretCache::fill`]: take it before reading the database.
    pub fn epoch(&self) -> u64 {
        self.inner.lock().epoch
    }

    pub fn get(&self, tenant: &str, path: &str) -> Option<Cached> {
        // A (String, String) key cannot be looked up by (&str, &str) without allocating; the
        // allocation is cheaper than a second map layer per tenant.
        self.inner
            .lock()
            .map
            .get(&(tenant.to_owned(), path.to_owned()))
            .cloned()
    }

    /// Stores rows read from the database, unless an invalidation happened since `epoch`.
    pub fn fill(&self, epoch: u64, rows: impl IntoIterator<Item = Cached>) {
        let mut g = self.inner.lock();
        if g.epoch != epoch {
            return;
        }
        for row in rows {
            if g.map.len() >= MAX_ENTRIES {
                g.map.clear();
            }
            let key = (row.0.tenant_id.clone(), row.0.path.clone());
            g.map.insert(key, row);
        }
    }

    /// Forgets the given paths (after their batch committed).
    pub fn invalidate<'a>(&self, keys: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut g = self.inner.lock();
        g.epoch = g.epoch.wrapping_add(1);
        for (t, p) in keys {
            g.map.remove(&(t.to_owned(), p.to_owned()));
        }
    }

    /// Stores rows the writer itself just committed (after [`SecretCache::invalidate`] of the batch).
    pub fn put(&self, rows: impl IntoIterator<Item = Cached>) {
        let mut g = self.inner.lock();
        for row in rows {
            if g.map.len() >= MAX_ENTRIES {
                g.map.clear();
            }
            let key = (row.0.tenant_id.clone(), row.0.path.clone());
            g.map.insert(key, row);
        }
    }

    /// Forgets everything (after a commit whose touched paths are not known).
    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.epoch = g.epoch.wrapping_add(1);
        g.map.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().map.len()
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
    fn bounded() {
        let c = SecretCache::default();
        for i in 0..(MAX_ENTRIES + 10) {
            c.fill(c.epoch(), [row("t", &format!("p{i}"), 1)]);
        }
        assert!(c.len() <= MAX_ENTRIES);
    }
}
