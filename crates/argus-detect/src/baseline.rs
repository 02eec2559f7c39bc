//! Small numeric building blocks of the detectors: learned baselines, leaky levels, tumbling windows.

use std::time::Duration;

use argus_model::Timestamp;

use crate::rate::LeakRate;

/// An exponentially weighted mean and variance: what is normal for a measure, following slow drift.
///
/// Each update moves the mean a fraction `alpha` towards the new value (Finch 2009, "Incremental calculation of
/// weighted mean and variance"). The first value sets the mean outright, so a baseline does not start from zero.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ewma {
    mean: f64,
    var: f64,
    n: u32,
}

impl Ewma {
    /// Adds one observation with weight `alpha` (0 < alpha <= 1).
    pub fn update(&mut self, x: f64, alpha: f64) {
        if self.n == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            let diff = x - self.mean;
            let incr = alpha * diff;
            self.mean += incr;
            self.var = (1.0 - alpha) * (self.var + diff * incr);
        }
        self.n = self.n.saturating_add(1);
    }

    /// The mean (0 before any observation).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The standard deviation.
    pub fn sd(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }

    /// Observations so far.
    pub fn count(&self) -> u32 {
        self.n
    }

    /// How many standard deviations `x` lies above the mean. The deviation is floored at `floor` (and at a tenth
    /// of the mean): a measure that never varied must not make every small change look infinitely unusual.
    pub fn z(&self, x: f64, floor: f64) -> f64 {
        let sd = self.sd().max(floor).max(self.mean.abs() / 10.0).max(f64::MIN_POSITIVE);
        (x - self.mean) / sd
    }
}

/// A leaky level: rises by what is added, drains at a constant rate with event time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Leaky {
    level: f64,
    updated: Timestamp,
}

impl Leaky {
    /// Drains to `now` (never backwards in time), adds `amount`, returns the new level.
    pub fn add(&mut self, now: Timestamp, amount: f64, leak: &LeakRate) -> f64 {
        self.level = self.level_at(now, leak) + amount;
        self.updated = self.updated.max(now);
        self.level
    }

    /// The level as of `now`, without changing it.
    pub fn level_at(&self, now: Timestamp, leak: &LeakRate) -> f64 {
        let elapsed = now.since(self.updated).as_millis() as f64;
        (self.level - elapsed * leak.per_milli()).max(0.0)
    }

    /// Whether the level had drained to zero by `now` (a new burst starts).
    pub fn is_empty_at(&self, now: Timestamp, leak: &LeakRate) -> bool {
        self.level_at(now, leak) <= 0.0
    }
}

/// The index of the tumbling window of `width` that holds `t` (windows are aligned on the epoch, so every key
/// and every replay agrees on where windows start).
pub fn window_index(t: Timestamp, width: Duration) -> i64 {
    let width = i64::try_from(width.as_millis()).unwrap_or(i64::MAX).max(1);
    t.as_millis().div_euclid(width)
}

/// The start of window `index` of `width`.
pub fn window_start(index: i64, width: Duration) -> Timestamp {
    let width = i64::try_from(width.as_millis()).unwrap_or(i64::MAX).max(1);
    Timestamp::from_millis(index.saturating_mul(width))
}

/// A duration as people write it in explanations: `90 s`, `10 min`, `2 h`, `1 d`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) && s >= 86_400 {
        format!("{} d", s / 86_400)
    } else if s.is_multiple_of(3600) && s >= 3600 {
        format!("{} h", s / 3600)
    } else if s.is_multiple_of(60) && s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// `x` rounded to two decimals, for features people read.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_starts_at_the_first_value_and_follows() {
        let mut e = Ewma::default();
        e.update(10.0, 0.1);
        assert_eq!((e.mean(), e.sd(), e.count()), (10.0, 0.0, 1));
        for _ in 0..200 {
            e.update(20.0, 0.1);
        }
        assert!((e.mean() - 20.0).abs() < 0.01);
        let mut noisy = Ewma::default();
        for i in 0..1000 {
            noisy.update(if i % 2 == 0 { 8.0 } else { 12.0 }, 0.05);
        }
        assert!((noisy.mean() - 10.0).abs() < 0.2 && (noisy.sd() - 2.0).abs() < 0.2, "{noisy:?}");
        assert!((noisy.z(20.0, 0.0) - 5.0).abs() < 0.6);
    }

    #[test]
    fn z_is_floored() {
        let mut flat = Ewma::default();
        for _ in 0..10 {
            flat.update(100.0, 0.1);
        }
        // sd 0: the floor of a tenth of the mean applies.
        assert!((flat.z(150.0, 1.0) - 5.0).abs() < 1e-9);
        assert!((Ewma::default().z(3.0, 1.0) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn leaky_level_drains_with_event_time() {
        let leak: LeakRate = "1/min".parse().unwrap();
        let mut l = Leaky::default();
        let t0 = Timestamp::from_secs(1_000_000);
        assert_eq!(l.add(t0, 1.0, &leak), 1.0);
        assert_eq!(l.add(t0, 1.0, &leak), 2.0);
        assert!((l.level_at(t0.plus(Duration::from_secs(30)), &leak) - 1.5).abs() < 1e-9);
        assert!(l.is_empty_at(t0.plus(Duration::from_secs(120)), &leak));
        // An earlier event does not run time backwards.
        assert_eq!(l.add(Timestamp::from_secs(10), 1.0, &leak), 3.0);
    }

    #[test]
    fn windows_are_aligned() {
        let w = Duration::from_secs(600);
        assert_eq!(window_index(Timestamp::from_secs(599), w), 0);
        assert_eq!(window_index(Timestamp::from_secs(600), w), 1);
        assert_eq!(window_index(Timestamp::from_secs(-1), w), -1);
        assert_eq!(window_start(3, w), Timestamp::from_secs(1800));
        assert_eq!(
            [human(w), human(Duration::from_secs(7200)), human(Duration::from_secs(90))],
            ["10 min", "2 h", "90 s"]
        );
    }
}
