//! Slow brute force: one account guessed at a pace the fast buckets forgive, for hours or days.
//!
//! The failed-login detector's per-account bucket leaks 6 an hour, so one guess every ten minutes never fills it.
//! This bucket leaks 1 an hour and fires at 24: anything faster than one guess an hour, kept up, alerts (one a
//! minute within about 25 minutes, one every 20 minutes within a day), while a person who forgets a password and
//! tries a dozen times before resetting it never does. Guesses spread over many IPs (a botnet rotating addresses
//! to dodge per-IP limits) raise the severity.

use std::num::{NonZeroU32, NonZeroUsize};

use argus_model::{Event, EventKind, LoginOutcome};
use serde::{Deserialize, Serialize};

use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::baseline::round2;
use crate::bucket::BucketConfig;
use crate::burst::Burst;
use crate::distinct::hash64;
use crate::failed_login::{account_key, human_duration, ip_key};
use crate::keyed::Keyed;
use crate::pipeline::{ConfigError, Detector, Memory};
use crate::rate::{LeakRate, RatePeriod};

/// The detector's name in alerts.
pub const DETECTOR: &str = "slow_brute_force";

/// `[watch.detectors.slow_brute_force]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlowBruteForceConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// Failed sign-ins per account. Default `threshold = 24`, `leak = "1/h"`.
    pub per_account: BucketConfig,
    /// Failures from at least this many distinct IPs make the alert high: guessing spread over addresses.
    /// Default `5`.
    pub spread_ips: NonZeroU32,
    /// Accounts tracked. Default `50000`; an account is forgotten once its bucket would have drained from twice
    /// the threshold (two days with the defaults).
    pub max_keys: NonZeroUsize,
}

impl Default for SlowBruteForceConfig {
    fn default() -> Self {
        const N24: NonZeroU32 = NonZeroU32::new(24).unwrap();
        const N1: NonZeroU32 = NonZeroU32::new(1).unwrap();
        const N5: NonZeroU32 = NonZeroU32::new(5).unwrap();
        const KEYS: NonZeroUsize = NonZeroUsize::new(50_000).unwrap();
        Self {
            enabled: true,
            per_account: BucketConfig { threshold: N24, leak: LeakRate::whole(N1, RatePeriod::Hour) },
            spread_ips: N5,
            max_keys: KEYS,
        }
    }
}

impl SlowBruteForceConfig {
    /// Nothing serde cannot check; here for symmetry with the other detectors.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The detector's state: a bucket per account.
#[derive(Debug)]
pub struct SlowBruteForce {
    config: SlowBruteForceConfig,
    accounts: Keyed<Burst>,
}

impl SlowBruteForce {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &SlowBruteForceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let ttl = config.per_account.leak.time_to_drain(2.0 * config.per_account.threshold());
        Ok(Self { config: config.clone(), accounts: Keyed::new(config.max_keys.get(), ttl) })
    }
}

impl Detector for SlowBruteForce {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let EventKind::Login(login) = &event.kind else {
            return Vec::new();
        };
        if login.outcome == LoginOutcome::Success {
            return Vec::new();
        }
        let account = account_key(&login.username);
        if account.is_empty() {
            return Vec::new();
        }
        let ip = event.principal.ip.as_deref().map(|ip| hash64(&ip_key(ip)));
        let bucket = self.config.per_account;
        let state = self.accounts.entry(&account, event.time, Burst::default);
        let level = state.hit(event.time, &bucket.leak, ip, &event.id);
        if level < bucket.threshold() {
            return Vec::new();
        }
        let ips = state.distinct();
        let spread = ips >= u64::from(self.config.spread_ips.get());
        let severity = if spread || level >= 2.0 * bucket.threshold() { Severity::High } else { Severity::Medium };
        let explanation = format!(
            "{} failed sign-ins for account {account:?} from {ips} IP{} within ~{}{} (threshold {}, leaks {})",
            state.hits(),
            if ips == 1 { "" } else { "s" },
            human_duration(event.time.since(state.since())),
            if spread { ": guessing spread over many addresses" } else { "" },
            bucket.threshold,
            bucket.leak,
        );
        vec![AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::BruteForce,
            key_type: KeyType::Account,
            key: account,
            severity,
            time: event.time,
            first_seen: Some(state.since()),
            feature: Feature {
                name: "failed_logins_per_account_slow".to_owned(),
                observed: round2(level),
                threshold: bucket.threshold(),
                leak: bucket.leak.to_string(),
                explanation,
                ..Feature::default()
            },
            evidence: state.evidence(),
        }]
    }

    fn memory(&self) -> Memory {
        Memory { keys: self.accounts.len(), bytes: self.accounts.heap_bytes() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{at, login};

    fn detector() -> SlowBruteForce {
        SlowBruteForce::new(&SlowBruteForceConfig::default()).unwrap()
    }

    const MIN: i64 = 60_000;

    #[test]
    fn one_guess_a_minute_for_three_hours_alerts() {
        let mut d = detector();
        let mut first = None;
        let mut last = None;
        for i in 0..180 {
            let drafts = d.observe(&login(i * MIN, "203.0.113.7", "Alice", false));
            if let Some(x) = drafts.into_iter().next() {
                first.get_or_insert(i);
                last = Some(x);
            }
        }
        // The level after k guesses a minute apart is k - (k - 1) / 60: the 25th crosses 24.
        assert_eq!(first, Some(24));
        let last = last.unwrap();
        assert_eq!((last.attack, last.key_type, last.key.as_str()), (Attack::BruteForce, KeyType::Account, "alice"));
        assert_eq!(last.severity, Severity::High, "three hours in, the level is far over twice the threshold");
        assert_eq!(last.first_seen, Some(at(0)));
        assert_eq!(
            last.feature.explanation,
            "180 failed sign-ins for account \"alice\" from 1 IP within ~3 h (threshold 24, leaks 1/h)"
        );
    }

    #[test]
    fn one_guess_every_twenty_minutes_alerts_within_a_day_from_rotating_ips() {
        let mut d = detector();
        let mut drafts = Vec::new();
        for i in 0..72 {
            drafts.extend(d.observe(&login(i * 20 * MIN, &format!("198.51.{}.9", i % 50), "bob", false)));
        }
        let first = drafts.first().expect("alerts within 24 hours");
        assert!(first.time <= at(24 * 60 * MIN));
        assert_eq!(first.severity, Severity::High, "spread over many IPs");
        assert!(first.feature.explanation.contains("guessing spread over many addresses"));
    }

    #[test]
    fn a_forgetful_user_never_alerts() {
        let mut d = detector();
        // Twelve tries in ten minutes, then a reset; again every week for two months; and a typo most days.
        for week in 0..8 {
            for i in 0..12 {
                assert!(d.observe(&login(week * 7 * 1440 * MIN + i * 50_000, "192.0.2.1", "carol", false)).is_empty());
            }
            for day in 1..7 {
                let t = (week * 7 + day) * 1440 * MIN;
                assert!(d.observe(&login(t, "192.0.2.1", "carol", false)).is_empty());
                assert!(d.observe(&login(t + 5_000, "192.0.2.1", "carol", true)).is_empty());
            }
        }
    }
}
