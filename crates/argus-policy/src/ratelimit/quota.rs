//! Quotas as written in configuration and `x-argus-rate-limit`: `"600/min"`, `"20/s burst 40"`, `"off"`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANOS_PER_MS: i64 = 1_000_000;
/// Largest accepted count or burst: beyond it the nanosecond arithmetic could overflow, and no API needs it.
const MAX_COUNT: u32 = 1_000_000_000;
const MAX_BURST: u32 = 1_000_000;

/// N calls per period, with a burst: the GCRA parameters of one limit.
///
/// A quota of N per period lets a client make one call every period/N on average, and up to `burst` calls at once
/// after a quiet spell. The burst defaults to N, so `"600/min"` allows 600 calls at once, then 10 a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u32,
    period_ms: u64,
    burst: u32,
    /// Emission interval T = period / count.
    interval_ns: i64,
    /// Burst tolerance: how far ahead of now the theoretical arrival time may run, T × burst.
    tolerance_ns: i64,
}

/// A malformed quota.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a rate limit: {why} (write \"N/unit\", \"N/unit burst B\" or \"off\"; unit s, min, h or day)"
)]
pub struct QuotaError {
    value: String,
    why: &'static str,
}

impl Quota {
    /// `count` calls per `period_ms` milliseconds, with `burst` (≥ 1) calls at once.
    pub fn new(count: u32, period_ms: u64, burst: u32) -> Result<Self, &'static str> {
        if count == 0 || count > MAX_COUNT {
            return Err("the count must be between 1 and 1000000000");
        }
        if burst == 0 || burst > MAX_BURST {
            return Err("the burst must be between 1 and 1000000");
        }
        let period_ns = i64::try_from(period_ms)
            .ok()
            .and_then(|ms| ms.checked_mul(NANOS_PER_MS))
            .ok_or("the period is too long")?;
        let interval_ns = period_ns / i64::from(count);
        if interval_ns == 0 {
            return Err("more than one call per nanosecond");
        }
        let tolerance_ns = interval_ns.checked_mul(i64::from(burst)).ok_or("the burst is too large for the period")?;
        Ok(Self { count, period_ms, burst, interval_ns, tolerance_ns })
    }

    /// Calls per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period, in milliseconds.
    pub fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// Calls allowed at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The window of the `RateLimit-Policy` header, in whole seconds (at least 1).
    pub fn window_secs(&self) -> u64 {
        self.period_ms.div_ceil(1000).max(1)
    }

    pub(crate) fn interval_ns(&self) -> i64 {
        self.interval_ns
    }

    pub(crate) fn tolerance_ns(&self) -> i64 {
        self.tolerance_ns
    }
}

impl FromStr for Quota {
    type Err = QuotaError;

    fn from_str(value: &str) -> Result<Self, QuotaError> {
        let err = |why| QuotaError { value: value.to_owned(), why };
        let mut words = value.split_whitespace();
        let rate = words.next().ok_or_else(|| err("it is empty"))?;
        let burst = match (words.next(), words.next(), words.next()) {
            (None, _, _) => None,
            (Some("burst"), Some(b), None) => Some(b.parse::<u32>().map_err(|_| err("the burst is not a number"))?),
            _ => return Err(err("only \"burst B\" may follow the rate")),
        };
        let (count, unit) = rate.split_once('/').ok_or_else(|| err("no '/'"))?;
        let count = count.parse::<u32>().map_err(|_| err("the count is not a number"))?;
        let period_ms = match unit {
            "s" | "sec" | "second" => 1_000,
            "min" | "minute" => 60_000,
            "h" | "hour" => 3_600_000,
            "d" | "day" => 86_400_000,
            _ => return Err(err("unknown unit")),
        };
        Quota::new(count, period_ms, burst.unwrap_or(count.min(MAX_BURST))).map_err(err)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period_ms {
            1_000 => "s",
            60_000 => "min",
            3_600_000 => "h",
            86_400_000 => "day",
            // Only reachable through Quota::new; shown in milliseconds rather than lying.
            ms => return write!(f, "{}/{ms}ms burst {}", self.count, self.burst),
        };
        write!(f, "{}/{unit}", self.count)?;
        if self.burst != self.count {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

/// A limit as configured: a quota, or `"off"` for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// No limit for this key kind.
    Off,
    /// This quota.
    Quota(Quota),
}

impl Limit {
    /// The quota, if the limit is on.
    pub fn quota(&self) -> Option<&Quota> {
        match self {
            Limit::Off => None,
            Limit::Quota(q) => Some(q),
        }
    }
}

impl FromStr for Limit {
    type Err = QuotaError;

    fn from_str(value: &str) -> Result<Self, QuotaError> {
        if value.trim() == "off" { Ok(Limit::Off) } else { value.parse().map(Limit::Quota) }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Off => f.write_str("off"),
            Limit::Quota(q) => q.fmt(f),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
