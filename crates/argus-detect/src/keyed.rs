//! Per-key detector state with bounded memory: a time-to-live by event time and a cap on the number of keys.
//!
//! Every detector keeps state per IP, user, client, session or token, and the keys come from callers: a flood of
//! new keys (random IPs, forged token ids) must not exhaust memory nor push out the keys that matter. Two bounds:
//!
//! - **TTL**: a key not seen for `ttl` of *event* time is stale. A stale entry found on access starts over as new,
//!   and a sweep every quarter TTL (of event time) frees stale entries, so memory follows the active keys.
//! - **Cap**: at `capacity` keys, a new key evicts one by CLOCK with a small frequency count (GCLOCK): each access
//!   raises a key's count (up to [`MAX_FREQUENCY`]), the clock hand lowers counts as it passes and evicts the first
//!   key at zero (or stale). New keys start at zero, so a flood of one-off keys evicts mostly its own kind, while a
//!   key seen again and again (an attacker at work, a regular user) survives several turns of the hand. Each
//!   eviction is amortised O(1), never a scan of the table per new key.
//!
//! Entries live densely in one vector (removal swaps the last one into the hole) and a hash index maps keys to
//! positions; the key text is stored once, shared by both. Nothing iterates the hash index, so its per-process
//! random seed never changes which keys are evicted: the same events evict the same keys on every replay.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use argus_model::Timestamp;

/// The highest access count a key can bank: it survives this many passes of the clock hand without an access.
pub const MAX_FREQUENCY: u8 = 3;

/// State that can report the heap memory it owns, so memory per tracked key can be measured.
pub trait KeyState {
    /// Bytes this state owns on the heap (not counting `size_of::<Self>()`).
    fn heap_bytes(&self) -> usize {
        0
    }
}

struct Slot<S> {
    key: Arc<str>,
    last_seen: Timestamp,
    frequency: u8,
    state: S,
}

/// The map from key to state; see the module documentation.
pub struct Keyed<S> {
    index: HashMap<Arc<str>, u32>,
    slots: Vec<Slot<S>>,
    hand: usize,
    capacity: usize,
    ttl: Duration,
    last_sweep: Option<Timestamp>,
    evicted: u64,
    expired: u64,
}

impl<S> std::fmt::Debug for Keyed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed")
            .field("len", &self.slots.len())
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("evicted", &self.evicted)
            .field("expired", &self.expired)
            .finish()
    }
}

impl<S: KeyState> Keyed<S> {
    /// At most `capacity` keys (at least 1, at most `u32::MAX`), each forgotten `ttl` after it was last seen.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            hand: 0,
            capacity: capacity.clamp(1, u32::MAX as usize),
            ttl,
            last_sweep: None,
            evicted: 0,
            expired: 0,
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Keys evicted to make room, and stale keys dropped, since creation.
    pub fn dropped(&self) -> (u64, u64) {
        (self.evicted, self.expired)
    }

    /// The state of `key` as of `now`, if held and not stale. Does not count as an access.
    pub fn get(&self, key: &str, now: Timestamp) -> Option<&S> {
        let slot = &self.slots[*self.index.get(key)? as usize];
        (!self.is_stale(slot, now)).then_some(&slot.state)
    }

    /// The state of `key`, created by `init` if the key is new or stale. Counts as an access at `now`: the key's
    /// last-seen time moves forward (never back: events may arrive slightly out of order) and its count goes up.
    pub fn entry(&mut self, key: &str, now: Timestamp, init: impl FnOnce() -> S) -> &mut S {
        self.sweep_if_due(now);
        let at = match self.index.get(key) {
            Some(&at) => {
                let at = at as usize;
                if self.is_stale(&self.slots[at], now) {
                    // Stale but not yet swept: the key starts over, as if it had been forgotten.
                    self.slots[at].state = init();
                    self.slots[at].frequency = 0;
                    self.expired += 1;
                } else {
                    let slot = &mut self.slots[at];
                    slot.frequency = (slot.frequency + 1).min(MAX_FREQUENCY);
                }
                at
            }
            None => self.insert(key, now, init()),
        };
        let slot = &mut self.slots[at];
        slot.last_seen = slot.last_seen.max(now);
        &mut slot.state
    }

