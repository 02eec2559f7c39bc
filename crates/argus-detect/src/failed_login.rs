//! The failed sign-in detector: brute force and credential stuffing at the login form.
//!
//! Every `Login` failure adds 1 to two leaky buckets, one keyed by the client IP and one by the account (the user
//! name as typed). A bucket at or above its threshold yields an alert draft on every further failure, so the open
//! alert keeps its count, level and evidence current; the store merges the drafts into one alert per key.
//!
//! A successful sign-in changes nothing: stuffing from one IP succeeds now and then, and a success must not wipe
//! the record of the failures before it.

use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use argus_model::{Event, EventKind, LoginOutcome};
use serde::{Deserialize, Serialize};

use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::bucket::{BucketConfig, BucketState, DISTINCT_MAX, Hit, KeyedBuckets};
use crate::pipeline::{ConfigError, Detector};
use crate::rate::{LeakRate, RatePeriod};

/// The detector's name in alerts.
pub const DETECTOR: &str = "failed_login";

/// Longest key kept, in bytes: user names are attacker-chosen and must not inflate memory or alerts.
const MAX_KEY_BYTES: usize = 256;

/// `[watch.detectors.failed_login]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailedLoginConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// Failed sign-ins per client IP. Default `threshold = 20`, `leak = "10/min"`: an office of people mistyping
    /// behind one NAT is forgiven 600 failures an hour and never gets near 20, while a script guessing faster than
    /// 10 a minute alerts within minutes (a burst of 20 at once alerts at once). Slower guessing from one IP is
    /// left to the per-account bucket.
    pub per_ip: BucketConfig,
    /// Failed sign-ins per account. Default `threshold = 10`, `leak = "6/h"`: a user who mistypes a few times, even
    /// several times a day, never alerts, while a guesser is held to about 6 tries an hour (about 144 a day) from
    /// any number of IPs before an alert.
    pub per_account: BucketConfig,
    /// An IP alert is `credential_stuffing` when its failures span at least this many distinct accounts, else
    /// `brute_force`. Default `5`: brute force hammers one or a few accounts, stuffing tries each leaked pair about
    /// once, so its accounts grow with its attempts. At most 32 (distinct accounts are counted up to 32).
    pub stuffing_accounts: NonZeroU32,
    /// Keys tracked per bucket table (IPs, accounts). Default `10000`. Each key costs at most about 2 KB (20
    /// evidence ids, 32 distinct-value hashes), so both tables stay under about 40 MB; when a table is full the
    /// emptiest eighth of its buckets is evicted, which keeps the keys that are close to alerting.
    pub max_keys: NonZeroUsize,
}

impl Default for FailedLoginConfig {
    fn default() -> Self {
        // Evaluated at compile time: a zero here would not build.
        const N20: NonZeroU32 = NonZeroU32::new(20).unwrap();
        const N10: NonZeroU32 = NonZeroU32::new(10).unwrap();
        const N6: NonZeroU32 = NonZeroU32::new(6).unwrap();
        const N5: NonZeroU32 = NonZeroU32::new(5).unwrap();
        const KEYS: NonZeroUsize = NonZeroUsize::new(10_000).unwrap();
        Self {
            enabled: true,
            per_ip: BucketConfig { threshold: N20, leak: LeakRate::whole(N10, RatePeriod::Minute) },
            per_account: BucketConfig { threshold: N10, leak: LeakRate::whole(N6, RatePeriod::Hour) },
            stuffing_accounts: N5,
            max_keys: KEYS,
        }
    }
}

impl FailedLoginConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.stuffing_accounts.get() as usize > DISTINCT_MAX {
            return Err(ConfigError::new(
                "watch.detectors.failed_login.stuffing_accounts",
                format!("must be at most {DISTINCT_MAX}"),
            ));
        }
        Ok(())
    }
}

/// The detector's state: two bucket tables.
#[derive(Clone, Debug)]
pub struct FailedLogin {
    per_ip: KeyedBuckets,
    per_account: KeyedBuckets,
    stuffing_accounts: usize,
}

