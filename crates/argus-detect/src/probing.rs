//! Probing and fuzzing: many calls the gate refuses as malformed (invalid input, unknown paths and methods).
//!
//! A person with a buggy client makes the same mistake a few times; a fuzzer or a scanner makes hundreds of
//! different ones. Each refusal whose `reason` is in the configured list adds 1 to a leaky bucket of the caller's
//! IP and, when the call carried a verified token, of its user or client; the distinct paths tried are counted for
//! the explanation.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use argus_model::Event;
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, api_call, bounded};
use crate::alert::{AlertDraft, Attack, Feature, KeyType, Severity};
use crate::baseline::round2;
use crate::bucket::BucketConfig;
use crate::burst::Burst;
use crate::distinct::hash64;
use crate::failed_login::human_duration;
use crate::keyed::Keyed;
use crate::pipeline::{ConfigError, Detector, Memory};
use crate::rate::{LeakRate, RatePeriod};

/// The detector's name in alerts.
pub const DETECTOR: &str = "probing";

/// `[watch.detectors.probing]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbingConfig {
    /// Whether the detector runs. Default `true`.
    pub enabled: bool,
    /// The refusal reasons (the gate's problem slugs) that count. Default: `invalid-request`, `invalid-path`,
    /// `method-not-allowed`, `no-operation`, `no-route`, `body-too-large`.
    pub reasons: Vec<String>,
    /// Refusals per IP, and per user or client. Default `threshold = 30`, `leak = "10/min"`: a developer whose
    /// client sends a bad field now and then never gets near 30, a fuzzer sending a few per second alerts within
    /// a minute or two.
    pub refusals: BucketConfig,
    /// Keys tracked. Default `50000`.
    pub max_keys: NonZeroUsize,
}

impl Default for ProbingConfig {
    fn default() -> Self {
        const N30: NonZeroU32 = NonZeroU32::new(30).unwrap();
        const N10: NonZeroU32 = NonZeroU32::new(10).unwrap();
        const KEYS: NonZeroUsize = NonZeroUsize::new(50_000).unwrap();
        Self {
            enabled: true,
            reasons: [
                "invalid-request",
                "invalid-path",
                "method-not-allowed",
                "no-operation",
                "no-route",
                "body-too-large",
            ]
            .map(str::to_owned)
            .to_vec(),
            refusals: BucketConfig { threshold: N30, leak: LeakRate::whole(N10, RatePeriod::Minute) },
            max_keys: KEYS,
        }
    }
}

impl ProbingConfig {
    /// Checks what serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.reasons.is_empty() || self.reasons.iter().any(|r| r.is_empty() || r == crate::actor::WATCH_BLOCK_REASON)
        {
            return Err(ConfigError::new(
                "watch.detectors.probing.reasons",
                "must list at least one reason, none empty, and not the refusals watch's own blocks cause",
            ));
        }
        Ok(())
    }
}

/// The detector's state.
#[derive(Debug)]
pub struct Probing {
    reasons: Vec<String>,
    bucket: BucketConfig,
    keys: Keyed<Burst>,
    key_buf: String,
}

impl Probing {
    /// A detector with no history, or an error if `config` cannot be used.
    pub fn new(config: &ProbingConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        // A key idle for long enough to drain from twice the threshold has nothing left worth keeping.
        let ttl = config.refusals.leak.time_to_drain(2.0 * config.refusals.threshold()).max(Duration::from_secs(60));
        Ok(Self {
            reasons: config.reasons.clone(),
            bucket: config.refusals,
            keys: Keyed::new(config.max_keys.get(), ttl),
            key_buf: String::new(),
        })
    }

    fn hit(&mut self, event: &Event, actor: Actor<'_>, path_hash: u64, reason: &str) -> Option<AlertDraft> {
        actor.table_key(&mut self.key_buf);
        let leak = self.bucket.leak;
        let state = self.keys.entry(&self.key_buf, event.time, Burst::default);
        let level = state.hit(event.time, &leak, Some(path_hash), &event.id);
        let threshold = self.bucket.threshold();
        if level < threshold {
            return None;
        }
        let severity = if level >= 2.0 * threshold { Severity::High } else { Severity::Medium };
        let explanation = format!(
            "{} calls from {} {} refused as malformed (latest: {reason}) on {} distinct paths within ~{} \
             (threshold {}, leaks {})",
            state.hits(),
            actor.key_type,
            actor.key,
            state.distinct(),
            human_duration(event.time.since(state.since())),
            self.bucket.threshold,
            leak
        );
        Some(AlertDraft {
            detector: DETECTOR.to_owned(),
            attack: Attack::Probing,
            key_type: actor.key_type,
            key: actor.key.to_owned(),
            severity,
            time: event.time,
            first_seen: Some(state.since()),
            feature: Feature {
                name: "malformed_call_refusals".to_owned(),
                observed: round2(level),
                threshold,
                leak: leak.to_string(),
                explanation,
                ..Feature::default()
            },
            evidence: state.evidence(),
        })
    }
}