    /// Calls `f` on every held key that is not stale at `now`, in storage order (deterministic for the same
    /// events). For periodic work such as closing windows of actors that went quiet.
    pub fn for_each_mut(&mut self, now: Timestamp, mut f: impl FnMut(&str, &mut S)) {
        let ttl = self.ttl;
        for slot in &mut self.slots {
            if now.since(slot.last_seen) <= ttl {
                f(&slot.key, &mut slot.state);
            }
        }
    }

    /// Drops every key stale at `now`. Returns how many were dropped.
    pub fn sweep(&mut self, now: Timestamp) -> usize {
        self.last_sweep = Some(now);
        let before = self.slots.len();
        let mut at = 0;
        while at < self.slots.len() {
            if self.is_stale(&self.slots[at], now) {
                self.remove_at(at);
            } else {
                at += 1;
            }
        }
        let dropped = before - self.slots.len();
        self.expired += dropped as u64;
        dropped
    }

    /// Approximate bytes used: the entries, the index and the key texts, plus what each state owns.
    pub fn heap_bytes(&self) -> usize {
        let slots = self.slots.capacity() * std::mem::size_of::<Slot<S>>();
        // hashbrown: one control byte per bucket besides the entry itself.
        let index = self.index.capacity() * (std::mem::size_of::<(Arc<str>, u32)>() + 1);
        // Arc<str>: two reference counts before the text.
        let owned: usize =
            self.slots.iter().map(|s| 2 * std::mem::size_of::<usize>() + s.key.len() + s.state.heap_bytes()).sum();
        slots + index + owned
    }

    fn is_stale(&self, slot: &Slot<S>, now: Timestamp) -> bool {
        now.since(slot.last_seen) > self.ttl
    }

    fn insert(&mut self, key: &str, now: Timestamp, state: S) -> usize {
        if self.slots.len() >= self.capacity {
            self.evict_one(now);
        }
        let key: Arc<str> = Arc::from(key);
        let at = self.slots.len();
        self.index.insert(Arc::clone(&key), at as u32);
        self.slots.push(Slot { key, last_seen: now, frequency: 0, state });
        at
    }

    /// GCLOCK: lower counts under the hand until a key at zero (or stale) comes up, and evict it. Bounded: after
    /// `MAX_FREQUENCY + 1` full turns every count is zero.
    fn evict_one(&mut self, now: Timestamp) {
        let turns = (usize::from(MAX_FREQUENCY) + 1) * self.slots.len() + 1;
        for _ in 0..turns {
            if self.slots.is_empty() {
                return;
            }
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let stale = self.is_stale(&self.slots[self.hand], now);
            let slot = &mut self.slots[self.hand];
            if stale || slot.frequency == 0 {
                if stale {
                    self.expired += 1;
                } else {
                    self.evicted += 1;
                }
                // The last entry moves into the hole, under the hand: it is looked at next.
                self.remove_at(self.hand);
                return;
            }
            slot.frequency -= 1;
            self.hand += 1;
        }
    }

    fn remove_at(&mut self, at: usize) {
        let removed = self.slots.swap_remove(at);
        self.index.remove(&removed.key);
        if let Some(moved) = self.slots.get(at) {
            self.index.insert(Arc::clone(&moved.key), at as u32);
        }
    }

