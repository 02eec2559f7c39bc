//! Where bucket state lives: the [`RateLimitStore`] seam, and the in-memory store every gate has.
//!
//! A shared store (Redis, in `argus-cache`) implements the same two operations with the same [`gcra`] math, so
//! that gates behind one load balancer share their counts.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, ready};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use argus_model::Timestamp;

use super::gcra::{self, Cell};
use super::quota::Quota;

/// The principal a bucket counts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// One access token (`jti`).
    Token,
    /// One user (`sub`), across their tokens and apps.
    User,
    /// One app (`client_id`), across its users.
    Client,
    /// One client address (IPv4, or the /64 of an IPv6 address).
    Ip,
}

impl KeyKind {
    /// All kinds, in the order a call is checked: narrowest first.
    pub const ALL: [KeyKind; 4] = [KeyKind::Token, KeyKind::User, KeyKind::Client, KeyKind::Ip];

    /// Lower-case name, as policy names and configuration use it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Token => "token",
            KeyKind::User => "user",
            KeyKind::Client => "client",
            KeyKind::Ip => "ip",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The value a bucket is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyValue<'a> {
    /// A claim: `jti`, `sub` or `client_id`.
    Claim(&'a str),
    /// An address, already reduced to the part that is limited (see [`KeyKind::Ip`]).
    Ip(IpAddr),
}

impl fmt::Display for KeyValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Claim(s) => f.write_str(s),
            KeyValue::Ip(ip) => ip.fmt(f),
        }
    }
}

/// One bucket: a policy (its name scopes the counts: a per-operation limit has buckets of its own), a key kind and
/// a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BucketKey<'a> {
    pub policy: &'a str,
    pub kind: KeyKind,
    pub value: KeyValue<'a>,
}

/// Bucket state for the rate limiter.
///
/// Both operations are atomic per bucket. They return futures so that a networked store fits; the in-memory one
/// answers at once.
pub trait RateLimitStore: Send + Sync {
    /// Offer one call at `now` (see [`gcra::offer`]); a conforming call is counted.
    fn acquire(&self, key: BucketKey<'_>, quota: &Quota, now: Timestamp) -> impl Future<Output = Cell> + Send;

    /// Give back a call counted by [`RateLimitStore::acquire`] (another bucket of the same call refused it).
    fn release(&self, key: BucketKey<'_>, quota: &Quota, now: Timestamp) -> impl Future<Output = ()> + Send;
}

/// In-memory buckets: sharded `Mutex<HashMap>`, keyed by a randomly seeded 64-bit hash of the bucket key (no
/// per-call allocation, and keys chosen by clients cannot be made to collide on purpose).
///
/// Memory is bounded: at most `max_keys` buckets (rounded up to whole shards). Full buckets are forgotten
/// losslessly when a shard fills up or on [`MemoryStore::prune`]; if a shard is still full, the bucket closest to
/// full is dropped, which can only ever favour a client, never refuse one wrongly.
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    per_shard: usize,
}

type Shard = HashMap<u64, i64, BuildHasherDefault<PreHashed>>;

const SHARDS: usize = 64;

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").field("buckets", &self.len()).field("per_shard", &self.per_shard).finish()
    }
}

impl MemoryStore {
    /// A store for at most about `max_keys` live buckets.
    pub fn new(max_keys: usize) -> Self {
        let per_shard = max_keys.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        Self { shards, hasher: RandomState::new(), per_shard }
    }

    /// Offer one call, synchronously; [`RateLimitStore::acquire`] wraps it.
    pub fn acquire_now(&self, key: BucketKey<'_>, quota: &Quota, now: Timestamp) -> Cell {
        let now_ns = gcra::millis_to_nanos(now.as_millis());
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash);
        let cell = gcra::offer(shard.get(&hash).copied(), now_ns, quota);
        if let Cell::Allowed { tat, .. } = cell {
            if !shard.contains_key(&hash) && shard.len() >= self.per_shard {
                make_room(&mut shard, now_ns, self.per_shard);
            }
            shard.insert(hash, tat);
        }
        cell
    }

    /// Give back one call, synchronously; [`RateLimitStore::release`] wraps it.
    pub fn release_now(&self, key: BucketKey<'_>, quota: &Quota, now: Timestamp) {
        let now_ns = gcra::millis_to_nanos(now.as_millis());
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash);
        if let Some(&tat) = shard.get(&hash) {
            match gcra::give_back(tat, now_ns, quota) {
                Some(back) => shard.insert(hash, back),
                None => shard.remove(&hash),
            };
        }
    }

    /// Forget every full bucket (TAT at or before `now`). Lossless; call it now and then to return memory.
    pub fn prune(&self, now: Timestamp) -> usize {
        let now_ns = gcra::millis_to_nanos(now.as_millis());
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = lock(shard);
            let before = shard.len();
            shard.retain(|_, tat| *tat > now_ns);
            removed += before - shard.len();
        }
        removed
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // The low bits pick the HashMap's slot; the high bits pick the shard so the two stay independent.
        let index = usize::try_from(hash >> 58).unwrap_or(0) % self.shards.len();
        lock(&self.shards[index])
    }
}

impl RateLimitStore for MemoryStore {
    fn acquire(&self, key: BucketKey<'_>, quota: &Quota, now: Timestamp) -> impl Future<Output = Cell> + Send {
        ready(self.acquire_now(key, quota, now))
    }

    fn release(&self, key: BucketKey<'_>, quota: &Quota, now: Timestamp) -> impl Future<Output = ()> + Send {
        self.release_now(key, quota, now);
        ready(())
    }
}

/// A shard's lock. Bucket state stays consistent even if a holder panicked (every update is a single insert).
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Free one slot in a full shard: drop the full buckets (lossless), or else the one closest to full.
fn make_room(shard: &mut Shard, now_ns: i64, per_shard: usize) {
    shard.retain(|_, tat| *tat > now_ns);
    if shard.len() < per_shard {
        return;
    }
    if let Some((&victim, _)) = shard.iter().min_by_key(|(_, tat)| **tat) {
        shard.remove(&victim);
    }
}

/// A `Hasher` for keys that are already uniformly distributed 64-bit hashes.
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with it; fold anything else in so the type stays a correct Hasher.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
