//! Background upkeep of the gate's in-memory state.

use std::sync::{Arc, Weak};
use std::time::Duration;

use argus_model::Clock;
use argus_policy::ratelimit::RateLimiter;

/// How often full rate-limit buckets are forgotten.
pub(crate) const RATE_LIMIT_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Forget full rate-limit buckets every [`RATE_LIMIT_PRUNE_EVERY`], so the memory a burst of callers took comes
/// back while the gate is quiet (a full shard also makes room by itself; this is for the gate that is not full).
/// Pruning is lossless: a full bucket allows exactly what a missing one does. The task ends with the limiter.
pub(crate) fn prune_rate_limits(limiter: &Arc<RateLimiter>, clock: Arc<dyn Clock>) {
    let limiter: Weak<RateLimiter> = Arc::downgrade(limiter);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RATE_LIMIT_PRUNE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // The first tick is immediate; nothing to prune yet.
        loop {
            tick.tick().await;
            let Some(limiter) = limiter.upgrade() else { return };
            let removed = limiter.store().prune(clock.now());
            tracing::trace!(removed, "rate-limit buckets pruned");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_policy::ratelimit::{BucketKey, KeyKind, KeyValue, Quota};
    use argus_testkit::FakeClock;

    #[tokio::test(start_paused = true)]
    async fn full_buckets_are_forgotten_every_minute_until_the_limiter_is_gone() {
        let clock = Arc::new(FakeClock::default());
        let limiter = Arc::new(RateLimiter::in_memory(1_000));
        let quota = Quota::new(10, 1_000, 10).unwrap();
        for ip in 0..50u8 {
            let key = BucketKey { policy: "per_ip", kind: KeyKind::Ip, value: KeyValue::Ip([10, 0, 0, ip].into()) };
            limiter.store().acquire_now(key, &quota, clock.now());
        }
        assert_eq!(limiter.store().len(), 50);
        prune_rate_limits(&limiter, clock.clone());

        clock.advance(Duration::from_secs(120));
        tokio::time::sleep(RATE_LIMIT_PRUNE_EVERY / 2).await;
        assert_eq!(limiter.store().len(), 50, "not before the minute is up");
        tokio::time::sleep(RATE_LIMIT_PRUNE_EVERY).await;
        assert_eq!(limiter.store().len(), 0, "every bucket was full again");

        let weak = Arc::downgrade(&limiter);
        drop(limiter);
        tokio::time::sleep(RATE_LIMIT_PRUNE_EVERY * 2).await;
        assert!(weak.upgrade().is_none(), "the task does not keep the limiter alive");
    }
}