    fn sweep_if_due(&mut self, now: Timestamp) {
        let every = (self.ttl / 4).max(Duration::from_secs(1));
        match self.last_sweep {
            Some(last) if now.since(last) < every => {}
            Some(_) => {
                self.sweep(now);
            }
            None => self.last_sweep = Some(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Count(u32);

    impl KeyState for Count {}

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    fn hit(k: &mut Keyed<Count>, key: &str, secs: i64) -> u32 {
        let c = k.entry(key, at(secs), Count::default);
        c.0 += 1;
        c.0
    }

    #[test]
    fn entries_persist_and_count() {
        let mut k = Keyed::new(10, Duration::from_secs(60));
        assert_eq!(hit(&mut k, "a", 0), 1);
        assert_eq!(hit(&mut k, "a", 10), 2);
        assert_eq!(hit(&mut k, "b", 10), 1);
        assert_eq!(k.get("a", at(10)), Some(&Count(2)));
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn a_stale_key_starts_over_and_sweeps_free_memory() {
        let mut k = Keyed::new(10, Duration::from_secs(60));
        hit(&mut k, "a", 0);
        hit(&mut k, "a", 50);
        // 60 s after its last access it is still fresh; after that it is gone.
        assert_eq!(k.get("a", at(110)), Some(&Count(2)));
        assert_eq!(k.get("a", at(111)), None);
        assert_eq!(hit(&mut k, "a", 200), 1, "a stale key starts over");
        for i in 0..5 {
            hit(&mut k, &format!("old{i}"), 210);
        }
        assert_eq!(k.len(), 6);
        // The next access a quarter TTL later sweeps: everything but the key touched now is stale by 1000.
        hit(&mut k, "new", 1000);
        assert_eq!(k.len(), 1);
        assert!(k.get("new", at(1000)).is_some());
    }

    #[test]
    fn time_never_runs_backwards_for_a_key() {
        let mut k = Keyed::new(10, Duration::from_secs(60));
        hit(&mut k, "a", 100);
        hit(&mut k, "a", 40);
        assert!(k.get("a", at(160)).is_some(), "the earlier event did not move last_seen back");
    }

    #[test]
    fn a_flood_of_new_keys_stays_within_the_cap_and_spares_the_regulars() {
        let mut k = Keyed::new(100, Duration::from_secs(3600));
        // Ten regulars, each seen a few times.
        for round in 0..4 {
            for r in 0..10 {
                hit(&mut k, &format!("regular{r}"), round);
            }
        }
        // A flood of 50 new keys per second, the regulars coming back once a second.
        for i in 0..2_000 {
            hit(&mut k, &format!("flood{i}"), 10 + i / 50);
            if i % 50 == 0 {
                for r in 0..10 {
                    hit(&mut k, &format!("regular{r}"), 10 + i / 50);
                }
            }
            assert!(k.len() <= 100);
        }
        assert!((0..10).all(|r| k.get(&format!("regular{r}"), at(60)).is_some()));
        assert!(k.get("flood1999", at(60)).is_some(), "the newest key is in");
        assert!(k.get("flood0", at(60)).is_none(), "the oldest one-off keys went first");
        let (evicted, _) = k.dropped();
        assert_eq!(evicted, 2_010 - 100);
    }

    #[test]
    fn eviction_prefers_stale_keys_and_is_deterministic() {
        let run = || {
            let mut k = Keyed::new(3, Duration::from_secs(10));
            hit(&mut k, "old", 0);
            hit(&mut k, "b", 8);
            hit(&mut k, "b", 9);
            hit(&mut k, "c", 9);
            hit(&mut k, "c", 9);
            // "old" is stale at 12 (seen at 0, ttl 10) and goes first though the others have counts.
            hit(&mut k, "d", 12);
            let mut keys = Vec::new();
            k.for_each_mut(at(12), |key, _| keys.push(key.to_owned()));
            keys
        };
        let keys = run();
        assert_eq!(keys.len(), 3);
        assert!(!keys.contains(&"old".to_owned()));
        assert_eq!(keys, run());
    }

    #[test]
    fn memory_is_accounted_per_key() {
        let mut k: Keyed<Count> = Keyed::new(1000, Duration::from_secs(60));
        for i in 0..1000 {
            hit(&mut k, &format!("203.0.113.{i}"), 0);
        }
        let per_key = k.heap_bytes() / k.len();
        // Entry, index bucket, key text: about 100 bytes for an IP key with a 4-byte state.
        assert!((60..120).contains(&per_key), "{per_key}");
    }
}
