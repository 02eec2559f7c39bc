//! Keyed leaky buckets with bounded memory.
//!
//! Each key (an IP, an account) has a level that rises by one per observation and leaks at a constant rate. Time is
//! the observed events' time, never the wall clock, so replaying recorded events yields the same levels. Memory is
//! bounded two ways: buckets that have drained to empty are dropped by a periodic sweep, and the number of keys is
//! capped; at the cap the emptiest eighth of the buckets is evicted, so a flood of one-off keys cannot push out the
//! key that is actually attacking.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::time::Duration;

use argus_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::rate::LeakRate;

/// How many event ids a bucket remembers as evidence, and an alert keeps (the most recent ones).
pub const EVIDENCE_MAX: usize = 20;

/// How many distinct companions (accounts tried from an IP, IPs that tried an account) a bucket counts exactly.
/// Past this the count saturates: "32 or more" is all a classification needs.
pub const DISTINCT_MAX: usize = 32;

/// How often, in event time, drained buckets are swept away.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A full table frees `1 / EVICT_FRACTION` of its cap at once.
const EVICT_FRACTION: usize = 8;

/// One bucket's parameters: `[watch.detectors.<detector>.<bucket>]`. Both keys are required when the table is
/// written, since the defaults differ per bucket.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// The level at which the detector fires. Each observation adds 1.
    pub threshold: NonZeroU32,
    /// How fast the level drains, e.g. `"10/min"` or `"6/h"`.
    pub leak: LeakRate,
}

impl BucketConfig {
    /// The threshold as a level.
    pub fn threshold(&self) -> f64 {
        f64::from(self.threshold.get())
    }
}

/// A small set that counts distinct values exactly up to [`DISTINCT_MAX`], by 64-bit hash.
///
/// Hashes instead of the strings keep the per-key memory fixed whatever length an attacker gives a user name.
#[derive(Clone, Debug, Default)]
pub struct DistinctSet {
    hashes: Vec<u64>,
}

impl DistinctSet {
    /// Adds a value; ignored once the set is full.
    pub fn insert(&mut self, value: &str) {
        let mut h = DefaultHasher::new();
        value.hash(&mut h);
        let hash = h.finish();
        if self.hashes.len() < DISTINCT_MAX && !self.hashes.contains(&hash) {
            self.hashes.push(hash);
        }
    }

    /// How many distinct values were seen, at most [`DISTINCT_MAX`].
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether the count stopped at the cap (the true number may be higher).
    pub fn is_saturated(&self) -> bool {
        self.hashes.len() >= DISTINCT_MAX
    }
}

/// The state of one key's bucket.
#[derive(Clone, Debug)]
pub struct BucketState {
    level: f64,
    /// The event time the level was last brought up to date; never moves backwards.
    updated: Timestamp,
    /// Observations since the bucket was last empty.
    hits: u64,
    /// The first observation since the bucket was last empty.
    since: Timestamp,
    distinct: DistinctSet,
    evidence: VecDeque<String>,
}

impl BucketState {
    fn new(now: Timestamp) -> Self {
        Self {
            level: 0.0,
            updated: now,
            hits: 0,
            since: now,
            distinct: DistinctSet::default(),
            evidence: VecDeque::new(),
        }
    }

    /// The level after leaking until `now` (no change if `now` is not later than the last update: events from
    /// several emitters may arrive slightly out of order, and time must not run backwards for a bucket).
    fn level_at(&self, now: Timestamp, leak: &LeakRate) -> f64 {
        let elapsed = now.since(self.updated).as_millis() as f64;
        (self.level - elapsed * leak.per_milli()).max(0.0)
    }

    fn leak_to(&mut self, now: Timestamp, leak: &LeakRate) {
        self.level = self.level_at(now, leak);
        self.updated = self.updated.max(now);
        if self.level == 0.0 {
            // Drained: what happened before is no longer part of this burst.
            self.hits = 0;
            self.distinct = DistinctSet::default();
            self.evidence.clear();
        }
    }

    /// The current level (as of the last observation).
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Observations since the bucket was last empty.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// When the current burst started.
    pub fn since(&self) -> Timestamp {
        self.since
    }

    /// Distinct companions seen in the current burst.
    pub fn distinct(&self) -> &DistinctSet {
        &self.distinct
    }

    /// The ids of the most recent observations, oldest first, at most [`EVIDENCE_MAX`].
    pub fn evidence(&self) -> Vec<String> {
        self.evidence.iter().cloned().collect()
    }
}