impl FailedLogin {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &FailedLoginConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let max_keys = config.max_keys.get();
        Ok(Self {
            per_ip: KeyedBuckets::new(config.per_ip, max_keys),
            per_account: KeyedBuckets::new(config.per_account, max_keys),
            stuffing_accounts: config.stuffing_accounts.get() as usize,
        })
    }

    /// How many IPs and accounts are tracked.
    pub fn tracked(&self) -> (usize, usize) {
        (self.per_ip.len(), self.per_account.len())
    }

    fn observe_ip(&mut self, event: &Event, ip: &str, account: &str) -> Option<AlertDraft> {
        let config = *self.per_ip.config();
        let hit = Hit { key: ip, time: event.time, event_id: &event.id, companion: Some(account) };
        let state = self.per_ip.hit(hit);
        if state.level() < config.threshold() {
            return None;
        }
        let accounts = state.distinct();
        let attack =
            if accounts.len() >= self.stuffing_accounts { Attack::CredentialStuffing } else { Attack::BruteForce };
        let explanation = format!(
            "{} failed sign-ins from {ip} on {} within ~{} (threshold {}, leaks {})",
            state.hits(),
            count_of(accounts.len(), accounts.is_saturated(), "account", "accounts"),
            span(state, event),
            config.threshold,
            config.leak,
        );
        Some(draft(event, attack, KeyType::Ip, ip, "failed_logins_per_ip", &config, state, explanation))
    }

    fn observe_account(&mut self, event: &Event, account: &str, ip: Option<&str>) -> Option<AlertDraft> {
        let config = *self.per_account.config();
        let hit = Hit { key: account, time: event.time, event_id: &event.id, companion: ip };
        let state = self.per_account.hit(hit);
        if state.level() < config.threshold() {
            return None;
        }
        let ips = state.distinct();
        let explanation = format!(
            "{} failed sign-ins for account {account:?} from {} within ~{} (threshold {}, leaks {})",
            state.hits(),
            count_of(ips.len(), ips.is_saturated(), "IP", "IPs"),
            span(state, event),
            config.threshold,
            config.leak,
        );
        let feature = "failed_logins_per_account";
        Some(draft(event, Attack::BruteForce, KeyType::Account, account, feature, &config, state, explanation))
    }
}

impl Detector for FailedLogin {
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
        let ip = event.principal.ip.as_deref().map(ip_key);
        let mut drafts = Vec::new();
        if let Some(ip) = ip.as_deref() {
            drafts.extend(self.observe_ip(event, ip, &account));
        }
        if !account.is_empty() {
            drafts.extend(self.observe_account(event, &account, ip.as_deref()));
        }
        drafts
    }
}

#[allow(clippy::too_many_arguments)]
fn draft(
    event: &Event,
    attack: Attack,
    key_type: KeyType,
    key: &str,
    feature: &str,
    config: &BucketConfig,
    state: &BucketState,
    explanation: String,
) -> AlertDraft {
    let threshold = config.threshold();
    // Twice the threshold means the attack outpaces the leak by a wide margin, not a borderline burst.
    let severity = if state.level() >= 2.0 * threshold { Severity::High } else { Severity::Medium };
    AlertDraft {
        detector: DETECTOR.to_owned(),
        attack,
        key_type,
        key: key.to_owned(),
        severity,
        time: event.time,
        // The burst's start is in the explanation; the alert's first_seen stays the first draft's time, when the
        // threshold was crossed (what watch's API has always reported for this detector).
        first_seen: None,
        feature: Feature {
            name: feature.to_owned(),
            observed: (state.level() * 100.0).round() / 100.0,
            threshold,
            leak: config.leak.to_string(),
            explanation,
            ..Feature::default()
        },
        evidence: state.evidence(),
    }
}

/// The account key: the user name as typed, trimmed and lower-cased (so `Alice` and `alice ` count together),
/// and cut to a bounded length.
pub fn account_key(username: &str) -> String {
    truncate(username.trim().to_lowercase())
}

/// The IP key: the canonical text form when it parses (so `::ffff:203.0.113.7` and `203.0.113.7` count together),
/// else the text cut to a bounded length.
pub fn ip_key(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(addr) => addr.to_canonical().to_string(),
        Err(_) => truncate(ip.trim().to_owned()),
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_KEY_BYTES {
        let mut end = MAX_KEY_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn count_of(n: usize, saturated: bool, one: &str, many: &str) -> String {
    match (n, saturated) {
        (_, true) => format!("{n}+ {many}"),
        (1, _) => format!("1 {one}"),
        _ => format!("{n} {many}"),
    }
}

/// How long the current burst has lasted, as a person would say it.
fn span(state: &BucketState, event: &Event) -> String {
    human_duration(event.time.since(state.since()))
}

/// `~N s` up to two minutes, then minutes, hours, days; never "0 s".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64().ceil().max(1.0);
    if secs < 120.0 {
        format!("{secs} s")
    } else if secs < 120.0 * 60.0 {
        format!("{} min", (secs / 60.0).round())
    } else if secs < 48.0 * 3600.0 {
        format!("{} h", (secs / 3600.0).round())
    } else {
        format!("{} d", (secs / 86_400.0).round())
    }
}

#[cfg(test)]
mod tests;
