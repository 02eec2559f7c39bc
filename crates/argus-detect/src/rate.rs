//! Leak rates as people write them: `10/min`, `6/h`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How fast a leaky bucket drains: `amount` units per `period`.
///
/// Written in configuration and shown in alert explanations as `<amount>/<unit>`, with unit `s`, `min`, `h` or
/// `d` (`10/min`, `6/h`, `0.5/s`), because "leaks 10 per minute" is what an operator reasons about; a per-second
/// float would be unreadable for the slow account buckets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakRate {
    amount: f64,
    period: RatePeriod,
}

/// The period of a [`LeakRate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RatePeriod {
    /// `s`
    Second,
    /// `min`
    Minute,
    /// `h`
    Hour,
    /// `d`
    Day,
}

impl RatePeriod {
    fn millis(self) -> f64 {
        match self {
            Self::Second => 1_000.0,
            Self::Minute => 60_000.0,
            Self::Hour => 3_600_000.0,
            Self::Day => 86_400_000.0,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::Second => "s",
            Self::Minute => "min",
            Self::Hour => "h",
            Self::Day => "d",
        }
    }

    fn parse(unit: &str) -> Option<Self> {
        match unit {
            "s" | "sec" | "second" => Some(Self::Second),
            "min" | "minute" => Some(Self::Minute),
            "h" | "hour" => Some(Self::Hour),
            "d" | "day" => Some(Self::Day),
            _ => None,
        }
    }
}

/// A leak rate that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid leak rate {0:?}: expected <positive number>/<s|min|h|d>, e.g. \"10/min\"")]
pub struct LeakRateError(String);

impl LeakRate {
    /// A rate of `amount` per `period`. The amount must be finite and positive: a bucket that never leaks would
    /// remember one mistyped password forever.
    pub fn new(amount: f64, period: RatePeriod) -> Result<Self, LeakRateError> {
        if amount.is_finite() && amount > 0.0 {
            Ok(Self { amount, period })
        } else {
            Err(LeakRateError(format!("{amount}/{}", period.unit())))
        }
    }

    /// A whole number of units per `period`; cannot fail.
    pub fn whole(amount: std::num::NonZeroU32, period: RatePeriod) -> Self {
        Self { amount: f64::from(amount.get()), period }
    }

    /// Units leaked per millisecond.
    pub fn per_milli(&self) -> f64 {
        self.amount / self.period.millis()
    }

    /// How long a bucket at `level` takes to drain completely.
    pub fn time_to_drain(&self, level: f64) -> Duration {
        let ms = (level.max(0.0) / self.per_milli()).ceil();
        // Saturate rather than overflow: a level this high is drained "never" for any practical purpose.
        Duration::from_millis(if ms >= u64::MAX as f64 { u64::MAX } else { ms as u64 })
    }
}

impl fmt::Display for LeakRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.amount, self.period.unit())
    }
}

impl FromStr for LeakRate {
    type Err = LeakRateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || LeakRateError(s.to_owned());
        let (amount, unit) = s.split_once('/').ok_or_else(invalid)?;
        let amount: f64 = amount.trim().parse().map_err(|_| invalid())?;
        let period = RatePeriod::parse(unit.trim()).ok_or_else(invalid)?;
        Self::new(amount, period).map_err(|_| invalid())
    }
}

impl Serialize for LeakRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LeakRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_round_trip() {
        for (text, per_minute) in [("10/min", 10.0), ("6/h", 0.1), ("0.5/s", 30.0), ("1440/d", 1.0)] {
            let rate: LeakRate = text.parse().unwrap();
            assert_eq!(rate.to_string(), text);
            assert!((rate.per_milli() * 60_000.0 - per_minute).abs() < 1e-9, "{text}");
        }
        assert_eq!(" 3 / minute ".parse::<LeakRate>().unwrap().to_string(), "3/min");
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "10", "10/week", "0/min", "-1/s", "NaN/s", "inf/h", "x/min"] {
            assert!(bad.parse::<LeakRate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn time_to_drain() {
        let rate: LeakRate = "10/min".parse().unwrap();
        assert_eq!(rate.time_to_drain(20.0), Duration::from_secs(120));
        assert_eq!(rate.time_to_drain(-3.0), Duration::ZERO);
    }
}