/// One observation to add to a bucket.
#[derive(Clone, Copy, Debug)]
pub struct Hit<'a> {
    /// The bucket's key.
    pub key: &'a str,
    /// The event's time.
    pub time: Timestamp,
    /// The event id, kept as evidence.
    pub event_id: &'a str,
    /// A companion value to count distinct (the account an IP tried, the IP an account was tried from).
    pub companion: Option<&'a str>,
}

/// Leaky buckets by key, with a cap on the number of keys.
#[derive(Clone, Debug)]
pub struct KeyedBuckets {
    config: BucketConfig,
    max_keys: usize,
    buckets: HashMap<String, BucketState>,
    last_sweep: Option<Timestamp>,
}

impl KeyedBuckets {
    /// Buckets with `config`, tracking at most `max_keys` keys (at least one).
    pub fn new(config: BucketConfig, max_keys: usize) -> Self {
        Self { config, max_keys: max_keys.max(1), buckets: HashMap::new(), last_sweep: None }
    }

    /// The threshold and leak rate.
    pub fn config(&self) -> &BucketConfig {
        &self.config
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The state of `key`'s bucket, if tracked.
    pub fn get(&self, key: &str) -> Option<&BucketState> {
        self.buckets.get(key)
    }

    /// Adds one to `hit.key`'s bucket and returns its state after the hit.
    pub fn hit(&mut self, hit: Hit<'_>) -> &BucketState {
        self.sweep_if_due(hit.time);
        if !self.buckets.contains_key(hit.key) {
            self.make_room(hit.time);
        }
        let leak = self.config.leak;
        let state = self.buckets.entry(hit.key.to_owned()).or_insert_with(|| BucketState::new(hit.time));
        state.leak_to(hit.time, &leak);
        if state.hits == 0 {
            state.since = hit.time;
        }
        state.level += 1.0;
        state.hits = state.hits.saturating_add(1);
        if let Some(companion) = hit.companion {
            state.distinct.insert(companion);
        }
        if state.evidence.len() == EVIDENCE_MAX {
            state.evidence.pop_front();
        }
        state.evidence.push_back(hit.event_id.to_owned());
        state
    }

    /// Drops every bucket that has drained to empty by `now`. Returns how many were dropped.
    pub fn sweep(&mut self, now: Timestamp) -> usize {
        let before = self.buckets.len();
        let leak = self.config.leak;
        self.buckets.retain(|_, state| state.level_at(now, &leak) > 0.0);
        self.last_sweep = Some(now);
        before - self.buckets.len()
    }

    fn sweep_if_due(&mut self, now: Timestamp) {
        match self.last_sweep {
            Some(last) if now.since(last) < SWEEP_EVERY => {}
            Some(_) => {
                self.sweep(now);
            }
            // The first observation starts the sweep clock; there is nothing to sweep yet.
            None => self.last_sweep = Some(now),
        }
    }

    /// Frees slots if the table is full: drained buckets first, then the emptiest live ones, until an eighth of
    /// the cap is free. Each round is linear in the cap, and freeing an eighth at once means a flood of new keys
    /// pays it once per `max_keys / 8` keys, not on every key.
    fn make_room(&mut self, now: Timestamp) {
        if self.buckets.len() < self.max_keys {
            return;
        }
        self.sweep(now);
        let target = self.max_keys - (self.max_keys / EVICT_FRACTION).max(1);
        let excess = self.buckets.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let leak = self.config.leak;
        let mut by_level: Vec<(f64, &String)> =
            self.buckets.iter().map(|(key, state)| (state.level_at(now, &leak), key)).collect();
        // Ties are broken by key, so the same events evict the same keys on every run (replay gives the same
        // alerts).
        let emptiest_first = |a: &(f64, &String), b: &(f64, &String)| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1));
        if excess < by_level.len() {
            by_level.select_nth_unstable_by(excess, emptiest_first);
        }
        let evicted: Vec<String> = by_level.iter().take(excess).map(|(_, key)| (*key).clone()).collect();
        for key in evicted {
            self.buckets.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(threshold: u32, leak: &str, max_keys: usize) -> KeyedBuckets {
        let config = BucketConfig { threshold: NonZeroU32::new(threshold).unwrap(), leak: leak.parse().unwrap() };
        KeyedBuckets::new(config, max_keys)
    }

    fn hit<'a>(key: &'a str, secs: i64, id: &'a str) -> Hit<'a> {
        Hit { key, time: Timestamp::from_secs(secs), event_id: id, companion: None }
    }

    #[test]
    fn level_rises_and_leaks_with_event_time() {
        let mut b = buckets(10, "1/s", 10);
        assert_eq!(b.hit(hit("k", 100, "e1")).level(), 1.0);
        assert_eq!(b.hit(hit("k", 100, "e2")).level(), 2.0);
        // 1.5 s later 1.5 has leaked away.
        let s = b.hit(Hit { time: Timestamp::from_millis(101_500), ..hit("k", 0, "e3") });
        assert!((s.level() - 1.5).abs() < 1e-9);
        assert_eq!(s.hits(), 3);
        assert_eq!(s.evidence(), ["e1", "e2", "e3"]);
    }

    #[test]
    fn an_earlier_event_does_not_run_time_backwards() {
        let mut b = buckets(10, "1/s", 10);
        b.hit(hit("k", 100, "e1"));
        b.hit(hit("k", 90, "e2"));
        let s = b.hit(hit("k", 101, "e3"));
        // Leaked 1 between 100 and 101 only.
        assert!((s.level() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_drained_bucket_starts_a_new_burst() {
        let mut b = buckets(10, "1/s", 10);
        b.hit(Hit { companion: Some("a"), ..hit("k", 100, "e1") });
        b.hit(Hit { companion: Some("b"), ..hit("k", 100, "e2") });
        let s = b.hit(Hit { companion: Some("c"), ..hit("k", 200, "e3") });
        assert_eq!(s.level(), 1.0);
        assert_eq!(s.hits(), 1);
        assert_eq!(s.since(), Timestamp::from_secs(200));
        assert_eq!(s.distinct().len(), 1);
        assert_eq!(s.evidence(), ["e3"]);
    }

    #[test]
    fn evidence_and_distinct_are_bounded() {
        let mut b = buckets(1000, "1/h", 10);
        let ids: Vec<String> = (0..100).map(|i| format!("e{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            b.hit(Hit { companion: Some(id), ..hit("k", 100 + i as i64, id) });
        }
        let s = b.get("k").unwrap();
        assert_eq!(s.evidence().len(), EVIDENCE_MAX);
        assert_eq!(s.evidence().first().map(String::as_str), Some("e80"));
        assert_eq!(s.distinct().len(), DISTINCT_MAX);
        assert!(s.distinct().is_saturated());
    }

    #[test]
    fn sweep_frees_drained_buckets_only() {
        let mut b = buckets(10, "1/s", 100);
        b.hit(hit("short", 0, "e1"));
        for _ in 0..50 {
            b.hit(hit("long", 0, "e2"));
        }
        assert_eq!(b.sweep(Timestamp::from_secs(10)), 1);
        assert!(b.get("short").is_none());
        assert!(b.get("long").is_some());
        assert_eq!(b.sweep(Timestamp::from_secs(60)), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn sweep_runs_by_itself_as_event_time_passes() {
        let mut b = buckets(10, "1/s", 100);
        for i in 0..10 {
            b.hit(hit(&format!("k{i}"), 0, "e"));
        }
        assert_eq!(b.len(), 10);
        b.hit(hit("late", 61, "e"));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn key_cap_holds_and_evicts_the_emptiest() {
        let mut b = buckets(10, "1/h", 3);
        for _ in 0..5 {
            b.hit(hit("busy", 0, "e"));
        }
        b.hit(hit("a", 0, "e"));
        b.hit(hit("a", 0, "e"));
        for i in 0..1000 {
            b.hit(hit(&format!("flood{i}"), 1, "e"));
            assert!(b.len() <= 3);
        }
        assert_eq!(b.get("busy").map(BucketState::hits), Some(5));
        assert_eq!(b.get("a").map(BucketState::hits), Some(2));
        assert!(b.get("flood999").is_some());
    }

    #[test]
    fn a_full_table_frees_an_eighth_of_its_cap_emptiest_first() {
        let mut b = buckets(100, "1/h", 80);
        for i in 0..80 {
            // Key i has i + 1 hits: the emptiest are the lowest numbers.
            for _ in 0..=i {
                b.hit(hit(&format!("k{i:02}"), 0, "e"));
            }
        }
        assert_eq!(b.len(), 80);
        b.hit(hit("new", 1, "e"));
        // 10 evicted (k00..k09), then the new key added.
        assert_eq!(b.len(), 71);
        assert!((0..10).all(|i| b.get(&format!("k{i:02}")).is_none()));
        assert!((10..80).all(|i| b.get(&format!("k{i:02}")).is_some()));
        // The next nine new keys fit without another eviction.
        for i in 0..9 {
            b.hit(hit(&format!("more{i}"), 1, "e"));
        }
        assert_eq!(b.len(), 80);
        assert!(b.get("k10").is_some());
    }
}
