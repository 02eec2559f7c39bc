//! The Generic Cell Rate Algorithm, pure: one bucket's state is its theoretical arrival time (TAT), in nanoseconds.
//!
//! A call at `now` conforms if, after adding one emission interval T to `max(TAT, now)`, the TAT runs at most
//! the burst tolerance τ = T × burst ahead of `now`. A conforming call stores the new TAT; a refused one changes
//! nothing. A bucket whose TAT is at or before `now` is full, exactly as if it had never been seen: forgetting it
//! is lossless, which is what makes idle eviction free.

use super::quota::Quota;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The result of offering one call to a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// The call conforms; store `tat`.
    Allowed {
        /// The bucket's new theoretical arrival time.
        tat: i64,
        /// Calls that would still conform right now.
        remaining: u64,
        /// Nanoseconds until the bucket is full again.
        reset_ns: i64,
    },
    /// The call does not conform; the bucket is unchanged.
    Limited {
        /// Nanoseconds until the call would conform.
        retry_after_ns: i64,
    },
}

/// Offer one call at `now` to a bucket whose TAT is `tat` (`None` for a bucket never seen, or forgotten).
pub fn offer(tat: Option<i64>, now: i64, quota: &Quota) -> Cell {
    let start = tat.map_or(now, |t| t.max(now));
    let new_tat = start.saturating_add(quota.interval_ns());
    let conforms_at = new_tat.saturating_sub(quota.tolerance_ns());
    if now < conforms_at {
        return Cell::Limited { retry_after_ns: conforms_at - now };
    }
    let headroom = now.saturating_add(quota.tolerance_ns()).saturating_sub(new_tat);
    let remaining = u64::try_from(headroom / quota.interval_ns()).unwrap_or(0);
    Cell::Allowed { tat: new_tat, remaining, reset_ns: new_tat - now }
}

/// The TAT after giving back one call taken at `tat`; `None` when the bucket is then full and can be forgotten.
pub fn give_back(tat: i64, now: i64, quota: &Quota) -> Option<i64> {
    let back = tat.saturating_sub(quota.interval_ns());
    (back > now).then_some(back)
}

/// Nanoseconds as whole seconds, rounded up: a client told to wait 0 s when 0.3 s remain would be refused again.
pub fn ceil_secs(ns: i64) -> u64 {
    u64::try_from(ns.max(0)).unwrap_or(0).div_ceil(NANOS_PER_SEC.unsigned_abs())
}

/// A timestamp in milliseconds as nanoseconds, saturating (i64 nanoseconds last until 2262).
pub fn millis_to_nanos(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}