impl Detector for Probing {
    fn name(&self) -> &'static str {
        DETECTOR
    }

    fn observe(&mut self, event: &Event) -> Vec<AlertDraft> {
        let Some(call) = api_call(event) else {
            return Vec::new();
        };
        let Some(reason) = call.reason.as_deref().filter(|r| self.reasons.iter().any(|x| x == r)) else {
            return Vec::new();
        };
        let path_hash = hash64(bounded(&call.path));
        let mut drafts = Vec::new();
        if let Some(ip) = event.principal.ip.as_deref() {
            let ip = Actor { key_type: KeyType::Ip, key: bounded(ip) };
            drafts.extend(self.hit(event, ip, path_hash, reason));
        }
        if let Some(actor) = Actor::of(&event.principal).filter(|a| a.key_type != KeyType::Ip) {
            drafts.extend(self.hit(event, actor, path_hash, reason));
        }
        drafts
    }

    fn memory(&self) -> Memory {
        Memory { keys: self.keys.len(), bytes: self.keys.heap_bytes() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{anonymous, call, drafts_for, user, with_call};

    fn refused(ms: i64, principal: argus_model::Principal, path: &str, reason: &str) -> Event {
        let mut e = call(ms, principal, "POST", path, 400);
        with_call(&mut e, |c| c.reason = Some(reason.into()));
        e
    }

    fn detector() -> Probing {
        Probing::new(&ProbingConfig::default()).unwrap()
    }

    #[test]
    fn a_fuzzer_alerts_on_its_ip_within_seconds() {
        let mut d = detector();
        let mut all = Vec::new();
        for i in 0..80 {
            let reason = if i % 3 == 0 { "no-operation" } else { "invalid-request" };
            all.extend(d.observe(&refused(i * 250, anonymous("203.0.113.66"), &format!("/fuzz/{i}"), reason)));
        }
        let ip = drafts_for(&all, Attack::Probing, KeyType::Ip, "203.0.113.66");
        // The level after k refusals is k - (k - 1) / 24 (10/min is 1/24 per 250 ms): the 32nd crosses 30.
        assert_eq!(ip.len(), 80 - 31);
        assert_eq!(ip[0].severity, Severity::Medium);
        assert_eq!(ip.last().unwrap().severity, Severity::High);
        assert!(ip[0].feature.explanation.starts_with("32 calls from ip 203.0.113.66 refused as malformed"));
        // 32 distinct paths: past 16 the count is a sketch's estimate.
        let why = &ip[0].feature.explanation;
        assert!(
            why.contains("refused as malformed (latest: invalid-request) on ")
                && why.contains(" distinct paths within ~8 s (threshold 30, leaks 10/min)"),
            "{why}"
        );
        assert_eq!(ip[0].evidence.len(), 8);
        assert_eq!(ip[0].first_seen, Some(crate::testing::at(0)));
    }

    #[test]
    fn a_signed_in_prober_alerts_on_the_user_too_and_a_mistyping_developer_never() {
        let mut d = detector();
        let mut all = Vec::new();
        for i in 0..40 {
            all.extend(d.observe(&refused(i * 1000, user("mallory", "198.51.100.9"), "/accounts", "invalid-request")));
        }
        assert!(!drafts_for(&all, Attack::Probing, KeyType::User, "mallory").is_empty());
        // Three bad requests every few minutes for a day.
        for i in 0..(24 * 20) {
            for j in 0..3 {
                let e = refused(i * 180_000 + j * 2_000, user("dev", "192.0.2.5"), "/accounts", "invalid-request");
                assert!(d.observe(&e).is_empty(), "at {i}");
            }
        }
    }

    #[test]
    fn other_refusals_and_watch_blocks_do_not_count() {
        let mut d = detector();
        for i in 0..100 {
            assert!(d.observe(&refused(i * 10, anonymous("203.0.113.1"), "/x", "blocked")).is_empty());
            assert!(d.observe(&refused(i * 10, anonymous("203.0.113.1"), "/x", "rate-limited")).is_empty());
        }
        assert_eq!(d.memory().keys, 0);
    }

    #[test]
    fn config_refuses_an_empty_list_and_the_block_reason() {
        let mut c = ProbingConfig { reasons: vec![], ..ProbingConfig::default() };
        assert_eq!(c.validate().unwrap_err().key, "watch.detectors.probing.reasons");
        c.reasons = vec!["blocked".into()];
        assert!(c.validate().is_err());
    }
}
