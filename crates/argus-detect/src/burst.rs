//! A leaky bucket with what an alert needs to explain it: the hits and start of the current burst, the distinct
//! companions seen (accounts, IPs, paths) and the latest evidence. Compact, for [`crate::keyed::Keyed`] tables.

use argus_model::Timestamp;

use crate::baseline::Leaky;
use crate::distinct::Distinct;
use crate::evidence::Recent;
use crate::keyed::KeyState;
use crate::rate::LeakRate;

/// Evidence ids a burst keeps.
pub const BURST_EVIDENCE: usize = 8;

/// One key's burst; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Burst {
    level: Leaky,
    hits: u32,
    since: Timestamp,
    distinct: Distinct,
    evidence: Recent<BURST_EVIDENCE>,
}

impl KeyState for Burst {
    fn heap_bytes(&self) -> usize {
        self.distinct.heap_bytes() + self.evidence.heap_bytes()
    }
}

impl Burst {
    /// Adds one hit at `now`; `companion` is the hash of a value to count distinct. Returns the new level. A bucket
    /// that had drained starts a new burst: hits, distinct values and evidence of the old one are forgotten.
    pub fn hit(&mut self, now: Timestamp, leak: &LeakRate, companion: Option<u64>, event_id: &str) -> f64 {
        if self.hits == 0 || self.level.is_empty_at(now, leak) {
            self.hits = 0;
            self.since = now;
            self.distinct.clear();
            self.evidence.clear();
        }
        self.hits = self.hits.saturating_add(1);
        if let Some(h) = companion {
            self.distinct.insert_hash(h);
        }
        self.evidence.push(event_id);
        self.level.add(now, 1.0, leak)
    }

    /// Hits since the burst began.
    pub fn hits(&self) -> u32 {
        self.hits
    }

    /// When the burst began.
    pub fn since(&self) -> Timestamp {
        self.since
    }

    /// Distinct companions in this burst (an estimate past 16, never more than the hits).
    pub fn distinct(&self) -> u64 {
        self.distinct.count().min(u64::from(self.hits))
    }

    /// The latest evidence ids, oldest first.
    pub fn evidence(&self) -> Vec<String> {
        self.evidence.ids()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_bucket_starts_a_new_burst() {
        let leak: LeakRate = "1/min".parse().unwrap();
        let mut b = Burst::default();
        let t = |s: i64| Timestamp::from_secs(1_000 + s);
        assert_eq!(b.hit(t(0), &leak, Some(1), "e1"), 1.0);
        assert_eq!(b.hit(t(0), &leak, Some(2), "e2"), 2.0);
        assert_eq!((b.hits(), b.distinct(), b.since()), (2, 2, t(0)));
        // Two minutes later both have leaked away: a new burst.
        assert_eq!(b.hit(t(120), &leak, Some(1), "e3"), 1.0);
        assert_eq!((b.hits(), b.distinct(), b.since(), b.evidence()), (1, 1, t(120), vec!["e3".to_owned()]));
    }
}
