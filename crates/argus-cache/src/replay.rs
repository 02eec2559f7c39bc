//! Replay detection: "has this one-time value been used before?" for DPoP proof `jti`s (RFC 9449 §11.1) and
//! client-assertion `jti`s (RFC 7523 §3).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use argus_model::Timestamp;
use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// Remembers one-time values until they expire.
#[async_trait]
pub trait ReplayCache: Send + Sync {
    /// `true` the first time `key` is seen while unexpired, and records it until `expires_at`; `false` for a replay,
    /// or when the cache cannot remember it (full, or its backend is down): a one-time value whose use cannot be
    /// recorded is refused, since accepting it would let it be replayed.
    ///
    /// `expires_at` is when the value stops being acceptable on its own (e.g. the end of a proof's `iat` window);
    /// a value already expired at `now` is not recorded, and the caller has refused it anyway.
    async fn first_use(&self, key: &str, expires_at: Timestamp, now: Timestamp) -> bool;
}

/// An in-process [`ReplayCache`] with a fixed capacity.
///
/// Keys are stored as their SHA-256, so the memory of an entry does not depend on what a caller sent. Expired
/// entries are evicted as new ones arrive; when every slot holds an unexpired key, new keys are refused (fail
/// closed) and counted in [`MemoryReplayCache::refused_full`].
pub struct MemoryReplayCache {
    capacity: usize,
    inner: Mutex<Entries>,
    refused_full: AtomicU64,
}

#[derive(Default)]
struct Entries {
    expiry_of: HashMap<[u8; 32], Timestamp>,
    // Ordered by expiry so eviction takes the oldest first without scanning.
    by_expiry: BTreeSet<(Timestamp, [u8; 32])>,
}

impl Entries {
    fn evict_expired(&mut self, now: Timestamp) {
        while let Some(&(expires_at, key)) = self.by_expiry.first() {
            if expires_at > now {
                break;
            }
            self.by_expiry.pop_first();
            self.expiry_of.remove(&key);
        }
    }

    fn is_live(&self, key: &[u8; 32], now: Timestamp) -> bool {
        self.expiry_of.get(key).is_some_and(|&expires_at| expires_at > now)
    }

    fn insert(&mut self, key: [u8; 32], expires_at: Timestamp) {
        if let Some(old) = self.expiry_of.insert(key, expires_at) {
            self.by_expiry.remove(&(old, key));
        }
        self.by_expiry.insert((expires_at, key));
    }
}

impl std::fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .field("refused_full", &self.refused_full())
            .finish()
    }
}

impl MemoryReplayCache {
    /// Default capacity: a million entries is about 100 MB at worst, far above what one gate's proof window holds.
    pub const DEFAULT_CAPACITY: usize = 1_000_000;

    /// A cache holding at most `capacity` unexpired keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), inner: Mutex::new(Entries::default()), refused_full: AtomicU64::new(0) }
    }

    /// How many keys are held, expired or not.
    pub fn len(&self) -> usize {
        self.entries().expiry_of.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many first uses were refused because the cache was full of unexpired keys.
    pub fn refused_full(&self) -> u64 {
        self.refused_full.load(Ordering::Relaxed)
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The map is consistent after every statement, so a panic elsewhere leaves nothing half-done.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, key: &str, expires_at: Timestamp, now: Timestamp) -> bool {
        if expires_at <= now {
            return true;
        }
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut entries = self.entries();
        if entries.is_live(&digest, now) {
            return false;
        }
        if entries.expiry_of.len() >= self.capacity {
            entries.evict_expired(now);
        }
        if entries.expiry_of.len() >= self.capacity {
            self.refused_full.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        entries.insert(digest, expires_at);
        true
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl ReplayCache for MemoryReplayCache {
    async fn first_use(&self, key: &str, expires_at: Timestamp, now: Timestamp) -> bool {
        self.record(key, expires_at, now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const T0: Timestamp = Timestamp::from_secs(1_764_000_000);

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(T0.as_secs() + secs)
    }

    #[tokio::test]
    async fn first_use_then_replay() {
        let cache = MemoryReplayCache::new(10);
        assert!(cache.first_use("jkt:j1", at(60), T0).await);
        assert!(!cache.first_use("jkt:j1", at(60), at(1)).await, "a replay");
        assert!(!cache.first_use("jkt:j1", at(120), at(59)).await, "a replay with a later expiry too");
        assert!(cache.first_use("jkt:j2", at(60), at(1)).await, "another key");
        assert_eq!(cache.len(), 2);
    }

    #[tokio::test]
    async fn an_expired_key_may_be_seen_again() {
        let cache = MemoryReplayCache::new(10);
        assert!(cache.first_use("k", at(60), T0).await);
        assert!(cache.first_use("k", at(120), at(60)).await, "expired at 60, so new at 60");
        assert!(!cache.first_use("k", at(120), at(61)).await);
        assert_eq!(cache.len(), 1, "re-recording replaces, not duplicates");
    }

    #[tokio::test]
    async fn an_already_expired_value_is_not_recorded() {
        let cache = MemoryReplayCache::new(1);
        assert!(cache.first_use("old", T0, T0).await);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn full_of_live_keys_fails_closed_and_counts() {
        let cache = MemoryReplayCache::new(2);
        assert!(cache.first_use("a", at(60), T0).await);
        assert!(cache.first_use("b", at(30), T0).await);
        assert!(!cache.first_use("c", at(60), at(1)).await, "full: refused");
        assert!(!cache.first_use("d", at(60), at(1)).await);
        assert_eq!(cache.refused_full(), 2);
        assert!(!cache.first_use("a", at(60), at(1)).await, "a known key is still a replay, not a full refusal");
        assert_eq!(cache.refused_full(), 2);

        // Once "b" expires its slot is reused, and "c" (refused before) gets in.
        assert!(cache.first_use("c", at(90), at(30)).await);
        assert_eq!(cache.len(), 2);
        assert!(!cache.first_use("a", at(60), at(31)).await, "eviction took only the expired key");
        assert!(format!("{cache:?}").contains("refused_full: 2"));
    }

    #[tokio::test]
    async fn concurrent_uses_of_one_key_let_exactly_one_through() {
        let cache: Arc<dyn ReplayCache> = Arc::new(MemoryReplayCache::new(100));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.first_use("same", at(60), T0).await })
            })
            .collect();
        let mut firsts = 0;
        for t in tasks {
            firsts += usize::from(t.await.unwrap());
        }
        assert_eq!(firsts, 1);
    }
}
